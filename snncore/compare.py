"""Comparing runs: seed groups, mean and 95 % confidence intervals, overlaid curves, final metrics.

Pure functions over RunStore rows and frames (the Compare page and notebooks call the same code).

Seed groups: runs whose configs are equal once the seed (and fields that only label, place or record
a run: name, device, recording and logging cadence) are set aside. Rule hyperparameters are compared
with their defaults filled in, so `rule_params = {}` and the same defaults written out are one group.

Confidence interval of a mean over n runs (Student t, n - 1 degrees of freedom):
    mean = sum(x) / n,  s = sqrt(sum((x - mean)^2) / (n - 1)),
    half = t_{(1 + level)/2, n-1} * s / sqrt(n),   interval [mean - half, mean + half].
With n = 1 the interval is undefined (half = NaN).
"""
from __future__ import annotations

import dataclasses
import io
import json
import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .store import RunStore

# fields that do not change what a run learns: a seed group ignores them
NOT_EXPERIMENT = ("seed", "name", "device", "record_layer", "record_neurons", "record_batches",
                  "record_every", "snapshots_kept", "log_every", "keep_checkpoints", "weight_history")
# curves offered for overlay: key -> (title, y axis title)
CURVES = {
    "train/loss": ("training loss", "loss"),
    "test/accuracy": ("test accuracy", "accuracy"),
    "train/accuracy": ("training accuracy (batch)", "accuracy"),
    "test/loss": ("test loss", "loss"),
    "l2l/iterations": ("updates to criterion per task", "updates"),
}
# final metrics: column -> description (the CSV and the tables use these names)
FINAL_METRICS = {
    "final_test_accuracy": "test accuracy after the last epoch",
    "best_test_accuracy": "best test accuracy over epochs",
    "final_test_loss": "test loss after the last epoch",
    "final_train_loss": "training loss, mean of the last 10 steps",
    "tasks": "learning to learn: tasks done",
    "failures": "learning to learn: failed tasks",
    "mean_iterations": "learning to learn: mean updates to criterion",
    "final_efficiency": "learning to learn: mean updates over the last tasks",
    "seconds": "wall time of the run (s)",
}


# ---- confidence intervals ----------------------------------------------------------------------
@dataclass(frozen=True)
class CI:
    mean: float
    half: float          # half-width of the interval (NaN when n < 2)
    lo: float
    hi: float
    n: int
    sd: float            # sample standard deviation (ddof 1; NaN when n < 2)


def mean_ci(values: Iterable[float], level: float = 0.95) -> CI:
    """Mean and the Student-t confidence interval at `level` over the finite values given."""
    from scipy import stats
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1 (exclusive), got {level}")
    x = np.asarray([v for v in values if v is not None], dtype=float)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        nan = float("nan")
        return CI(nan, nan, nan, nan, 0, nan)
    m = float(x.mean())
    if n == 1:
        nan = float("nan")
        return CI(m, nan, nan, nan, 1, nan)
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf((1 + level) / 2, n - 1) * sd / math.sqrt(n))
    return CI(m, half, m - half, m + half, n, sd)


# ---- seed groups -------------------------------------------------------------------------------
def normalized_config(config: dict) -> dict:
    """The config with its rule's hyperparameter defaults filled in (as stored if it no longer validates)."""
    from .config import ConfigError, RunConfig
    try:
        cfg = RunConfig.from_dict(dict(config))
        out = cfg.to_dict()
        out["rule_params"] = dataclasses.asdict(cfg.rule_object_params())
        return out
    except (ConfigError, ValueError, TypeError):
        return dict(config)


def experiment_key(config: dict) -> str:
    """Equal for two configs that differ only in the seed (or in NOT_EXPERIMENT fields)."""
    c = {k: v for k, v in normalized_config(config).items() if k not in NOT_EXPERIMENT}
    return json.dumps(c, sort_keys=True, default=str)


