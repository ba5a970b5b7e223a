"""Rule-specific figure builders: data in, plotly Figure out (numpy arrays from the rule's
``arrays()`` as saved in each snapshot, or the telemetry frame). Pure functions: no streamlit, no
store, so the app, notebooks and tests call the same code.

    weight_hist_figure      weight histogram over time (snapshot step x weight bin)    stdp, rstdp
    stdp_window_figure      the STDP learning window dW(dt)                            stdp, rstdp
    pattern_weights_figure  mean weight from pattern vs noise channels, neurons preferring  stdp, rstdp
    ssdp_kernel_figure      the SSDP kernel G(dt)                                      ssdp, da_ssdp
    latency_figure          first-spike latencies of a layer's pre and post neurons    ssdp, da_ssdp
    ssdp_raster_figure      one sample's pre and post raster with first-spike markers  ssdp, da_ssdp
    sync_loss_figure        DA-SSDP warm-up: synchrony S vs loss L with the fitted line
    gate_hist_figure        DA-SSDP gate values, with the share clipped at 0 or 2
    assignment_figure       MPS shares K x N, neurons sorted by dominant mechanism
    shares_area_figure      MPS layer-mean shares over time (stacked area)
    simplex_figure          MPS shares as points in the mechanism triangle (ternary), with paths
    currents_figure         MPS per-mechanism input currents A_k C_k of a few neurons over T
    intrinsic_hist_figure   IP2 intrinsic property across neurons at a few tasks
    pilot_scores_figure     IP2 slow level: pilot score per candidate mask
    trial_traces_figure     IP2 one trial: u and d of a few neurons
    trial_readout_figure    IP2 one trial: softmax read-out against the target channels
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import LAYOUT, SHARE_COLORSCALE

__all__ = ["weight_hist_figure", "stdp_window_figure", "ssdp_kernel_figure", "latency_figure",
           "ssdp_raster_figure", "spike_markers", "sync_loss_figure", "gate_hist_figure",
           "assignment_figure", "pattern_weights_figure", "pattern_preference", "shares_area_figure", "simplex_figure", "simplex_points",
           "currents_figure", "intrinsic_hist_figure", "pilot_scores_figure", "trial_traces_figure",
           "trial_readout_figure", "share_columns", "fit_line", "rebin"]


def _finish(fig: go.Figure, title: str, xtitle: str, ytitle: str, **layout) -> go.Figure:
    fig.update_layout(**{**LAYOUT, **layout}, title=title)
    fig.update_xaxes(title_text=xtitle)
    fig.update_yaxes(title_text=ytitle)
    return fig


def _note(fig: go.Figure, text: str) -> None:
    """A one-line note in the panel's top-left corner (inside the plot area)."""
    fig.add_annotation(text=text, xref="paper", yref="paper", x=0.01, y=0.98, xanchor="left",
                       yanchor="top", showarrow=False, font=dict(size=11),
                       bgcolor="rgba(255,255,255,0.75)")


