"""The Python API: the engine the app and the CLI drive, for notebooks and scripts.

    import snncore as sc
    run = sc.train(rule="ssdp", dataset="digits", epochs=3, a_plus=1e-3)
    run.metrics, run.telemetry, run.spikes("fc1"), run.figure("raster"), run.inspect()
    sc.runs(); sc.load(run_id); sc.compare([id1, id2])
    sc.lab.simulate("stdp", eta_plus=1e-2).figures

A run goes through the same RunConfig validation, Trainer and RunStore as
`python -m snncore train`, into the same runs folder ($SNNCORE_RUNS or ./runs, or ``runs_dir``),
so a notebook's run appears in the app and an app run loads here. Bad arguments raise one
ValueError (config.ConfigError) naming the field and what is allowed. Never imports streamlit.
"""
from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from .config import ConfigError, RunConfig, rule_param_clashes

N_PANEL_SNAPSHOTS = 10          # snapshots a rule's panels see (as the Train page: evenly spaced)


# ------------------------------------------------------------------------------ config
def _rule_fields(rule: str) -> list[str]:
    from .rules import get_rule
    return [f.name for f in dataclasses.fields(get_rule(rule).Params)]


def make_config(config: RunConfig | dict | str | Path | None = None, **kwargs) -> RunConfig:
    """The validated RunConfig of ``config`` (a RunConfig, a dict, or a TOML/JSON file) updated
    by ``kwargs``: any RunConfig field, or any hyperparameter of the chosen rule by its name
    (also ``rule_params={...}``). A name that is both a run field and one of the rule's
    hyperparameters (e.g. ssdp's ``schedule``) is refused as ambiguous: give the rule's in
    ``rule_params``. Raises ConfigError (a ValueError) naming the field and what is allowed."""
    if isinstance(config, RunConfig):
        values = config.to_dict()
    elif isinstance(config, dict):
        values = dict(config)
    elif isinstance(config, (str, Path)):
        values = RunConfig.load(config)
    elif config is None:
        values = {}
    else:
        raise ConfigError(f"config: expected a RunConfig, a dict or a TOML/JSON file path, got {type(config).__name__}")
    values.pop("lesson", None)           # a lesson preset file is a config plus its [lesson] text
    rule_params = dict(values.get("rule_params") or {})
    if "rule_params" in kwargs:
        rp = kwargs.pop("rule_params")
        if not isinstance(rp, dict):
            raise ConfigError("rule_params: expected a dict of the rule's hyperparameters")
        rule_params.update(rp)
    rule = kwargs.get("rule", values.get("rule", RunConfig().rule))
    fields = RunConfig.fields()
    try:
        hyper = _rule_fields(rule) if isinstance(rule, str) else []
    except ValueError as e:              # unknown rule: named before any of its parameters
        raise ConfigError(f"rule: {e}") from None
    for name, v in kwargs.items():
        is_field, is_hyper = name in fields and name != "rule_params", name in hyper
        if is_field and is_hyper:
            raise ConfigError(f"{name}: ambiguous, both the run's {fields[name].metadata.get('help', name)} and "
                              f"rule {rule!r}'s hyperparameter {name!r}; give the run's in config={{{name!r}: ...}} "
                              f"or the rule's as rule_params={{{name!r}: ...}}")
        if is_field:
            values[name] = v
        elif is_hyper:
            rule_params[name] = v
        else:
            raise ConfigError(f"{name}: not a run config field nor a hyperparameter of rule {rule!r} "
                              f"(rule {rule!r} has: {', '.join(hyper) or 'none'}; run fields: "
                              f"{', '.join(f for f in fields if f != 'rule_params')})")
    values["rule_params"] = rule_params
    return RunConfig.from_dict(values)


# ------------------------------------------------------------------------------ runs
class Spikes(NamedTuple):
    """A recorded raster: spikes [T, N] bool (time steps of the recent batches side by side x the
    kept neurons), the optimizer step of its snapshot, and the kept neurons' indices in the layer."""
    spikes: np.ndarray
    step: int
    neurons: np.ndarray | None


