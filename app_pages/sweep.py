"""Sweep: a base config, up to three hyperparameters with their values or ranges, seeds -> launch a
Ray Tune sweep in its own process -> its trials live, the metric over the hyperparameters, the best
point one click from Train.

The sweep is `python -m snncore sweep ...` started in the background (snncore/sweeps/launch.py);
this page only reads its state (<runs>/sweeps/<id>/) and the runs' rows, so a reload or a second
tab shows the same sweep: its id is in the URL (?sweep=ID).
"""
from __future__ import annotations

import dataclasses
import os
import shlex
import signal
import time

import streamlit as st

from app_pages import form_state as fs
from app_pages.common import get_store, who
from app_pages.dataset_panel import missing_files
from snncore import classroom
from snncore.config import DATASETS, MODELS, OWNED, ConfigError, RunConfig
from snncore.rules import FORM_RULE, get_rule, rule_names
from snncore.store import check_run_id
from snncore.sweeps import engine, results
from snncore.sweeps.launch import launch_info, launch_resume, launch_sweep, log_tail
from snncore.sweeps.spec import SEARCHES, SweepError, SweepSpec, parse_spec
from snncore.viz import sweep as vz

PLOT_CONFIG = {"displaylogo": False}
NONE = "(none)"
N_AXES = 3
LIVE_SWEEP = ("running", "starting")
# fields drawn in the form itself; every other config field is under "more base settings"
MAIN = ("dataset", "model", "rule", "rule_params", "name", "epochs", "lr", "hidden", "timesteps", "batch_size",
        "n_train", "seed", "device")
DEFAULT_GRID = ("lr", "5e-4,1e-3,5e-3")

st.title("Sweep")
store = get_store()
if store is None:
    st.stop()
root = store.root
D = RunConfig()


# ---- the form ---------------------------------------------------------------------------------
def base_widgets() -> dict:
    """The base config's widgets (keys sw_<field>): what every trial shares unless swept."""
    rule = fs.select(st, "rule", rule_names(), "sw_rule", FORM_RULE, help="the plasticity rule of every trial")
    rule = fs.own_rule(st, "sw_rule_path", rule)
    rule_cls = get_rule(rule)
    values: dict = {"rule": rule}
    if rule_cls.requires_dataset:
        st.caption(f"dataset **{rule_cls.requires_dataset}** (set by the rule)")
    else:
        values["dataset"] = fs.select(st, "dataset", [d for d in DATASETS if d not in OWNED["dataset"]],
                                      "sw_dataset", D.dataset)
    if not rule_cls.requires_model:
        values["model"] = fs.select(st, "model", [m for m in MODELS if m not in OWNED["model"]], "sw_model", D.model)
    c1, c2 = st.columns(2)
    values["epochs"] = fs.number(c1, "epochs", "sw_epochs", D.epochs, step=1)
    values["lr"] = fs.number(c2, "learning rate", "sw_lr", D.lr, format="%.5g")
    hidden = fs.text(c1, "hidden sizes", "sw_hidden", ",".join(map(str, D.hidden)), help="e.g. 256 or 256,128")
    values["hidden"] = [s.strip() for s in hidden.split(",") if s.strip()]
    values["timesteps"] = fs.number(c2, "timesteps T", "sw_timesteps", D.timesteps, step=1)
    values["batch_size"] = fs.number(c1, "batch size", "sw_batch_size", D.batch_size, step=1)
    values["n_train"] = fs.number(c2, "train samples", "sw_n_train", D.n_train, step=1,
                                  help=RunConfig.fields()["n_train"].metadata.get("help"))
    values["seed"] = fs.number(c1, "first seed", "sw_seed", D.seed, step=1)
    values["device"] = fs.select(c2, "device", ("auto", "cpu", "cuda"), "sw_device", D.device)
    with st.expander(f"{rule} hyperparameters (base values)"):
        cls = rule_cls.Params
        values["rule_params"] = {f.name: fs.field_widget(st, f.name, f"sw_rp_{rule}_{f.name}", getattr(cls(), f.name),
                                                         f.metadata) for f in dataclasses.fields(cls)}
    with st.expander("more base settings"):
        for name, f in RunConfig.fields().items():
            if name not in MAIN:
                values[name] = fs.field_widget(st, name.replace("_", " "), f"sw_{name}", getattr(D, name), f.metadata)
    return values