@dataclass
class SeedGroup:
    key: str
    label: str                 # rule plus the fields that set this group apart from the others
    rule: str
    run_ids: list              # oldest first
    seeds: list
    config: dict               # normalized config of the first run (its seed included)


def _flat(config: dict) -> dict:
    out = {k: v for k, v in config.items() if k != "rule_params" and k not in NOT_EXPERIMENT}
    for k, v in (config.get("rule_params") or {}).items():
        out[f"{config.get('rule')}.{k}"] = v
    return out


def seed_groups(runs: list[dict]) -> list[SeedGroup]:
    """Group run rows (RunStore.list_runs / get_run dicts) by experiment_key, in order of first
    appearance. Labels name the rule and up to three fields that differ between the groups."""
    groups: dict[str, SeedGroup] = {}
    for r in sorted(runs, key=lambda r: (r.get("created") or 0, r["id"])):
        cfg = normalized_config(r["config"])
        key = experiment_key(r["config"])
        g = groups.get(key)
        if g is None:
            g = groups[key] = SeedGroup(key, "", str(cfg.get("rule")), [], [], cfg)
        g.run_ids.append(r["id"])
        g.seeds.append(cfg.get("seed"))
    out = list(groups.values())
    flats = [_flat(g.config) for g in out]
    # a rule's hyperparameter differs only among the groups of that rule
    differing = sorted({k for f in flats for k in f
                        if len({json.dumps(x.get(k), default=str) for x in flats if "." not in k or k in x}) > 1}
                       - {"rule"})
    for g, f in zip(out, flats):
        # an import-path rule's own hyperparameter goes without the (long) path, already first
        own = g.rule + "." if ":" in g.rule else "\0"
        parts = [g.rule] + [f"{k.removeprefix(own)}={_short(f.get(k))}" for k in differing[:3]]
        if len(differing) > 3:
            parts.append("…")
        g.label = " · ".join(parts)
    # two groups with the same visible label still need distinct names
    seen: dict[str, int] = {}
    for g in out:
        seen[g.label] = seen.get(g.label, 0) + 1
        if seen[g.label] > 1:
            g.label += f" ({seen[g.label]})"
    return out


def _short(v) -> str:
    if isinstance(v, list):
        return ",".join(map(str, v)) or "[]"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def repeat_seeds(used: Iterable[int], n: int) -> list[int]:
    """The n smallest non-negative seeds not in `used`."""
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 100:
        raise ValueError(f"number of seeds must be a whole number from 1 to 100, got {n!r}")
    used = set(int(s) for s in used if s is not None)
    out, s = [], 0
    while len(out) < n:
        if s not in used:
            out.append(s)
        s += 1
    return out


def repeat_configs(group: SeedGroup, n: int) -> list[dict]:
    """Configs of n new runs of the group's experiment, each with a seed the group has not used."""
    base = {k: v for k, v in group.config.items()}
    return [dict(base, seed=s) for s in repeat_seeds(group.seeds, n)]


# ---- metrics from the store --------------------------------------------------------------------
def final_metrics(store: RunStore, run: dict) -> dict:
    """One row of final metrics for a run row (NaN where the run has no such metric)."""
    df = store.metrics_frame(run["id"])
    nan = float("nan")

    def last(col):
        return float(df[col].dropna().iloc[-1]) if col in df and df[col].notna().any() else nan

    def best(col):
        return float(df[col].max()) if col in df and df[col].notna().any() else nan

    loss = df["train/loss"].dropna() if "train/loss" in df else pd.Series(dtype=float)
    summary = run.get("summary") or {}
    it = df["l2l/iterations"].dropna() if "l2l/iterations" in df else pd.Series(dtype=float)
    cfg = run["config"]

    def num(v):
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else nan

    return {
        "run": run["id"], "rule": cfg.get("rule"), "dataset": cfg.get("dataset"), "seed": cfg.get("seed"),
        "status": run["status"], "epochs": run.get("epoch"), "steps": run.get("step"),
        "final_test_accuracy": last("test/accuracy"), "best_test_accuracy": best("test/accuracy"),
        "final_test_loss": last("test/loss"),
        "final_train_loss": float(loss.iloc[-10:].mean()) if len(loss) else nan,
        "tasks": num(summary.get("tasks")) if it.size == 0 else float(it.size),
        "failures": num(summary.get("failures")),
        "mean_iterations": float(it.mean()) if it.size else nan,
        "final_efficiency": num(summary.get("final_efficiency")),
        "seconds": num(summary.get("seconds")),
        "name": run.get("name") or "",
    }