# ------------------------------------------------------------------------------- stdp / rstdp
def rebin(counts: np.ndarray, edges: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Counts over ``edges`` moved onto the common ``grid`` of edges, so snapshots binned over
    different ranges share one axis: each bin's count is spread uniformly over its width and split
    by overlap (linear interpolation of the cumulative count); the total is kept."""
    counts = np.asarray(counts, dtype=float).reshape(-1)
    edges = np.asarray(edges, dtype=float).reshape(-1)
    grid = np.asarray(grid, dtype=float).reshape(-1)
    if edges.size != counts.size + 1 or not np.all(np.diff(edges) > 0):   # degenerate: by centre
        centre = float(np.mean(edges)) if edges.size else 0.0
        out = np.zeros(grid.size - 1)
        out[int(np.clip(np.searchsorted(grid, centre, side="right") - 1, 0, out.size - 1))] = counts.sum()
        return out
    cdf = np.concatenate([[0.0], np.cumsum(counts)])
    return np.diff(np.interp(grid, edges, cdf))


def weight_hist_figure(steps: Sequence[int], counts: Sequence[np.ndarray],
                       edges: Sequence[np.ndarray], *, layer: str = "", bins: int = 40) -> go.Figure:
    """Heatmap of the weight distribution over time: x = snapshot step, y = weight, colour = share
    of the layer's weights in that bin. Each snapshot's (counts [n], edges [n+1]) may span its own
    range; all are rebinned onto ``bins`` bins over the union of the ranges."""
    steps = [int(s) for s in steps]
    fig = go.Figure()
    title = "weight histogram over time" + (f" · {layer}" if layer else "")
    if steps and len(steps) == len(counts) == len(edges):
        lo = min(float(np.min(e)) for e in edges)
        hi = max(float(np.max(e)) for e in edges)
        if not hi > lo:
            lo, hi = lo - 0.5, hi + 0.5
        grid = np.linspace(lo, hi, bins + 1)
        z = np.stack([rebin(c, e, grid) for c, e in zip(counts, edges)], axis=1)   # [bins, snapshots]
        z = z / np.maximum(z.sum(0, keepdims=True), 1)
        centres = (grid[:-1] + grid[1:]) / 2
        fig.add_trace(go.Heatmap(x=steps, y=centres, z=z, colorscale="Viridis", zmin=0,
                                 colorbar=dict(title="share", thickness=12),
                                 hovertemplate="step %{x}<br>w ≈ %{y:.4g}<br>share %{z:.3f}<extra></extra>"))
        if len(steps) == 1:     # one column: give it a visible width
            fig.update_xaxes(range=[steps[0] - 0.5, steps[0] + 0.5])
    return _finish(fig, title, "optimizer step (snapshot)", "weight", showlegend=False)


def stdp_window_figure(dt: np.ndarray, dw: np.ndarray, *, title: str = "STDP learning window",
                       ytitle: str = "dW of one spike pair") -> go.Figure:
    """dW(dt) for one pre/post pair, dt = t_post - t_pre: potentiation right, depression left."""
    dt = np.asarray(dt, dtype=float).reshape(-1)
    dw = np.asarray(dw, dtype=float).reshape(-1)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=dt, y=np.where(dw >= 0, dw, np.nan), mode="lines+markers",
                             name="LTP: pre → post", line=dict(color="#2ca02c")))
    fig.add_trace(go.Scatter(x=dt, y=np.where(dw <= 0, dw, np.nan), mode="lines+markers",
                             name="LTD: post → pre", line=dict(color="#d62728")))
    fig.add_hline(y=0, line_width=1, line_color="#888")
    fig.add_vline(x=0, line_width=1, line_dash="dot", line_color="#888")
    return _finish(fig, title, "dt = t_post − t_pre (steps)", ytitle)


def pattern_preference(W: np.ndarray, pattern: np.ndarray) -> tuple[float, float, int, int]:
    """(mean weight from pattern channels, mean from the others, neurons whose mean weight from
    pattern channels exceeds their mean from the others, neurons) of W [post, pre] and the
    bool mask ``pattern`` [pre]."""
    W = np.asarray(W, dtype=float)
    m = np.asarray(pattern, dtype=bool).reshape(-1)
    if W.ndim != 2 or W.shape[1] != m.size or not m.any() or m.all():
        raise ValueError(f"W [post, pre] {W.shape} needs a mask of {W.shape[-1]} channels with both groups")
    wp, wn = W[:, m].mean(1), W[:, ~m].mean(1)
    return float(W[:, m].mean()), float(W[:, ~m].mean()), int((wp > wn).sum()), int(W.shape[0])


def pattern_weights_figure(steps: Sequence[int], weights: Sequence[np.ndarray], pattern: np.ndarray, *,
                           layer: str = "", pattern_name: str = "pattern channels",
                           noise_name: str = "noise channels") -> go.Figure:
    """Mean weight from the pattern channels and from the noise channels over the snapshots
    (weights [post, pre] each), and, for the newest, how many post neurons prefer the pattern
    (their mean weight from pattern channels above that from noise channels)."""
    steps = [int(s) for s in steps]
    rows = [pattern_preference(W, pattern) for W in weights]
    fig = go.Figure()
    if rows:
        P, N, pref, n = zip(*rows)
        fig.add_trace(go.Scatter(x=steps, y=P, mode="lines+markers", name=pattern_name,
                                 line=dict(color="#2ca02c")))
        fig.add_trace(go.Scatter(x=steps, y=N, mode="lines+markers", name=noise_name,
                                 line=dict(color="#7f7f7f")))
        fig.add_trace(go.Scatter(x=steps, y=pref, mode="lines+markers", name="neurons preferring the pattern",
                                 yaxis="y2", line=dict(color="#9467bd", dash="dot")))
        # bottom right: the weights grow from the bottom left, so the note covers no data there
        fig.add_annotation(text=f"step {steps[-1]}: mean w {P[-1]:.3f} from pattern vs {N[-1]:.3f} from noise "
                                f"channels<br>{pref[-1]} of {n[-1]} neurons prefer the pattern",
                           xref="paper", yref="paper", x=0.99, y=0.03, xanchor="right", yanchor="bottom",
                           align="right", showarrow=False, font=dict(size=11), bgcolor="rgba(255,255,255,0.8)")
    title = "pattern vs noise channels" + (f" · {layer}" if layer else "")
    fig = _finish(fig, title, "optimizer step (snapshot)", "mean weight", margin=dict(l=60, r=60, t=70, b=45))
    if rows:       # after _finish: its update_yaxes would retitle this axis too
        ticks = sorted({int(round(n[-1] * q)) for q in (0, 0.25, 0.5, 0.75, 1)})
        fig.update_layout(yaxis2=dict(title=dict(text="neurons preferring"), overlaying="y", side="right",
                                      range=[0, n[-1] * 1.05], showgrid=False, tickmode="array", tickvals=ticks))
    return fig


# ------------------------------------------------------------------------------- ssdp / da_ssdp
def ssdp_kernel_figure(dt: np.ndarray, g: np.ndarray, *, sigma: float | None = None) -> go.Figure:
    """The synchrony kernel G(dt) = exp(-dt^2 / 2 sigma^2) over the latency gaps of the window."""
    dt = np.asarray(dt, dtype=float).reshape(-1)
    g = np.asarray(g, dtype=float).reshape(-1)
    fig = go.Figure(go.Scatter(x=dt, y=g, mode="lines+markers", name="G(dt)"))
    title = "SSDP kernel G(dt)" + (f" · sigma = {sigma:g} steps" if sigma is not None else "")
    fig = _finish(fig, title, "|dt| = |tau_post − tau_pre| (steps)", "G(dt)", showlegend=False)
    fig.update_yaxes(range=[0, 1.05])
    return fig


def latency_figure(lat_pre: np.ndarray, lat_post: np.ndarray, T: int, *, layer: str = "") -> go.Figure:
    """Share of (sample, neuron) entries of lat [samples, neurons] per spike latency 0..T-1 (T = silent), pre and post side by
    side: where in the window the layer's inputs and outputs fire."""
    T = int(T)
    labels = [str(t) for t in range(T)] + ["silent"]
    fig = go.Figure()
    for name, lat in (("pre", lat_pre), ("post", lat_post)):
        lat = np.asarray(lat)
        # [samples, neurons] as the rules save it: say both counts, not a bare product
        size = (f"{lat.shape[1]} neurons × {lat.shape[0]} samples" if lat.ndim == 2
                else f"{lat.size} neurons × samples")
        lat = lat.reshape(-1)
        n = np.bincount(np.clip(lat, 0, T).astype(np.int64), minlength=T + 1)[:T + 1]
        fig.add_trace(go.Bar(x=labels, y=n / max(lat.size, 1), name=f"{name} ({size})"))
    title = "first-spike latency" + (f" · {layer}" if layer else "")
    fig = _finish(fig, title, "spike latency (time step; 'silent' = no spike)", "share of neurons × samples",
                  barmode="group")
    fig.update_xaxes(type="category")
    return fig


def spike_markers(raster: np.ndarray, latency: str = "first") -> tuple[np.ndarray, np.ndarray]:
    """(rows, times) of each row's first (or last) spike in a [neurons, T] raster; silent rows are
    left out. The latency SSDP reads off each neuron of a sample."""
    r = np.asarray(raster, dtype=bool)
    if r.ndim != 2:
        raise ValueError(f"raster must be [neurons, T], got shape {r.shape}")
    rows = np.flatnonzero(r.any(1))
    if latency == "first":
        t = r[rows].argmax(1)
    elif latency == "last":
        t = r.shape[1] - 1 - r[rows, ::-1].argmax(1)
    else:
        raise ValueError(f"latency {latency!r} is not allowed (choose from first, last)")
    return rows, t


def ssdp_raster_figure(pre: np.ndarray, post: np.ndarray, *, pre_ids: np.ndarray | None = None,
                       post_ids: np.ndarray | None = None, latency: str = "first",
                       layer: str = "") -> go.Figure:
    """One sample's spikes entering a plastic layer (pre, top) and of the neurons it drives (post,
    bottom), rasters [neurons, T]; each neuron's first spike (the latency SSDP uses; the last with
    latency='last') is ringed in red. Silent neurons have no marker (latency T)."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("pre (input to W)", "post (driven by W)"))
    T = 0
    sides = (("pre", np.asarray(pre, dtype=bool), pre_ids), ("post", np.asarray(post, dtype=bool), post_ids))
    # plotly drops legend entries of empty traces: the legend goes with the first row that has spikes
    legend_row = next((i for i, (_, r, _) in enumerate(sides, start=1) if r.any()), 1)
    for row, (side, r, ids) in enumerate(sides, start=1):
        rows, ts = spike_markers(r, latency)          # checks the shape [neurons, T]
        T = max(T, r.shape[1])
        ids = np.arange(r.shape[0]) if ids is None else np.asarray(ids).reshape(-1)
        n, t = np.nonzero(r)
        fig.add_trace(go.Scatter(x=t, y=ids[n], mode="markers", name="spikes", showlegend=row == legend_row,
                                 legendgroup="spikes",
                                 marker=dict(symbol="line-ns-open", size=7, color="#222", line_width=1.5),
                                 hovertemplate=f"{side} neuron " + "%{y}  t=%{x}<extra></extra>"),
                      row=row, col=1)
        fig.add_trace(go.Scatter(x=ts, y=ids[rows], mode="markers", name=f"{latency} spike",
                                 showlegend=row == legend_row, legendgroup="first",
                                 marker=dict(symbol="circle-open", size=10, color="#d62728", line_width=2),
                                 hovertemplate=f"{side} neuron " + "%{y}: " + latency + " spike at t=%{x}<extra></extra>"),
                      row=row, col=1)
        lo, hi = (float(ids.min()), float(ids.max())) if ids.size else (0.0, 0.0)
        fig.update_yaxes(title_text=f"{side} neuron", range=[lo - 0.5 - 0.02 * (hi - lo), hi + 0.5 + 0.02 * (hi - lo)],
                         row=row, col=1)
        fig.layout.annotations[row - 1].text = (f"{side} ({'input to' if side == 'pre' else 'driven by'} W): "
                                                f"{rows.size} of {r.shape[0]} shown fired")
    title = f"raster with {latency}-spike markers (one sample)" + (f" · {layer}" if layer else "")
    fig.update_layout(**{**LAYOUT, "height": 480, "margin": dict(l=60, r=15, t=95, b=45),
                         "legend": {**LAYOUT["legend"], "y": 1.07}}, title=title)
    fig.update_xaxes(range=[-0.5, max(T, 1) - 0.5])
    fig.update_xaxes(title_text="time step", row=2, col=1)
    return fig


def fit_line(S: np.ndarray, L: np.ndarray, k: float | None = None, mu: float | None = None,
             sd: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Two points of the regression line of L on S. With the fitted (k, mu, sd): k = -r(S, L), so
    L = mean L - k * std L / sd * (S - mu); without them: least squares on the points."""
    S = np.asarray(S, dtype=float).reshape(-1)
    L = np.asarray(L, dtype=float).reshape(-1)
    if S.size == 0:
        return np.zeros(0), np.zeros(0)
    xs = np.array([S.min(), S.max()])
    if k is not None and mu is not None and sd:
        return xs, L.mean() - k * L.std() / sd * (xs - mu)
    sS, sL = S.std(), L.std()
    r = float(np.mean((S - S.mean()) * (L - L.mean())) / (sS * sL)) if sS > 0 and sL > 0 else 0.0
    slope = r * sL / sS if sS > 0 else 0.0
    return xs, L.mean() + slope * (xs - S.mean())


def sync_loss_figure(S: np.ndarray, L: np.ndarray, *, k: float | None = None, mu: float | None = None,
                     sd: float | None = None, layer: str = "") -> go.Figure:
    """DA-SSDP warm-up record: each point a sample (synchrony S, training loss L), with the line of
    the fit (k = minus Pearson's r) and the k / mu / sd annotation once fitted; before the fit, the
    running least-squares line and r."""
    S = np.asarray(S, dtype=float).reshape(-1)
    L = np.asarray(L, dtype=float).reshape(-1)
    n = min(S.size, L.size)
    S, L = S[:n], L[:n]
    fig = go.Figure()
    fig.add_trace(go.Scattergl(x=S, y=L, mode="markers", name=f"warm-up samples ({n})",
                               marker=dict(size=5, opacity=0.5)))
    fitted = k is not None and mu is not None and sd is not None
    xs, ys = fit_line(S, L, k, mu, sd) if fitted else fit_line(S, L)
    if xs.size:
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="fit" if fitted else "running fit",
                                 line=dict(color="#d62728", width=2)))
    if fitted:
        _note(fig, f"k = {k:.3f} · mu = {mu:.4g} · sd = {sd:.3g}")
    elif n > 1 and S.std() > 0 and L.std() > 0:
        r = float(np.corrcoef(S, L)[0, 1])
        _note(fig, f"running r(S, L) = {r:.3f} (k will be {-r:.3f})")
    title = "synchrony vs loss (warm-up)" + (f" · {layer}" if layer else "")
    return _finish(fig, title, "synchrony S (co-firing share)", "training loss L")


