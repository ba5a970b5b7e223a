"""`python -m snncore sweep ...` and `python -m snncore sweeps [--json]`.

Every `train` flag also goes on `sweep` and sets the base config (parsed by train's own parser);
the sweep's own flags are below. Bad input: one line on stderr, exit 2, before Ray starts.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


# keys of the Trainer's summary a sweep can rank trials by
METRICS = ("test_accuracy", "best_test_accuracy", "seconds", "steps")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _fail(message: str, code: int = 2):
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def _sweep_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--grid", action="append", default=[], metavar="NAME=v1,v2",
                   help="values of a config field or rule hyperparameter (RULE.NAME or NAME); repeatable")
    p.add_argument("--range", action="append", default=[], metavar="NAME=lo:hi[:log]",
                   help="a real interval for --search random|optuna; repeatable")
    p.add_argument("--seeds", type=int, default=1, help="seeds per point (seed, seed+1, ...)")
    p.add_argument("--search", default="grid", choices=("grid", "random", "optuna"))
    p.add_argument("--trials", type=int, default=0, help="trials for random/optuna search")
    p.add_argument("--metric", default="test_accuracy", help="a key of the run's summary (default test_accuracy)")
    p.add_argument("--mode", default="max", choices=("max", "min"))
    p.add_argument("--scheduler", default="none", choices=("none", "asha"),
                   help="asha: stop poor trials early from their per-epoch test accuracy")
    p.add_argument("--max-concurrent", type=int, default=0, help="trials at once (default: cores / cpus-per-trial)")
    p.add_argument("--cpus-per-trial", type=float, default=1.0, help="Ray CPUs (= threads) per trial")
    p.add_argument("--gpus-per-trial", type=float, default=0.0, help="Ray GPUs per trial (fractions share one)")
    p.add_argument("--retries", type=int, default=0, help="times a trial lost with its node is retried")
    p.add_argument("--address", default="", help="join a Ray cluster: auto or HOST:PORT (default: a local Ray)")
    p.add_argument("--name", default="", help="the sweep's label (its runs are named NAME.<trial>)")
    p.add_argument("--resume", metavar="SWEEP_ID", help="continue a stopped sweep; finished trials are kept")
    p.add_argument("--runs-dir", help="runs folder (default: $SNNCORE_RUNS or ./runs)")
    p.add_argument("--json", action="store_true", help="last line: one JSON object")


def add_parsers(subparsers) -> None:
    """Register `sweep` and `sweeps` (train's flags on `sweep` are parsed by train's parser)."""
    s = subparsers.add_parser("sweep", help="many runs over a grid / range and seeds, with Ray Tune "
                              "(every train flag sets the base config; --json)", add_help=False)
    s.set_defaults(sweep_cmd="sweep")
    l = subparsers.add_parser("sweeps", help="list sweeps with status and best run ([--json])")
    l.add_argument("--runs-dir")
    l.add_argument("--json", action="store_true")
    l.set_defaults(sweep_cmd="sweeps")


def sweep_parser() -> _Parser:
    p = _Parser(prog="python -m snncore sweep", allow_abbrev=False,
                description="Sweep ordinary runs over hyperparameters and seeds with Ray Tune. Every "
                            "`train` flag (see `python -m snncore train --help`) sets the base config.")
    _sweep_args(p)
    return p


def _base_config(rest: list[str]):
    """The base RunConfig from the train flags, through train's own parser and config_from_args."""
    from .. import __main__ as cli
    from ..config import ConfigError
    argv = ["train", *rest]
    try:
        args = cli.build_parser(argv).parse_args(argv)
        return cli.config_from_args(args, note=False)
    except ConfigError as e:
        _fail(str(e))


