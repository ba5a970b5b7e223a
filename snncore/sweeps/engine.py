"""Run a sweep's trials with Ray Tune; each trial is an ordinary run in the driver's RunStore.

State under <runs>/sweeps/<sweep_id>/: sweep.json (spec, options, status, driver pid) and
trials/<key>.json (one per trial, written by the trial itself: run id, point, status, metric,
error). `--resume` reads the trial files and runs only the points that did not end (finished or
failed), so none runs twice. Grid points are indexed by their position in SweepSpec.grid_points().

No shared filesystem is assumed on a cluster (`--address`): a trial on a node other than the
driver's (Ray node ids differ; SNNCORE_SWEEP_SHIP=always: every trial) trains into a node-local
scratch RunStore and ships its run (rows and files, after each epoch and at its end) and its record
to a collector actor pinned to the driver's node, which imports it into the driver's RunStore
under the same run id (transfer.py). A trial retried after its node was lost (`--retries`, Tune's
FailureConfig) reuses its point's run id, so the store keeps one run per point.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import threads
from ..store import LIVE, atomic_write_bytes, pid_alive
from .spec import SweepError, SweepSpec

ENDED = ("finished", "failed", "early_stopped")     # a resume runs these points no more
METRICS = ("test_accuracy", "best_test_accuracy", "seconds", "steps")   # summary keys a sweep ranks by
# or a key the runs record (RunStore.final_values: its mean over the last epoch), e.g. sync/fc1
RECORDED_METRIC = re.compile(r"[A-Za-z][\w.\-]*(/[\w.\-]+)+")
OBJECT_STORE_BYTES = 256 * 2**20     # a local Ray's shared memory: trials pass no large objects


def final_metric(metric: str, summary: dict, final_values) -> float | None:
    """A trial's metric: a key of its run's summary, else the run's final value of a recorded key
    (final_values(): RunStore.final_values of the run); None where the run has neither."""
    if metric in METRICS:
        return summary.get(metric)
    v = final_values().get(metric)
    return None if v is None or v != v else float(v)


@dataclass
class Options:
    metric: str = "test_accuracy"
    mode: str = "max"
    scheduler: str = "none"
    max_concurrent: int = 0           # 0: as many as the cores allow at cpus_per_trial
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    address: str = ""                 # "" local Ray started here; "auto" or HOST:PORT joins a cluster
    name: str = ""
    retries: int = 0                  # Ray's max_failures per trial (a lost node's trials are retried)


def new_sweep_id() -> str:
    return "sw-" + time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def sweeps_root(runs_root: Path) -> Path:
    return Path(runs_root) / "sweeps"


def _write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(obj, indent=1).encode(), durable=False)


def load_state(runs_root: Path, sweep_id: str) -> dict | None:
    p = sweeps_root(runs_root) / sweep_id / "sweep.json"
    if not p.is_file():
        return None
    state = json.loads(p.read_text())
    if state.get("status") == "running" and not pid_alive(state.get("pid")):
        state["status"] = "stopped"          # its driver died: `sweep --resume` continues it
    return state


def trial_records(runs_root: Path, sweep_id: str) -> dict[str, dict]:
    d = sweeps_root(runs_root) / sweep_id / "trials"
    out = {}
    for f in sorted(d.glob("*.json")) if d.is_dir() else []:
        try:
            out[f.stem] = json.loads(f.read_text())
        except (OSError, ValueError):
            continue                          # a half-written record cannot exist (atomic); skip junk
    return out


def list_sweeps(runs_root: Path) -> list[dict]:
    root = sweeps_root(runs_root)
    out = []
    for d in sorted(root.iterdir()) if root.is_dir() else []:
        st = load_state(runs_root, d.name)
        if st is not None:
            out.append(summarize(runs_root, st))
    return out


def summarize(runs_root: Path, state: dict) -> dict:
    """The sweep's JSON summary: sweep_id, status, trials, finished, failed, best, seconds."""
    recs = trial_records(runs_root, state["sweep_id"])
    opts = Options(**state["options"])
    # an ASHA-stopped trial competes with its last epoch's score
    done = [r for r in recs.values() if r.get("status") in ("finished", "early_stopped") and r.get("metric") is not None]
    best = None
    if done:
        pick = max if opts.mode == "max" else min
        b = pick(done, key=lambda r: r["metric"])
        best = {"run_id": b["run_id"], "config": b["config"], "point": b["point"], "metric": b["metric"]}
    return {"sweep_id": state["sweep_id"], "name": state.get("name", ""), "status": state["status"],
            "trials": state["n_trials"], "finished": sum(r.get("status") == "finished" for r in recs.values()),
            "failed": sum(r.get("status") == "failed" for r in recs.values()),
            "early_stopped": sum(r.get("status") == "early_stopped" for r in recs.values()), "metric": opts.metric,
            "mode": opts.mode, "best": best, "seconds": round(state.get("seconds", 0.0), 3),
            "created": state.get("created"), "error": state.get("error")}


