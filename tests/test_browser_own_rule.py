"""Real headless Chromium: a rule from outside snncore (examples/triplet_stdp.py), typed into Train's
"or your own rule" box, trains from the page and shows its own panels (issue #16)."""
import pytest

from tests import browser_util
from tests.browser_util import ARTIFACTS, launch, server  # noqa: F401  (server is a fixture)

pytestmark = [pytest.mark.browser, *browser_util.requires_chromium()]


def test_outside_rule_trains_from_the_page_and_shows_its_panels(server):
    from playwright.sync_api import sync_playwright
    url, runs = server
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        browser_util.start_from_form(page, url, {
            "or your own rule: package.module:Class": "examples.triplet_stdp:TripletSTDP",
            "epochs": "1", "timesteps T": "8", "hidden sizes": "32"})
        page.get_by_text("Finished: test accuracy").wait_for(timeout=180_000)
        page.get_by_role("heading", name="examples.triplet_stdp:TripletSTDP panels").wait_for(timeout=60_000)
        page.wait_for_timeout(1500)
        page.mouse.move(700, 900)
        for _ in range(5):                    # charts draw once scrolled into view
            page.mouse.wheel(0, 1500)
            page.wait_for_timeout(500)
        page.locator(".js-plotly-plot .gtitle", has_text="5 pairings at 20 Hz").first.wait_for(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "train_own_rule.png"), full_page=True)
        joined = " | ".join(page.locator(".js-plotly-plot .gtitle").all_text_contents())
        assert "weight histogram over time · fc1" in joined, joined
        assert "rule=examples.triplet_stdp" in page.url.replace("%3A", ":")
        browser.close()