def _print(summary: dict, as_json: bool) -> None:
    if as_json:
        from ..__main__ import _finite
        print(json.dumps(_finite({k: summary[k] for k in ("sweep_id", "status", "trials", "finished", "failed",
                                                          "best", "seconds")})))
        return
    b = summary["best"]
    best = f"best {summary['metric']} {b['metric']:.4f} (run {b['run_id']}, {b['point']})" if b else "no finished trial"
    print(f"sweep {summary['sweep_id']} {summary['status']}: {summary['finished']}/{summary['trials']} trials "
          f"finished, {summary['failed']} failed; {best}; {summary['seconds']:.1f}s")


def run_sweep(args) -> int:
    """args: the sweep parser's namespace plus .rest (the train flags)."""
    from . import engine
    from .spec import SweepError, parse_spec
    from ..store import check_run_id, default_runs_dir
    root = Path(args.runs_dir) if args.runs_dir else default_runs_dir()
    opts = engine.Options(metric=args.metric, mode=args.mode, scheduler=args.scheduler,
                          max_concurrent=args.max_concurrent, cpus_per_trial=args.cpus_per_trial,
                          gpus_per_trial=args.gpus_per_trial, address=args.address, name=args.name,
                          retries=args.retries)
    try:
        if args.resume:
            if args.rest or args.grid or args.range:
                _fail("--resume continues a sweep with its stored spec; give no grid or config flags with it")
            check_run_id(args.resume)
            summary = engine.resume(root, args.resume)
        else:
            for flag, v, lo in (("--max-concurrent", args.max_concurrent, 0), ("--retries", args.retries, 0)):
                if v < lo:
                    _fail(f"{flag} {v}: give {lo} or more")
            if args.cpus_per_trial <= 0 or args.gpus_per_trial < 0:
                _fail("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0")
            if args.name and not all(c.isalnum() or c in "_.- " for c in args.name):
                _fail("--name: use letters, digits, spaces, '.', '_' or '-'")
            base = _base_config(args.rest)
            spec = parse_spec(base, args.grid, args.range, seeds=args.seeds, search=args.search,
                              trials=args.trials)
            if args.metric not in METRICS:
                _fail(f"--metric {args.metric!r}: choose one of {', '.join(METRICS)} (keys of a run's summary)")
            if args.metric != "test_accuracy" and args.scheduler == "asha":
                _fail("--scheduler asha decides on the per-epoch test_accuracy; use --metric test_accuracy")
            from ..data import DatasetError, prepare_dataset
            try:
                prepare_dataset(__import__("snncore.config", fromlist=["RunConfig"]).RunConfig.from_dict(spec.base))
            except DatasetError as e:
                _fail(str(e))
            summary = engine.start(spec, opts, root)
    except (SweepError, ValueError) as e:
        _fail(str(e))
    _print(summary, args.json)
    return 0 if summary["status"] == "finished" else 1


def run_sweeps(args) -> int:
    from . import engine
    from ..store import default_runs_dir
    root = Path(args.runs_dir) if args.runs_dir else default_runs_dir()
    rows = engine.list_sweeps(root)
    if args.json:
        from ..__main__ import _finite
        print(json.dumps(_finite(rows)))
        return 0
    if not rows:
        print(f"no sweeps in {root}")
        return 0
    print(f"{'sweep id':28} {'status':9} {'trials':>6} {'done':>5} {'failed':>6} {'best':>8}  started")
    for r in rows:
        best = "-" if not r["best"] else f"{r['best']['metric']:.4f}"
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created"] or 0))
        print(f"{r['sweep_id']:28} {r['status']:9} {r['trials']:>6} {r['finished']:>5} {r['failed']:>6} {best:>8}  {when}")
    return 0


def main(argv: list[str]) -> int:
    """argv[0] is 'sweep' or 'sweeps'."""
    cmd, rest = argv[0], list(argv[1:])
    if cmd == "sweeps":
        p = _Parser(prog="python -m snncore sweeps")
        p.add_argument("--runs-dir")
        p.add_argument("--json", action="store_true")
        return run_sweeps(p.parse_args(rest))
    args, train_flags = sweep_parser().parse_known_args(rest)
    args.rest = train_flags
    return run_sweep(args)