# ---- the trial (runs in a Ray worker) ----------------------------------------------------------

class _Local:
    """A trial on the driver's node: it writes the driver's RunStore and trial records directly."""
    shipped = False

    def __init__(self, ctx: dict):
        from ..store import RunStore
        self.store = RunStore(ctx["runs_root"])
        self.trials = Path(ctx["sweep_dir"]) / "trials"

    def get_record(self, key):
        try:
            return json.loads((self.trials / f"{key}.json").read_text())
        except (OSError, ValueError):
            return None

    def put_record(self, key, rec):
        _write_json(self.trials / f"{key}.json", rec)

    def drop_run(self, run_id):
        from .transfer import drop_run
        drop_run(self.store, run_id)

    def ship(self):
        pass

    def close(self):
        self.store.close()


class _Shipped:
    """A trial on another node: it trains into a node-local scratch RunStore and ships the run
    (after each epoch and at its end) and its records to the driver's collector through Ray."""
    shipped = True

    def __init__(self, ctx: dict, key: str):
        import shutil
        import tempfile
        import ray
        from ..store import RunStore
        self.ray = ray
        self.collector = ray.get_actor(ctx["collector"], namespace=ctx["namespace"])
        self.scratch = Path(tempfile.gettempdir()) / f"snncore-{ctx['sweep_id']}" / key
        shutil.rmtree(self.scratch, ignore_errors=True)      # an earlier attempt's leftovers on this node
        self.store = RunStore(self.scratch)
        self.run_id, self.sent = None, {}

    def get_record(self, key):
        return self.ray.get(self.collector.get_record.remote(key))

    def put_record(self, key, rec):
        self.ray.get(self.collector.put_record.remote(key, rec))

    def drop_run(self, run_id):
        self.ray.get(self.collector.drop_run.remote(run_id))

    def ship(self):
        from .transfer import export_run
        if self.run_id:
            sent = dict(self.sent)               # counted as sent once the collector has it
            self.ray.get(self.collector.import_run.remote(export_run(self.store, self.run_id, sent)))
            self.sent = sent

    def close(self):
        import shutil
        self.store.close()
        shutil.rmtree(self.scratch, ignore_errors=True)
        try:
            self.scratch.parent.rmdir()          # the sweep's scratch folder, once its last trial left
        except OSError:
            pass


def _channel(ctx: dict, key: str):
    if ctx.get("collector"):
        import ray
        if ctx["ship"] == "always" or ray.get_runtime_context().get_node_id() != ctx["driver_node"]:
            return _Shipped(ctx, key)
    return _Local(ctx)


