"""Shared pieces for the real-Chromium tests: the app server fixture and the browser launch.

Uses Debian's chromium (never `playwright install`); screenshots land in test-artifacts/.
A browser test module does:  from tests.browser_util import ARTIFACTS, launch, server  # noqa: F401
and marks itself with  pytestmark = [pytest.mark.browser, *browser_util.requires_chromium()].
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


def requires_chromium() -> list:
    """Marks for a browser module: CI must have chromium (.ci/run installs it); elsewhere skip."""
    if Path(CHROMIUM).exists():
        return []
    if os.environ.get("CI"):
        raise RuntimeError("chromium is required in CI (.ci/run installs it)")
    return [pytest.mark.skip(reason="chromium not installed (apt-get install chromium)")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """(url, runs folder) of a fresh `streamlit run app.py` on 127.0.0.1 with its own runs folder."""
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


def launch(p):
    """A headless Chromium from a sync_playwright() handle."""
    ARTIFACTS.mkdir(exist_ok=True)
    return p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)


def start_from_form(page, url: str, settings: dict) -> None:
    """Open Train with no runs yet, set the sidebar's fields {label: value}, press Start and wait
    for the page to say the run started."""
    page.goto(url + "/train", wait_until="networkidle")
    page.get_by_text("No runs yet").wait_for(timeout=60_000)
    sidebar = page.locator('[data-testid="stSidebar"]')
    for label, value in settings.items():
        box = sidebar.get_by_label(label, exact=True).first
        box.fill(value)
        box.press("Enter")
        page.wait_for_timeout(700)
    sidebar.get_by_role("button", name="Start").click()
    page.get_by_text("Started run").wait_for(timeout=60_000)
