"""`python -m snncore sweep ...` and `python -m snncore sweeps [--json]`.

Every `train` flag also goes on `sweep` and sets the base config (parsed by train's own parser);
the sweep's own flags are below. Bad input: one line on stderr, exit 2, before Ray starts.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .common import Parser, fail, print_json


from ..sweeps.engine import METRICS  # noqa: F401 -- the keys a sweep ranks by (the page's choices)


def _sweep_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--grid", action="append", default=[], metavar="NAME=v1,v2",
                   help="values of a config field or rule hyperparameter (RULE.NAME or NAME); a list value "
                        "in brackets: hidden=[256,128],[512]; repeatable")
    p.add_argument("--range", action="append", default=[], metavar="NAME=lo:hi[:log]",
                   help="a real interval for --search random|optuna; repeatable")
    p.add_argument("--seeds", type=int, default=1, help="seeds per point (seed, seed+1, ...)")
    p.add_argument("--configs", metavar="FILE",
                   help="sweep these whole configs instead (TOML [[run]] tables or a JSON list; "
                        "each its own seed); no --grid/--range/--seeds or train flags with it")
    p.add_argument("--search", default="grid", choices=("grid", "random", "optuna"))
    p.add_argument("--trials", type=int, default=0, help="trials for random/optuna search")
    p.add_argument("--metric", default="test_accuracy",
                   help="a key of the run's summary (default test_accuracy), or a key the runs record "
                        "(train/loss, sync/fc1, a rule's gate_mean/fc1: its mean over the last epoch)")
    p.add_argument("--mode", default="max", choices=("max", "min"))
    p.add_argument("--scheduler", default="none", choices=("none", "asha"),
                   help="asha: stop poor trials early from their per-epoch test accuracy")
    p.add_argument("--max-concurrent", type=int, default=0, help="trials at once (default: the Ray cluster's CPUs / cpus-per-trial)")
    p.add_argument("--cpus-per-trial", type=float, default=1.0, help="Ray CPUs (= threads) per trial")
    p.add_argument("--gpus-per-trial", type=float, default=0.0,
                   help="Ray GPUs per trial (0.5: two trials share one); for --device cuda or auto")
    p.add_argument("--retries", type=int, default=0, help="times a trial lost with its node is retried")
    p.add_argument("--address", default="", help="join a Ray cluster: auto or HOST:PORT (default: a local Ray)")
    p.add_argument("--name", default="", help="the sweep's label (its runs are named NAME.<trial>)")
    p.add_argument("--resume", metavar="SWEEP_ID", help="continue a stopped sweep; finished trials are kept")
    p.add_argument("--sweep-id", help=argparse.SUPPRESS)   # an id chosen by the caller (the app's Launch)
    p.add_argument("--runs-dir", help="runs folder (default: $SNNCORE_RUNS or ./runs)")
    p.add_argument("--json", action="store_true", help="last line: one JSON object")


def sweep_parser() -> Parser:
    p = Parser(prog="python -m snncore sweep", allow_abbrev=False,
                description="Sweep ordinary runs over hyperparameters and seeds with Ray Tune. Every "
                            "`train` flag (see `python -m snncore train --help`) sets the base config.")
    _sweep_args(p)
    return p


def _base_config(rest: list[str]):
    """The base RunConfig from the train flags, through train's own parser and config_from_args."""
    from ..config import ConfigError
    from . import build_parser
    from .common import config_from_args
    argv = ["train", *rest]
    try:
        args = build_parser(argv).parse_args(argv)
        return config_from_args(args, note=False)
    except ConfigError as e:
        fail(str(e))


def _print(summary: dict, as_json: bool) -> None:
    if summary["status"] == "failed" and summary.get("error"):
        print(f"error: the sweep's driver failed: {summary['error']}", file=sys.stderr)
    if as_json:
        keys = ("sweep_id", "status", "trials", "finished", "failed", "best", "seconds")
        print_json({k: summary[k] for k in keys} | ({"error": summary["error"]} if summary.get("error") else {}))
        return
    b = summary["best"]
    best = f"best {summary['metric']} {b['metric']:.4f} (run {b['run_id']}, {b['point']})" if b else "no finished trial"
    early = f", {summary['early_stopped']} stopped early (asha)" if summary.get("early_stopped") else ""
    print(f"sweep {summary['sweep_id']} {summary['status']}: {summary['finished']}/{summary['trials']} trials "
          f"finished{early}, {summary['failed']} failed; {best}; {summary['seconds']:.1f}s")
    if summary["status"] == "stopped":
        print(f"continue it with: python -m snncore sweep --resume {summary['sweep_id']}")


