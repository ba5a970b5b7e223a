"""Real headless Chromium: the first spike raster and rule panel show within ~2 s of the first
snapshot being written, and Home opens a run in Train with one click (issue #14, part 4)."""
import os
import sqlite3
import time

import pytest

from tests import browser_util
from tests.browser_util import ARTIFACTS, launch, server  # noqa: F401  (server is a fixture)

pytestmark = [pytest.mark.browser, *browser_util.requires_chromium()]
FIRST_PANEL_WITHIN = 2.0     # s from the first snapshot on disk to the raster on the page


def _limit() -> float:
    """2 s on a box with a core to spare; scaled by the load when other work shares the CPUs
    (the test suite of a 2-core CI box runs beside trainers and browsers)."""
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    return FIRST_PANEL_WITHIN * min(3.0, max(1.0, load))


def _first_snapshot_time(runs) -> float | None:
    con = sqlite3.connect(runs / "runs.sqlite", timeout=30)
    try:
        row = con.execute("SELECT MIN(created) FROM snapshots").fetchone()
    finally:
        con.close()
    return row[0] if row else None


def test_first_raster_soon_and_home_opens_the_run(server):
    from playwright.sync_api import sync_playwright
    url, runs = server
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        browser_util.start_from_form(page, url, {"epochs": "3", "timesteps T": "8", "hidden sizes": "64"})
        raster = page.locator(".js-plotly-plot .gtitle", has_text="raster · step")
        panel = page.locator(".js-plotly-plot .gtitle", has_text="SSDP kernel G(dt)")    # the rule panel
        seen: dict = {}
        t_end = time.time() + 120
        while time.time() < t_end and len(seen) < 2:       # poll the page; the store is read after
            for name, loc in (("raster", raster), ("rule panel", panel)):
                if name not in seen and loc.count():
                    seen[name] = time.time()
            page.wait_for_timeout(100)
        page.screenshot(path=str(ARTIFACTS / "train_live_first_raster.png"), full_page=True)
        assert len(seen) == 2, f"within 120 s only {seen}"
        t_snap = _first_snapshot_time(runs)
        assert t_snap is not None
        limit = _limit()
        for name, t in seen.items():
            print(f"{name} shown {t - t_snap:.2f} s after the first snapshot (limit {limit:.1f} s)")
            assert t - t_snap < limit, f"{name} shown {t - t_snap:.1f} s after the first snapshot"
        run_id = page.url.split("run=")[1].split("&")[0]
        page.get_by_text("Finished: test accuracy").wait_for(timeout=240_000)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(ARTIFACTS / "train_finished.png"), full_page=True)

        # Home: the run is listed with one-click links; "Train" opens it there
        page.goto(url + "/", wait_until="networkidle")
        page.get_by_role("heading", name="Plasticity Lab").first.wait_for(timeout=60_000)
        page.get_by_text(run_id).first.wait_for(timeout=30_000)
        page.wait_for_timeout(1000)
        page.screenshot(path=str(ARTIFACTS / "home_runs.png"), full_page=True)
        page.locator(f'a[href="train?run={run_id}"]').click()
        # Train then writes its form's config into the URL beside run= (so no fixed URL pattern)
        page.wait_for_url(lambda u: "/train?" in u and f"run={run_id}" in u, timeout=30_000, wait_until="commit")
        page.get_by_text("Finished: test accuracy").wait_for(timeout=60_000)
        assert page.locator('[data-testid="stException"]').count() == 0
        browser.close()


def test_compare_chips_follow_the_runs_status(server):
    """Selection chips said "queued" after the runs had finished: the page redraws on a change."""
    from playwright.sync_api import sync_playwright

    from snncore.config import RunConfig
    from snncore.store import RunStore
    url, runs = server
    store = RunStore(runs)
    ids = [store.create_run(RunConfig.from_dict({"dataset": "digits", "seed": s}).to_dict(), status="queued")
           for s in (0, 1)]
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url + f"/compare?runs={','.join(ids)}", wait_until="networkidle")
        page.get_by_role("heading", name="Compare").first.wait_for(timeout=120_000)
        page.get_by_text("0 running, 2 queued").wait_for(timeout=60_000)
        chips = page.locator('[data-testid="stMultiSelect"]').first
        assert "seed 0 · queued" in chips.text_content() and "seed 1 · queued" in chips.text_content()
        for rid in ids:
            store.end_run(rid, "finished", summary={"seconds": 1.0})
        # the chips change without a reload (the results fragment polls every 2 s)
        page.wait_for_function("() => { const t = document.querySelector('[data-testid=\"stMultiSelect\"]')"
                               ".textContent; return t.includes('seed 0 · finished') && "
                               "t.includes('seed 1 · finished') && !t.includes('queued'); }", timeout=20_000)
        page.screenshot(path=str(ARTIFACTS / "compare_chips_finished.png"))
        assert page.locator('[data-testid="stException"]').count() == 0
        browser.close()
