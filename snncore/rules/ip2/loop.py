"""IP2's own run loop: the task sequence (pilot search, then the main sequence) reported through
the Trainer's sink (snncore.rules.base.LoopSink). Metric and array names are IP2's; the app's
panels and the tests read them:

    per update (step = global update count): train/loss, train/l_task, ip2/mean_u2, ip2/sigma_h
        (from task 2 on), and every log_every updates the rule's telemetry;
    per task, at its last update: l2l/iterations (main sequence) or pilot/<mask> (slow level),
        l2l/task_index, l2l/failed (main); intrinsic-trajectory telemetry (quartiles and a few
        single neurons of tau_d, tau_s, theta); a snapshot (raster/rsnn of one trial, the within-
        trial traces rule/trial_*, the intrinsic values, the pilot scores); a checkpoint.
"""
from __future__ import annotations

import numpy as np

PROPS = ("tau_d", "tau_s", "theta")


def update_metrics(info: dict) -> dict:
    m = {"train/loss": info["loss"], "train/l_task": info["l_task"], "ip2/mean_u2": info["mean_u2"]}
    if info.get("sigma_h") == info.get("sigma_h"):      # not NaN: set after task 1
        m["ip2/sigma_h"] = info["sigma_h"]
    return m


def task_metrics(info: dict, task_index: int) -> dict:
    phase = info["phase"]
    key = "l2l/iterations" if phase == "main" else f"pilot/{phase.split(':', 1)[-1]}"
    m = {key: info["iterations"], "l2l/task_index": task_index}
    if phase == "main":
        m["l2l/failed"] = float(info["failed"])
    return m


def task_telemetry(snap: dict) -> dict:
    """Intrinsic trajectories, one row per task: quartiles and a few single neurons (keys
    'tau_d/q25' ... group into one chart per property)."""
    t = {f"{prop}/{stat}": snap[prop][stat] for prop in PROPS for stat in ("q25", "median", "q75")}
    t.update({f"{prop}/neuron {n}": v for prop in PROPS for n, v in zip(snap["neurons"], snap[prop]["single"])})
    return t


def task_arrays(info: dict, task_index: int, scores: dict | None) -> dict:
    tr = info["trial"]     # within-trial traces of a few neurons (trial_trace: u, d [n, T]; y [O, T])
    arrays = {"raster/rsnn": np.asarray(tr["s"], dtype=bool).T,
              "task": np.array(task_index), "rule/task": np.array(task_index),
              "rule/phase": np.array(info["phase"], dtype="U32"),
              "rule/mask": np.array(info["mask"] or [""], dtype="U8"),
              "rule/trial_u": np.asarray(tr["u"], dtype=np.float32),
              "rule/trial_d": np.asarray(tr["d"], dtype=np.float32),
              "rule/trial_y": np.asarray(tr["y"], dtype=np.float32),
              "rule/trial_target": np.asarray(tr["target"], dtype=np.int64),
              "rule/trial_mask": np.asarray(tr["loss_mask"], dtype=bool),
              "rule/trial_neurons": np.asarray(tr["neurons"], dtype=np.int64)}
    for prop in PROPS:
        arrays[f"rule/{prop}"] = np.asarray(info["snapshot"][prop]["values"], dtype=np.float32)
    if scores:     # the slow level's pilot score per candidate mask
        arrays["rule/pilot_masks"] = np.array(list(scores), dtype="U32")
        arrays["rule/pilot_scores"] = np.array(list(scores.values()), dtype=np.float64)
    return arrays


def run_loop(rule, sink, seed: int, resume: dict | None = None) -> dict:
    """rule.run(...) with its per-update and per-task reports sent to `sink`. Returns the run
    summary's IP2 fields (and "stopped")."""

    def on_update(info):
        sink.metrics(update_metrics(info))
        if sink.step % sink.log_every == 0:
            sink.telemetry(rule.telemetry())
        sink.advance(steps=1)

    def on_task(info):
        sink.advance(units=1)
        at = max(sink.step - 1, 0)     # the task's last update: a resume from this boundary keeps these rows
        sink.metrics(task_metrics(info, sink.units), step=at)
        sink.telemetry(task_telemetry(info["snapshot"]), step=at)
        sink.snapshot(task_arrays(info, sink.units, rule.scores), step=at)
        sink.checkpoint(info["checkpoint"]())   # writes the rows above first; `--resume` continues from the last one

    res = rule.run(rule.params, seed, on_update=on_update, on_task=on_task,
                   should_stop=sink.should_stop, resume=resume) or {}
    return {"stopped": bool(res.get("stopped")), "tasks": len(res.get("iterations", [])),
            "failures": res.get("failures"), "mask": res.get("mask"),
            "final_efficiency": res.get("final_efficiency"), "l2l_fit": res.get("fit")}
