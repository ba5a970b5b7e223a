"""Issue #18 part 5: a classroom on one server. Whose run is whose (a request for someone else's
run is refused), the per-session cap, the server cap the queue worker keeps, the teacher's token."""
import threading
import time

import pytest

from snncore import classroom as cr
from snncore.config import RunConfig
from snncore.runs import queue
from snncore.store import LIVE, RunStore

TINY = dict(dataset="digits", rule="bptt", epochs=1, timesteps=4, batch_size=32, hidden=[16], n_train=64,
            record_every=1000)
ANA, BOB, TEACHER = cr.Who("ana"), cr.Who("bob"), cr.Who("teacher", teacher=True)


@pytest.fixture
def room(monkeypatch, tmp_path):
    monkeypatch.setenv(cr.MODE_ENV, "1")
    monkeypatch.setenv(cr.TOKEN_ENV, "s3cret")
    started = []
    monkeypatch.setattr(queue, "ensure_worker", lambda store, classroom=False: started.append(classroom))
    return RunStore(tmp_path / "runs"), started


def _finish(store, run_id):
    store.end_run(run_id, "finished", summary={"seconds": 1.0})


def test_mode_and_teacher_token(monkeypatch):
    monkeypatch.delenv(cr.MODE_ENV, raising=False)
    monkeypatch.delenv(cr.TOKEN_ENV, raising=False)
    assert not cr.enabled() and not cr.teacher_token_ok("")          # no token set: nobody is the teacher
    monkeypatch.setenv(cr.TOKEN_ENV, "s3cret")
    assert cr.enabled() and cr.teacher_token_ok(" s3cret ") and not cr.teacher_token_ok("s3cre")
    with pytest.raises(ValueError, match="session name"):
        cr.check_session_name("x" * 41)
    assert cr.check_session_name("  Ana M. ") == "Ana M."


def test_runs_are_queued_tagged_and_capped_per_session(room):
    store, started = room
    a = cr.submit(store, RunConfig.from_dict(TINY), ANA)
    assert store.get_run(a)["status"] == "queued" and cr.owner(store, a) == "ana" and started == [True]
    with pytest.raises(cr.CapReached, match=r"session 'ana' has 1 run\(s\) queued or running, the cap is 1"):
        cr.submit(store, RunConfig.from_dict(TINY), ANA)
    b = cr.submit(store, RunConfig.from_dict(TINY), BOB)
    assert cr.queue_position(store, a) == 1 and cr.queue_position(store, b) == 2
    _finish(store, a)
    assert cr.queue_position(store, a) is None
    a2 = cr.submit(store, RunConfig.from_dict(TINY), ANA)             # one ended: room for another
    assert cr.queue_position(store, a2) == 2
    # own runs first for each session
    runs = store.list_runs()
    assert [cr.owner(store, r["id"]) for r in cr.sort_for(runs, store, BOB)] == ["bob", "ana", "ana"]


def test_someone_elses_run_is_refused_the_teachers_is_not(room):
    store, _ = room
    a = cr.submit(store, RunConfig.from_dict(TINY), ANA)
    for act in (cr.stop, cr.resume, cr.delete):
        with pytest.raises(cr.NotAllowed, match=f"run {a} was started by session 'ana': only that session or the teacher"):
            act(store, a, BOB)
    assert store.get_run(a)["status"] == "queued" and not store.get_run(a)["stop_requested"]
    cr.stop(store, a, TEACHER)                                         # a queued run is cancelled
    assert store.get_run(a)["status"] == "stopped"
    with pytest.raises(cr.NotAllowed):                                 # a run from the CLI has no owner
        cr.stop(store, store.create_run(RunConfig.from_dict(TINY).to_dict()), ANA)


def test_pause_step_and_changes_of_someone_elses_run_are_refused(room):
    store, _ = room
    a = cr.submit(store, RunConfig.from_dict(TINY), ANA)
    for action, arg in (("pause", None), ("continue", None), ("step", 1), ("step_epoch", None),
                        ("set", {"name": "lr", "value": 0.01})):
        with pytest.raises(cr.NotAllowed, match=f"run {a} was started by session 'ana'"):
            cr.control(store, a, BOB, action, arg)
    assert store.pending_controls(a) == []                             # nothing reached the trainer
    cr.control(store, a, ANA, "pause")
    cr.control(store, a, TEACHER, "set", {"name": "lr", "value": 0.01})
    assert [(act, arg) for _, act, arg in store.pending_controls(a)] == [("pause", None),
                                                                       ("set", {"name": "lr", "value": 0.01})]
    with pytest.raises(ValueError, match="control 'reboot': one of pause, continue, step, step_epoch, set"):
        cr.control(store, a, ANA, "reboot")


