"""The Python API (snncore/api.py): every call with its values checked against the store, the
engine's own functions and Rule Lab's spec, and its errors."""
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from scipy import stats

import snncore as sc
from snncore import inspect as A
from snncore.store import RunStore

TINY = dict(dataset="digits", epochs=1, n_train=128, hidden=[32], timesteps=4, batch_size=64,
            record_every=1, log_every=1, device="cpu", progress=False)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("api_runs")


@pytest.fixture(scope="module")
def pair(folder):
    """Two SSDP runs of one experiment, seeds 0 and 1."""
    return [sc.train(rule="ssdp", a_plus=2e-3, seed=s, runs_dir=folder, **TINY) for s in (0, 1)]


def test_train_stores_config_and_metrics(pair):
    run = pair[0]
    assert run.status == "finished"
    assert run.config["rule"] == "ssdp" and run.config["rule_params"] == {"a_plus": 2e-3}
    assert run.config["hidden"] == [32] and run.config["n_train"] == 128
    m = run.metrics
    rows = run.store.metrics(run.id)
    assert list(m.columns[:2]) == ["step", "epoch"]
    assert sorted(m["step"]) == sorted({s for s, _, _, _ in rows})
    # every stored value is in the frame, at its step
    for s, e, k, v in rows:
        col = "epochs_done" if k == "epoch" else k
        got = m.loc[m["step"] == s, col].iloc[0]
        assert got == pytest.approx(v)
        assert m.loc[m["step"] == s, "epoch"].iloc[0] == e
    # 128 samples / batch 64 = 2 steps (0, 1) plus the evaluation's row at step 2
    assert len(m) == 3 and m["train/loss"].notna().sum() == 2
    assert m["test/accuracy"].dropna().between(0, 1).all()


def test_telemetry_matches_store(pair):
    run = pair[0]
    tel = run.telemetry
    stored = run.store.telemetry(run.id)
    assert len(stored) > 0
    assert set(tel.columns) == {"step"} | {k for _, k, _ in stored}
    s, k, v = stored[-1]
    assert tel.loc[tel["step"] == s, k].iloc[0] == pytest.approx(v)
    assert any(c.startswith("dw/") for c in tel.columns)


def test_spikes_is_the_newest_raster(pair):
    run = pair[0]
    sp = run.spikes("fc1")
    snap = run.store.load_snapshot(run.id)
    assert sp.step == int(snap["step"]) == run.store.snapshot_steps(run.id)[-1]
    assert sp.spikes.dtype == bool
    # [T, N]: the recent batches' time steps side by side x the kept neurons (all 32)
    assert sp.spikes.shape[1] == 32 and sp.spikes.shape[0] % 4 == 0
    assert np.array_equal(sp.spikes, snap["raster/fc1"].T.astype(bool))
    assert run.spikes().step == sp.step and np.array_equal(run.spikes().spikes, sp.spikes)
    assert run.spikes("input").spikes.shape[0] == sp.spikes.shape[0]
    with pytest.raises(ValueError, match="allowed: input, fc1"):
        run.spikes("fc9")


def test_figures_are_the_train_pages(pair):
    run = pair[0]
    names = run.figures()
    assert names[:4] == ["loss", "accuracy", "raster", "rate"]
    loss = run.figure("loss")
    assert [t.name for t in loss.data] == ["train/loss", "test/loss"]
    m = run.metrics.set_index("step")
    assert list(loss.data[0].y) == pytest.approx(m["train/loss"].dropna().tolist())
    raster = run.figure("raster")
    assert raster.layout.title.text.startswith("fc1 raster")
    rates = run.figure("rates")
    assert sorted(t.name for t in rates.data) == sorted(c for c in m.columns if c.startswith("rate/"))
    # the rule's own panels, from its panel builder, by key
    from snncore.rules import get_rule
    from snncore.viz.panels import PanelView, figures
    view = PanelView(rule="ssdp", cfg=run.config, tel=run.store.metrics_frame(run.id, "telemetry"),
                     defaults=get_rule("ssdp").Params(), snapshots=run._panel_snapshots())
    keys = [f.key for f in figures(get_rule("ssdp").panel_builder()(view))]
    assert keys and all(k in names for k in keys)
    k = keys[0]
    assert run.figure(k).to_dict()["data"] == next(f.fig for f in figures(get_rule("ssdp").panel_builder()(view))
                                                   if f.key == k).to_dict()["data"]
    with pytest.raises(ValueError, match="allowed: loss, accuracy"):
        run.figure("nope")


def test_inspect_per_layer(pair):
    run = pair[0]
    df = run.inspect(samples=16)
    assert df["layer"].tolist() == ["fc1", "out"]
    assert df["neurons"].tolist() == [32, 10]
    _, _, path = A.run_checkpoint(run.store, run.id)
    rec = A.record_network(A.load_checkpoint(path), 16)
    rep = A.report(rec, A.analyse(rec), "x")
    for _, row in df.iterrows():
        want = rep["layers"][row["layer"]]
        for col in ("rate_mean", "silent", "synops_per_sample"):
            assert (row[col] == pytest.approx(want[col])) or (want[col] is None and row[col] != row[col])
    assert df.attrs["samples"] == 16 and df.attrs["rule"] == "ssdp"


