"""Pause, step, continue and mid-run hyperparameter changes (snncore/runs/control.py): the trainer
holds still while paused, a step trains exactly one batch, a change takes effect at its recorded
step, and a run with changes is reproduced bit for bit by --resume and by its exported config."""
import threading
import time

import pytest
import torch

from snncore.config import ConfigError, RunConfig
from snncore.runs.control import replay_config, run_changes
from snncore.store import RunStore
from snncore.train import Trainer

# 16 batches per epoch, 2 epochs: a checkpoint at step 16
TINY = dict(dataset="digits", rule="ssdp", epochs=2, n_train=128, hidden=[32], timesteps=4, batch_size=8,
            record_every=8, log_every=4, device="cpu", lr=5e-3)


def wait_for(cond, timeout=60.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def answer(store, cid, timeout=60.0):
    c = wait_for(lambda: (lambda c: c if c["done"] is not None else None)(store.get_control(cid)),
                 timeout, f"control {cid}")
    return c


def start(folder, cfg, run_id=None, resume=False):
    """A Trainer in a thread (its own store connection, as the run's process has); the test drives
    it through another RunStore on the same folder, as the app does."""
    tstore = RunStore(folder)
    run_id = run_id or tstore.create_run(cfg.to_dict())
    tr = Trainer(cfg, tstore, run_id)
    if resume:
        tr.resume()
    out = {}
    th = threading.Thread(target=lambda: out.update(summary=tr.run()), daemon=True)
    return tr, run_id, th, out


def test_pause_step_change_continue(tmp_path):
    folder = tmp_path / "runs"
    store = RunStore(folder)
    cfg = RunConfig.from_dict(TINY)
    tr, rid, th, out = start(folder, cfg)
    store.request_control(rid, "pause")              # seen at the first heartbeat (after batch 0)
    th.start()
    wait_for(lambda: store.get_run(rid)["status"] == "paused", what="paused")
    held = store.get_run(rid)["step"]
    assert held == tr.step == 1
    beat = store.get_run(rid)["heartbeat"]
    time.sleep(0.6)
    row = store.get_run(rid)
    assert row["step"] == held and tr.step == held and row["status"] == "paused"   # holds still
    assert row["heartbeat"] > beat                   # ...and is seen alive
    assert store.reap() == [] and store.get_run(rid)["status"] == "paused"

    c = answer(store, store.request_control(rid, "step", 1))
    assert c["error"] is None and c["result"] == {"step": held + 1} and tr.step == held + 1   # one batch
    assert store.get_run(rid)["status"] == "paused"

    # a bad value is refused with the rule's range, and nothing is applied or stored
    c = answer(store, store.request_control(rid, "set", {"name": "a_plus", "value": 2.0}))
    assert "a_plus: 2.0 is out of range (allowed: 0.0 <= value <= 1.0)" in c["error"]
    c = answer(store, store.request_control(rid, "set", {"name": "targets", "value": "fc1"}))
    assert "targets: cannot be changed" in c["error"]
    assert store.changes(rid) == [] and tr.rule.params.a_plus == pytest.approx(1e-4)

    c = answer(store, store.request_control(rid, "set", {"name": "a_plus", "value": "3e-3"}))
    assert c["error"] is None and c["result"]["step"] == held + 1 and c["result"]["value"] == 3e-3
    assert tr.rule.params.a_plus == 3e-3 and store.changes(rid) == [(held + 1, "a_plus", 3e-3)]
    lr_before = tr.optimizer.param_groups[0]["lr"]
    c = answer(store, store.request_control(rid, "set", {"name": "lr", "value": 1e-2}))
    assert tr.optimizer.param_groups[0]["lr"] == pytest.approx(lr_before * 2)   # 5e-3 -> 1e-2: schedule x2

    c = answer(store, store.request_control(rid, "step_epoch"))
    assert c["result"] == {"step": 16} and tr.step == 16        # the end of epoch 1, evaluated
    assert [e for e, _, _ in store.checkpoints(rid, full=True)] == [1]

    c = answer(store, store.request_control(rid, "continue"))
    assert c["error"] is None
    th.join(120)
    assert out["summary"]["status"] == "finished" and out["summary"]["steps"] == 32
    assert store.pending_controls(rid) == []
    # a request to an ended run is answered (refused), never left waiting
    cid = store.request_control(rid, "pause")
    store.end_run(rid, "finished")
    assert "finished" in store.get_control(cid)["error"]


def _drive(folder, cfg, stop_at=None):
    """Pause at step 1, lr -> 1e-2 there, step to 20, a_plus -> 3e-3 there, then continue to the end
    (or step to stop_at and stop). Returns (trainer, run id)."""
    store = RunStore(folder)
    tr, rid, th, out = start(folder, cfg)
    store.request_control(rid, "pause")
    th.start()
    wait_for(lambda: store.get_run(rid)["status"] == "paused", what="paused")
    assert tr.step == 1
    assert answer(store, store.request_control(rid, "set", {"name": "lr", "value": 1e-2}))["result"]["step"] == 1
    assert answer(store, store.request_control(rid, "step", 19))["result"] == {"step": 20}
    assert answer(store, store.request_control(rid, "set", {"name": "a_plus", "value": 3e-3}))["result"]["step"] == 20
    if stop_at is None:
        answer(store, store.request_control(rid, "continue"))
    else:
        assert answer(store, store.request_control(rid, "step", stop_at - 20))["result"] == {"step": stop_at}
        store.request_stop(rid)
    th.join(120)
    assert out["summary"]["status"] == ("finished" if stop_at is None else "stopped")
    return tr, rid


def _weights(tr):
    return {k: v.clone() for k, v in tr.model.state_dict().items()}


def test_mid_run_changes_replay_bitwise(tmp_path):
    cfg = RunConfig.from_dict(TINY)
    # the uninterrupted run, changed live at steps 1 (lr) and 20 (a_plus)
    a, rid_a = _drive(tmp_path / "a", cfg)
    store_a = RunStore(tmp_path / "a")
    assert run_changes(store_a, rid_a) == [(1, "lr", 1e-2), (20, "a_plus", 3e-3)]
    want = _weights(a)

    # the same run stopped at step 24 (its checkpoint: step 16), resumed as --resume does: the lr
    # change is in the checkpoint's state, the a_plus change is replayed at step 20
    b, rid_b = _drive(tmp_path / "b", cfg, stop_at=24)
    store_b = RunStore(tmp_path / "b")
    store_b.reopen(rid_b)
    b2 = Trainer(cfg, RunStore(tmp_path / "b"), rid_b)
    assert b2.resume() == 1 and b2.step == 16
    assert b2.rule.params.a_plus == pytest.approx(1e-4)          # not yet: its step is 20
    assert b2.run()["status"] == "finished"
    assert b2.rule.params.a_plus == 3e-3 and b2._lr_base == 1e-2
    got = _weights(b2)
    assert all(torch.equal(want[k], got[k]) for k in want), "resume differs from the uninterrupted run"
    assert run_changes(store_b, rid_b) == [(1, "lr", 1e-2), (20, "a_plus", 3e-3)]   # not recorded twice

    # the same through the command line: `python -m snncore train --resume ID` (its final checkpoint)
    from tests.test_command_roundtrip import dry_run
    e, rid_e = _drive(tmp_path / "e", cfg, stop_at=24)
    code, out, err = dry_run(["train", "--resume", rid_e, "--runs-dir", str(tmp_path / "e"), "--json"])
    assert code == 0, err
    final = RunStore(tmp_path / "e").checkpoints(rid_e, full=True)[-1]
    assert final[:2] == (2, 32)
    got = torch.load(final[2], weights_only=True)["model"]
    assert all(torch.equal(want[k], got[k]) for k in want), "--resume differs from the uninterrupted run"

    # a fresh run of the exported config (its changes list) trains the same weights
    exported = replay_config(store_a, rid_a)
    assert exported.changes == ["1:lr=0.01", "20:a_plus=0.003"]
    assert "--changes 1:lr=0.01,20:a_plus=0.003" in exported.command_line()
    assert 'changes = ["1:lr=0.01", "20:a_plus=0.003"]' in exported.to_toml()
    store_c = RunStore(tmp_path / "c")
    c = Trainer(exported, store_c, store_c.create_run(exported.to_dict()))
    assert c.run()["status"] == "finished"
    got = _weights(c)
    assert all(torch.equal(want[k], got[k]) for k in want), "the exported config trains other weights"
    # without the changes the weights differ (the test can fail)
    d = Trainer(cfg, store_c, store_c.create_run(cfg.to_dict()))
    d.run()
    assert not all(torch.equal(want[k], v) for k, v in _weights(d).items())


def test_change_validation_messages():
    cfg = RunConfig.from_dict({**TINY})
    from snncore.config import changeable, check_change
    assert {"lr", "a_plus", "a_base", "sigma"} <= set(changeable(cfg)) and "targets" not in changeable(cfg)
    assert check_change(cfg, "a_plus", "0.5") == 0.5
    with pytest.raises(ConfigError, match=r"^lr: 0.0 is out of range"):
        check_change(cfg, "lr", 0)
    with pytest.raises(ConfigError, match=r"^nosuch: cannot be changed during a run of rule 'ssdp' \(allowed: lr, "):
        check_change(cfg, "nosuch", 1)
    ip2 = RunConfig.from_dict({"rule": "ip2"})
    with pytest.raises(ConfigError, match="runs its own loop"):
        check_change(ip2, "lr", 1e-3)
    with pytest.raises(ConfigError, match=r"^changes: 3:a_plus=2.0: a_plus: 2.0 is out of range"):
        RunConfig.from_dict({**TINY, "changes": ["3:a_plus=2.0"]})
    with pytest.raises(ConfigError, match=r"^changes: expected STEP:NAME=VALUE"):
        RunConfig.from_dict({**TINY, "changes": ["a_plus=2.0"]})


def test_own_loop_rule_pauses_steps_and_refuses_changes(tmp_path):
    """IP2 runs its own loop: pause, step (by updates) and continue work; a change or an epoch step
    is refused with the reason."""
    folder = tmp_path / "runs"
    store = RunStore(folder)
    cfg = RunConfig.from_dict({"rule": "ip2", "rule_params": {"n_tasks": 2, "max_updates": 12, "N": 12,
                                                              "meta_mode": "fixed"}})
    tr, rid, th, out = start(folder, cfg)
    store.request_control(rid, "pause")
    th.start()
    wait_for(lambda: store.get_run(rid)["status"] == "paused", what="paused")
    held = tr.sink.step
    time.sleep(0.4)
    assert tr.sink.step == held and store.get_run(rid)["status"] == "paused"
    assert answer(store, store.request_control(rid, "step", 1))["result"] == {"step": held + 1}
    c = answer(store, store.request_control(rid, "set", {"name": "lr", "value": 1e-3}))
    assert "runs its own loop" in c["error"] and store.changes(rid) == []
    assert "step it by updates" in answer(store, store.request_control(rid, "step_epoch"))["error"]
    answer(store, store.request_control(rid, "continue"))
    th.join(120)
    assert out["summary"]["status"] == "finished"


def test_api_pause_step_set_continue(tmp_path):
    import snncore as sc
    run = sc.train(config={**TINY, "epochs": 300}, wait=False, progress=False, runs_dir=tmp_path / "runs")
    try:
        at = run.pause()
        assert run.status == "paused" and run.row["step"] == at
        assert run.step() == at + 1
        assert run.step(batches=3) == at + 4
        end = run.step_epoch()
        assert end % 16 == 0 and end > at + 4
        with pytest.raises(ValueError, match=r"^a_plus: 2.0 is out of range \(allowed: 0.0 <= value <= 1.0\)"):
            run.set(a_plus=2.0)
        with pytest.raises(ValueError, match=r"^batches: expected a whole number >= 1"):
            run.step(0)
        assert run.set(a_plus=2e-3, lr=1e-3) == end
        assert run.changes.to_dict("records") == [{"step": end, "name": "a_plus", "value": 2e-3},
                                                  {"step": end, "name": "lr", "value": 1e-3}]
        assert run.exported_config().changes == [f"{end}:a_plus=0.002", f"{end}:lr=0.001"]
        assert run.continue_() == end
        wait_for(lambda: run.row["step"] > end + 2, what="trains on")
        assert run.status == "running"
        fig = run.figure("loss")
        assert any(a.text == "a_plus=0.002, lr=0.001" for a in fig.layout.annotations)
        assert not run.figure("rate").layout.shapes or all(s.x0 != end for s in run.figure("rate").layout.shapes)
        run.pause()                                         # a stop while paused ends it
    finally:
        run.stop()
    assert run.status == "stopped"
    with pytest.raises(ValueError, match="is stopped: only a live run"):
        run.pause()


def test_old_database_opens_with_the_new_tables(tmp_path):
    """A runs.sqlite written before controls and changes existed opens, keeps its runs, and takes them."""
    import sqlite3
    folder = tmp_path / "runs"
    folder.mkdir()
    con = sqlite3.connect(folder / "runs.sqlite")
    con.executescript("""
        CREATE TABLE runs (id TEXT PRIMARY KEY, name TEXT, config TEXT NOT NULL, status TEXT NOT NULL,
            created REAL, started REAL, ended REAL, error TEXT, pid INTEGER, host TEXT, device TEXT,
            heartbeat REAL, epoch INTEGER DEFAULT 0, step INTEGER DEFAULT 0, total_steps INTEGER DEFAULT 0,
            stop_requested INTEGER DEFAULT 0, summary TEXT);
        INSERT INTO runs (id, name, config, status, created) VALUES ('old', '', '{"rule": "ssdp"}', 'finished', 1.0);
    """)
    con.commit()
    con.close()
    store = RunStore(folder)
    assert store.get_run("old")["status"] == "finished" and store.changes("old") == []
    store.record_change("old", 3, "a_plus", 0.002)
    assert run_changes(store, "old") == [(3, "a_plus", 0.002)]


def test_changes_round_trip_through_the_command_line_and_toml(tmp_path):
    """The exported command (--changes) and TOML (changes = [...]) give the same config back,
    changes included (in the style of test_command_roundtrip)."""
    import shlex
    from tests.test_command_roundtrip import dry_run, replay
    cfg = RunConfig.from_dict({**TINY, "changes": ["20:a_plus=0.003", "1:lr=0.01", "5:sigma=2.5",
                                                   "7:depress_silent=false", "9:latency=last"]})
    assert cfg.changes == ["1:lr=0.01", "5:sigma=2.5", "7:depress_silent=false", "9:latency=last",
                           "20:a_plus=0.003"]
    got = replay(cfg.command_line(), tmp_path)
    assert got["config"] == cfg.to_dict() and got["command"] == cfg.command_line()
    f = tmp_path / "run.toml"
    f.write_text(cfg.to_toml())
    code, out, err = dry_run(["train", "--config", str(f), "--dry-run", "--json"])
    assert code == 0, err
    import json
    assert json.loads(out)["config"] == cfg.to_dict()
    # [[changes]] tables work too
    f.write_text(cfg.to_toml().replace('changes = ["1:lr=0.01", "5:sigma=2.5", "7:depress_silent=false", '
                                       '"9:latency=last", "20:a_plus=0.003"]\n', "")
                 + '\n[[changes]]\nstep = 20\nname = "a_plus"\nvalue = 0.003\n')
    code, out, err = dry_run(["train", "--config", str(f), "--dry-run", "--json"])
    assert code == 0, err
    assert json.loads(out)["config"]["changes"] == ["20:a_plus=0.003"]
    # a bad change on the command line: one line naming it and the range
    code, out, err = dry_run(shlex.split("train --rule ssdp --changes 3:a_plus=5 --dry-run --json"))
    assert code == 2 and err.strip() == ("error: changes: 3:a_plus=5: a_plus: 5.0 is out of range "
                                         "(allowed: 0.0 <= value <= 1.0)")
