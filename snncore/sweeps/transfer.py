"""One run moved between RunStores: its rows (runs, metrics, telemetry, snapshots, checkpoints) and
the files of its folder (snapshots/, checkpoints/, tb/, the sweep tag), as one picklable bundle.

A sweep's trial on a node other than the driver's trains into a node-local scratch RunStore and
ships its run with these to the driver's store under the same run id (no shared filesystem).
`import_run` replaces whatever the target held of that run id, so shipping again after each
epoch, or a retried trial shipping over a lost attempt, leaves one copy: the latest.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from ..store import RunStore, atomic_write_bytes, check_run_id

TABLES = ("metrics", "telemetry", "snapshots", "checkpoints")    # rows keyed by run_id; runs by id


def _columns(store: RunStore, table: str) -> list[str]:
    return [r[1] for r in store._query(f"PRAGMA table_info({table})")]


def _files(run_dir: Path) -> dict[str, Path]:
    """The run folder's files by relative path; a writer's temporary file (.name.pid.tmp) is not one."""
    if not run_dir.is_dir():
        return {}
    return {p.relative_to(run_dir).as_posix(): p for p in sorted(run_dir.rglob("*"))
            if p.is_file() and not (p.name.startswith(".") and p.name.endswith(".tmp"))}


def export_run(store: RunStore, run_id: str, sent: dict | None = None) -> dict:
    """The run as a bundle {run_id, tables: {table: (columns, rows)}, files: {relpath: bytes},
    names: [every relpath]}. `sent` (relpath -> (size, mtime_ns), updated here) leaves out files
    unchanged since an earlier export to the same target: `names` still lists them all, so the
    importer keeps those and deletes only what is gone."""
    check_run_id(run_id)
    tables = {}
    for t in ("runs",) + TABLES:
        cols = _columns(store, t)
        key = "id" if t == "runs" else "run_id"
        tables[t] = (cols, [tuple(r) for r in store._query(f"SELECT {', '.join(cols)} FROM {t} WHERE {key}=?",
                                                             (run_id,))])
    if not tables["runs"][1]:
        raise KeyError(f"run {run_id} is not in {store.root}")
    files, names = {}, []
    for rel, p in _files(store.run_dir(run_id)).items():
        try:
            st = p.stat()
            sig = (st.st_size, st.st_mtime_ns)
            names.append(rel)
            if sent is not None and sent.get(rel) == sig:
                continue
            files[rel] = p.read_bytes()
        except FileNotFoundError:           # retired (snapshot / checkpoint bound) while we listed
            continue
        if sent is not None:
            sent[rel] = sig
    return {"run_id": run_id, "tables": tables, "files": files, "names": names}


def import_run(store: RunStore, bundle: dict) -> str:
    """Write an exported run into `store` under its own id, replacing what was there of it: its
    rows in one transaction, its files written atomically, files no longer in the bundle deleted.
    Read back through RunStore's API it is the run that was exported."""
    run_id = check_run_id(bundle["run_id"])
    d = store.run_dir(run_id)
    for rel, data in bundle["files"].items():
        path = (d / rel).resolve()
        if d.resolve() not in path.parents:
            raise ValueError(f"run {run_id}: file {rel!r} is outside its folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data, durable=False)
    tables = bundle["tables"]

    def write():
        db = store._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM runs WHERE id=?", (run_id,))
            for t in TABLES:
                db.execute(f"DELETE FROM {t} WHERE run_id=?", (run_id,))
            for t, (cols, rows) in tables.items():
                here = set(_columns(store, t))
                keep = [i for i, c in enumerate(cols) if c in here]   # a column the target lacks: dropped
                if rows:
                    db.executemany(f"INSERT INTO {t} ({', '.join(cols[i] for i in keep)}) VALUES "
                                   f"({', '.join('?' * len(keep))})", [tuple(r[i] for i in keep) for r in rows])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    store._retry(write)
    wanted = set(bundle["names"])
    for rel, p in _files(d).items():
        if rel not in wanted:
            p.unlink(missing_ok=True)
    for sub in ("snapshots", "checkpoints"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    return run_id


def drop_run(store: RunStore, run_id: str) -> None:
    """Forget a run: its rows and its folder (a lost trial's attempt, before its point runs again)."""
    check_run_id(run_id)
    store._exec("DELETE FROM runs WHERE id=?", (run_id,))
    for t in TABLES:
        store._exec(f"DELETE FROM {t} WHERE run_id=?", (run_id,))
    shutil.rmtree(store.run_dir(run_id), ignore_errors=True)


class Collector:
    """The driver's end of the channel (a Ray actor pinned to the driver's node, one call at a
    time): imports shipped runs into the driver's RunStore and writes trial records."""

    def __init__(self, runs_root: str, sweep_dir: str):
        self.store = RunStore(runs_root)
        self.trials = Path(sweep_dir) / "trials"

    def import_run(self, bundle: dict) -> str:
        return import_run(self.store, bundle)

    def drop_run(self, run_id: str) -> None:
        drop_run(self.store, run_id)

    def put_record(self, key: str, rec: dict) -> None:
        from .engine import _write_json
        _write_json(self.trials / f"{key}.json", rec)

    def get_record(self, key: str) -> dict | None:
        import json
        p = self.trials / f"{key}.json"
        try:
            return json.loads(p.read_text())
        except (OSError, ValueError):
            return None

    def ping(self) -> bool:
        return True