def test_sweeps_are_the_teachers_in_a_classroom(room, monkeypatch):
    with pytest.raises(cr.NotAllowed, match="only the teacher may launch, stop or resume sweeps"):
        cr.check_sweeps(ANA)
    cr.check_sweeps(TEACHER)
    monkeypatch.delenv(cr.MODE_ENV)
    monkeypatch.delenv(cr.TOKEN_ENV)
    cr.check_sweeps(ANA)                                               # a personal machine: anyone


def test_delete_only_ended_runs_and_everything_of_them(room):
    store, _ = room
    a = cr.submit(store, RunConfig.from_dict(TINY), ANA)
    with pytest.raises(ValueError, match="is queued: stop it before deleting it"):
        cr.delete(store, a, ANA)
    store.log_metrics(a, [(1, 0, "train/loss", 1.0)])
    _finish(store, a)
    cr.delete(store, a, ANA)
    assert store.get_run(a) is None and not store.run_dir(a).exists() and not store.metrics(a)


def test_only_the_teacher_sets_the_caps(room):
    store, _ = room
    assert cr.load_policy(store) == cr.Policy()
    with pytest.raises(cr.NotAllowed):
        cr.save_policy(store, cr.Policy(session_cap=3), ANA)
    with pytest.raises(ValueError, match="session_cap must be a whole number from 1 to 256, got 0"):
        cr.save_policy(store, cr.Policy(session_cap=0), TEACHER)
    cr.save_policy(store, cr.Policy(session_cap=2, server_cap=3), TEACHER)
    assert cr.load_policy(store) == cr.Policy(2, 3) and cr.load_policy(store).live_cap() == 3
    cr.submit(store, RunConfig.from_dict(TINY), ANA)
    cr.submit(store, RunConfig.from_dict(TINY), ANA)                   # the new cap holds two
    (store.root / cr.POLICY_FILE).write_text("{broken")
    assert cr.load_policy(store) == cr.Policy()                        # unreadable: the defaults


def test_outside_classroom_mode_anyone_controls_and_start_is_immediate(monkeypatch, tmp_path):
    monkeypatch.delenv(cr.MODE_ENV, raising=False)
    monkeypatch.delenv(cr.TOKEN_ENV, raising=False)
    launched = []
    import snncore.runs.launch as launch
    monkeypatch.setattr(launch, "launch_run", lambda cfg, store: launched.append(cfg) or "r1")
    store = RunStore(tmp_path / "runs")
    assert cr.submit(store, RunConfig.from_dict(TINY), ANA) == "r1" and len(launched) == 1
    rid = store.create_run(RunConfig.from_dict(TINY).to_dict())
    assert cr.may_control(store, rid, BOB)


def test_the_worker_keeps_the_server_cap_while_the_queue_drains(room):
    """Three real tiny runs from three sessions, server cap 1: never two live at once, all finish."""
    store, _ = room
    cr.save_policy(store, cr.Policy(session_cap=1, server_cap=1), TEACHER)
    ids = [cr.submit(store, RunConfig.from_dict(dict(TINY, seed=i)), cr.Who(f"s{i}")) for i in range(3)]
    most, done = [0], threading.Event()

    def watch():
        while not done.is_set():
            most[0] = max(most[0], sum(store.get_run(i)["status"] in LIVE for i in ids))
            time.sleep(0.05)
    t = threading.Thread(target=watch)
    t.start()
    try:
        started = queue.work(store, max_live=lambda: cr.load_policy(store).live_cap(), poll=0.1, timeout=240)
        deadline = time.time() + 120
        while time.time() < deadline and any(store.get_run(i)["status"] not in ("finished", "failed") for i in ids):
            time.sleep(0.2)
    finally:
        done.set()
        t.join()
    assert started == ids and most[0] == 1
    assert [store.get_run(i)["status"] for i in ids] == ["finished"] * 3
