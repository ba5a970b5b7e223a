"""A sweep's figures: hyperparameters -> metric as parallel coordinates, the seed-mean metric over
two hyperparameters as a heatmap (95 % interval in the hover), and each hyperparameter's effect
(mean and 95 % interval per value). Inputs are the frames of snncore.sweeps.results."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from . import LAYOUT


def is_log(values) -> bool:
    """Numbers spread over a decade or more, all positive (a learning rate 5e-4..5e-3, widths
    32..512): drawn on a log axis, where such grids are evenly spaced."""
    try:
        v = np.asarray([float(x) for x in values], dtype=float)
    except (TypeError, ValueError):
        return False
    v = v[np.isfinite(v)]
    return bool(v.size) and bool((v > 0).all()) and v.max() / v.min() >= 10


def _numeric(values) -> bool:
    return all(isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))
               for x in values)


NA = "n/a"      # a rule hyperparameter at another rule's points (a sweep over rules)


def _missing(v) -> bool:
    return v is None or (isinstance(v, (float, np.floating)) and math.isnan(v))


def _label(v) -> str:
    if _missing(v):
        return NA
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.4g}"
    return str(v)


def _log_ticks(values) -> list[float]:
    """Ticks of a log axis: each swept value (up to 8), else the decades a range spans (plotly's
    own log ticks read 100μ, 2, 5, 0.001, ...)."""
    v = np.asarray(values, dtype=float)
    ticks = sorted(set(v.tolist()))
    if len(ticks) > 8:
        lv = np.log10(v)
        ticks = [10.0 ** k for k in range(math.floor(lv.min()), math.ceil(lv.max()) + 1)]
    return ticks


def _style(fig: go.Figure, title: str, height: int = 320) -> go.Figure:
    fig.update_layout(**{**LAYOUT, "height": height, "margin": {**LAYOUT["margin"], "t": 50}}, title=title)
    return fig


def parallel_figure(frame: pd.DataFrame, axes: list[str], metric: str, log: dict | None = None) -> go.Figure:
    """One line per finished trial through its hyperparameter values to its metric (coloured by
    the metric). Text or boolean values get one tick each; a log axis is drawn as log10(value),
    its ticks labelled with the values themselves (each swept value, or the decades)."""
    log = log or {}
    dims = []
    for name in axes:
        col = frame[name].tolist()
        present = [x for x in col if not _missing(x)]
        if present and _numeric(present):
            v = np.asarray([np.nan if _missing(x) else x for x in col], dtype=float)
            ok = ~np.isnan(v)
            if log.get(name, is_log(v[ok])):
                ticks = _log_ticks(v[ok])
                dim = dict(label=f"{name} (log)", values=np.log10(v), tickvals=np.log10(ticks).tolist(),
                           ticktext=[_label(t) for t in ticks])
            elif np.all(v[ok] == np.round(v[ok])) and len(set(v[ok].tolist())) <= 10:
                ticks = sorted(set(v[ok].tolist()))      # seeds, widths: their own values, not 0.2 steps
                dim = dict(label=name, values=v, tickvals=ticks, ticktext=[_label(int(t)) for t in ticks])
            else:
                dim = dict(label=name, values=v)
            if not ok.all():       # another rule's points: an "n/a" tick under the values (NaN draws no line)
                vals = np.asarray(dim["values"], dtype=float)
                lo, hi = np.nanmin(vals), np.nanmax(vals)
                na = lo - (0.15 * (hi - lo) if hi > lo else 1.0)
                ticks = dim.get("tickvals") or sorted({lo, hi})
                texts = dim.get("ticktext") or [_label(t) for t in ticks]
                dim.update(values=np.where(np.isnan(vals), na, vals), tickvals=[na, *ticks], ticktext=[NA, *texts])
            dims.append(dim)
        else:
            cats = sorted({_label(x) if _missing(x) else str(x) for x in col})
            dims.append(dict(label=name, values=[cats.index(_label(x) if _missing(x) else str(x)) for x in col],
                             tickvals=list(range(len(cats))), ticktext=cats))
    y = frame[metric].astype(float)
    dims.append(dict(label=metric, values=y))
    fig = go.Figure(go.Parcoords(dimensions=dims, line=dict(color=y, colorscale="Viridis", showscale=True,
                                                            colorbar=dict(title=dict(text=metric)))))
    fig = _style(fig, f"hyperparameters → {metric} ({len(frame)} finished trials)", height=360)
    fig.update_layout(margin=dict(l=70, r=70, t=80, b=30))
    return fig


def _order(values) -> list:
    """Distinct values in order (numbers by value), a missing one ("n/a") last."""
    vals = list(dict.fromkeys(_label(v) if _missing(v) else v for v in values))
    rest = [v for v in vals if v != NA]
    try:
        rest = sorted(rest, key=float)
    except (TypeError, ValueError):
        rest = sorted(rest, key=str)
    return rest + ([NA] if NA in vals else [])


def heatmap_figure(stats: pd.DataFrame, x: str, y: str, metric: str) -> go.Figure:
    """The mean metric per (x, y) pair (over seeds and any other swept value); the hover gives
    the 95 % interval and n. stats: results.group_stats(..., [x, y], ...)."""
    xs, ys = _order(stats[x]), _order(stats[y])
    z = np.full((len(ys), len(xs)), np.nan)
    custom = np.full((len(ys), len(xs), 3), np.nan)
    text = [["" for _ in xs] for _ in ys]
    for _, r in stats.iterrows():
        i, j = ys.index(NA if _missing(r[y]) else r[y]), xs.index(NA if _missing(r[x]) else r[x])
        z[i, j] = r["mean"]
        custom[i, j] = (r["lo"], r["hi"], r["n"])
        text[i][j] = f"{r['mean']:.3g}"
    fig = go.Figure(go.Heatmap(
        z=z, x=[_label(v) for v in xs], y=[_label(v) for v in ys], customdata=custom, text=text,
        texttemplate="%{text}", colorscale="Viridis", colorbar=dict(title=dict(text=f"mean {metric}")),
        hovertemplate=(f"{x} %{{x}}<br>{y} %{{y}}<br>mean {metric} %{{z:.4g}}<br>"
                       "95 % CI %{customdata[0]:.4g} to %{customdata[1]:.4g}<br>n = %{customdata[2]}<extra></extra>")))
    fig = _style(fig, f"mean {metric} over {x} × {y}")
    fig.update_xaxes(title_text=x, type="category")
    fig.update_yaxes(title_text=y, type="category")
    return fig


def effect_figure(stats: pd.DataFrame, axis: str, metric: str, log: bool | None = None) -> go.Figure:
    """Mean metric per value of one hyperparameter with its 95 % interval (error bars; none with
    n = 1). stats: results.group_stats(..., [axis], ...); a rule hyperparameter's "n/a" (the points
    of rules without it) is left out: its effect is among the rule's own points."""
    stats = stats[[not _missing(v) for v in stats[axis]]] if len(stats) else stats
    vals = stats[axis].tolist()
    numeric = _numeric(vals)
    half = stats["half"].astype(float).fillna(0.0)
    x = [float(v) for v in vals] if numeric else [str(v) for v in vals]
    fig = go.Figure(go.Scatter(
        x=x, y=stats["mean"].astype(float), mode="lines+markers" if numeric else "markers",
        marker=dict(size=9), error_y=dict(type="data", array=half, visible=True, thickness=1.5, width=6),
        customdata=np.stack([stats["lo"].astype(float), stats["hi"].astype(float), stats["n"].astype(float)], axis=-1)
        if len(stats) else None,
        hovertemplate=(f"{axis} %{{x}}<br>mean {metric} %{{y:.4g}}<br>95 % CI %{{customdata[0]:.4g}} to "
                       "%{customdata[1]:.4g}<br>n = %{customdata[2]}<extra></extra>")))
    fig = _style(fig, f"effect of {axis}", height=280)
    if numeric and (is_log(vals) if log is None else log):
        ticks = _log_ticks(x)
        fig.update_xaxes(title_text=axis, type="log", tickvals=ticks, ticktext=[_label(t) for t in ticks])
    else:
        fig.update_xaxes(title_text=axis, type="linear" if numeric else "category")
    fig.update_yaxes(title_text=f"{metric} (mean, 95 % CI)")
    return fig


def ci_text(mean: float, half: float) -> str:
    """'0.85 ± 0.12', or '0.85 (n=1)' where the interval is undefined."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    return f"{mean:.4g} ± {half:.2g}" if half == half else f"{mean:.4g} (n=1)"