def _trial(config: dict, ctx: dict) -> None:
    """One trial: an ordinary run, trained by the Trainer on the trial's thread budget, its
    per-epoch metric reported to Tune (ASHA decides on these), its record written for resume.
    A retried point (its node was lost, or the driver killed) reuses its run id: the attempt it
    replaces is dropped, so the store holds one run per point."""
    os.environ.update(threads.env_for(ctx["threads"]))   # Trainer.run applies this budget
    if os.path.isdir(ctx["cwd"]):             # relative paths mean what they mean to the driver
        os.chdir(ctx["cwd"])
    import socket
    import ray
    from ray import tune
    from ..config import RunConfig
    from ..train import Trainer
    spec = SweepSpec.from_dict(ctx["spec"])
    if "index" in config:
        index = int(config["index"])
        key, point = f"{index:05d}", spec.grid_points()[index]
    else:
        index = None
        key = "t-" + str(tune.get_context().get_trial_id() or secrets.token_hex(4))
        point = spec.normalize({ax.name: config[f"p{i}"] for i, ax in enumerate(spec.axes)})
        if "seed" in config:
            point["seed"] = config["seed"]
    ch = _channel(ctx, key)
    store = ch.store
    prev = ch.get_record(key) or {}
    rec = {"key": key, "index": index, "point": point, "run_id": None, "status": "running", "metric": None,
           "error": None, "started": time.time(), "node": ray.get_runtime_context().get_node_id(),
           "host": socket.gethostname(), "nice": os.nice(0),
           "gpus": [str(g) for g in ray.get_gpu_ids()], "shipped": ch.shipped, "attempt": int(prev.get("attempt", 0)) + 1}
    lost = False
    try:
        cfg_dict = spec.apply(point)
        if ctx["name"]:
            cfg_dict["name"] = f"{ctx['name']}.{key}"
        cfg = RunConfig.from_dict(cfg_dict)
        rec["config"] = cfg.to_dict()
        # a point runs again only when its earlier attempt was lost (or ended without Tune knowing)
        again = prev.get("run_id")
        if again:
            ch.drop_run(again)               # from the driver's store, wherever this attempt runs
        run_id = rec["run_id"] = store.create_run(cfg.to_dict(), run_id=again)
        ch.run_id = run_id
        _write_json(store.run_dir(run_id) / "sweep.json",          # the run's tag: its sweep and point
                    {"sweep_id": ctx["sweep_id"], "key": key, "point": point})
        ch.ship()
        ch.put_record(key, rec)
        metric = ctx["metric"]

        def on_progress(p):
            if p.test_accuracy is not None:             # an epoch ended
                if metric == "test_accuracy":           # what an early-stopped trial scored last
                    rec["metric"] = p.test_accuracy
                ch.ship()                               # the driver sees the run's epochs as they end
                # the last epoch's score goes in the final report, after the run has ended: a
                # scheduler's STOP on this report (Tune ends the trial inside tune.report) would cut
                # a run that has trained all its epochs and mark it stopped early
                # only for a test_accuracy sweep (ASHA's): Optuna reads the metric in every report
                if metric == "test_accuracy" and p.epoch < p.epochs and p.step < p.total_steps:
                    tune.report({"test_accuracy": p.test_accuracy, "epoch": p.epoch, "run_id": run_id})

        trainer = Trainer(cfg, store, run_id, on_progress=on_progress)
        summary = trainer.run()
        rec["status"] = "finished" if summary["status"] == "finished" else "failed"
        rec["metric"] = final_metric(metric, summary, lambda: store.final_values(run_id))
        rec["error"] = summary.get("error") or (None if rec["status"] == "finished"
                                                 else f"run ended {summary['status']}")
        if rec["status"] == "finished" and rec["metric"] is None and metric not in METRICS:
            rec["error"] = f"the run recorded no {metric} in its last epoch"
    except Exception as e:  # noqa: BLE001 -- a failed trial is recorded with its reason; the sweep goes on
        if isinstance(e, ray.exceptions.RayError):
            lost = True             # Ray itself failed here (e.g. this node is dying): not the trial's
            raise                   # fault; Tune retries it (--retries) and the retry reuses the run id
        rec["status"], rec["error"] = "failed", f"{type(e).__name__}: {e}"
        if rec["run_id"]:
            run = store.get_run(rec["run_id"])
            if run and run["status"] not in ENDED + ("stopped",):
                store.end_run(rec["run_id"], "failed", error=rec["error"])
    finally:
        if lost:                           # the record stays live on the driver: the point runs again
            ch.close()
        else:
            rec["ended"] = time.time()
            if rec["status"] == "running":     # stopped early by the scheduler (ASHA) or the driver
                rec["status"] = "early_stopped" if ctx["scheduler"] == "asha" else "stopped"
                if rec["run_id"]:
                    run = store.get_run(rec["run_id"])
                    if run and run["status"] in LIVE:
                        store.end_run(rec["run_id"], "stopped", error=(
                            "stopped early by the sweep's scheduler (asha)" if ctx["scheduler"] == "asha" else
                            f"stopped with its sweep; `python -m snncore sweep --resume {ctx['sweep_id']}` "
                            "runs its point again"))
            try:
                ch.ship()                      # the run's last rows and checkpoint, then its record
                ch.put_record(key, rec)
            finally:
                ch.close()
    # every trial that returns reports once (NaN: failed, or no such value): one that never
    # reported made Tune print "Trial ... completed. Last result:" into the sweep's output
    # (under ASHA a failed trial still reports nothing: ASHA ranks every report it gets)
    ok = rec["status"] == "finished" and rec["metric"] is not None
    if ok or ctx["scheduler"] != "asha":
        tune.report({metric: rec["metric"] if ok else float("nan"), "run_id": rec["run_id"], "done": True})


