"""The Python API's sweeps (snncore.sweep, snncore.Sweep, snncore.sweeps): a notebook's sweep runs
through the CLI's checks and engine into the same runs folder, and reads back the Sweep page's
table, means and figures. The sweep runs in a child process, as a notebook's kernel would, so the
test process keeps no Ray."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

import snncore as sc

ROOT = Path(__file__).resolve().parent.parent
TINY = dict(dataset="digits", rule="bptt", epochs=1, n_train=64, hidden=[16], timesteps=4, batch_size=32,
            device="cpu")

NOTEBOOK = """
import json, sys
import snncore as sc
s = sc.sweep(dataset="digits", rule="bptt", epochs=1, n_train=64, hidden=[16], timesteps=4, batch_size=32,
             device="cpu", grid={"lr": [1e-3, 2e-2], "hidden": [[16], [16, 8]]}, seeds=2, name="nb",
             runs_dir=sys.argv[1])
print(json.dumps({"id": s.id, "repr": repr(s), "status": s.status, "best": s.best}))
"""


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    runs = tmp_path_factory.mktemp("api_sweep") / "runs"
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "SNNCORE_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    r = subprocess.run([sys.executable, "-c", NOTEBOOK, str(runs)], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1, "Tune's console box stays out of a notebook's output: " + r.stdout[-2000:]
    return runs, {**json.loads(lines[0]), "stderr": r.stderr}


def test_a_notebook_sweep_shows_a_bar_over_its_trials(swept):
    """tqdm's bar (on stderr, as sc.train's): every trial counted, the best metric so far beside it."""
    runs, out = swept
    last = out["stderr"].replace("\r", "\n").splitlines()
    bars = [l for l in last if l.startswith(out["id"] + ":")]
    assert bars and "8/8" in bars[-1] and "100%" in bars[-1], out["stderr"][-2000:]
    best = f"best test_accuracy={out['best']['metric']:.4f}"
    assert best in bars[-1], bars[-1]


def test_a_notebook_sweep_is_in_the_runs_folder_with_its_table(swept):
    runs, out = swept
    s = sc.Sweep(out["id"], runs)
    assert out["status"] == "finished" and "8/8 finished, 0 failed" in out["repr"]
    t = s.trials
    assert len(t) == 8 and set(t["status"]) == {"finished"}
    assert sorted(set(zip(t["lr"], t["hidden"], t["seed"]))) == sorted(
        (lr, h, seed) for lr in (1e-3, 2e-2) for h in ("16", "16,8") for seed in (0, 1))
    # each trial is an ordinary run: its config is its point, its metric the run's own
    runs_ = s.runs()
    assert len(runs_) == 8
    for run, (_, row) in zip(runs_, t.iterrows()):
        cfg = run.config
        assert cfg["lr"] == row["lr"] and ",".join(map(str, cfg["hidden"])) == row["hidden"] and cfg["seed"] == row["seed"]
        assert run.summary["test_accuracy"] == pytest.approx(row["test_accuracy"])
    assert set(sc.runs(runs)["run_id"]) == {r.id for r in runs_}
    assert out["best"]["metric"] == pytest.approx(t["test_accuracy"].max())
    listed = sc.sweeps(runs)
    assert list(listed["sweep_id"]) == [s.id] and listed["best_metric"].iloc[0] == pytest.approx(out["best"]["metric"])
    assert listed["name"].iloc[0] == "nb" and listed["finished"].iloc[0] == 8


def test_means_are_over_the_seeds_and_the_other_values(swept):
    runs, out = swept
    s = sc.Sweep(out["id"], runs)
    t = s.trials
    by_lr = s.means("lr").set_index("lr")
    for lr in (1e-3, 2e-2):
        acc = t[t["lr"] == lr]["test_accuracy"].tolist()
        m = sum(acc) / len(acc)
        sd = math.sqrt(sum((a - m) ** 2 for a in acc) / (len(acc) - 1))
        assert by_lr.loc[lr, "mean"] == pytest.approx(m) and by_lr.loc[lr, "n"] == 4
        assert by_lr.loc[lr, "half"] == pytest.approx(3.182446305 * sd / 2)       # t_{0.975, 3}
    both = s.means()
    assert list(both.columns[:2]) == ["lr", "hidden"] and len(both) == 4 and set(both["n"]) == {2}
    assert s.figure("heatmap").layout.title.text.startswith("mean test_accuracy over lr × hidden")
    assert s.figure("effect", "hidden").layout.title.text.startswith("effect of hidden")
    assert "8 finished trials" in s.figure("parallel").layout.title.text
    with pytest.raises(ValueError, match="choose parallel, effect or heatmap"):
        s.figure("pie")


def test_bad_input_is_one_valueerror_before_anything_starts(tmp_path):
    cases = [
        (dict(grid={"lr": [1e-3, 50.0]}), "--grid lr=50.0: lr: 50.0 is out of range"),
        (dict(grid={"nope": [1, 2]}), "nope: not a config field"),
        (dict(grid={"lr": 1e-3}), "grid 'lr': expected a list of values"),
        (dict(ranges={"lr": (1e-3, 1e-2)}), "--range needs --search random or optuna"),
        (dict(ranges={"lr": (1e-3,)}, search="random", trials=2), "expected (lo, hi) or (lo, hi, 'log')"),
        (dict(grid={"lr": [1e-3]}, metric="loss9"), "metric 'loss9': choose one of"),
        (dict(grid={"lr": [1e-3]}, device="cuda"), "--device cuda: give --gpus-per-trial"),
        (dict(grid={"lr": [1e-3]}, epochs=0), "epochs: 0 is out of range"),
    ]
    for kw, message in cases:
        with pytest.raises(ValueError) as e:
            sc.sweep(**{**TINY, **kw}, runs_dir=tmp_path)
        assert message in str(e.value), (kw, str(e.value))
    assert not (tmp_path / "sweeps").exists()
    # no Ray was started by a refused sweep (not imported here: `import ray` puts its own
    # vendored packages on sys.path, which test_packaging would see as unlocked)
    ray = sys.modules.get("ray")
    assert ray is None or not ray.is_initialized()
    with pytest.raises(ValueError, match="is not in"):
        sc.Sweep("sw-20990101-000000-0000", tmp_path)


def test_the_grid_goes_through_the_cli_s_text():
    from snncore.api import _grid_text, _range_text
    assert _grid_text("lr", [1e-3, 0.1]) == "lr=0.001,0.1"
    assert _grid_text("hidden", [[256, 128], [64]]) == "hidden=[256,128],[64]"
    assert _grid_text("ssdp.a_plus", (1e-4,)) == "ssdp.a_plus=0.0001"
    assert _range_text("sigma", (0.5, 4)) == "sigma=0.5:4" and _range_text("lr", (1e-4, 1e-2, "log")) == "lr=0.0001:0.01:log"


def test_any_recorded_quantity_has_its_means_and_figures(swept):
    """Beside the metric, a sweep shows what its runs recorded, at their end (Sweep.finals): here
    the final test loss, each run's last test/loss row, grouped as the metric is."""
    runs, out = swept
    s = sc.Sweep(out["id"], runs)
    finals = s.finals
    assert list(finals["run"]) == list(s.trials["run"]) and "test/loss" in finals and "train/loss" in finals
    assert "test/accuracy" not in finals, "the summary's test_accuracy already is it"
    for run in s.runs():
        last = run.metrics["test/loss"].dropna().iloc[-1]
        assert finals.set_index("run").loc[run.id, "test/loss"] == pytest.approx(last)
        assert run.finals["test/loss"] == pytest.approx(last)
    t = s.trials.merge(finals, on=["trial", "run"])
    by_lr = s.means("lr", metric="test/loss").set_index("lr")
    for lr in (1e-3, 2e-2):
        assert by_lr.loc[lr, "mean"] == pytest.approx(t[t["lr"] == lr]["test/loss"].mean())
    assert s.figure("effect", "lr", metric="test/loss").layout.yaxis.title.text == "test/loss (mean, 95 % CI)"
    assert s.figure(metric="train/loss").layout.title.text.startswith("hyperparameters → train/loss (8")
    with pytest.raises(ValueError, match=r"metric 'gate': no finished trial recorded it; choose one of test_accuracy, "):
        s.means(metric="gate")
