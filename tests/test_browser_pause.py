"""Real headless Chromium: a live run paused from the Train page, stepped one batch, a_plus changed
(the marker drawn on the curves), continued, paused and continued again to its end."""
import time

import pytest

from snncore.config import RunConfig
from snncore.runs.launch import launch_run
from snncore.store import RunStore
from tests import browser_util
from tests.browser_util import ARTIFACTS, launch, server  # noqa: F401  (server is a fixture)

pytestmark = [pytest.mark.browser, *browser_util.requires_chromium()]


def wait_for(pred, timeout=90.0):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out")


def press(page, name, until, timeout=90.0, settle=5.0):
    """Click the button `name` until `until()` holds: on a busy box the live fragment redraws every
    second and a click that lands while it redraws can be lost (the test waits for its effect)."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            page.get_by_role("button", name=name, exact=True).click(timeout=5_000)
        except Exception:  # noqa: BLE001 -- redrawn under the pointer: try again
            pass
        t = time.time() + settle
        while time.time() < t:
            if until():
                return
            time.sleep(0.1)
    raise AssertionError(f"pressing {name!r} had no effect")


def test_pause_step_change_continue_in_the_browser(server):
    from playwright.sync_api import sync_playwright
    url, runs = server
    store = RunStore(runs)
    # 16 batches an epoch. Held from its first batch boundary by a pause request made with it (a page
    # on a busy 2-core box can lag the run by seconds; the Pause button is pressed further down)
    cfg = RunConfig.from_dict(dict(dataset="digits", rule="ssdp", epochs=4, n_train=1024, hidden=[512, 512], timesteps=32,
                                   batch_size=64, device="cpu", record_every=8))
    rid = launch_run(cfg, store)
    store.request_control(rid, "pause")
    try:
        with sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page(viewport={"width": 1400, "height": 1700})
            page.goto(f"{url}/train?run={rid}", wait_until="networkidle")
            page.get_by_text("paused before batch 1").wait_for(timeout=120_000)
            page.get_by_role("button", name="Continue").wait_for(timeout=30_000)
            assert store.get_run(rid)["status"] == "paused"
            held = store.get_run(rid)["step"]
            assert held == 1

            # re-clicked only until the request is in: a step slower than press's 5 s on a busy box
            # would otherwise be asked for twice (the change then lands a batch later)
            press(page, "Step batch", lambda: store.get_run(rid)["step"] > held or bool(store.pending_controls(rid)),
                  settle=20.0)     # a busy server may take >5 s to answer a click: wait before a second one
            wait_for(lambda: store.get_run(rid)["step"] == held + 1 and not store.pending_controls(rid), 60)
            page.get_by_text(f"paused before batch {held + 1}").wait_for(timeout=30_000)

            box = page.get_by_label("new value", exact=False).first      # a_plus is the default choice
            box.fill("0.003")
            box.press("Enter")
            page.wait_for_timeout(700)
            press(page, "Apply", lambda: store.changes(rid))
            assert store.changes(rid) == [(held + 1, "a_plus", 0.003)]
            page.get_by_text(f"step {held + 1}: a_plus=0.003").wait_for(timeout=30_000)
            marker = page.locator(".js-plotly-plot .annotation-text", has_text="a_plus=0.003")
            wait_for(lambda: marker.count() >= 2, 30)                  # on the loss and accuracy curves at least
            page.screenshot(path=str(ARTIFACTS / "train_paused_change.png"), full_page=True)

            press(page, "Continue", lambda: store.get_run(rid)["status"] == "running")
            page.get_by_role("button", name="Pause", exact=True).wait_for(timeout=60_000)
            press(page, "Pause", lambda: store.get_run(rid)["status"] in ("paused", "finished"))   # while it trains
            assert store.get_run(rid)["status"] == "paused", (store.get_run(rid)["step"], store.pending_controls(rid))
            page.get_by_text("paused before batch").wait_for(timeout=60_000)
            press(page, "Continue", lambda: store.get_run(rid)["status"] != "paused")
            page.get_by_text("Finished: test accuracy").wait_for(timeout=240_000)
            page.wait_for_timeout(1500)
            page.screenshot(path=str(ARTIFACTS / "train_finished_after_change.png"), full_page=True)
            assert page.locator('[data-testid="stException"]').count() == 0
            assert page.locator(".js-plotly-plot .annotation-text", has_text="a_plus=0.003").count() >= 2
            browser.close()
        run = store.get_run(rid)
        assert run["status"] == "finished" and run["step"] == 4 * 16
        for name in ("train_paused_change.png", "train_finished_after_change.png"):
            assert (ARTIFACTS / name).stat().st_size > 20_000
    finally:
        if store.get_run(rid)["status"] in ("starting", "running", "paused"):
            store.request_stop(rid)
