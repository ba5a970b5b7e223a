"""SSDP's Train panels: the kernel G(dt), first-spike latencies per layer, and one sample's pre and
post rasters with the latency markers the rule read."""
from __future__ import annotations

from snncore.viz import rules as vr
from snncore.viz.panels import Figure, PanelView, Row, layers_of

NEEDS_SNAPSHOT = True


def ssdp_panels(view: PanelView) -> list:
    latest = view.latest
    layers = layers_of(latest, "lat_pre")
    cells: list[list] = [[], []]
    if "kernel_dt" in latest and "kernel_g" in latest:
        sigma = view.param("sigma")
        cells[0].append(Figure(vr.ssdp_kernel_figure(latest["kernel_dt"], latest["kernel_g"],
                                                     sigma=float(sigma) if sigma is not None else None),
                               "kernel"))
    T = int(latest["lat_T"]) if "lat_T" in latest else None
    for i, layer in enumerate(layers):
        post = latest.get(f"lat_post/{layer}")
        if T is None or post is None:
            continue
        cells[(i + 1) % 2].append(Figure(vr.latency_figure(latest[f"lat_pre/{layer}"], post, T, layer=layer),
                                         f"lat_{layer}"))
    items: list = [Row(cells)]
    rasters = [l for l in layers_of(latest, "raster_pre") if f"raster_post/{l}" in latest]
    if rasters:
        latency = str(view.param("latency", "first") or "first")
        rcells: list[list] = [[] for _ in range(min(2, len(rasters)))]
        for i, layer in enumerate(rasters):
            rcells[i % len(rcells)].append(Figure(
                vr.ssdp_raster_figure(latest[f"raster_pre/{layer}"], latest[f"raster_post/{layer}"],
                                      pre_ids=latest.get(f"raster_pre_ids/{layer}"),
                                      post_ids=latest.get(f"raster_post_ids/{layer}"),
                                      latency=latency if latency in ("first", "last") else "first",
                                      layer=layer),
                f"raster_{layer}"))
        items.append(Row(rcells))
    return items


panels = ssdp_panels
