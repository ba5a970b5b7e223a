"""Pure figure builders: data in, plotly Figure out (the app and notebooks call the same code).

Rasters are drawn as images (px.imshow with binary_string=True: one PNG), which keeps a
1000 neurons x 1000 steps raster redrawing in tens of milliseconds (PERFORMANCE.md, Live views).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import plotly.io as pio

# title on the first line, legend on its own line under it, so long names never overlap
# the house template is the default once, not a key of every layout: naming it per figure deep-copies
# it (~30 ms a figure, most of a live redraw's time)
pio.templates.default = "plotly_white"
# MPS shares 0..1, light to dark, spelt out: a bare "Blues" is light-to-dark in plotly (Python) but
# dark-to-light in plotly.js, which gets the name as is from a figure dict built without validation
# (the Rule Lab's): the two pages showed the same share in opposite shades
SHARE_COLORSCALE = [[i / (len(px.colors.sequential.Blues) - 1), c]
                    for i, c in enumerate(px.colors.sequential.Blues)]
LAYOUT = dict(margin=dict(l=60, r=15, t=70, b=45), height=300,
              title_y=0.97, title_yanchor="top",
              legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0, font=dict(size=11)))


def _boundaries(T: int | None, n: int) -> list[dict]:
    """Dotted lines between the samples laid side by side (one layout update: add_vline per line
    costs ~25 ms each in plotly, a live redraw cannot afford that)."""
    if not T or n <= T:
        return []
    return [dict(type="line", xref="x", yref="paper", x0=k - 0.5, x1=k - 0.5, y0=0, y1=1,
                 line=dict(width=1, dash="dot", color="#d62728")) for k in range(T, n, T)]


def raster_figure(raster: np.ndarray, *, title: str = "spike raster", T: int | None = None,
                  neuron_ids: np.ndarray | None = None) -> go.Figure:
    """raster [neurons, time] bool -> image (black = spike). T marks batch boundaries."""
    r = np.asarray(raster, dtype=bool)
    img = np.where(r, 0, 255).astype(np.uint8)                 # spikes dark on white
    fig = px.imshow(img, binary_string=True, aspect="auto", origin="upper")
    # image traces lock square pixels by default in plotly.js; let the raster fill the panel
    fig.update_yaxes(scaleanchor=False)
    fig.update_xaxes(scaleanchor=False)
    fig.update_traces(hovertemplate="t=%{x}  neuron row=%{y}<extra></extra>")
    fig.update_layout(**{**LAYOUT, "height": 320}, title=title,
                      shapes=_boundaries(T, r.shape[1]))
    fig.update_xaxes(title_text="time step (recent samples side by side)" if T and r.shape[1] > T else "time step")
    fig.update_yaxes(title_text=f"neuron ({r.shape[0]} kept)")
    return fig


def lines_figure(df: pd.DataFrame, columns: list[str], *, title: str, ytitle: str,
                 xtitle: str = "optimizer step", mode: str = "lines", smooth: int = 0) -> go.Figure:
    """One trace per column of a step-indexed frame (NaNs skipped, so sparse columns connect)."""
    fig = go.Figure()
    for c in columns:
        if c not in df:
            continue
        s = df[c].dropna()
        if smooth and len(s) > smooth:
            s = s.rolling(smooth, min_periods=1).mean()
        fig.add_trace(go.Scatter(x=s.index, y=s.values, name=c, mode=mode if len(s) > 1 else "markers"))
    fig.update_layout(**LAYOUT, title=title)
    fig.update_xaxes(title_text=xtitle)
    fig.update_yaxes(title_text=ytitle)
    return fig


def rate_figure(rate: np.ndarray, *, T: int | None = None, title: str = "population rate") -> go.Figure:
    rate = np.asarray(rate, dtype=float)
    fig = go.Figure(go.Scatter(x=np.arange(rate.size), y=rate, mode="lines", name="rate", line_shape="hv"))
    fig.update_layout(**LAYOUT, title=title, showlegend=False, shapes=_boundaries(T, rate.size))
    fig.update_xaxes(title_text="time step")
    fig.update_yaxes(title_text="spikes / neuron / step", rangemode="tozero")
    return fig


# series drawn in another group's chart: IP2's task loss differs from its total loss by small
# regularisers (two charts showed the same curve), and sigma_h is the target of mean u²
TELEMETRY_JOIN = {"l_task": "loss", "sigma_h": "mean_u2"}


def telemetry_groups(df: pd.DataFrame) -> dict[str, list[str]]:
    """Group telemetry columns by the part before '/': {'sync': ['sync/fc1', 'sync/out'], ...};
    a group of TELEMETRY_JOIN goes into its partner's chart when the partner is there."""
    groups: dict[str, list[str]] = {}
    for c in df.columns:
        groups.setdefault(str(c).split("/")[0], []).append(c)
    for g, into in TELEMETRY_JOIN.items():
        if g in groups and into in groups:
            groups[into] += groups.pop(g)
    return groups


