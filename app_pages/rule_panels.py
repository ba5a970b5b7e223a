"""Rule-specific live panels of the Train page (called from its live fragment).

Each rule saves its non-scalar state with every spike snapshot (``rule.arrays()`` -> 'rule/<name>'
in the .npz); this module draws it with the figure builders of :mod:`snncore.viz.rules`, using the
newest snapshot and a handful of earlier ones for the over-time views, plus the telemetry frame.
It never raises on missing data: a run that has no snapshot yet gets a caption.
"""
from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import pandas as pd
import streamlit as st

from snncore.viz import rules as vr

RECONSTRUCTED_NOTE = "The paper's method section was not available; this is our reading of it."
RECONSTRUCTED = ("mps", "ip2")
N_SNAPSHOTS = 10                # snapshots read for the over-time views (evenly spaced, newest last)
PLAIN_K = 0.05                  # |k| below this: the DA-SSDP gate is ~1 (plain SSDP)

_CACHE: "OrderedDict[tuple, dict]" = OrderedDict()   # (root, run, step) -> the rule arrays
_CACHE_MAX = 256
_LOCK = threading.Lock()


# ------------------------------------------------------------------------------- data access
def _rule_arrays(store, run_id: str, step: int) -> dict | None:
    """The 'rule/<name>' arrays of one snapshot (prefix stripped), cached: a snapshot never changes."""
    key = (str(getattr(store, "root", "")), run_id, int(step))
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    snap = store.load_snapshot(run_id, int(step))
    if snap is None:
        return None
    arrays = {k[len("rule/"):]: v for k, v in snap.items() if k.startswith("rule/")}
    with _LOCK:
        _CACHE[key] = arrays
        while len(_CACHE) > _CACHE_MAX:
            _CACHE.popitem(last=False)
    return arrays


def snapshots(store, run_id: str, n: int = N_SNAPSHOTS) -> list[tuple[int, dict]]:
    """[(step, rule arrays)] of up to n snapshots, evenly spaced over the run, the newest last."""
    steps = store.snapshot_steps(run_id)
    if not steps:
        return []
    idx = sorted({int(i) for i in np.linspace(0, len(steps) - 1, min(n, len(steps))).round()})
    out = []
    for i in idx:
        a = _rule_arrays(store, run_id, steps[i])
        if a is not None:
            out.append((int(steps[i]), a))
    return out


def layers_of(arrays: dict, prefix: str) -> list[str]:
    """Layer names of the keys '<prefix>/<layer>', in saved order."""
    p = prefix + "/"
    return [k[len(p):] for k in arrays if k.startswith(p)]


def last_value(tel, column: str) -> float | None:
    """The newest non-NaN value of a telemetry column, or None."""
    if not isinstance(tel, pd.DataFrame) or column not in tel.columns:
        return None
    s = tel[column].dropna()
    return float(s.iloc[-1]) if len(s) else None


def _param(rule: str, cfg: dict, name: str, default=None):
    """A rule hyperparameter from the run's config, else the rule's default."""
    v = (cfg.get("rule_params") or {}).get(name)
    if v is not None:
        return v
    try:
        from snncore.rules import get_rule
        return getattr(get_rule(rule).Params(), name, default)
    except Exception:  # noqa: BLE001 -- an unknown rule: the caller's default
        return default


def _chart(container, fig, key: str) -> None:
    container.plotly_chart(fig, width="stretch", key=key)