# final values (RunStore.final_values) that a FINAL_METRICS column already is
FINAL_TWINS = {"test/accuracy", "test/loss", "train/loss"}
RECORDED_HELP = "the run's own record (a rule's telemetry, a layer's rate or synchrony): its mean over the last epoch"


def final_metrics_table(store: RunStore, runs: list[dict], recorded: bool = False) -> pd.DataFrame:
    """Final metrics of several runs, one row each, plus its seed group label ('group').
    recorded: also one column per quantity the runs recorded (RunStore.final_values: a rule's
    gate, a layer's rate, ...; its mean over the last epoch), after "name"; their names are in
    ``.attrs["recorded"]``."""
    cols = ["run", "group", "rule", "dataset", "seed", "status", "epochs", "steps", *FINAL_METRICS, "name"]
    if not runs:
        out = pd.DataFrame(columns=cols)
        out.attrs["recorded"] = []
        return out
    label = {rid: g.label for g in seed_groups(runs) for rid in g.run_ids}
    rows = [dict(final_metrics(store, r), group=label[r["id"]]) for r in runs]
    out = pd.DataFrame(rows)[cols]
    keys: list[str] = []
    if recorded:
        finals = [store.final_values(r["id"]) for r in runs]
        keys = sorted({k for f in finals for k in f} - FINAL_TWINS - set(cols))
        out = pd.concat([out, pd.DataFrame([{k: f.get(k, float("nan")) for k in keys} for f in finals],
                                           columns=keys, index=out.index, dtype=float)], axis=1)
    out.attrs["recorded"] = keys
    return out


def group_summary(table: pd.DataFrame, metrics: Iterable[str] | None = None, level: float = 0.95,
                  finished_only: bool = True) -> pd.DataFrame:
    """Per group and metric: n, mean, sd, half-width, lo, hi (over finished runs by default).
    Metrics that no run of a group has are left out. Default metrics: FINAL_METRICS, then the
    table's recorded quantities (final_metrics_table(..., recorded=True))."""
    metrics = list(metrics) if metrics is not None else [*FINAL_METRICS, *table.attrs.get("recorded", [])]
    t = table[table["status"] == "finished"] if finished_only and len(table) else table
    rows = []
    for group, sub in t.groupby("group", sort=False):
        for m in metrics:
            if m not in sub or sub[m].notna().sum() == 0:
                continue
            ci = mean_ci(sub[m].tolist(), level)
            rows.append({"group": group, "metric": m, "n": ci.n, "mean": ci.mean, "sd": ci.sd,
                         "half": ci.half, "lo": ci.lo, "hi": ci.hi,
                         "seeds": ",".join(str(s) for s in sub.loc[sub[m].notna(), "seed"])})
    return pd.DataFrame(rows, columns=["group", "metric", "n", "mean", "sd", "half", "lo", "hi", "seeds"])


