import os
import subprocess
import sys

import numpy as np
import pytest

from snncore.store import RunStore, StoreError


def test_round_trip(tmp_path):
    s = RunStore(tmp_path)
    assert s._query("PRAGMA journal_mode")[0][0] == "wal"
    rid = s.create_run({"rule": "bptt", "dataset": "digits", "name": "x"})
    s.start_run(rid, pid=os.getpid(), device="cpu", total_steps=10)
    s.log_metrics(rid, [(0, 0, "train/loss", 2.0), (1, 0, "train/loss", 1.5), (1, 0, "test/accuracy", 0.5)])
    s.log_telemetry(rid, [(1, "sync/out", 0.25)])
    s.save_snapshot(rid, 1, 0, {"raster/fc1": np.eye(3, dtype=bool)})
    s.save_checkpoint(rid, 1, 1, {"w": 1})
    assert not s.heartbeat(rid, epoch=0, step=1)
    s.request_stop(rid)
    assert s.heartbeat(rid, epoch=0, step=1)
    s.end_run(rid, "finished", summary={"test_accuracy": 0.5})
    s2 = RunStore(tmp_path)                      # a second reader sees everything
    run = s2.get_run(rid)
    assert run["status"] == "finished" and run["summary"]["test_accuracy"] == 0.5
    assert run["config"]["rule"] == "bptt"
    assert s2.list_runs()[0]["best_accuracy"] == 0.5
    df = s2.metrics_frame(rid)
    assert list(df["train/loss"]) == [2.0, 1.5]
    assert s2.metrics_frame(rid, "telemetry")["sync/out"].iloc[0] == 0.25
    snap = s2.load_snapshot(rid)
    assert snap["raster/fc1"].dtype == bool and snap["raster/fc1"].shape == (3, 3)
    assert s2.checkpoints(rid)[0][2].exists()


def test_snapshots_bounded_on_disk(tmp_path):
    s = RunStore(tmp_path)
    rid = s.create_run({})
    for step in range(12):
        s.save_snapshot(rid, step, 0, {"a": np.zeros(4)}, keep=5)
    assert s.snapshot_steps(rid) == [7, 8, 9, 10, 11]
    assert len(list((tmp_path / rid / "snapshots").glob("*.npz"))) == 5
    assert not list((tmp_path / rid / "snapshots").glob("*.tmp"))


def test_dead_process_marked_failed(tmp_path):
    s = RunStore(tmp_path)
    rid = s.create_run({})
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    s.start_run(rid, pid=p.pid, device="cpu", total_steps=1)
    run = s.get_run(rid)
    assert run["status"] == "failed" and run["error"] == "process ended unexpectedly"


def test_bad_run_ids_and_unwritable(tmp_path):
    s = RunStore(tmp_path)
    for bad in ("../x", "a/b", "", ".."):
        with pytest.raises(ValueError):
            s.run_dir(bad)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    if os.geteuid() != 0:
        with pytest.raises(StoreError, match="not writable"):
            RunStore(ro)
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(StoreError, match="cannot be created"):
        RunStore(f / "sub")


def test_app_launched_runs_leave_a_core_to_the_app(tmp_path, monkeypatch):
    from snncore.runs import launch
    from snncore.config import RunConfig
    seen = {}

    class FakePopen:
        def __init__(self, cmd, **kw):
            seen.update(cmd=cmd, env=kw["env"])
            self.pid = os.getpid()

    monkeypatch.setattr(launch.subprocess, "Popen", FakePopen)
    monkeypatch.setattr(launch, "cores", lambda: 2)
    monkeypatch.delenv("SNNCORE_THREADS", raising=False)
    s = RunStore(tmp_path)
    rid = launch.launch_run(RunConfig(), s)
    assert seen["env"]["OMP_NUM_THREADS"] == "1"          # torch must not fight the page for both cores
    assert seen["cmd"][-4:] == ["--run-id", rid, "--runs-dir", str(tmp_path.resolve())]
    assert (tmp_path / rid / "config.toml").exists()


