"""Inspect: what did this rule do to my network?

Pick a run (its id is in the URL: ?run=ID) or upload a checkpoint (read with weights_only=True, so it
never runs code). The network is rebuilt from the config inside the checkpoint, run on test samples
with every layer recorded, and described per layer (snncore.inspect); weights are scrubbable over
the run's per-epoch checkpoints; a click on the raster (or the neuron picker) shows one neuron.
Conv models (vgg11, resnet19): a neuron is one channel at one position of a layer's C x H x W map;
per-neuron statistics, the raster and the picker use a fixed random sample of up to
inspect.CONV_NEURONS neurons per layer, while rates, silent/saturated counts, sparsity and SynOps
cover every neuron (snncore.metrics.synops explains the conv SynOps formula).
"""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import streamlit as st

from app_pages.common import get_store
from snncore import inspect as A
from snncore.config import RunConfig
from snncore.viz import inspect as vi

st.title("Inspect")
st.caption("What did this rule do to my network? Firing, regularity, variability, correlation, synchrony, "
           "silent and saturated neurons, synaptic operations and sparsity, per layer.")
store = get_store()
if store is None:
    st.stop()


@st.cache_data(max_entries=8, show_spinner="Running the network on test samples…")
def inspect_file(path: str, mtime: float, samples: int):
    state = A.load_checkpoint(path)
    rec = A.record_network(state, samples)
    return rec, A.analyse(rec)


@st.cache_data(max_entries=4, show_spinner="Running the network on test samples…")
def inspect_bytes(data: bytes, samples: int):
    state = A.load_checkpoint(data)
    rec = A.record_network(state, samples)
    hists = A.weight_histograms({int(state.get("epochs_done") or 0): A.model_weights(state)})
    return rec, A.analyse(rec), hists


@st.cache_data(max_entries=4, show_spinner=False)
def uploaded_config(data: bytes) -> dict:
    """The run config inside an uploaded checkpoint (its model sets the default sample count)."""
    return A.checkpoint_config(A.load_checkpoint(data)).to_dict()


def pick_clicked_neuron(chart_key: str, picker_key: str) -> None:
    """on_select callback: a clicked spike sets the neuron picker. It runs before the script, so the
    picker widget may still be written to; every click wins, even one on the neuron clicked before."""
    picked = vi.neuron_from_selection(st.session_state.get(chart_key))
    if picked is not None:
        st.session_state[picker_key] = picked


@st.cache_data(max_entries=8, show_spinner="Reading the weights of every checkpoint…")
def run_hists(checkpoints: tuple):
    return A.checkpoint_weight_histograms(list(checkpoints))


# ---- what to inspect --------------------------------------------------------------------------
# conv models record slowly on a CPU: a smaller default, and a warning where many samples would
# take SLOW_SECONDS or more (a tiny conv net on 8x8 digits is quick at any count)
MLP_SAMPLES, CONV_SAMPLES, SLOW_SECONDS = 64, 8, 10.0


def remember_samples() -> None:
    """on_change: the user's own choice, kept over a change of run or model (and over reruns that
    stop before the input is drawn, which drop the widget's state)."""
    st.session_state["samples_choice"] = st.session_state["samples"]


def samples_input(cfg: dict | None) -> int:
    """The test-sample count, drawn in the top-right column once the model is known: conv models
    default to CONV_SAMPLES, others to MLP_SAMPLES; an explicit choice is kept."""
    model = (cfg or {}).get("model")
    conv = model in A.CONV_MODELS
    st.session_state["samples"] = int(st.session_state.get("samples_choice", CONV_SAMPLES if conv else MLP_SAMPLES))
    n = int(c2.number_input("test samples", 1, 2000, step=8, key="samples", on_change=remember_samples,
                            help=f"the first N samples of the test set, each encoded over T steps (default "
                                 f"{MLP_SAMPLES}; conv models {CONV_SAMPLES}: their time grows with N × T × the "
                                 f"network's size)"))
    secs = A.conv_inspect_seconds(cfg, n) if conv else 0.0
    if conv and n > CONV_SAMPLES and secs >= SLOW_SECONDS:
        T, width = int(cfg.get("timesteps") or 16), float(cfg.get("width") or 1.0)
        est = f"{secs:.0f} s" if secs < 90 else f"{secs / 60:.0f} min"
        st.warning(f"{n} test samples of a {model} (width {width:g}, {T} steps) will be slow: the network runs on "
                   f"the CPU and its time grows with samples × steps × width² × image size. Rough lower bound on "
                   f"a 2-core CPU: {est}. {CONV_SAMPLES} samples give a first look much sooner.")
    return n


