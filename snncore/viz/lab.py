"""Rule Lab figures: the shared helpers and the page's figure set (the shared pre / post /
traces / weights / dweights plus the rule's own, LabSpec.figures).

Built as plain plotly figure dicts in the house style of snncore.viz (LAYOUT, rasters as one PNG
image): st.plotly_chart validates a figure once anyway, and building go.Figure objects first
(px.imshow, add_trace, add_hline) cost more than the whole simulation on a busy 2-core box.
"""
from __future__ import annotations

import numpy as np


def _layout(title: str, xtitle: str, ytitle: str, **kw) -> dict:
    from . import LAYOUT
    lay = {k: v for k, v in LAYOUT.items() if not k.startswith("title_")}
    lay["title"] = {"text": title, "y": LAYOUT.get("title_y", 0.97), "yanchor": LAYOUT.get("title_yanchor", "top")}
    lay["xaxis"] = {"title": {"text": xtitle}}
    lay["yaxis"] = {"title": {"text": ytitle}}
    for k, v in kw.items():
        if isinstance(v, dict) and isinstance(lay.get(k), dict):
            lay[k] = {**lay[k], **v}
        else:
            lay[k] = v
    return lay


def _lines(series: dict[str, np.ndarray], title: str, xtitle: str, ytitle: str, *, x=None,
           log: bool = False, mode: str = "lines") -> dict:
    data = []
    for name, y in series.items():
        y = np.asarray(y, dtype=float)
        data.append({"type": "scatter", "x": np.arange(y.size) if x is None else np.asarray(x), "y": y,
                     "name": name, "mode": mode})
    return {"data": data, "layout": _layout(title, xtitle, ytitle, yaxis={"type": "log"} if log else {})}


def _heat(W: np.ndarray, title: str, *, xtitle="pre neuron i", ytitle="post neuron j",
          colorscale="RdBu", diverging: bool = True) -> dict:
    W = np.asarray(W, dtype=float)
    tr = {"type": "heatmap", "z": W, "colorscale": colorscale, "colorbar": {"thickness": 12},
          "hovertemplate": "row %{y} col %{x}<br>%{z:.4g}<extra></extra>"}
    if diverging:
        lim = float(np.abs(W).max()) or 1.0
        tr.update(zmid=0.0, zmin=-lim, zmax=lim, reversescale=True)
    return {"data": [tr], "layout": _layout(title, xtitle, ytitle, yaxis={"autorange": "reversed"})}


def _png(img: np.ndarray) -> str:
    """uint8 grey image [H, W] -> PNG data URI (what px.imshow(binary_string=True) sends)."""
    import base64
    import io

    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(img, mode="L").save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def raster(r: np.ndarray, title: str, T: int | None = None) -> dict:
    """Spike raster [neurons, steps] as one image (black = spike), as snncore.viz.raster_figure
    draws it, with dotted lines between the updates' windows."""
    r = np.asarray(r, dtype=bool)
    src = _png(np.where(r, 0, 255).astype(np.uint8)) if r.size else ""
    n = r.shape[1] if r.ndim == 2 else 0
    shapes = [] if not T or n <= T else [
        {"type": "line", "xref": "x", "yref": "paper", "x0": k - 0.5, "x1": k - 0.5, "y0": 0, "y1": 1,
         "line": {"width": 1, "dash": "dot", "color": "#d62728"}} for k in range(T, n, T)]
    tr = {"type": "image", "source": src, "hovertemplate": "t=%{x}  neuron %{y}<extra></extra>"}
    return {"data": [tr], "layout": _layout(title, "time step (updates side by side)" if shapes else "time step",
                                            f"neuron ({r.shape[0]})", height=260, shapes=shapes,
                                            xaxis={"scaleanchor": False}, yaxis={"scaleanchor": False})}


def _add_points(fig: dict, x, y, name: str) -> dict:
    fig["data"].append({"type": "scatter", "x": np.asarray(x, float), "y": np.asarray(y, float),
                        "mode": "markers", "name": name})
    return fig


def figures(res) -> dict[str, dict]:
    """The page's figures by name, as plotly figure dicts (go.Figure(fig) gives the object)."""
    from ..lab import spec
    s = spec(res.rule)
    h = res.history
    figs: dict[str, dict] = {}
    n_up = len(next(iter(h.values()))) if h else 0
    ups = np.arange(1, n_up + 1)
    if s.pre_heat:
        figs["pre"] = _heat(res.pre_raster, s.pre_title, xtitle=s.pre_heat[0], ytitle=s.pre_heat[1])
    else:
        figs["pre"] = raster(res.pre_raster, s.pre_title, res.T)
    figs["post"] = raster(res.post_raster, s.post_title, res.T if s.post_windows else None)
    figs["traces"] = _lines(res.traces, "traces in the last window (trial 0)", "time step", "value")
    what = s.weight_name
    xt, yt = s.weight_axes
    figs["weights"] = _heat(res.W, f"{what} after {n_up} updates", xtitle=xt, ytitle=yt)
    figs["dweights"] = _heat(res.dW, f"change of {what} · mean |ΔW| {np.abs(res.dW).mean():.3g}",
                             xtitle=xt, ytitle=yt)
    figs.update(s.figures(res, ups))
    return figs


def to_plotly_json(fig: dict) -> str:
    """What the Rule Lab page pays per figure: a go.Figure built without re-validation (the page's
    _figure), which st.plotly_chart turns into a dict (to_dict) and serialises."""
    import plotly.graph_objects as go
    import plotly.io as pio
    return pio.to_json(go.Figure(fig, _validate=False).to_dict(), validate=False)