def overlay_frame(store: RunStore, run_ids: list[str], keys: Iterable[str] = tuple(CURVES)) -> pd.DataFrame:
    """Long frame of the runs' metric curves: run, step, epoch (fractional), key, value."""
    keys = list(keys)
    parts = []
    for rid in run_ids:
        df = store.metrics_frame(rid)
        if df.empty:
            continue
        spe = float(df["info/steps_per_epoch"].dropna().iloc[0]) if "info/steps_per_epoch" in df and \
            df["info/steps_per_epoch"].notna().any() else float("nan")
        for k in keys:
            if k not in df:
                continue
            s = df[k].dropna()
            if s.empty:
                continue
            step = s.index.to_numpy(dtype=float)
            parts.append(pd.DataFrame({"run": rid, "step": step, "epoch": step / spe if spe > 0 else np.nan,
                                       "key": k, "value": s.to_numpy(dtype=float)}))
    if not parts:
        return pd.DataFrame(columns=["run", "step", "epoch", "key", "value"])
    return pd.concat(parts, ignore_index=True)


def group_curve(frame: pd.DataFrame, run_ids: list[str], key: str, x: str = "step",
                level: float = 0.95) -> pd.DataFrame:
    """Mean curve of one key over the runs of a group, with its CI at each x where >= 1 run has a value."""
    sub = frame[(frame["key"] == key) & frame["run"].isin(run_ids)]
    rows = []
    for xv, g in sub.groupby(x, sort=True):
        ci = mean_ci(g["value"].tolist(), level)
        rows.append({x: xv, "mean": ci.mean, "lo": ci.lo, "hi": ci.hi, "n": ci.n})
    return pd.DataFrame(rows, columns=[x, "mean", "lo", "hi", "n"])


def metrics_csv(table: pd.DataFrame, summary: pd.DataFrame | None = None) -> bytes:
    """CSV bytes: the per-run table, then (after a blank line) the per-group summary when given."""
    buf = io.StringIO()
    table.to_csv(buf, index=False)
    if summary is not None and len(summary):
        buf.write("\n")
        summary.to_csv(buf, index=False)
    return buf.getvalue().encode()


# ---- figures (house style from snncore.viz) -----------------------------------------------------
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf"]
DASHES = ["solid", "dot", "dash", "dashdot", "longdash", "longdashdot"]


def _layout(fig: go.Figure, title: str, xtitle: str, ytitle: str) -> go.Figure:
    """House style, with the legend under the plot: above it (the house default) a legend of a
    few long run labels wrapped upward onto the title. The figure grows by a row per entry."""
    from .viz import LAYOUT
    n = sum(1 for t in fig.data if t.showlegend is not False)
    fig.update_layout(**LAYOUT, title=title)
    if n:
        rows = 20 * n + 10      # the space the legend takes at the bottom (an entry per row at worst)
        fig.update_layout(height=LAYOUT["height"] + rows,
                          legend=dict(orientation="h", yref="container", yanchor="bottom", y=0, x=0,
                                      font=dict(size=11)),
                          margin={**LAYOUT["margin"], "t": 50, "b": LAYOUT["margin"]["b"] + rows})
    fig.update_xaxes(title_text=xtitle)
    fig.update_yaxes(title_text=ytitle)
    return fig


def is_fraction(key: str) -> bool:
    """Metrics that live in [0, 1] (accuracies): their displayed intervals are clipped to it."""
    return "accuracy" in key


def overlay_figure(frame: pd.DataFrame, key: str, *, labels: dict | None = None, x: str = "step",
                   smooth: int = 0, groups: dict | None = None) -> go.Figure:
    """One line per run of one metric; x 'step' or 'epoch'. groups (run -> seed group label): a
    colour per group and a dash per run inside it, so a group's seeds read as one family."""
    title, ytitle = CURVES.get(key, (key, key))
    fig = go.Figure()
    sub = frame[frame["key"] == key]
    order = list(dict.fromkeys((groups or {}).get(r, r) for r in frame["run"].drop_duplicates()))
    seen: dict = {}
    for rid, g in sub.groupby("run", sort=False):
        g = g.sort_values("step")
        y = g["value"]
        if smooth and len(y) > smooth:
            y = y.rolling(smooth, min_periods=1).mean()
        grp = (groups or {}).get(rid, rid)
        k = seen[grp] = seen.get(grp, -1) + 1
        fig.add_trace(go.Scatter(x=g[x], y=y, name=(labels or {}).get(rid, rid), legendgroup=str(grp),
                                 line=dict(color=PALETTE[order.index(grp) % len(PALETTE)],
                                           dash=DASHES[k % len(DASHES)]),
                                 mode="lines" if len(g) > 1 else "markers"))
    return _layout(fig, title + (f" (mean of {smooth})" if smooth else ""),
                   "epoch" if x == "epoch" else "optimizer step", ytitle)