TELEMETRY_TITLES = {
    "sync": ("synchrony S per plastic layer", "S (co-firing share)"),
    "dw": ("|dW| of the local update", "mean |dW|"),
    "dw_ratio": ("|dW| / |optimizer step|", "ratio"),
    "potentiated": ("share of pairs potentiated", "share"),
    "depressed": ("share of pairs depressed", "share"),
    "silent": ("share of silent neurons", "share"),
    "rate": ("firing rate", "spikes / neuron / step"),
    "gate_mean": ("dopamine gate (mean over batch)", "g"),
    "k": ("gate slope k (frozen after warm-up)", "k"),
    "loss": ("loss per update (total L and task loss L_task)", "loss"),
    "mean_u2": ("mean u² with its target sigma_h (rule telemetry)", "u²"),
}


def telemetry_figure(df: pd.DataFrame, group: str, columns: list[str]) -> go.Figure:
    title, ytitle = TELEMETRY_TITLES.get(group, (group, group))
    fig = lines_figure(df, columns, title=title, ytitle=ytitle)
    if group in ("dw", "dw_ratio") and (df[columns].dropna(how="all") > 0).any().any():
        vals, text = log_ticks(df[columns].to_numpy(dtype=float))
        fig.update_yaxes(type="log", tickmode="array", tickvals=vals, ticktext=text)
    return fig


def _tick_label(v: float) -> str:
    """2e-3 style for small and large values, plain otherwise: every label a whole number."""
    m, e = f"{v:.0e}".split("e")
    e = int(e)
    return f"{m}e{e}" if abs(e) >= 3 else f"{v:g}"


def log_ticks(values) -> tuple[list[float], list[str]]:
    """Tick positions and full labels for a log axis over the positive values: 1-2-5 per decade
    when the data span at most two decades, else one per decade. plotly's own labels on a narrow
    log range are bare mantissas ('2', '5') between decades ('0.001'), read as '2, 0.001, 5'."""
    v = np.asarray(values, dtype=float).reshape(-1)
    v = v[np.isfinite(v) & (v > 0)]
    if not v.size:
        return [], []
    lo, hi = np.floor(np.log10(v.min())), np.ceil(np.log10(v.max()))
    hi = max(hi, lo + 1)
    mant = (1, 2, 5) if hi - lo <= 2 else (1,)
    ticks = [m * 10.0 ** e for e in range(int(lo), int(hi) + 1) for m in mant]
    ticks = [t for t in ticks if t <= 10.0 ** hi]
    return ticks, [_tick_label(t) for t in ticks]


L2L_LABELLED = 30       # tasks up to which each dot carries its count
L2L_MIN_R2 = 0.5        # below this the exponential explains too little of the spread to quote tau


