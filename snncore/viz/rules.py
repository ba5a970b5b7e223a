"""Rule-specific figure builders: data in, plotly Figure out (numpy arrays from the rule's
``arrays()`` as saved in each snapshot, or the telemetry frame). Pure functions: no streamlit, no
store, so the app, notebooks and tests call the same code.

    weight_hist_figure      weight histogram over time (snapshot step x weight bin)    stdp, rstdp
    stdp_window_figure      the STDP learning window dW(dt)                            stdp, rstdp
    ssdp_kernel_figure      the SSDP kernel G(dt)                                      ssdp, da_ssdp
    latency_figure          first-spike latencies of a layer's pre and post neurons    ssdp, da_ssdp
    sync_loss_figure        DA-SSDP warm-up: synchrony S vs loss L with the fitted line
    gate_hist_figure        DA-SSDP gate values, with the share clipped at 0 or 2
    assignment_figure       MPS shares K x N, neurons sorted by dominant mechanism
    shares_area_figure      MPS layer-mean shares over time (stacked area)
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from . import LAYOUT

__all__ = ["weight_hist_figure", "stdp_window_figure", "ssdp_kernel_figure", "latency_figure",
           "sync_loss_figure", "gate_hist_figure", "assignment_figure", "shares_area_figure",
           "share_columns", "fit_line", "rebin"]


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
    """Share of (sample, neuron) pairs per spike latency 0..T-1 (T = silent), pre and post side by
    side: where in the window the layer's inputs and outputs fire."""
    T = int(T)
    labels = [str(t) for t in range(T)] + ["silent"]
    fig = go.Figure()
    for name, lat in (("pre", lat_pre), ("post", lat_post)):
        lat = np.asarray(lat).reshape(-1)
        n = np.bincount(np.clip(lat, 0, T).astype(np.int64), minlength=T + 1)[:T + 1]
        fig.add_trace(go.Bar(x=labels, y=n / max(lat.size, 1), name=f"{name} ({lat.size} pairs)"))
    title = "first-spike latency" + (f" · {layer}" if layer else "")
    fig = _finish(fig, title, "spike latency (time step; 'silent' = no spike)", "share of neurons × samples",
                  barmode="group")
    fig.update_xaxes(type="category")
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


def gate_hist_figure(g: np.ndarray, *, layer: str = "", bins: int = 40) -> go.Figure:
    """Histogram of the gate values g in [0, 2] of the last batch, with the share clipped at 0 or 2
    (where the gate saturates) in the title."""
    g = np.asarray(g, dtype=float).reshape(-1)
    clipped = float(np.mean((g <= 0) | (g >= 2))) if g.size else 0.0
    fig = go.Figure(go.Histogram(x=g, xbins=dict(start=0.0, end=2.0 + 1e-9, size=2.0 / bins),
                                 name="gate", marker_color="#9467bd"))
    fig.add_vline(x=1.0, line_width=1, line_dash="dot", line_color="#888")
    title = (f"dopamine gate g" + (f" · {layer}" if layer else "")
             + f" · clipped at 0 or 2: {clipped:.0%}")
    fig = _finish(fig, title, "gate g (1 = plain SSDP)", "samples (last batch)", showlegend=False)
    fig.update_xaxes(range=[-0.05, 2.05])
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
    fig = go.Figure(go.Heatmap(z=A, y=mech, x=np.arange(A.shape[1]), zmin=0, zmax=1, colorscale="Blues",
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
    return fig


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
