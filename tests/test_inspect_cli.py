"""python -m snncore inspect: statistics of a run or a checkpoint file; every bad input is one line, exit 2."""
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from snncore.cli import inspect as cli_inspect
from snncore.config import RunConfig
from snncore.store import RunStore
from snncore.train import Trainer

ROOT = Path(__file__).resolve().parent.parent
# tiny, but with enough firing to describe: T 8, threshold 0.5
INSPECT_TINY = dict(dataset="digits", rule="bptt", epochs=2, timesteps=8, batch_size=64, hidden=[32],
                    n_train=256, record_every=2, v_threshold=0.5, lr=0.02, device="cpu")


def make_runs(root: Path) -> dict:
    """A finished 2-epoch mlp run, an IP2 run (its checkpoint keeps no network weights, as the Trainer
    writes it) and a run that has no checkpoint yet; returns their ids."""
    store = RunStore(root)
    cfg = RunConfig.from_dict(INSPECT_TINY)
    mlp = store.create_run(cfg.to_dict(), "tiny-mlp")
    assert Trainer(cfg, store, mlp).run()["status"] == "finished"
    ip2cfg = RunConfig.from_dict({"rule": "ip2", "rule_params": {"n_tasks": 2, "N": 16}})
    ip2 = store.create_run(ip2cfg.to_dict(), "tiny-ip2")
    store.save_checkpoint(ip2, 1, 5, {"rule": {"chosen_mask": ["tau_d"]}, "config": ip2cfg.to_dict(),
                                      "summary": {"tasks": 2}})
    store.end_run(ip2, "finished")
    empty = store.create_run(cfg.to_dict(), "no-checkpoint")
    return {"mlp": mlp, "ip2": ip2, "empty": empty, "store": store}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("inspect") / "runs"
    return root, make_runs(root)


def call(capsys, *argv):
    rc = cli_inspect.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def one_error_line(err: str) -> str:
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_text_report_of_a_run(runs, capsys):
    root, r = runs
    rc, out, err = call(capsys, r["mlp"], "--runs-dir", root, "--samples", 16)
    assert rc == 0, err
    assert "rule bptt, model mlp, dataset digits, epoch 2, 16 test samples x 8 steps" in out
    rows = {l.split()[0]: l.split() for l in out.splitlines() if l.strip().startswith(("fc1", "out"))}
    assert rows["fc1"][1] == "32" and rows["out"][1] == "10"
    assert "SynOps per sample" in out and "MACs" in out


def test_json_report_is_consistent(runs, capsys):
    root, r = runs
    rc, out, err = call(capsys, r["mlp"], "--runs-dir", root, "--json", "--samples", 24)
    assert rc == 0, err
    rep = json.loads(out)
    assert rep["samples"] == 24 and rep["timesteps"] == 8 and rep["epoch"] == 2
    assert 0.0 <= rep["accuracy"] <= 1.0
    fc1, out_layer = rep["layers"]["fc1"], rep["layers"]["out"]
    assert fc1["spiking"] and not out_layer["spiking"] and fc1["neurons"] == 32
    assert 0.0 <= fc1["rate_mean"] <= 1.0 and fc1["silent"] + fc1["saturated"] <= 32
    assert fc1["sparsity"] == pytest.approx(1.0 - fc1["rate_mean"])
    # the read-out's SynOps: every fc1 spike reaches all 10 outputs (dense weights)
    assert out_layer["synops_per_sample"] == pytest.approx(fc1["rate_mean"] * 32 * 8 * 10)
    assert rep["synops_per_sample"] == pytest.approx(fc1["synops_per_sample"] + out_layer["synops_per_sample"])
    assert rep["dense_macs_per_sample"] == 8 * (64 * 32 + 32 * 10)


def test_checkpoint_file_gives_the_same_numbers_as_its_run(runs, capsys):
    root, r = runs
    path = r["store"].checkpoints(r["mlp"])[-1][2]
    rc1, out1, _ = call(capsys, r["mlp"], "--runs-dir", root, "--json", "--samples", 8)
    rc2, out2, _ = call(capsys, path, "--json", "--samples", 8)
    assert rc1 == rc2 == 0
    a, b = json.loads(out1), json.loads(out2)
    assert a["layers"] == b["layers"] and b["source"] == str(path)


