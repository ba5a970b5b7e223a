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