GATE_MAX = 2.0          # the gate's clip range is [0, GATE_MAX] (ALGORITHMS_SSDP.md)


def gate_hist_figure(g: np.ndarray, *, layer: str = "", bins: int = 40) -> go.Figure:
    """Histogram of the gate values g in [0, 2] of the last batch over the full clip range; the
    share at each clip value is in the title and, where most gates sit at a clip, said in words
    inside the panel. Binned here (np.histogram closes its last bin on the right), so a gate at
    exactly 2 falls in the last bar and not past the axis."""
    g = np.asarray(g, dtype=float).reshape(-1)
    g = g[np.isfinite(g)]
    counts, edges = np.histogram(np.clip(g, 0.0, GATE_MAX), bins=bins, range=(0.0, GATE_MAX))
    centres = (edges[:-1] + edges[1:]) / 2
    fig = go.Figure(go.Bar(x=centres, y=counts, width=float(edges[1] - edges[0]), name="gate",
                           marker_color="#9467bd", marker_line_width=0,
                           hovertemplate="g in [%{customdata[0]:.2f}, %{customdata[1]:.2f}]: %{y}<extra></extra>",
                           customdata=np.stack([edges[:-1], edges[1:]], 1)))
    fig.add_vline(x=1.0, line_width=1, line_dash="dot", line_color="#888")
    n = g.size
    at_lo = float(np.mean(g <= 0)) if n else 0.0
    at_hi = float(np.mean(g >= GATE_MAX)) if n else 0.0
    title = (f"dopamine gate g" + (f" · {layer}" if layer else "")
             + f" · clipped at 0 or 2: {at_lo + at_hi:.0%}")
    fig = _finish(fig, title, "gate g (1 = plain SSDP; clipped to [0, 2])", "samples (last batch)",
                  showlegend=False, bargap=0)
    fig.update_xaxes(range=[-0.05, GATE_MAX + 0.05])
    if n and at_hi >= 0.5:
        _note(fig, f"saturated: {at_hi:.0%} of the gates sit at the clip 2 (update at double strength)")
    elif n and at_lo >= 0.5:
        _note(fig, f"saturated: {at_lo:.0%} of the gates sit at the clip 0 (update switched off)")
    return fig