def _workers_import_ours() -> bool:
    """True when a worker started here (same Python, same working folder) imports this very
    snncore, e.g. an editable install or a run from the checkout. A local Ray then needs no copy
    of the code: a copy would live in a new folder each time Ray starts, so Numba would compile
    the fused LIF kernels again in every worker of every sweep, its cache missing (measured: a
    worker's first import and self-test of them took 3.1 s instead of 1.4 s)."""
    import subprocess
    import sys
    import snncore
    ours = Path(snncore.__file__).resolve()
    code = "import importlib.util as u; s = u.find_spec('snncore'); print(s.origin if s else '')"
    try:
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
        return p.returncode == 0 and bool(p.stdout.strip()) and Path(p.stdout.strip()).resolve() == ours
    except (OSError, subprocess.SubprocessError):
        return False


# ---- the driver --------------------------------------------------------------------------------

def _init_ray(opts: Options, n_threads: int) -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")   # a failed trial reports no metric
    # Ray starts its workers at nice 15: beside any ordinary busy process (the app, a browser,
    # a run from Train) a trial then got almost no CPU (measured: its worker took 70 s to start
    # beside one busy process instead of ~3 s). A local Ray's trials run at the user's priority
    # like every other run; a user's own RAY_worker_niceness stays (a cluster keeps its own).
    os.environ.setdefault("RAY_worker_niceness", "0")
    import ray
    if ray.is_initialized():
        return
    # workers get the trial's thread budget before torch and Numba load in them, and this snncore
    # shipped as a module (a cluster's nodes need no copy of the code nor a shared filesystem)
    import snncore
    env = {**threads.env_for(n_threads), "RAY_USAGE_STATS_ENABLED": "0",
           "SNNCORE_DATA": os.path.abspath(os.environ.get("SNNCORE_DATA") or "data")}   # as the driver sees it
    runtime_env = {"env_vars": env}
    if opts.address or not _workers_import_ours():
        runtime_env.update(py_modules=[str(Path(snncore.__file__).parent)], excludes=["__pycache__", "*.pyc"])
    kw = dict(include_dashboard=False, log_to_driver=bool(os.environ.get("SNNCORE_DEBUG")),
              runtime_env=runtime_env, configure_logging=False)
    if opts.address:
        ray.init(address=opts.address, **kw)
    else:
        ray.init(num_cpus=threads.cores(), object_store_memory=OBJECT_STORE_BYTES, **kw)


