"""Train: choose dataset / model / rule / hyperparameters -> start a run -> live panels.

The run is its own process; this page only reads the RunStore, so a reload or a second tab
reattaches to the live run (its id is in the URL: ?run=ID).
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import streamlit as st

from app_pages import rule_panels
from app_pages.common import get_store
from snncore import viz
from snncore.config import DATASETS, ENCODINGS, MODELS, OWNED, SURROGATES, ConfigError, RunConfig
from snncore.launch import launch_resume, launch_run
from snncore.train import resolve_device
from snncore.rules import get_rule, rule_names
from snncore.store import LIVE

st.title("Train")
store = get_store()
if store is None:
    st.stop()
D = RunConfig()


def rule_param_widgets(rule: str) -> dict:
    """One widget per hyperparameter of the rule, from its Params dataclass (defaults = paper's)."""
    cls = get_rule(rule).Params
    values = {}
    for f in dataclasses.fields(cls):
        default = getattr(cls(), f.name)
        m, key, label = f.metadata, f"rp_{rule}_{f.name}", f.name
        help_ = m.get("help") or None
        if m.get("choices") is not None and not isinstance(default, list):
            opts = list(m["choices"])
            values[f.name] = st.selectbox(label, opts, index=opts.index(default), key=key, help=help_)
        elif isinstance(default, bool):
            values[f.name] = st.checkbox(label, value=default, key=key, help=help_)
        elif isinstance(default, int):
            values[f.name] = st.number_input(label, value=default, step=1, key=key, help=help_)
        elif isinstance(default, float):
            values[f.name] = st.number_input(label, value=default, format="%.6g", key=key, help=help_)
        elif isinstance(default, list):
            txt = st.text_input(label, value=",".join(map(str, default)), key=key,
                                help=(help_ or "") + " (comma-separated; empty = rule default)")
            values[f.name] = [s.strip() for s in txt.split(",") if s.strip()]
        else:
            values[f.name] = st.text_input(label, value=str(default), key=key, help=help_)
    return values


# ---- the form ---------------------------------------------------------------------------------
with st.sidebar:
    st.header("New run")
    names = rule_names()
    rule = st.selectbox("rule", names, index=names.index("ssdp"), key="rule",
                        help="plasticity rule (bptt = surrogate gradient only)")
    rule_cls = get_rule(rule)
    if rule_cls.summary:
        st.caption(rule_cls.summary)
    values: dict = {"rule": rule}
    own_loop = rule_cls.runs_own_loop
    if rule_cls.requires_dataset:
        st.caption(f"dataset **{rule_cls.requires_dataset}**, model **{rule_cls.requires_model}** (set by the rule)")
    else:
        dataset = st.selectbox("dataset", [d for d in DATASETS if d not in OWNED["dataset"]], key="dataset",
                               help="digits: scikit-learn 8x8 digits; synthetic: synchronous spike groups")
        values["dataset"] = dataset
        if dataset == "digits":
            values["encoding"] = st.selectbox("encoding", ENCODINGS, key="encoding")
        else:
            c1, c2 = st.columns(2)
            values["syn_classes"] = c1.number_input("classes", 2, 100, D.syn_classes, key="syn_classes")
            values["syn_channels"] = c2.number_input("channels", 4, 10_000, D.syn_channels, key="syn_channels")
            values["syn_group"] = c1.number_input("group size", 1, 10_000, D.syn_group, key="syn_group")
            values["syn_samples"] = c2.number_input("train samples", 10, 10**6, D.syn_samples, key="syn_samples")
            values["syn_sync"] = st.slider("synchrony (chance to join the volley)", 0.0, 1.0, D.syn_sync, key="syn_sync")
            values["syn_jitter"] = st.slider("jitter (steps)", 0.0, 5.0, D.syn_jitter, 0.25, key="syn_jitter")
            values["syn_noise"] = st.slider("background rate / step", 0.0, 0.3, D.syn_noise, 0.01, key="syn_noise")
        if rule_cls.requires_model:
            st.caption(f"model **{rule_cls.requires_model}** (set by the rule)")
        else:
            values["model"] = st.selectbox("model", [m for m in MODELS if m not in OWNED["model"]], key="model",
                                           help="spiking MLP of LIF neurons")
    if not own_loop:
        values["hidden"] = st.text_input("hidden sizes", "256", key="hidden", help="1 to 3 layers, e.g. 256 or 256,128")
        if not rule_cls.requires_model:
            c1, c2 = st.columns(2)
            values["surrogate"] = c1.selectbox("surrogate", SURROGATES, key="surrogate")
            values["readout"] = c2.selectbox("readout", ("mem", "rate"), key="readout")
            values["tau"] = c1.number_input("tau", value=D.tau, key="tau", help="membrane time constant (steps), >= 1")
            values["v_threshold"] = c2.number_input("v_threshold", value=D.v_threshold, key="v_threshold")
    with st.expander(f"{rule} hyperparameters", expanded=own_loop):
        values["rule_params"] = rule_param_widgets(rule)
    c1, c2 = st.columns(2)
    if not own_loop:
        values["epochs"] = c1.number_input("epochs", value=D.epochs, step=1, key="epochs")
        values["timesteps"] = c2.number_input("timesteps T", value=D.timesteps, step=1, key="timesteps")
        values["batch_size"] = c1.number_input("batch size", value=D.batch_size, step=1, key="batch_size")
        values["lr"] = c2.number_input("learning rate", value=D.lr, format="%.5g", key="lr")
    values["device"] = c1.selectbox("device", ("auto", "cpu", "cuda"), key="device")
    values["seed"] = c2.number_input("seed", value=D.seed, step=1, key="seed")
    start = st.button("Start", type="primary", width="stretch")
    if start:
        try:
            cfg = RunConfig.from_dict(values)
            resolve_device(cfg.device)
        except (ConfigError, ValueError) as e:
            st.error(f"Cannot start: {e}")
        else:
            run_id = launch_run(cfg, store)
            st.query_params["run"] = run_id
            st.session_state["run"] = run_id
            st.success(f"Started run {run_id}")


# ---- which run to show --------------------------------------------------------------------
runs = store.list_runs(200)
if not runs:
    st.info("No runs yet: choose a configuration in the sidebar and press **Start**.")
    st.stop()
ids = [r["id"] for r in runs]
wanted = st.query_params.get("run") or st.session_state.get("run")
if wanted not in ids:
    live = [r["id"] for r in runs if r["status"] in LIVE]
    wanted = live[0] if live else ids[0]
labels = {r["id"]: f"{r['id']} · {r['config'].get('rule')} on {r['config'].get('dataset')}"
          + (f" · {r['name']}" if r["name"] else "") for r in runs}
run_id = st.selectbox("run", ids, index=ids.index(wanted), format_func=labels.get, key="run_select")
if run_id != st.query_params.get("run"):
    st.query_params["run"] = run_id
st.session_state["run"] = run_id
live_now = (store.get_run(run_id) or {}).get("status") in LIVE


@st.fragment(run_every=1.0 if live_now else None)
def live_panel(run_id: str) -> None:
    run = store.get_run(run_id)
    if run is None:
        st.warning(f"Run {run_id} is not in the store.")
        return
    cfg = run["config"]
    status = run["status"]
    own_loop_run = cfg.get("rule") in rule_names() and get_rule(cfg["rule"]).runs_own_loop
    # progress + stop
    c1, c2 = st.columns([5, 1])
    total = max(run["total_steps"] or 0, 1)
    frac = min(run["step"] / total, 1.0) if run["total_steps"] else 0.0
    elapsed = ((run["ended"] or time.time()) - (run["started"] or run["created"] or time.time()))
    eta = elapsed / frac - elapsed if 0 < frac < 1 and status in LIVE else 0.0
    epoch_shown = min(run["epoch"] + 1, cfg["epochs"]) if status in LIVE else run["epoch"]
    where = (f"task {run['step']}/{run['total_steps']} (slow-level pilots included)" if own_loop_run
             else f"epoch {epoch_shown}/{cfg['epochs']} · step {run['step']}/{run['total_steps']}")
    c1.progress(frac, text=f"**{status}** · {where} · "
                           f"{elapsed:.0f}s elapsed" + (f" · ETA {eta:.0f}s" if status in LIVE else ""))
    if status in LIVE:
        if c2.button("Stop", key=f"stop_{run_id}", width="stretch"):
            store.request_stop(run_id)
            st.toast("Stop requested; the run ends after the current step.")
    if status == "failed":
        st.error(f"Run failed: {run['error']}")
    elif status == "stopped":
        st.warning("Run stopped before its last epoch.")
    if status in ("failed", "stopped") and not own_loop_run:
        cks = store.checkpoints(run_id)
        if cks and c2.button(f"Resume from epoch {cks[-1][0]}", key=f"resume_{run_id}", width="stretch"):
            launch_resume(store, run_id)
            st.rerun()       # the run is live again: redraw with the timer on
    elif status == "finished" and run["summary"]:
        s = run["summary"]
        if s.get("test_accuracy") is not None:
            st.success(f"Finished: test accuracy {s['test_accuracy']:.4f} in {s.get('seconds', 0):.1f}s on {s.get('device')}")
        else:
            st.success(f"Finished: {s.get('tasks')} tasks, {s.get('failures')} failed, learnable {s.get('mask')}, "
                       f"in {s.get('seconds', 0):.1f}s on {s.get('device')}")

    m = store.metrics_frame(run_id)
    if m.empty:
        if status in LIVE:
            st.info("Waiting for the first metrics…")
        else:
            st.info("This run recorded no metrics.")
            if live_now:
                st.rerun()  # it just ended: redraw once without the timer
        return
    c1, c2 = st.columns(2)
    c1.plotly_chart(viz.lines_figure(m, ["train/loss", "test/loss"], title="loss", ytitle="loss", smooth=5),
                    width="stretch", key="loss")
    if "train/accuracy" in m:
        c2.plotly_chart(viz.lines_figure(m, ["train/accuracy", "test/accuracy"], title="accuracy", ytitle="accuracy",
                                         smooth=5), width="stretch", key="acc")
    elif "train/l_task" in m:
        c2.plotly_chart(viz.lines_figure(m, ["train/l_task"], title="task loss per update", ytitle="L_task",
                                         smooth=10), width="stretch", key="ltask")

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
    rate_cols = [c for c in m.columns if str(c).startswith("rate/")]
    if "sync/chi" in m:
        c2.plotly_chart(viz.lines_figure(m, ["sync/chi"], title="synchrony chi (Golomb)",
                                         ytitle="chi", smooth=5), width="stretch", key="chi")
    if rate_cols:
        c1.plotly_chart(viz.lines_figure(m, rate_cols, title="firing rate per layer",
                                         ytitle="spikes / neuron / step", smooth=5), width="stretch", key="rates")

    tel = store.metrics_frame(run_id, table="telemetry")
    rule_panels.render(cfg["rule"], store, run_id, cfg, tel)       # the rule's own views first
    if not tel.empty:
        with st.expander(f"all {cfg['rule']} telemetry over time ({len(tel.columns)} series)", expanded=True):
            groups = viz.telemetry_groups(tel)
            cols = st.columns(2)
            for i, (g, columns) in enumerate(groups.items()):
                cols[i % 2].plotly_chart(viz.telemetry_figure(tel, g, columns), width="stretch", key=f"tel_{g}")
    elif cfg["rule"] != "bptt":
        st.caption("No rule telemetry yet.")
    with st.expander("config and command line"):
        st.code(RunConfig.from_dict(cfg).command_line(), language="bash")
        st.code(RunConfig.from_dict(cfg).to_toml(), language="toml")
    if status not in LIVE and live_now:
        st.rerun()  # the run just ended: redraw the page once without the timer


live_panel(run_id)