def test_snapshots_small_stored_plain_large_compressed_both_read_back(tmp_path, monkeypatch):
    """Small snapshots skip zlib and fsync (their cost was ~5 % of a small run); large ones are
    compressed; both read back exactly. Checkpoints still fsync."""
    import zipfile
    from snncore import store as S
    s = RunStore(tmp_path)
    rid = s.create_run({"x": 1})
    syncs = []
    monkeypatch.setattr(os, "fsync", lambda fd: syncs.append(fd))
    small = {"raster/fc1": np.random.default_rng(0).random((256, 64)) < 0.1}
    big = {"w": np.zeros((400, 400), dtype=np.float32)}            # 640 KB > SNAPSHOT_COMPRESS_ABOVE
    for step, arrays in ((1, small), (2, big)):
        p = s.save_snapshot(rid, step, 0, arrays)
        kinds = {i.compress_type for i in zipfile.ZipFile(p).infolist()}
        assert kinds == ({zipfile.ZIP_STORED} if step == 1 else {zipfile.ZIP_DEFLATED})
        got = s.load_snapshot(rid, step)
        for k, v in arrays.items():
            assert np.array_equal(got[k], v)
    assert not syncs
    assert sum(a.nbytes for a in small.values()) < S.SNAPSHOT_COMPRESS_ABOVE < big["w"].nbytes
    s.save_checkpoint(rid, 1, 2, {"step": 2})
    assert syncs                                                      # checkpoints stay durable


def test_status_queries_and_list_summaries_per_listed_run(tmp_path):
    """ids_with_status / runs_with_status: oldest first, no metric summaries; list_runs' best
    accuracy comes from the listed runs' rows only and is the same past SQLite's parameter bound."""
    import time
    store = RunStore(tmp_path / "runs")
    cfg = {"rule": "bptt", "dataset": "digits"}
    ids = []
    for i in range(5):
        ids.append(store.create_run(cfg, status="queued" if i % 2 == 0 else "starting"))
        time.sleep(0.002)
    assert store.ids_with_status("queued") == [ids[0], ids[2], ids[4]]
    got = store.runs_with_status("starting", "queued")
    assert [r["id"] for r in got] == ids and "best_accuracy" not in got[0]
    store.log_metrics(ids[1], [(1, 0, "test/accuracy", 0.5), (2, 1, "test/accuracy", 0.75)])
    store.log_metrics(ids[3], [(1, 0, "test/accuracy", 0.25)])
    newest_two = store.list_runs(2)
    assert [r["id"] for r in newest_two] == [ids[4], ids[3]] and newest_two[1]["best_accuracy"] == 0.25
    assert {r["id"]: r["best_accuracy"] for r in store.list_runs()}[ids[1]] == 0.75
    for _ in range(1000):                                  # past 999 listed runs: one query over all
        store.create_run(cfg)
    many = {r["id"]: r["best_accuracy"] for r in store.list_runs(5000)}
    assert len(many) == 1005 and many[ids[1]] == 0.75 and many[ids[3]] == 0.25


def test_final_values_are_the_last_epochs_means_by_hand(tmp_path):
    """final_values: each key's mean over the rows after the one-but-last 'epoch' row up to the
    last; a per-epoch metric is then its last value; telemetry wins over a metric of the same key;
    'epoch' and 'info/*' are left out; NaN rows do not count."""
    s = RunStore(tmp_path)
    rid = s.create_run({"rule": "x"})
    s.log_metrics(rid, [(0, 0, "info/steps_per_epoch", 4), (4, 1, "epoch", 1), (4, 1, "test/loss", 0.9),
                        (8, 2, "epoch", 2), (8, 2, "test/loss", 0.5), (6, 2, "rate/fc1", 123.0),
                        (3, 0, "train/loss", 9.0), (5, 1, "train/loss", 2.0), (7, 1, "train/loss", 4.0)])
    s.log_telemetry(rid, [(2, "gate/fc1", 100.0), (4, "gate/fc1", 100.0),     # epoch 1: out
                          (5, "gate/fc1", 1.0), (6, "gate/fc1", 2.0), (8, "gate/fc1", 6.0),
                          (6, "rate/fc1", 0.25), (7, "gate/fc1", float("nan"))])
    assert s.final_values(rid) == {"gate/fc1": pytest.approx(3.0), "rate/fc1": 0.25, "test/loss": 0.5,
                                   "train/loss": pytest.approx(3.0)}
    # one epoch: every row from step 0
    one = s.create_run({"rule": "x"})
    s.log_metrics(one, [(0, 0, "train/loss", 1.0), (2, 1, "train/loss", 3.0), (2, 1, "epoch", 1)])
    assert s.final_values(one) == {"train/loss": 2.0}
    # a rule with its own loop (no epoch rows): the last 10 % of its steps
    own = s.create_run({"rule": "x"})
    s.log_telemetry(own, [(k, "eff", float(k)) for k in range(0, 101, 5)])
    assert s.final_values(own) == {"eff": pytest.approx(97.5)}                 # steps 95 and 100
    assert s.final_values(s.create_run({"rule": "x"})) == {}
