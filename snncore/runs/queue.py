"""Queued runs: started one after another, so "repeat with N seeds" does not start N runs at once.

A queued run is a row with status "queued" and its config.toml in its folder (queue_runs). A worker,
`python -m snncore.runs.queue [--runs-dir D] [--max-live 1]`, starts the oldest queued run with the same
launcher the app uses (snncore.runs.launch) as soon as fewer than max-live runs are live on this host, and
exits when the queue is empty. Only one worker works a runs folder at a time (a lock file,
<runs>/queue.lock); ensure_worker() starts one when none holds the lock.

Cancelling: request_stop on a queued run; the worker marks it "stopped" instead of starting it. The
worker's start claims the run in one statement that fails once a stop was requested
(RunStore.claim_queued), so a cancel between the worker's check and its start is never lost.
"""
from __future__ import annotations

import argparse
import fcntl
import os
import socket
import subprocess
import sys
import time

from ..store import LIVE, RunStore, StoreError, atomic_write_bytes

QUEUED = "queued"
LOCK_NAME = "queue.lock"


def queue_runs(store: RunStore, configs: list) -> list[str]:
    """Create queued runs (RunConfig objects or dicts, validated) and return their ids, in order."""
    from ..config import RunConfig
    cfgs = [c if isinstance(c, RunConfig) else RunConfig.from_dict(c) for c in configs]  # all or none
    ids = []
    for cfg in cfgs:
        run_id = store.create_run(cfg.to_dict(), status=QUEUED)
        atomic_write_bytes(store.run_dir(run_id) / "config.toml", cfg.to_toml().encode())
        ids.append(run_id)
        time.sleep(0.001)   # distinct 'created' stamps keep the queue order
    return ids


def queued(store: RunStore) -> list[dict]:
    """Queued runs, oldest first."""
    return store.runs_with_status(QUEUED)


def live_here(store: RunStore) -> list[dict]:
    host = socket.gethostname()
    return [r for r in store.runs_with_status(*LIVE) if r["host"] == host]


def cancel(store: RunStore, run_id: str) -> None:
    """Cancel a queued run (the worker skips it); with no worker running, mark it stopped now."""
    store.request_stop(run_id)
    run = store.get_run(run_id)
    if run and run["status"] == QUEUED and not worker_running(store):
        store.end_run(run_id, "stopped", error="cancelled before it started")


def _start(store: RunStore, run: dict) -> None:
    from .launch import _spawn
    run_id = run["id"]
    cfg_path = store.run_dir(run_id) / "config.toml"
    if not cfg_path.exists():   # queued by an older version or by hand: write it from the row
        from ..config import RunConfig
        atomic_write_bytes(cfg_path, RunConfig.from_dict(run["config"]).to_toml().encode())
    if not store.claim_queued(run_id):          # cancelled since the worker looked: never start it
        store.end_run(run_id, "stopped", error="cancelled before it started")
        return
    _spawn(store, run_id, ["--config", str(cfg_path), "--run-id", run_id])   # the child marks it running


def _reap_children() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _lock(store: RunStore):
    f = open(store.root / LOCK_NAME, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        return None
    return f


def worker_running(store: RunStore) -> bool:
    f = _lock(store)
    if f is None:
        return True
    f.close()       # closing releases the lock
    return False


def work(store: RunStore, *, max_live=1, poll: float = 1.0, timeout: float | None = None) -> list[str]:
    """Start queued runs one by one until none is left; returns the ids started. `max_live`: an
    int, or a function of nothing read before each start (the classroom's cap, which the teacher
    may change while the queue drains). Returns [] at once when another worker holds the lock."""
    started: list[str] = []
    t0 = time.monotonic()
    while True:
        lock = _lock(store)
        if lock is None:
            return started
        try:
            while True:
                if timeout is not None and time.monotonic() - t0 > timeout:
                    return started
                _reap_children()
                q = queued(store)
                if not q:
                    break
                nxt = q[0]
                if nxt["stop_requested"]:
                    store.end_run(nxt["id"], "stopped", error="cancelled before it started")
                    continue
                if len(live_here(store)) >= (max_live() if callable(max_live) else max_live):
                    time.sleep(poll)
                    continue
                try:
                    _start(store, nxt)
                    started.append(nxt["id"])
                except Exception as e:  # noqa: BLE001 -- a bad row must not block the rest of the queue
                    store.end_run(nxt["id"], "failed", error=f"could not start: {e}")
                time.sleep(min(poll, 0.2))
        finally:
            lock.close()
        # a run queued while this worker was finishing saw the lock held and started no worker:
        # look once more after letting go, and carry on if there is one
        if not queued(store):
            return started


def ensure_worker(store: RunStore, classroom: bool = False) -> int | None:
    """Start a background worker for the store's folder unless one is running; returns its pid.
    classroom=True: it starts runs up to the classroom's server cap (snncore.classroom)."""
    if worker_running(store):
        return None
    # as launch.py: snncore is installed; the caller's directory stays the worker's (and its runs')
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    log = open(store.root / "queue.log", "ab")
    extra = ["--classroom", "--poll", "0.3"] if classroom else []
    proc = subprocess.Popen([sys.executable, "-m", "snncore.runs.queue", "--runs-dir", str(store.root.resolve()),
                             *extra],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            cwd=os.getcwd(), env=env, start_new_session=True)
    log.close()
    return proc.pid


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


def main(argv=None) -> int:
    p = _Parser(prog="python -m snncore.runs.queue",
                                description="start queued runs one after another, then exit")
    p.add_argument("--runs-dir", help="runs folder (default: $SNNCORE_RUNS or ./runs)")
    p.add_argument("--max-live", type=int, default=1, help="runs live at once on this host (default 1)")
    p.add_argument("--poll", type=float, default=1.0, help="seconds between checks (default 1)")
    p.add_argument("--list", action="store_true", help="print the queued runs and exit")
    p.add_argument("--classroom", action="store_true",
                   help="runs live at once: the classroom's server cap (<runs>/classroom.json), read before each start")
    args = p.parse_args(argv)
    if args.max_live < 1 or not args.poll > 0:
        print("error: --max-live must be >= 1 and --poll > 0", file=sys.stderr)
        return 2
    try:
        store = RunStore(args.runs_dir)
    except StoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.list:
        for r in queued(store):
            print(r["id"], r["config"].get("rule"), "seed", r["config"].get("seed"))
        return 0
    max_live = args.max_live
    if args.classroom:
        from ..classroom import load_policy
        max_live = lambda: load_policy(store).live_cap()   # noqa: E731
    started = work(store, max_live=max_live, poll=args.poll)
    print(f"queue: started {len(started)} run(s){': ' + ' '.join(started) if started else ''}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
