"""AppTest flows of the Train page: start a run from the form, see metrics arrive, stop, bad input."""
import time

import pytest
from streamlit.testing.v1 import AppTest

from snncore.store import RunStore


def app(runs_dir):
    at = AppTest.from_file("../app.py", default_timeout=120)
    at.run()
    at.switch_page("app_pages/train.py")
    at.run()
    assert not at.exception
    return at


def wait_for(pred, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return True
        time.sleep(0.5)
    return False


def start(at, **fields):
    for k, v in fields.items():
        w = at.sidebar.text_input(key=k) if k == "hidden" else at.sidebar.number_input(key=k)
        w.set_value(v)
    next(b for b in at.sidebar.button if b.label == "Start").click()
    at.run()
    assert not at.exception


def test_start_run_and_see_metrics(runs_dir):
    at = app(runs_dir)
    assert "No runs yet" in at.info[0].value
    at.sidebar.selectbox(key="rule").set_value("ssdp")
    at.run()
    start(at, hidden="32", epochs=2, timesteps=4)
    assert at.sidebar.success and "Started run" in at.sidebar.success[0].value
    run_id = at.query_params["run"][0] if isinstance(at.query_params["run"], list) else at.query_params["run"]
    store = RunStore(runs_dir)
    assert wait_for(lambda: store.get_run(run_id)["status"] == "finished", 180), store.get_run(run_id)
    at.run()
    assert not at.exception
    titles = [c.proto.spec for c in at.get("plotly_chart")]
    text = " ".join(titles)
    for t in ("loss", "accuracy", "raster", "population rate", "synchrony chi", "synchrony S per plastic layer",
              "|dW| of the local update"):
        assert t in text, t
    assert any("Finished: test accuracy" in s.value for s in at.success)


def test_a_second_start_shows_the_new_run(runs_dir):
    """The run picker follows Start: after a first run is shown, starting another switches the
    main view to it (the picker's own state used to keep the old one)."""
    at = app(runs_dir)
    start(at, hidden="16", epochs=1, timesteps=4)
    first = at.selectbox(key="run_select").value
    store = RunStore(runs_dir)
    assert wait_for(lambda: store.get_run(first)["status"] in ("finished", "failed"), 180)
    at.run()
    assert at.selectbox(key="run_select").value == first
    start(at, hidden="16", epochs=1, timesteps=4)
    second = at.sidebar.success[0].value.split()[-1]
    assert second != first
    assert at.selectbox(key="run_select").value == second
    assert wait_for(lambda: store.get_run(second)["status"] in ("finished", "failed"), 180)


def test_stop_button_stops_live_run(runs_dir):
    at = app(runs_dir)
    start(at, hidden="32", epochs=500, timesteps=4)
    store = RunStore(runs_dir)
    run_id = store.list_runs()[0]["id"]
    assert wait_for(lambda: store.get_run(run_id)["step"] > 0, 120)
    at.run()
    stop = [b for b in at.button if b.label == "Stop"]
    assert stop, "no Stop button while the run is live"
    stop[0].click()
    at.run()
    assert wait_for(lambda: store.get_run(run_id)["status"] == "stopped", 60), store.get_run(run_id)


def test_invalid_value_shows_message_and_starts_nothing(runs_dir):
    at = app(runs_dir)
    start(at, hidden="0")
    assert at.sidebar.error and "hidden" in at.sidebar.error[0].value and "1 <= size" in at.sidebar.error[0].value
    at.sidebar.text_input(key="hidden").set_value("32")
    at.sidebar.number_input(key="lr").set_value(-1.0)
    next(b for b in at.sidebar.button if b.label == "Start").click()
    at.run()
    assert "lr" in at.sidebar.error[0].value and "0.0 < value" in at.sidebar.error[0].value
    assert RunStore(runs_dir).list_runs() == []


def test_failed_run_is_shown_as_failed(runs_dir):
    store = RunStore(runs_dir)
    rid = store.create_run({"rule": "bptt", "dataset": "digits", "epochs": 1, "timesteps": 4})
    store.end_run(rid, "failed", error="diverged at epoch 1 step 3: loss is nan")
    at = app(runs_dir)
    assert any("Run failed: diverged at epoch 1 step 3" in e.value for e in at.error)


def test_ip2_from_the_page_shows_learning_to_learn(runs_dir):
    at = app(runs_dir)
    at.sidebar.selectbox(key="rule").set_value("ip2")
    at.run()
    assert not at.exception
    assert any("set by the rule" in c.value for c in at.sidebar.caption)
    at.sidebar.number_input(key="rp_ip2_n_tasks").set_value(2)
    at.sidebar.selectbox(key="rp_ip2_meta_mode").set_value("fixed")
    at.sidebar.number_input(key="rp_ip2_max_updates").set_value(30)
    at.sidebar.number_input(key="rp_ip2_N").set_value(16)
    next(b for b in at.sidebar.button if b.label == "Start").click()
    at.run()
    assert not at.exception and at.sidebar.success
    store = RunStore(runs_dir)
    run_id = store.list_runs()[0]["id"]
    assert wait_for(lambda: store.get_run(run_id)["status"] == "finished", 180), store.get_run(run_id)
    at.run()
    assert not at.exception
    text = " ".join(c.proto.spec for c in at.get("plotly_chart"))
    assert "learning to learn" in text and "rsnn raster" in text
    assert "tau_d across neurons" in text and "theta across neurons" in text
    assert any("2 tasks" in s.value for s in at.success)
    assert any("Learnable intrinsic properties (frozen by the slow level): tau_d" in s.value for s in at.success)


def test_resume_button_continues_a_stopped_run(runs_dir):
    from snncore.config import RunConfig
    from snncore.train import Trainer
    store = RunStore(runs_dir)
    cfg = RunConfig.from_dict({"epochs": 2, "hidden": [16], "timesteps": 4, "n_train": 128})
    rid = store.create_run(cfg.to_dict())
    tr = Trainer(cfg, store, rid)
    tr.on_progress = lambda p: p.test_accuracy is not None and store.request_stop(rid)
    tr.run()
    at = app(runs_dir)
    resume = [b for b in at.button if b.label == "Resume from epoch 1"]
    assert resume, [b.label for b in at.button]
    resume[0].click()
    at.run()
    assert not at.exception
    assert wait_for(lambda: store.get_run(rid)["status"] == "finished", 120), store.get_run(rid)
    assert store.get_run(rid)["summary"]["epochs"] == 2
