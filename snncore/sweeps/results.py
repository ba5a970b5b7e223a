"""A sweep's results as tables: one row per trial (its point, status, progress, metric, run), and the
metric's mean with a Student-t 95 % interval over the trials sharing a value (or a pair of values).

Pure functions of the sweep's state, its trial records and the runs' rows, so the Sweep page and a
notebook read the same numbers. For n trials with metric values x_i the interval is
    mean ± t_{0.975, n-1} · s / sqrt(n),   s the sample standard deviation (ddof 1)
(snncore.compare.mean_ci); with n = 1 it is undefined (NaN).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..compare import mean_ci
from .spec import SweepSpec

DONE = "finished"          # the trials whose metric enters the means (an ASHA-stopped one is cut short)
BINS = 5                   # a range axis (random / optuna search) is cut into this many bins for the means


def axis_names(spec: SweepSpec) -> list[str]:
    """The swept hyperparameters, then "seed" when the sweep has several seeds (or sweeps it)."""
    names = [a.name for a in spec.axes]
    if spec.seeds > 1 and "seed" not in names:
        names.append("seed")
    return names


def config_labels(spec: SweepSpec) -> list[str]:
    """A sweep over whole configs (`--configs`, Compare's "repeat with N seeds"): each config's
    label, the fields that differ between the configs (seed and name aside) as "field=value"
    joined by " · ", so configs that differ only in their seed share a label and group together
    (their mean is over those seeds). Empty for an axes sweep."""
    if spec.configs is None:
        return []
    # a rule's hyperparameters as RULE.NAME (as --grid names them); a field differs when the
    # configs that have it disagree (bptt's config has no ssdp.a_plus: that alone is no difference)
    flat = [{**{k: v for k, v in c.items() if k != "rule_params"},
             **{f"{c.get('rule')}.{k}": v for k, v in (c.get("rule_params") or {}).items()}} for c in spec.configs]
    keys = sorted({k for c in flat for k in c} - {"seed", "name"}, key=lambda k: ("." in k, k))
    differ = [k for k in keys if len({repr(c[k]) for c in flat if k in c}) > 1]
    if not differ:
        return ["the config"] * len(flat)
    return [" · ".join(f"{k}={_cell(c[k])}" for k in differ if k in c) for c in flat]


def names(spec: SweepSpec) -> list[str]:
    """The columns the results group by: the swept hyperparameters (seed aside), or "config" for
    a sweep over whole configs."""
    if spec.configs is not None:
        return ["config"]
    return [a.name for a in spec.axes if a.name != "seed"]


def _cell(v):
    """A swept value as a table cell: a list (hidden sizes) as its comma text, so cells group."""
    return ",".join(map(str, v)) if isinstance(v, (list, tuple)) else v


def node_label(rec: dict) -> str:
    """Where a trial ran: its host and the start of its Ray node id (two nodes on one host differ
    by the id; the full id is in the trial's record)."""
    node, host = rec.get("node") or "", rec.get("host") or ""
    if not node:
        return host
    return f"{host} · {node[:8]}" if host else node[:8]


def trials_frame(state: dict, records: dict[str, dict], runs: dict[str, dict]) -> pd.DataFrame:
    """One row per trial: trial key, each swept value, seed, status, epoch, progress (0-1), the
    metric, run id, node, error. A grid sweep's points not started yet are rows with status
    "pending", so the table has its final length from the start."""
    spec = SweepSpec.from_dict(state["spec"])
    metric = state["options"]["metric"]
    labels = config_labels(spec)
    names_ = names(spec)
    seed0 = int(spec.base.get("seed", 0))

    def swept(point: dict) -> dict:
        if labels:
            i = point.get("config")
            return {"config": labels[int(i)] if i is not None and 0 <= int(i) < len(labels) else ""}
        return {n: _cell(point.get(n)) for n in names_}

    epochs_base = int(spec.base.get("epochs", 0) or 0)
    rows = []
    seen_index = set()
    for key, rec in sorted(records.items()):
        point = rec.get("point") or {}
        run = runs.get(rec.get("run_id") or "") or {}
        status = rec.get("status") or "running"
        if status == "running" and run.get("status"):
            status = run["status"]          # starting / running, or ended while its record lags
        epochs = int((run.get("config") or {}).get("epochs") or point.get("epochs") or epochs_base)
        total, step = run.get("total_steps") or 0, run.get("step") or 0
        if status == "finished":
            progress, epoch = 1.0, epochs
        else:
            progress = min(step / total, 1.0) if total else 0.0
            epoch = int(run.get("epoch") or 0)
        row = {"trial": key, **swept(point), "seed": point.get("seed", seed0),
               "status": status, "epoch": f"{epoch}/{epochs}" if epochs else "", "progress": progress,
               metric: rec.get("metric"), "run": rec.get("run_id") or "", "node": node_label(rec),
               "error": rec.get("error") or ""}
        rows.append(row)
        if rec.get("index") is not None:
            seen_index.add(int(rec["index"]))
    if spec.search == "grid":
        for i, point in enumerate(spec.grid_points()):
            if i in seen_index:
                continue
            rows.append({"trial": f"{i:05d}", **swept(point), "seed": point.get("seed", seed0),
                         "status": "pending", "epoch": f"0/{int(point.get('epochs', epochs_base))}",
                         "progress": 0.0, metric: None, "run": "", "node": "", "error": ""})
    cols = ["trial", *names_, "seed", "status", "epoch", "progress", metric, "run", "node", "error"]
    frame = pd.DataFrame(rows, columns=cols)
    frame[metric] = pd.to_numeric(frame[metric], errors="coerce")
    return frame.sort_values("trial", kind="stable").reset_index(drop=True)


SUMMARY_TWINS = {"test/accuracy"}   # a final value that the summary metric test_accuracy already is


def finals_frame(store, frame: pd.DataFrame) -> pd.DataFrame:
    """The finished trials' final values (RunStore.final_values: each recorded metric and
    telemetry key, its mean over the run's last epoch), one row per trial: "trial", "run", then
    one column per key (sorted; NaN where a run lacks it). Keys that would shadow a trials-table
    column are left out."""
    done = frame[(frame["status"] == DONE) & (frame["run"] != "")]
    rows = [{"trial": t, "run": r, **store.final_values(r)} for t, r in zip(done["trial"], done["run"])]
    keys = sorted({k for row in rows for k in row} - {"trial", "run"} - set(frame.columns) - SUMMARY_TWINS)
    return pd.DataFrame(rows, columns=["trial", "run", *keys])


def quantities(metric: str, finals: pd.DataFrame) -> list[str]:
    """What a sweep's figures can show: its metric first, then every final value some finished
    trial has."""
    return [metric, *[c for c in finals.columns if c not in ("trial", "run") and finals[c].notna().any()]]


def with_finals(frame: pd.DataFrame, finals: pd.DataFrame, keys: list[str] | None = None) -> pd.DataFrame:
    """The trials table with final-value columns joined by trial (all of them, or `keys`)."""
    keys = [k for k in (keys if keys is not None else finals.columns) if k not in ("trial", "run")]
    return frame.merge(finals[["trial", *keys]], on="trial", how="left")


def bin_centers(values, lo: float, hi: float, log: bool, bins: int = BINS) -> np.ndarray:
    """Each value replaced by the centre of its bin among `bins` equal bins of [lo, hi] (equal in
    log10 when log; the centre is then the geometric mean of the bin's ends)."""
    v = np.asarray(values, dtype=float)
    a, b = (math.log10(lo), math.log10(hi)) if log else (lo, hi)
    x = np.log10(v) if log else v
    k = np.clip(np.floor((x - a) / (b - a) * bins), 0, bins - 1)
    c = a + (k + 0.5) * (b - a) / bins
    return 10 ** c if log else c


def comparable(frame: pd.DataFrame, spec: SweepSpec, metric: str) -> pd.DataFrame:
    """The finished trials with a metric, range axes binned (bin_centers), ready to group."""
    out = frame[(frame["status"] == DONE) & frame[metric].notna()].copy()
    for a in spec.axes:
        if a.values is None and a.name in out and len(out):
            out[a.name] = bin_centers(out[a.name].astype(float), a.lo, a.hi, a.log)
    return out


def group_stats(frame: pd.DataFrame, by: list[str], metric: str, level: float = 0.95) -> pd.DataFrame:
    """Mean, half-width, lo, hi and n of `metric` per distinct value of the columns `by` (over the
    seeds and every other swept value). frame: finished trials (comparable())."""
    cols = [*by, "mean", "half", "lo", "hi", "n"]
    if frame.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for key, g in frame.groupby(by, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        ci = mean_ci(g[metric].tolist(), level)
        rows.append({**dict(zip(by, key)), "mean": ci.mean, "half": ci.half, "lo": ci.lo, "hi": ci.hi, "n": ci.n})
    return pd.DataFrame(rows, columns=cols)


def best_point(stats: pd.DataFrame, mode: str) -> dict | None:
    """The row of group_stats with the best mean (max or min); ties: the most trials, then first."""
    s = stats.dropna(subset=["mean"])
    if s.empty:
        return None
    sign = -1.0 if mode == "max" else 1.0
    order = sorted(range(len(s)), key=lambda i: (sign * s["mean"].iloc[i], -s["n"].iloc[i], i))
    return s.iloc[order[0]].to_dict()


def point_config(state: dict, point: dict) -> dict:
    """The run config of a point (swept values, seed left at the base's unless swept): what
    "open in Train" fills the form with."""
    spec = SweepSpec.from_dict(state["spec"])
    if spec.configs is not None:          # a config's label: its first config (that config's seed)
        labels = config_labels(spec)
        label = point.get("config")
        i = int(label) if isinstance(label, (int, np.integer)) else labels.index(label)
        cfg = dict(spec.configs[i])
        cfg.pop("name", None)
        return cfg
    point = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in point.items()
             if k != "seed" or any(a.name == "seed" for a in spec.axes)}
    point = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in point.items()}   # n/a
    cfg = spec.apply(point)
    cfg.pop("name", None)
    return cfg
