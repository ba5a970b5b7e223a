"""Start a training run as its own process: `python -m snncore train --config F --run-id ID`.

The row is created first (status 'starting'), so the caller can watch the run at once; the child
writes everything else through the RunStore. Its output goes to <run>/train.log.

The child finds snncore as any program does: the package is installed (`pip install -e .`, what
`make` does), no PYTHONPATH is set. It runs in the caller's working directory, and `python -m` puts
that directory first on sys.path, so a user's own module there (an outside rule, say) imports in
the run as it does in the app started from that directory.
"""
from __future__ import annotations

import os
import subprocess
import sys

from ..config import RunConfig
from ..store import RunStore, atomic_write_bytes
from ..threads import budget, cores, env_for


def train_threads() -> int:
    """The thread budget of a run started from the app: one core is left to the app and the browser
    (with every core given to torch, its threads waited on each other whenever the page redraws, and
    a 4 s run took 150 s on 2 cores). SNNCORE_THREADS, where the app was given one, wins."""
    if os.environ.get("SNNCORE_THREADS", "").strip():
        try:
            return budget()[0]
        except ValueError:
            pass
    return max(1, cores() - 1)


def launch_run(cfg: RunConfig, store: RunStore) -> str:
    run_id = store.create_run(cfg.to_dict())
    cfg_path = store.run_dir(run_id) / "config.toml"
    atomic_write_bytes(cfg_path, cfg.to_toml().encode())
    _spawn(store, run_id, ["--config", str(cfg_path), "--run-id", run_id])
    return run_id


def launch_resume(store: RunStore, run_id: str) -> None:
    """Continue a stopped or failed run from its last checkpoint in a new process."""
    store.reopen(run_id)
    _spawn(store, run_id, ["--resume", run_id])


def _spawn(store: RunStore, run_id: str, args: list[str]) -> None:
    log = open(store.run_dir(run_id) / "train.log", "ab")
    # the run's one thread budget (torch, Numba, OpenMP, BLAS), set before its libraries load
    env = dict(os.environ, PYTHONWARNINGS="ignore", **env_for(train_threads()), SNNCORE_THREADS_SOURCE="app")
    proc = subprocess.Popen([sys.executable, "-m", "snncore", "train", *args,
                             "--runs-dir", str(store.root.resolve())],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            cwd=os.getcwd(), env=env, start_new_session=True)
    log.close()
    store.set_pid(run_id, proc.pid)
