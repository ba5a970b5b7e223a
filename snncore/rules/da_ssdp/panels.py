"""DA-SSDP's Train panels: the warm-up progress or the fitted gate (badges, from telemetry alone
before the first snapshot), synchrony vs loss of the warm-up with the fitted line, the gate
histogram, then SSDP's panels."""
from __future__ import annotations

import numpy as np
import pandas as pd

from snncore.rules.ssdp.panels import ssdp_panels
from snncore.viz import rules as vr
from snncore.viz.panels import Figure, PanelView, Row, Text, last_value, layers_of

NEEDS_SNAPSHOT = False          # the warm-up badge needs telemetry only
PLAIN_K = 0.05                  # |k| below this: the gate is ~1 (plain SSDP)


def fit_of(layer: str, snaps, tel):
    """(k, mu, sd) of a layer: from the newest snapshot that has it, else from telemetry."""
    for _, a in reversed(snaps):
        v = a.get(f"fit/{layer}")
        if v is not None and np.size(v) == 3:
            return tuple(float(x) for x in np.asarray(v).reshape(-1))
    vals = [last_value(tel, f"{p}/{layer}") for p in ("k", "mu", "sd")]
    return tuple(vals) if all(v is not None for v in vals) else None


def panels(view: PanelView) -> list:
    snaps, latest, tel = view.snaps, view.latest, view.tel
    layers = layers_of(latest, "lat_pre") or layers_of(latest, "warm_S")
    if not layers and isinstance(tel, pd.DataFrame):
        layers = [str(c).split("/", 1)[1] for c in tel.columns if str(c).startswith("sync/")]
    fits = {layer: fit_of(layer, snaps, tel) for layer in layers}
    fitted = any(f is not None for f in fits.values()) or view.last("phase") == 1.0
    items: list = []
    if not fitted:
        prog = view.last("warmup_progress")
        if prog is None and "warmup" in latest:
            prog = float(latest["warmup"])
        items.append(Text(f"warm-up {100 * (prog or 0.0):.0f} %", "badge", ":material/hourglass_top:", "orange"))
    else:
        for layer, f in fits.items():
            if f is None:
                continue
            k, mu, sd = f
            items.append(Text(f"{layer} · gate fitted: k={k:.3f}, mu={mu:.4g}, sd={sd:.3g}", "badge",
                              ":material/check:", "green"))
            if abs(k) < PLAIN_K:
                items.append(Text(f"{layer} · gate = 1: plain SSDP (|k| < {PLAIN_K})", "badge",
                                  ":material/info:", "blue"))
    if not snaps:
        return items
    cells: list[list] = [[], []]
    i = 0
    for layer in layers:
        rec = next(((a[f"warm_S/{layer}"], a["warm_L"]) for _, a in reversed(snaps)
                    if f"warm_S/{layer}" in a and "warm_L" in a), None)
        f = fits.get(layer)
        if rec is not None:
            kw = dict(zip(("k", "mu", "sd"), f)) if f is not None else {}
            cells[i % 2].append(Figure(vr.sync_loss_figure(rec[0], rec[1], layer=layer, **kw), f"syncloss_{layer}"))
            i += 1
        g = latest.get(f"gate/{layer}")
        if g is not None:
            cells[i % 2].append(Figure(vr.gate_hist_figure(g, layer=layer), f"gate_{layer}"))
            i += 1
    items.append(Row(cells))
    if not fitted:
        items.append(Text("The gate histogram appears once the gate is fitted at the end of the warm-up."))
    return items + ssdp_panels(view)