# ------------------------------------------------------------------------------- per rule
def _stdp(rule, snaps, cfg, tel, run_id):
    latest = snaps[-1][1]
    layers = layers_of(latest, "whist")
    c1, c2 = st.columns([3, 2])
    for layer in layers:
        hist = [(s, a[f"whist/{layer}"], a[f"wedges/{layer}"]) for s, a in snaps
                if f"whist/{layer}" in a and f"wedges/{layer}" in a]
        steps, counts, edges = zip(*hist) if hist else ((), (), ())
        _chart(c1, vr.weight_hist_figure(steps, counts, edges, layer=layer), f"rp_{run_id}_whist_{layer}")
    if not layers:
        c1.caption("no weight histogram in the snapshots yet")
    if "window_dt" in latest and "window_dw" in latest:
        if rule == "rstdp":
            fig = vr.stdp_window_figure(latest["window_dt"], latest["window_dw"],
                                        title="STDP learning window (R-STDP term)",
                                        ytitle="dW per pair per unit of (r − r_bar)")
        else:
            fig = vr.stdp_window_figure(latest["window_dt"], latest["window_dw"])
        _chart(c2, fig, f"rp_{run_id}_window")
    for layer in layers:
        pattern = pattern_channels(cfg, latest.get(f"w/{layer}"))
        if pattern is None:
            continue
        hist = [(s, a[f"w/{layer}"]) for s, a in snaps if np.shape(a.get(f"w/{layer}"))[-1:] == pattern.shape]
        _chart(st, vr.pattern_weights_figure([s for s, _ in hist], [w for _, w in hist], pattern, layer=layer,
                                             pattern_name=f"pattern channels ({pattern.sum()})",
                                             noise_name=f"noise channels ({(~pattern).sum()})"),
               f"rp_{run_id}_pattern_{layer}")


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


def _ssdp_common(rule, snaps, cfg, tel, run_id):
    latest = snaps[-1][1]
    layers = layers_of(latest, "lat_pre")
    cols = st.columns(2)
    if "kernel_dt" in latest and "kernel_g" in latest:
        sigma = _param(rule, cfg, "sigma")
        _chart(cols[0], vr.ssdp_kernel_figure(latest["kernel_dt"], latest["kernel_g"],
                                              sigma=float(sigma) if sigma is not None else None),
               f"rp_{run_id}_kernel")
    T = int(latest["lat_T"]) if "lat_T" in latest else None
    for i, layer in enumerate(layers):
        post = latest.get(f"lat_post/{layer}")
        if T is None or post is None:
            continue
        _chart(cols[(i + 1) % 2], vr.latency_figure(latest[f"lat_pre/{layer}"], post, T, layer=layer),
               f"rp_{run_id}_lat_{layer}")
    rasters = [l for l in layers_of(latest, "raster_pre") if f"raster_post/{l}" in latest]
    if rasters:
        latency = str(_param(rule, cfg, "latency", "first") or "first")
        rcols = st.columns(min(2, len(rasters)))
        for i, layer in enumerate(rasters):
            _chart(rcols[i % len(rcols)],
                   vr.ssdp_raster_figure(latest[f"raster_pre/{layer}"], latest[f"raster_post/{layer}"],
                                         pre_ids=latest.get(f"raster_pre_ids/{layer}"),
                                         post_ids=latest.get(f"raster_post_ids/{layer}"),
                                         latency=latency if latency in ("first", "last") else "first",
                                         layer=layer),
                   f"rp_{run_id}_raster_{layer}")


def _fit_of(layer: str, snaps, tel):
    """(k, mu, sd) of a layer: from the newest snapshot that has it, else from telemetry."""
    for _, a in reversed(snaps):
        v = a.get(f"fit/{layer}")
        if v is not None and np.size(v) == 3:
            return tuple(float(x) for x in np.asarray(v).reshape(-1))
    vals = [last_value(tel, f"{p}/{layer}") for p in ("k", "mu", "sd")]
    return tuple(vals) if all(v is not None for v in vals) else None


