"""Start a training run as its own process: `python -m snncore train --config F --run-id ID`.

The row is created first (status 'starting'), so the caller can watch the run at once; the child
writes everything else through the RunStore. Its output goes to <run>/train.log.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .config import RunConfig
from .store import RunStore, atomic_write_bytes

REPO_ROOT = Path(__file__).resolve().parent.parent


def launch_run(cfg: RunConfig, store: RunStore) -> str:
    run_id = store.create_run(cfg.to_dict())
    d = store.run_dir(run_id)
    cfg_path = d / "config.toml"
    atomic_write_bytes(cfg_path, cfg.to_toml().encode())
    log = open(d / "train.log", "wb")
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONPATH=os.pathsep.join(
        [str(REPO_ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    proc = subprocess.Popen([sys.executable, "-m", "snncore", "train", "--config", str(cfg_path),
                             "--run-id", run_id, "--runs-dir", str(store.root.resolve())],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            cwd=str(REPO_ROOT), env=env, start_new_session=True)
    log.close()
    store.set_pid(run_id, proc.pid)
    return run_id
