"""A classroom on one server: whose run is whose, how many run at once, and what the teacher may do.

Classroom mode is on when the app is served to others: SNNCORE_CLASSROOM=1 (`make app HOST=0.0.0.0`
sets it) or a teacher token is given (SNNCORE_TEACHER_TOKEN; `make app TEACHER_TOKEN=...`). Off,
everything is as on a personal machine: every session controls every run.

In classroom mode
- each browser session has a name (no login); a run it starts is tagged `<run>/owner.json`, and only
  that session or the teacher may stop, resume or delete it (NotAllowed otherwise);
- every Start goes through the queue (snncore.runs.queue): one worker per runs folder starts queued
  runs while fewer than the server cap are live, so 30 Starts at once never start 30 processes;
  a session may have at most `session_cap` runs queued or live (CapReached beyond it);
- the teacher (the token, entered once in the page) sees and controls every run and sets the caps,
  kept in `<runs>/classroom.json` (the worker reads them before each start).
"""
from __future__ import annotations

import fcntl
import hmac
import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import asdict, dataclass

from .store import CONTROL_ACTIONS, LIVE, RunStore, atomic_write_bytes

TOKEN_ENV = "SNNCORE_TEACHER_TOKEN"
MODE_ENV = "SNNCORE_CLASSROOM"
POLICY_FILE = "classroom.json"
OWNER_FILE = "owner.json"
QUEUED = "queued"
MAX_CAP = 256


class NotAllowed(PermissionError):
    """A session asked to act on a run that is not its own; the message says whose it is."""


class CapReached(ValueError):
    """A session already has as many runs going as the cap allows."""


@dataclass(frozen=True)
class Who:
    """The session acting: its name, and whether it entered the teacher's token."""
    session: str
    teacher: bool = False


def enabled() -> bool:
    return os.environ.get(MODE_ENV, "").strip() not in ("", "0") or bool(os.environ.get(TOKEN_ENV, "").strip())


def teacher_token_ok(token: str) -> bool:
    """True for the server's teacher token (compared in constant time); False when none is set."""
    want = os.environ.get(TOKEN_ENV, "").strip()
    return bool(want) and isinstance(token, str) and hmac.compare_digest(token.strip().encode(), want.encode())


def check_session_name(name: str) -> str:
    name = (name or "").strip()
    if not (1 <= len(name) <= 40) or not all(c.isalnum() or c in " -_." for c in name):
        raise ValueError(f"session name {name!r}: 1 to 40 letters, digits, spaces, '-', '_' or '.'")
    return name


@dataclass
class Policy:
    session_cap: int = 1        # runs one session may have queued or live
    server_cap: int = 0         # runs live at once on this server (0: the cores less one, at least 1)

    def live_cap(self) -> int:
        from .threads import cores
        return self.server_cap or max(1, cores() - 1)

    def check(self) -> "Policy":
        for name in ("session_cap", "server_cap"):
            v = getattr(self, name)
            lo = 1 if name == "session_cap" else 0
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= MAX_CAP:
                raise ValueError(f"{name} must be a whole number from {lo} to {MAX_CAP}, got {v!r}")
        return self


def load_policy(store: RunStore) -> Policy:
    p = store.root / POLICY_FILE
    try:
        return Policy(**json.loads(p.read_text())).check()
    except (OSError, ValueError, TypeError):
        return Policy()                  # none yet, or unreadable: the defaults


def save_policy(store: RunStore, policy: Policy, who: Who) -> None:
    if not who.teacher:
        raise NotAllowed("only the teacher may set the caps")
    atomic_write_bytes(store.root / POLICY_FILE, json.dumps(asdict(policy.check())).encode())


# ---- ownership -----------------------------------------------------------------------------------
def owner(store: RunStore, run_id: str) -> str | None:
    try:
        return json.loads((store.run_dir(run_id) / OWNER_FILE).read_text()).get("session")
    except (OSError, ValueError, AttributeError):
        return None


def may_control(store: RunStore, run_id: str, who: Who) -> bool:
    """Stop, resume, delete: anyone outside classroom mode; in it, the run's session and the teacher."""
    return not enabled() or who.teacher or owner(store, run_id) == who.session


def check_control(store: RunStore, run_id: str, who: Who, action: str) -> None:
    if not may_control(store, run_id, who):
        whose = owner(store, run_id)
        raise NotAllowed(f"run {run_id} was started by {'session ' + repr(whose) if whose else 'someone else'}: "
                         f"only that session or the teacher may {action} it")


