import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def cli(*args, runs_dir=None, timeout=300):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    if runs_dir:
        env["SNNCORE_RUNS"] = str(runs_dir)
    return subprocess.run([sys.executable, "-m", "snncore", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=timeout)


def test_train_json_end_to_end(tmp_path):
    cfg = tmp_path / "small.toml"
    cfg.write_text('dataset = "digits"\nhidden = [32]\nn_train = 256\ntimesteps = 4\n[rule_params]\na_plus = 0.001\n')
    r = cli("train", "--config", str(cfg), "--rule", "ssdp", "--epochs", "2", "--seed", "1", "--sigma", "2.0",
            "--json", "--runs-dir", str(tmp_path / "runs"))
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    for key in ("run_id", "status", "epochs", "test_accuracy", "seconds", "device"):
        assert key in summary
    assert summary["status"] == "finished" and summary["epochs"] == 2
    assert summary["device"].split(":")[0] == ("cuda" if __import__("torch").cuda.is_available() else "cpu")
    r = cli("runs", "--json", "--runs-dir", str(tmp_path / "runs"))
    rows = json.loads(r.stdout)
    assert rows[0]["run_id"] == summary["run_id"] and rows[0]["rule"] == "ssdp"
    assert rows[0]["best_accuracy"] == pytest.approx(summary["best_test_accuracy"])
    r = cli("runs", runs_dir=tmp_path / "runs")           # SNNCORE_RUNS is honoured
    assert summary["run_id"] in r.stdout and "finished" in r.stdout


@pytest.mark.parametrize("args,words", [
    (["--timesteps", "0"], ["timesteps", "1 <= value <= 10000"]),
    (["--tau", "-1"], ["tau"]),
    (["--lr", "nan"], ["lr", "finite"]),
    (["--rule", "nope"], ["unknown rule 'nope'"]),
    (["--dataset", "cifar"], ["dataset", "'cifar'"]),
    (["--hidden", "0"], ["hidden"]),
    (["--rule", "bptt", "--a-plus", "1"], ["--a-plus is not a hyperparameter of rule 'bptt'"]),
    (["--epochs"], ["expected one argument"]),
    (["--bogus", "1"], ["unrecognized arguments"]),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, args, words):
    from snncore.__main__ import main
    with pytest.raises(SystemExit) as e:
        main(["train", *args, "--runs-dir", str(tmp_path / "runs")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    for w in words:
        assert w in lines[0]
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").glob("2*"))  # nothing ran


def test_failure_during_training_is_stored(tmp_path):
    r = cli("train", "--record-layer", "fc9", "--epochs", "1", "--runs-dir", str(tmp_path / "runs"))
    assert r.returncode == 1
    assert "record_layer" in r.stderr and len([l for l in r.stderr.splitlines() if "Triton" not in l]) == 1
    rows = json.loads(cli("runs", "--json", "--runs-dir", str(tmp_path / "runs")).stdout)
    assert rows[0]["status"] == "failed" and "fc9" in rows[0]["error"]


def test_bad_input_from_a_real_process(tmp_path):
    r = cli("train", "--timesteps", "0", "--runs-dir", str(tmp_path / "runs"), timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.splitlines()                     # exactly one line, no warnings around it
    assert lines == ["error: timesteps: 0 is out of range (allowed: 1 <= value <= 10000)"]


def test_cuda_without_gpu_is_refused_before_running(tmp_path, capsys):
    import torch
    from snncore.__main__ import main
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(SystemExit) as e:
        main(["train", "--device", "cuda", "--runs-dir", str(tmp_path / "runs")])
    assert e.value.code == 2
    assert "device: 'cuda' was asked for but no CUDA GPU is available" in capsys.readouterr().err


def test_resume_from_the_command_line(tmp_path, capsys):
    from snncore.__main__ import main
    from snncore.config import RunConfig
    from snncore.store import RunStore
    from snncore.train import Trainer
    runs = tmp_path / "runs"
    store = RunStore(runs)
    cfg = RunConfig.from_dict({"epochs": 3, "hidden": [16], "timesteps": 4, "n_train": 128})
    rid = store.create_run(cfg.to_dict())
    tr = Trainer(cfg, store, rid)
    tr.on_progress = lambda p: p.test_accuracy is not None and store.request_stop(rid)
    tr.run()

    def run(*argv):
        with pytest.raises(SystemExit) as e:
            main(["train", *argv, "--runs-dir", str(runs)])
        return e.value.code, capsys.readouterr().err.strip().splitlines()[-1]

    assert run("--resume", "nope") == (2, f"error: run 'nope' is not in {runs}")
    code, err = run("--resume", rid, "--lr", "0.1")
    assert code == 2 and "only --epochs N (the new total) goes with it" in err
    assert main(["train", "--resume", rid, "--runs-dir", str(runs), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["status"] == "finished" and summary["epochs"] == 3 and summary["run_id"] == rid
    assert run("--resume", rid) == (2, f"error: run {rid} already finished all its epochs "
                                       f"(to train it further: --resume {rid} --epochs N)")


def _main(*argv):
    """(exit code, stdout, stderr) of the CLI's main in this process."""
    import contextlib
    import io
    from snncore.__main__ import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


def test_resume_with_epochs_extends_a_finished_run(tmp_path):
    from snncore.store import RunStore
    runs = str(tmp_path / "runs")
    code, out, err = _main("train", "--epochs", "1", "--hidden", "16", "--timesteps", "4", "--n-train", "128",
                           "--log-every", "1", "--json", "--runs-dir", runs)
    assert code == 0, err
    rid = json.loads(out.strip().splitlines()[-1])["run_id"]
    code, out, err = _main("train", "--resume", rid, "--epochs", "2", "--json", "--runs-dir", runs)
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["status"] == "finished" and summary["epochs"] == 2 and summary["steps"] == 4
    store = RunStore(runs)
    run = store.get_run(rid)
    assert run["status"] == "finished" and run["config"]["epochs"] == 2 and run["epoch"] == 2
    m = store.metrics_frame(rid)
    assert sorted(m["epoch"].dropna().tolist()) == [1, 2]
    assert m["test/accuracy"].notna().sum() == 2 and m["train/loss"].notna().sum() == 4   # none twice
    # the cosine schedule re-planned over 4 steps: the rate after step 2 is the new plan's, not the
    # finished run's zero (the scheduler's ratio update alone keeps it there)
    lr = m["lr"].dropna()
    assert lr.loc[2] == pytest.approx(5e-3 * (1 + math.cos(math.pi * 3 / 4)) / 2)
    # shortening below what was trained, or anything else with --resume: one line, exit 2
    for argv, words in ((["--epochs", "2"], f"run {rid} has completed 2 epochs; give the new total, above 2"),
                        (["--epochs", "1"], "has completed 2 epochs"),
                        (["--epochs", "0"], "epochs: 0 is out of range"),
                        (["--epochs", "3", "--lr", "0.1"], "only --epochs N (the new total) goes with it"),
                        (["--epochs", "3", "--a-plus", "0.1"], "only --epochs N"),
                        (["--epochs", "3", "--config", "x.toml"], "only --epochs N")):
        code, out, err = _main("train", "--resume", rid, *argv, "--runs-dir", runs)
        assert code == 2 and err.count("\n") == 1 and words in err, (argv, err)
    assert store.get_run(rid)["config"]["epochs"] == 2 and store.get_run(rid)["status"] == "finished"


def test_resume_with_fewer_epochs_ends_a_stopped_run_sooner(tmp_path):
    from snncore.config import RunConfig
    from snncore.store import RunStore
    from snncore.train import Trainer
    runs = tmp_path / "runs"
    store = RunStore(runs)
    cfg = RunConfig.from_dict({"epochs": 5, "hidden": [16], "timesteps": 4, "n_train": 128})
    rid = store.create_run(cfg.to_dict())
    tr = Trainer(cfg, store, rid)
    tr.on_progress = lambda p: p.test_accuracy is not None and store.request_stop(rid)
    tr.run()
    assert store.get_run(rid)["status"] == "stopped" and store.get_run(rid)["epoch"] == 1
    code, out, err = _main("train", "--resume", rid, "--epochs", "2", "--json", "--runs-dir", str(runs))
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["epochs"] == 2
    run = store.get_run(rid)
    assert run["status"] == "finished" and run["config"]["epochs"] == 2


def test_resume_epochs_is_refused_for_a_task_sequence(tmp_path):
    from snncore.config import RunConfig
    from snncore.store import RunStore
    store = RunStore(tmp_path / "runs")
    cfg = RunConfig.from_dict({"rule": "ip2", "rule_params": {"n_tasks": 1, "max_updates": 2, "N": 8,
                                                              "meta_mode": "fixed"}})
    rid = store.create_run(cfg.to_dict())
    store.save_checkpoint(rid, 1, 2, {"x": 1})
    store.end_run(rid, "stopped")
    code, out, err = _main("train", "--resume", rid, "--epochs", "3", "--runs-dir", str(tmp_path / "runs"))
    assert code == 2 and err == "error: --epochs: rule 'ip2' runs a task sequence (its length is ip2.n_tasks), not epochs\n"
