"""AppTest checks of what the Train and Home pages say about a run (issue #14, parts 3 and 4):
progress texts, the chance-level warning, missing dataset files, links per run on Home."""
import json
import os
import time

from streamlit.testing.v1 import AppTest

from snncore.config import RunConfig
from snncore.store import RunStore


def page(path="app_pages/train.py"):
    at = AppTest.from_file("../app.py", default_timeout=60)
    at.run()
    if path != "app_pages/home.py":
        at.switch_page(path)
        at.run()
    assert not at.exception, at.exception
    return at


def progress_text(at) -> str:
    return " ".join(p.proto.text for p in at.get("progress"))


def _run(store, status="running", step=0, total=0, rule="bptt", **cfg):
    rid = store.create_run(RunConfig.from_dict({"rule": rule, "dataset": "digits", "epochs": 2, "hidden": [16],
                                                **cfg}).to_dict())
    if status != "starting":
        store.start_run(rid, pid=os.getpid(), device="cpu", total_steps=total)
        store._exec("UPDATE runs SET status=?, step=? WHERE id=?", (status, step, rid))
    return rid


def test_starting_run_says_so_without_step_0_of_0_or_eta_0s(runs_dir):
    _run(RunStore(runs_dir), status="starting")
    text = progress_text(page())
    assert "starting" in text and "loading the data" in text, text
    assert "0/0" not in text and "ETA 0s" not in text, text


def test_running_before_progress_says_estimating_not_eta_0s(runs_dir):
    _run(RunStore(runs_dir), step=0, total=40)
    text = progress_text(page())
    assert "step 0/40" in text and "estimating the time left" in text and "ETA 0s" not in text, text


def test_ip2_progress_names_the_task_in_progress(runs_dir):
    store = RunStore(runs_dir)
    rid = store.create_run(RunConfig.from_dict({"rule": "ip2", "rule_params": {"n_tasks": 6,
                                                                               "meta_mode": "fixed"}}).to_dict())
    store.start_run(rid, pid=os.getpid(), device="cpu", total_steps=6)
    text = progress_text(page())
    assert "task 1 of 6 running" in text and "ETA 0s" not in text and "task 0/6" not in text, text
    store.heartbeat(rid, epoch=0, step=2)
    text = progress_text(page())
    assert "task 3 of 6 running" in text and "ETA" in text and "ETA 0s" not in text, text


def test_elapsed_counts_the_time_before_a_resume(runs_dir):
    store = RunStore(runs_dir)
    rid = _run(store, total=10)
    time.sleep(0.4)
    store.end_run(rid, "stopped")
    time.sleep(0.6)                         # the pause: not running time
    store.reopen(rid)
    store.start_run(rid, pid=os.getpid(), device="cpu", total_steps=10)
    time.sleep(0.3)
    store.end_run(rid, "finished", summary={"test_accuracy": 0.9, "seconds": 0.3, "device": "cpu"})
    r = store.get_run(rid)
    assert 0.65 <= r["ended"] - r["started"] < 0.95, r["ended"] - r["started"]   # 0.4 + 0.3, not 0.3 nor 1.3
    at = page()
    assert any("in 0.7s" in s.value for s in at.success), [s.value for s in at.success]


def _finished(store, accs, **cfg):
    rid = _run(store, total=4, **cfg)
    store.log_metrics(rid, [(2 * (e + 1), e, "test/accuracy", a) for e, a in enumerate(accs)]
                      + [(0, 0, "train/loss", 2.3)])
    store._exec("UPDATE runs SET epoch=? WHERE id=?", (len(accs), rid))
    store.end_run(rid, "finished", summary={"test_accuracy": accs[-1], "seconds": 1.0, "device": "cpu"})
    return rid


def test_a_run_at_chance_level_is_warned_about(runs_dir):
    store = RunStore(runs_dir)
    _finished(store, [0.1, 0.101], rule="ssdp", rule_params={"a_plus": 1.0})
    at = page()
    warn = [w.value for w in at.warning if "chance level" in w.value]
    assert warn and "10.1%" in warn[0] and "after 2 epochs" in warn[0] and "ssdp" in warn[0], warn
    home = page("app_pages/home.py")
    assert any("at chance" in m.value for m in home.markdown), [m.value for m in home.markdown]


def test_a_run_that_learned_has_no_chance_warning(runs_dir):
    _finished(RunStore(runs_dir), [0.1, 0.6])
    at = page()
    assert not [w for w in at.warning if "chance" in w.value]


def test_missing_dataset_files_block_start_with_the_message_beside_it(runs_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SNNCORE_DATA", str(tmp_path / "data"))
    at = page()
    at.sidebar.selectbox(key="dataset").set_value("mnist")
    at.run()
    assert not at.exception
    start = next(b for b in at.sidebar.button if b.label == "Start")
    assert start.disabled
    err = [e.value for e in at.sidebar.error]
    assert err == ["Cannot start: mnist files are missing (4 of them)."], err
    details = next(x for x in at.sidebar.expander if x.label == "details")
    code = details.code[0].value
    assert "train-images-idx3-ubyte" in code and str(tmp_path / "data") in code
    # files in place: Start is enabled again (the check is the loader's own list of required files)
    from snncore.data.download import spec
    s = spec("mnist")
    for alts in s.required:
        p = tmp_path / "data" / s.folder / alts[0]
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")
    at.run()
    assert not next(b for b in at.sidebar.button if b.label == "Start").disabled
    assert not [e for e in at.sidebar.error if "missing" in e.value]


def test_home_lists_each_run_by_name_with_train_and_inspect_links(runs_dir):
    store = RunStore(runs_dir)
    a = _finished(store, [0.5], name="lesson SSDP synchrony")
    b = _finished(store, [0.6], name="lesson BPTT synchrony")
    at = page("app_pages/home.py")
    text = " ".join(m.value for m in at.markdown)
    assert "**lesson SSDP synchrony**" in text and "**lesson BPTT synchrony**" in text
    links = [json.loads(json.dumps({"page": pl.proto.page, "label": pl.proto.label, "qp": pl.proto.query_string}))
             for pl in at.get("page_link")]
    for rid in (a, b):
        assert {"page": "train", "label": "Train", "qp": f"run={rid}"} in links, links
        assert {"page": "inspect", "label": "Inspect", "qp": f"run={rid}"} in links, links


def test_train_page_follows_a_link_to_another_run(runs_dir):
    """After a Start the run picker holds that run; a link to another run (Home) must win."""
    store = RunStore(runs_dir)
    a, b = _finished(store, [0.5]), _finished(store, [0.6])
    at = page()
    at.session_state["run_select"] = a
    at.session_state["run"] = a
    at.query_params["run"] = b
    at.run()
    assert at.selectbox(key="run_select").value == b