def l2l_fit_verdict(iterations, fit) -> str | None:
    """Why the fit a exp(-k/tau) + c (over tasks k = 2..n, as ip2.l2l_fit fits it) is not meaningful,
    or None when it is. Not meaningful: no fit (too few tasks after the first, or a flat curve), a
    fit that does not fall (a <= 0), a time constant past the tasks seen (tau > n: the curve is
    then a straight line extrapolated, its c far off), a negative asymptote c (updates cannot
    be negative), or R^2 below L2L_MIN_R2 on the tasks fitted."""
    it = np.asarray(iterations, dtype=float).reshape(-1)
    if fit is None or len(fit) != 3 or not all(np.isfinite(v) for v in fit):
        return "no fit: too few tasks after the first, or all equal"
    a, tau, c = (float(v) for v in fit)
    k = np.arange(1, it.size + 1, dtype=float)[1:]
    y = it[1:]
    ok = np.isfinite(y)
    k, y = k[ok], y[ok]
    if y.size < 3:
        return "no fit: too few tasks after the first"
    if a <= 0:
        return "no speed-up to fit (the fitted curve does not fall)"
    if tau > it.size:
        return f"tau {tau:.0f} is beyond the {it.size} tasks seen"
    if c < 0:
        return f"negative asymptote c = {c:.0f} (updates cannot be negative)"
    resid = y - (a * np.exp(-k / tau) + c)
    sst = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(resid ** 2)) / sst if sst > 0 else 0.0
    if r2 < L2L_MIN_R2:
        return f"poor fit (R² = {r2:.2f})"
    return None


def l2l_figure(iterations: list[float], failed: list[bool] | None = None, fit: tuple | None = None,
               title: str = "learning to learn: updates to criterion per task") -> go.Figure:
    """Iterations-to-criterion per task (dots), a 5-task moving mean, failures as red x marks,
    and the fit a exp(-k/tau) + c over tasks 2..end when given and meaningful
    (l2l_fit_verdict); a fit that is not is named so in the panel, its numbers not printed."""
    it = np.asarray(iterations, dtype=float)
    k = np.arange(1, it.size + 1)
    # a few tasks: each count written at its dot (the numbers the IP2 lessons quote)
    fig = go.Figure(go.Scatter(x=k, y=it, mode="markers+text" if it.size <= L2L_LABELLED else "markers",
                               name="per task", text=[f"{v:.0f}" if v == v else "" for v in it],
                               textposition="top center", textfont=dict(size=10)))
    if it.size >= 2:
        mm = pd.Series(it).rolling(5, min_periods=1).mean()
        fig.add_trace(go.Scatter(x=k, y=mm, mode="lines", name="moving mean (5)"))
    if failed is not None and any(failed):
        f = np.asarray(failed, dtype=bool)
        fig.add_trace(go.Scatter(x=k[f], y=it[f], mode="markers", name="failed",
                                 marker=dict(color="#d62728", symbol="x", size=10)))
    if fit is not None:
        why = l2l_fit_verdict(it, fit)
        if why is None:
            a, tau, c = fit
            kk = np.linspace(2, max(2, it.size), 100)
            fig.add_trace(go.Scatter(x=kk, y=a * np.exp(-kk / tau) + c, mode="lines", line_dash="dash",
                                     name=f"fit: tau {tau:.1f} tasks, c {c:.0f}"))
        elif it.size >= 2:
            fig.add_annotation(text=f"exponential fit not meaningful: {why}", xref="paper", yref="paper",
                               x=0.99, y=0.98, xanchor="right", yanchor="top", showarrow=False,
                               font=dict(size=11), bgcolor="rgba(255,255,255,0.75)")
    fig.update_layout(**LAYOUT, title=title)
    fig.update_xaxes(title_text="task")
    fig.update_yaxes(title_text="updates to criterion", rangemode="tozero")
    top = float(np.nanmax(it)) if it.size and np.isfinite(it).any() else 0.0
    if 0 < it.size <= L2L_LABELLED and top > 0:      # head room for the count written above the top dot
        fig.update_yaxes(range=[0, top * 1.15])
    return fig
