"""AppTest of the Train page's live controls: Pause, Step batch, Step epoch, a hyperparameter change
(refused when out of range, applied and listed when valid, marked on the curves), Continue."""
import time

from streamlit.testing.v1 import AppTest

from snncore.config import RunConfig
from snncore.runs.launch import launch_run
from snncore.store import RunStore


def wait_for(pred, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError("timed out")


def button(at, label):
    found = [b for b in at.button if b.label == label]
    assert found, f"no {label!r} button (buttons: {[b.label for b in at.button]})"
    return found[0]


def test_pause_step_change_continue_from_the_page(runs_dir):
    store = RunStore(runs_dir)
    cfg = RunConfig.from_dict(dict(dataset="digits", rule="ssdp", epochs=5000, n_train=128, hidden=[16], timesteps=4,
                                   batch_size=16, device="cpu", record_every=4))
    rid = launch_run(cfg, store)
    wait_for(lambda: store.get_run(rid)["step"] > 0)
    at = AppTest.from_file("../app.py", default_timeout=120)
    at.query_params["run"] = rid
    at.run()
    at.switch_page("app_pages/train.py")
    at.run()
    assert not at.exception
    try:
        button(at, "Pause").click()
        at.run()
        wait_for(lambda: store.get_run(rid)["status"] == "paused", 60)
        held = store.get_run(rid)["step"]
        at.run()
        assert button(at, "Continue") and not [b for b in at.button if b.label == "Pause"]
        assert any(f"paused before batch {held}" in c.value for c in at.caption)

        button(at, "Step batch").click()
        at.run()
        wait_for(lambda: store.get_run(rid)["step"] == held + 1 and not store.pending_controls(rid), 60)
        time.sleep(0.3)
        assert store.get_run(rid)["step"] == held + 1 and store.get_run(rid)["status"] == "paused"

        button(at, "Step epoch").click()
        at.run()
        wait_for(lambda: not store.pending_controls(rid), 60)
        at_end = (held + 1) // 8 * 8 + 8                          # 128 / 16 = 8 batches an epoch
        assert store.get_run(rid)["step"] == at_end             # the end of that epoch, checkpointed
        assert store.checkpoints(rid, full=True)[-1][:2] == (at_end // 8, at_end)

        # out of range (sigma > 0): refused on the page, nothing sent
        at.run()
        at.selectbox(key=f"chg_name_{rid}").set_value("sigma")
        at.run()
        at.number_input(key=f"chg_value_{rid}_sigma").set_value(0.0)
        button(at, "Apply").click()
        at.run()
        assert any("Not applied: sigma: 0.0 is out of range (allowed: 0.0 < value <= 1000000.0)" in e.value
                   for e in at.error)
        assert store.pending_controls(rid) == [] and store.changes(rid) == []

        at.selectbox(key=f"chg_name_{rid}").set_value("a_plus")
        at.run()
        at.number_input(key=f"chg_value_{rid}_a_plus").set_value(0.003)
        button(at, "Apply").click()
        at.run()
        wait_for(lambda: store.changes(rid), 60)
        assert store.changes(rid) == [(at_end, "a_plus", 0.003)]
        at.run()
        assert any(f"step {at_end}: a_plus=0.003" in c.value for c in at.caption)
        # the marker on the loss curve, and the change in the exported command
        loss = next(c for c in at.get("plotly_chart") if '"loss' in c.proto.spec)
        assert "a_plus=0.003" in loss.proto.spec
        assert any(f"--changes {at_end}:a_plus=0.003" in c.value for c in at.code)

        button(at, "Continue").click()
        at.run()
        wait_for(lambda: store.get_run(rid)["status"] == "running" and store.get_run(rid)["step"] > at_end + 1, 60)
    finally:
        store.request_stop(rid)
        wait_for(lambda: store.get_run(rid)["status"] in ("stopped", "finished", "failed"), 60)
