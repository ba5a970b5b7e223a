"""Real headless Chromium: start the app, start a run, check the raster and curves render."""
import pytest

from tests import browser_util
from tests.browser_util import ARTIFACTS, launch, server  # noqa: F401  (server is a fixture)

pytestmark = [pytest.mark.browser, *browser_util.requires_chromium()]


def test_train_page_live_run_renders(server):
    from playwright.sync_api import sync_playwright
    url, runs = server
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        browser_util.start_from_form(page, url, {"epochs": "2", "timesteps T": "8", "hidden sizes": "64"})
        # live panels: curves and the raster image appear while/after it trains (a visible chart:
        # the dataset card above folds away once a run exists, its preview chart then hidden)
        page.locator(".js-plotly-plot >> visible=true").first.wait_for(timeout=120_000)
        page.get_by_text("Finished: test accuracy").wait_for(timeout=180_000)
        page.wait_for_timeout(2000)
        # charts draw once they are in view (the page is taller than the window): scroll through it
        page.mouse.move(700, 900)
        for _ in range(4):
            page.mouse.wheel(0, 1500)
            page.wait_for_timeout(500)
        page.locator(".js-plotly-plot .gtitle", has_text="synchrony chi").first.wait_for(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "train_page.png"), full_page=True)
        titles = page.locator(".js-plotly-plot .gtitle").all_text_contents()
        joined = " | ".join(titles)
        for t in ("loss", "accuracy", "raster", "population rate", "synchrony chi"):
            assert t in joined, joined
        # the raster is drawn as one image, not thousands of SVG markers
        assert page.locator(".js-plotly-plot image").count() >= 1
        # reload reattaches to the same run through the URL
        run_url = page.url
        assert "run=" in run_url
        page.reload(wait_until="networkidle")
        page.get_by_text("Finished: test accuracy").wait_for(timeout=60_000)
        browser.close()


def test_every_page_opens_without_an_exception(server):
    """Home, Train, Rule Lab, Inspect and Compare each render in a real browser (screenshots saved)."""
    from playwright.sync_api import sync_playwright
    url, runs = server
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        for path, text in (("", "Plasticity Lab"), ("/train", "Train"), ("/rule_lab", "Rule Lab"),
                           ("/inspect", "Inspect"), ("/compare", "Compare")):
            page.goto(url + path, wait_until="networkidle")
            page.get_by_role("heading", name=text).first.wait_for(timeout=90_000)
            page.wait_for_timeout(1500)
            page.screenshot(path=str(ARTIFACTS / f"page{path.replace('/', '_') or '_home'}.png"), full_page=True)
            assert page.locator('[data-testid="stException"]').count() == 0, path
        browser.close()
