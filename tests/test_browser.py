"""Real headless Chromium: start the app, start a run, check the raster and curves render.

Uses Debian's chromium (never `playwright install`); screenshots land in test-artifacts/.
"""
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.browser
if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        raise RuntimeError("chromium is required in CI (.ci/run installs it)")
    pytest.skip("chromium not installed (apt-get install chromium)", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port = free_port()
    env = dict(os.environ, SNNCORE_RUNS=str(tmp_path / "runs"), PYTHONWARNINGS="ignore")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
                             "--server.port", str(port), "--server.headless", "true",
                             "--browser.gatherUsageStats", "false"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("streamlit did not start")
    yield url, tmp_path / "runs"
    os.killpg(proc.pid, 15)
    proc.wait(timeout=20)


def test_train_page_live_run_renders(server):
    from playwright.sync_api import sync_playwright
    url, runs = server
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.goto(url + "/train", wait_until="networkidle")
        page.get_by_text("No runs yet").wait_for(timeout=60_000)
        sidebar = page.locator('[data-testid="stSidebar"]')
        for label, value in (("epochs", "2"), ("timesteps T", "8"), ("hidden sizes", "64")):
            box = sidebar.get_by_label(label, exact=True).first
            box.fill(value)
            box.press("Enter")
            page.wait_for_timeout(700)
        sidebar.get_by_role("button", name="Start").click()
        page.get_by_text("Started run").wait_for(timeout=60_000)
        # live panels: curves and the raster image appear while/after it trains
        page.locator(".js-plotly-plot").first.wait_for(timeout=120_000)
        page.get_by_text("Finished: test accuracy").wait_for(timeout=180_000)
        page.wait_for_timeout(2000)
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