class Run:
    """One run in a RunStore (trained here, by the CLI or by the app).

    metrics:    DataFrame, one row per logged step: step, epoch (0-based, of that step), then one
                column per metric key as stored (train/loss, train/accuracy, test/accuracy,
                rate/<layer>, sync/chi, ...; the stored 'epoch' metric is named epochs_done)
    telemetry:  DataFrame of the rule's series: step, then one column per telemetry key
    status:     starting | running | paused | finished | stopped | failed (read from the store)
    changes:    DataFrame of its hyperparameter changes: step, name, value

    A live run (this process's background run, or one the app or the CLI started) can be paused,
    stepped and continued, and a hyperparameter changed while it runs (snncore/runs/control.py):

        run.pause()              # -> the step it holds at (the next batch to train)
        run.step(batches=1)      # train that many batches, hold again; -> the new step
        run.step_epoch()         # train to the end of the current epoch (evaluation, checkpoint); -> step
        run.set(a_plus=2e-3)     # lr or a rule hyperparameter, from the next batch; -> that step
        run.continue_()          # train on; -> the step it continued from

    Each waits for the run's answer (it comes at the next batch boundary, within a second) and
    raises one ValueError for a bad name or value (nothing is applied), a run that is not live, or
    a request the run refuses (e.g. a change to a rule that runs its own loop). Changes are stored
    with their step, drawn on the curves, and replayed by `--resume` and by the exported config
    (exported_config()), so the run stays reproducible.
    """

    def __init__(self, run_id: str, store, thread: threading.Thread | None = None):
        self.id, self.store, self._thread = run_id, store, thread
        self.error: str | None = None

    def __repr__(self) -> str:
        r = self.row
        return f"Run({self.id!r}, rule={r['config'].get('rule')!r}, status={r['status']!r}, step={r['step']})"

    # ---- state
    @property
    def row(self) -> dict:
        r = self.store.get_run(self.id)
        if r is None:
            raise ValueError(f"run {self.id!r} is no longer in {self.store.root}")
        return r

    @property
    def status(self) -> str:
        return self.row["status"]

    @property
    def config(self) -> dict:
        return self.row["config"]

    @property
    def summary(self) -> dict:
        return self.row.get("summary") or {}

    @property
    def finals(self) -> dict[str, float]:
        """Each quantity the run recorded (metrics and the rule's telemetry, by key), its mean over
        the run's last epoch: what a sweep's figures can show beside its metric."""
        return self.store.final_values(self.id)

    def wait(self, timeout: float | None = None) -> "Run":
        """Block until a background run (``train(wait=False)``) ends (or ``timeout`` seconds);
        returns the run. A run started elsewhere: returns at once."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self

    def stop(self, wait: bool = True) -> "Run":
        """Ask the run to stop, as the app's Stop does (the store's stop request; the trainer
        ends at its next flush with status 'stopped' and a checkpoint to resume from)."""
        self.store.request_stop(self.id)
        return self.wait() if wait else self

    # ---- live control
    def _control(self, action: str, arg: Any = None, timeout: float = 120.0) -> dict:
        import time as _time

        from .store import LIVE, TERMINAL
        status = self.status
        if status not in LIVE:
            raise ValueError(f"run {self.id} is {status}: only a live run (starting, running or paused) "
                             f"can be paused, stepped or changed")
        cid = self.store.request_control(self.id, action, arg)
        end = _time.monotonic() + timeout
        while _time.monotonic() < end:
            c = self.store.get_control(cid)
            if c and c["done"] is not None:
                if c["error"]:
                    if self.status in TERMINAL and action in ("step", "step_epoch"):
                        return {"step": self.row["step"]}     # the run ended before its last batch
                    raise ValueError(f"{action}: {c['error']}")
                return c["result"] or {}
            if self.status in TERMINAL:
                self.store.drop_controls(self.id, f"the run has {self.status}")
                continue
            _time.sleep(0.05)
        raise ValueError(f"{action}: run {self.id} did not answer within {timeout:.0f} s")

    def pause(self) -> int:
        """Hold the run before its next batch (status 'paused'); returns that step."""
        return int(self._control("pause")["step"])

    def continue_(self) -> int:
        """Train on after a pause; returns the step it continues from. (``resume_`` is the same.)"""
        return int(self._control("continue")["step"])

    resume_ = continue_

    def step(self, batches: int = 1) -> int:
        """Train ``batches`` batches (>= 1), then hold again (a running run is paused after them);
        returns the new step."""
        if isinstance(batches, bool) or not isinstance(batches, int) or batches < 1:
            raise ValueError(f"batches: expected a whole number >= 1, got {batches!r}")
        return int(self._control("step", batches)["step"])

    def step_epoch(self) -> int:
        """Train to the end of the current epoch (its evaluation and checkpoint included), then
        hold; returns the new step."""
        return int(self._control("step_epoch")["step"])

    def set(self, **changes) -> int:
        """Change hyperparameters (``lr`` or the rule's, by name) from the next batch on; returns
        the step they take effect at. Each is checked as a config is (the rule's ranges) before
        anything is sent: ``run.set(a_plus=2.0)`` raises ValueError naming the allowed range."""
        from .config import check_change
        if not changes:
            raise ValueError("set: give a hyperparameter, e.g. run.set(a_plus=2e-3) or run.set(lr=1e-3)")
        cfg = RunConfig.from_dict(self.config)
        typed = {name: check_change(cfg, name, value) for name, value in changes.items()}
        step = None
        for name, value in typed.items():
            step = int(self._control("set", {"name": name, "value": value})["step"])
        return step

    @property
    def changes(self) -> pd.DataFrame:
        """The run's hyperparameter changes in the order they take effect: step, name, value."""
        from .runs.control import run_changes
        return pd.DataFrame(run_changes(self.store, self.id, self.config), columns=["step", "name", "value"])

    def exported_config(self) -> RunConfig:
        """The run's config with its changes (RunConfig.changes): a fresh run of it trains the same
        weights; .command_line() / .to_toml() are what the Train page exports."""
        from .runs.control import replay_config
        return replay_config(self.store, self.id, self.config)

    # ---- data
    @property
    def metrics(self) -> pd.DataFrame:
        rows = self.store.metrics(self.id)
        if not rows:
            return pd.DataFrame(columns=["step", "epoch"])
        df = pd.DataFrame(rows, columns=["step", "epoch", "key", "value"])
        wide = df.pivot_table(index="step", columns="key", values="value", aggfunc="last").sort_index()
        wide.columns.name = None
        epoch = df.groupby("step")["epoch"].max()
        # the trainer's 'epoch' metric (epochs done, at evaluations only) would shadow the column
        wide = wide.rename(columns={"epoch": "epochs_done"})
        wide.insert(0, "epoch", epoch.reindex(wide.index).astype(int))
        return wide.reset_index()

    @property
    def telemetry(self) -> pd.DataFrame:
        tel = self.store.metrics_frame(self.id, table="telemetry")
        if tel.empty:
            return pd.DataFrame(columns=["step"])
        tel.columns.name = None
        return tel.reset_index()

    def layers(self) -> list[str]:
        """Layers with a recorded raster in the newest snapshot ('input' and the recorded layer)."""
        snap = self.store.load_snapshot(self.id)
        return [k.split("/", 1)[1] for k in (snap or {}) if k.startswith("raster/")]

    def spikes(self, layer: str | None = None) -> Spikes:
        """The newest recorded raster of ``layer`` (default: the layer the Train page shows
        first, the recorded hidden layer) as Spikes(spikes [T, N] bool, step, neurons)."""
        snap = self.store.load_snapshot(self.id)
        if snap is None:
            raise ValueError(f"run {self.id} has no spike snapshot yet")
        layers = [k.split("/", 1)[1] for k in snap if k.startswith("raster/")]
        layer = layer if layer is not None else layers[min(1, len(layers) - 1)]
        if layer not in layers:
            raise ValueError(f"layer: {layer!r} has no recorded raster (allowed: {', '.join(layers)})")
        return Spikes(np.asarray(snap[f"raster/{layer}"], dtype=bool).T.copy(), int(snap["step"]),
                      snap.get(f"neurons/{layer}"))

    # ---- figures
    def _panel_items(self, cfg: dict, tel: pd.DataFrame, m: pd.DataFrame) -> list:
        """The rule's Train-page panels (its panel builder, else its telemetry charts)."""
        from .viz.panels import PanelView, default_panels, figures as panel_figures
        try:
            from .rules import get_rule
            cls = get_rule(cfg["rule"])
        except ValueError:           # an old run of a rule no longer registered: telemetry alone
            cls = None
        builder = cls.panel_builder() if cls is not None else None
        view = PanelView(rule=cfg["rule"], cfg=cfg, tel=tel, run_id=self.id,
                         defaults=cls.Params() if cls is not None else None, metrics=m,
                         snapshots=lambda: self._panel_snapshots())
        if builder is None:
            return panel_figures(default_panels(view))
        if cls.panel_flag("NEEDS_SNAPSHOT") and not view.snaps:
            return []
        return panel_figures(builder(view))

    def _panel_snapshots(self) -> list:
        steps = self.store.snapshot_steps(self.id)
        if not steps:
            return []
        idx = sorted({int(i) for i in np.linspace(0, len(steps) - 1, min(N_PANEL_SNAPSHOTS, len(steps))).round()})
        out = []
        for i in idx:
            snap = self.store.load_snapshot(self.id, int(steps[i]))
            if snap is not None:
                out.append((int(steps[i]), {k[5:]: v for k, v in snap.items() if k.startswith("rule/")}))
        return out

    def _figures(self, layer: str | None = None) -> dict:
        from . import viz
        row = self.row
        cfg = row["config"]
        m = self.store.metrics_frame(self.id)
        out: dict = {}
        if m.empty:
            return out
        terms = [k for k in m.columns if k.startswith("train/l_")]
        out["loss"] = lambda: viz.lines_figure(m, ["train/loss", "test/loss"] + terms, ytitle="loss", smooth=5,
                                               title="loss (total and its terms)" if terms else "loss")
        if "train/accuracy" in m:
            out["accuracy"] = lambda: viz.lines_figure(m, ["train/accuracy", "test/accuracy"], title="accuracy",
                                                       ytitle="accuracy", smooth=5)
        if "l2l/iterations" in m:
            def l2l():
                d = m[["l2l/iterations"] + (["l2l/failed"] if "l2l/failed" in m else [])].dropna(subset=["l2l/iterations"])
                fit = (row["summary"] or {}).get("l2l_fit")
                return viz.l2l_figure(d["l2l/iterations"].tolist(),
                                      d["l2l/failed"].fillna(0).astype(bool).tolist() if "l2l/failed" in d else None,
                                      tuple(fit) if fit and None not in fit else None)
            out["l2l"] = l2l
        snap = self.store.load_snapshot(self.id)
        if snap is not None:
            from .rules import get_rule
            try:
                own = get_rule(cfg["rule"]).runs_own_loop
            except ValueError:
                own = False
            T = None if own else cfg["timesteps"]
            layers = [k.split("/", 1)[1] for k in snap if k.startswith("raster/")]
            lay = layer if layer in layers else layers[min(1, len(layers) - 1)]
            what = f"task {int(snap['task'])}, one trial" if "task" in snap else f"step {int(snap['step'])}"
            raster = snap[f"raster/{lay}"]
            out["raster"] = lambda: viz.raster_figure(raster, T=T, title=f"{lay} raster · {what}")
            out["rate"] = lambda: viz.rate_figure(snap.get(f"rate/{lay}", raster.mean(axis=0)), T=T,
                                                  title=f"{lay} population rate")
        if "sync/chi" in m:
            out["chi"] = lambda: viz.lines_figure(m, ["sync/chi"], title="synchrony chi (Golomb)", ytitle="chi", smooth=5)
        rate_cols = [c for c in m.columns if str(c).startswith("rate/")]
        if rate_cols:
            out["rates"] = lambda: viz.lines_figure(m, rate_cols, title="firing rate per layer",
                                                    ytitle="spikes / neuron / step", smooth=5)
        tel = self.store.metrics_frame(self.id, table="telemetry")
        for f in self._panel_items(cfg, tel if isinstance(tel, pd.DataFrame) else pd.DataFrame(), m):
            out.setdefault(f.key, (lambda fig: lambda: fig)(f.fig))
        from .runs.control import mark_changes, run_changes
        changes = run_changes(self.store, self.id, cfg)
        if changes:     # every curve over the optimizer step gets the changes' markers
            out = {k: (lambda make: lambda: mark_changes(make(), changes))(make) for k, make in out.items()}
        return out

    def figures(self) -> list[str]:
        """Names of the figures the Train page draws for this run now: loss, accuracy, raster,
        rate, chi, rates (as available), then the rule's panels by their keys."""
        return list(self._figures())

    def figure(self, name: str, layer: str | None = None):
        """The plotly Figure ``name`` (see figures()) as the app's Train page draws it; ``layer``
        picks the raster / rate layer (default: the recorded hidden layer)."""
        figs = self._figures(layer)
        if name not in figs:
            raise ValueError(f"figure: {name!r} is not drawn for run {self.id} "
                             f"(allowed: {', '.join(figs) or 'none yet'})")
        return figs[name]()

    # ---- analysis
    def inspect(self, samples: int = 64) -> pd.DataFrame:
        """The per-layer spike statistics of Inspect / `python -m snncore inspect` (the newest
        checkpoint run on ``samples`` test samples): one row per layer; ``.attrs`` holds the
        report's run-wide numbers (accuracy, SynOps, ...)."""
        from . import inspect as A
        _, _, path = A.run_checkpoint(self.store, self.id)
        state = A.load_checkpoint(path)
        rec = A.record_network(state, samples)
        rep = A.report(rec, A.analyse(rec), f"run {self.id}")
        df = pd.DataFrame([{"layer": n, **s} for n, s in rep["layers"].items()])
        df.attrs = {k: v for k, v in rep.items() if k != "layers"}
        return df


def _store(runs_dir=None):
    from .store import RunStore
    return RunStore(runs_dir)


def train(config: RunConfig | dict | str | Path | None = None, *, wait: bool = True, progress: bool = True,
          runs_dir: str | Path | None = None, **kwargs) -> Run:
    """Train one run in this process, as `python -m snncore train` does, and return its Run.

    ``config``: a RunConfig, a dict or a TOML/JSON file; ``kwargs``: RunConfig fields and the
    chosen rule's hyperparameters by name (see make_config). ``progress``: a tqdm bar
    (tqdm.auto: the notebook bar in Jupyter). ``wait=False`` returns at once with the run
    training in a background thread (the process's one torch thread pool, so no more threads
    than the run's budget): ``run.wait()``, ``run.stop()``, ``run.status``. ``runs_dir``:
    default $SNNCORE_RUNS or ./runs (the app's folder). Bad arguments raise ValueError before
    anything is written; a run that fails is stored as failed (``run.status``, ``run.error``)."""
    from .data import DatasetError, prepare_dataset
    from .train import resolve_device
    cfg = make_config(config, **kwargs)
    resolve_device(cfg.device)                 # cuda asked for without one: ValueError now
    try:
        prepare_dataset(cfg)
    except DatasetError as e:
        raise ValueError(str(e)) from None
    store = _store(runs_dir)
    run_id = store.create_run(cfg.to_dict())
    run = Run(run_id, store)
    if wait:
        _train_body(run, cfg, progress)
        return run
    # the thread writes through its own connection: sqlite connections are per thread
    t = threading.Thread(target=_train_body, args=(Run(run_id, _store(store.root)), cfg, progress, run),
                         name=f"snncore-run-{run_id}", daemon=True)
    run._thread = t
    t.start()
    return run


def _train_body(run: Run, cfg: RunConfig, progress: bool, report: Run | None = None) -> None:
    from .store import write_failure
    from .train import Trainer
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=None, desc=f"{cfg.rule} {run.id}", unit="step")

    def on_progress(p):
        if bar is not None:
            bar.total = p.total_steps
            bar.n = p.step
            if p.test_accuracy is not None:
                bar.set_postfix(test_acc=f"{p.test_accuracy:.3f}", refresh=False)
            bar.refresh()
    try:
        Trainer(cfg, run.store, run.id, on_progress=on_progress).run()
    except KeyboardInterrupt:      # a notebook's interrupt: stored as stopped (resumable), as the CLI does
        run.store.end_run(run.id, "stopped", error="interrupted")
        raise
    except Exception as e:  # noqa: BLE001 -- stored as failed with its text, as the CLI does
        reason = write_failure(e)
        msg = (f"cannot write to the runs folder {run.store.root} ({reason})" if reason
               else f"{type(e).__name__}: {e}" if not isinstance(e, ValueError) else str(e))
        for r in (run, report):
            if r is not None:
                r.error = msg
        try:
            run.store.end_run(run.id, "failed", error=msg)
        except Exception:  # noqa: BLE001 -- the store cannot be written: the reaper marks it later
            pass
        if report is None:
            raise
    finally:
        if bar is not None:
            bar.close()


def load(run_id: str, runs_dir: str | Path | None = None) -> Run:
    """The Run ``run_id`` of the runs folder (one trained here, by the CLI or by the app)."""
    from .store import check_run_id
    store = _store(runs_dir)
    check_run_id(run_id)
    if store.get_run(run_id) is None:
        raise ValueError(f"run {run_id!r} is not in {store.root}")
    return Run(run_id, store)


def runs(runs_dir: str | Path | None = None) -> pd.DataFrame:
    """The runs folder's runs, newest first, as `python -m snncore runs --json` lists them:
    run_id, status, rule, dataset, model, best_accuracy, epoch, step, created, error, name."""
    cols = ["run_id", "status", "rule", "dataset", "model", "best_accuracy", "epoch", "step", "created",
            "error", "name"]
    rows = [{"run_id": r["id"], "status": r["status"], "rule": r["config"].get("rule"),
             "dataset": r["config"].get("dataset"), "model": r["config"].get("model"),
             "best_accuracy": r.get("best_accuracy"), "epoch": r["epoch"], "step": r["step"],
             "created": r["created"], "error": r["error"], "name": r["name"]} for r in _store(runs_dir).list_runs()]
    return pd.DataFrame(rows, columns=cols)


def compare(run_ids: list, runs_dir: str | Path | None = None, level: float = 0.95,
            finished_only: bool = True) -> pd.DataFrame:
    """The Compare page's seed-group table of the runs: per group (runs equal but for the seed)
    and final metric, n, mean, sd, half, lo, hi (Student t interval at ``level``) and the seeds:
        half = t_{(1+level)/2, n-1} * s / sqrt(n).
    Metrics: the final ones (snncore.compare.FINAL_METRICS), then every quantity the runs
    recorded (a rule's telemetry, a layer's rate; RunStore.final_values: its mean over the last
    epoch). ``.attrs['runs']``: the per-run final-metrics table (with each run's group)."""
    from .compare import final_metrics_table, group_summary
    ids = [r.id if isinstance(r, Run) else str(r) for r in run_ids]
    store = _store(runs_dir)
    rows = []
    for rid in ids:
        row = store.get_run(rid)
        if row is None:
            raise ValueError(f"run {rid!r} is not in {store.root}")
        rows.append(row)
    table = final_metrics_table(store, rows, recorded=True)
    out = group_summary(table, level=level, finished_only=finished_only)
    out.attrs["runs"] = table
    return out



# ------------------------------------------------------------------------------ sweeps
def _grid_text(name: str, values) -> str:
    """{name: [v1, v2]} as `--grid` text (a list value in brackets), so a notebook's grid goes
    through the CLI's parsing and checks."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ValueError(f"grid {name!r}: expected a list of values, got {values!r}")

    def one(v):
        if isinstance(v, (list, tuple)):
            return "[" + ",".join(one(x) for x in v) + "]"
        if isinstance(v, bool):
            return str(v).lower()
        return repr(v) if isinstance(v, float) else str(v)
    return f"{name}=" + ",".join(one(v) for v in values)


def _range_text(name: str, r) -> str:
    """{name: (lo, hi)} or (lo, hi, "log") as `--range` text."""
    if not isinstance(r, (list, tuple)) or len(r) not in (2, 3) or (len(r) == 3 and r[2] != "log"):
        raise ValueError(f"ranges {name!r}: expected (lo, hi) or (lo, hi, 'log'), got {r!r}")
    return f"{name}={r[0]!r}:{r[1]!r}" + (":log" if len(r) == 3 else "")


class Sweep:
    """A sweep in the runs folder (``sc.sweep(...)`` returns one; ``sc.Sweep(sweep_id)`` opens
    one the app or the CLI ran): its summary, the trials table and the Sweep page's means and
    figures, computed by the same functions (snncore.sweeps.results, snncore.viz.sweep)."""

    def __init__(self, sweep_id: str, runs_dir: str | Path | None = None):
        from .store import check_run_id, default_runs_dir
        from .sweeps import engine
        check_run_id(sweep_id)
        self.id = sweep_id
        self.root = Path(runs_dir) if runs_dir else default_runs_dir()
        if engine.load_state(self.root, sweep_id) is None:
            raise ValueError(f"sweep {sweep_id!r} is not in {engine.sweeps_root(self.root)}")

    def _state(self) -> dict:
        from .sweeps import engine
        return engine.load_state(self.root, self.id)

    @property
    def summary(self) -> dict:
        """As `sweep --json` ends: sweep_id, status, trials, finished, failed, best, seconds, ..."""
        from .sweeps import engine
        return engine.summarize(self.root, self._state())

    @property
    def status(self) -> str:
        return self.summary["status"]

    @property
    def best(self) -> dict | None:
        """The best single trial: run_id, config, point, metric."""
        return self.summary["best"]

    @property
    def trials(self) -> pd.DataFrame:
        """One row per trial: its swept values (or config), seed, status, progress, the metric,
        run id, node, error (pending grid points too)."""
        from .sweeps import engine, results
        recs = engine.trial_records(self.root, self.id)
        store = _store(self.root)
        runs = {r["run_id"]: store.get_run(r["run_id"]) or {} for r in recs.values() if r.get("run_id")}
        return results.trials_frame(self._state(), recs, runs)

    @property
    def finals(self) -> pd.DataFrame:
        """Each finished trial's final values: "trial", "run", then one column per key the runs
        recorded (metrics and the rule's telemetry: a gate, a layer's rate or synchrony, the
        losses), each its mean over the run's last epoch (RunStore.final_values). Any of these
        keys goes to ``means(metric=...)`` and ``figure(..., metric=...)``."""
        from .sweeps import results
        return results.finals_frame(_store(self.root), self.trials)

    def _spec(self):
        from .sweeps.spec import SweepSpec
        return SweepSpec.from_dict(self._state()["spec"])

    def _done(self, metric: str | None):
        """(spec, quantity, the finished trials with it): the sweep's metric, or a final value."""
        from .sweeps import results
        spec, own = self._spec(), self.summary["metric"]
        metric = metric or own
        frame = self.trials
        if metric != own:
            finals = results.finals_frame(_store(self.root), frame)
            if metric not in results.quantities(own, finals):
                known = ", ".join(results.quantities(own, finals))
                raise ValueError(f"metric {metric!r}: no finished trial recorded it; choose one of {known}")
            frame = results.with_finals(frame, finals, [metric])
        return spec, metric, results.comparable(frame, spec, metric)

    def means(self, by: list[str] | str | None = None, level: float = 0.95, metric: str | None = None) -> pd.DataFrame:
        """The metric's mean over the finished trials at each value of ``by`` (default: every
        swept hyperparameter, or the config; a seeds-only sweep: one row over all seeds), with
        its Student-t interval over them: mean, half, lo, hi, n (range values binned as on the
        Sweep page). ``metric``: the sweep's own (default) or a key of ``finals`` (e.g. a
        rule's "gate_mean/fc1"); trials that did not record it are left out."""
        from .sweeps import results
        spec, metric, done = self._done(metric)
        by = [by] if isinstance(by, str) else list(by or results.names(spec))
        if not by:                        # only seeds swept: one mean over all of them
            return results.group_stats(done.assign(all="all"), ["all"], metric, level)
        return results.group_stats(done, by, metric, level)

    def runs(self) -> list:
        """The trials' runs (Run objects), in trial order."""
        return [Run(r, _store(self.root)) for r in self.trials["run"] if r]

    def figure(self, kind: str = "parallel", x: str | None = None, y: str | None = None, metric: str | None = None):
        """The Sweep page's figures: "parallel" (hyperparameters to metric), "effect" (the mean
        over x with its interval; x defaults to the first swept name), "heatmap" (the mean over
        x and y). ``metric``: the sweep's own (default) or a key of ``finals``."""
        from .sweeps import results
        from .viz import sweep as vz
        spec, metric, done = self._done(metric)
        names = results.names(spec)
        log = {a.name: a.log for a in spec.axes if a.values is None}
        if kind == "parallel":
            return vz.parallel_figure(done, names + (["seed"] if done["seed"].nunique() > 1 else []), metric, log=log)
        if not names:
            raise ValueError(f"figure {kind!r}: this sweep has no swept hyperparameter (only seeds)")
        x = x or names[0]
        if kind == "effect":
            return vz.effect_figure(results.group_stats(done, [x], metric), x, metric, log=log.get(x))
        if kind == "heatmap":
            y = y or next((n for n in names if n != x), None)
            if y is None:
                raise ValueError("figure 'heatmap': needs two swept hyperparameters")
            return vz.heatmap_figure(results.group_stats(done, [x, y], metric), x, y, metric)
        raise ValueError(f"figure {kind!r}: choose parallel, effect or heatmap")

    def resume(self, progress: bool = True) -> "Sweep":
        """Run the trials a stopped sweep did not end (finished and failed ones are kept);
        ``progress``: a tqdm bar over the trials."""
        from .sweeps import engine
        bar = _SweepBar(engine.Options(**self._state()["options"])) if progress else None
        try:
            engine.resume(self.root, self.id, on_event=bar)
        finally:
            if bar is not None:
                bar.close()
        return self

    def __repr__(self) -> str:
        s = self.summary
        return (f"Sweep({self.id!r}, status={s['status']!r}, {s['finished']}/{s['trials']} finished, "
                f"{s['failed']} failed, best={s['best']['metric'] if s['best'] else None})")


def sweep(config: RunConfig | dict | str | Path | None = None, *, grid: dict | None = None,
          ranges: dict | None = None, seeds: int = 1, search: str = "grid", trials: int = 0,
          metric: str = "test_accuracy", mode: str = "max", scheduler: str = "none", max_concurrent: int = 0,
          cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0, address: str = "", name: str = "",
          retries: int = 0, runs_dir: str | Path | None = None, progress: bool = True, **kwargs) -> Sweep:
    """Run a sweep with Ray Tune in this process, as `python -m snncore sweep` does, and return it.

    ``config`` and ``kwargs`` make the base config (see make_config); ``grid`` maps a config
    field or rule hyperparameter (NAME or RULE.NAME) to its values, ``ranges`` to (lo, hi) or
    (lo, hi, "log") for search="random" / "optuna" with ``trials``; ``seeds`` per point. The rest
    are the CLI's sweep options. A local Ray starts on first use and stays for the next sweep;
    ``address`` joins a cluster. Every trial is an ordinary run (sc.runs(), sc.load, the app).
    ``progress``: a tqdm bar over the trials (best metric and failures so far).
    Bad input raises ValueError (the CLI's one line) before anything starts."""
    from .data import DatasetError, prepare_dataset
    from .sweeps import engine
    from .sweeps.spec import parse_spec
    base = make_config(config, **kwargs)
    spec = parse_spec(base, [_grid_text(k, v) for k, v in (grid or {}).items()],
                      [_range_text(k, v) for k, v in (ranges or {}).items()], seeds=seeds, search=search,
                      trials=trials)
    opts = engine.Options(metric=metric, mode=mode, scheduler=scheduler, max_concurrent=max_concurrent,
                          cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial, address=address,
                          name=name, retries=retries)
    engine.check_options(spec, opts)
    try:
        prepare_dataset(base)
    except DatasetError as e:
        raise ValueError(str(e)) from None
    root = Path(runs_dir) if runs_dir else None
    if root is None:
        from .store import default_runs_dir
        root = default_runs_dir()
    bar = _SweepBar(opts) if progress else None
    try:
        out = engine.start(spec, opts, root, on_event=bar)
    finally:
        if bar is not None:
            bar.close()
    return Sweep(out["sweep_id"], root)


class _SweepBar:
    """A tqdm bar over a sweep's trials with the best metric and the failures so far, fed by the
    engine's events (engine._Progress)."""

    def __init__(self, opts):
        self.opts, self.bar, self.best, self.failed = opts, None, None, 0

    def __call__(self, kind: str, info: dict) -> None:
        if kind == "start":
            from tqdm.auto import tqdm
            self.bar = tqdm(total=info["trials"], initial=info["trials"] - info["todo"], unit="trial",
                            desc=info["sweep_id"])
            return
        m = info.get("metric")
        if info["status"] == "failed":
            self.failed += 1
        elif isinstance(m, (int, float)) and (self.best is None or (m > self.best) == (self.opts.mode == "max")):
            self.best = m
        if self.bar is not None:
            self.bar.n = info["ended_count"]
            post = {f"best {self.opts.metric}": "-" if self.best is None else f"{self.best:.4f}"}
            if self.failed:
                post["failed"] = self.failed
            self.bar.set_postfix(post, refresh=False)
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def sweeps(runs_dir: str | Path | None = None) -> pd.DataFrame:
    """The runs folder's sweeps, as `python -m snncore sweeps --json` lists them: sweep_id, name,
    status, trials, finished, failed, metric, best_metric, best_run, seconds, created."""
    from .store import default_runs_dir
    from .sweeps import engine
    root = Path(runs_dir) if runs_dir else default_runs_dir()
    cols = ["sweep_id", "name", "status", "trials", "finished", "failed", "metric", "best_metric", "best_run",
            "seconds", "created"]
    rows = [{**{k: s.get(k) for k in cols}, "best_metric": (s["best"] or {}).get("metric"),
             "best_run": (s["best"] or {}).get("run_id")} for s in engine.list_sweeps(root)]
    return pd.DataFrame(rows, columns=cols)
