"""RunStore: the one place that reads and writes runs.

Layout under the runs folder (default ./runs, or SNNCORE_RUNS, or --runs-dir):
    runs.sqlite            SQLite in WAL mode: runs, metrics, telemetry, snapshots, checkpoints
    <run_id>/snapshots/    spike snapshots, compressed .npz (bool rasters), bounded in number
    <run_id>/checkpoints/  bounded: full checkpoints (model + optimizer + rule state) of the newest
                           epochs and the best one (epochNNNNN.pt), and weights-only points spread
                           over the run for Inspect's weight history (epochNNNNN.weights.pt)
    <run_id>/tb/           TensorBoard scalars
The trainer (its own process) writes; the app and `python -m snncore runs` read. Files are written
to a temporary name and renamed, so a reader never sees half a file.
"""
from __future__ import annotations

import errno
import io
import json
import math
import os
import re
import secrets
import socket
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np

TERMINAL = ("finished", "failed", "stopped")
LIVE = ("starting", "running", "paused")     # paused: its process is alive, waiting (heartbeat goes on)
RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, name TEXT, config TEXT NOT NULL, status TEXT NOT NULL,
    created REAL, started REAL, ended REAL, error TEXT, pid INTEGER, host TEXT, device TEXT,
    heartbeat REAL, epoch INTEGER DEFAULT 0, step INTEGER DEFAULT 0, total_steps INTEGER DEFAULT 0,
    stop_requested INTEGER DEFAULT 0, summary TEXT
);
CREATE TABLE IF NOT EXISTS metrics (run_id TEXT, step INTEGER, epoch INTEGER, time REAL, key TEXT, value REAL);
CREATE INDEX IF NOT EXISTS metrics_idx ON metrics (run_id, key, step);
CREATE TABLE IF NOT EXISTS telemetry (run_id TEXT, step INTEGER, key TEXT, value REAL);
CREATE INDEX IF NOT EXISTS telemetry_idx ON telemetry (run_id, key, step);
CREATE TABLE IF NOT EXISTS snapshots (run_id TEXT, step INTEGER, epoch INTEGER, path TEXT, created REAL);
CREATE INDEX IF NOT EXISTS snapshots_idx ON snapshots (run_id, step);
CREATE TABLE IF NOT EXISTS checkpoints (run_id TEXT, epoch INTEGER, step INTEGER, path TEXT, created REAL);
CREATE TABLE IF NOT EXISTS changes (run_id TEXT, step INTEGER, name TEXT, value TEXT, created REAL);
CREATE INDEX IF NOT EXISTS changes_idx ON changes (run_id, step);
CREATE TABLE IF NOT EXISTS controls (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT, action TEXT, arg TEXT,
    created REAL, done REAL, result TEXT, error TEXT);
CREATE INDEX IF NOT EXISTS controls_idx ON controls (run_id, done);
"""
# changes: hyperparameter changes a live run applied (value as JSON), at the step before whose batch
# they took effect; controls: requests to a live run (pause, continue, step, step_epoch, set), answered
# by the trainer at a batch boundary (done, and result or error). Both tables are new: an older
# runs.sqlite gets them (empty) when opened.
CONTROL_ACTIONS = ("pause", "continue", "step", "step_epoch", "set")
# columns added after the first release (ALTER TABLE on older databases): kind 'full' (NULL in old
# rows) or 'weights'; score = the run's metric at that epoch (test accuracy) for keeping the best
CHECKPOINT_COLUMNS = (("kind", "TEXT"), ("score", "REAL"))
CHECKPOINT_NAME = re.compile(r"^epoch\d{5,}(\.weights)?\.pt$")


class StoreError(RuntimeError):
    """The runs folder or database cannot be used; the message says which path and why."""


def default_runs_dir() -> Path:
    return Path(os.environ.get("SNNCORE_RUNS", "runs"))


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def check_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not RUN_ID_RE.match(run_id):
        raise ValueError(f"run id {run_id!r} is not valid (letters, digits, '-' and '_', up to 64)")
    return run_id


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (ended, not yet reaped by its parent) is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


SNAPSHOT_COMPRESS_ABOVE = 256 * 1024      # bytes of arrays


def atomic_write_bytes(path: Path, data: bytes, durable: bool = True) -> None:
    """Write to a temporary name, fsync, rename: a reader sees the old file or the whole new one.
    durable=False skips the fsync: still whole-or-old for a killed process (the rename is atomic and
    the page cache outlives it), only a power cut may lose the file (fine for a live-view snapshot)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)       # never leave a half-written file behind (e.g. disk full)
        raise