# ------------------------------------------------------------------------------- mps
def assignment_figure(A: np.ndarray, mechanisms: Sequence[str], *, layer: str = "") -> go.Figure:
    """Shares A [K, N] as a heatmap, neurons sorted by their dominant mechanism (then by that
    share, largest first); colour 0..1."""
    A = np.asarray(A, dtype=float)
    if A.ndim == 1:
        A = A[:, None]
    mech = [str(m) for m in mechanisms][:A.shape[0]]
    mech += [f"mech {i}" for i in range(len(mech), A.shape[0])]
    if A.size:
        dom = A.argmax(0)
        order = np.lexsort((-A.max(0), dom))
        A = A[:, order]
        counts = np.bincount(dom, minlength=A.shape[0])
    else:
        counts = np.zeros(A.shape[0], dtype=int)
    fig = go.Figure(go.Heatmap(z=A, y=mech, x=np.arange(A.shape[1]), zmin=0, zmax=1, colorscale=SHARE_COLORSCALE,
                               colorbar=dict(title="share", thickness=12),
                               hovertemplate="%{y}<br>neuron rank %{x}<br>share %{z:.3f}<extra></extra>"))
    title = "mechanism assignment" + (f" · {layer}" if layer else "")
    xtitle = "neuron, sorted by dominant mechanism (" + ", ".join(f"{m} {c}" for m, c in zip(mech, counts)) + ")"
    fig = _finish(fig, title, xtitle, "mechanism", showlegend=False)
    fig.update_yaxes(autorange="reversed")      # mechanisms top-down in their saved order
    return fig


