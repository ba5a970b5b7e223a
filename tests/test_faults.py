"""Faults: killed processes, concurrent writers, a full disk, a folder that cannot be written.

Real training processes (`python -m snncore train`) are killed with SIGKILL at random points; the
store must stay readable, the run be marked failed, and `--resume` continue it to the end with
every step logged exactly once.
"""
import errno
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from snncore.store import RunStore, StoreError

ROOT = Path(__file__).resolve().parent.parent
# long enough (a few seconds) that kills land mid-run on a fast machine too
ARGS = ["--epochs", "6", "--n-train", "512", "--hidden", "256", "--timesteps", "16", "--batch-size", "16",
        "--record-every", "3", "--log-every", "1"]
STEPS = 6 * 32


def _train(runs, *args):
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "snncore", "train", "--runs-dir", str(runs), *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_step(store, rid, target, proc, timeout=120):
    """Poll the store (as the app does) until the run reports `target` steps or the process ends."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout and proc.poll() is None:
        r = store.get_run(rid) if rid else None
        if r and r["status"] == "running" and (r["step"] or 0) >= target:
            return
        time.sleep(0.05)


def check_store_sound(runs, rid):
    """Everything the app reads is readable and consistent."""
    store = RunStore(runs)
    assert store._query("PRAGMA integrity_check")[0][0] == "ok"
    run = store.get_run(rid)
    store.list_runs()
    m = store.metrics_frame(rid)
    if "train/loss" in m:
        assert m.index.is_unique                              # one row per step
    for step in store.snapshot_steps(rid):
        assert store.load_snapshot(rid, step) is not None
    for epoch, step, path in store.checkpoints(rid):
        state = torch.load(path, weights_only=True)
        assert state["epochs_done"] == epoch and state["step"] == step
    leftovers = [p for p in Path(runs).rglob(".*.tmp")]
    return run, leftovers


def test_sigkill_at_random_points_then_resume(tmp_path):
    runs = tmp_path / "runs"
    rng = random.Random(1)
    store = RunStore(runs)
    rid = None
    kills = 0
    for attempt in range(10):
        if rid is None:                  # a new run (again, if the last was killed before its checkpoint)
            rid = f"killed-{attempt}"
            proc = _train(runs, *ARGS, "--run-id", rid)
        else:
            proc = _train(runs, "--resume", rid)
        # a random step past where this attempt restarts (its last checkpoint), leaving enough of the
        # run that a fast machine cannot finish it between two progress writes (4 a second)
        ck = max([s for _, s, _ in store.checkpoints(rid)], default=0) if rid else 0
        if not ck and attempt:      # only the first new run dies inside epoch 1: the others reach a checkpoint
            ck = STEPS // 6
        _wait_for_step(store, rid, min(STEPS - 80, ck + rng.randint(1, 40)), proc)
        time.sleep(rng.uniform(0, 0.1))
        if proc.poll() is not None:
            break                                             # finished before the kill
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        t0 = time.monotonic()
        run, leftovers = check_store_sound(runs, rid)
        if run["status"] == "finished":                       # the kill landed after the run's end
            break
        kills += 1
        # the app notices on its next read: failed, with the reason
        assert run["status"] == "failed" and run["error"] == "process ended unexpectedly"
        assert time.monotonic() - t0 < 5
        if not RunStore(runs).checkpoints(rid):               # killed inside epoch 1: nothing to resume
            out = subprocess.run([sys.executable, "-m", "snncore", "train", "--runs-dir", str(runs), "--resume",
                                  rid], cwd=ROOT, capture_output=True, text=True)
            assert out.returncode == 2 and "no checkpoint to resume from" in out.stderr
            rid = None
    assert kills >= 3
    if RunStore(runs).get_run(rid)["status"] != "finished":
        proc = _train(runs, "--resume", rid)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    run, leftovers = check_store_sound(runs, rid)
    assert run["status"] == "finished" and run["epoch"] == 6, run
    assert not leftovers                                      # a resume clears temp files of killed writers
    m = RunStore(runs).metrics_frame(rid)
    assert m["train/loss"].notna().sum() == STEPS and list(m["train/loss"].dropna().index) == list(range(STEPS))
    assert len(m["test/accuracy"].dropna()) == 6
    assert [e for e, _, _ in RunStore(runs).checkpoints(rid)] == list(range(1, 7))


def test_two_trainers_and_a_reader_at_once(tmp_path):
    runs = tmp_path / "runs"
    RunStore(runs)
    procs = [_train(runs, *ARGS, "--seed", str(s)) for s in (1, 2)]
    errors, reads = [], [0]

    def reader():
        store = RunStore(runs)
        while any(p.poll() is None for p in procs):
            try:
                for r in store.list_runs():
                    store.metrics_frame(r["id"])
                    store.metrics_frame(r["id"], "telemetry")
                    store.load_snapshot(r["id"])
                reads[0] += 1
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
            time.sleep(0.01)
    t = threading.Thread(target=reader)
    t.start()
    outs = [p.communicate(timeout=600) for p in procs]
    t.join()
    assert not errors, errors[:3]
    assert reads[0] > 5
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0 and "locked" not in err, err
    store = RunStore(runs)
    runs_ = store.list_runs()
    assert len(runs_) == 2 and all(r["status"] == "finished" for r in runs_)
    for r in runs_:
        assert store.metrics_frame(r["id"])["train/loss"].notna().sum() == STEPS


def _cli(argv, monkeypatch, capsys):
    from snncore.__main__ import main
    with pytest.raises(SystemExit) as e:
        main(argv)
    return e.value.code, capsys.readouterr().err


def test_disk_full_fails_the_run_with_a_clear_message(tmp_path, monkeypatch, capsys):
    import snncore.store as store_mod
    runs = tmp_path / "runs"
    real = store_mod.atomic_write_bytes
    # the real function must clean its temporary file: exercise it with a failing fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device")))
    with pytest.raises(OSError):
        store_mod.atomic_write_bytes(tmp_path / "x.bin", b"abc")
    assert not list(tmp_path.glob(".x.bin.*")) and not (tmp_path / "x.bin").exists()
    monkeypatch.undo()

    monkeypatch.setattr(store_mod, "atomic_write_bytes", lambda p, d, **kw: (_ for _ in ()).throw(
        OSError(errno.ENOSPC, "No space left on device")) if "checkpoints" in str(p) else real(p, d, **kw))
    code, err = _cli(["train", "--runs-dir", str(runs), *ARGS, "--epochs", "1"], monkeypatch, capsys)
    assert code == 1
    line = err.strip().splitlines()[-1]
    assert "cannot write to the runs folder" in line and "No space left on device" in line and "--resume" in line
    run = RunStore(runs).list_runs()[0]
    assert run["status"] == "failed" and "No space left" in run["error"]


def test_database_full_fails_the_run_with_a_clear_message(tmp_path, monkeypatch, capsys):
    runs = tmp_path / "runs"

    def full(self, run_id, rows):
        raise sqlite3.OperationalError("database or disk is full")
    monkeypatch.setattr(RunStore, "log_metrics", full)
    code, err = _cli(["train", "--runs-dir", str(runs), *ARGS, "--epochs", "1"], monkeypatch, capsys)
    assert code == 1 and "cannot write to the runs folder" in err and "disk is full" in err


def test_runs_folder_that_cannot_be_written(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot be created"):
        RunStore(blocker / "runs")
    code, err = _cli(["train", "--runs-dir", str(blocker / "runs"), *ARGS], monkeypatch, capsys)
    assert code == 2 and err.count("\n") == 1 and "runs folder" in err
    # a folder without write permission (root ignores modes, so the check itself is exercised)
    ro = tmp_path / "ro"
    ro.mkdir()
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != ro)
    with pytest.raises(StoreError, match="is not writable"):
        RunStore(ro)
