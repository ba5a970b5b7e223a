"""snncore.compare (CI math, seed groups, tables, curves) and snncore.runs.queue (one run at a time)."""
import math
import time

import pytest

from snncore import compare
from snncore.config import RunConfig
from snncore.runs import queue
from snncore.store import RunStore


# ---- confidence intervals on hand-computed numbers -------------------------------------------------
def test_mean_ci_three_values():
    ci = compare.mean_ci([1.0, 2.0, 3.0])
    # mean 2, s = 1, t_{0.975, 2} = 4.302652729911275, half = t * s / sqrt(3)
    assert ci.n == 3 and ci.mean == pytest.approx(2.0) and ci.sd == pytest.approx(1.0)
    assert ci.half == pytest.approx(4.302652729911275 / math.sqrt(3), rel=1e-9)
    assert ci.lo == pytest.approx(2.0 - 2.4841377118) and ci.hi == pytest.approx(2.0 + 2.4841377118)


def test_mean_ci_two_values_and_other_level():
    ci = compare.mean_ci([0.90, 0.95])
    # s = 0.05 / sqrt(2), s / sqrt(2) = 0.025, t_{0.975, 1} = 12.706204736174707
    assert ci.mean == pytest.approx(0.925)
    assert ci.half == pytest.approx(12.706204736174707 * 0.025, rel=1e-9)
    ci90 = compare.mean_ci([1.0, 2.0, 3.0, 4.0], level=0.90)
    # s = sqrt(5/3), t_{0.95, 3} = 2.3533634348018264
    assert ci90.half == pytest.approx(2.3533634348018264 * math.sqrt(5 / 3) / 2, rel=1e-9)


def test_mean_ci_degenerate():
    one = compare.mean_ci([0.7])
    assert one.n == 1 and one.mean == 0.7 and math.isnan(one.half)
    none = compare.mean_ci([None, float("nan")])
    assert none.n == 0 and math.isnan(none.mean)
    same = compare.mean_ci([0.5, 0.5, 0.5])
    assert same.half == 0.0 and same.lo == same.hi == 0.5
    with pytest.raises(ValueError, match="level"):
        compare.mean_ci([1, 2], level=1.5)


# ---- seed groups -----------------------------------------------------------------------------------
def _row(i, **cfg):
    base = dict(dataset="digits", rule="bptt", epochs=1, hidden=[32], seed=0)
    return {"id": f"r{i}", "config": dict(base, **cfg), "created": float(i), "status": "finished"}


def test_seed_groups_differ_only_by_seed():
    rows = [_row(0), _row(1, seed=1), _row(2, rule="ssdp"), _row(3, rule="ssdp", seed=4, name="rep"),
            _row(4, rule="ssdp", rule_params={"a_plus": 1e-3}), _row(5, seed=2, device="cpu", log_every=9)]
    groups = compare.seed_groups(rows)
    assert [g.run_ids for g in groups] == [["r0", "r1", "r5"], ["r2", "r3"], ["r4"]]
    assert groups[0].seeds == [0, 1, 2] and groups[1].seeds == [0, 4]
    # labels name the rule and the field that tells the ssdp groups apart
    assert groups[0].label.startswith("bptt") and "ssdp.a_plus=0.001" in groups[2].label
    assert groups[1].label != groups[2].label


def test_rule_defaults_written_out_are_the_same_group():
    from snncore.rules import get_rule
    a_plus = get_rule("ssdp").Params().a_plus
    rows = [_row(0, rule="ssdp"), _row(1, rule="ssdp", seed=3, rule_params={"a_plus": a_plus})]
    assert len(compare.seed_groups(rows)) == 1


def test_repeat_configs_use_unused_seeds():
    g = compare.seed_groups([_row(0, seed=0), _row(1, seed=2)])[0]
    cfgs = compare.repeat_configs(g, 3)
    assert [c["seed"] for c in cfgs] == [1, 3, 4]
    for c in cfgs:
        RunConfig.from_dict(c)                              # valid configs
        assert compare.experiment_key(c) == g.key            # same experiment
    with pytest.raises(ValueError, match="1 to 100"):
        compare.repeat_seeds([0], 0)


