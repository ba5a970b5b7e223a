"""Real headless Chromium: open the Rule Lab, move a slider, check the figures changed.

Screenshots before and after go to test-artifacts/. Speed is measured in bench/bench_rule_lab.py,
not asserted here.
"""
import time

import pytest

from tests import browser_util
from tests.browser_util import ARTIFACTS, launch, server  # noqa: F401  (server is a fixture)

pytestmark = [pytest.mark.browser, *browser_util.requires_chromium()]

# the JSON of the traces of the plot whose title contains the given text ("" when absent)
FIG_DATA = """(t) => { for (const el of document.querySelectorAll('.js-plotly-plot')) {
    const title = (el.layout && el.layout.title && el.layout.title.text) || '';
    if (title.includes(t)) return JSON.stringify(el.data.map(d => [d.name, d.x, d.y, d.z, d.source])); }
  return ''; }"""


def _wait_change(page, title: str, old: str, timeout: float = 90.0) -> str:
    t0 = time.time()
    while time.time() - t0 < timeout:
        now = page.evaluate(FIG_DATA, title)
        if now and now != old:
            return now
        page.wait_for_timeout(200)
    return page.evaluate(FIG_DATA, title)


def test_rule_lab_slider_moves_figures(server):
    from playwright.sync_api import sync_playwright
    url, _ = server
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 2200})
        page.goto(url + "/rule_lab", wait_until="networkidle")
        page.get_by_text("What to expect").first.wait_for(timeout=120_000)
        page.locator(".js-plotly-plot").nth(6).wait_for(timeout=120_000)    # all 7 STDP figures
        page.locator(".katex").first.wait_for(timeout=30_000)             # st.latex rendered
        page.wait_for_timeout(1000)
        page.screenshot(path=str(ARTIFACTS / "rule_lab_before.png"), full_page=True)
        window0 = page.evaluate(FIG_DATA, "learning window")
        dw0 = page.evaluate(FIG_DATA, "change of W")
        assert window0 and dw0
        # the first slider of the sidebar is eta_plus (a select slider): two steps right; the thumb
        # is a react-aria slider whose keyboard target is a (visually hidden) range input
        slider = page.locator('[data-testid="stSidebar"] [data-testid="stSlider"]').first
        assert "eta_plus" in slider.inner_text()
        thumb = slider.locator('input[type="range"], [role="slider"]').first
        thumb.focus()
        thumb.press("ArrowRight")
        thumb.press("ArrowRight")
        window1 = _wait_change(page, "learning window", window0)
        dw1 = _wait_change(page, "change of W", dw0)
        assert window1 != window0, "the learning window did not change after the slider moved"
        assert dw1 != dw0, "the weight change did not change after the slider moved"
        page.wait_for_timeout(1000)
        page.screenshot(path=str(ARTIFACTS / "rule_lab_after.png"), full_page=True)
        # each raster is one image, not SVG markers
        assert page.locator(".js-plotly-plot image").count() >= 2
        browser.close()