def group_curve_figure(curves: dict[str, pd.DataFrame], key: str, x: str = "step") -> go.Figure:
    """Mean curve per seed group with its 95 % CI as a band (where a group has >= 2 runs).
    Accuracy bands are drawn clipped to [0, 1] (a t interval over few seeds can pass 100 %)."""
    title, ytitle = CURVES.get(key, (key, key))
    fig = go.Figure()
    lo_cap, hi_cap = (0.0, 1.0) if is_fraction(key) else (-np.inf, np.inf)
    for i, (label, c) in enumerate(curves.items()):
        color = PALETTE[i % len(PALETTE)]
        band = c.dropna(subset=["lo", "hi"])
        if len(band) >= 1:
            fig.add_trace(go.Scatter(x=list(band[x]) + list(band[x])[::-1],
                                     y=list(band["hi"].clip(lo_cap, hi_cap))
                                     + list(band["lo"].clip(lo_cap, hi_cap))[::-1], fill="toself",
                                     line=dict(width=0), fillcolor=color, opacity=0.2,
                                     hoverinfo="skip", showlegend=False, name=f"{label} 95% CI"))
        fig.add_trace(go.Scatter(x=c[x], y=c["mean"], name=label, line=dict(color=color),
                                 customdata=np.stack([c["lo"], c["hi"]], axis=-1) if len(c) else None,
                                 hovertemplate="%{y:.4g} (95 % CI %{customdata[0]:.4g} to %{customdata[1]:.4g})"
                                               "<extra>%{fullData.name}</extra>",
                                 mode="lines" if len(c) > 1 else "markers"))
    return _layout(fig, f"{title}: mean and 95 % CI per group", "epoch" if x == "epoch" else "optimizer step",
                   ytitle)


def ci_figure(summary: pd.DataFrame, metric: str) -> go.Figure:
    """Mean ± 95 % CI of one final metric per group (points with error bars; n next to each)."""
    sub = summary[summary["metric"] == metric]
    half = sub["half"].fillna(0.0)
    mean = sub["mean"]
    # an accuracy's bar is drawn clipped to [0, 1]; the hover and the tables keep the real bounds
    hi, lo = mean + half, mean - half
    if is_fraction(metric):
        hi, lo = hi.clip(upper=1.0), lo.clip(lower=0.0)
    fig = go.Figure(go.Scatter(
        x=sub["group"], y=mean, mode="markers+text", marker=dict(size=10),
        error_y=dict(type="data", symmetric=False, array=(hi - mean).clip(lower=0.0),
                     arrayminus=(mean - lo).clip(lower=0.0), visible=True, thickness=1.5, width=8),
        text=[f"n={n}" for n in sub["n"]], textposition="middle right",
        customdata=np.stack([half.to_numpy(float), (mean - half).to_numpy(float), (mean + half).to_numpy(float)],
                            axis=-1) if len(sub) else None,
        hovertemplate="%{x}<br>mean %{y:.4g} ± %{customdata[0]:.3g}"
                      "<br>95 % CI %{customdata[1]:.4g} to %{customdata[2]:.4g}<extra></extra>", name=metric))
    fig.update_layout(showlegend=False)
    return _layout(fig, f"{FINAL_METRICS.get(metric, metric)}: mean ± 95 % CI", "group", metric)