# ---- tables and curves from a store ----------------------------------------------------------------
def _fake_run(store, seed, accs, rule="bptt", losses=(1.0, 0.8, 0.6)):
    cfg = RunConfig.from_dict(dict(dataset="digits", rule=rule, epochs=len(accs), hidden=[32], seed=seed)).to_dict()
    rid = store.create_run(cfg)
    store.log_metrics(rid, [(0, 0, "info/steps_per_epoch", 2)])
    store.log_metrics(rid, [(i, i // 2, "train/loss", v) for i, v in enumerate(losses)])
    store.log_metrics(rid, [(2 * (e + 1), e, "test/accuracy", a) for e, a in enumerate(accs)])
    store.end_run(rid, "finished", summary={"seconds": 1.5})
    time.sleep(0.002)
    return rid


def test_final_table_group_summary_and_csv(tmp_path):
    store = RunStore(tmp_path / "runs")
    a = [_fake_run(store, s, accs) for s, accs in enumerate([[0.5, 0.80], [0.6, 0.90], [0.7, 0.85]])]
    b = _fake_run(store, 0, [0.4, 0.70], rule="ssdp")
    runs = [store.get_run(r) for r in a + [b]]
    table = compare.final_metrics_table(store, runs)
    assert list(table["final_test_accuracy"]) == pytest.approx([0.80, 0.90, 0.85, 0.70])
    assert list(table["best_test_accuracy"]) == pytest.approx([0.80, 0.90, 0.85, 0.70])
    assert table["final_train_loss"].iloc[0] == pytest.approx(0.8)     # mean of the (3) last steps
    summary = compare.group_summary(table)
    acc = summary[summary["metric"] == "final_test_accuracy"].set_index("group")
    bptt = acc.loc[[g for g in acc.index if g.startswith("bptt")][0]]
    assert bptt["n"] == 3 and bptt["mean"] == pytest.approx(0.85)
    assert bptt["half"] == pytest.approx(4.302652729911275 * 0.05 / math.sqrt(3), rel=1e-9)
    assert bptt["seeds"] == "0,1,2"
    ssdp = acc.loc[[g for g in acc.index if g.startswith("ssdp")][0]]
    assert ssdp["n"] == 1 and math.isnan(ssdp["half"])
    text = compare.metrics_csv(table, summary).decode()
    assert text.splitlines()[0].startswith("run,group,rule")
    assert "final_test_accuracy" in text and a[0] in text
    # a failed run is tabulated but kept out of the interval
    store.end_run(a[2], "failed", error="x")
    t2 = compare.final_metrics_table(store, [store.get_run(r) for r in a])
    s2 = compare.group_summary(t2)
    assert s2[s2["metric"] == "final_test_accuracy"]["n"].iloc[0] == 2


def test_overlay_frame_and_group_curve(tmp_path):
    store = RunStore(tmp_path / "runs")
    ids = [_fake_run(store, s, accs) for s, accs in enumerate([[0.5, 0.8], [0.7, 0.9]])]
    f = compare.overlay_frame(store, ids)
    acc = f[(f["key"] == "test/accuracy") & (f["run"] == ids[0])]
    assert list(acc["step"]) == [2, 4] and list(acc["epoch"]) == [1.0, 2.0]
    c = compare.group_curve(f, ids, "test/accuracy", x="epoch")
    assert list(c["mean"]) == pytest.approx([0.6, 0.85])
    assert c["hi"].iloc[0] - c["mean"].iloc[0] == pytest.approx(12.706204736174707 * 0.1, rel=1e-9)  # s/sqrt(n) = 0.1
    fig = compare.overlay_figure(f, "test/accuracy", x="epoch")
    assert len(fig.data) == 2 and "test accuracy" in fig.layout.title.text
    summary = compare.group_summary(compare.final_metrics_table(store, [store.get_run(i) for i in ids]))
    ci_fig = compare.ci_figure(summary, "final_test_accuracy")
    half = 12.706204736174707 * 0.05          # mean 0.85 ± 0.635: the upper bound is 148 %
    # the bar is drawn clipped at 100 % accuracy; the hover (customdata) and the table keep the number
    assert list(ci_fig.data[0].error_y.array) == pytest.approx([1.0 - 0.85])
    assert list(ci_fig.data[0].error_y.arrayminus) == pytest.approx([half])
    assert ci_fig.data[0].customdata[0][0] == pytest.approx(half)
    assert summary[summary["metric"] == "final_test_accuracy"]["hi"].iloc[0] == pytest.approx(0.85 + half)
    band = compare.group_curve_figure({"bptt": c}, "test/accuracy", x="epoch")
    assert band.data[0].fill == "toself"
    assert max(band.data[0].y) == pytest.approx(1.0) and min(band.data[0].y) >= 0.0     # was 1.61
    assert band.data[1].customdata[1][1] == pytest.approx(c["hi"].iloc[1])               # hover: the real bound


def test_overlay_colours_per_seed_group_and_legend_below_the_title(tmp_path):
    store = RunStore(tmp_path / "runs")
    ids = [_fake_run(store, s, [0.5, 0.8]) for s in range(3)]
    f = compare.overlay_frame(store, ids)
    groups = {ids[0]: "A", ids[1]: "A", ids[2]: "B"}
    fig = compare.overlay_figure(f, "test/accuracy", groups=groups)
    col = {t.name: t.line.color for t in fig.data}
    dash = {t.name: t.line.dash for t in fig.data}
    assert col[ids[0]] == col[ids[1]] != col[ids[2]]          # one colour per seed group ...
    assert dash[ids[0]] != dash[ids[1]]                       # ... the seeds told apart by the dash
    # the legend sits at the bottom of the figure, with its own room: not above the plot on the title
    assert fig.layout.legend.yref == "container" and fig.layout.legend.y == 0
    assert fig.layout.legend.yanchor == "bottom"
    assert fig.layout.margin.b >= 20 * len(fig.data) and fig.layout.height > 300


# ---- the queue -------------------------------------------------------------------------------------
def test_queue_rejects_bad_config_and_creates_nothing(tmp_path):
    store = RunStore(tmp_path / "runs")
    with pytest.raises(ValueError, match="hidden"):
        queue.queue_runs(store, [dict(rule="bptt"), dict(rule="bptt", hidden=[0])])
    assert store.list_runs() == []


def test_cancelled_queued_run_is_not_started(tmp_path):
    store = RunStore(tmp_path / "runs")
    (rid,) = queue.queue_runs(store, [dict(rule="bptt")])
    assert store.get_run(rid)["status"] == "queued"
    store.request_stop(rid)
    assert queue.work(store, poll=0.05, timeout=30) == []
    run = store.get_run(rid)
    assert run["status"] == "stopped" and "cancelled" in run["error"]


def test_cancel_between_the_workers_check_and_its_start_is_not_lost(tmp_path, monkeypatch):
    from snncore.runs import launch
    store = RunStore(tmp_path / "runs")
    (rid,) = queue.queue_runs(store, [dict(rule="bptt")])
    run = store.get_run(rid)                      # the worker's look: queued, no stop requested
    assert not run["stop_requested"]
    store.request_stop(rid)                       # the cancel lands now
    spawned = []
    monkeypatch.setattr(launch, "_spawn", lambda *a, **k: spawned.append(a))
    queue._start(store, run)
    assert spawned == []
    run = store.get_run(rid)
    assert run["status"] == "stopped" and "cancelled" in run["error"]
    # without a cancel the same start claims the run and spawns it
    (rid2,) = queue.queue_runs(store, [dict(rule="bptt")])
    queue._start(store, store.get_run(rid2))
    assert len(spawned) == 1 and store.get_run(rid2)["status"] == "starting"
    assert not store.claim_queued(rid2)           # claimed once only


def test_queue_runs_one_after_another(tmp_path, tiny):
    store = RunStore(tmp_path / "runs")
    ids = queue.queue_runs(store, [dict(tiny, n_train=128, seed=s) for s in (1, 2)])
    assert [r["id"] for r in queue.queued(store)] == ids
    # a second worker while one holds the lock does nothing
    lock = queue._lock(store)
    assert queue.worker_running(store) and queue.work(store, timeout=5) == []
    lock.close()
    started = queue.work(store, poll=0.1, timeout=240)
    assert started == ids
    deadline = time.time() + 240
    while time.time() < deadline and any(store.get_run(r)["status"] != "finished" for r in ids):
        time.sleep(0.3)
    r1, r2 = (store.get_run(r) for r in ids)
    assert r1["status"] == r2["status"] == "finished", (r1["error"], r2["error"])
    assert r2["started"] >= r1["ended"]                 # never both at once
    assert r2["config"]["seed"] == 2 and store.metrics_frame(r2["id"])["test/accuracy"].notna().any()


def test_queue_cli_bad_flag_one_line(tmp_path, capsys):
    assert queue.main(["--runs-dir", str(tmp_path / "r"), "--max-live", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")
    with pytest.raises(SystemExit) as e:
        queue.main(["--bogus"])
    assert e.value.code == 2


def test_recorded_quantities_join_the_final_metrics_and_their_groups(tmp_path):
    """recorded=True: each run's final values (a rule's telemetry, its mean over the last epoch)
    become columns and seed-group metrics; the twins of final_* columns and 'epoch' stay out."""
    store = RunStore(tmp_path / "runs")
    ids = []
    for seed, gates in enumerate([(0.1, 0.3), (0.5, 0.7), (0.2, 0.2)]):
        rid = _fake_run(store, seed, [0.5, 0.8])
        store.log_metrics(rid, [(2, 0, "epoch", 1), (4, 1, "epoch", 2)])
        store.log_telemetry(rid, [(1, "gate/fc1", 9.0), (3, "gate/fc1", gates[0]), (4, "gate/fc1", gates[1])])
        ids.append(rid)
    table = compare.final_metrics_table(store, [store.get_run(r) for r in ids], recorded=True)
    assert table.attrs["recorded"] == ["gate/fc1"]
    assert list(table["gate/fc1"]) == pytest.approx([0.2, 0.6, 0.2])      # steps 3-4: the last epoch
    assert "train/loss" not in table and "test/accuracy" not in table
    summary = compare.group_summary(table)
    gate = summary[summary["metric"] == "gate/fc1"].iloc[0]
    assert gate["n"] == 3 and gate["mean"] == pytest.approx(1.0 / 3)
    assert gate["half"] == pytest.approx(4.302652729911275 * 0.4 / 3, rel=1e-9)   # sd² = 0.16/3, n = 3
    assert "gate/fc1" in compare.metrics_csv(table, summary).decode().splitlines()[0]
    assert compare.final_metrics_table(store, [store.get_run(ids[0])]).attrs["recorded"] == []