def test_module_entry_point_dispatches_inspect(runs):
    root, r = runs
    p = subprocess.run([sys.executable, "-m", "snncore", "inspect", r["mlp"], "--runs-dir", str(root), "--json",
                        "--samples", "4"], cwd=ROOT, capture_output=True, text=True, timeout=180,
                       env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout.strip().splitlines()[-1])["samples"] == 4


def test_unknown_run_and_missing_file(runs, capsys):
    root, _ = runs
    rc, _, err = call(capsys, "no-such-run", "--runs-dir", root)
    assert rc == 2 and "run 'no-such-run' is not in" in one_error_line(err)
    rc, _, err = call(capsys, root / "nothing.pt")
    assert rc == 2 and "does not exist" in one_error_line(err)
    rc, _, err = call(capsys, "bad id!", "--runs-dir", root)
    assert rc == 2 and "not valid" in one_error_line(err)


def test_bad_samples_and_missing_argument(runs, capsys):
    root, r = runs
    with pytest.raises(SystemExit) as e:
        call(capsys, r["mlp"], "--runs-dir", root, "--samples", "0")
    assert e.value.code == 2
    assert "out of range (allowed: 1 to 10000)" in one_error_line(capsys.readouterr().err)
    with pytest.raises(SystemExit) as e:
        call(capsys)
    assert e.value.code == 2
    one_error_line(capsys.readouterr().err)


def test_truncated_checkpoint(runs, capsys, tmp_path):
    _, r = runs
    data = r["store"].checkpoints(r["mlp"])[-1][2].read_bytes()
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(data[: len(data) // 2])
    rc, _, err = call(capsys, bad)
    assert rc == 2 and "is not a readable checkpoint" in one_error_line(err)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    rc, _, err = call(capsys, junk)
    assert rc == 2 and "is not a readable checkpoint" in one_error_line(err)


class Evil:
    """Unpickling this would create a marker directory: weights_only loading must refuse it."""
    marker = None

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.parametrize("fmt", ["torch", "pickle"])
def test_malicious_pickle_is_refused_not_executed(capsys, tmp_path, fmt):
    marker = tmp_path / "pwned"
    evil = Evil()
    evil.marker = str(marker)
    f = tmp_path / "evil.pt"
    if fmt == "torch":
        torch.save({"model": {}, "config": evil}, f)
    else:
        f.write_bytes(pickle.dumps({"config": evil}))
    rc, _, err = call(capsys, f)
    assert rc == 2 and "is not a readable checkpoint" in one_error_line(err)
    assert not marker.exists()


def test_checkpoint_without_config(runs, capsys, tmp_path):
    _, r = runs
    state = torch.load(r["store"].checkpoints(r["mlp"])[-1][2], weights_only=True)
    del state["config"]
    f = tmp_path / "noconfig.pt"
    torch.save(state, f)
    rc, _, err = call(capsys, f)
    assert rc == 2 and "has no run config inside" in one_error_line(err)


def test_run_without_checkpoint_and_ip2_run(runs, capsys):
    root, r = runs
    rc, _, err = call(capsys, r["empty"], "--runs-dir", root)
    assert rc == 2 and "has no checkpoint yet" in one_error_line(err)
    rc, _, err = call(capsys, r["ip2"], "--runs-dir", root)     # an old-style IP2 checkpoint: no network
    line = one_error_line(err)
    assert rc == 2 and "written before task checkpoints carried the recurrent network" in line


def test_a_real_ip2_run_is_inspected(tmp_path, capsys):
    store = RunStore(tmp_path / "runs")
    cfg = RunConfig.from_dict({"rule": "ip2", "rule_params": {"n_tasks": 2, "N": 12, "max_updates": 10,
                                                              "meta_mode": "fixed"}})
    rid = store.create_run(cfg.to_dict())
    assert Trainer(cfg, store, rid).run()["status"] == "finished"
    rc, out, err = call(capsys, rid, "--runs-dir", tmp_path / "runs", "--samples", 8, "--json")
    assert rc == 0, err
    rep = json.loads(out)
    assert rep["model"] == "rsnn" and set(rep["layers"]) == {"rsnn", "out"} and rep["samples"] > 0
    assert rep["layers"]["rsnn"]["spiking"] and not rep["layers"]["out"]["spiking"]
    assert rep["synops_per_sample"] > 0