def share_columns(tel: pd.DataFrame, layer: str) -> dict[str, str]:
    """{mechanism: column} of the telemetry columns share_<mech>/<layer>."""
    out = {}
    for c in getattr(tel, "columns", []):
        c = str(c)
        if c.startswith("share_") and c.endswith(f"/{layer}"):
            out[c[len("share_"):-len(layer) - 1]] = c
    return out


def shares_area_figure(tel: pd.DataFrame, layer: str,
                       mechanisms: Sequence[str] | None = None) -> go.Figure:
    """Layer-mean share of each mechanism over the optimizer steps, stacked to 1."""
    cols = share_columns(tel, layer)
    order = [m for m in (mechanisms or []) if m in cols] + [m for m in cols if m not in (mechanisms or [])]
    fig = go.Figure()
    for m in order:
        s = tel[cols[m]].dropna()
        fig.add_trace(go.Scatter(x=s.index, y=s.values, name=m, mode="lines", stackgroup="shares",
                                 hovertemplate=f"{m}: " + "%{y:.3f}<extra></extra>"))
    title = "layer-mean shares over time" + (f" · {layer}" if layer else "")
    fig = _finish(fig, title, "optimizer step", "layer-mean share")
    fig.update_yaxes(range=[0, 1.0])
    ends = {m: tel[cols[m]].dropna() for m in order}
    ends = {m: s for m, s in ends.items() if len(s)}
    if ends:     # the numbers a lesson quotes: a stacked area shows them only as differences
        first = " · ".join(f"{m} {s.iloc[0]:.2f}" for m, s in ends.items())
        last = " · ".join(f"{m} {s.iloc[-1]:.2f}" for m, s in ends.items())
        step0 = min(int(s.index[0]) for s in ends.values())
        step1 = max(int(s.index[-1]) for s in ends.values())
        _note(fig, f"step {step0}: {first}<br>step {step1}: {last}")
    return fig


