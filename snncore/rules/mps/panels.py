"""MPS's Train panels, per layer: the mechanism assignment, the layer-mean shares over time, the
shares in the mechanism triangle (2 or 3 mechanisms) and the component currents of a few neurons."""
from __future__ import annotations

import numpy as np

from snncore.viz import rules as vr
from snncore.viz.panels import Figure, PanelView, Row, Text, layers_of

NEEDS_SNAPSHOT = True
RECONSTRUCTED = True            # the paper's method section was not available


def panels(view: PanelView) -> list:
    snaps, latest, tel = view.snaps, view.latest, view.tel
    mech = [str(m) for m in np.asarray(latest.get("mechanisms", [])).reshape(-1)]
    if not mech:
        mech = [str(m) for m in (view.param("mechanisms") or [])]
    items: list = []
    for layer in layers_of(latest, "assign"):
        c1 = [Figure(vr.assignment_figure(latest[f"assign/{layer}"], mech, layer=layer), f"assign_{layer}")]
        if vr.share_columns(tel, layer):
            c2 = [Figure(vr.shares_area_figure(tel, layer, mech), f"shares_{layer}")]
        else:
            c2 = [Text("layer-mean shares appear with the first telemetry")]
        items.append(Row([c1, c2]))
        A = np.asarray(latest[f"assign/{layer}"])
        if A.ndim == 2 and A.shape[0] in (2, 3):
            history = [(s, a[f"assign/{layer}"]) for s, a in snaps if f"assign/{layer}" in a]
            c3 = [Figure(vr.simplex_figure(A, mech, layer=layer, history=history), f"simplex_{layer}")]
        else:
            c3 = [Text(f"{layer}: the mechanism triangle needs 2 or 3 mechanisms; this run has "
                       f"{A.shape[0] if A.ndim else 0}, see the heatmap above")]
        if f"curr/{layer}" in latest:
            v_th = view.param("v_th")
            c4 = [Figure(vr.currents_figure(latest[f"curr/{layer}"], mech, u=latest.get(f"curr_u/{layer}"),
                                            spikes=latest.get(f"curr_s/{layer}"), bias=latest.get(f"curr_b/{layer}"),
                                            neurons=latest.get(f"curr_ids/{layer}"),
                                            v_th=float(v_th) if v_th is not None else None, layer=layer),
                         f"curr_{layer}")]
        else:
            c4 = [Text(f"{layer}: component currents appear with the next snapshot of a training step")]
        items.append(Row([c3, c4]))
    return items
