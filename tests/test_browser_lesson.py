"""Real headless Chromium: a lesson link opens Train with the lesson beside the form, only the
lesson's controls, a Think! answer that opens on a click, and a run that trains the lesson's
config (issue #18, lesson mode)."""
import pytest

from tests import browser_util
from tests.browser_util import ARTIFACTS, launch, server  # noqa: F401  (server is a fixture)

pytestmark = [pytest.mark.browser, *browser_util.requires_chromium()]


def test_lesson_link_opens_the_lesson_and_trains_it(server):
    from playwright.sync_api import sync_playwright
    url, runs = server
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        page.goto(url + "/train?lesson=bptt_synchrony_task", wait_until="networkidle")
        page.get_by_text("Lesson: BPTT baseline on the synchrony task").wait_for(timeout=60_000)
        sidebar = page.locator('[data-testid="stSidebar"]')
        sidebar.get_by_role("button", name="Start").wait_for(timeout=30_000)
        page.wait_for_timeout(1000)
        labels = sorted(sidebar.locator('[data-testid="stWidgetLabel"]').all_inner_texts())
        assert labels == sorted(["epochs", "learning rate", "seed", "synchrony (chance to join the volley)",
                                 "jitter (steps)"]), labels
        answer = "any difference the SSDP run shows"
        assert not page.get_by_text(answer, exact=False).is_visible()
        page.get_by_text("Think! Why is this run the baseline").click()
        page.get_by_text(answer, exact=False).wait_for(state="visible", timeout=10_000)
        box = sidebar.get_by_label("epochs", exact=True)
        box.fill("1")
        box.press("Enter")
        page.wait_for_timeout(800)
        sidebar.get_by_role("button", name="Start").click()
        page.get_by_text("Finished: test accuracy").wait_for(timeout=180_000)
        assert "lesson=bptt_synchrony_task" in page.url and "epochs=1" in page.url
        page.screenshot(path=str(ARTIFACTS / "train_lesson.png"), full_page=True)
        # the teacher shows every control again
        page.get_by_text("show every control (teacher)").click()
        sidebar.get_by_text("lesson presets").wait_for(timeout=20_000)
        # the sidebar draws its widgets one by one after that heading: wait for them (seen: 6 of them
        # counted just after it, in a fresh-clone CI)
        labels = sidebar.locator('[data-testid="stWidgetLabel"]')
        for _ in range(100):
            if labels.count() > 20:
                break
            page.wait_for_timeout(200)
        assert labels.count() > 20, labels.all_inner_texts()
        browser.close()
    import json
    import sqlite3
    con = sqlite3.connect(runs / "runs.sqlite")
    cfg = json.loads(con.execute("SELECT config FROM runs").fetchone()[0])
    assert (cfg["dataset"], cfg["rule"], cfg["epochs"], cfg["syn_sync"]) == ("synthetic", "bptt", 1, 0.9)