def test_runs_load_compare(pair, folder):
    listed = sc.runs(runs_dir=folder)
    assert set(listed["run_id"]) >= {r.id for r in pair}
    row = listed.set_index("run_id").loc[pair[1].id]
    assert row["status"] == "finished" and row["rule"] == "ssdp" and row["dataset"] == "digits"
    again = sc.load(pair[1].id, runs_dir=folder)
    assert again.metrics.equals(pair[1].metrics)
    with pytest.raises(ValueError, match="is not in"):
        sc.load("20000101-000000-abcdef", runs_dir=folder)

    cmp = sc.compare([r.id for r in pair], runs_dir=folder)
    assert cmp["group"].nunique() == 1                # seeds 0 and 1: one experiment
    acc = cmp.set_index("metric").loc["final_test_accuracy"]
    finals = [float(r.metrics["test/accuracy"].dropna().iloc[-1]) for r in pair]
    assert acc["n"] == 2 and acc["seeds"] == "0,1"
    assert acc["mean"] == pytest.approx(np.mean(finals))
    half = stats.t.ppf(0.975, 1) * np.std(finals, ddof=1) / math.sqrt(2)
    assert acc["half"] == pytest.approx(half, nan_ok=True)
    assert len(cmp.attrs["runs"]) == 2


def test_background_wait_and_stop(folder):
    run = sc.train(rule="stdp", wait=False, runs_dir=folder, **{**TINY, "epochs": 1})
    assert run.wait(300) is run and run.status == "finished"
    assert run.metrics["train/loss"].notna().sum() == 2

    long = sc.train(rule="stdp", wait=False, runs_dir=folder, **{**TINY, "epochs": 2000})
    t0 = time.time()
    while long.row["step"] < 3 and time.time() - t0 < 120:
        time.sleep(0.1)
    long.stop()
    assert long.status == "stopped"
    assert 3 <= long.row["step"] < 2000 * 2
    assert long.store.checkpoints(long.id)             # resumable, as the app's Stop


def test_errors_are_one_valueerror(tmp_path):
    d = tmp_path / "r"
    cases = [(dict(rule="ssdp", foo=1), r"foo: not a run config field nor a hyperparameter of rule 'ssdp'"),
             (dict(rule="ssdp", epochs=0), r"epochs.*out of range"),
             (dict(rule="ssdp", a_plus=-1.0), r"ssdp\.a_plus"),
             (dict(rule="nosuchrule"), r"^rule: .*nosuchrule"),
             (dict(rule="ssdp", schedule="constant"), r"schedule: ambiguous.*rule_params"),
             (dict(rule="stdp", a_plus=1e-3), r"a_plus: .*rule 'stdp' has: tau_pre")]
    for kw, pattern in cases:
        with pytest.raises(ValueError, match=pattern):
            sc.train(runs_dir=d, progress=False, **kw)
    assert not (d / "runs.sqlite").exists() or RunStore(d).list_runs() == []
    # the ambiguous name given each way it is meant
    cfg = sc.make_config(rule="ssdp", rule_params={"schedule": "constant"}, config={"schedule": "constant"})
    assert cfg.rule_params == {"schedule": "constant"} and cfg.schedule == "constant"


def test_config_argument_and_file(tmp_path):
    base = sc.make_config(rule="stdp", eta_plus=1e-3, epochs=2)
    assert sc.make_config(config=base).to_dict() == base.to_dict()
    p = tmp_path / "c.toml"
    p.write_text(base.to_toml())
    cfg = sc.make_config(config=p, eta_minus=2e-3)
    assert cfg.rule_params == {"eta_plus": 1e-3, "eta_minus": 2e-3} and cfg.epochs == 2


def test_cli_run_loads_and_notebook_run_lists_in_cli(runs_dir):
    env = dict(os.environ, SNNCORE_THREADS="1")
    out = subprocess.run([sys.executable, "-m", "snncore", "train", "--rule", "stdp", "--epochs", "1",
                          "--n-train", "128", "--hidden", "32", "--timesteps", "4", "--json"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    rid = json.loads(out.stdout.strip().splitlines()[-1])["run_id"]
    run = sc.load(rid)                                 # the default folder: $SNNCORE_RUNS
    assert run.status == "finished" and run.config["rule"] == "stdp"
    assert len(run.metrics) == len(RunStore(runs_dir).metrics_frame(rid))
    mine = sc.train(rule="stdp", **TINY)
    listed = subprocess.run([sys.executable, "-m", "snncore", "runs", "--json"], capture_output=True,
                            text=True, env=env, timeout=120)
    assert {r["run_id"] for r in json.loads(listed.stdout)} == {rid, mine.id}


def test_lab_simulate_is_the_specs():
    from snncore import lab
    res = sc.lab.simulate("stdp", eta_plus=1e-2)
    s = lab.spec("stdp")
    direct = s.simulate(lab.make_params("stdp", {"eta_plus": 1e-2}), s.pop, s.inp, dict(s.extra))
    assert res.params.eta_plus == 1e-2
    assert np.array_equal(res.W, direct.W) and np.array_equal(res.post_raster, direct.post_raster)
    assert not np.array_equal(res.W, res.W0)
    figs = res.figures
    assert list(figs)[:5] == ["pre", "post", "traces", "weights", "dweights"]
    assert np.asarray(figs["weights"].data[0].z).shape == res.W.shape
    with pytest.raises(ValueError, match="eta_pluss: not a hyperparameter of rule 'stdp'"):
        sc.lab.simulate("stdp", eta_pluss=1.0)
    with pytest.raises(ValueError, match="eta_plus"):
        sc.lab.simulate("stdp", eta_plus=-1.0)


def test_progress_bar_and_quiet(tmp_path, capsys):
    sc.train(rule="stdp", runs_dir=tmp_path, **{**TINY, "progress": True})
    err = capsys.readouterr().err
    assert "2/2" in err and "stdp" in err              # tqdm: steps done / total, the rule in its label
    sc.train(rule="stdp", runs_dir=tmp_path, **TINY)
    assert "2/2" not in capsys.readouterr().err