def sweepable(rule: str) -> list[str]:
    """The rule's hyperparameters (as RULE.NAME, which the spec resolves), "rule", every config
    field, then the other rules' hyperparameters (for a sweep over rules: each applies at its own
    rule's points)."""
    own = [f"{rule}.{f.name}" for f in dataclasses.fields(get_rule(rule).Params)]
    fields = [n for n in RunConfig.fields() if n not in ("rule", "rule_params", "name")]
    others = [f"{r}.{f.name}" for r in rule_names() if r != rule for f in dataclasses.fields(get_rule(r).Params)]
    return own + ["rule"] + fields + others


def axis_widgets(rule: str, search: str) -> tuple[list[str], list[str]]:
    """Up to three (name, values) rows -> the --grid and --range texts."""
    names = [NONE, *sweepable(rule)]
    grids, ranges = [], []
    hint = "v1,v2,... " + ("or a range lo:hi or lo:hi:log" if search != "grid" else "(ranges need random/optuna search)")
    for i in range(N_AXES):
        c1, c2 = st.columns([1, 1])
        default = DEFAULT_GRID[0] if i == 0 else NONE
        name = fs.select(c1, f"hyperparameter {i + 1}", names, f"sw_ax{i}", default,
                         format_func=lambda n: n.split(".")[-1] + " (rule)" if n.startswith(rule + ".") else n)
        text = fs.text(c2, f"values {i + 1}", f"sw_val{i}", DEFAULT_GRID[1] if i == 0 else "", help=hint,
                       disabled=name == NONE).strip()
        if name == NONE:
            continue
        is_range = ":" in text and "," not in text       # grid search then says ranges need random/optuna
        (ranges if is_range else grids).append(f"{name}={text}")
    return grids, ranges


@st.cache_data(ttl=30, show_spinner=False)
def recorded_keys(root_dir: str, rule: str) -> list[str]:
    """What the newest finished run of this rule recorded (a sweep can rank by any of it)."""
    store_ = get_store()
    runs = [r for r in store_.runs_with_status("finished") if r["config"].get("rule") == rule]
    if not runs:
        return []
    keys = store_.final_values(runs[-1]["id"])
    return [k for k in keys if engine.RECORDED_METRIC.fullmatch(k) and k not in results.SUMMARY_TWINS]


def check(values: dict, grids, ranges, seeds, search, trials, metric, scheduler, name, cpus=1.0, gpus=0.0):
    """(base, spec, None) or (None, None, the one-line message the CLI gives for the same input)."""
    try:
        base = RunConfig.from_dict(values)
        spec = parse_spec(base, grids, ranges, seeds=seeds, search=search, trials=trials)
        opts = engine.Options(metric=metric, scheduler=scheduler, name=name, cpus_per_trial=cpus, gpus_per_trial=gpus)
        engine.check_options(spec, opts)
        engine.check_cluster(opts)            # a local Ray: this machine's cores and GPUs
    except (SweepError, ConfigError) as e:
        return None, None, str(e)
    missing = missing_files(base)
    if missing:
        return None, None, missing[0]
    return base, spec, None


