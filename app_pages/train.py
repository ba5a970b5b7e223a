"""Train: choose dataset / model / rule / hyperparameters -> start a run -> live panels.

The run is its own process; this page only reads the RunStore, so a reload or a second tab
reattaches to the live run (its id is in the URL: ?run=ID).
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import streamlit as st

from app_pages import form_state as fs
from app_pages import lesson, rule_panels
from app_pages.common import get_store, timed, who
from app_pages.dataset_panel import dataset_fields, missing_files, render_dataset_info
from snncore import classroom, viz
from snncore.config import CONV_MODELS, DATASETS, MODELS, OWNED, SURROGATES, ConfigError, RunConfig
from snncore.health import chance_warning
from snncore.runs.control import change_label, mark_changes, replay_config, run_changes
from snncore.presets import scan_presets
from snncore.train import resolve_device
from snncore.rules import FORM_RULE, get_rule, rule_names
from snncore.rules.base import Rule
from snncore.store import LIVE

st.title("Train")
store = get_store()
if store is None:
    st.stop()
D = RunConfig()


def rule_param_widgets(rule: str) -> dict:
    """One widget per hyperparameter of the rule, from its Params dataclass (defaults = paper's)."""
    cls = get_rule(rule).Params
    return {f.name: fs.field_widget(st, f.name, fs.rp_key(rule, f.name), getattr(cls(), f.name), f.metadata)
            for f in dataclasses.fields(cls)}


# fields drawn in the main form; every other config field gets a widget under "more settings"
MAIN = {"dataset", "model", "rule", "rule_params", "epochs", "timesteps", "batch_size", "lr", "device", "seed",
        "hidden", "surrogate", "readout", "tau", "v_threshold", "data_dir", "encoding", "augment", "frames",
        "frame_mode", "syn_classes", "syn_channels", "syn_group", "syn_samples", "syn_sync", "syn_jitter",
        "syn_noise"}


def more_settings(model: str, own_loop: bool) -> dict:
    """Widgets for the remaining RunConfig fields, generated from their metadata."""
    values = {}
    for name, f in RunConfig.fields().items():
        if name in MAIN or (name == "width" and model not in CONV_MODELS) or (own_loop and name != "name"):
            continue
        values[name] = fs.field_widget(st, name.replace("_", " "), name, getattr(D, name), f.metadata)
    return values


def _elapsed(run: dict) -> float:
    """Seconds the run has spent running (the store moves a resumed run's start past its pause)."""
    if not run["started"]:
        return 0.0
    return max(0.0, (run["ended"] or time.time()) - run["started"])


def progress_line(run: dict, own_loop_run: bool) -> tuple[float, str]:
    """(fraction, text) of the progress bar. No ETA until there is progress to extrapolate from
    (it read 'ETA 0s' while starting and through IP2's first task), and the task in progress is
    named (1-based), not the count of tasks done ('task 0/6' while task 1 ran)."""
    status, cfg = run["status"], run["config"]
    total, step = run["total_steps"] or 0, run["step"] or 0
    frac = min(step / total, 1.0) if total else 0.0
    elapsed = _elapsed(run)
    if status == "queued":
        return 0.0, "**queued**"
    if status == "starting" or (status in LIVE and not total):
        return 0.0, f"**{status}** · loading the data and building the model …"
    if own_loop_run:
        where = (f"task {min(step + 1, total)} of {total} running" if status in LIVE
                 else f"{step}/{total} tasks done") + " (slow-level pilots included)"
    else:
        epoch_shown = min(run["epoch"] + 1, cfg["epochs"]) if status in LIVE else run["epoch"]
        where = f"epoch {epoch_shown}/{cfg['epochs']} · step {step}/{total}"
    text = f"**{status}** · {where} · {elapsed:.0f}s elapsed"
    if status == "paused":
        text += " · waiting for Continue or a step"
    elif status in LIVE:
        if 0 < frac < 1:
            text += f" · ETA {elapsed / frac - elapsed:.0f}s"
        else:
            text += " · estimating the time left" if frac == 0 else " · finishing"
    return frac, text


def _run_rule(cfg: dict):
    """The Rule class of a stored run's config, or None when it no longer loads (an outside rule
    removed since)."""
    try:
        return get_rule(cfg.get("rule"))
    except (ValueError, TypeError):
        return None


def _box(label: str, keys: list[str], expanded: bool = False):
    """An expander for a group of widgets; a bare container when there are none or a lesson hides
    all of them (an empty expander says nothing)."""
    if all(fs.hidden(k) for k in keys):
        return st.container()
    return st.expander(label, expanded=expanded)


def preset_picker(presets, preset_errors) -> None:
    """The lesson presets: pick one, read it, copy its lesson link, load it into the form."""
    with st.expander("lesson presets", expanded=False):
        for msg in preset_errors:
            st.error(msg)
        if presets:
            by_id = {p.id: p for p in presets}
            pid = st.selectbox("lesson", list(by_id), format_func=lambda i: by_id[i].title, key="preset_pick")
            p = by_id[pid]
            st.caption(p.text + (f" (about {p.cpu_seconds:.0f} s of CPU)" if p.cpu_seconds else ""))
            lesson.link_box(p)
            if st.button("Load this lesson", key="preset_load", width="stretch"):
                try:
                    fs.load_into_widgets(p.config)
                except ConfigError as e:
                    st.error(f"preset {p.id}: {e}")
                else:
                    st.session_state["_loaded_preset"] = p.title
                    st.rerun()


# ---- the form ---------------------------------------------------------------------------------
fs.init_from_url()
the_lesson = lesson.open_from_url("train", lambda p: fs.load_into_widgets(p.config))
if the_lesson is not None:
    lesson.panel(the_lesson, lesson.train_keys(the_lesson))
form_cfg = None
with st.sidebar:
    st.header("New run")
    if st.session_state.get("_form_link_error"):
        st.warning(st.session_state.pop("_form_link_error"))
    presets, preset_errors = scan_presets()
    if not fs.hidden("preset_pick"):            # lesson mode: the lesson is already loaded
        preset_picker(presets, preset_errors)
    if st.session_state.get("_loaded_preset"):
        st.success(f"Loaded lesson: {st.session_state.pop('_loaded_preset')}")
    names = rule_names()
    rule = fs.select(st, "rule", names, "rule", FORM_RULE, help="plasticity rule (built-in or installed); "
                     "its one-line summary shows below")
    rule = fs.own_rule(st, "rule_path", rule)
    rule_cls = get_rule(rule)
    if rule_cls.summary:
        st.caption(rule_cls.summary)
    values: dict = {"rule": rule}
    own_loop = rule_cls.runs_own_loop
    model = rule_cls.requires_model or D.model
    if rule_cls.requires_dataset:
        st.caption(f"dataset **{rule_cls.requires_dataset}**, model **{rule_cls.requires_model}** (set by the rule)")
    else:
        dataset = fs.select(st, "dataset", [d for d in DATASETS if d not in OWNED["dataset"]], "dataset", D.dataset,
                            help="built-ins need no network: digits (scikit-learn 8x8), synthetic (synchronous "
                                 "spike groups); the others read standard files from a data folder")
        values["dataset"] = dataset
        if dataset == "synthetic":
            c1, c2 = st.columns(2)
            values["syn_classes"] = fs.number(c1, "classes", "syn_classes", D.syn_classes, min_value=2, max_value=100)
            values["syn_channels"] = fs.number(c2, "channels", "syn_channels", D.syn_channels, min_value=4, max_value=10_000)
            values["syn_group"] = fs.number(c1, "group size", "syn_group", D.syn_group, min_value=1, max_value=10_000)
            values["syn_samples"] = fs.number(c2, "train samples", "syn_samples", D.syn_samples, min_value=10, max_value=10**6)
            values["syn_sync"] = fs.slider(st, "synchrony (chance to join the volley)", 0.0, 1.0, "syn_sync", D.syn_sync)
            values["syn_jitter"] = fs.slider(st, "jitter (steps)", 0.0, 5.0, "syn_jitter", D.syn_jitter, 0.25)
            values["syn_noise"] = fs.slider(st, "background rate / step", 0.0, 0.3, "syn_noise", D.syn_noise, 0.01)
        else:
            values.update(dataset_fields(dataset))
        if rule_cls.requires_model:
            st.caption(f"model **{rule_cls.requires_model}** (set by the rule)")
        else:
            model = fs.select(st, "model", [m for m in MODELS if m not in OWNED["model"]], "model", D.model,
                              help="mlp: spiking MLP of LIF neurons; vgg11 / resnet19: spiking conv nets for "
                                   "image data (hidden sizes = their fully connected head; width scales channels)")
            values["model"] = model
    if not own_loop:
        values["hidden"] = fs.text(st, "hidden sizes", "hidden", "256", help="1 to 3 layers, e.g. 256 or 256,128")
        if not rule_cls.requires_model:
            c1, c2 = st.columns(2)
            values["surrogate"] = fs.select(c1, "surrogate", SURROGATES, "surrogate", D.surrogate)
            values["readout"] = fs.select(c2, "readout", ("mem", "rate"), "readout", D.readout)
            values["tau"] = fs.number(c1, "tau", "tau", D.tau, help="membrane time constant (steps), >= 1")
            values["v_threshold"] = fs.number(c2, "v_threshold", "v_threshold", D.v_threshold)
    rp_keys = [fs.rp_key(rule, f.name) for f in dataclasses.fields(rule_cls.Params)]
    with _box(f"{rule} hyperparameters", rp_keys, expanded=own_loop or the_lesson is not None):
        values["rule_params"] = rule_param_widgets(rule)
    c1, c2 = st.columns(2)
    if not own_loop:
        values["epochs"] = fs.number(c1, "epochs", "epochs", D.epochs, step=1)
        values["timesteps"] = fs.number(c2, "timesteps T", "timesteps", D.timesteps, step=1)
        values["batch_size"] = fs.number(c1, "batch size", "batch_size", D.batch_size, step=1)
        values["lr"] = fs.number(c2, "learning rate", "lr", D.lr, format="%.5g")
    values["device"] = fs.select(c1, "device", ("auto", "cpu", "cuda"), "device", D.device)
    values["seed"] = fs.number(c2, "seed", "seed", D.seed, step=1)
    with _box("more settings", [fs.key_of(n) for n in RunConfig.fields() if n not in MAIN]):
        values.update(more_settings(model, own_loop))
    data_error = values.pop("_error", None)
    try:
        form_cfg = RunConfig.from_dict(values)
        form_error = data_error
    except ConfigError as e:
        form_error = data_error or str(e)
    data_missing = None if form_error else missing_files(form_cfg)
    start = st.button("Start", type="primary", width="stretch", disabled=data_missing is not None)
    if form_error:
        st.error(f"Cannot start: {form_error}")
    elif data_missing:
        st.error(f"Cannot start: {data_missing[0]}.")
        with st.expander("details"):
            st.code(data_missing[1], language=None, wrap_lines=True)
    elif start:
        try:
            resolve_device(form_cfg.device)
        except ValueError as e:
            st.error(f"Cannot start: {e}")
        else:
            try:        # in a classroom through the queue, within the session's cap
                run_id = classroom.submit(store, form_cfg, who())
            except classroom.CapReached as e:
                st.error(f"Not started: {e}.")
            else:
                st.query_params["run"] = run_id
                st.session_state["run"] = run_id
                # the run picker below keeps its own state: without this a second Start in the same
                # session went on showing the run picked before
                st.session_state["run_select"] = run_id
                if classroom.enabled():
                    pos = classroom.queue_position(store, run_id)
                    st.success(f"Queued run {run_id}" + (f": number {pos} in the queue" if pos else
                                                         ": it is starting"))
                else:
                    st.success(f"Started run {run_id}")
    if form_cfg is not None:
        st.download_button("config as TOML", form_cfg.to_toml(), file_name="config.toml", mime="application/toml",
                           key="form_toml", width="stretch")
        with st.expander("as a command line"):
            st.code(form_cfg.command_line(), language="bash", wrap_lines=True)
fs.sync_url(form_cfg)

if form_cfg is not None and form_cfg.dataset != "l2l_tasks":
    with st.expander(f"dataset: {form_cfg.dataset}", expanded=not store.list_runs(1)):
        render_dataset_info(form_cfg)


# ---- which run to show --------------------------------------------------------------------
me = who()
runs = classroom.sort_for(store.list_runs(200), store, me)        # classroom: own runs first
if not runs:
    st.info("No runs yet: choose a configuration in the sidebar and press **Start**.")
    st.stop()
ids = [r["id"] for r in runs]
wanted = st.query_params.get("run") or st.session_state.get("run")
if wanted in ids and wanted != st.session_state.get("run"):
    # arrived by a link (Home's "Train" of a run): the picker follows the URL, not the run it
    # showed on an earlier visit (its state was set by Start and outlives the page)
    st.session_state["run_select"] = wanted
if wanted not in ids:
    live = [r["id"] for r in runs if r["status"] in LIVE]
    wanted = live[0] if live else ids[0]


def _whose(r: dict) -> str:
    """' · by <session>' for another session's run in a classroom; '' otherwise."""
    o = classroom.owner(store, r["id"]) if classroom.enabled() else None
    return f" · by {o}" if o and o != me.session else ""


labels = {r["id"]: f"{r['id']} · {r['config'].get('rule')} on {r['config'].get('dataset')}"
          + (f" · {r['name']}" if r["name"] else "") + _whose(r) for r in runs}
run_id = st.selectbox("run", ids, index=ids.index(wanted), format_func=labels.get, key="run_select")
if run_id != st.query_params.get("run"):
    st.query_params["run"] = run_id
st.session_state["run"] = run_id
POLLED = (*LIVE, "queued")          # redrawn on a timer: live, or waiting in the queue
status_now = (store.get_run(run_id) or {}).get("status")
live_now = status_now in POLLED
QUEUED_EVERY = 2.0     # s between redraws of a queued run's place: a class's queued pages poll gently


def _current_value(cfg: dict, changes: list, name: str, info: dict):
    """A hyperparameter's value now: its last change, else the run's config."""
    for _, n, v in reversed(changes):
        if n == name:
            return v
    return info["value"]


def _control(run_id: str, action: str, arg=None, toast: str | None = None) -> None:
    """A request to the run's trainer, if this session may make it (classroom: its own runs)."""
    try:
        classroom.control(store, run_id, me, action, arg)
    except classroom.NotAllowed as e:
        st.error(str(e))
    else:
        if toast:
            st.toast(toast)


def _act(fn, run_id: str, toast: str | None = None) -> bool:
    """classroom.stop / resume for this session; a refusal (not its run, over its cap) shown."""
    try:
        fn(store, run_id, me)
    except (classroom.NotAllowed, classroom.CapReached) as e:
        st.error(str(e))
        return False
    if toast:
        st.toast(toast)
    return True


def run_controls(run: dict, own_loop_run: bool) -> None:
    """Pause / Continue / Step batch / Step epoch beside Stop, and the hyperparameter change
    control with the list of changes: requests through the store (snncore/runs/control.py), which
    the trainer answers at its next batch boundary."""
    from snncore.config import changeable, check_change
    run_id, status = run["id"], run["status"]
    b = st.columns([1, 1, 1, 1, 2])
    if status == "paused":
        if b[0].button("Continue", key=f"continue_{run_id}", width="stretch", type="primary"):
            _control(run_id, "continue", toast="Continuing.")
    elif b[0].button("Pause", key=f"pause_{run_id}", width="stretch",
                     help="hold the run before its next batch; step it or change a hyperparameter, then Continue"):
        _control(run_id, "pause", toast="Pause requested: the run holds before its next batch.")
    if b[1].button("Step batch", key=f"stepb_{run_id}", width="stretch",
                   help="train one batch, then hold (a running run is paused after it)"):
        _control(run_id, "step", 1)
    if not own_loop_run and b[2].button("Step epoch", key=f"stepe_{run_id}", width="stretch",
                                        help="train to the end of this epoch (evaluation included), then hold"):
        _control(run_id, "step_epoch")
    if status == "paused":
        b[4].caption(f"paused before batch {run['step']} (step {run['step']})")
    try:
        cfg = RunConfig.from_dict(run["config"])
        allowed = changeable(cfg)
    except (ConfigError, ValueError):
        return
    changes = run_changes(store, run_id, run["config"])
    if not allowed:
        st.caption(f"Rule {cfg.rule} runs its own loop: pause, step and continue work; its hyperparameters "
                   f"cannot be changed while it runs.")
        return
    c = st.columns([2, 2, 1])
    names = list(allowed)
    default = "a_plus" if "a_plus" in names else names[0]
    name = c[0].selectbox("change a hyperparameter", names, index=names.index(default), key=f"chg_name_{run_id}",
                          help="lr or one of the rule's hyperparameters; it applies from the next batch, "
                               "is stored with its step and replayed by resume and by the exported config")
    info = allowed[name]
    now = _current_value(cfg, changes, name, info)
    key = f"chg_value_{run_id}_{name}"
    if info.get("choices") is not None:
        value = c[1].selectbox("new value", list(info["choices"]), index=list(info["choices"]).index(now), key=key)
    elif info["type"] is bool:
        value = c[1].checkbox("new value", value=bool(now), key=key)
    elif info["type"] is int:
        value = c[1].number_input("new value", value=int(now), step=1, key=key,
                                  min_value=int(info["lo"]) if info.get("lo") is not None else None,
                                  max_value=int(info["hi"]) if info.get("hi") is not None else None)
    else:
        lo, hi = info.get("lo"), info.get("hi")
        rng = (f"allowed {'>' if info.get('lo_open') else '≥'} {lo:g}" if lo is not None else "") + \
              (f", ≤ {hi:g}" if hi is not None else "")
        value = c[1].number_input(f"new value ({rng})" if rng else "new value", value=float(now), format="%.6g",
                                  step=float(abs(now)) / 10 or 1e-4, key=key,
                                  min_value=float(lo) if lo is not None else None,
                                  max_value=float(hi) if hi is not None else None)
    c[2].markdown("<div style='height:1.75rem'></div>", unsafe_allow_html=True)
    if c[2].button("Apply", key=f"chg_apply_{run_id}", width="stretch"):
        try:
            value = check_change(cfg, name, value)
        except ConfigError as e:
            st.error(f"Not applied: {e}")
        else:
            _control(run_id, "set", {"name": name, "value": value}, toast=f"{change_label(name, value)} from the next batch.")
    waiting = [a for _, act, a in store.pending_controls(run_id) if act == "set"]
    if changes or waiting:
        st.caption("changes: " + " · ".join([f"step {s}: {change_label(n, v)}" for s, n, v in changes]
                                             + [f"waiting: {change_label(a['name'], a['value'])}" for a in waiting]))


@st.fragment(run_every=QUEUED_EVERY if status_now == "queued" else 1.0 if live_now else None)
@timed("train/live")
def live_panel(run_id: str) -> None:
    """Progress, status, stop/resume and the loss/accuracy curves: redrawn every second while live."""
    run = store.get_run(run_id)
    if run is None:
        st.warning(f"Run {run_id} is not in the store.")
        return
    cfg = run["config"]
    status = run["status"]
    if status_now == "queued" and status != "queued":
        st.rerun()        # it left the queue: the whole page again, with the live panels' timers
    own_loop_run = _run_rule(cfg) is not None and _run_rule(cfg).runs_own_loop
    # progress + stop
    c1, c2 = st.columns([5, 1])
    c1.progress(*progress_line(run, own_loop_run))
    mine = classroom.may_control(store, run_id, me)       # a classroom: only one's own runs
    if not mine and (status in POLLED or status in ("failed", "stopped")):
        st.caption(f"A run of session {classroom.owner(store, run_id) or 'unknown'}: only that session or "
                   f"the teacher may stop, pause, change or resume it.")
    if status in LIVE and mine:
        if c2.button("Stop", key=f"stop_{run_id}", width="stretch"):
            _act(classroom.stop, run_id, "Stop requested; the run ends after the current step.")
        run_controls(run, own_loop_run)
    changes = run_changes(store, run_id, cfg)
    if status == "queued":
        pos, n_queued = classroom.queue_position(store, run_id), len(store.ids_with_status("queued"))
        cap = classroom.load_policy(store).live_cap() if classroom.enabled() else 1
        st.info(f"Queued{f': number {pos} of {n_queued}' if pos else ''}. It starts when a place is free "
                f"({cap} run{'s' if cap > 1 else ''} at once on this machine).")
        if mine and c2.button("Cancel", key=f"cancel_{run_id}", width="stretch"):
            _act(classroom.stop, run_id)
            st.rerun()
    if status == "failed":
        st.error(f"Run failed: {run['error']}")
    elif status == "stopped":
        st.warning("Run stopped before its last epoch.")
    if status in ("failed", "stopped"):
        cks = store.checkpoints(run_id)
        unit = "task" if own_loop_run else "epoch"
        # its own row: in the narrow column beside the bar the label was cut to "Resume from epoc..."
        if cks and mine and st.button(f"Resume from {unit} {cks[-1][0]}", key=f"resume_{run_id}"):
            if _act(classroom.resume, run_id):
                st.rerun()       # the run is live again: redraw with the timer on
    elif status == "finished" and run["summary"]:
        s = run["summary"]
        took = f"in {_elapsed(run):.1f}s on {s.get('device')}"    # every session of a resumed run
        if s.get("test_accuracy") is not None:
            st.success(f"Finished: test accuracy {s['test_accuracy']:.4f} {took}")
        else:
            st.success(f"Finished: {s.get('tasks')} tasks, {s.get('failures')} failed, learnable {s.get('mask')}, "
                       f"{took}")

    m = store.metrics_frame(run_id)
    if m.empty:
        if status in LIVE:          # (a queued run already says so above)
            st.info("Waiting for the first metrics…")
        elif status == "queued":
            pass
        else:
            st.info("This run recorded no metrics.")
            if live_now:
                st.rerun()  # it just ended: redraw once without the timer
        return
    if "test/accuracy" in m and m["test/accuracy"].notna().any():
        if warning := chance_warning({**run, "best_accuracy": float(m["test/accuracy"].max())}):
            st.warning(warning, icon=":material/warning:")
    c1, c2 = st.columns(2)
    # a loss made of terms (train/l_<term>, e.g. an own-loop rule's task loss) shares the loss chart
    terms = [k for k in m.columns if k.startswith("train/l_")]
    c1.plotly_chart(mark_changes(viz.lines_figure(m, ["train/loss", "test/loss"] + terms,
                                                  title="loss (total and its terms)" if terms else "loss",
                                                  ytitle="loss", smooth=5), changes), width="stretch", key="loss")
    if "train/accuracy" in m:
        c2.plotly_chart(mark_changes(viz.lines_figure(m, ["train/accuracy", "test/accuracy"], title="accuracy",
                                                      ytitle="accuracy", smooth=5), changes),
                        width="stretch", key="acc")

    if status not in POLLED and live_now:
        st.rerun()  # the run just ended: redraw the page once without the timers


DETAIL_EVERY = 4.0    # s between redraws of the heavy views while live (the curves above: every 1 s)
FIRST_DETAIL_EVERY = 0.25  # until the first spike snapshot is drawn: it shows within ~1 s of being written
# the trainer writes a snapshot at step 0; with the 4 s cadence a user read "Waiting for the
# first spike snapshot" for seconds after training had started
had_snapshot = bool(store.snapshot_steps(run_id))


# not while queued: nothing to draw until it starts (live_panel then redraws the page)
@st.fragment(run_every=(DETAIL_EVERY if had_snapshot else FIRST_DETAIL_EVERY) if status_now in LIVE else None)
@timed("train/detail")
def detail_panel(run_id: str) -> None:
    """Rasters, rule panels, telemetry and exports: a dozen or more charts, redrawn every few
    seconds while the run is live. Redrawing them every second with the curves kept a 2-core box
    (trainer, server and browser) so busy that charts were shown stale and redrawn (flicker)."""
    run = store.get_run(run_id)
    if run is None:
        return
    cfg = run["config"]
    status = run["status"]
    own_loop_run = _run_rule(cfg) is not None and _run_rule(cfg).runs_own_loop
    m = store.metrics_frame(run_id)
    if m.empty:
        return
    if "l2l/iterations" in m:
        l2l = m[["l2l/iterations"] + (["l2l/failed"] if "l2l/failed" in m else [])].dropna(subset=["l2l/iterations"])
        fit = (run["summary"] or {}).get("l2l_fit")
        st.plotly_chart(viz.l2l_figure(l2l["l2l/iterations"].tolist(),
                                       l2l["l2l/failed"].fillna(0).astype(bool).tolist() if "l2l/failed" in l2l else None,
                                       tuple(fit) if fit and None not in fit else None),
                        width="stretch", key="l2l")
    snap = store.load_snapshot(run_id)
    c1, c2 = st.columns([3, 2])
    T = None if own_loop_run else cfg["timesteps"]       # IP2 snapshots hold one trial
    if snap is not None:
        layers = [k.split("/", 1)[1] for k in snap if k.startswith("raster/")]
        layer = c1.selectbox("raster layer", layers, index=min(1, len(layers) - 1), key="raster_layer")
        raster = snap[f"raster/{layer}"]
        what = f"task {int(snap['task'])}, one trial" if "task" in snap else f"step {int(snap['step'])}"
        c1.plotly_chart(viz.raster_figure(raster, T=T, title=f"{layer} raster · {what}"),
                        width="stretch", key="raster")
        rate = snap.get(f"rate/{layer}", raster.mean(axis=0))
        c2.plotly_chart(viz.rate_figure(rate, T=T, title=f"{layer} population rate"), width="stretch", key="rate")
    elif status in LIVE:
        c1.caption("Waiting for the first spike snapshot…")
    if snap is not None and live_now and not had_snapshot:
        # the first snapshot is drawn: on the next tick (once the browser has it) the whole page
        # once more, registering this fragment at the slow cadence
        if st.session_state.get("_first_snap_drawn") == run_id:
            st.rerun()
        st.session_state["_first_snap_drawn"] = run_id
    # the rule's panels sit below the charts of c1/c2 but are sent first: with the raster they are
    # what a user waits for, and each plotly chart before them costs the browser ~0.2 s to draw
    panel_slot = st.container()
    tel = store.metrics_frame(run_id, table="telemetry")
    changes = run_changes(store, run_id, cfg)
    mark = (lambda fig: mark_changes(fig, changes)) if changes else None
    with panel_slot:        # the rule's own views; a rule without its own panels gets its telemetry there
        drew_telemetry = rule_panels.render(cfg["rule"], store, run_id, cfg, tel, metrics=m, mark=mark)
    rate_cols = [c for c in m.columns if str(c).startswith("rate/")]
    if "sync/chi" in m:
        c2.plotly_chart(mark_changes(viz.lines_figure(m, ["sync/chi"], title="synchrony chi (Golomb)",
                                                      ytitle="chi", smooth=5), changes), width="stretch", key="chi")
    if rate_cols:
        c1.plotly_chart(mark_changes(viz.lines_figure(m, rate_cols, title="firing rate per layer",
                                                      ytitle="spikes / neuron / step", smooth=5), changes),
                        width="stretch", key="rates")

    if not tel.empty and not drew_telemetry:
        groups = viz.telemetry_groups(tel)
        # a chart per group, redrawn with the rest: switching them off lightens a busy 2-core box
        if st.toggle(f"all {cfg['rule']} telemetry over time ({len(tel.columns)} series in {len(groups)} charts)",
                     value=True, key="show_all_tel"):
            cols = st.columns(2)
            for i, (g, columns) in enumerate(groups.items()):
                cols[i % 2].plotly_chart(mark_changes(viz.telemetry_figure(tel, g, columns), changes),
                                         width="stretch", key=f"tel_{g}")
    elif tel.empty and _rule_reports(cfg["rule"]):
        st.caption("No rule telemetry yet.")
    with st.expander("export: config, command line, metrics"):
        st.caption("Every figure has a camera button (top right of the chart) that saves it as PNG.")
        run_cfg = replay_config(store, run_id, cfg)       # with its hyperparameter changes: reproducible
        if run_cfg.changes:
            st.caption("The hyperparameter changes made during the run are in `changes`: a run of this "
                       "command or file applies them at the same steps.")
        st.code(run_cfg.command_line(), language="bash", wrap_lines=True)
        st.code(run_cfg.to_toml(), language="toml")
        c1, c2, c3 = st.columns(3)
        c1.download_button("config (TOML)", run_cfg.to_toml(), file_name=f"{run_id}.toml",
                           mime="application/toml", key=f"dl_toml_{run_id}", width="stretch")
        c2.download_button("metrics (CSV)", m.to_csv(), file_name=f"{run_id}_metrics.csv", mime="text/csv",
                           key=f"dl_metrics_{run_id}", width="stretch")
        if not tel.empty:
            c3.download_button("rule telemetry (CSV)", tel.to_csv(), file_name=f"{run_id}_telemetry.csv",
                               mime="text/csv", key=f"dl_tel_{run_id}", width="stretch")


def _rule_reports(rule: str) -> bool:
    """Whether the run's rule reports telemetry at all (the baseline does not)."""
    cls = _run_rule({"rule": rule})
    return cls is not None and cls.telemetry is not Rule.telemetry


live_panel(run_id)
detail_panel(run_id)
