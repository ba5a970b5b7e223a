"""STDP's Train panels: the weight histogram over time per layer, the learning window, and (on the
synthetic repeated-pattern data) the mean weight from pattern vs noise channels."""
from __future__ import annotations

import numpy as np

from snncore.viz import rules as vr
from snncore.viz.panels import Figure, PanelView, Row, Text, layers_of

NEEDS_SNAPSHOT = True


def pattern_channels(cfg: dict, W) -> np.ndarray | None:
    """Bool mask [channels] of the synthetic dataset's class-group (pattern) channels, when W
    [post, pre] reads those channels directly (its pre size is syn_channels); else None. Class c
    fires channels (c * syn_group + i) % syn_channels, i < syn_group (snncore.data.synthetic)."""
    if W is None or np.ndim(W) != 2 or cfg.get("dataset") != "synthetic":
        return None
    from snncore.config import RunConfig
    d = RunConfig()
    ch, group, classes = (int(cfg.get(k, getattr(d, k))) for k in ("syn_channels", "syn_group", "syn_classes"))
    if np.shape(W)[1] != ch:
        return None
    mask = np.zeros(ch, dtype=bool)
    mask[(np.arange(classes)[:, None] * group + np.arange(group)[None, :]).reshape(-1) % ch] = True
    return mask if 0 < mask.sum() < ch else None


def stdp_panels(view: PanelView, window: dict | None = None) -> list:
    """The panels of a pair-STDP rule; ``window``: title/ytitle of the learning window figure."""
    snaps, latest = view.snaps, view.latest
    layers = layers_of(latest, "whist")
    left, right = [], []
    for layer in layers:
        hist = [(s, a[f"whist/{layer}"], a[f"wedges/{layer}"]) for s, a in snaps
                if f"whist/{layer}" in a and f"wedges/{layer}" in a]
        steps, counts, edges = zip(*hist) if hist else ((), (), ())
        left.append(Figure(vr.weight_hist_figure(steps, counts, edges, layer=layer), f"whist_{layer}"))
    if not layers:
        left.append(Text("no weight histogram in the snapshots yet"))
    if "window_dt" in latest and "window_dw" in latest:
        right.append(Figure(vr.stdp_window_figure(latest["window_dt"], latest["window_dw"], **(window or {})),
                            "window"))
    items: list = [Row([left, right], [3, 2])]
    for layer in layers:
        pattern = pattern_channels(view.cfg, latest.get(f"w/{layer}"))
        if pattern is None:
            continue
        hist = [(s, a[f"w/{layer}"]) for s, a in snaps if np.shape(a.get(f"w/{layer}"))[-1:] == pattern.shape]
        items.append(Figure(vr.pattern_weights_figure([s for s, _ in hist], [w for _, w in hist], pattern,
                                                      layer=layer,
                                                      pattern_name=f"pattern channels ({pattern.sum()})",
                                                      noise_name=f"noise channels ({(~pattern).sum()})"),
                            f"pattern_{layer}"))
    return items


panels = stdp_panels
