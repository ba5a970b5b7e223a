"""Sweeps (issue #15): a local Ray Tune sweep of tiny digits runs through the CLI, its runs in the
store with their tags, `sweeps --json`, every bad-grid message (exit 2 before Ray starts), and
`sweep --resume` after the driver was SIGKILLed (no finished trial runs twice)."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--dataset", "digits", "--rule", "bptt", "--epochs", "1", "--n-train", "64", "--hidden", "16",
        "--timesteps", "4", "--batch-size", "32", "--device", "cpu"]


def _env(runs):
    return {**os.environ, "SNNCORE_RUNS": str(runs), "PYTHONWARNINGS": "ignore", "SNNCORE_THREADS": "1"}


def _cli(runs, *args, timeout=300):
    return subprocess.run([sys.executable, "-m", "snncore", *args], cwd=ROOT, env=_env(runs),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    t0 = time.monotonic()
    r = _cli(runs, "sweep", *TINY, "--grid", "lr=1e-3,5e-3", "--seeds", "2", "--name", "grid test", "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    assert len(r.stdout.strip().splitlines()) == 1, "--json: stdout is the one object (progress goes to stderr)"
    return runs, json.loads(r.stdout.strip().splitlines()[-1]), time.monotonic() - t0, r.stderr


def _progress(stderr: str) -> tuple[str, list[str]]:
    """The sweep's start line and its trial lines, from among Ray's own lines."""
    start = [l for l in stderr.splitlines() if l.startswith("sweep sw-")]
    trials = [l for l in stderr.splitlines() if re.match(r"\[\s*\d+/\d+\] ", l)]
    assert len(start) == 1, stderr[-3000:]
    return start[0], trials


def test_local_sweep_end_to_end(swept):
    runs, out, _, _ = swept
    assert set(out) == {"sweep_id", "status", "trials", "finished", "failed", "best", "seconds"}
    assert (out["status"], out["trials"], out["finished"], out["failed"]) == ("finished", 4, 4, 0)
    assert out["seconds"] > 0
    best = out["best"]
    assert set(best) >= {"run_id", "config", "metric"} and 0.0 <= best["metric"] <= 1.0
    assert best["config"]["lr"] in (1e-3, 5e-3) and best["config"]["hidden"] == [16]
    from snncore.store import RunStore
    store = RunStore(runs)
    rows = [r for r in store.list_runs()]
    assert len(rows) == 4 and all(r["status"] == "finished" for r in rows)
    points = set()
    for r in rows:
        tag = json.loads((store.run_dir(r["id"]) / "sweep.json").read_text())
        assert tag["sweep_id"] == out["sweep_id"]
        assert r["config"]["lr"] == tag["point"]["lr"] and r["config"]["seed"] == tag["point"]["seed"]
        assert r["config"]["n_train"] == 64 and r["config"]["timesteps"] == 4 and r["name"].startswith("grid test.")
        assert store.metrics(r["id"]), "a trial is an ordinary run with its metrics"
        points.add((tag["point"]["lr"], tag["point"]["seed"]))
    assert points == {(1e-3, 0), (1e-3, 1), (5e-3, 0), (5e-3, 1)}
    # trials run at the user's priority (Ray's default nice 15 starved them beside any busy process)
    from snncore.sweeps import engine
    recs = engine.trial_records(runs, out["sweep_id"]).values()
    assert [r["nice"] for r in recs] == [os.nice(0)] * 4
    best_row = store.get_run(best["run_id"])
    assert best_row["summary"]["test_accuracy"] == pytest.approx(best["metric"])
    assert best["metric"] == pytest.approx(max(r["summary"]["test_accuracy"] for r in rows))
    store.close()


def test_the_cli_tells_each_trial_as_it_ends(swept):
    """A long sweep is followed from the terminal: a start line (id, trials, trials at once), then
    one line per trial as it ends, with its point, metric and run id, numbered in the order they end."""
    runs, out, _, stderr = swept
    start, lines = _progress(stderr)
    assert re.fullmatch(rf"sweep {out['sweep_id']}: 4 trials, [12] at once \(1 CPU each\) on a local Ray with [12] CPUs",
                        start), start
    assert [l[:6] for l in lines] == ["[1/4] ", "[2/4] ", "[3/4] ", "[4/4] "]
    from snncore.store import RunStore
    store = RunStore(runs)
    seen = set()
    for l in lines:
        m = re.fullmatch(r"\[\d/4\] finished +lr=([\d.e-]+) seed=(\d)  test_accuracy ([\d.]+)  run (\S+)  [\d.]+s", l)
        assert m, l
        run = store.get_run(m[4])
        assert run["config"]["lr"] == float(m[1]) and run["config"]["seed"] == int(m[2])
        assert run["summary"]["test_accuracy"] == pytest.approx(float(m[3]), abs=1e-4)
        seen.add(m[4])
    assert len(seen) == 4
    store.close()


def test_sweeps_lists_it(swept):
    runs, out, _, _ = swept
    r = _cli(runs, "sweeps", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout.strip().splitlines()[-1])
    assert [x["sweep_id"] for x in rows] == [out["sweep_id"]]
    assert rows[0]["status"] == "finished" and rows[0]["finished"] == 4 and rows[0]["name"] == "grid test"
    r = _cli(runs, "sweeps")
    row = next(l for l in r.stdout.splitlines() if l.startswith(out["sweep_id"]))
    assert row.split()[1:7] == ["finished", "4", "4", "0", f"{out['best']['metric']:.4f}", "test_accuracy"]
    assert "test_accuracy (max)" in row and row.endswith("  grid test")


BAD = [
    (["--grid", "nope=1,2"], "nope: not a config field nor a hyperparameter of rule 'bptt'"),
    (["--grid", "lr="], "empty value list"),
    (["--grid", "lr=1e-3,,2"], "empty value"),
    (["--grid", "lr=0,1e-3"], "--grid lr=0: lr: 0.0 is out of range"),
    (["--grid", "epochs=0"], "--grid epochs=0: epochs: 0 is out of range"),
    (["--grid", "tau=x"], "tau: expected float"),
    (["--grid", "lr"], "expected NAME=VALUES"),
    (["--grid", "lr=1e-3", "--grid", "lr=2e-3"], "lr: swept twice"),
    (["--search", "random", "--trials", "2", "--range", "lr=1e-3"], "expected NAME=lo:hi"),
    (["--search", "random", "--trials", "2", "--range", "lr=1e-3:x"], "lo and hi must be numbers"),
    (["--search", "random", "--trials", "2", "--range", "lr=2e-3:1e-3"], "need finite lo < hi"),
    (["--search", "random", "--trials", "2", "--range", "lr=0:1e-3:log"], "a log range needs lo > 0"),
    (["--search", "random", "--trials", "2", "--range", "lr=1e-3:20"], "lr=20.0: lr: 20.0 is out of range"),
    (["--search", "random", "--trials", "2", "--range", "optimizer=1:2"], "not a real number"),
    (["--range", "lr=1e-3:1e-2"], "--range needs --search random or optuna"),
    (["--search", "optuna", "--range", "lr=1e-3:1e-2"], "needs --trials N"),
    (["--epochs", "1"], "nothing to sweep"),
    (["--seeds", "0"], "--seeds 0"),
    (["--grid", "lr=1e-3", "--cpus-per-trial", "0"], "--cpus-per-trial"),
    (["--grid", "lr=1e-3", "--device", "cuda"], "--device cuda: give --gpus-per-trial"),
    (["--grid", "lr=1e-3", "--device", "cpu", "--gpus-per-trial", "1"], "would hold GPUs and train on the CPU"),
    (["--grid", "lr=1e-3", "--lr", "-1"], "lr: -1.0 is out of range"),
    (["--grid", "lr=1e-3", "--metric", "loss9"], "--metric 'loss9': choose one of"),
    (["--grid", "lr=1e-3", "--bogus", "1"], "unrecognized arguments: --bogus"),
]


@pytest.mark.parametrize("args,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_grid_one_line_exit_2_before_ray(tmp_path, monkeypatch, capsys, args, message):
    from snncore.__main__ import main
    monkeypatch.setenv("SNNCORE_RUNS", str(tmp_path))
    ray_loaded = "ray" in sys.modules
    with pytest.raises(SystemExit) as e:
        main(["sweep", "--rule", "bptt", *args])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and message in err, err
    assert not (tmp_path / "sweeps").exists(), "nothing starts on a bad grid"
    assert ray_loaded or "ray" not in sys.modules


def test_rule_hyperparameter_names_resolve_through_the_registry():
    """RULE.NAME and the rule's own NAME both reach rule_params; a rule other than the base's is refused."""
    import dataclasses
    from snncore.config import RunConfig
    from snncore.rules import get_rule, rule_names
    from snncore.sweeps import SweepError, parse_spec
    rule = next(r for r in rule_names() if any(isinstance(getattr(get_rule(r).Params(), f.name), float)
                                               for f in dataclasses.fields(get_rule(r).Params)))
    p = next(f.name for f in dataclasses.fields(get_rule(rule).Params)
             if isinstance(getattr(get_rule(rule).Params(), f.name), float))
    base = RunConfig.from_dict({"rule": rule})
    v = getattr(get_rule(rule).Params(), p)
    for name in (f"{rule}.{p}", p):
        spec = parse_spec(base, [f"{name}={v}"], [])
        assert spec.axes[0].target == ("rule", p)
        assert spec.apply(spec.grid_points()[0])["rule_params"][p] == v
    other = next(r for r in rule_names() if r != rule)
    with pytest.raises(SweepError, match=f"the sweep trains rule '{rule}', not '{other}'"):
        parse_spec(base, [f"{other}.x=1"], [])


def test_a_sweep_over_rules_sets_each_rules_hyperparameters_at_its_own_points():
    """--grid rule=bptt,ssdp --grid ssdp.a_plus=...: bptt's points have no a_plus (None, "n/a"), so
    bptt runs once per seed, not once per a_plus; a bare NAME applies wherever the point's rule
    has it; the base's rule_params are the base rule's only."""
    from snncore.config import RunConfig
    from snncore.sweeps import SweepError, parse_spec
    from snncore.sweeps.spec import SweepSpec
    spec = parse_spec(RunConfig.from_dict({"rule": "bptt"}), ["ssdp.a_plus=1e-4,1e-2", "rule=bptt,ssdp"], [], seeds=2)
    assert [a.name for a in spec.axes] == ["ssdp.a_plus", "rule"], "the given order (the table's columns)"
    pts = spec.grid_points()
    assert [(p["rule"], p["ssdp.a_plus"], p["seed"]) for p in pts] == [
        ("bptt", None, 0), ("bptt", None, 1), ("ssdp", 1e-4, 0), ("ssdp", 1e-4, 1), ("ssdp", 1e-2, 0), ("ssdp", 1e-2, 1)]
    cfgs = [RunConfig.from_dict(spec.apply(p)) for p in pts]
    assert [(c.rule, c.rule_params) for c in cfgs[::2]] == [("bptt", {}), ("ssdp", {"a_plus": 1e-4}),
                                                            ("ssdp", {"a_plus": 1e-2})]
    again = SweepSpec.from_dict(spec.to_dict())
    assert again.grid_points() == pts
    # random / optuna samples every axis: the engine's point drops what its rule does not have
    assert spec.normalize({"ssdp.a_plus": 0.3, "rule": "bptt"}) == {"ssdp.a_plus": None, "rule": "bptt"}
    assert spec.normalize({"ssdp.a_plus": 0.3, "rule": "ssdp"}) == {"ssdp.a_plus": 0.3, "rule": "ssdp"}

    base = RunConfig.from_dict({"rule": "ssdp", "rule_params": {"a_plus": 0.002}})
    spec = parse_spec(base, ["rule=bptt,ssdp,da_ssdp", "a_plus=1e-3"], [])
    by_rule = {p["rule"]: spec.apply(p)["rule_params"] for p in spec.grid_points()}
    assert by_rule == {"bptt": {}, "ssdp": {"a_plus": 1e-3}, "da_ssdp": {"a_plus": 1e-3}}
    assert spec.apply({"rule": "ssdp"})["rule_params"] == {"a_plus": 0.002}

    # a rule that needs its own model gets it at its points, as Train sets it; back again: the default
    for base_rule, rules, want in (("bptt", "bptt,mps", [("bptt", "mlp"), ("mps", "mps_mlp")]),
                                   ("mps", "mps,bptt", [("mps", "mps_mlp"), ("bptt", "mlp")])):
        spec = parse_spec(RunConfig.from_dict({"rule": base_rule}), [f"rule={rules}"], [])
        assert [(c.rule, c.model) for c in (RunConfig.from_dict(spec.apply(p)) for p in spec.grid_points())] == want

    bptt = RunConfig.from_dict({"rule": "bptt"})
    for grids, msg in (
            (["rule=bptt,ssdp", "da_ssdp.a_plus=1e-3"], "da_ssdp.a_plus: the sweep trains rule 'bptt' or 'ssdp', not "
                                                         "'da_ssdp' (give --rule da_ssdp, or sweep it: --grid rule=bptt,ssdp,da_ssdp)"),
            (["rule=bptt,ssdp", "ssdp.a_plus=50"], "--grid ssdp.a_plus=50 (rule ssdp): ssdp.a_plus: 50.0 is out of range"),
            (["rule=bptt,ssdp", "a_plus=1e-3", "ssdp.a_plus=1e-2"], "--grid ssdp.a_plus: swept twice"),
            (["rule=bptt,stdp", "sigma=1"], "sigma: not a config field nor a hyperparameter of rule 'bptt' or 'stdp'")):
        with pytest.raises(SweepError) as e:
            parse_spec(bptt, grids, [])
        assert str(e.value).startswith(msg), str(e.value)


def test_resume_after_the_driver_is_killed(tmp_path):
    runs = tmp_path / "runs"
    # one trial at a time, so the driver dies with trials done and trials left
    # trials long enough (a few seconds) that the driver is killed with trials left
    slower = [*TINY, "--n-train", "600", "--epochs", "3"]
    p = subprocess.Popen([sys.executable, "-m", "snncore", "sweep", *slower, "--grid", "lr=1e-3,2e-3,3e-3",
                          "--max-concurrent", "1", "--json"], cwd=ROOT, env=_env(runs),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    done = []
    try:
        while time.monotonic() < deadline and p.poll() is None:
            recs = [json.loads(f.read_text()) for f in runs.glob("sweeps/*/trials/*.json")]
            done = [r for r in recs if r["status"] == "finished"]
            if done:
                break
            time.sleep(0.05)
        assert p.poll() is None, "the sweep ended before it could be killed"
    finally:
        os.killpg(p.pid, signal.SIGKILL)      # the driver and what it started in its session
        p.wait()
    assert done, "no trial finished before the deadline"
    sweep_id = next(runs.glob("sweeps/*")).name
    r = _cli(runs, "sweeps", "--json")
    assert json.loads(r.stdout.splitlines()[-1])[0]["status"] == "stopped"
    kept = {r["run_id"] for r in done}
    r = _cli(runs, "sweep", "--resume", sweep_id, "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert (out["status"], out["trials"], out["finished"]) == ("finished", 3, 3)
    # its lines count on from the trials kept
    start, lines = _progress(r.stderr)
    left = 3 - len(kept)
    assert start.startswith(f"sweep {sweep_id}: {left} of 3 trials left, 1 at once"), start
    assert [l[:6] for l in lines] == [f"[{k}/3] " for k in range(len(kept) + 1, 4)], lines
    recs = [json.loads(f.read_text()) for f in runs.glob(f"sweeps/{sweep_id}/trials/*.json")]
    assert sorted(r["index"] for r in recs) == [0, 1, 2]
    assert kept <= {r["run_id"] for r in recs}, "a finished trial was run again"
    from snncore.store import RunStore
    store = RunStore(runs)
    finished = [x for x in store.list_runs() if x["status"] == "finished"]
    assert len(finished) == 3 and sorted(x["config"]["lr"] for x in finished) == [1e-3, 2e-3, 3e-3]
    store.close()
    r = _cli(runs, "sweep", "--resume", sweep_id)
    assert r.returncode == 2 and "already finished" in r.stderr


def test_a_failed_trial_is_marked_with_its_reason_and_the_sweep_goes_on(tmp_path):
    """device=cuda on a box without one fails inside its trial."""
    import torch
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    runs = tmp_path / "runs"
    r = _cli(runs, "sweep", *TINY[:-2], "--grid", "device=cpu,cuda", "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert (out["status"], out["trials"], out["finished"], out["failed"]) == ("finished", 2, 1, 1)
    assert out["best"]["config"]["device"] == "cpu"
    recs = {r["point"]["device"]: r for r in
            (json.loads(f.read_text()) for f in runs.glob("sweeps/*/trials/*.json"))}
    assert recs["cuda"]["status"] == "failed" and "no CUDA GPU is available" in recs["cuda"]["error"]
    _, lines = _progress(r.stderr)
    failed = [l for l in lines if " failed " in l]
    assert len(lines) == 2 and len(failed) == 1 and "device=cuda" in failed[0]
    assert "error: " in failed[0] and "no CUDA GPU is available" in failed[0] and recs["cuda"]["run_id"] in failed[0]
    from snncore.store import RunStore
    store = RunStore(runs)
    run = store.get_run(recs["cuda"]["run_id"])
    assert run["status"] == "failed" and "CUDA" in run["error"]
    store.close()


def test_an_outside_rule_sweeps_over_its_own_hyperparameter(tmp_path):
    """Issue #16: a rule given by its import path sweeps like a built-in one (its workers import it
    from the driver's folder); its hyperparameter is swept by its own name."""
    rule = "examples.triplet_stdp:TripletSTDP"
    tiny = [a if a != "bptt" else rule for a in TINY]
    r = _cli(tmp_path, "sweep", *tiny, "--grid", "a3_plus=0.005,0.01", "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert (out["status"], out["trials"], out["finished"]) == ("finished", 2, 2)
    rows = json.loads(_cli(tmp_path, "runs", "--json").stdout)
    assert sorted(r["rule"] for r in rows) == [rule, rule]
    from snncore.store import RunStore
    params = sorted(RunStore(tmp_path).get_run(r["run_id"])["config"]["rule_params"]["a3_plus"] for r in rows)
    assert params == [0.005, 0.01]


def test_a_local_ray_ships_the_code_only_where_workers_would_import_another(tmp_path, monkeypatch):
    """A local Ray's workers (same Python, same working folder) import snncore themselves when it
    is this snncore; a shadowing copy in the working folder makes the driver ship its own."""
    from snncore.sweeps import engine
    monkeypatch.chdir(ROOT)
    assert engine._workers_import_ours()
    (tmp_path / "snncore").mkdir()
    (tmp_path / "snncore" / "__init__.py").write_text("")
    monkeypatch.chdir(tmp_path)
    assert not engine._workers_import_ours()


@pytest.mark.parametrize("flags,message", [
    (["--cpus-per-trial", "64"], "--cpus-per-trial 64: this machine has "),
    (["--gpus-per-trial", "0.5"], "--gpus-per-trial 0.5: this machine has no GPU"),
])
def test_a_trial_that_fits_no_node_is_refused_not_waited_for(tmp_path, flags, message):
    """Tune would wait forever for resources no node has: the sweep exits 2 with one line naming
    what the machine has, before Ray starts, and writes no sweep."""
    import torch
    if "--gpus-per-trial" in flags and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    r = _cli(tmp_path, "sweep", *TINY[:-2], "--grid", "lr=1e-3,5e-3", *flags, timeout=120)
    err = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(err) == 1 and err[0].startswith("error: ") and message in err[0], r.stderr[-2000:]
    assert not list((tmp_path / "sweeps").glob("*/sweep.json"))


def test_asha_stops_a_poor_trial_after_an_epoch_and_lets_the_best_finish(tmp_path):
    """--scheduler asha from the per-epoch test accuracy: one trial at a time, the good learning
    rate first; it trains all its epochs and ends finished (Tune's stop at max_t used to cut it on
    its last report and mark it stopped early); the near-zero rate, at the first trial's cutoff after
    its first epoch, is stopped there, its run stopped with the scheduler named."""
    runs = tmp_path / "runs"
    flags = [*TINY, "--n-train", "256", "--hidden", "32", "--epochs", "3"]
    r = _cli(runs, "sweep", *flags, "--grid", "lr=5e-2,1e-6", "--max-concurrent", "1", "--scheduler", "asha", "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert (out["status"], out["trials"], out["finished"]) == ("finished", 2, 1)
    assert out["best"]["config"]["lr"] == 5e-2
    from snncore.store import RunStore
    from snncore.sweeps import engine
    recs = {rec["point"]["lr"]: rec for rec in engine.trial_records(runs, out["sweep_id"]).values()}
    store = RunStore(runs)
    good, poor = store.get_run(recs[5e-2]["run_id"]), store.get_run(recs[1e-6]["run_id"])
    assert recs[5e-2]["status"] == "finished" and good["status"] == "finished" and good["summary"]["epochs"] == 3
    assert recs[1e-6]["status"] == "early_stopped" and poor["status"] == "stopped"
    assert poor["epoch"] == 1 and "scheduler" in poor["error"]
    assert recs[1e-6]["metric"] < recs[5e-2]["metric"]
    summary = engine.list_sweeps(runs)[0]
    assert summary["early_stopped"] == 1
    store.close()


def test_ctrl_c_stops_the_sweep_resumably_and_says_how_to_go_on(tmp_path):
    """Ctrl-C in the terminal (SIGINT to the driver's process group) mid-trial: the sweep ends
    stopped, its last line names `sweep --resume ID` (not Tune's Tuner.restore, which would run
    finished points again), and the interrupted trial's run is stopped with the same hint."""
    runs = tmp_path / "runs"
    slower = [*TINY, "--n-train", "600", "--epochs", "40"]
    p = subprocess.Popen([sys.executable, "-m", "snncore", "sweep", *slower, "--grid", "lr=1e-3,2e-3",
                          "--max-concurrent", "1"], cwd=ROOT, env=_env(runs), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and p.poll() is None:
            recs = [json.loads(f.read_text()) for f in runs.glob("sweeps/*/trials/*.json")]
            if recs and recs[0].get("run_id"):
                break
            time.sleep(0.05)
        assert p.poll() is None, "the sweep ended before Ctrl-C"
        time.sleep(0.5)
        os.killpg(p.pid, signal.SIGINT)
        out, _ = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    sweep_id = next(runs.glob("sweeps/*")).name
    lines = out.strip().splitlines()
    assert p.returncode == 1, out[-3000:]
    assert lines[-1] == f"continue it with: python -m snncore sweep --resume {sweep_id}", out[-3000:]
    assert lines[-2].startswith(f"sweep {sweep_id} stopped: ") and "Tuner.restore" not in out
    from snncore.sweeps import engine
    assert engine.load_state(runs, sweep_id)["status"] == "stopped"
    from snncore.store import RunStore
    store = RunStore(runs)
    rows = store.list_runs()
    assert rows and all(r["status"] in ("stopped", "finished") for r in rows)
    stopped = [r for r in rows if r["status"] == "stopped"]
    assert len(stopped) == 1 and f"--resume {sweep_id}" in stopped[0]["error"]
    store.close()


def test_the_start_line_says_when_gpus_stay_unused():
    """On a GPU server a sweep with device auto and no --gpus-per-trial trains on the CPU (Ray
    hides the GPUs from a trial it gives none): the start line says so and what to give."""
    from snncore.cli.sweep import progress_line
    info = dict(sweep_id="sw-x", trials=8, todo=8, concurrent=16, cpus_per_trial=1.0, gpus_per_trial=0.0,
                where="a local Ray", cluster_cpus=16, cluster_gpus=2, devices=["auto"])
    line = progress_line("start", info)
    assert line.startswith("sweep sw-x: 8 trials, 16 at once (1 CPU each) on a local Ray with 16 CPUs")
    assert line.endswith("its 2 GPU(s) stay unused (the trials train on the CPU): give --gpus-per-trial to use them")
    assert "unused" not in progress_line("start", {**info, "devices": ["cpu"]})
    on_gpus = progress_line("start", {**info, "gpus_per_trial": 0.5, "concurrent": 4, "todo": 3})
    assert on_gpus == "sweep sw-x: 3 of 8 trials left, 4 at once (1 CPU, 0.5 GPU each) on a local Ray with 16 CPUs"


def test_a_sweep_ranks_by_a_quantity_the_runs_record(tmp_path):
    """--metric train/loss --mode min with optuna: each trial's metric is its run's final
    train/loss (the mean over its last epoch, RunStore.final_values) and the best is the lowest.
    (Optuna reads the metric in every report: a per-epoch report without it failed the sweep.)"""
    from snncore.cli.sweep import progress_line
    from snncore.store import RunStore
    from snncore.sweeps.engine import final_metric
    r = _cli(tmp_path, "sweep", *TINY, "--search", "optuna", "--trials", "2", "--range", "lr=1e-3:2e-2:log",
             "--epochs", "2", "--metric", "train/loss", "--mode", "min", "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    store = RunStore(tmp_path)
    losses = {rec["run_id"]: store.final_values(rec["run_id"])["train/loss"]
              for rec in (json.loads(p.read_text()) for p in (tmp_path / "sweeps" / out["sweep_id"] / "trials").glob("*.json"))}
    assert out["finished"] == 2 and len(losses) == 2
    assert out["best"]["run_id"] == min(losses, key=losses.get)
    assert out["best"]["metric"] == pytest.approx(min(losses.values()))
    assert "train/loss" in _progress(r.stderr)[1][0]
    assert "A new study created" not in r.stderr and "Last result" not in r.stderr + r.stdout
    line = progress_line("trial", {"ended_count": 1, "trials": 2, "status": "finished", "point": {"rule": "bptt"},
                                   "metric": None, "metric_name": "sync/fc1", "run_id": "r1",
                                   "error": "the run recorded no sync/fc1 in its last epoch"})
    assert line == "[1/2] finished      rule=bptt  (the run recorded no sync/fc1 in its last epoch)  run r1"
    # a key the run did not record: no metric (the trial says why), a summary key: the summary's
    assert final_metric("gate/fc1", {}, lambda: {"train/loss": 1.0}) is None
    assert final_metric("seconds", {"seconds": 2.5}, lambda: {}) == 2.5


def test_a_failed_driver_says_why_in_one_line(capsys):
    """Tune itself failing: the last line says why (the traceback is in a file), --json carries it."""
    from snncore.cli.sweep import _print
    summary = {"sweep_id": "sw-x", "status": "failed", "trials": 2, "finished": 0, "failed": 0, "best": None,
               "seconds": 1.0, "metric": "seconds", "early_stopped": 0,
               "error": "TuneError: KeyError: 'x' (the whole traceback: /r/sweeps/sw-x/driver_error.txt)"}
    _print(summary, as_json=True)
    out, err = capsys.readouterr()
    assert err == f"error: the sweep's driver failed: {summary['error']}\n"
    assert json.loads(out)["error"] == summary["error"]
