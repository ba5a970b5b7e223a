"""Command line: python -m snncore train | runs | inspect | bench  (add --json for machine-readable output).

Bad input exits with status 2 and one line naming the field and what is allowed.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import traceback

from .threads import ThreadsError, set_env

try:                       # the run's thread budget, before torch and Numba load (snncore/threads.py)
    set_env()
except ThreadsError as _e:
    print(f"error: {_e}", file=sys.stderr)
    raise SystemExit(2)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints usage + message by default)
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _fail(message: str, code: int = 2):
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def _rule_param_fields(extra: str | None = None) -> dict[str, dict[str, type]]:
    """rule -> {param name: type} for every registered rule, and `extra` (an import-path rule
    given with --rule or in --config) when it loads (when not, validation names why)."""
    from .rules import get_rule, is_import_path, rule_names
    out = {}
    names = rule_names()
    if extra and is_import_path(extra) and extra not in names:
        try:
            get_rule(extra)
            names.append(extra)
        except ValueError:
            pass
    for name in names:
        cls = get_rule(name).Params
        out[name] = {f.name: type(getattr(cls(), f.name)) for f in dataclasses.fields(cls)}
    return out


def _field_help(name: str) -> str:
    """What a run config field or train option is, in a few words ('learning-rate schedule')."""
    from .config import RunConfig
    f = RunConfig.fields().get(name)
    return (f.metadata.get("help") if f is not None else "") or f"--{name.replace('_', '-')} option"


def _rule_in_argv(argv) -> str | None:
    """The rule named by --rule (or in the --config file) of a train command line, before parsing."""
    argv, rule, cfg = list(argv or []), None, None
    for i, a in enumerate(argv):
        for flag in ("--rule", "--config"):
            if a == flag and i + 1 < len(argv):
                val = argv[i + 1]
            elif a.startswith(flag + "="):
                val = a[len(flag) + 1:]
            else:
                continue
            rule, cfg = (val, cfg) if flag == "--rule" else (rule, val)
    if rule is None and cfg:
        try:
            from .config import RunConfig
            rule = RunConfig.load(cfg).get("rule")
        except Exception:  # noqa: BLE001 -- a bad file is reported by the parse that follows
            rule = None
    return rule if isinstance(rule, str) else None


def build_parser(argv=None) -> argparse.ArgumentParser:
    from .config import RunConfig, rule_param_clashes
    p = _Parser(prog="python -m snncore", description="Plasticity Lab engine")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)

    extra = _rule_in_argv(argv)
    clashes = [(rule, name) for rule, fields in _rule_param_fields(extra).items() for name in fields
               if rule_param_clashes(name)]
    t = sub.add_parser("train", help="train one run (prints progress; --json: last line is a JSON summary)",
                       epilog="A rule hyperparameter named like a run setting has only its --RULE.NAME flag; "
                              "the short flag is the run setting: "
                              + "; ".join(f"--{n.replace('_', '-')} is the run's {_field_help(n)}, --{r}.{n.replace('_', '-')} "
                                          f"rule {r}'s {n}" for r, n in clashes)
                              + ". Given such a short flag with that rule, a note on stderr says so.")
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
    cfg_fields = RunConfig.fields()
    for name, f in cfg_fields.items():
        if name == "rule_params":
            continue
        t.add_argument(f"--{name.replace('_', '-')}", dest=f"cfg:{name}", default=None, metavar="V",
                       help=f"{f.metadata.get('help', '')} (default {f.default if f.default is not dataclasses.MISSING else f.default_factory()})")
    seen = {}
    g = t.add_argument_group("rule hyperparameters (apply to the chosen --rule; each also as --RULE.NAME)")
    for rule, fields in _rule_param_fields(extra).items():
        for name in fields:
            clash = rule_param_clashes(name)      # the --RULE.NAME form is its only flag: listed
            g.add_argument(f"--{rule}.{name.replace('_', '-')}", dest=f"rule:{rule}:{name}", default=None,
                           metavar="V", help=f"rule {rule}'s {name} (--{name.replace('_', '-')} is the run's "
                           f"{_field_help(name)})" if clash else argparse.SUPPRESS)
            if not clash:
                seen.setdefault(name, []).append(rule)
    for name, rules in sorted(seen.items()):
        g.add_argument(f"--{name.replace('_', '-')}", dest=f"rp:{name}", default=None, metavar="V",
                       help=f"rules: {', '.join(rules)}")

    r = sub.add_parser("runs", help="list runs with status, rule, dataset and best accuracy")
    r.add_argument("--runs-dir")
    r.add_argument("--json", action="store_true")
    # these two own their parsers (snncore/cli_inspect.py, snncore/cli_bench.py); listed here for --help
    sub.add_parser("inspect", help="spike statistics of a run or a checkpoint file (RUN_ID|FILE [--json])",
                   add_help=False)
    sub.add_parser("bench", help="speed benchmarks as ratios to a reference timed in the same run "
                                 "([--quick] [--json])", add_help=False)
    from .sweeps.cli import add_parsers      # sweep, sweeps: parsed by snncore/sweeps/cli.py (main below)
    add_parsers(sub)
    return p


def config_from_args(args, note: bool = True) -> "RunConfig":
    from .config import ConfigError, RunConfig
    values = RunConfig.load(args.config) if args.config else {}
    values.pop("lesson", None)          # a lesson preset file is a config plus its [lesson] text
    if values.get("rule_params") is not None and not isinstance(values.get("rule_params"), dict):
        raise ConfigError("rule_params: expected a table of the rule's hyperparameters")
    rule_params = dict(values.get("rule_params") or {})
    for k, v in vars(args).items():
        if v is None:
            continue
        if k.startswith("cfg:"):
            values[k[4:]] = v
    rule = values.get("rule", RunConfig().rule)
    fields = _rule_param_fields(rule if isinstance(rule, str) else None)
    for k, v in vars(args).items():
        if v is None:
            continue
        if k.startswith("rp:"):
            name = k[3:]
            if rule not in fields:
                continue  # unknown rule: validation below names it
            if name not in fields[rule]:
                allowed = ", ".join("--" + n.replace("_", "-") for n in fields[rule]) or "none"
                raise ConfigError(f"--{name.replace('_', '-')} is not a hyperparameter of rule {rule!r} "
                                  f"(its hyperparameters: {allowed})")
            rule_params[name] = v
        elif k.startswith("rule:"):
            r, name = k.split(":", 1)[1].rsplit(":", 1)      # an import-path rule holds ':'
            if r != rule:
                raise ConfigError(f"--{r}.{name.replace('_', '-')} given but the rule is {rule!r}")
            rule_params[name] = v
    values["rule_params"] = rule_params
    cfg = RunConfig.from_dict(values)
    if note:
        _note_clashing_flags(args, cfg, fields.get(rule, {}))
    return cfg


def _note_clashing_flags(args, cfg, rule_fields) -> None:
    """`--schedule constant --rule ssdp` sets the learning-rate schedule, not SSDP's: say so (on
    stderr, after validation, so a bad config still gets its one error line alone)."""
    given = vars(args)
    for name in rule_fields:
        if given.get(f"cfg:{name}") is not None and given.get(f"rule:{cfg.rule}:{name}") is None:
            flag = name.replace("_", "-")
            print(f"note: --{flag} set the run's {_field_help(name)}; rule {cfg.rule}'s own {name} is "
                  f"--{cfg.rule}.{flag}", file=sys.stderr)


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
    from .config import ConfigError, RunConfig
    from .rules import get_rule
    from .store import RunStore, StoreError, check_run_id
    given = [k for k, v in vars(args).items()
             if v is not None and k.split(":")[0] in ("cfg", "rp", "rule") and k != "cfg:epochs"]
    if given or args.config:
        _fail("--resume continues a run with its stored config; of the config flags only --epochs N "
              "(the new total) goes with it")
    try:
        store = RunStore(args.runs_dir)
        run_id = check_run_id(args.resume)
    except (StoreError, ValueError) as e:
        _fail(str(e))
    run = store.get_run(run_id)
    if run is None:
        _fail(f"run {run_id!r} is not in {store.root}")
    launched_for_me = run["status"] == "starting" and run["pid"] in (None, os.getpid())   # by launch_resume
    if run["status"] in ("starting", "running") and not launched_for_me:
        _fail(f"run {run_id} is still running (pid {run['pid']})")
    epochs = vars(args).get("cfg:epochs")
    if run["status"] == "finished" and epochs is None:
        _fail(f"run {run_id} already finished all its epochs (to train it further: --resume {run_id} --epochs N)")
    try:
        cfg = RunConfig.from_dict(run["config"])
    except ConfigError as e:
        _fail(f"run {run_id}: its stored config is no longer valid: {e}")
    checkpoints = store.checkpoints(run_id, full=True)
    if not checkpoints:
        _fail(f"run {run_id} has no checkpoint to resume from (it ended before its first epoch)")
    if epochs is None:
        return store, run_id, cfg
    if getattr(get_rule(cfg.rule), "runs_own_loop", False):
        _fail(f"--epochs: rule {cfg.rule!r} runs a task sequence (its length is {cfg.rule}.n_tasks), not epochs")
    try:
        cfg = RunConfig.from_dict({**cfg.to_dict(), "epochs": epochs})
    except ConfigError as e:
        _fail(str(e))
    done, done_steps = checkpoints[-1][0], checkpoints[-1][1]
    if cfg.epochs <= done:
        _fail(f"--epochs {cfg.epochs}: run {run_id} has completed {done} epochs; give the new total, above {done}")
    if cfg.max_steps and done_steps >= cfg.max_steps:
        _fail(f"--epochs: run {run_id} ended at its max_steps ({cfg.max_steps}); more epochs would train nothing")
    return store, run_id, cfg


def _prepare_data(cfg, args) -> None:
    """Fetch / check the dataset's files before a run exists: a missing, corrupt or undownloadable
    dataset exits 2 with one line naming the file and the fix (a download shows a progress line)."""
    from .data import DatasetError, prepare_dataset

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
                from .store import RunStore
                RunStore(args.runs_dir).end_run(args.run_id, "failed", error=str(e))
            except Exception:  # noqa: BLE001 -- the one-line message below is what matters
                pass
        _fail(str(e))
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K")


def cmd_train(args) -> int:
    from . import distributed
    if args.dry_run:
        return _dry_run(args)
    if distributed.env_world() > 1:        # launched by torchrun with several processes
        return _cmd_train_distributed(args)
    return _cmd_train(args)


def _dry_run(args) -> int:
    """--dry-run: the checks a run does before it starts (not the dataset files: nothing is fetched),
    then the config and its equivalent command; no run is created, the runs folder is not touched."""
    from .config import ConfigError
    from .train import resolve_device
    if args.resume:
        _fail("--dry-run checks the config of a new run; it does not go with --resume")
    try:
        cfg = config_from_args(args)
        resolve_device(cfg.device)
    except (ConfigError, ValueError) as e:
        _fail(str(e))
    if args.json:
        print(json.dumps({"config": _finite(cfg.to_dict()), "command": cfg.command_line()}))
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
    from . import distributed as D
    from .config import ConfigError
    from .rules import get_rule
    from .train import resolve_device
    if args.resume:
        device_name = _stored_device(args)   # rank 0 checks the run itself below
    else:
        try:
            cfg = config_from_args(args, note=False)     # rank 0 checks it again in _setup_run
            resolve_device(cfg.device)
        except (ConfigError, ValueError) as e:
            _fail(str(e))
        if getattr(get_rule(cfg.rule), "runs_own_loop", False):
            _fail(f"rule {cfg.rule!r} runs its own task loop in one process; start it without torchrun")
        device_name = cfg.device
    try:
        D.init_from_env(resolve_device(device_name))
    except ValueError as e:
        _fail(str(e))
    except Exception as e:  # noqa: BLE001 -- e.g. rendezvous failed or timed out
        _fail(f"cannot join the other processes (torch.distributed, "
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
            from .config import RunConfig
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
    from .store import default_runs_dir
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
    from .config import ConfigError
    from .rules import get_rule
    from .store import RunStore, StoreError, check_run_id
    if args.resume:
        store, run_id, cfg = _resume_target(args)
        if several and getattr(get_rule(cfg.rule), "runs_own_loop", False):
            _fail(f"rule {cfg.rule!r} runs its own task loop in one process; resume it without torchrun")
        store.reopen(run_id)
        if vars(args).get("cfg:epochs") is not None:      # --epochs N: the run's new plan
            store.set_config(run_id, cfg.to_dict())
        store.set_pid(run_id, os.getpid())
        return store, cfg, run_id, True
    try:
        cfg = config_from_args(args)
        from .train import resolve_device
        resolve_device(cfg.device)          # cuda asked for on a machine without one: refuse now
    except (ConfigError, ValueError) as e:
        _fail(str(e))
    _prepare_data(cfg, args)
    try:
        store = RunStore(args.runs_dir)
    except StoreError as e:
        _fail(str(e))
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
        _fail(str(e))
    return store, cfg, run_id, False


def _train(args, cfg, store, run_id, resume: bool = False) -> int:
    from . import distributed
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

    from .train import Trainer
    try:
        trainer = Trainer(cfg, store, run_id, on_progress=on_progress)
        if resume:
            trainer.resume()
        summary = trainer.run()
    except KeyboardInterrupt:
        store.end_run(run_id, "stopped", error="interrupted")
        _fail(f"run {run_id} interrupted", 130)
    except Exception as e:  # noqa: BLE001 -- stored as failed with its text, reported in one line
        from .store import write_failure
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
        _fail(f"run {run_id} failed: {msg}", 1)
    if tty:
        sys.stderr.write("\n")
    if args.json:
        print(json.dumps(_finite(summary)))
    else:
        acc = summary["test_accuracy"]
        print(f"run {summary['run_id']} {summary['status']}: {summary['epochs']} epochs, {summary['steps']} steps, "
              f"test accuracy {acc if acc is None else f'{acc:.4f}'}, {summary['seconds']:.1f}s on {summary['device']}")
        if summary.get("error"):
            print(f"error: {summary['error']}", file=sys.stderr)
    return 1 if summary["status"] == "failed" else 0


def _train_quiet(cfg, store, run_id, resume: bool) -> int:
    """A rank other than 0: no progress, no summary; a failure is one line naming the rank."""
    from . import distributed
    from .train import Trainer
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
        _fail(f"run {run_id} failed on process {distributed.rank()}: {msg}", 1)
    return 1 if summary["status"] == "failed" else 0


def _finite(obj):
    """NaN/inf -> null, so the JSON line is strict JSON."""
    if isinstance(obj, float):
        return obj if obj == obj and abs(obj) != float("inf") else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def cmd_runs(args) -> int:
    from .health import chance_warning
    from .store import RunStore, StoreError
    try:
        store = RunStore(args.runs_dir)
    except StoreError as e:
        _fail(str(e))
    runs = store.list_runs()
    rows = [{"run_id": r["id"], "status": r["status"], "rule": r["config"].get("rule"),
             "dataset": r["config"].get("dataset"), "model": r["config"].get("model"),
             "best_accuracy": r.get("best_accuracy"), "epoch": r["epoch"], "step": r["step"],
             "created": r["created"], "error": r["error"], "name": r["name"],
             "warning": chance_warning(r), "threads": r.get("threads")} for r in runs]
    if args.json:
        print(json.dumps(_finite(rows)))
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


SUBMODULES = {"inspect": "cli_inspect", "bench": "cli_bench"}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBMODULES:
        import importlib
        mod = importlib.import_module(f".{SUBMODULES[argv[0]]}", __package__)
        return mod.main(argv[1:])
    if argv and argv[0] in ("sweep", "sweeps"):        # snncore/sweeps/cli.py owns both
        from .sweeps.cli import main as sweep_main
        return sweep_main(argv)
    args = build_parser(argv).parse_args(argv)
    if args.cmd == "train":
        return cmd_train(args)
    if args.cmd == "runs":
        return cmd_runs(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