def _da_ssdp(rule, snaps, cfg, tel, run_id):
    latest = snaps[-1][1] if snaps else {}
    layers = layers_of(latest, "lat_pre") or layers_of(latest, "warm_S")
    if not layers and isinstance(tel, pd.DataFrame):
        layers = [str(c).split("/", 1)[1] for c in tel.columns if str(c).startswith("sync/")]
    fits = {layer: _fit_of(layer, snaps, tel) for layer in layers}
    phase = last_value(tel, "phase")
    fitted = any(f is not None for f in fits.values()) or phase == 1.0
    if not fitted:
        prog = last_value(tel, "warmup_progress")
        if prog is None and "warmup" in latest:
            prog = float(latest["warmup"])
        st.badge(f"warm-up {100 * (prog or 0.0):.0f} %", icon=":material/hourglass_top:", color="orange")
    else:
        for layer, f in fits.items():
            if f is None:
                continue
            k, mu, sd = f
            st.badge(f"{layer} · gate fitted: k={k:.3f}, mu={mu:.4g}, sd={sd:.3g}",
                     icon=":material/check:", color="green")
            if abs(k) < PLAIN_K:
                st.badge(f"{layer} · gate = 1: plain SSDP (|k| < {PLAIN_K})", icon=":material/info:",
                         color="blue")
    if not snaps:
        return
    cols = st.columns(2)
    i = 0
    for layer in layers:
        rec = next(((a[f"warm_S/{layer}"], a["warm_L"]) for _, a in reversed(snaps)
                    if f"warm_S/{layer}" in a and "warm_L" in a), None)
        f = fits.get(layer)
        if rec is not None:
            kw = dict(zip(("k", "mu", "sd"), f)) if f is not None else {}
            _chart(cols[i % 2], vr.sync_loss_figure(rec[0], rec[1], layer=layer, **kw),
                   f"rp_{run_id}_syncloss_{layer}")
            i += 1
        g = latest.get(f"gate/{layer}")
        if g is not None:
            _chart(cols[i % 2], vr.gate_hist_figure(g, layer=layer), f"rp_{run_id}_gate_{layer}")
            i += 1
    if not fitted:
        st.caption("The gate histogram appears once the gate is fitted at the end of the warm-up.")
    _ssdp_common(rule, snaps, cfg, tel, run_id)


def _mps(rule, snaps, cfg, tel, run_id):
    latest = snaps[-1][1]
    mech = [str(m) for m in np.asarray(latest.get("mechanisms", [])).reshape(-1)]
    if not mech:
        mech = [str(m) for m in (_param(rule, cfg, "mechanisms") or [])]
    for layer in layers_of(latest, "assign"):
        c1, c2 = st.columns(2)
        _chart(c1, vr.assignment_figure(latest[f"assign/{layer}"], mech, layer=layer),
               f"rp_{run_id}_assign_{layer}")
        if vr.share_columns(tel, layer):
            _chart(c2, vr.shares_area_figure(tel, layer, mech), f"rp_{run_id}_shares_{layer}")
        else:
            c2.caption("layer-mean shares appear with the first telemetry")
        c3, c4 = st.columns(2)
        A = np.asarray(latest[f"assign/{layer}"])
        if A.ndim == 2 and A.shape[0] in (2, 3):
            history = [(s, a[f"assign/{layer}"]) for s, a in snaps if f"assign/{layer}" in a]
            _chart(c3, vr.simplex_figure(A, mech, layer=layer, history=history), f"rp_{run_id}_simplex_{layer}")
        else:
            c3.caption(f"{layer}: the mechanism triangle needs 2 or 3 mechanisms; this run has "
                       f"{A.shape[0] if A.ndim else 0}, see the heatmap above")
        if f"curr/{layer}" in latest:
            v_th = _param(rule, cfg, "v_th")
            _chart(c4, vr.currents_figure(latest[f"curr/{layer}"], mech, u=latest.get(f"curr_u/{layer}"),
                                          spikes=latest.get(f"curr_s/{layer}"), bias=latest.get(f"curr_b/{layer}"),
                                          neurons=latest.get(f"curr_ids/{layer}"),
                                          v_th=float(v_th) if v_th is not None else None, layer=layer),
                   f"rp_{run_id}_curr_{layer}")
        else:
            c4.caption(f"{layer}: component currents appear with the next snapshot of a training step")