with st.sidebar:
    st.header("New sweep")
    base_values = base_widgets()
    st.subheader("Swept")
    search = fs.select(st, "search", SEARCHES, "sw_search", "grid",
                       help="grid: every combination of the values; random / optuna: --trials samples "
                            "(values or ranges lo:hi[:log])")
    grids, ranges = axis_widgets(base_values["rule"], search)
    c1, c2 = st.columns(2)
    seeds = int(fs.number(c1, "seeds per point", "sw_seeds", 2, min_value=1, max_value=100, step=1))
    trials = int(fs.number(c2, "trials", "sw_trials", 8, min_value=1, max_value=10_000, step=1,
                           disabled=search == "grid", help="random / optuna search: how many trials"))
    recorded = recorded_keys(str(root), base_values["rule"])
    metric = fs.select(c1, "metric", [*engine.METRICS, *recorded], "sw_metric", "test_accuracy",
                       help="a key of the run's summary"
                            + (f", or a quantity {base_values['rule']} runs record (its mean over the last epoch; "
                               "listed from the newest finished one)" if recorded else ""))
    mode = fs.select(c2, "mode", ("max", "min"), "sw_mode", "max")
    scheduler = fs.select(c1, "scheduler", ("none", "asha"), "sw_scheduler", "none",
                          help="asha stops poor trials early from their per-epoch test accuracy")
    concurrent = int(fs.number(c2, "max concurrent", "sw_concurrent", 0, min_value=0, max_value=1024, step=1,
                               help="trials at once (0: one per core)"))
    cpus = float(fs.number(c1, "CPUs per trial", "sw_cpus", 1.0, min_value=0.25, max_value=1024.0, step=1.0,
                           help="Ray CPUs per trial; a trial trains on this many threads (at least 1)"))
    gpus = float(fs.number(c2, "GPUs per trial", "sw_gpus", 0.0, min_value=0.0, max_value=64.0, step=0.25,
                           help="Ray GPUs per trial (0.5: two trials share a GPU); needs device cuda or auto"))
    sweep_name = fs.text(st, "name", "sw_name", "", help="a label; its runs are named NAME.<trial>").strip()
    base, spec, error = check(base_values, grids, ranges, seeds, search, trials if search != "grid" else 0,
                              metric, scheduler, sweep_name, cpus, gpus)
    launch = st.button("Launch", type="primary", width="stretch", key="sw_launch")
    if error:
        st.error(f"Cannot launch: {error}")
    else:
        n = len(spec.grid_points()) if spec.search == "grid" else spec.trials
        st.caption(f"{n} trials")
        import torch
        if note := engine.unused_gpus(gpus, {c.get("device", "auto") for c in (spec.configs or [spec.base])},
                                      torch.cuda.device_count(), flag="GPUs per trial"):
            st.warning(f"This machine: {note}.")
        args = [*[a for g in grids for a in ("--grid", g)], *[a for r in ranges for a in ("--range", r)],
                "--seeds", str(seeds), "--search", search, "--metric", metric, "--mode", mode,
                "--scheduler", scheduler, "--max-concurrent", str(concurrent),
                "--cpus-per-trial", f"{cpus:g}", "--gpus-per-trial", f"{gpus:g}"]
        if search != "grid":
            args += ["--trials", str(trials)]
        if sweep_name:
            args += ["--name", sweep_name]
        with st.expander("as a command line"):
            st.code(base.command_line().replace(" train ", " sweep ", 1) + " "
                    + " ".join(shlex.quote(a) for a in args), language="bash", wrap_lines=True)
        if launch:
            try:
                classroom.check_sweeps(who())
            except classroom.NotAllowed as e:
                st.error(f"Cannot launch: {e}.")
            else:
                sid = launch_sweep(root, base, args)
                st.session_state["sw_launched"] = sid
                st.query_params["sweep"] = sid
                st.rerun()


# ---- which sweep to show ----------------------------------------------------------------------
def _label(s: dict) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(s.get("created") or 0))
    name = f" · {s['name']}" if s.get("name") else ""
    return f"{s['sweep_id']}{name} · {s['status']} · {s['finished']}/{s['trials']} finished · {when}"


sweeps = engine.list_sweeps(root)[::-1]          # newest first
by_id = {s["sweep_id"]: s for s in sweeps}
wanted = st.query_params.get("sweep") or None
if wanted:
    try:
        check_run_id(wanted)
    except ValueError:
        st.error(f"Not a sweep id: {wanted!r}")
        wanted = None
if launched := st.session_state.pop("sw_launched", None):
    st.success(f"Launched sweep {launched}")
if not sweeps and not wanted:
    st.info("No sweeps yet. Choose a base config, up to three hyperparameters with their values and the "
            "seeds in the sidebar, then press **Launch**. From a shell: `python -m snncore sweep --help`.")
    st.stop()
