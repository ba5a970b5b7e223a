"""python -m snncore runs: list the runs with status, rule, dataset and best accuracy (--json: a list)."""
from __future__ import annotations

import argparse
import time

from .common import fail, print_json

NAME = "runs"


def add_parser(sub, argv) -> argparse.ArgumentParser:
    r = sub.add_parser("runs", help="list runs with status, rule, dataset and best accuracy")
    r.add_argument("--runs-dir")
    r.add_argument("--json", action="store_true")
    return r


def run(args) -> int:
    from ..health import chance_warning
    from ..store import RunStore, StoreError
    try:
        store = RunStore(args.runs_dir)
    except StoreError as e:
        fail(str(e))
    runs = store.list_runs()
    rows = [{"run_id": r["id"], "status": r["status"], "rule": r["config"].get("rule"),
             "dataset": r["config"].get("dataset"), "model": r["config"].get("model"),
             "best_accuracy": r.get("best_accuracy"), "epoch": r["epoch"], "step": r["step"],
             "created": r["created"], "error": r["error"], "name": r["name"],
             "warning": chance_warning(r), "threads": r.get("threads")} for r in runs]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print(f"no runs in {store.root}")
        return 0
    print(f"{'run id':24} {'status':9} {'rule':8} {'dataset':10} {'best acc':>8}  started")
    for r in rows:
        acc = "-" if r["best_accuracy"] is None else f"{r['best_accuracy']:.4f}"
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created"] or 0))
        print(f"{r['run_id']:24} {r['status']:9} {r['rule']:8} {r['dataset']:10} {acc:>8}  {when}"
              + (f"  ({r['error']})" if r["error"] else "")
              + ("  (warning: accuracy at chance level; --json has the details)" if r["warning"] else ""))
    return 0