def _ip2(rule, snaps, cfg, tel, run_id):
    if not snaps:
        return
    latest = snaps[-1][1]
    mask = [str(m) for m in np.asarray(latest.get("mask", [])).reshape(-1) if str(m)]
    phase = str(latest.get("phase", ""))
    if phase.startswith("pilot"):
        st.info(f"Slow level running: pilot of candidate mask {phase.split(':', 1)[-1]}", icon=":material/science:")
    else:
        st.success(f"Learnable intrinsic properties (frozen by the slow level): {', '.join(mask) or 'none'}; "
                   "the others stay bit-identical.", icon=":material/lock:")
    figs = []        # laid out two per row as they come: no empty slot where one is missing
    if "pilot_scores" in latest:      # meta_mode "fixed" has no slow level, so no pilot scores
        chosen = "+".join(mask) if mask else "none"
        masks = [str(m) for m in latest["pilot_masks"]]
        figs.append((vr.pilot_scores_figure(masks, latest["pilot_scores"].tolist(),
                                            chosen if chosen in masks else None), f"rp_{run_id}_pilot"))
    picks = [snaps[0], snaps[len(snaps) // 2], snaps[-1]] if len(snaps) >= 3 else snaps
    seen, chosen_snaps = set(), []
    for step, a in picks:
        t = int(np.asarray(a.get("task", step)))
        if t not in seen:
            seen.add(t)
            chosen_snaps.append((t, a))
    for prop in ("tau_d", "tau_s", "theta"):
        data = [(t, a[prop]) for t, a in chosen_snaps if prop in a]
        if data:
            figs.append((vr.intrinsic_hist_figure(data, prop), f"rp_{run_id}_hist_{prop}"))
    for i in range(0, len(figs), 2):
        row = st.columns(2)
        for col, (fig, key) in zip(row, figs[i:i + 2]):
            _chart(col, fig, key)
    if "trial_u" in latest and "trial_y" in latest:
        task = int(np.asarray(latest.get("task", 0)))
        st.caption(f"Within a trial: one trial of task {task} (the newest snapshot), after its last update.")
        dt = float(_param(rule, cfg, "dt", 1.0) or 1.0)
        neurons = np.asarray(latest.get("trial_neurons", np.arange(len(latest["trial_u"])))).astype(int)
        theta = latest.get("theta")
        theta = np.asarray(theta)[neurons] if theta is not None and np.size(theta) > neurons.max(initial=-1) else None
        c5, c6 = st.columns(2)
        _chart(c5, vr.trial_traces_figure(latest["trial_u"], latest.get("trial_d", np.zeros((0, 0))), dt=dt,
                                          theta=theta, neurons=neurons), f"rp_{run_id}_trial_ud")
        if "trial_target" in latest:
            _chart(c6, vr.trial_readout_figure(latest["trial_y"], latest["trial_target"],
                                               latest.get("trial_mask"), dt=dt), f"rp_{run_id}_trial_y")


HANDLERS = {"stdp": _stdp, "rstdp": _stdp, "ssdp": _ssdp_common, "da_ssdp": _da_ssdp, "mps": _mps, "ip2": _ip2}
NEEDS_SNAPSHOT = ("stdp", "rstdp", "ssdp", "mps")   # da_ssdp shows its badge from telemetry alone


def render(rule: str, store, run_id: str, cfg: dict, tel) -> None:
    """Draw the rule-specific panels of one run (nothing for rules without any); never raises on
    missing data."""
    fn = HANDLERS.get(rule)
    if fn is not None:
        st.subheader(f"{rule} panels")
    if rule in RECONSTRUCTED:
        st.info(RECONSTRUCTED_NOTE, icon=":material/info:")
    if fn is None:
        return
    tel = tel if isinstance(tel, pd.DataFrame) else pd.DataFrame()
    cfg = cfg if isinstance(cfg, dict) else {}
    try:
        snaps = snapshots(store, run_id)
        if not snaps:
            st.caption("waiting for the first snapshot")
            if rule in NEEDS_SNAPSHOT:
                return
        fn(rule, snaps, cfg, tel, run_id)
    except Exception as e:  # noqa: BLE001 -- a live view: say what failed, keep the page alive
        st.warning(f"{rule} panels could not be drawn: {type(e).__name__}: {e}")