c1, c2 = st.columns([3, 1])
source = c1.radio("source", ["a run", "a checkpoint file"], horizontal=True, key="source")
hists: dict = {}
try:
    if source == "a run":
        runs = store.list_runs(200)
        if not runs:
            st.info("No runs yet: train one on the Train page, or upload a checkpoint file.")
            st.stop()
        ids = [r["id"] for r in runs]
        wanted = st.query_params.get("run")
        if wanted and wanted not in ids:
            st.warning(f"Run {wanted!r} is not in the store; showing the newest run instead.")
        if wanted not in ids:
            wanted = ids[0]
        by_id = {r["id"]: r for r in runs}
        labels = {r["id"]: f"{r['id']} · {r['config'].get('rule')} on {r['config'].get('dataset')} · {r['status']}"
                  + (f" · {r['name']}" if r["name"] else "") for r in runs}
        run_id = st.selectbox("run", ids, index=ids.index(wanted), format_func=labels.get, key="inspect_run")
        if run_id != st.query_params.get("run"):
            st.query_params["run"] = run_id
        run = by_id[run_id]
        samples = samples_input(run["config"])
        try:
            A.check_supported(RunConfig.from_dict(run["config"]))
        except A.InspectError:
            raise
        except ValueError as e:
            raise A.InspectError(f"run {run_id}: its stored config is no longer valid: {e}") from None
        cks = store.checkpoints(run_id)
        if not cks:
            raise A.InspectError(f"run {run_id} has no checkpoint yet (one is written at the end of each epoch; "
                                 f"status: {run['status']})")
        unit = A.checkpoint_unit(run["config"])     # IP2 writes one checkpoint per task
        epochs = [e for e, _, _ in cks]
        epoch = (st.select_slider(f"checkpoint ({unit})", options=epochs, value=epochs[-1], key=f"ck_{run_id}")
                 if len(epochs) > 1 else epochs[0])
        _, step, path = cks[epochs.index(epoch)]
        if run["status"] in ("starting", "running", "paused"):
            st.caption(f"Run is {run['status']}: showing its checkpoint of {unit} {epoch}; rerun the page for newer ones.")
        rec, stats = inspect_file(str(path), path.stat().st_mtime, samples)
        hists = run_hists(tuple((e, s, str(p)) for e, s, p in cks))
        where = f"run {run_id}, {unit} {epoch}"
    else:
        up = st.file_uploader("checkpoint file (.pt)", type=["pt", "pth", "ckpt"], key="upload",
                              help="a checkpoint written by the Trainer (runs/<id>/checkpoints/epochNNNNN.pt); "
                                   "it is read with weights_only=True and never runs code")
        if up is None:
            samples_input(None)
            st.info("Upload a checkpoint written by the Trainer: it carries the run config Inspect rebuilds "
                    "the network from.")
            st.stop()
        samples = samples_input(uploaded_config(up.getvalue()))
        rec, stats, hists = inspect_bytes(up.getvalue(), samples)
        where = f"uploaded {up.name}"
except A.InspectError as e:
    st.error(str(e))
    st.stop()

# ---- summary ----------------------------------------------------------------------------------
cfg = rec.cfg
rep = A.report(rec, stats, where)
st.markdown(f"**{where}** · rule **{cfg.rule}** · model **{cfg.model}** · dataset **{cfg.dataset}** · "
            f"{rep['samples']} test samples × {rep['timesteps']} steps")
if rec.extra.get("note"):      # IP2: what its samples are and what the accuracy counts
    st.caption(rec.extra["note"])
m1, m2, m3, m4 = st.columns(4)
m1.metric("accuracy on these samples", f"{rec.accuracy:.1%}")
m2.metric("SynOps per sample", f"{rep['synops_per_sample']:,.0f}",
          help="sum over weight layers of presynaptic spikes × fan-out (non-zero weights)")