ids = list(by_id)
if wanted and wanted not in by_id:
    ids = [wanted, *ids]              # launched, its driver not yet started (or not in this folder)
if "sw_pick" not in st.session_state or wanted != st.session_state.get("sw_shown"):
    st.session_state["sw_pick"] = wanted      # arrived by a link or Launch: the picker follows the URL
pick = st.selectbox("sweep", ids, key="sw_pick", placeholder="choose a sweep",
                    format_func=lambda i: _label(by_id[i]) if i in by_id else i)
if pick != wanted:
    wanted = pick
    if pick:
        st.query_params["sweep"] = pick
    elif "sweep" in st.query_params:
        del st.query_params["sweep"]
st.session_state["sw_shown"] = wanted

if not wanted:
    st.subheader(f"Sweeps ({len(sweeps)})")
    st.dataframe([{"sweep": s["sweep_id"], "name": s["name"], "status": s["status"], "trials": s["trials"],
                   "finished": s["finished"], "failed": s["failed"], "metric": s["metric"],
                   "best": None if not s["best"] else s["best"]["metric"],
                   "seconds": s["seconds"],
                   "started": time.strftime("%Y-%m-%d %H:%M", time.localtime(s.get("created") or 0))}
                  for s in sweeps], hide_index=True, width="stretch",
                 column_config={"best": st.column_config.NumberColumn("best", format="%.4g")})
    st.caption("Pick one above to see its trials and results.")
    st.stop()


# ---- one sweep --------------------------------------------------------------------------------
def _state_now(sid: str):
    state = engine.load_state(root, sid)
    info = launch_info(root, sid)
    if state is None:
        return None, ("starting" if info and info["alive"] else None), info
    if info and info["alive"] and state["status"] in ("stopped", "failed"):
        return state, "starting", info         # a Resume launched, its driver not yet marked running
    return state, state["status"], info


@st.cache_data(max_entries=1024, show_spinner=False)
def _final_values(root_dir: str, run_id: str, step: int) -> dict:
    """A finished run's final values (its step in the key: a resumed run is read again)."""
    return get_store().final_values(run_id)


class _CachedFinals:
    """results.finals_frame's store, through the cache: the page redraws every 2 s mid-sweep."""

    def __init__(self, runs: dict):
        self.runs = runs

    def final_values(self, run_id: str) -> dict:
        return _final_values(str(root), run_id, int(self.runs.get(run_id, {}).get("step") or 0))


_, first_status, _ = _state_now(wanted)


