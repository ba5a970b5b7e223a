"""Real headless Chromium: launch a 4-trial tiny digits sweep from the Sweep page's form, see its
trials table fill and finish with the plots drawn, the sweep in the URL, and a screenshot saved."""
import pytest

from tests import browser_util
from tests.browser_util import ARTIFACTS, launch, server  # noqa: F401  (server is a fixture)

pytestmark = [pytest.mark.browser, *browser_util.requires_chromium()]

FORM = {"epochs": "1", "hidden sizes": "16", "timesteps T": "4", "batch size": "32", "train samples": "64",
        "seeds per point": "2", "values 1": "1e-3,2e-2"}


def test_launch_a_sweep_and_watch_it_finish(server):
    from playwright.sync_api import sync_playwright
    url, runs = server
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.goto(url + "/sweep", wait_until="networkidle")
        page.get_by_text("No sweeps yet").wait_for(timeout=90_000)
        sidebar = page.locator('[data-testid="stSidebar"]')
        # the rule: the baseline (the fastest tiny run), picked from the select box
        sidebar.locator('[data-testid="stSelectbox"]', has_text="rule").first.click()
        page.get_by_role("option", name="bptt", exact=True).click()
        page.wait_for_timeout(700)
        for label, value in FORM.items():
            box = sidebar.get_by_label(label, exact=True).first
            box.fill(value)
            box.press("Enter")
            page.wait_for_timeout(500)
        sidebar.get_by_text("4 trials", exact=True).wait_for(timeout=30_000)
        assert sidebar.locator('[data-testid="stAlert"]').count() == 0
        sidebar.get_by_role("button", name="Launch").click()
        page.get_by_text("Launched sweep").wait_for(timeout=60_000)
        assert "sweep=sw-" in page.url
        sweep_id = page.url.split("sweep=")[1].split("&")[0]
        # the table has its 4 rows from the start (pending), then they run and finish
        page.get_by_text("Trials", exact=True).wait_for(timeout=120_000)
        page.get_by_text("4 of 4 finished").wait_for(timeout=240_000)
        page.locator(".js-plotly-plot .gtitle", has_text="effect of lr").wait_for(timeout=60_000)
        page.wait_for_timeout(1500)
        shot = ARTIFACTS / "sweep_page.png"
        page.screenshot(path=str(shot), full_page=True, timeout=120_000)
        titles = " | ".join(page.locator(".js-plotly-plot .gtitle").all_text_contents())
        assert "hyperparameters → test_accuracy (4 finished trials)" in titles and "effect of lr" in titles, titles
        assert page.get_by_role("button", name="Download the trials (CSV)").count() == 1
        assert page.get_by_role("button", name="Open in Train").count() == 1
        assert page.locator('[data-testid="stException"]').count() == 0
        # "show": the figures follow a quantity the runs recorded (their last epoch's test loss)
        main = page.locator('[data-testid="stMain"]')
        main.locator('[data-testid="stSelectbox"]', has_text="show").click()
        page.get_by_role("option", name="test/loss", exact=True).click()
        page.locator(".js-plotly-plot .gtitle", has_text="hyperparameters → test/loss (4 finished trials)").wait_for(
            timeout=60_000)
        page.get_by_text("final test/loss over the hyperparameters").wait_for(timeout=30_000)
        assert page.locator('[data-testid="stException"]').count() == 0
        browser.close()
    # the screenshot shows the page (not a blank or an error page): wide, tall, and many colours
    from PIL import Image
    img = Image.open(shot).convert("RGB")
    assert img.width >= 1400 and img.height >= 1200
    assert len(img.getcolors(maxcolors=1_000_000) or []) > 200
    # and the sweep is in the store as the CLI would have left it
    import json
    state = json.loads((runs / "sweeps" / sweep_id / "sweep.json").read_text())
    assert state["status"] == "finished" and state["n_trials"] == 4
    from snncore.store import RunStore
    store = RunStore(runs)
    rows = store.list_runs()
    assert len(rows) == 4 and all(r["status"] == "finished" for r in rows)
    assert sorted((r["config"]["lr"], r["config"]["seed"]) for r in rows) == [(1e-3, 0), (1e-3, 1), (2e-2, 0),
                                                                              (2e-2, 1)]
    store.close()