m3.metric("vs a dense network", f"{rep['synops_per_sample'] / max(rep['dense_macs_per_sample'], 1):.1%}",
          help=f"of T × weights = {rep['dense_macs_per_sample']:,.0f} multiply-accumulates per sample")
m4.metric("activation sparsity", "-" if rep["activation_sparsity"] is None else f"{rep['activation_sparsity']:.1%}",
          help="share of zero activations over all spiking layers, steps and samples")

NAMES = {"neurons": "neurons", "rate_mean": "rate (spk/step)", "cv_isi_mean": "CV of ISI", "fano_mean": "Fano",
         "corr_mean": "mean pair corr.", "chi": "chi", "spike_contrast": "spike-contrast", "silent": "silent",
         "saturated": "saturated", "sparsity": "sparsity", "synops_per_sample": "SynOps / sample"}
conv = any(s.get("map") for s in rep["layers"].values())
if conv:      # conv layers: how many neurons the per-neuron statistics saw, and the map they come from
    NAMES = {"neurons": "neurons", "neurons_recorded": "recorded", "map": "map (C×H×W)", **NAMES}
# a non-spiking read-out has no spike statistics: a note under the table rather than a row of empty
# cells (Streamlit draws a null cell as "None" whatever a Styler says, and a text cell would sort as text)
readout = {n: s for n, s in rep["layers"].items() if not s["spiking"]}
table = pd.DataFrame([{"layer": n, **{NAMES[k]: s[k] for k in NAMES}} for n, s in rep["layers"].items()
                      if n not in readout], columns=["layer", *NAMES.values()])
if conv:
    table["map (C×H×W)"] = [" × ".join(map(str, m)) if m else "-" for m in table["map (C×H×W)"]]
st.dataframe(table, hide_index=True, width="stretch", key="stats_table")
for n, s in readout.items():
    ops = "-" if s["synops_per_sample"] is None else f"{s['synops_per_sample']:,.0f}"
    st.markdown(f"**{n}** ({s['neurons']:,} neurons) is the non-spiking read-out: it has no spikes, so no spike "
                f"statistics; SynOps / sample {ops} (counted in the total above).")
st.caption(f"CV of ISI and Fano factor: Elephant, per neuron (undefined for neurons with too few spikes); "
           f"correlation and spike-contrast: Elephant on up to {A.SYNC_NEURONS} neurons; chi: Golomb's population "
           f"synchrony; saturated: firing on ≥ {A.SATURATED_AT:.0%} of steps.")
if conv:
    st.caption(f"Conv layers: a neuron is one channel at one position (neurons = C × H × W). CV of ISI, Fano, "
               f"correlation, chi, spike-contrast, the histograms and the raster use a fixed random sample of up to "
               f"{A.CONV_NEURONS} neurons per layer (recorded); rate, silent, saturated and sparsity count every "
               f"neuron. SynOps of a conv: every input spike × its fan-out (out channels × kernel taps that land "
               f"inside the output map, non-zero weights only; ~ out channels × k² / stride²), ResNet shortcuts "
               f"included.")

# ---- one layer ----------------------------------------------------------------------------------
RADIO_LAYERS = 5
spiking = [n for n, lr in rec.layers.items() if lr.spiking]
if not spiking:
    st.warning("This network has no spiking layer to describe.")
    st.stop()
# a horizontal radio only while it fits on a line (a ResNet-19 has ~18 spiking layers)
layer = (st.radio("layer", spiking, horizontal=True, key="layer") if len(spiking) <= RADIO_LAYERS
         else st.selectbox("layer", spiking, index=0, key="layer"))
lr, ls = rec.layers[layer], stats[layer]
h1, h2, h3 = st.columns(3)
h1.plotly_chart(vi.stat_histogram(ls.rates, title=f"{layer}: firing rate", xtitle="spikes / step"),
                width="stretch", key=f"h_rate_{layer}")
h2.plotly_chart(vi.stat_histogram(ls.cv, title=f"{layer}: CV of ISI", xtitle="CV"),
                width="stretch", key=f"h_cv_{layer}")
h3.plotly_chart(vi.stat_histogram(ls.fano, title=f"{layer}: Fano factor", xtitle="Fano factor"),
                width="stretch", key=f"h_fano_{layer}")