def _value(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def progress_line(kind: str, info: dict) -> str:
    """One line for the engine's event (engine._Progress): the sweep starting, then each trial as it
    ends, so a long sweep is followed from the terminal (and the app's sweep.log)."""
    if kind == "start":
        gpus = f", {info['gpus_per_trial']:g} GPU" if info["gpus_per_trial"] else ""
        left = f"{info['todo']} of {info['trials']} trials left" if info["todo"] < info["trials"] else f"{info['trials']} trials"
        line = (f"sweep {info['sweep_id']}: {left}, {info['concurrent']} at once ({info['cpus_per_trial']:g} CPU{gpus} "
                f"each) on {info['where']} with {info['cluster_cpus']:g} CPUs")
        from ..sweeps.engine import unused_gpus
        note = unused_gpus(info["gpus_per_trial"], info.get("devices", ["auto"]), info.get("cluster_gpus", 0))
        return line + (f"; {note}" if note else "")
    point = " ".join(f"{k}={_value(v)}" for k, v in (info.get("point") or {}).items() if v is not None)  # n/a: left out
    secs = f"  {info['ended'] - info['started']:.1f}s" if info.get("ended") and info.get("started") else ""
    what = (f"{info.get('metric_name', 'metric')} {info['metric']:.4f}" if isinstance(info.get("metric"), (int, float))
            else "")
    if info["status"] == "failed":
        what = f"error: {info.get('error') or 'unknown'}"
    elif not what and info.get("error"):        # finished without the metric (a key its rule does not log)
        what = f"({info['error']})"
    run = f"  run {info['run_id']}" if info.get("run_id") else ""
    n = len(str(info["trials"]))
    return f"[{info['ended_count']:>{n}}/{info['trials']}] {info['status']:<13} {point}  {what}{run}{secs}".rstrip()


def _printer(as_json: bool, metric: str):
    """Progress lines on stdout, or on stderr with --json (whose stdout ends with the one object)."""
    import sys
    out = sys.stderr if as_json else sys.stdout

    def on_event(kind, info):
        print(progress_line(kind, {**info, "metric_name": metric}), file=out, flush=True)
    return on_event


def run_sweep(args) -> int:
    """args: the sweep parser's namespace plus .rest (the train flags)."""
    from ..sweeps import engine
    from ..sweeps.spec import SweepError, configs_spec, load_configs, parse_spec
    from ..store import check_run_id, default_runs_dir
    root = Path(args.runs_dir) if args.runs_dir else default_runs_dir()
    opts = engine.Options(metric=args.metric, mode=args.mode, scheduler=args.scheduler,
                          max_concurrent=args.max_concurrent, cpus_per_trial=args.cpus_per_trial,
                          gpus_per_trial=args.gpus_per_trial, address=args.address, name=args.name,
                          retries=args.retries)
    try:
        if args.resume:
            if args.rest or args.grid or args.range:
                fail("--resume continues a sweep with its stored spec; give no grid or config flags with it")
            check_run_id(args.resume)
            from ..sweeps.engine import Options, load_state
            st = load_state(root, args.resume)
            metric = Options(**st["options"]).metric if st else args.metric
            summary = engine.resume(root, args.resume, on_event=_printer(args.json, metric))
        else:
            if args.sweep_id:
                check_run_id(args.sweep_id)
                if (engine.sweeps_root(root) / args.sweep_id / "sweep.json").exists():
                    fail(f"--sweep-id {args.sweep_id}: a sweep with this id exists")
            if args.configs:
                if args.rest or args.grid or args.range or args.seeds != 1 or args.search != "grid":
                    fail("--configs gives whole configs; give no train flags, --grid, --range, --seeds or --search with it")
                spec = configs_spec(load_configs(args.configs))
            else:
                base = _base_config(args.rest)
                spec = parse_spec(base, args.grid, args.range, seeds=args.seeds, search=args.search,
                                  trials=args.trials)
            engine.check_options(spec, opts)
            from ..config import RunConfig
            from ..data import DatasetError, prepare_dataset
            seen = set()
            for c in spec.configs or [spec.base]:       # each dataset once, before any trial
                key = (c.get("dataset"), c.get("data_dir"))
                if key not in seen:
                    seen.add(key)
                    try:
                        prepare_dataset(RunConfig.from_dict(c))
                    except DatasetError as e:
                        fail(str(e))
            summary = engine.start(spec, opts, root, sweep_id=args.sweep_id, on_event=_printer(args.json, opts.metric))
    except (SweepError, ValueError) as e:
        fail(str(e))
    _print(summary, args.json)
    return 0 if summary["status"] == "finished" else 1


def run_sweeps(args) -> int:
    from ..sweeps import engine
    from ..store import default_runs_dir
    root = Path(args.runs_dir) if args.runs_dir else default_runs_dir()
    rows = engine.list_sweeps(root)
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print(f"no sweeps in {root}")
        return 0
    print(f"{'sweep id':28} {'status':9} {'trials':>6} {'done':>5} {'failed':>6} {'best':>8}  {'metric':22}  "
          f"{'started':16}  name")
    for r in rows:
        best = "-" if not r["best"] else f"{r['best']['metric']:.4f}"
        metric = f"{r['metric']} ({r['mode']})"
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created"] or 0))
        print(f"{r['sweep_id']:28} {r['status']:9} {r['trials']:>6} {r['finished']:>5} {r['failed']:>6} {best:>8}  "
              f"{metric:22}  {when:16}  {r.get('name') or ''}".rstrip())
    return 0


class _Sweep:
    """`sweep`: parses its own arguments (its flags, then train's for the base config)."""
    NAME = "sweep"

    @staticmethod
    def add_parser(sub, argv) -> None:
        sub.add_parser("sweep", add_help=False, help="many runs over a grid / range and seeds, with Ray Tune "
                       "(every train flag sets the base config; --json)")

    @staticmethod
    def main(argv: list[str]) -> int:
        args, train_flags = sweep_parser().parse_known_args(argv)
        args.rest = train_flags
        return run_sweep(args)


class _Sweeps:
    """`sweeps [--json]`: the sweeps in the runs folder."""
    NAME = "sweeps"

    @staticmethod
    def add_parser(sub, argv) -> None:
        p = sub.add_parser("sweeps", help="list sweeps with status and best run ([--json])")
        p.add_argument("--runs-dir", help="runs folder (default: $SNNCORE_RUNS or ./runs)")
        p.add_argument("--json", action="store_true")

    run = staticmethod(run_sweeps)


SWEEP, SWEEPS = _Sweep(), _Sweeps()
