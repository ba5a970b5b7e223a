"""The Sweep page's numbers and figures on hand-made frames: the trials table of a sweep state,
seed means with Student-t 95 % intervals (hand-computed), bins of a range axis, the best point, and
the figures' data and labelled axes (snncore/sweeps/results.py, snncore/viz/sweep.py)."""
import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from snncore.config import RunConfig
from snncore.sweeps import engine, results
from snncore.sweeps.spec import parse_spec
from snncore.viz import sweep as vz

TINY = dict(dataset="digits", rule="bptt", epochs=2, timesteps=4, hidden=[16], n_train=64)
# t_{0.975, n-1} from a table: n = 2 -> 12.7062, n = 3 -> 4.3027
T2, T3 = 12.706204736, 4.302652730


def state_of(grids, ranges=(), seeds=1, search="grid", trials=0, metric="test_accuracy"):
    spec = parse_spec(RunConfig.from_dict(TINY), list(grids), list(ranges), seeds=seeds, search=search, trials=trials)
    n = len(spec.grid_points()) if search == "grid" else trials
    return {"sweep_id": "sw-x", "spec": spec.to_dict(), "options": dataclasses.asdict(engine.Options(metric=metric)),
            "status": "running", "n_trials": n}


def frame(rows):
    return pd.DataFrame([{"trial": f"{i:05d}", **r, "status": r.get("status", "finished")} for i, r in enumerate(rows)])


def test_trials_frame_rows_progress_and_pending_points():
    st = state_of(["lr=1e-3,5e-3"], seeds=2)
    recs = {"00000": {"key": "00000", "index": 0, "point": {"lr": 1e-3, "seed": 0}, "run_id": "r0",
                      "status": "finished", "metric": 0.75, "error": None, "node": "a" * 56, "host": "gpu1"},
            "00001": {"key": "00001", "index": 1, "point": {"lr": 1e-3, "seed": 1}, "run_id": "r1",
                      "status": "running", "metric": None, "error": None, "node": "b"},
            "00002": {"key": "00002", "index": 2, "point": {"lr": 5e-3, "seed": 0}, "run_id": "r2",
                      "status": "failed", "metric": None, "error": "RuntimeError: boom", "node": "a"}}
    runs = {"r0": {"status": "finished", "step": 10, "total_steps": 10, "epoch": 2, "config": {"epochs": 2}},
            "r1": {"status": "running", "step": 5, "total_steps": 20, "epoch": 1, "config": {"epochs": 2}},
            "r2": {"status": "failed", "step": 0, "total_steps": 0, "epoch": 0, "config": {"epochs": 2}}}
    f = results.trials_frame(st, recs, runs)
    assert list(f.columns) == ["trial", "lr", "seed", "status", "epoch", "progress", "test_accuracy", "run", "node",
                               "error"]
    assert list(f["trial"]) == ["00000", "00001", "00002", "00003"]
    assert list(f["status"]) == ["finished", "running", "failed", "pending"]
    assert list(f["node"]) == ["gpu1 · aaaaaaaa", "b", "a", ""], "host and the start of the Ray node id"
    assert list(f["progress"]) == [1.0, 0.25, 0.0, 0.0]
    assert list(f["epoch"]) == ["2/2", "1/2", "0/2", "0/2"]
    assert list(f["lr"]) == [1e-3, 1e-3, 5e-3, 5e-3] and list(f["seed"]) == [0, 1, 0, 1]
    assert f["test_accuracy"].iloc[0] == 0.75 and math.isnan(f["test_accuracy"].iloc[1])
    assert f["error"].iloc[2] == "RuntimeError: boom" and f["run"].iloc[3] == ""
    # only the finished trial enters the means
    done = results.comparable(f, results.SweepSpec.from_dict(st["spec"]), "test_accuracy")
    assert list(done["trial"]) == ["00000"]