def simplex_points(A: np.ndarray) -> np.ndarray:
    """Shares A [K, N] (K = 2 or 3) as ternary coordinates [3, N], each column summing to 1 (a
    two-mechanism layer lies on the edge between its two corners)."""
    A = np.asarray(A, dtype=float)
    if A.ndim == 1:
        A = A[:, None]
    if A.shape[0] not in (2, 3):
        raise ValueError(f"the mechanism triangle needs 2 or 3 mechanisms, got {A.shape[0]}")
    if A.shape[0] == 2:
        A = np.vstack([A, np.zeros((1, A.shape[1]))])
    return A / np.maximum(A.sum(0, keepdims=True), 1e-12)


def simplex_figure(A: np.ndarray, mechanisms: Sequence[str], *, layer: str = "",
                   history: Sequence[tuple[int, np.ndarray]] = (), trails: int = 8) -> go.Figure:
    """Each neuron's shares over the (2 or 3) mechanisms as a point in the triangle (a corner =
    all weight on that mechanism, the centre = equal shares), coloured by its dominant mechanism.
    With ``history`` [(step, A)] of two or more snapshots, oldest first: the layer-mean path over
    time and the paths of up to ``trails`` evenly spaced neurons."""
    A = np.asarray(A, dtype=float)
    A = A[:, None] if A.ndim == 1 else A
    P = simplex_points(A)
    K = A.shape[0]
    mech = [str(m) for m in mechanisms][:K] + [f"mech {i}" for i in range(len(mechanisms), K)]
    labels = mech + [""] * (3 - len(mech))
    N = P.shape[1]
    fig = go.Figure()
    hist = [(int(s), simplex_points(a)) for s, a in history if np.shape(a)[-1:] == (N,)]
    if len(hist) >= 2:
        steps = [s for s, _ in hist]
        H = np.stack([h for _, h in hist])                                    # [S, 3, N]
        picks = np.unique(np.linspace(0, N - 1, min(trails, N)).round().astype(int)) if trails > 0 else []
        for i, j in enumerate(picks):
            fig.add_trace(go.Scatterternary(a=H[:, 0, j], b=H[:, 1, j], c=H[:, 2, j], mode="lines",
                                            line=dict(color="rgba(120,120,120,0.45)", width=1),
                                            name="neuron paths", legendgroup="trails",
                                            showlegend=i == 0, hoverinfo="skip"))
        m = H.mean(2)                                                         # [S, 3]
        fig.add_trace(go.Scatterternary(a=m[:, 0], b=m[:, 1], c=m[:, 2], mode="lines+markers",
                                        name="layer mean over time", line=dict(color="#111", width=2),
                                        marker=dict(size=6, symbol="diamond"), customdata=steps,
                                        hovertemplate="step %{customdata}<br>" + "<br>".join(
                                            f"{l}: %{{{ax}:.3f}}" for l, ax in zip(labels, "abc") if l)
                                        + "<extra></extra>"))
    dom = A.argmax(0) if N else np.zeros(0, dtype=int)
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c"]
    for k in range(min(K, 3)):
        sel = np.flatnonzero(dom == k)
        fig.add_trace(go.Scatterternary(a=P[0, sel], b=P[1, sel], c=P[2, sel], mode="markers",
                                        name=f"{mech[k]}-dominant ({sel.size})", customdata=sel,
                                        marker=dict(size=7, color=palette[k], opacity=0.75,
                                                    line=dict(width=0.5, color="white")),
                                        hovertemplate="neuron %{customdata}<br>" + "<br>".join(
                                            f"{l}: %{{{ax}:.3f}}" for l, ax in zip(labels, "abc") if l)
                                        + "<extra></extra>"))
    title = "mechanism triangle" + (f" · {layer}" if layer else "")
    fig.update_layout(**{**LAYOUT, "height": 460, "margin": dict(l=40, r=40, t=60, b=110),
                         "legend": dict(orientation="h", yanchor="top", y=-0.1, x=0, font=dict(size=11))},
                      title=title,
                      ternary=dict(sum=1, aaxis=dict(title=dict(text=labels[0]), min=0),
                                   baxis=dict(title=dict(text=labels[1]), min=0),
                                   caxis=dict(title=dict(text=labels[2]), min=0)))
    return fig