@st.fragment(run_every=2.0 if first_status in LIVE_SWEEP else None)
def sweep_view(sid: str) -> None:
    state, status, info = _state_now(sid)
    if status != first_status:
        st.rerun()                  # started, ended or resumed: the whole page (picker, timer)
    if state is None:
        if status == "starting":
            st.info(f"Starting sweep {sid}: checking the grid, loading the data and starting Ray …")
        elif info:
            st.error(f"Sweep {sid} did not start. Its log ends with:")
            st.code(log_tail(root, sid) or "(empty log)", language=None, wrap_lines=True)
        else:
            st.warning(f"No sweep {sid} in {engine.sweeps_root(root).resolve()}.")
        return
    summary = engine.summarize(root, state)
    spec = SweepSpec.from_dict(state["spec"])
    metric, mode = summary["metric"], summary["mode"]
    records = engine.trial_records(root, sid)
    runs = {r["run_id"]: store.get_run(r["run_id"]) or {} for r in records.values() if r.get("run_id")}
    frame = results.trials_frame(state, records, runs)
    n, ended = summary["trials"], summary["finished"] + summary["failed"] + summary["early_stopped"]
    running = int(frame["status"].isin(("starting", "running")).sum())

    # ---- status line, resume
    title = f"**{summary['name']}** · " if summary["name"] else ""
    secs = state.get("seconds", 0.0) if status != "running" else time.time() - state.get("created", time.time())
    st.markdown(f"{title}`{sid}` · **{status}** · {summary['finished']} of {n} finished, {summary['failed']} failed"
                + (f", {summary['early_stopped']} stopped early" if summary["early_stopped"] else "")
                + (f", {running} running" if running else "") + f" · {secs:.0f}s"
                + f" · {spec.search} search · {metric} ({mode})")
    c1, c2 = st.columns([6, 1], vertical_alignment="center")
    c1.progress(min(ended / n, 1.0) if n else 0.0)
    if status == "running" and c2.button("Stop", key=f"sw_stop_{sid}", width="stretch",
                                         help="stops the sweep's driver (as Ctrl-C would): running trials end, "
                                              "the rest wait for Resume"):
        try:
            classroom.check_sweeps(who())
            os.kill(int(state["pid"]), signal.SIGINT)
        except classroom.NotAllowed as e:
            st.error(str(e))
        except (OSError, TypeError, ValueError) as e:
            st.error(f"Could not stop the driver (pid {state.get('pid')}): {e}")
        else:
            st.toast("Stop sent: the sweep ends its running trials and is marked stopped.")
    if status in ("stopped", "failed"):
        why = state.get("error") or "its driver ended with trials left"
        st.warning(f"The sweep {status}: {why}. Resume runs only the trials that did not end "
                   "(finished and failed ones are kept).")
        if st.button("Resume", key=f"sw_resume_{sid}", type="primary"):
            try:
                classroom.check_sweeps(who())
            except classroom.NotAllowed as e:
                st.error(str(e))
            else:
                launch_resume(root, sid)
                time.sleep(0.3)
                st.rerun()
        if info and not info["alive"] and (tail := log_tail(root, sid)):
            with st.expander("the driver's log"):
                st.code(tail, language=None, wrap_lines=True)

    # ---- trials table
    st.subheader("Trials")
    shown = frame.copy()
    shown["run"] = [f"train?run={r}" if r else None for r in shown["run"]]
    for a in results.names(spec):          # a rule hyperparameter at other rules' points: "n/a", not None
        if a in shown and shown[a].isna().any():
            shown[a] = [vz._label(v) for v in shown[a]]
    st.dataframe(shown, hide_index=True, width="stretch", key=f"sw_table_{sid}", column_config={
        "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="percent"),
        metric: st.column_config.NumberColumn(metric, format="%.4g"),
        "run": st.column_config.LinkColumn("run", display_text=r"run=(.*)$", width="medium",
                                           help="the trial's run on Train"),
        "error": st.column_config.TextColumn("error", width="large")})
    failed = frame[frame["status"] == "failed"]
    if len(failed):
        with st.expander(f"failed trials ({len(failed)}) and why", expanded=len(failed) <= 3):
            for _, r in failed.iterrows():
                st.error(f"trial {r['trial']} ({r['run'] or 'no run'}): {r['error'] or 'no reason recorded'}")
    finals = results.finals_frame(_CachedFinals(runs), frame)
    st.download_button("Download the trials (CSV)", results.with_finals(frame, finals).to_csv(index=False).encode(),
                       file_name=f"{sid}_trials.csv", mime="text/csv", key=f"sw_csv_{sid}",
                       help="the table, then each finished trial's final values (every metric and telemetry "
                            "key, its mean over the run's last epoch)")

    # ---- results
    names = results.names(spec)
    done = results.comparable(frame, spec, metric)
    log = {a.name: a.log for a in spec.axes if a.values is None}
    if done.empty:
        st.info("No trial has finished yet: the plots appear with the first finished trial."
                if status in LIVE_SWEEP else "No trial finished: nothing to plot.")
        return
    st.subheader("Best point")
    binned = spec.search != "grid" and any(a.values is None for a in spec.axes)
    if names:
        stats = results.group_stats(done, names, metric)
        best = results.best_point(stats, mode)
        pt = {k: best[k] for k in names}
        desc = ", ".join(f"{k} = {vz._label(v)}" for k, v in pt.items())
        st.markdown(f"{desc}: mean {metric} **{vz.ci_text(best['mean'], best['half'])}** (95 % CI over "
                    f"{int(best['n'])} trial{'s' if best['n'] != 1 else ''})"
                    + (" · range values are bin centres" if binned else ""))
    else:
        stats, pt = None, {}
        ci = results.group_stats(done.assign(_all=0), ["_all"], metric).iloc[0]
        st.markdown(f"mean {metric} over the seeds: **{vz.ci_text(ci['mean'], ci['half'])}** (n = {int(ci['n'])})")
    if summary["best"]:
        b = summary["best"]
        st.caption(f"best single trial: {metric} {b['metric']:.4g} (run {b['run_id']}, {b['point']})")
    # with binned ranges the best trial's exact values, else the best point at the base seed
    open_cfg = summary["best"]["config"] if (not pt or binned) and summary["best"] else results.point_config(state, pt)
    if st.button("Open in Train", key=f"sw_open_train_{sid}", icon=":material/rocket_launch:",
                 help="Train's form filled with this point's config"):
        try:
            query = fs.non_default(RunConfig.from_dict({k: v for k, v in open_cfg.items() if k != "name"}))
        except ConfigError as e:
            st.error(f"This point's config no longer validates: {e}")
        else:
            st.session_state.pop("_form_from_url_done", None)     # Train reads the link's config again
            st.switch_page("app_pages/train.py", query_params=query)

    # ---- any recorded quantity over the hyperparameters (the metric, or a final value)
    qs = results.quantities(metric, finals)
    q = st.columns([2, 3])[0].selectbox(
        "show", qs, key=f"sw_q_{sid}",
        help=f"{metric} (the sweep's metric), or a value each finished run recorded, at its end: its mean over "
             "the run's last epoch (a rule's gate or weight change, a layer's rate or synchrony, a loss)")
    if q != metric:
        done = results.comparable(results.with_finals(frame, finals, [q]), spec, q)
        if done.empty:
            st.info(f"No finished trial recorded {q} in its last epoch.")
            return
        if lacking := int((frame["status"] == results.DONE).sum()) - len(done):
            st.caption(f"{lacking} finished trial{'s' if lacking != 1 else ''} recorded no {q} in the last epoch "
                       "(a rule's phase, a layer it does not log): left out below.")
    if not names:
        if q != metric:
            ci = results.group_stats(done.assign(_all=0), ["_all"], q).iloc[0]
            st.markdown(f"mean final {q} over the seeds: **{vz.ci_text(ci['mean'], ci['half'])}** (n = {int(ci['n'])})")
        return
    shown_q = q if q == metric else f"final {q}"
    st.subheader(f"{shown_q} over the {'configs' if spec.configs is not None else 'hyperparameters'}")
    axes = names + (["seed"] if spec.seeds > 1 or done["seed"].nunique() > 1 else [])
    st.plotly_chart(vz.parallel_figure(done, axes, q, log=log), config=PLOT_CONFIG, key=f"sw_par_{sid}")
    if len(names) >= 2:
        c1, c2, _ = st.columns([1, 1, 2])
        x = c1.selectbox("heatmap x", names, index=0, key=f"sw_hx_{sid}")
        y = c2.selectbox("heatmap y", [n for n in names if n != x], index=0, key=f"sw_hy_{sid}")
        st.plotly_chart(vz.heatmap_figure(results.group_stats(done, [x, y], q), x, y, q),
                        config=PLOT_CONFIG, key=f"sw_heat_{sid}")
    st.caption("Means over the finished trials at each value (its seeds, and the other hyperparameters' values); "
               "the 95 % interval is Student's t over them, undefined for a single trial."
               + ("" if q == metric else f" A trial's {q} is its mean over the run's last epoch."))
    if na := [a for a in names if a in done and done[a].isna().any()]:
        st.caption(f"n/a: {', '.join(na)} at the points of rules without it; "
                   f"{'its' if len(na) == 1 else 'each one’s'} effect below is over its own rule's points.")
    cols = st.columns(min(len(names), 3))
    for i, a in enumerate(names):
        cols[i % len(cols)].plotly_chart(vz.effect_figure(results.group_stats(done, [a], q), a, q,
                                                          log=log.get(a)),
                                         config=PLOT_CONFIG, key=f"sw_eff_{sid}_{a}")


sweep_view(wanted)
st.caption(f"Runs folder: {root.resolve()} · sweeps in {engine.sweeps_root(root).resolve()}")
