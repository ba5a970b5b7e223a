"""Start a sweep's driver as its own process (the app's Launch and Resume), as runs/launch.py starts
runs: detached (its own session, so it outlives the page), output to <runs>/sweeps/<id>/sweep.log,
in the caller's working directory (a user's own modules import in its trials as in the app).

The sweep id is chosen here and passed to the CLI (`--sweep-id`), so the page can put it in the URL
at once; launch.json (pid, command, time) lets the page tell a driver still starting up (no
sweep.json yet) from one that died before writing it (its log says why).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from ..store import atomic_write_bytes, pid_alive
from .engine import new_sweep_id, sweeps_root

LOG = "sweep.log"
LAUNCH = "launch.json"


def _spawn(runs_root: Path, sweep_id: str, args: list[str]) -> int:
    d = sweeps_root(runs_root) / sweep_id
    d.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "snncore", "sweep", *args, "--runs-dir", str(Path(runs_root).resolve())]
    log = open(d / LOG, "ab")
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            cwd=os.getcwd(), env=env, start_new_session=True)
    log.close()
    atomic_write_bytes(d / LAUNCH, json.dumps({"pid": proc.pid, "command": cmd, "started": time.time()}).encode(),
                       durable=False)
    return proc.pid


def launch_sweep(runs_root: Path, base, sweep_args: list[str], sweep_id: str | None = None) -> str:
    """`python -m snncore sweep --config <base.toml> SWEEP_ARGS --sweep-id ID` in the background;
    returns ID. base: the RunConfig every trial starts from (written to the sweep's folder);
    sweep_args: the sweep's own flags (--grid, --seeds, ...)."""
    sweep_id = sweep_id or new_sweep_id()
    cfg_path = sweeps_root(runs_root) / sweep_id / "base.toml"
    cfg_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(cfg_path, base.to_toml().encode(), durable=False)
    _spawn(runs_root, sweep_id, ["--config", str(cfg_path.resolve()), *sweep_args, "--sweep-id", sweep_id])
    return sweep_id


def launch_configs(runs_root: Path, configs: list[dict], name: str = "") -> str:
    """`python -m snncore sweep --configs <configs.json> --sweep-id ID` in the background: a sweep
    over whole configs (Compare's "repeat with N seeds"); returns ID."""
    sweep_id = new_sweep_id()
    path = sweeps_root(runs_root) / sweep_id / "configs.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(configs).encode(), durable=False)
    _spawn(runs_root, sweep_id, ["--configs", str(path.resolve()), "--sweep-id", sweep_id,
                                 *(["--name", name] if name else [])])
    return sweep_id


def launch_resume(runs_root: Path, sweep_id: str) -> int:
    """`python -m snncore sweep --resume ID` in the background; returns its pid."""
    return _spawn(runs_root, sweep_id, ["--resume", sweep_id])


def launch_info(runs_root: Path, sweep_id: str) -> dict | None:
    """The last launch of this sweep from the app ({pid, command, started, alive}), or None."""
    p = sweeps_root(runs_root) / sweep_id / LAUNCH
    try:
        info = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    info["alive"] = pid_alive(info.get("pid"))
    return info


def log_tail(runs_root: Path, sweep_id: str, lines: int = 15) -> str:
    p = sweeps_root(runs_root) / sweep_id / LOG
    try:
        text = p.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])