def write_failure(exc: BaseException) -> str | None:
    """The reason when `exc` means the runs folder cannot be written (disk full, read-only,
    permissions), else None."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES,
                                                  errno.EPERM):
        return exc.strerror or str(exc)
    if isinstance(exc, sqlite3.OperationalError):
        msg = str(exc).lower()
        if "disk is full" in msg or "readonly" in msg or "disk i/o" in msg:
            return str(exc)
    return None


class RunStore:
    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_runs_dir()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"runs folder {str(self.root)!r} cannot be created: {e.strerror}") from None
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StoreError(f"runs folder {str(self.root)!r} is not writable")
        self.db_path = self.root / "runs.sqlite"
        self._lock = threading.RLock()
        self.controls_waiting: dict[str, int] = {}
        try:
            self._db = sqlite3.connect(self.db_path, timeout=30.0, check_same_thread=False,
                                       isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=30000")
            self._retry(lambda: self._db.executescript(SCHEMA))
            self._retry(self._add_columns)
        except sqlite3.DatabaseError as e:
            raise StoreError(f"run database {str(self.db_path)!r} cannot be opened: {e}") from None

    def _add_columns(self) -> None:
        have = {r[1] for r in self._db.execute("PRAGMA table_info(checkpoints)")}
        for name, typ in CHECKPOINT_COLUMNS:
            if name not in have:
                try:
                    self._db.execute(f"ALTER TABLE checkpoints ADD COLUMN {name} {typ}")
                except sqlite3.OperationalError as e:      # another process added it first
                    if "duplicate column" not in str(e):
                        raise

    # ---- low level ---------------------------------------------------------------------
    def _retry(self, fn, tries: int = 20):
        delay = 0.01
        for i in range(tries):
            try:
                with self._lock:
                    return fn()
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) and "busy" not in str(e) or i == tries - 1:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    def _exec(self, sql: str, args: Iterable = ()):
        return self._retry(lambda: self._db.execute(sql, tuple(args)))

    def _query(self, sql: str, args: Iterable = ()) -> list[tuple]:
        return self._retry(lambda: self._db.execute(sql, tuple(args)).fetchall())

    def _many(self, sql: str, rows: list[tuple]) -> None:
        def go():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(sql, rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        if rows:
            self._retry(go)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def run_dir(self, run_id: str) -> Path:
        return self.root / check_run_id(run_id)

    # ---- runs ----------------------------------------------------------------------------
    def create_run(self, config: dict, run_id: str | None = None, status: str = "starting") -> str:
        run_id = check_run_id(run_id or new_run_id())
        d = self.run_dir(run_id)
        for sub in ("snapshots", "checkpoints"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        self._exec("INSERT INTO runs (id, name, config, status, created, host) VALUES (?,?,?,?,?,?)",
                   (run_id, config.get("name", ""), json.dumps(config), status, time.time(),
                    socket.gethostname()))
        return run_id

    def start_run(self, run_id: str, *, pid: int, device: str, total_steps: int) -> None:
        now = time.time()
        # a resumed run keeps its start (reopen moved it past the pause): elapsed counts every session
        self._exec("UPDATE runs SET status='running', started=COALESCE(started, ?), heartbeat=?, pid=?, host=?, "
                   "device=?, total_steps=? WHERE id=?",
                   (now, now, pid, socket.gethostname(), device, total_steps, run_id))

    def elapsed(self, run_id: str) -> float:
        """Seconds the run has spent running, over every session of a resumed run (0 if not started)."""
        r = self._query("SELECT started, ended FROM runs WHERE id=?", (run_id,))
        if not r or r[0][0] is None:
            return 0.0
        return max(0.0, (r[0][1] or time.time()) - r[0][0])

    def set_pid(self, run_id: str, pid: int) -> None:
        self._exec("UPDATE runs SET pid=?, host=? WHERE id=?", (pid, socket.gethostname(), run_id))

    def heartbeat(self, run_id: str, *, epoch: int, step: int) -> bool:
        """Record progress; returns True when a stop was requested. The number of unanswered
        control requests it read in the same query is kept in self.controls_waiting[run_id]."""
        stop, n = self.beat(run_id, epoch=epoch, step=step)
        self.controls_waiting[run_id] = n
        return stop

    def beat(self, run_id: str, *, epoch: int, step: int) -> tuple[bool, int]:
        """Record progress; (stop requested, number of unanswered control requests), one query."""
        self._exec("UPDATE runs SET heartbeat=?, epoch=?, step=? WHERE id=?", (time.time(), epoch, step, run_id))
        r = self._query("SELECT stop_requested, (SELECT COUNT(*) FROM controls WHERE run_id=? AND done IS NULL) "
                        "FROM runs WHERE id=?", (run_id, run_id))
        return (bool(r[0][0]), int(r[0][1])) if r else (False, 0)

    def set_status(self, run_id: str, status: str) -> None:
        """running <-> paused, for a run that is still live (a stop or the reaper wins)."""
        assert status in ("running", "paused")
        self._exec("UPDATE runs SET status=?, heartbeat=? WHERE id=? AND status IN ('running','paused')",
                   (status, time.time(), run_id))

    # ---- controls of a live run and the changes it applied ----------------------------------
    def request_control(self, run_id: str, action: str, arg: Any = None) -> int:
        """Queue a request for the run's trainer (answered at its next batch boundary); its id."""
        assert action in CONTROL_ACTIONS
        cur = self._exec("INSERT INTO controls (run_id, action, arg, created) VALUES (?,?,?,?)",
                         (run_id, action, json.dumps(arg), time.time()))
        return int(cur.lastrowid)

    def pending_controls(self, run_id: str) -> list[tuple[int, str, Any]]:
        """(id, action, arg) of the run's unanswered requests, oldest first."""
        return [(i, a, json.loads(g)) for i, a, g in self._query(
            "SELECT id, action, arg FROM controls WHERE run_id=? AND done IS NULL ORDER BY id", (run_id,))]

    def finish_control(self, control_id: int, result: Any = None, error: str | None = None) -> None:
        self._exec("UPDATE controls SET done=?, result=?, error=? WHERE id=? AND done IS NULL",
                   (time.time(), json.dumps(result), error, control_id))

    def get_control(self, control_id: int) -> dict | None:
        r = self._query("SELECT id, run_id, action, arg, created, done, result, error FROM controls WHERE id=?",
                        (control_id,))
        if not r:
            return None
        d = dict(zip(("id", "run_id", "action", "arg", "created", "done", "result", "error"), r[0]))
        d["arg"] = json.loads(d["arg"]) if d["arg"] is not None else None
        d["result"] = json.loads(d["result"]) if d["result"] is not None else None
        return d

    def drop_controls(self, run_id: str, reason: str) -> None:
        """Answer every unanswered request of a run that will not see them (it ended)."""
        self._exec("UPDATE controls SET done=?, error=? WHERE run_id=? AND done IS NULL", (time.time(), reason, run_id))

    def record_change(self, run_id: str, step: int, name: str, value: Any) -> None:
        self._exec("INSERT INTO changes (run_id, step, name, value, created) VALUES (?,?,?,?,?)",
                   (run_id, int(step), name, json.dumps(value), time.time()))

    def changes(self, run_id: str) -> list[tuple[int, str, Any]]:
        """(step, name, value) of the changes the run applied live, in the order they took effect."""
        return [(s, n, json.loads(v)) for s, n, v in self._query(
            "SELECT step, name, value FROM changes WHERE run_id=? ORDER BY step, rowid", (run_id,))]

    def truncate_after(self, run_id: str, step: int, epoch: int) -> None:
        """Forget what a run logged after a checkpoint (its resume logs those steps again)."""
        self._exec("DELETE FROM metrics WHERE run_id=? AND (step>? OR (step=? AND key NOT LIKE 'test/%' "
                   "AND key NOT IN ('epoch', 'info/steps_per_epoch')))",
                   (run_id, step, step))
        self._exec("DELETE FROM telemetry WHERE run_id=? AND step>=?", (run_id, step))
        for (p,) in self._query("SELECT path FROM snapshots WHERE run_id=? AND step>=?", (run_id, step)):
            (self.run_dir(run_id) / "snapshots" / Path(p).name).unlink(missing_ok=True)
        self._exec("DELETE FROM snapshots WHERE run_id=? AND step>=?", (run_id, step))
        for (p,) in self._query("SELECT path FROM checkpoints WHERE run_id=? AND epoch>?", (run_id, epoch)):
            (self.run_dir(run_id) / "checkpoints" / Path(p).name).unlink(missing_ok=True)
        self._exec("DELETE FROM checkpoints WHERE run_id=? AND epoch>?", (run_id, epoch))

    def reopen(self, run_id: str) -> None:
        """A resumed run is live again: no end time, no error, no pending stop. Temporary files
        a killed writer left behind (never read: the real names are only ever renamed into) go."""
        for tmp in self.run_dir(run_id).rglob(".*.tmp"):
            pid = tmp.name.rsplit(".", 2)[-2]
            if not pid.isdigit() or not pid_alive(int(pid)):
                tmp.unlink(missing_ok=True)
        self._sweep_checkpoints(run_id)
        self.drop_controls(run_id, "the run was resumed")
        now = time.time()
        # shift the start by the pause, so ended - started stays the time spent running
        self._exec("UPDATE runs SET status='starting', started=CASE WHEN started IS NOT NULL AND ended IS NOT NULL "
                   "THEN started + (? - ended) END, ended=NULL, error=NULL, stop_requested=0, pid=NULL, "
                   "heartbeat=? WHERE id=?", (now, now, run_id))

    def claim_queued(self, run_id: str) -> bool:
        """queued -> starting in one statement, unless a cancel (stop request) came first: the
        queue worker's check and its start cannot be split by a cancel. True when claimed."""
        cur = self._exec("UPDATE runs SET status='starting', ended=NULL, error=NULL, pid=NULL, heartbeat=? "
                         "WHERE id=? AND status='queued' AND stop_requested=0", (time.time(), run_id))
        return cur.rowcount == 1

    def set_config(self, run_id: str, config: dict) -> None:
        """A resumed run's new plan (`train --resume ID --epochs N`)."""
        self._exec("UPDATE runs SET config=? WHERE id=?", (json.dumps(config), run_id))

    def delete_run(self, run_id: str) -> None:
        """Forget a run's rows (its folder is the caller's to remove)."""
        for table in ("metrics", "telemetry", "snapshots", "checkpoints"):
            self._exec(f"DELETE FROM {table} WHERE run_id=?", (run_id,))
        self._exec("DELETE FROM runs WHERE id=?", (run_id,))

    def request_stop(self, run_id: str) -> None:
        self._exec("UPDATE runs SET stop_requested=1 WHERE id=?", (run_id,))

    def end_run(self, run_id: str, status: str, *, error: str | None = None,
                summary: dict | None = None) -> None:
        assert status in TERMINAL
        self.drop_controls(run_id, f"the run has {status}")
        self._exec("UPDATE runs SET status=?, ended=?, error=?, summary=COALESCE(?, summary) WHERE id=?",
                   (status, time.time(), error, json.dumps(summary) if summary is not None else None, run_id))

    def get_run(self, run_id: str) -> dict | None:
        self.reap()
        rows = self._query("SELECT * FROM runs WHERE id=?", (run_id,))
        return self._run_row(rows[0]) if rows else None

    def list_runs(self, limit: int = 1000) -> list[dict]:
        self.reap()
        rows = self._query("SELECT * FROM runs ORDER BY created DESC LIMIT ?", (limit,))
        runs = [self._run_row(r) for r in rows]
        if runs:
            # only the listed runs' rows, through the (run_id, key, step) index: a page listing the
            # newest runs must not scan every metric of every run
            ids = [r["id"] for r in runs] if len(runs) <= 999 else []     # SQLite's bound on parameters
            where = f"run_id IN ({','.join('?' * len(ids))}) AND " if ids else ""
            best = dict(self._query(f"SELECT run_id, MAX(value) FROM metrics WHERE {where}"
                                    "key='test/accuracy' GROUP BY run_id", ids))
            # the thread budget each run started with (the latest start, for a resumed run)
            threads = dict(self._query(f"SELECT run_id, value FROM metrics WHERE {where}"
                                       "key='info/threads' ORDER BY step", ids))
            for r in runs:
                r["best_accuracy"] = best.get(r["id"])
                r["threads"] = int(threads[r["id"]]) if r["id"] in threads else None
        return runs

    def ids_with_status(self, status: str) -> list[str]:
        """Ids of the runs in one status, oldest first (the queue's order), without parsing them."""
        return [r[0] for r in self._query("SELECT id FROM runs WHERE status=? ORDER BY created, id", (status,))]

    def runs_with_status(self, *statuses: str) -> list[dict]:
        """The runs in these statuses, oldest first, as get_run gives them (no metric summaries)."""
        self.reap()
        rows = self._query(f"SELECT * FROM runs WHERE status IN ({','.join('?' * len(statuses))}) "
                           "ORDER BY created, id", statuses)
        return [self._run_row(r) for r in rows]

    def _run_row(self, row: tuple) -> dict:
        cols = ["id", "name", "config", "status", "created", "started", "ended", "error", "pid", "host",
                "device", "heartbeat", "epoch", "step", "total_steps", "stop_requested", "summary"]
        r = dict(zip(cols, row))
        r["config"] = json.loads(r["config"])
        r["summary"] = json.loads(r["summary"]) if r["summary"] else None
        return r

    def reap(self) -> list[str]:
        """Mark live runs whose process is gone (on this host) as failed; returns their ids."""
        host = socket.gethostname()
        rows = self._query("SELECT id, pid, created, heartbeat FROM runs "
                           "WHERE status IN ('starting','running','paused') AND host=?", (host,))
        dead = []
        for run_id, pid, created, beat in rows:
            if pid is None and time.time() - max(created or 0, beat or 0) < 30:
                continue  # the launcher has not recorded the pid yet
            if not pid_alive(pid):
                dead.append(run_id)
        for run_id in dead:
            self._exec("UPDATE runs SET status='failed', ended=?, error=? WHERE id=? "
                       "AND status IN ('starting','running','paused')",
                       (time.time(), "process ended unexpectedly", run_id))
            self.drop_controls(run_id, "the run's process ended")
        return dead

    # ---- metrics and telemetry -------------------------------------------------------------
    def log_metrics(self, run_id: str, rows: list[tuple[int, int, str, float]]) -> None:
        """rows: (step, epoch, key, value)."""
        now = time.time()
        self._many("INSERT INTO metrics (run_id, step, epoch, time, key, value) VALUES (?,?,?,?,?,?)",
                   [(run_id, s, e, now, k, float(v)) for s, e, k, v in rows])

    def log_telemetry(self, run_id: str, rows: list[tuple[int, str, float]]) -> None:
        """rows: (step, key, value)."""
        self._many("INSERT INTO telemetry (run_id, step, key, value) VALUES (?,?,?,?)",
                   [(run_id, s, k, float(v)) for s, k, v in rows])

    def metrics(self, run_id: str, since_step: int = -1) -> list[tuple[int, int, str, float]]:
        return self._query("SELECT step, epoch, key, value FROM metrics WHERE run_id=? AND step>? ORDER BY step",
                           (run_id, since_step))

    def telemetry(self, run_id: str, since_step: int = -1) -> list[tuple[int, str, float]]:
        return self._query("SELECT step, key, value FROM telemetry WHERE run_id=? AND step>? ORDER BY step",
                           (run_id, since_step))

    def final_values(self, run_id: str) -> dict[str, float]:
        """Each quantity the run recorded (metrics and the rule's telemetry, by key), at its end:
        the mean of its rows in the run's last completed epoch (the steps after the one-but-last
        'epoch' row, up to the last), so a per-step quantity (a gate, a rate) is not one batch's
        noise and a per-epoch one (test/loss) is its last value. A run with no epoch rows (a
        rule with its own loop): the rows in the last 10 % of its steps. 'epoch' and 'info/*' are
        left out; a key in both tables is the telemetry's (the rule's own value)."""
        ends = [s for (s,) in self._query(
            "SELECT step FROM metrics WHERE run_id=? AND key='epoch' ORDER BY step", (run_id,))]
        if ends:
            lo, hi = (ends[-2] if len(ends) > 1 else -1), ends[-1]
        else:
            top = max((s for (s,) in self._query("SELECT MAX(step) FROM metrics WHERE run_id=? UNION ALL "
                                                  "SELECT MAX(step) FROM telemetry WHERE run_id=?",
                                                  (run_id, run_id)) if s is not None), default=None)
            if top is None:
                return {}
            lo, hi = min(math.floor(0.9 * top), top - 1), top
        out: dict[str, float] = {}
        for table in ("metrics", "telemetry"):
            for key, v in self._query(f"SELECT key, AVG(value) FROM {table} WHERE run_id=? AND step>? AND step<=? "
                                      "AND key!='epoch' AND key NOT LIKE 'info/%' GROUP BY key", (run_id, lo, hi)):
                if v is not None:
                    out[key] = float(v)
        return dict(sorted(out.items()))

    def metrics_frame(self, run_id: str, table: str = "metrics"):
        """Wide pandas frame: one row per step, one column per key."""
        import pandas as pd
        if table == "metrics":
            rows = self._query("SELECT step, key, value FROM metrics WHERE run_id=?", (run_id,))
        else:
            rows = self._query("SELECT step, key, value FROM telemetry WHERE run_id=?", (run_id,))
        if not rows:
            return pd.DataFrame()
        df = pd.DataFrame(rows, columns=["step", "key", "value"])
        return df.pivot_table(index="step", columns="key", values="value", aggfunc="last").sort_index()

    # ---- files ---------------------------------------------------------------------------
    def save_snapshot(self, run_id: str, step: int, epoch: int, arrays: dict[str, np.ndarray],
                      keep: int = 50) -> Path:
        d = self.run_dir(run_id) / "snapshots"
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"step{step:09d}.npz"
        buf = io.BytesIO()
        # small snapshots (a digits run's rasters: ~30 KB) uncompressed: zlib took half the cost of a
        # snapshot, ~5 % of a small model's training time at the default record_every
        size = sum(np.asarray(a).nbytes for a in arrays.values())
        (np.savez_compressed if size > SNAPSHOT_COMPRESS_ABOVE else np.savez)(buf, **arrays)
        atomic_write_bytes(path, buf.getvalue(), durable=False)
        self._exec("INSERT INTO snapshots (run_id, step, epoch, path, created) VALUES (?,?,?,?,?)",
                   (run_id, step, epoch, path.name, time.time()))
        old = self._query("SELECT step, path FROM snapshots WHERE run_id=? ORDER BY step DESC LIMIT -1 OFFSET ?",
                          (run_id, keep))
        for s, p in old:  # bounded on disk: keep the newest `keep`
            (d / p).unlink(missing_ok=True)
        if old:
            self._exec("DELETE FROM snapshots WHERE run_id=? AND step<=?", (run_id, old[0][0]))
        return path

    def snapshot_steps(self, run_id: str) -> list[int]:
        return [r[0] for r in self._query("SELECT step FROM snapshots WHERE run_id=? ORDER BY step", (run_id,))]

    def load_snapshot(self, run_id: str, step: int | None = None) -> dict[str, np.ndarray] | None:
        if step is None:
            rows = self._query("SELECT step, path FROM snapshots WHERE run_id=? ORDER BY step DESC LIMIT 1", (run_id,))
        else:
            rows = self._query("SELECT step, path FROM snapshots WHERE run_id=? AND step=?", (run_id, step))
        if not rows:
            return None
        path = self.run_dir(run_id) / "snapshots" / Path(rows[0][1]).name
        try:
            with np.load(path, allow_pickle=False) as z:
                out = {k: z[k] for k in z.files}
        except (OSError, ValueError):
            return None
        out["step"] = np.array(rows[0][0])
        return out

    def save_checkpoint(self, run_id: str, epoch: int, step: int, state: dict[str, Any], *,
                        score: float | None = None, weights: dict[str, Any] | None = None,
                        keep: int = 2, history: int = 50) -> Path:
        """Write epoch's full checkpoint and, where the epoch is a weight-history point, its
        weights-only state `weights`; then retire what the bounds no longer keep:
        full checkpoints: the newest `keep` and the best by `score` (earliest on a tie);
        weights-only: at most `history` points, the epochs that are multiples of
        history_stride(epoch, history) (spread evenly, however long the run becomes).
        Crash-safe: new files are durable before anything goes, and a row leaves the database
        before its file, so every row names a file (a file left without a row is swept by reopen)."""
        d = self.run_dir(run_id) / "checkpoints"
        d.mkdir(parents=True, exist_ok=True)
        path = self._write_checkpoint(run_id, d, epoch, step, state, "full", score)
        stride = history_stride(epoch, history)
        if weights is not None and stride and epoch % stride == 0:
            self._write_checkpoint(run_id, d, epoch, step, weights, "weights", score)
        self._retire(run_id, d, epoch, max(1, int(keep)), stride)
        return path

    def _write_checkpoint(self, run_id: str, d: Path, epoch: int, step: int, state: dict, kind: str,
                          score: float | None) -> Path:
        import torch
        path = d / (f"epoch{epoch:05d}.pt" if kind == "full" else f"epoch{epoch:05d}.weights.pt")
        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write_bytes(path, buf.getvalue())
        kind_is = "(kind IS NULL OR kind='full')" if kind == "full" else "kind='weights'"
        self._exec(f"DELETE FROM checkpoints WHERE run_id=? AND epoch=? AND {kind_is}", (run_id, epoch))
        self._exec("INSERT INTO checkpoints (run_id, epoch, step, path, created, kind, score) VALUES (?,?,?,?,?,?,?)",
                   (run_id, epoch, step, path.name, time.time(), kind, score))
        return path

    def _retire(self, run_id: str, d: Path, epoch: int, keep: int, stride: int) -> None:
        rows = self._query("SELECT epoch, step, path, kind, score FROM checkpoints WHERE run_id=? ORDER BY epoch",
                           (run_id,))
        full = [r for r in rows if r[3] in (None, "full")]
        weights = {r[0] for r in rows if r[3] == "weights"}
        kept = {r[0] for r in full[-keep:]}
        scored = [r for r in full if r[4] is not None]
        if scored:
            kept.add(max(scored, key=lambda r: (r[4], -r[0]))[0])
        for e, s, p, kind, score in rows:
            if kind in (None, "full"):
                if e in kept:
                    continue
                if stride and e % stride == 0 and e not in weights:
                    self._to_weights_only(run_id, d, e, s, p, score)   # e.g. written before history existed
            elif not stride or e % stride == 0:
                continue
            self._exec("DELETE FROM checkpoints WHERE run_id=? AND epoch=? AND path=?", (run_id, e, p))
            (d / Path(p).name).unlink(missing_ok=True)

    def _to_weights_only(self, run_id: str, d: Path, epoch: int, step: int, name: str, score) -> None:
        import torch
        try:
            state = torch.load(d / Path(name).name, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 -- unreadable: nothing to keep of it
            return
        if isinstance(state, dict):
            self._write_checkpoint(run_id, d, epoch, step, weights_only_state(state), "weights", score)

    def _sweep_checkpoints(self, run_id: str) -> None:
        """Delete checkpoint files no row names (a process killed between a row's removal and its
        file's)."""
        d = self.run_dir(run_id) / "checkpoints"
        if not d.is_dir():
            return
        named = {Path(p).name for (p,) in self._query("SELECT path FROM checkpoints WHERE run_id=?", (run_id,))}
        for f in d.iterdir():
            if CHECKPOINT_NAME.match(f.name) and f.name not in named:
                f.unlink(missing_ok=True)

    def checkpoints(self, run_id: str, full: bool = False) -> list[tuple[int, int, Path]]:
        """(epoch, step, path) by epoch: every retained point, the full checkpoint where an epoch has
        both (Inspect's epochs); full=True: only full checkpoints (what a resume can continue from)."""
        d = self.run_dir(run_id) / "checkpoints"
        rows = self._query("SELECT epoch, step, path, kind FROM checkpoints WHERE run_id=? "
                           "ORDER BY epoch, kind='weights'", (run_id,))
        out: dict[int, tuple[int, int, Path]] = {}
        for e, s, p, kind in rows:
            if (kind == "weights" and full) or e in out:
                continue
            out[e] = (e, s, d / Path(p).name)
        return list(out.values())


def history_stride(epoch: int, history: int) -> int:
    """The spacing of the weight history after `epoch` epochs: the smallest power of two k with
    epoch // k <= history (0: no history). Doubling k only drops points (the odd multiples), so the
    kept points stay evenly spread and the newest point is never further than k epochs back."""
    if history <= 0:
        return 0
    k = 1
    while epoch // k > history:
        k *= 2
    return k


# "loop": the loop state of a rule that runs its own loop (it holds that rule's network);
# position keys are "<unit>s_done" (epochs_done, or an own-loop rule's checkpoint unit)
WEIGHTS_ONLY_KEYS = ("model", "loop", "config", "step", "best", "world")


def weights_only_state(state: dict[str, Any]) -> dict[str, Any]:
    """What Inspect reads of a checkpoint (network weights, config, position), without the
    optimizer, schedule, rule and RNG state a resume needs."""
    return {k: v for k, v in state.items() if k in WEIGHTS_ONLY_KEYS or k.endswith("s_done")}
