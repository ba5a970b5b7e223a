"""IP2 runs (their own task-sequence loop) resume from the last task boundary, pilot or main."""
import pytest

from snncore.config import RunConfig
from snncore.store import RunStore
from snncore.train import Trainer


class Killed(Exception):
    """Stands in for SIGKILL: the process ends without marking the run."""


def _cfg(**rp):
    base = {"n_tasks": 3, "max_updates": 12, "N": 12, "meta_mode": "fixed"}
    return RunConfig.from_dict({"rule": "ip2", "rule_params": {**base, **rp}})


def _cut_after(store, rid, n_tasks_done):
    """Kill the run right after its n-th task checkpoint is written."""
    orig = store.save_checkpoint

    def save(run_id, epoch, step, state, **kw):
        path = orig(run_id, epoch, step, state, **kw)
        if epoch >= n_tasks_done:
            raise Killed
        return path
    store.save_checkpoint = save


def _reference(cfg, tmp_path):
    """(summary, store, run id) of the uninterrupted run."""
    store = RunStore(tmp_path / "ref")
    rid = store.create_run(cfg.to_dict())
    return Trainer(cfg, store, rid).run(), store, rid


@pytest.mark.parametrize("rp,cut", [({}, 1), ({"meta_mode": "search", "candidates": "onehot", "k_pilot": 2}, 3)])
def test_ip2_killed_then_resumed_equals_uninterrupted(tmp_path, rp, cut):
    cfg = _cfg(**rp)
    ref, ref_store, ref_id = _reference(cfg, tmp_path)

    store = RunStore(tmp_path / "cut")
    rid = store.create_run(cfg.to_dict())
    _cut_after(store, rid, cut)
    with pytest.raises(Killed):
        Trainer(cfg, store, rid).run()
    store = RunStore(tmp_path / "cut")                    # a fresh process
    assert store.get_run(rid)["status"] == "running" and store.checkpoints(rid)
    store.reopen(rid)
    tr = Trainer(RunConfig.from_dict(store.get_run(rid)["config"]), store, rid)
    assert tr.resume() == cut
    s = tr.run()
    assert s["status"] == "finished"
    for k in ("tasks", "failures", "mask", "steps"):
        assert s[k] == ref[k], k
    m, mref = store.metrics_frame(rid), ref_store.metrics_frame(ref_id)
    assert m["l2l/iterations"].dropna().tolist() == mref["l2l/iterations"].dropna().tolist()
    assert m["train/loss"].notna().sum() == mref["train/loss"].notna().sum() == s["steps"]   # none twice
    assert m["train/loss"].dropna().round(5).tolist() == mref["train/loss"].dropna().round(5).tolist()
    if "pilot" in str(rp):
        pil = [c for c in m.columns if c.startswith("pilot/")]
        assert pil and all(m[c].dropna().tolist() == mref[c].dropna().tolist() for c in pil)


def test_checkpoint_written_before_the_loop_key_still_resumes(tmp_path):
    """Runs checkpointed before own-loop rules stored their loop state under "loop" kept it under
    "ip2" (IP2.legacy_loop_keys): they resume to the same result."""
    import torch

    cfg = _cfg()
    ref, ref_store, ref_id = _reference(cfg, tmp_path)

    store = RunStore(tmp_path / "old")
    rid = store.create_run(cfg.to_dict())
    _cut_after(store, rid, 1)
    with pytest.raises(Killed):
        Trainer(cfg, store, rid).run()
    for _, _, path in store.checkpoints(rid, full=True):     # rewrite it the old way
        state = torch.load(path, weights_only=True)
        assert "loop" in state and "ip2" not in state
        state["ip2"] = state.pop("loop")
        torch.save(state, path)
    store = RunStore(tmp_path / "old")
    store.reopen(rid)
    tr = Trainer(RunConfig.from_dict(store.get_run(rid)["config"]), store, rid)
    assert tr.resume() == 1
    s = tr.run()
    assert s["status"] == "finished"
    for k in ("tasks", "failures", "mask", "steps"):
        assert s[k] == ref[k], k
    m, mref = store.metrics_frame(rid), ref_store.metrics_frame(ref_id)
    assert m["l2l/iterations"].dropna().tolist() == mref["l2l/iterations"].dropna().tolist()
    newest = torch.load(store.checkpoints(rid, full=True)[-1][2], weights_only=True)
    assert "loop" in newest and newest["tasks_done"] == s["tasks"]


def test_a_checkpoint_without_loop_state_is_refused(tmp_path):
    import torch

    cfg = _cfg()
    store = RunStore(tmp_path / "runs")
    rid = store.create_run(cfg.to_dict())
    _cut_after(store, rid, 1)
    with pytest.raises(Killed):
        Trainer(cfg, store, rid).run()
    for _, _, path in store.checkpoints(rid, full=True):
        state = torch.load(path, weights_only=True)
        del state["loop"]
        torch.save(state, path)
    with pytest.raises(ValueError, match="its checkpoint predates resumable task sequences"):
        Trainer(cfg, RunStore(tmp_path / "runs"), rid).resume()


def test_stop_request_ends_the_task_loop_and_the_run_resumes(tmp_path):
    """A stop asked for during task 2 (the heartbeat answers True through the sink) ends the run
    as "stopped" after the last task checkpoint; resuming finishes it like an uninterrupted run."""
    cfg = _cfg()
    ref, ref_store, ref_id = _reference(cfg, tmp_path)

    store = RunStore(tmp_path / "stop")
    rid = store.create_run(cfg.to_dict())
    beat = store.heartbeat
    store.heartbeat = lambda run_id, *, epoch, step: beat(run_id, epoch=epoch, step=step) or step >= 1
    s = Trainer(cfg, store, rid).run()
    assert s["status"] == "stopped" and 1 <= s["tasks"] < ref["tasks"]
    assert store.checkpoints(rid)[-1][0] == s["tasks"]
    store = RunStore(tmp_path / "stop")
    store.reopen(rid)
    tr = Trainer(RunConfig.from_dict(store.get_run(rid)["config"]), store, rid)
    assert tr.resume() == s["tasks"]
    s2 = tr.run()
    assert s2["status"] == "finished"
    for k in ("tasks", "failures", "mask", "steps"):
        assert s2[k] == ref[k], k
    m, mref = store.metrics_frame(rid), ref_store.metrics_frame(ref_id)
    assert m["l2l/iterations"].dropna().tolist() == mref["l2l/iterations"].dropna().tolist()
