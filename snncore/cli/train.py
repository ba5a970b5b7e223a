"""python -m snncore train: one run (progress lines; --json: the last line is a JSON summary),
--dry-run (check and print the config), --resume RUN_ID, and under torchrun one run on N processes."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback

from .common import add_config_flags, clash_epilog, config_from_args, fail, finite, print_json

NAME = "train"


def add_parser(sub, argv) -> argparse.ArgumentParser:
    t = sub.add_parser("train", help="train one run (prints progress; --json: last line is a JSON summary)",
                       epilog=clash_epilog(argv))
    t.add_argument("--config", help="TOML or JSON file with config fields (flags override it)")
    t.add_argument("--runs-dir", help="runs folder (default: $SNNCORE_RUNS or ./runs)")
    t.add_argument("--run-id", help=argparse.SUPPRESS)  # set by the app, which creates the row first
    t.add_argument("--resume", metavar="RUN_ID",
                   help="continue a stopped, failed or finished run from its last checkpoint with its stored "
                        "config; only --epochs N may go with it (the new total, above the epochs completed)")
    t.add_argument("--dry-run", action="store_true",
                   help="check the config and print it with its equivalent command; train nothing "
                        "(--json: one JSON object {\"config\": ..., \"command\": ...})")
    t.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    add_config_flags(t, argv)
    return t


def _progress_line(p) -> str:
    frac = p.step / max(p.total_steps, 1)
    eta = p.elapsed / frac - p.elapsed if frac > 0 else float("nan")
    bar = "#" * int(frac * 30)
    acc = f"  test acc {p.test_accuracy:.3f}" if p.test_accuracy is not None else ""
    return (f"\repoch {min(p.epoch + 1, p.epochs)}/{p.epochs} [{bar:<30}] step {p.step}/{p.total_steps} "
            f"{p.elapsed:5.1f}s eta {eta:5.1f}s{acc}")


def _resume_target(args):
    """(store, run_id, cfg) for --resume, or exit 2 with the reason. With --epochs N the returned
    cfg has the new total (stored by _setup_run once the run is reopened)."""
    from ..config import ConfigError, RunConfig
    from ..rules import get_rule
    from ..store import RunStore, StoreError, check_run_id
    given = [k for k, v in vars(args).items()
             if v is not None and k.split(":")[0] in ("cfg", "rp", "rule") and k != "cfg:epochs"]
    if given or args.config:
        fail("--resume continues a run with its stored config; of the config flags only --epochs N "
              "(the new total) goes with it")
    try:
        store = RunStore(args.runs_dir)
        run_id = check_run_id(args.resume)
    except (StoreError, ValueError) as e:
        fail(str(e))
    run = store.get_run(run_id)
    if run is None:
        fail(f"run {run_id!r} is not in {store.root}")
    launched_for_me = run["status"] == "starting" and run["pid"] in (None, os.getpid())   # by launch_resume
    if run["status"] in ("starting", "running", "paused") and not launched_for_me:
        fail(f"run {run_id} is still running (pid {run['pid']})")
    epochs = vars(args).get("cfg:epochs")
    if run["status"] == "finished" and epochs is None:
        fail(f"run {run_id} already finished all its epochs (to train it further: --resume {run_id} --epochs N)")
    try:
        cfg = RunConfig.from_dict(run["config"])
    except ConfigError as e:
        fail(f"run {run_id}: its stored config is no longer valid: {e}")
    checkpoints = store.checkpoints(run_id, full=True)
    if not checkpoints:
        fail(f"run {run_id} has no checkpoint to resume from (it ended before its first epoch)")
    if epochs is None:
        return store, run_id, cfg
    if getattr(get_rule(cfg.rule), "runs_own_loop", False):
        fail(f"--epochs: rule {cfg.rule!r} runs a task sequence (its length is {cfg.rule}.n_tasks), not epochs")
    try:
        cfg = RunConfig.from_dict({**cfg.to_dict(), "epochs": epochs})
    except ConfigError as e:
        fail(str(e))
    done, done_steps = checkpoints[-1][0], checkpoints[-1][1]
    if cfg.epochs <= done:
        fail(f"--epochs {cfg.epochs}: run {run_id} has completed {done} epochs; give the new total, above {done}")
    if cfg.max_steps and done_steps >= cfg.max_steps:
        fail(f"--epochs: run {run_id} ended at its max_steps ({cfg.max_steps}); more epochs would train nothing")
    return store, run_id, cfg


def _prepare_data(cfg, args) -> None:
    """Fetch / check the dataset's files before a run exists: a missing, corrupt or undownloadable
    dataset exits 2 with one line naming the file and the fix (a download shows a progress line)."""
    from ..data import DatasetError, prepare_dataset

    def progress(what, done, total):
        if sys.stderr.isatty():
            pct = f"{100 * done / total:5.1f}%" if total else f"{done / 1e6:.1f} MB"
            sys.stderr.write(f"\r{what}: {pct}")
            sys.stderr.flush()
    try:
        prepare_dataset(cfg, progress=progress)
    except DatasetError as e:
        if args.run_id:                      # the app made the run's row already: mark it failed
            try:
                from ..store import RunStore
                RunStore(args.runs_dir).end_run(args.run_id, "failed", error=str(e))
            except Exception:  # noqa: BLE001 -- the one-line message below is what matters
                pass
        fail(str(e))
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K")


def run(args) -> int:
    from .. import distributed
    if args.dry_run:
        return _dry_run(args)
    if distributed.env_world() > 1:        # launched by torchrun with several processes
        return _cmd_train_distributed(args)
    return _cmd_train(args)


def _dry_run(args) -> int:
    """--dry-run: the checks a run does before it starts (not the dataset files: nothing is fetched),
    then the config and its equivalent command; no run is created, the runs folder is not touched."""
    from ..config import ConfigError
    from ..train import resolve_device
    if args.resume:
        fail("--dry-run checks the config of a new run; it does not go with --resume")
    try:
        cfg = config_from_args(args)
        resolve_device(cfg.device)
    except (ConfigError, ValueError) as e:
        fail(str(e))
    if args.json:
        print(json.dumps({"config": finite(cfg.to_dict()), "command": cfg.command_line()}))
    else:
        print(cfg.to_toml() + "\n# the equivalent command:\n" + cfg.command_line())
    return 0


def _cmd_train(args) -> int:
    store, cfg, run_id, resume = _setup_run(args)
    return _train(args, cfg, store, run_id, resume=resume)


def _cmd_train_distributed(args) -> int:
    """torchrun: rank 0 checks the config, prepares the data and creates (or reopens) the run,
    exactly as one process would; the others wait for its outcome and train with a NullStore.
    A refusal on rank 0 (exit 2, its one line on stderr) ends every rank with the same status."""
    from .. import distributed as D
    from ..config import ConfigError
    from ..rules import get_rule
    from ..train import resolve_device
    if args.resume:
        device_name = _stored_device(args)   # rank 0 checks the run itself below
    else:
        try:
            cfg = config_from_args(args, note=False)     # rank 0 checks it again in _setup_run
            resolve_device(cfg.device)
        except (ConfigError, ValueError) as e:
            fail(str(e))
        if getattr(get_rule(cfg.rule), "runs_own_loop", False):
            fail(f"rule {cfg.rule!r} runs its own task loop in one process; start it without torchrun")
        device_name = cfg.device
    try:
        D.init_from_env(resolve_device(device_name))
    except ValueError as e:
        fail(str(e))
    except Exception as e:  # noqa: BLE001 -- e.g. rendezvous failed or timed out
        fail(f"cannot join the other processes (torch.distributed, "
              f"{os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')}): {e}")
    try:
        outcome = None
        if D.is_main():
            try:
                store, cfg, run_id, resume = _setup_run(args, several=True)
                outcome = (run_id, cfg.to_dict(), resume)
            except SystemExit as e:       # its one-line message is printed already
                outcome = int(e.code if isinstance(e.code, int) else 2)
        outcome = D.broadcast_object(outcome)
        if isinstance(outcome, int):
            raise SystemExit(outcome)
        run_id, cfg_dict, resume = outcome
        if not D.is_main():
            from ..config import RunConfig
            cfg, store = RunConfig.from_dict(cfg_dict), D.NullStore()
        rc = _train(args, cfg, store, run_id, resume=resume)
        D.shutdown(sync=True)        # every rank is done with its collectives before the group goes
        return rc
    finally:
        D.shutdown()


def _stored_device(args) -> str:
    """The device in the stored config of the --resume run, read without writing (every rank needs
    it to join the group with the right backend; rank 0 checks the run itself afterwards)."""
    import sqlite3
    from ..store import default_runs_dir
    try:
        root = os.path.abspath(args.runs_dir) if args.runs_dir else str(default_runs_dir())
        con = sqlite3.connect(f"file:{os.path.join(root, 'runs.sqlite')}?mode=ro", uri=True, timeout=30)
        try:
            row = con.execute("SELECT config FROM runs WHERE id=?", (args.resume,)).fetchone()
        finally:
            con.close()
        return str(json.loads(row[0]).get("device", "auto")) if row else "cpu"
    except Exception:  # noqa: BLE001 -- no such store or run: rank 0 reports that in one line
        return "cpu"


def _setup_run(args, several: bool = False):
    """Check the config, prepare the data, create (or reopen for --resume) the run: (store, cfg,
    run_id, resume), or exit 2 with one line. several: rank 0 of a torchrun launch."""
    from ..config import ConfigError
    from ..rules import get_rule
    from ..store import RunStore, StoreError, check_run_id
    if args.resume:
        store, run_id, cfg = _resume_target(args)
        if several and getattr(get_rule(cfg.rule), "runs_own_loop", False):
            fail(f"rule {cfg.rule!r} runs its own task loop in one process; resume it without torchrun")
        store.reopen(run_id)
        if vars(args).get("cfg:epochs") is not None:      # --epochs N: the run's new plan
            store.set_config(run_id, cfg.to_dict())
        store.set_pid(run_id, os.getpid())
        return store, cfg, run_id, True
    try:
        cfg = config_from_args(args)
        from ..train import resolve_device
        resolve_device(cfg.device)          # cuda asked for on a machine without one: refuse now
    except (ConfigError, ValueError) as e:
        fail(str(e))
    _prepare_data(cfg, args)
    try:
        store = RunStore(args.runs_dir)
    except StoreError as e:
        fail(str(e))
    run_id = args.run_id
    try:
        if run_id:
            check_run_id(run_id)
            if store.get_run(run_id) is None:
                store.create_run(cfg.to_dict(), run_id)
            store.set_pid(run_id, os.getpid())
        else:
            run_id = store.create_run(cfg.to_dict())
    except ValueError as e:
        fail(str(e))
    return store, cfg, run_id, False


def _train(args, cfg, store, run_id, resume: bool = False) -> int:
    from .. import distributed
    if not distributed.is_main():         # torchrun, ranks 1..N-1: train quietly, rank 0 reports
        return _train_quiet(cfg, store, run_id, resume)
    tty = sys.stderr.isatty()
    last = [0.0]

    def on_progress(p):
        now = time.monotonic()
        if tty and (now - last[0] > 0.1 or p.test_accuracy is not None):
            last[0] = now
            sys.stderr.write(_progress_line(p))
            sys.stderr.flush()
        elif not tty and p.test_accuracy is not None and not args.json:
            print(f"epoch {p.epoch}/{p.epochs}  step {p.step}/{p.total_steps}  "
                  f"test accuracy {p.test_accuracy:.4f}  {p.elapsed:.1f}s", flush=True)

    from ..train import Trainer
    try:
        trainer = Trainer(cfg, store, run_id, on_progress=on_progress)
        if resume:
            trainer.resume()
        summary = trainer.run()
    except KeyboardInterrupt:
        store.end_run(run_id, "stopped", error="interrupted")
        fail(f"run {run_id} interrupted", 130)
    except Exception as e:  # noqa: BLE001 -- stored as failed with its text, reported in one line
        from ..store import write_failure
        reason = write_failure(e)
        if reason:
            msg = (f"cannot write to the runs folder {store.root} ({reason}); free disk space or choose another "
                   f"folder (--runs-dir or $SNNCORE_RUNS), then continue with --resume {run_id}")
        else:
            msg = f"{type(e).__name__}: {e}" if not isinstance(e, ValueError) else str(e)
        try:
            store.end_run(run_id, "failed", error=msg)
        except Exception:  # noqa: BLE001 -- the store itself cannot be written: the reaper marks it later
            pass
        if os.environ.get("SNNCORE_DEBUG"):
            traceback.print_exc()
        fail(f"run {run_id} failed: {msg}", 1)
    if tty:
        sys.stderr.write("\n")
    if args.json:
        print_json(summary)
    else:
        acc = summary["test_accuracy"]
        print(f"run {summary['run_id']} {summary['status']}: {summary['epochs']} epochs, {summary['steps']} steps, "
              f"test accuracy {acc if acc is None else f'{acc:.4f}'}, {summary['seconds']:.1f}s on {summary['device']}")
        if summary.get("error"):
            print(f"error: {summary['error']}", file=sys.stderr)
    return 1 if summary["status"] == "failed" else 0


def _train_quiet(cfg, store, run_id, resume: bool) -> int:
    """A rank other than 0: no progress, no summary; a failure is one line naming the rank."""
    from .. import distributed
    from ..train import Trainer
    try:
        trainer = Trainer(cfg, store, run_id)
        if resume:
            trainer.resume()
        summary = trainer.run()
    except KeyboardInterrupt:
        raise SystemExit(130)
    except Exception as e:  # noqa: BLE001 -- rank 0 records the run; this rank says why it ended
        if os.environ.get("SNNCORE_DEBUG"):
            traceback.print_exc()
        msg = f"{type(e).__name__}: {e}" if not isinstance(e, ValueError) else str(e)
        fail(f"run {run_id} failed on process {distributed.rank()}: {msg}", 1)
    return 1 if summary["status"] == "failed" else 0