def test_group_stats_mean_and_t_interval_by_hand():
    f = frame([{"lr": 1e-3, "seed": s, "test_accuracy": a} for s, a in enumerate([0.80, 0.90, 0.85])]
              + [{"lr": 5e-3, "seed": s, "test_accuracy": a} for s, a in enumerate([0.60, 0.70])]
              + [{"lr": 1e-2, "seed": 0, "test_accuracy": 0.5}])
    s = results.group_stats(f, ["lr"], "test_accuracy").set_index("lr")
    # lr 1e-3: mean 0.85, sd 0.05, half = t(2) * 0.05 / sqrt(3)
    assert s.loc[1e-3, "mean"] == pytest.approx(0.85)
    assert s.loc[1e-3, "half"] == pytest.approx(T3 * 0.05 / math.sqrt(3), rel=1e-6)
    assert s.loc[1e-3, "half"] == pytest.approx(0.124207, abs=1e-6)
    assert (s.loc[1e-3, "lo"], s.loc[1e-3, "hi"]) == pytest.approx((0.85 - 0.124207, 0.85 + 0.124207), abs=1e-6)
    # lr 5e-3: mean 0.65, sd = 0.1 / sqrt(2), half = t(1) * sd / sqrt(2) = 12.706 * 0.05
    assert s.loc[5e-3, "mean"] == pytest.approx(0.65)
    assert s.loc[5e-3, "half"] == pytest.approx(T2 * 0.05, rel=1e-6)
    # one trial: a mean, no interval
    assert s.loc[1e-2, "mean"] == 0.5 and math.isnan(s.loc[1e-2, "half"]) and s.loc[1e-2, "n"] == 1
    assert list(s["n"]) == [3, 2, 1]
    assert results.best_point(s.reset_index(), "max")["lr"] == 1e-3
    assert results.best_point(s.reset_index(), "min")["lr"] == 1e-2
    assert results.best_point(s.reset_index().iloc[:0], "max") is None


def test_pairs_for_the_heatmap_pool_seeds():
    rows = [{"lr": lr, "tau": tau, "seed": sd, "test_accuracy": lr * 100 + tau + sd / 10}
            for lr in (1e-3, 5e-3) for tau in (2.0, 3.0) for sd in (0, 1)]
    s = results.group_stats(frame(rows), ["lr", "tau"], "test_accuracy")
    assert len(s) == 4 and set(s["n"]) == {2}
    cell = s[(s["lr"] == 5e-3) & (s["tau"] == 3.0)].iloc[0]
    assert cell["mean"] == pytest.approx(0.5 + 3.0 + 0.05)      # seeds 0 and 1 -> +0.0, +0.1
    assert cell["half"] == pytest.approx(T2 * (0.1 / math.sqrt(2)) / math.sqrt(2), rel=1e-6)
    fig = vz.heatmap_figure(s, "lr", "tau", "test_accuracy")
    h = fig.data[0]
    assert list(h.x) == ["0.001", "0.005"] and list(h.y) == ["2", "3"]
    assert h.z[1][1] == pytest.approx(3.55) and h.z[0][0] == pytest.approx(2.15)
    assert h.customdata[1][1][0] == pytest.approx(cell["lo"]) and h.customdata[1][1][2] == 2
    assert "95 % CI" in h.hovertemplate
    assert fig.layout.xaxis.title.text == "lr" and fig.layout.yaxis.title.text == "tau"
    assert fig.layout.title.text == "mean test_accuracy over lr × tau"


def test_range_axes_are_binned_evenly_in_log_or_linear():
    c = results.bin_centers([1e-4, 5e-4, 2e-3, 1e-2], 1e-4, 1e-2, log=True, bins=2)
    assert c == pytest.approx([10 ** -3.5, 10 ** -3.5, 10 ** -2.5, 10 ** -2.5])
    assert results.bin_centers([0.0, 3.3, 9.99, 10.0], 0.0, 10.0, log=False, bins=5) == pytest.approx([1, 3, 9, 9])
    st = state_of([], ranges=["lr=1e-4:1e-2:log"], search="random", trials=2)
    spec = results.SweepSpec.from_dict(st["spec"])
    f = frame([{"lr": 1.1e-4, "seed": 0, "test_accuracy": 0.3}, {"lr": 9e-3, "seed": 0, "test_accuracy": 0.4}])
    done = results.comparable(f, spec, "test_accuracy")
    edges = [1e-4 * 10 ** (2 * k / results.BINS) for k in range(results.BINS + 1)]
    assert done["lr"].iloc[0] == pytest.approx(math.sqrt(edges[0] * edges[1]))
    assert done["lr"].iloc[1] == pytest.approx(math.sqrt(edges[-2] * edges[-1]))