def currents_figure(curr: np.ndarray, mechanisms: Sequence[str], *, u: np.ndarray | None = None,
                    spikes: np.ndarray | None = None, bias: np.ndarray | None = None,
                    neurons: Sequence[int] | None = None, v_th: float | None = None,
                    layer: str = "") -> go.Figure:
    """What each mechanism feeds a few neurons over the T steps of one sample: curr [K, T, n] =
    A_k C_k (share times the mechanism's own current), one row per neuron, with the total input
    I = sum_k A_k C_k + b (dashed) and, when given, the membrane U [T, n] (grey; spikes as red
    ticks, ``v_th`` dotted)."""
    C = np.asarray(curr, dtype=float)
    if C.ndim != 3:
        raise ValueError(f"curr must be [K, T, neurons], got shape {C.shape}")
    K, T, n = C.shape
    mech = [str(m) for m in mechanisms][:K] + [f"mech {i}" for i in range(len(mechanisms), K)]
    ids = list(range(n)) if neurons is None else [int(i) for i in np.asarray(neurons).reshape(-1)]
    b = np.zeros(n) if bias is None else np.asarray(bias, dtype=float).reshape(-1)
    t = np.arange(T)
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"]
    fig = make_subplots(rows=max(n, 1), cols=1, shared_xaxes=True, vertical_spacing=0.04)
    for j in range(n):
        first = j == 0
        for k in range(K):
            fig.add_trace(go.Scatter(x=t, y=C[k, :, j], mode="lines", name=f"{mech[k]}: A·C",
                                     legendgroup=mech[k], showlegend=first, line=dict(color=palette[k % 6]),
                                     hovertemplate=f"{mech[k]} " + "t=%{x}: %{y:.3g}<extra></extra>"),
                          row=j + 1, col=1)
        fig.add_trace(go.Scatter(x=t, y=C[:, :, j].sum(0) + b[j], mode="lines", name="total I",
                                 legendgroup="I", showlegend=first, line=dict(color="#111", dash="dash")),
                      row=j + 1, col=1)
        if u is not None:
            uj = np.asarray(u, dtype=float)[:, j]
            fig.add_trace(go.Scatter(x=t, y=uj, mode="lines", name="membrane U", legendgroup="U",
                                     showlegend=first, line=dict(color="#999", width=1.5)), row=j + 1, col=1)
            if spikes is not None:
                st = np.flatnonzero(np.asarray(spikes, dtype=bool)[:, j])
                fig.add_trace(go.Scatter(x=st, y=uj[st], mode="markers", name="spike", legendgroup="S",
                                         showlegend=first, marker=dict(symbol="line-ns-open", size=10,
                                                                       color="#d62728", line_width=2)),
                              row=j + 1, col=1)
        fig.update_yaxes(title_text=f"neuron {ids[j]}", row=j + 1, col=1)
        if v_th is not None and T:      # a trace, not add_hline (~25 ms each in plotly)
            fig.add_trace(go.Scatter(x=[0, T - 1], y=[float(v_th)] * 2, mode="lines", name="V_th",
                                     legendgroup="vth", showlegend=first,
                                     line=dict(color="#888", dash="dot", width=1)), row=j + 1, col=1)
    title = "component currents (one sample)" + (f" · {layer}" if layer else "")
    fig.update_layout(**{**LAYOUT, "height": 170 + 120 * max(n, 1), "margin": dict(l=60, r=15, t=115, b=45)},
                      title=title)
    fig.update_xaxes(title_text="time step", row=max(n, 1), col=1)
    return fig


# ------------------------------------------------------------------------------- ip2

def intrinsic_hist_figure(values_by_task: list[tuple[int, np.ndarray]], prop: str) -> go.Figure:
    """Distribution of one intrinsic property across neurons at a few tasks (overlaid)."""
    fig = go.Figure()
    for task, v in values_by_task:
        fig.add_trace(go.Histogram(x=np.asarray(v, dtype=float), name=f"task {task}", opacity=0.6, nbinsx=30))
    unit = {"tau_d": "ms", "tau_s": "ms"}.get(prop, "")
    fig.update_layout(**LAYOUT, barmode="overlay", title=f"{prop} across neurons")
    fig.update_xaxes(title_text=f"{prop} {f'({unit})' if unit else ''}".strip())
    fig.update_yaxes(title_text="neurons")
    return fig


def pilot_scores_figure(masks: list[str], scores: list[float], chosen: str | None) -> go.Figure:
    """The slow level: pilot score per candidate mask (lower is better), the chosen one marked."""
    colors = ["#2ca02c" if m == chosen else "#9aa5b1" for m in masks]
    fig = go.Figure(go.Bar(x=list(masks), y=list(scores), marker_color=colors,
                           text=["chosen, frozen" if m == chosen else "" for m in masks], textposition="outside"))
    fig.update_layout(**LAYOUT, title="slow level: pilot score per candidate mask", showlegend=False)
    fig.update_xaxes(title_text="learnable intrinsic properties")
    fig.update_yaxes(title_text="mean updates to criterion (+ failures)")
    return fig


