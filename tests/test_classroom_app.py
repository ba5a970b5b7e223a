"""Issue #18 part 5 in the app (AppTest): the session box, own runs first, Delete only for one's own
ended runs, the teacher's token and caps."""
import json

import pytest

from tests.app_util import open_page

from snncore import classroom as cr
from snncore.config import RunConfig
from snncore.store import RunStore

TINY = dict(dataset="digits", rule="bptt", epochs=1, hidden=[16], n_train=64)


@pytest.fixture
def room(monkeypatch, runs_dir):
    monkeypatch.setenv(cr.MODE_ENV, "1")
    monkeypatch.setenv(cr.TOKEN_ENV, "s3cret")
    store = RunStore(runs_dir)
    ids = {}
    for name in ("ana", "bob"):
        rid = store.create_run(RunConfig.from_dict(dict(TINY, name=f"run of {name}")).to_dict())
        (store.run_dir(rid) / cr.OWNER_FILE).write_text(json.dumps({"session": name}))
        store.end_run(rid, "finished")
        ids[name] = rid
    return store, ids


def _home(query):
    return open_page("app_pages/home.py", query)


def test_own_runs_first_and_only_own_runs_deletable(room):
    store, ids = room
    at = _home({"who": "ana"})
    assert [e.label for e in at.sidebar.expander] == ["session: ana"]
    names = [m.value for m in at.markdown if m.value.startswith("**run of")]
    assert names[0].startswith("**run of ana") and names[1].startswith("**run of bob")   # bob's is newer
    assert any(c.value == "started by bob" for c in at.caption)
    assert [b.key for b in at.button if b.key.startswith("del_")] == [f"del_{ids['ana']}"]
    at.button(key=f"del_{ids['ana']}").click().run()
    assert not at.exception and store.get_run(ids["ana"]) is None and store.get_run(ids["bob"]) is not None


def test_teacher_token_shows_caps_and_every_delete(room):
    store, ids = room
    at = _home({"who": "ana"})
    at.sidebar.text_input(key="_class_token_box").set_value("wrong").run()
    assert any("not the teacher token" in e.value for e in at.error)
    at.sidebar.text_input(key="_class_token_box").set_value("s3cret").run()
    assert [e.label for e in at.sidebar.expander] == ["session: ana · teacher"]
    assert {b.key for b in at.button if b.key.startswith("del_")} == {f"del_{i}" for i in ids.values()}
    at.number_input[0].set_value(3)
    at.number_input[1].set_value(2)
    at.button(key="save_caps").click().run()
    assert cr.load_policy(store) == cr.Policy(3, 2)


def test_no_classroom_no_session_box(monkeypatch, runs_dir):
    monkeypatch.delenv(cr.MODE_ENV, raising=False)
    monkeypatch.delenv(cr.TOKEN_ENV, raising=False)
    at = _home({})
    assert not [e for e in at.sidebar.expander if e.label.startswith("session:")]


# ---- the Train page in a classroom -------------------------------------------------------------
TRAIN_QUERY = {"rule": "bptt", "dataset": "digits", "epochs": "1", "hidden": "16", "n_train": "64",
               "timesteps": "4"}


def _train(query):
    return open_page("app_pages/train.py", query)


def _start(at):
    next(b for b in at.sidebar.button if b.label == "Start").click().run()
    assert not at.exception, at.exception


def test_start_queues_the_run_for_its_session_and_keeps_the_cap(room, monkeypatch):
    from snncore.runs import queue
    started = []
    monkeypatch.setattr(queue, "ensure_worker", lambda store, classroom=False: started.append(classroom))
    store, ids = room
    at = _train({"who": "carla", **TRAIN_QUERY})
    _start(at)
    new = [r["id"] for r in store.list_runs() if r["id"] not in ids.values()]
    assert len(new) == 1 and cr.owner(store, new[0]) == "carla" and started == [True]
    assert store.get_run(new[0])["status"] == "queued"
    assert any(s.value == f"Queued run {new[0]}: number 1 in the queue" for s in at.success)
    assert any("Queued: number 1 of 1. It starts when a place is free" in i.value for i in at.info)
    _start(at)                                             # a second Start: over the session's cap
    assert any("Not started: session 'carla' has 1 run(s) queued or running, the cap is 1" in e.value
               for e in at.error)
    assert len(store.list_runs()) == 3
    at.button(key=f"cancel_{new[0]}").click().run()        # one's own queued run: Cancel
    assert store.get_run(new[0])["status"] == "stopped"


def _live_run_of(store, session):
    import os
    rid = store.create_run(RunConfig.from_dict(TINY).to_dict())
    (store.run_dir(rid) / cr.OWNER_FILE).write_text(json.dumps({"session": session}))
    store.start_run(rid, pid=os.getpid(), device="cpu", total_steps=10)
    return rid


def test_someone_elses_live_run_shows_no_controls_the_teacher_gets_them(room):
    store, _ = room
    rid = _live_run_of(store, "bob")
    at = _train({"who": "ana", "run": rid})
    keys = {b.key for b in at.button}
    assert not keys & {f"stop_{rid}", f"pause_{rid}", f"stepb_{rid}", f"chg_apply_{rid}"}
    assert any("A run of session bob: only that session or the teacher" in c.value for c in at.caption)
    at.sidebar.text_input(key="_class_token_box").set_value("s3cret").run()
    at.button(key=f"pause_{rid}").click().run()
    assert [a for _, a, _ in store.pending_controls(rid)] == ["pause"]
    at.button(key=f"stop_{rid}").click().run()
    assert store.get_run(rid)["stop_requested"]


def test_own_live_run_has_its_controls(room):
    store, _ = room
    rid = _live_run_of(store, "ana")
    at = _train({"who": "ana", "run": rid})
    at.button(key=f"stepb_{rid}").click().run()
    assert [(a, g) for _, a, g in store.pending_controls(rid)] == [("step", 1)]


def test_a_student_cannot_launch_a_sweep(room):
    at = open_page("app_pages/sweep.py", {"who": "ana"})
    at.button(key="sw_launch").click().run()
    assert any("only the teacher may launch, stop or resume sweeps" in e.value for e in at.error)