def test_effect_figure_error_bars_and_axes():
    s = pd.DataFrame({"lr": [1e-4, 1e-3, 1e-2], "mean": [0.2, 0.5, 0.4], "half": [0.1, float("nan"), 0.05],
                      "lo": [0.1, float("nan"), 0.35], "hi": [0.3, float("nan"), 0.45], "n": [3, 1, 2]})
    fig = vz.effect_figure(s, "lr", "test_accuracy")
    tr = fig.data[0]
    assert list(tr.y) == [0.2, 0.5, 0.4] and list(tr.error_y.array) == [0.1, 0.0, 0.05]
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis.title.text == "lr"
    assert list(fig.layout.xaxis.ticktext) == ["0.0001", "0.001", "0.01"], "the swept values, not plotly's 100μ"
    assert fig.layout.yaxis.title.text == "test_accuracy (mean, 95 % CI)" and fig.layout.title.text == "effect of lr"
    cat = vz.effect_figure(pd.DataFrame({"optimizer": ["adam", "sgd"], "mean": [0.5, 0.4], "half": [0.1, 0.1],
                                         "lo": [0.4, 0.3], "hi": [0.6, 0.5], "n": [2, 2]}), "optimizer", "seconds")
    assert cat.layout.xaxis.type == "category" and list(cat.data[0].x) == ["adam", "sgd"]


def test_parallel_coordinates_dimensions():
    f = frame([{"lr": 1e-4, "optimizer": "sgd", "seed": 0, "test_accuracy": 0.2},
               {"lr": 1e-2, "optimizer": "adam", "seed": 1, "test_accuracy": 0.6}])
    fig = vz.parallel_figure(f, ["lr", "optimizer", "seed"], "test_accuracy")
    dims = fig.data[0].dimensions
    assert [d.label for d in dims] == ["lr (log)", "optimizer", "seed", "test_accuracy"]
    assert list(dims[0].values) == pytest.approx([-4, -2])
    assert list(dims[0].tickvals) == pytest.approx([-4, -2]) and list(dims[0].ticktext) == ["0.0001", "0.01"]
    many = frame([{"lr": 10 ** (-4 + k / 4), "optimizer": "sgd", "seed": 0, "test_accuracy": 0.1 * k} for k in range(9)])
    ticks = vz.parallel_figure(many, ["lr"], "test_accuracy").data[0].dimensions[0]
    assert list(ticks.ticktext) == ["0.0001", "0.001", "0.01"], "a range's ticks are its decades"
    assert list(dims[1].values) == [1, 0] and list(dims[1].ticktext) == ["adam", "sgd"]
    assert list(dims[3].values) == [0.2, 0.6] and "2 finished trials" in fig.layout.title.text
    assert list(dims[2].tickvals) == [0, 1] and list(dims[2].ticktext) == ["0", "1"], "seeds: no 0.2 steps"
    assert dims[3].tickvals is None, "a metric keeps plotly's own ticks"


def test_point_config_and_ci_text():
    st = state_of(["lr=1e-3,5e-3"], seeds=3)
    cfg = results.point_config(st, {"lr": 5e-3, "seed": 2})
    assert cfg["lr"] == 5e-3 and cfg["seed"] == 0 and cfg["n_train"] == 64 and "name" not in cfg
    assert vz.ci_text(0.85, 0.1242) == "0.85 ± 0.12" and vz.ci_text(0.5, float("nan")) == "0.5 (n=1)"
    assert vz.is_log([1e-4, 1e-2]) and vz.is_log([5e-4, 1e-3, 5e-3]) and not vz.is_log([1e-3, 5e-3])
    assert not vz.is_log(["a", "b"]) and not vz.is_log([0.0, 1.0, 10.0])