def _times(T: int, dt: float) -> np.ndarray:
    return np.arange(1, T + 1) * float(dt)


def trial_traces_figure(u: np.ndarray, d: np.ndarray, *, dt: float = 1.0, theta: np.ndarray | None = None,
                        neurons: Sequence[int] | None = None) -> go.Figure:
    """One trial of the current task: membrane u (solid) and the dendritic current d summed over
    branches (dashed) of a few neurons, u [n, T] and d [n, T]; each neuron's threshold theta
    dotted, in its colour."""
    U = np.asarray(u, dtype=float)
    D = np.asarray(d, dtype=float)
    U = U.reshape(1, -1) if U.ndim == 1 else U
    D = D.reshape(1, -1) if D.ndim == 1 else D
    n, T = U.shape
    ids = list(range(n)) if neurons is None else [int(i) for i in np.asarray(neurons).reshape(-1)]
    th = None if theta is None else np.asarray(theta, dtype=float).reshape(-1)
    t = _times(T, dt)
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b"]
    fig = go.Figure()
    for j in range(n):
        c = palette[j % len(palette)]
        fig.add_trace(go.Scatter(x=t, y=U[j], mode="lines", name=f"u · neuron {ids[j]}", line=dict(color=c),
                                 legendgroup=str(j)))
        if j < D.shape[0]:
            fig.add_trace(go.Scatter(x=t, y=D[j], mode="lines", name=f"d · neuron {ids[j]}",
                                     line=dict(color=c, dash="dash"), legendgroup=str(j), showlegend=False))
        if th is not None and j < th.size:
            fig.add_trace(go.Scatter(x=[t[0], t[-1]] if T else [], y=[th[j], th[j]] if T else [], mode="lines",
                                     name=f"theta · neuron {ids[j]}", line=dict(color=c, dash="dot", width=1),
                                     legendgroup=str(j), showlegend=False,
                                     hovertemplate=f"theta = {th[j]:.3g}<extra></extra>"))
    return _finish(fig, "one trial: u (solid), d (dashed), theta (dotted)", "time in trial (ms)", "u, d")


def trial_readout_figure(y: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None, *,
                         dt: float = 1.0) -> go.Figure:
    """One trial's read-out against its target: softmax over the output channels of y [O, T]
    (solid; channel 0 = fixation) and the target channel as a one-hot step (dashed, same colour);
    steps outside the loss (loss mask 0: the grace window) shaded grey."""
    Y = np.asarray(y, dtype=float)
    Y = Y.reshape(1, -1) if Y.ndim == 1 else Y
    O, T = Y.shape
    tgt = np.asarray(target).reshape(-1).astype(int)
    e = np.exp(Y - Y.max(0, keepdims=True))
    p = e / e.sum(0, keepdims=True)
    t = _times(T, dt)
    palette = ["#7f7f7f", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#bcbd22"]
    fig = go.Figure()
    for o in range(O):
        c = palette[o % len(palette)]
        name = "fixation" if o == 0 else f"response {o}"
        fig.add_trace(go.Scatter(x=t, y=p[o], mode="lines", name=f"p({name})", line=dict(color=c),
                                 legendgroup=str(o)))
        if (tgt == o).any():
            fig.add_trace(go.Scatter(x=t, y=(tgt[:T] == o).astype(float), mode="lines", line_shape="hv",
                                     name=f"target {name}", line=dict(color=c, dash="dash", width=1.5),
                                     legendgroup=str(o), showlegend=False))
    shapes = []
    if mask is not None:
        m = np.asarray(mask).reshape(-1)[:T].astype(bool)
        off = np.flatnonzero(~m)
        if off.size:      # contiguous runs of unscored steps, one rectangle each
            breaks = np.flatnonzero(np.diff(off) > 1)
            starts = np.r_[off[0], off[breaks + 1]]
            ends = np.r_[off[breaks], off[-1]]
            shapes = [dict(type="rect", xref="x", yref="paper", x0=t[a] - dt / 2, x1=t[b] + dt / 2, y0=0, y1=1,
                           fillcolor="rgba(150,150,150,0.2)", line_width=0, layer="below")
                      for a, b in zip(starts, ends)]
    fig = _finish(fig, "one trial: read-out softmax(y) (solid) vs target (dashed)",
                  "time in trial (ms); grey: not scored", "p / target", shapes=shapes)
    fig.update_yaxes(range=[-0.05, 1.05])
    return fig
