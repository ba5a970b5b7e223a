"""Real headless Chromium: the Compare page with two tiny finished runs, opened from a link."""
import pytest

from tests import browser_util
from tests.browser_util import ARTIFACTS, launch, server  # noqa: F401  (server is a fixture)

pytestmark = [pytest.mark.browser, *browser_util.requires_chromium()]


@pytest.fixture
def two_runs(server):
    """Two tiny digits runs (bptt, seeds 0 and 1: one seed group) trained into the server's runs folder."""
    from snncore.config import RunConfig
    from snncore.store import RunStore
    from snncore.train import Trainer
    url, runs = server
    store = RunStore(runs)
    ids = []
    for seed in (0, 1):
        cfg = RunConfig.from_dict(dict(dataset="digits", rule="bptt", epochs=2, timesteps=8, batch_size=32,
                                       hidden=[32], n_train=512, lr=1e-2, record_every=1000, seed=seed))
        rid = store.create_run(cfg.to_dict())
        assert Trainer(cfg, store, rid).run()["status"] == "finished"
        ids.append(rid)
    return url, ids


def test_compare_page_renders_from_a_link(two_runs):
    from playwright.sync_api import sync_playwright
    url, ids = two_runs
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 2200})
        page.goto(f"{url}/compare?runs={','.join(ids)}&x=epoch", wait_until="networkidle")
        page.get_by_text("Seed groups: mean").wait_for(timeout=180_000)     # a loaded 2-core box is slow
        page.locator(".js-plotly-plot").nth(5).wait_for(timeout=120_000)
        page.wait_for_timeout(2000)
        page.screenshot(path=str(ARTIFACTS / "compare_page.png"), full_page=True, timeout=120_000)
        titles = " | ".join(page.locator(".js-plotly-plot .gtitle").all_text_contents())
        for t in ("training loss", "test accuracy", "mean ± 95 % CI", "mean and 95 % CI per group"):
            assert t in titles, titles
        # the modebar keeps its PNG download, without the plotly logo
        page.locator(".js-plotly-plot").first.hover()
        assert page.locator('.modebar-btn[data-title="Download plot as a PNG" i]').count() >= 1
        assert page.locator(".modebar-btn--logo").count() == 0
        assert page.get_by_role("button", name="Download metrics (CSV)").count() == 1
        # the selection survives a reload through the URL
        assert "runs=" in page.url
        page.reload(wait_until="networkidle")
        page.get_by_text("Seed groups: mean").wait_for(timeout=180_000)
        page.locator(".js-plotly-plot").nth(5).wait_for(timeout=120_000)
        assert page.get_by_text("n=2").count() >= 1
        browser.close()