T, B, N = lr.post.shape
if lr.shape is not None:
    st.caption(f"{layer}: {lr.n_total:,} neurons (channels × height × width = {' × '.join(map(str, lr.shape))}); "
               + (f"the {N} below are a fixed random sample of them, numbered 0 to {N - 1}."
                  if N < lr.n_total else "all of them are recorded."))
    st.plotly_chart(vi.channel_rate_figure(lr.rates_all, lr.shape, title=f"{layer}: firing rate per channel"),
                    width="stretch", key=f"channels_{layer}")
hover = None if lr.shape is None else [
    "channel {}, y {}, x {}".format(*lr.position(j)) for j in range(N)]
shown = np.arange(N) if N <= 256 else np.sort(np.random.default_rng(0).choice(N, 256, replace=False))
k = int(st.number_input("samples in the raster", 1, max(1, min(B, 32)), min(4, B), key="raster_samples"))
nkey = f"neuron_{layer}"
if nkey not in st.session_state:
    busiest = int(shown[np.argmax(ls.rates[shown])])
    st.session_state[nkey] = busiest
rkey = f"raster_{layer}"
st.plotly_chart(vi.raster_scatter(lr.post, samples=k, neurons=None if N <= 256 else shown,
                                  selected=int(st.session_state[nkey]),
                                  title=f"{layer} raster (click a spike to pick its neuron)", hover=hover),
                width="stretch", key=rkey, selection_mode="points",
                on_select=functools.partial(pick_clicked_neuron, rkey, nkey))
neuron = int(st.number_input("neuron", 0, N - 1, key=nkey, help="or click a spike in the raster"
                             + ("; conv layers: the number within the recorded sample" if lr.shape else "")))
ns = A.neuron_statistics(lr.post, neuron)
c1, c2 = st.columns([3, 1])
v = None if lr.v is None else lr.v[:, :k, neuron].T.reshape(-1)
c1.plotly_chart(vi.trace_figure(v, lr.post[:, :k, neuron].T.reshape(-1), threshold=lr.v_threshold,
                                neuron=neuron, T=T, title=f"{layer} {lr.neuron_label(neuron)}: membrane and spikes"),
                width="stretch", key=f"trace_{layer}")
with c2:
    st.markdown(f"**neuron {neuron}**")
    rows = {"rate (spk/step)": f"{ns['rate']:.3f}", "spikes": str(ns["spikes"]),
            "samples with spikes": f"{ns['samples_with_spikes']} / {B}",
            "CV of ISI": "-" if ns["cv_isi"] is None else f"{ns['cv_isi']:.3f}",
            "Fano": "-" if ns["fano"] is None else f"{ns['fano']:.3f}"}
    if lr.shape is not None:
        c_, y_, x_ = lr.position(neuron)
        rows = {"channel": str(c_), "position (y, x)": f"({y_}, {x_})",
                "index in the layer": str(lr.neuron_index(neuron)), **rows}
    st.dataframe(pd.DataFrame({"statistic": list(rows), "value": list(rows.values())}),
                 hide_index=True, width="stretch", key="neuron_stats")

# ---- weights over training ------------------------------------------------------------------------
st.subheader("Weights over training")
if not hists:
    st.caption("No weights found in the checkpoints.")
else:
    all_epochs = sorted({e for h in hists.values() for e in h["epochs"]})
    we = (st.select_slider(rep["checkpoint_unit"], options=all_epochs, value=all_epochs[-1], key="weight_epoch")
          if len(all_epochs) > 1 else all_epochs[0])
    w1, w2 = st.columns(2)
    w1.plotly_chart(vi.weight_histogram_figure(hists, we, rep["checkpoint_unit"]), width="stretch",
                    key="weights_epoch")
    if len(all_epochs) > 1:
        wl = w2.selectbox("layer (weights)", list(hists), key="weight_layer")
        w2.plotly_chart(vi.weight_evolution_figure(hists[wl], wl, rep["checkpoint_unit"]), width="stretch",
                        key="weights_evolution")
    else:
        w2.caption(f"One checkpoint only: the histogram over training needs a run with several "
                   f"{rep['checkpoint_unit']}s.")
