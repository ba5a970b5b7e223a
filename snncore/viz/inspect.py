"""Figures of the Inspect page: pure builders (data in, plotly Figure out), in the house LAYOUT."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from . import LAYOUT


def stat_histogram(values: np.ndarray, *, title: str, xtitle: str, bins: int = 30) -> go.Figure:
    """Histogram of a per-neuron statistic; undefined (NaN) neurons counted in the title."""
    v = np.asarray(values, dtype=float)
    ok = v[np.isfinite(v)]
    missing = v.size - ok.size
    fig = go.Figure(go.Histogram(x=ok, nbinsx=bins, marker_color="#1f77b4", name=xtitle))
    # on its own smaller line: in a third of the page the title would be cut off
    note = f"<br><sup>{missing} of {v.size} neurons undefined</sup>" if missing else ""
    fig.update_layout(**{**LAYOUT, "height": 260}, title=title + note, showlegend=False, bargap=0.05)
    fig.update_xaxes(title_text=xtitle)
    fig.update_yaxes(title_text="neurons")
    return fig


def raster_scatter(spikes: np.ndarray, *, samples: int = 4, neurons: np.ndarray | None = None,
                   selected: int | None = None, title: str = "spike raster (click a spike to pick its neuron)",
                   hover: list[str] | None = None) -> go.Figure:
    """spikes [T, B, N] bool -> one marker per spike of the first `samples` samples laid side by side
    (markers, not an image, so a click selects a neuron: customdata holds the neuron index).
    neurons: indices of the neurons shown (default all). The selected neuron's spikes are red.
    hover: optional [N] text per neuron for the tooltip (e.g. a conv neuron's channel and position)."""
    s = np.asarray(spikes, dtype=bool)
    T, B, N = s.shape
    k = max(1, min(samples, B))
    idx = np.arange(N) if neurons is None else np.asarray(neurons)
    r = s[:, :k][:, :, idx].transpose(1, 0, 2).reshape(k * T, idx.size)     # [k*T, n]
    t, j = np.nonzero(r)
    n = idx[j]
    if hover is None:
        text, tip = None, "neuron %{customdata}  t=%{x}<extra></extra>"
    else:
        text, tip = np.asarray(hover, dtype=object)[n], "neuron %{customdata}: %{text}  t=%{x}<extra></extra>"
    fig = go.Figure(go.Scatter(x=t, y=n, mode="markers", customdata=n, name="spikes", text=text,
                               marker=dict(symbol="line-ns-open", size=8, color="#222", line_width=1.5),
                               hovertemplate=tip))
    if selected is not None:
        mine = n == selected
        fig.add_trace(go.Scatter(x=t[mine], y=n[mine], mode="markers", name=f"neuron {selected}",
                                 customdata=n[mine], text=None if text is None else text[mine],
                                 marker=dict(symbol="line-ns-open", size=10, color="#d62728", line_width=2.5),
                                 hovertemplate=tip))
    shapes = [dict(type="line", xref="x", yref="paper", x0=b * T - 0.5, x1=b * T - 0.5, y0=0, y1=1,
                   line=dict(width=1, dash="dot", color="#d62728")) for b in range(1, k)]
    # Streamlit's chart turns clickmode into plain "event" whenever dragmode is "select" or "lasso", and a
    # plain click then emits no selection (its onClick only reads treemap/sunburst points): drag zooms,
    # so a click on a spike selects that point and reaches the app as a points selection.
    fig.update_layout(**{**LAYOUT, "height": 340}, title=title, showlegend=False, shapes=shapes,
                      clickmode="event+select", dragmode="zoom", hovermode="closest")
    fig.update_xaxes(title_text=f"time step ({k} samples side by side)" if k > 1 else "time step",
                     range=[-0.5, k * T - 0.5])
    fig.update_yaxes(title_text="neuron", range=[-0.5, N - 0.5] if neurons is None else None)
    return fig


def neuron_from_selection(event) -> int | None:
    """The neuron of the first clicked spike in an st.plotly_chart selection event of raster_scatter
    (its customdata), or None when nothing is selected."""
    points = ((event or {}).get("selection") or {}).get("points") or []
    if not points:
        return None
    p = points[0]
    picked = p.get("customdata", p.get("y"))
    if isinstance(picked, (list, tuple)):
        picked = picked[0] if picked else None
    try:
        return None if picked is None else int(picked)
    except (TypeError, ValueError):
        return None


def trace_figure(v: np.ndarray | None, spikes: np.ndarray, *, threshold: float | None, neuron: int,
                 T: int, title: str | None = None) -> go.Figure:
    """One neuron over the shown samples: membrane before reset (line), threshold (dashed),
    spikes (red ticks). v and spikes are [k*T] (samples side by side)."""
    sp = np.asarray(spikes, dtype=bool)
    x = np.arange(sp.size)
    fig = go.Figure()
    if v is not None:
        fig.add_trace(go.Scatter(x=x, y=np.asarray(v, dtype=float), mode="lines+markers", name="membrane",
                                 marker_size=4))
    top = float(np.nanmax(v)) if v is not None and np.size(v) else 1.0
    if threshold is not None:
        top = max(top, threshold)
        fig.add_hline(y=threshold, line_dash="dash", line_color="#7f7f7f",
                      annotation_text="threshold", annotation_position="top left")
    fig.add_trace(go.Scatter(x=x[sp], y=np.full(int(sp.sum()), top * 1.08 if top > 0 else 1.0),
                             mode="markers", name="spike",
                             marker=dict(symbol="line-ns-open", size=14, color="#d62728", line_width=2)))
    shapes = [dict(type="line", xref="x", yref="paper", x0=b - 0.5, x1=b - 0.5, y0=0, y1=1,
                   line=dict(width=1, dash="dot", color="#d62728")) for b in range(T, sp.size, T)]
    fig.update_layout(**{**LAYOUT, "height": 300}, shapes=list(fig.layout.shapes) + shapes,
                      title=title or f"neuron {neuron}: membrane and spikes")
    fig.update_xaxes(title_text="time step")
    fig.update_yaxes(title_text="membrane (before reset)" if v is not None else "")
    return fig


def weight_histogram_figure(hists: dict[str, dict], epoch: int, unit: str = "epoch") -> go.Figure:
    """Share of weights per bin at one epoch, one line per layer (the x range is fixed over epochs,
    so scrubbing the epoch shows the distribution move). ``unit``: what a checkpoint counts
    ("task" for IP2)."""
    fig = go.Figure()
    for name, h in hists.items():
        if epoch not in h["epochs"]:
            continue
        e = h["edges"]
        share = h["share"][h["epochs"].index(epoch)]
        fig.add_trace(go.Scatter(x=np.repeat(e, 2)[1:-1], y=np.repeat(share, 2), mode="lines", name=name,
                                 fill="tozeroy", opacity=0.6))
    fig.update_layout(**LAYOUT, title=f"weight distribution at {unit} {epoch}")
    if len(fig.data) > 4:      # a conv net's many layers: a column on the right, not rows over the title
        fig.update_layout(legend=dict(orientation="v", x=1.02, y=1, yanchor="top", xanchor="left",
                                      font=dict(size=11)), margin=dict(r=90), height=340)
    fig.update_xaxes(title_text="weight")
    fig.update_yaxes(title_text="share of the layer's weights", rangemode="tozero")
    return fig


def weight_evolution_figure(h: dict, layer: str, unit: str = "epoch") -> go.Figure:
    """Heat map of one layer's weight histogram over epochs (rows: epochs, or tasks for IP2)."""
    e = h["edges"]
    centers = (e[:-1] + e[1:]) / 2
    fig = go.Figure(go.Heatmap(z=h["share"], x=centers, y=[str(x) for x in h["epochs"]],
                               colorscale="Viridis", colorbar=dict(title="share")))
    fig.update_layout(**LAYOUT, title=f"{layer}: weight histogram over training")
    fig.update_xaxes(title_text="weight")
    fig.update_yaxes(title_text=unit, type="category")
    return fig


def channel_rate_figure(rates_all: np.ndarray, shape: tuple, *, title: str) -> go.Figure:
    """Conv layer: mean firing rate of each channel over all its positions (every neuron, not the
    sample), rates_all [C*H*W] in c*H*W + y*W + x order."""
    c = int(shape[0])
    per = np.asarray(rates_all, dtype=float).reshape(c, -1).mean(axis=1)
    fig = go.Figure(go.Bar(x=np.arange(c), y=per, marker_color="#1f77b4",
                           hovertemplate="channel %{x}: %{y:.4f} spikes / step<extra></extra>"))
    fig.update_layout(**{**LAYOUT, "height": 260}, title=title, showlegend=False, bargap=0.05)
    fig.update_xaxes(title_text=f"channel (mean over {int(np.prod(shape[1:]))} positions)")
    fig.update_yaxes(title_text="spikes / step", rangemode="tozero")
    return fig