def check_options(spec: SweepSpec, opts: Options) -> None:
    """What is wrong with these options for these trials, before Ray starts (SweepError, the
    CLI's one line; the CLI, the Sweep page and sc.sweep all ask here). Ray shows a trial only the
    GPUs it gives it, so a CUDA trial needs --gpus-per-trial, and GPUs given to CPU trials would
    sit idle."""
    if opts.metric not in METRICS and not RECORDED_METRIC.fullmatch(opts.metric):
        raise SweepError(f"--metric {opts.metric!r}: choose one of {', '.join(METRICS)} (keys of a run's summary) "
                         "or a key the runs record, such as train/loss, sync/fc1 or a rule's gate_mean/fc1 "
                         "(its mean over the last epoch)")
    if opts.mode not in ("max", "min") or opts.scheduler not in ("none", "asha"):
        raise SweepError("--mode: max or min; --scheduler: none or asha")
    if opts.scheduler == "asha" and opts.metric != "test_accuracy":
        raise SweepError("--scheduler asha decides on the per-epoch test_accuracy; use --metric test_accuracy")
    for flag, v in (("--max-concurrent", opts.max_concurrent), ("--retries", opts.retries)):
        if v < 0:
            raise SweepError(f"{flag} {v}: give 0 or more")
    if opts.name and not all(c.isalnum() or c in "_.- " for c in opts.name):
        raise SweepError("--name: use letters, digits, spaces, '.', '_' or '-'")
    if opts.cpus_per_trial <= 0 or opts.gpus_per_trial < 0:
        raise SweepError("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0")
    devices = {c.get("device", "auto") for c in (spec.configs or [spec.base])}
    if "cuda" in devices and opts.gpus_per_trial == 0:
        raise SweepError("--device cuda: give --gpus-per-trial (1: a GPU per trial, 0.5: two trials share one); "
                         "Ray shows a trial only the GPUs it gives it")
    if opts.gpus_per_trial > 0 and devices == {"cpu"}:
        raise SweepError(f"--gpus-per-trial {opts.gpus_per_trial:g} with --device cpu: the trials would hold GPUs "
                         "and train on the CPU; use --device cuda (or auto), or no --gpus-per-trial")


def unused_gpus(gpus_per_trial: float, devices, gpus: float, flag: str = "--gpus-per-trial") -> str:
    """'' or the note that the GPUs there stay idle: Ray hides the GPUs from a trial it gives none,
    so device auto trains on the CPU (the CLI's start line and the Sweep page say it)."""
    if not gpus or gpus_per_trial or set(devices) == {"cpu"}:
        return ""
    return f"its {gpus:g} GPU(s) stay unused (the trials train on the CPU): give {flag} to use them"


def check_cluster(opts: Options) -> None:
    """A trial must fit on some node, or Tune would wait for it forever (SweepError naming what
    there is). A local Ray gets this machine's cores and its GPUs (as torch sees them, as Ray
    does), checked before it starts; a cluster's nodes are asked once joined (_init_ray first)."""
    if opts.address:
        import ray
        where = f"the Ray cluster at {opts.address}"
        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
        cpus = max((n.get("CPU", 0) for n in nodes), default=0)
        gpus = max((n.get("GPU", 0) for n in nodes), default=0)
    else:
        import torch
        where, cpus, gpus = "this machine", threads.cores(), torch.cuda.device_count()
    if opts.gpus_per_trial > 0 and gpus < min(opts.gpus_per_trial, 1):
        raise SweepError(f"--gpus-per-trial {opts.gpus_per_trial:g}: {where} has no GPU")
    per = " on a node" if opts.address else ""
    if opts.gpus_per_trial > gpus:
        raise SweepError(f"--gpus-per-trial {opts.gpus_per_trial:g}: {where} has {'at most ' * bool(per)}{gpus:g} GPU(s){per}")
    if opts.cpus_per_trial > cpus:
        raise SweepError(f"--cpus-per-trial {opts.cpus_per_trial:g}: {where} has {'at most ' * bool(per)}{cpus:g} CPU(s){per}")


def start(spec: SweepSpec, opts: Options, runs_root: Path, sweep_id: str | None = None, on_event=None) -> dict:
    """A new sweep: its state written first (so a killed driver can be resumed), then run. Bad
    resources raise SweepError before anything is written. on_event(kind, info): see _Progress."""
    check_options(spec, opts)
    if opts.address:
        _init_ray(opts, max(1, int(opts.cpus_per_trial)))
    check_cluster(opts)
    sweep_id = sweep_id or new_sweep_id()
    n = len(spec.grid_points()) if spec.search == "grid" else spec.trials
    state = {"sweep_id": sweep_id, "name": opts.name, "spec": spec.to_dict(), "options": asdict(opts),
             "status": "running", "pid": os.getpid(), "created": time.time(), "seconds": 0.0, "n_trials": n}
    _write_json(sweeps_root(runs_root) / sweep_id / "sweep.json", state)
    return _run(state, runs_root, on_event)