def sort_for(runs: list[dict], store: RunStore, who: Who) -> list[dict]:
    """The session's own runs first (newest first within each part), then everyone else's."""
    if not enabled():
        return runs
    mine = [r for r in runs if owner(store, r["id"]) == who.session]
    ids = {r["id"] for r in mine}
    return mine + [r for r in runs if r["id"] not in ids]


# ---- starting, stopping, deleting ----------------------------------------------------------------
def going(store: RunStore, session: str) -> list[dict]:
    """The session's runs that are queued or live."""
    return [r for r in store.runs_with_status(*LIVE, QUEUED) if owner(store, r["id"]) == session]


def submit(store: RunStore, cfg, who: Who) -> str:
    """Start a run for `who`: outside classroom mode at once (runs.launch); in it through the
    queue, within the session's cap (CapReached) and the server's (the worker waits for a slot)."""
    from .runs import queue
    from .runs.launch import launch_run
    if not enabled():
        return launch_run(cfg, store)
    with _admission(store):               # two clicks at once cannot both pass the cap
        policy = load_policy(store)
        mine = going(store, who.session)
        if len(mine) >= policy.session_cap and not who.teacher:
            raise CapReached(f"session {who.session!r} has {len(mine)} run(s) queued or running, the cap is "
                             f"{policy.session_cap}: wait for one to end or stop it")
        run_id = queue.queue_runs(store, [cfg])[0]
        atomic_write_bytes(store.run_dir(run_id) / OWNER_FILE,
                           json.dumps({"session": who.session, "teacher": who.teacher}).encode())
    queue.ensure_worker(store, classroom=True)
    return run_id


@contextmanager
def _admission(store: RunStore):
    """An exclusive lock on <runs>/classroom.lock (flock: between the server's session threads
    too, each opening the file on its own)."""
    with open(store.root / "classroom.lock", "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def queue_position(store: RunStore, run_id: str) -> int | None:
    """1 for the next run to start; None when the run is not queued."""
    ids = store.ids_with_status(QUEUED)
    return ids.index(run_id) + 1 if run_id in ids else None


def stop(store: RunStore, run_id: str, who: Who) -> None:
    from .runs.queue import cancel
    check_control(store, run_id, who, "stop")
    run = store.get_run(run_id)
    if run and run["status"] == QUEUED:
        cancel(store, run_id)
    else:
        store.request_stop(run_id)


def resume(store: RunStore, run_id: str, who: Who) -> None:
    """Continue a stopped run at once (it was admitted before); it counts against the session's cap."""
    from .runs.launch import launch_resume
    check_control(store, run_id, who, "resume")
    if enabled() and not who.teacher:
        mine = going(store, who.session)
        cap = load_policy(store).session_cap
        if len(mine) >= cap:
            raise CapReached(f"session {who.session!r} has {len(mine)} run(s) queued or running, the cap is "
                             f"{cap}: wait for one to end or stop it")
    launch_resume(store, run_id)


def check_sweeps(who: Who) -> None:
    """Sweeps start many runs at once, past the queue and its caps: in a classroom the teacher's only."""
    if enabled() and not who.teacher:
        raise NotAllowed("in a classroom only the teacher may launch, stop or resume sweeps (a sweep starts "
                         "many runs at once, past the class's caps); use Start on the Train page")


def control(store: RunStore, run_id: str, who: Who, action: str, arg=None) -> None:
    """Pause, continue, step or change a hyperparameter of a live run (the trainer answers at its
    next batch): the run's session or the teacher only, as for stop."""
    if action not in CONTROL_ACTIONS:
        raise ValueError(f"control {action!r}: one of {', '.join(CONTROL_ACTIONS)}")
    check_control(store, run_id, who, "pause, step or change" if action != "continue" else "continue")
    store.request_control(run_id, action, arg)


def delete(store: RunStore, run_id: str, who: Who) -> None:
    """Remove an ended run: its rows and its folder. A live or queued run is refused (stop it first)."""
    check_control(store, run_id, who, "delete")
    run = store.get_run(run_id)
    if run is None:
        raise ValueError(f"run {run_id!r} is not in {store.root}")
    if run["status"] in (*LIVE, QUEUED):
        raise ValueError(f"run {run_id} is {run['status']}: stop it before deleting it")
    store.delete_run(run_id)
    shutil.rmtree(store.run_dir(run_id), ignore_errors=True)