def test_a_configs_sweep_is_grouped_by_its_config():
    """A sweep over whole configs (Compare's "repeat with N seeds" over two groups): the table's
    "config" column names what differs between the configs (seeds aside, a rule's hyperparameters
    as RULE.NAME), the means are per config over its seeds, and "open in Train" gets that config."""
    from snncore.sweeps.spec import configs_spec
    a = {**TINY, "rule": "ssdp", "rule_params": {"a_plus": 1e-3}}
    b = {**TINY, "rule": "ssdp", "rule_params": {"a_plus": 1e-2}}
    spec = configs_spec([{**a, "seed": 0}, {**a, "seed": 1}, {**b, "seed": 0}, {**b, "seed": 1}])
    st = {"sweep_id": "sw-c", "spec": spec.to_dict(), "options": dataclasses.asdict(engine.Options()),
          "status": "running", "n_trials": 4}
    assert results.config_labels(spec) == ["ssdp.a_plus=0.001"] * 2 + ["ssdp.a_plus=0.01"] * 2
    assert results.names(spec) == ["config"]
    acc = [0.80, 0.90, 0.60, 0.70]
    recs = {f"{i:05d}": {"key": f"{i:05d}", "index": i, "point": {"config": i, "seed": i % 2}, "run_id": f"r{i}",
                         "status": "finished", "metric": acc[i], "error": None, "node": "a"} for i in range(3)}
    runs = {f"r{i}": {"status": "finished", "step": 4, "total_steps": 4, "epoch": 2, "config": {"epochs": 2}}
            for i in range(3)}
    f = results.trials_frame(st, recs, runs)
    assert list(f.columns[:3]) == ["trial", "config", "seed"]
    assert list(f["config"]) == ["ssdp.a_plus=0.001", "ssdp.a_plus=0.001", "ssdp.a_plus=0.01", "ssdp.a_plus=0.01"]
    assert list(f["status"]) == ["finished"] * 3 + ["pending"] and list(f["seed"]) == [0, 1, 0, 1]
    stats = results.group_stats(results.comparable(f, spec, "test_accuracy"), ["config"], "test_accuracy")
    row = stats.set_index("config").loc["ssdp.a_plus=0.001"]
    assert row["mean"] == pytest.approx(0.85) and row["n"] == 2
    assert row["half"] == pytest.approx(T2 * math.sqrt(0.005) / math.sqrt(2))
    assert stats.set_index("config").loc["ssdp.a_plus=0.01", "n"] == 1
    best = results.best_point(stats, "max")
    cfg = results.point_config(st, {"config": best["config"]})
    assert cfg["rule_params"]["a_plus"] == 1e-3 and cfg["seed"] == 0 and cfg["rule"] == "ssdp"
    # configs that differ only in their seed are one group
    same = configs_spec([{**a, "seed": 0}, {**a, "seed": 5}])
    assert results.config_labels(same) == ["the config", "the config"]
    # another rule: its own hyperparameters are no difference, the rule is
    two = configs_spec([{**a, "seed": 0}, {**TINY, "rule": "bptt", "lr": 1e-2, "seed": 0}])
    assert results.config_labels(two) == ["lr=0.005 · rule=ssdp", "lr=0.01 · rule=bptt"]


def test_a_rule_hyperparameter_at_other_rules_points_is_n_a():
    """A sweep over rules: bptt's points have no ssdp.a_plus. The heatmap gives them an "n/a"
    row, the parallel coordinates an "n/a" tick under the values, the effect of a_plus is over
    ssdp's points, and "open in Train" leaves a_plus out."""
    from snncore.config import RunConfig
    from snncore.sweeps.spec import parse_spec
    spec = parse_spec(RunConfig.from_dict({"rule": "bptt"}), ["rule=bptt,ssdp", "ssdp.a_plus=1e-4,1e-2"], [])
    f = frame([{"rule": "bptt", "ssdp.a_plus": None, "seed": 0, "test_accuracy": 0.8},
               {"rule": "ssdp", "ssdp.a_plus": 1e-4, "seed": 0, "test_accuracy": 0.7},
               {"rule": "ssdp", "ssdp.a_plus": 1e-2, "seed": 0, "test_accuracy": 0.5}])
    heat = vz.heatmap_figure(results.group_stats(f, ["rule", "ssdp.a_plus"], "test_accuracy"),
                             "rule", "ssdp.a_plus", "test_accuracy")
    assert list(heat.data[0].y) == ["0.0001", "0.01", "n/a"] and list(heat.data[0].x) == ["bptt", "ssdp"]
    assert heat.data[0].z[2][0] == pytest.approx(0.8) and np.isnan(heat.data[0].z[2][1])
    eff = vz.effect_figure(results.group_stats(f, ["ssdp.a_plus"], "test_accuracy"), "ssdp.a_plus", "test_accuracy")
    assert list(eff.data[0].x) == [1e-4, 1e-2] and list(eff.data[0].y) == pytest.approx([0.7, 0.5])
    dim = vz.parallel_figure(f, ["rule", "ssdp.a_plus"], "test_accuracy").data[0].dimensions[1]
    assert dim.label == "ssdp.a_plus (log)" and list(dim.ticktext) == ["n/a", "0.0001", "0.01"]
    assert dim.values[0] == dim.tickvals[0] < -4 and list(dim.values[1:]) == pytest.approx([-4, -2])
    state = {"spec": spec.to_dict()}
    cfg = results.point_config(state, {"rule": "bptt", "ssdp.a_plus": float("nan")})
    assert cfg["rule"] == "bptt" and cfg["rule_params"] == {}