def resume(runs_root: Path, sweep_id: str, on_event=None) -> dict:
    state = load_state(runs_root, sweep_id)
    if state is None:
        raise SweepError(f"sweep {sweep_id!r} is not in {sweeps_root(runs_root)}")
    if state["status"] == "running":
        raise SweepError(f"sweep {sweep_id} is still running (pid {state['pid']})")
    if state["status"] == "finished":
        raise SweepError(f"sweep {sweep_id} already finished all its {state['n_trials']} trials")
    opts = Options(**state["options"])
    if opts.address:
        _init_ray(opts, max(1, int(opts.cpus_per_trial)))
    check_cluster(opts)               # e.g. resumed on another machine, or the GPU node is gone
    state.update(status="running", pid=os.getpid())
    _write_json(sweeps_root(runs_root) / sweep_id / "sweep.json", state)
    return _run(state, runs_root, on_event)


class _Progress:
    """Tells on_event(kind, info) what the sweep does, for the CLI's lines and sc.sweep's bar:
    ("start", {sweep_id, trials, todo, concurrent, cpus_per_trial, gpus_per_trial, where,
    cluster_cpus, cluster_gpus, devices}) once the trials are about to start, and ("trial",
    {**record, "ended_count": k, "trials": n}) once per trial that ended (its record, as the trial
    wrote it) in the order they end. Tune tells the driver when a trial starts or ends; the records
    are read then, and once more after the last trial (a trial stopped by ASHA writes its record
    after Tune has moved on). A failing on_event (e.g. a closed pipe) is dropped, not the sweep."""

    def __init__(self, on_event, runs_root: Path, state: dict, seen: set):
        self.on_event, self.root, self.state, self.seen = on_event, runs_root, state, set(seen)

    def emit(self, kind: str, info: dict) -> None:
        if self.on_event is not None:
            try:
                self.on_event(kind, info)
            except Exception:  # noqa: BLE001 -- telling progress must never stop the trials
                self.on_event = None

    def poll(self) -> None:
        if self.on_event is None:
            return
        recs = trial_records(self.root, self.state["sweep_id"])
        new = [r for k, r in recs.items() if k not in self.seen and r.get("status") in ENDED]
        for r in sorted(new, key=lambda r: r.get("ended") or 0):
            self.seen.add(r["key"])
            self.emit("trial", {**r, "ended_count": len(self.seen), "trials": self.state["n_trials"]})

    def callback(self):
        from ray import tune
        poll = self.poll

        class _Cb(tune.Callback):
            def on_trial_start(self, iteration, trials, trial, **info):
                poll()

            def on_trial_complete(self, iteration, trials, trial, **info):
                poll()

            def on_trial_error(self, iteration, trials, trial, **info):
                poll()
        return _Cb()


