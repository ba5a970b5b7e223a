"""IP2's Train panels: the slow level's state (pilot or frozen mask) and pilot scores, the intrinsic
properties across neurons at a few tasks, and one trial's traces and read-out."""
from __future__ import annotations

import numpy as np

from snncore.viz import lines_figure
from snncore.viz import rules as vr
from snncore.viz.panels import Figure, PanelView, Row, Text

NEEDS_SNAPSHOT = True
RECONSTRUCTED = True            # the paper's method section was not available


def panels(view: PanelView) -> list:
    snaps, latest = view.snaps, view.latest
    if not snaps:
        return []
    mask = [str(m) for m in np.asarray(latest.get("mask", [])).reshape(-1) if str(m)]
    phase = str(latest.get("phase", ""))
    if phase.startswith("pilot"):
        items: list = [Text(f"Slow level running: pilot of candidate mask {phase.split(':', 1)[-1]}", "info",
                            ":material/science:")]
    else:
        items = [Text(f"Learnable intrinsic properties (frozen by the slow level): {', '.join(mask) or 'none'}; "
                      "the others stay bit-identical.", "success", ":material/lock:")]
    figs = []        # laid out two per row as they come: no empty slot where one is missing
    if "pilot_scores" in latest:      # meta_mode "fixed" has no slow level, so no pilot scores
        chosen = "+".join(mask) if mask else "none"
        masks = [str(m) for m in latest["pilot_masks"]]
        figs.append(Figure(vr.pilot_scores_figure(masks, latest["pilot_scores"].tolist(),
                                                  chosen if chosen in masks else None), "pilot"))
    picks = [snaps[0], snaps[len(snaps) // 2], snaps[-1]] if len(snaps) >= 3 else snaps
    seen, chosen_snaps = set(), []
    for step, a in picks:
        t = int(np.asarray(a.get("task", step)))
        if t not in seen:
            seen.add(t)
            chosen_snaps.append((t, a))
    if "ip2/mean_u2" in view.metrics:       # the homeostatic term's drive (logged per update)
        figs.append(Figure(lines_figure(view.metrics, [k for k in ("ip2/mean_u2", "ip2/sigma_h") if k in view.metrics],
                                        title="homeostasis: mean u² vs its target sigma_h", ytitle="u²",
                                        smooth=10), "homeo"))
    for prop in ("tau_d", "tau_s", "theta"):
        data = [(t, a[prop]) for t, a in chosen_snaps if prop in a]
        if data:
            figs.append(Figure(vr.intrinsic_hist_figure(data, prop), f"hist_{prop}"))
    for i in range(0, len(figs), 2):
        pair = figs[i:i + 2]
        items.append(Row([[f] for f in pair] + [[]] * (2 - len(pair))))
    if "trial_u" in latest and "trial_y" in latest:
        task = int(np.asarray(latest.get("task", 0)))
        items.append(Text(f"Within a trial: one trial of task {task} (the newest snapshot), after its last update."))
        dt = float(view.param("dt", 1.0) or 1.0)
        neurons = np.asarray(latest.get("trial_neurons", np.arange(len(latest["trial_u"])))).astype(int)
        theta = latest.get("theta")
        theta = np.asarray(theta)[neurons] if theta is not None and np.size(theta) > neurons.max(initial=-1) else None
        c5 = [Figure(vr.trial_traces_figure(latest["trial_u"], latest.get("trial_d", np.zeros((0, 0))), dt=dt,
                                            theta=theta, neurons=neurons), "trial_ud")]
        c6 = []
        if "trial_target" in latest:
            c6.append(Figure(vr.trial_readout_figure(latest["trial_y"], latest["trial_target"],
                                                     latest.get("trial_mask"), dt=dt), "trial_y"))
        items.append(Row([c5, c6]))
    return items
