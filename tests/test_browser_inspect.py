"""Real headless Chromium: open /inspect on a runs folder holding one tiny finished run; the statistics
table and figures render; the neuron picker redraws the trace; an uploaded checkpoint works."""
import pytest

from tests import browser_util
from tests.browser_util import ARTIFACTS, launch, server  # noqa: F401  (server is a fixture)
from tests.test_inspect_cli import make_runs

pytestmark = [pytest.mark.browser, *browser_util.requires_chromium()]


def test_inspect_page_renders_and_picks_a_neuron(server):
    from playwright.sync_api import sync_playwright
    url, runs = server
    r = make_runs(runs)
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 3400})
        page.goto(f"{url}/inspect?run={r['mlp']}", wait_until="networkidle")
        page.get_by_text("SynOps per sample").first.wait_for(timeout=120_000)
        # charts draw once in view (the page is taller than the window): scroll down, then back up
        page.locator(".js-plotly-plot .gtitle", has_text="fc1: firing rate").wait_for(timeout=120_000)
        page.mouse.wheel(0, 4000)
        page.locator(".js-plotly-plot .gtitle", has_text="weight distribution at epoch 2").wait_for(timeout=60_000)
        page.mouse.wheel(0, -8000)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(ARTIFACTS / "inspect_page.png"), full_page=True)
        joined = " | ".join(page.locator(".js-plotly-plot .gtitle").all_text_contents())
        for t in ("fc1: firing rate", "fc1: CV of ISI", "fc1: Fano factor", "fc1 raster",
                  "membrane and spikes", "weight distribution at epoch 2"):
            assert t in joined, joined
        assert page.locator('[data-testid="stDataFrame"]').count() >= 2
        assert page.locator('[data-testid="stException"]').count() == 0
        # pick another neuron: its trace replaces the busiest neuron's
        before = page.locator(".gtitle", has_text="membrane and spikes").text_content()
        box = page.get_by_label("neuron", exact=True)
        box.fill("3")
        box.press("Enter")
        page.locator(".gtitle", has_text="fc1 neuron 3: membrane and spikes").wait_for(timeout=60_000)
        assert before != "fc1 neuron 3: membrane and spikes"
        page.screenshot(path=str(ARTIFACTS / "inspect_neuron_clicked.png"), full_page=True)
        # upload the run's checkpoint file
        page.get_by_text("a checkpoint file").click()
        page.locator('input[type="file"]').set_input_files(str(r["store"].checkpoints(r["mlp"])[-1][2]))
        page.get_by_text("uploaded epoch00002.pt").wait_for(timeout=120_000)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(ARTIFACTS / "inspect_upload.png"), full_page=True)
        browser.close()