def _run(state: dict, runs_root: Path, on_event=None) -> dict:
    from ray import tune
    spec, opts = SweepSpec.from_dict(state["spec"]), Options(**state["options"])
    sweep_dir = sweeps_root(runs_root) / state["sweep_id"]
    t0 = time.monotonic() - state.get("seconds", 0.0)
    recs = trial_records(runs_root, state["sweep_id"])
    ended = {k for k, r in recs.items() if r.get("status") in ENDED}
    progress = _Progress(on_event, runs_root, state, ended)
    _abandon(runs_root, recs)
    per_trial = max(1, int(opts.cpus_per_trial))
    ctx = {"spec": spec.to_dict(), "sweep_id": state["sweep_id"], "sweep_dir": str(sweep_dir.resolve()),
           "runs_root": str(Path(runs_root).resolve()), "threads": per_trial, "metric": opts.metric, "scheduler": opts.scheduler,
           "cwd": os.getcwd(), "name": opts.name, "collector": None,
           "ship": "always" if os.environ.get("SNNCORE_SWEEP_SHIP") == "always" else "auto"}
    if spec.search == "grid":
        todo = [i for i in range(state["n_trials"]) if f"{i:05d}" not in ended]
        param_space, samples, search_alg = {"index": tune.grid_search(todo)}, 1, None
    else:
        todo = list(range(state["n_trials"] - len(ended)))
        param_space, samples = _sample_space(spec), len(todo)
        search_alg = None
        if spec.search == "optuna":
            from ray.tune.search.optuna import OptunaSearch
            import optuna
            optuna.logging.set_verbosity(optuna.logging.WARNING)   # not "A new study created in memory"
            search_alg = OptunaSearch(seed=int(spec.base.get("seed", 0)))
    status = "finished"
    if todo:
        # Tune's new console output draws an experiment box and a results path on stdout: noise
        # beside `sweep`'s own lines and in a notebook (a user's own choice stays)
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        _init_ray(opts, per_trial)
        collector = _start_collector(ctx, opts)
        scheduler = None
        if opts.scheduler == "asha":
            from ray.tune.schedulers import ASHAScheduler
            # max_t: the epochs; a trial that gets there ends by itself (stop_last_trials=False: Tune
            # would otherwise stop it on its last report, before its run's summary is written)
            scheduler = ASHAScheduler(time_attr="training_iteration", max_t=int(spec.base.get("epochs", 1)),
                                      grace_period=1, stop_last_trials=False)
        trainable = tune.with_resources(tune.with_parameters(_trial, ctx=ctx),
                                        {"cpu": opts.cpus_per_trial, "gpu": opts.gpus_per_trial})
        concurrent = opts.max_concurrent or _slots(opts)
        import ray
        progress.emit("start", {"sweep_id": state["sweep_id"], "trials": state["n_trials"], "todo": len(todo),
                                "concurrent": concurrent, "cpus_per_trial": opts.cpus_per_trial,
                                "gpus_per_trial": opts.gpus_per_trial,
                                "where": f"the Ray cluster at {opts.address}" if opts.address else "a local Ray",
                                "cluster_cpus": ray.cluster_resources().get("CPU", 0),
                                "cluster_gpus": ray.cluster_resources().get("GPU", 0),
                                "devices": sorted({c.get("device", "auto") for c in (spec.configs or [spec.base])})})
        tuner = tune.Tuner(
            trainable, param_space=param_space,
            tune_config=tune.TuneConfig(metric=opts.metric, mode=opts.mode, search_alg=search_alg,
                                        scheduler=scheduler, num_samples=samples,
                                        max_concurrent_trials=concurrent, reuse_actors=True),
            run_config=tune.RunConfig(name="tune", storage_path=str((sweep_dir / "ray").resolve()), verbose=0,
                                      failure_config=tune.FailureConfig(max_failures=opts.retries),
                                      callbacks=[progress.callback()]))
        _quiet_tune()
        try:
            tuner.fit()
        except KeyboardInterrupt:
            status = "stopped"
        except Exception as e:  # noqa: BLE001 -- Tune itself broke: the sweep is resumable
            import traceback
            (sweep_dir / "driver_error.txt").write_text("".join(traceback.format_exception(e)))
            last = next((l.strip() for l in reversed(str(e).splitlines()) if l.strip()), "")
            status, state["error"] = "failed", (f"{type(e).__name__}: {last} (the whole traceback: "
                                                f"{sweep_dir / 'driver_error.txt'})")
        finally:
            if collector is not None:
                import ray
                ray.kill(collector)
            progress.poll()
        _lost(runs_root, trial_records(runs_root, state["sweep_id"]))
    recs = trial_records(runs_root, state["sweep_id"])
    if status == "finished" and sum(r.get("status") in ENDED for r in recs.values()) < state["n_trials"]:
        status = "stopped"       # trials left (lost, or the driver interrupted): resumable
    state.update(status=status, seconds=time.monotonic() - t0, ended=time.time())
    _write_json(sweep_dir / "sweep.json", state)
    return summarize(runs_root, state)


