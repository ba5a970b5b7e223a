"""Classroom load test: N browser sessions press Start at once on one served app (issue #18).

    python bench/classroom_load.py [--sessions 20] [--server-cap 0] [--json]

Serves the app on 127.0.0.1 in classroom mode (its own runs folder), opens N sessions in one
headless Chromium (each its own browser context: its own Streamlit session and name), each on Train
with a tiny digits run in its link, and clicks Start in all of them at once. The pages stay open
(their live panels poll, as a class's would) while the queue drains. Reports: runs lost (must be 0:
every Start has its run, and every run finishes), the time until the last run ended, the most runs
live at once (must not exceed the server cap), and the page runs' seconds (p50 / p95 / max; the
app logs each full run of a page when SNNCORE_RERUN_LOG is set) while the queue drained.
Not part of the test suite; figures go to bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TINY = "rule=bptt&dataset=digits&epochs=1&hidden=16&n_train=128&timesteps=4&batch_size=32"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(runs: Path, log: Path, port: int) -> subprocess.Popen:
    env = dict(os.environ, SNNCORE_RUNS=str(runs), SNNCORE_CLASSROOM="1", SNNCORE_RERUN_LOG=str(log),
               PYTHONWARNINGS="ignore")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
                             "--server.port", str(port), "--server.headless", "true",
                             "--browser.gatherUsageStats", "false"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    for _ in range(120):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
            return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("error: the app did not start")


def rows(db: Path) -> list[tuple]:
    if not db.exists():
        return []
    con = sqlite3.connect(db, timeout=10)
    try:
        return con.execute("SELECT id, status FROM runs").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()


async def session(browser, url: str, i: int, go: asyncio.Event, ready: list, started: list):
    ctx = await browser.new_context(viewport={"width": 1200, "height": 900})
    page = await ctx.new_page()
    await page.goto(f"{url}/train?who=student{i:02d}&{TINY}", wait_until="networkidle", timeout=180_000)
    start = page.locator('[data-testid="stSidebar"]').get_by_role("button", name="Start")
    await start.wait_for(timeout=180_000)
    ready.append(i)
    await go.wait()
    t = time.time()
    await start.click()
    await page.get_by_text("Started run").or_(page.get_by_text("Queued run")).first.wait_for(timeout=180_000)
    started.append(time.time() - t)
    return ctx


async def drive(url: str, n: int, db: Path, timeout: float) -> dict:
    from playwright.async_api import async_playwright
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        go, ready, started = asyncio.Event(), [], []
        tasks = [asyncio.create_task(session(browser, url, i, go, ready, started)) for i in range(n)]
        while len(ready) < n:                          # every page shows its Start: press all at once
            failed = [t for t in tasks if t.done() and t.exception()]
            if failed:
                raise failed[0].exception()
            await asyncio.sleep(0.2)
        t_click = time.time()
        go.set()
        ctxs = await asyncio.gather(*tasks)
        # the queue drains with every page open
        most, end = 0, time.time() + timeout
        while time.time() < end:
            st = [s for _, s in rows(db)]
            most = max(most, sum(s in ("starting", "running") for s in st))
            if len(st) >= n and all(s in ("finished", "failed", "stopped") for s in st):
                break
            await asyncio.sleep(0.5)
        drained = time.time() - t_click
        for c in ctxs:
            await c.close()
        await browser.close()
    return {"t_click": t_click, "click_to_ack_s": started, "drained_s": drained, "most_live": most}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--server-cap", type=int, default=0, help="runs live at once (0: the cores less one)")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="classroom-load-"))
    runs, log = tmp / "runs", tmp / "reruns.log"
    runs.mkdir()
    if a.server_cap:
        (runs / "classroom.json").write_text(json.dumps({"session_cap": 1, "server_cap": a.server_cap}))
    port = free_port()
    proc = serve(runs, log, port)
    try:
        res = asyncio.run(drive(f"http://127.0.0.1:{port}", a.sessions, runs / "runs.sqlite", a.timeout))
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
    st = rows(runs / "runs.sqlite")
    times = [(float(t), page, float(s)) for t, page, s in (ln.split() for ln in log.read_text().splitlines())]
    during = np.array([s for t, _, s in times if res["t_click"] <= t <= res["t_click"] + res["drained_s"]])
    from snncore.threads import cores
    out = {"sessions": a.sessions, "cores": cores(), "server_cap": a.server_cap or max(1, cores() - 1),
           "runs": len(st), "finished": sum(s == "finished" for _, s in st),
           "lost": a.sessions - sum(s == "finished" for _, s in st),
           "most_live": res["most_live"], "drained_s": round(res["drained_s"], 1),
           "click_to_ack_p95_s": round(float(np.percentile(res["click_to_ack_s"], 95)), 2),
           "page_runs": int(during.size),
           "page_run_p50_s": round(float(np.percentile(during, 50)), 3) if during.size else None,
           "page_run_p95_s": round(float(np.percentile(during, 95)), 3) if during.size else None,
           "page_run_max_s": round(float(during.max()), 3) if during.size else None}
    if a.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:>22}: {v}")
    return 0 if out["lost"] == 0 and out["most_live"] <= out["server_cap"] else 1


if __name__ == "__main__":
    sys.exit(main())