class _QuietTune:
    """Drops Tune's "Resume experiment with: Tuner.restore(...)" after a Ctrl-C: a sweep goes on
    with `sweep --resume ID`, which the CLI's last line names (Tune's own way would skip our trial
    records and run finished points again). Also Tune's Optuna searcher's "The value nan is not
    acceptable" for a trial that failed or lacks a recorded metric: the trial's own line says why."""

    @staticmethod
    def filter(record) -> bool:
        msg = record.getMessage()
        return "Tuner.restore" not in msg and "nan is not acceptable" not in msg


def _quiet_tune() -> None:
    import logging
    for name in ("ray.tune.tune", "ray.tune.search.optuna.optuna_search"):
        log = logging.getLogger(name)
        if not any(isinstance(f, _QuietTune) for f in log.filters):
            log.addFilter(_QuietTune())


def _slots(opts: Options) -> int:
    """Trials at once by default: what the whole Ray cluster holds at the trial's CPUs (and GPUs),
    not this machine's cores (a local Ray has exactly these)."""
    import ray
    res = ray.cluster_resources()
    n = res.get("CPU", threads.cores()) // max(opts.cpus_per_trial, 1e-9)
    if opts.gpus_per_trial > 0:
        n = min(n, res.get("GPU", 0) // opts.gpus_per_trial)
    return max(1, int(n))


def _start_collector(ctx: dict, opts: Options):
    """On a cluster (or with SNNCORE_SWEEP_SHIP=always): the actor on the driver's node that takes
    the runs and records of trials on other nodes (transfer.Collector). None for a local Ray."""
    if not opts.address and ctx["ship"] != "always":
        return None
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    from .transfer import Collector
    rc = ray.get_runtime_context()
    ctx.update(driver_node=rc.get_node_id(), namespace=rc.namespace,
               collector=f"snncore-collector-{ctx['sweep_id']}-{os.getpid()}")
    actor = ray.remote(num_cpus=0, max_restarts=-1)(Collector).options(
        name=ctx["collector"], namespace=ctx["namespace"],
        scheduling_strategy=NodeAffinitySchedulingStrategy(ctx["driver_node"], soft=False)
    ).remote(ctx["runs_root"], ctx["sweep_dir"])
    ray.get(actor.ping.remote())
    return actor


def _stop_live(runs_root: Path, recs: dict, error: str, dead_only: bool) -> None:
    """Runs of trial records that did not end, still live in the store: marked stopped (their
    point runs again on `--resume`); dead_only: only those whose process is gone."""
    from ..store import RunStore
    live = [r for r in recs.values() if r.get("status") not in ENDED and r.get("run_id")]
    if not live:
        return
    store = RunStore(runs_root)
    try:
        for r in live:
            run = store.get_run(r["run_id"])
            if run and run["status"] in LIVE and not (dead_only and pid_alive(run.get("pid"))):
                store.end_run(r["run_id"], "stopped", error=error)
    finally:
        store.close()


def _lost(runs_root: Path, recs: dict) -> None:
    """After Tune returned every trial is over: a record still live is a trial that was lost
    (its node died past its retries, or the sweep was stopped)."""
    _stop_live(runs_root, recs, "its trial was lost (node lost or sweep stopped); `sweep --resume` runs "
                                "its point again", dead_only=False)


def _abandon(runs_root: Path, recs: dict) -> None:
    """Runs of trials whose driver died mid-trial."""
    _stop_live(runs_root, recs, "its sweep's driver was killed; the point ran again", dead_only=True)


def _sample_space(spec: SweepSpec) -> dict:
    from ray import tune
    space = {}
    for i, ax in enumerate(spec.axes):
        if ax.values is not None:
            space[f"p{i}"] = tune.choice(ax.values)
        elif ax.log:
            space[f"p{i}"] = tune.loguniform(ax.lo, ax.hi)
        else:
            space[f"p{i}"] = tune.uniform(ax.lo, ax.hi)
    if spec.seeds > 1:
        seed0 = int(spec.base.get("seed", 0))
        space["seed"] = tune.choice(list(range(seed0, seed0 + spec.seeds)))
    return space
