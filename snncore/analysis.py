"""Inspect: what did a rule do to the network? Spike statistics per layer, and the loading that feeds them.

Statistics are pure functions on spike arrays shaped [T, B, N] (time, samples, neurons; 0/1), one time
step = one bin (1 ms when Elephant needs units). Where Elephant provides a statistic it computes it:

    CV of inter-spike intervals   elephant.statistics.cv on each neuron's ISIs (pooled over samples;
                                  an ISI never spans two samples, the network is reset between them)
    Fano factor                   elephant.statistics.fanofactor: spike counts of a neuron across samples
    mean pairwise correlation     elephant.spike_train_correlation.correlation_coefficient on the
                                  binned trains (samples back to back), mean over pairs of firing neurons
    spike-contrast synchrony      elephant.spike_train_synchrony.spike_contrast on a neuron subsample

Ours (Elephant has none): population synchrony chi (Golomb 2007, snncore.metrics), silent and
saturated counts, activation sparsity (share of zero activations) and SynOps per sample
(sum over weight layers of presynaptic spikes x fan-out, the fan-out counting non-zero weights).

Loading: a checkpoint is read with torch.load(weights_only=True) (never unpickles code), the model is
rebuilt from the config stored in it, its weights loaded, and it is run on test samples with every
layer's spikes and membrane potential recorded (`record_network`).
"""
from __future__ import annotations

import hashlib
import io
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

SATURATED_AT = 0.9          # a neuron firing on at least 90 % of the steps counts as saturated
SYNC_NEURONS = 64           # spike-contrast and correlation run on at most this many neurons


class InspectError(ValueError):
    """Bad input for Inspect (missing/corrupt checkpoint, unsupported run); the message says why."""


# ============================================================== statistics (pure)
def _as_spikes(spikes) -> np.ndarray:
    s = spikes.detach().cpu().numpy() if isinstance(spikes, torch.Tensor) else np.asarray(spikes)
    if s.ndim != 3:
        raise ValueError(f"spikes: expected an array [T, B, N], got shape {s.shape}")
    return s != 0


def firing_rates(spikes) -> np.ndarray:
    """[T, B, N] -> [N]: spikes per neuron per step, averaged over samples."""
    s = _as_spikes(spikes)
    return s.mean(axis=(0, 1)) if s.size else np.zeros(s.shape[2])


def spike_times(spikes) -> list[list[np.ndarray]]:
    """[T, B, N] -> per neuron, per sample, the spike times (time-step indices, ascending)."""
    s = _as_spikes(spikes)
    T, B, N = s.shape
    flat = s.transpose(2, 1, 0).reshape(N * B, T)             # row = (neuron, sample)
    rows, ts = np.nonzero(flat)
    cuts = np.searchsorted(rows, np.arange(1, N * B))
    per_row = np.split(ts.astype(float), cuts)
    return [per_row[n * B:(n + 1) * B] for n in range(N)]


def isi_per_neuron(spikes) -> list[np.ndarray]:
    """[T, B, N] -> per neuron, its inter-spike intervals (steps) within each sample, pooled over samples.
    Vectorised; equals elephant.statistics.isi on each sample's train (tested)."""
    s = _as_spikes(spikes)
    T, B, N = s.shape
    flat = s.transpose(2, 1, 0).reshape(N * B, T)
    rows, ts = np.nonzero(flat)                                # sorted by row, then time
    same = rows[1:] == rows[:-1]
    isi = (ts[1:] - ts[:-1])[same].astype(float)
    neuron = rows[1:][same] // B
    cuts = np.searchsorted(neuron, np.arange(1, N))
    return np.split(isi, cuts)


def isi_cv(spikes) -> np.ndarray:
    """[T, B, N] -> [N] coefficient of variation of each neuron's ISIs (elephant.statistics.cv, i.e.
    std/mean with ddof 0); NaN for a neuron with fewer than 2 intervals."""
    from elephant.statistics import cv
    out = np.full(_as_spikes(spikes).shape[2], np.nan)
    for n, isi in enumerate(isi_per_neuron(spikes)):
        if isi.size >= 2:
            out[n] = float(cv(isi))
    return out


def fano_factors(spikes) -> np.ndarray:
    """[T, B, N] -> [N] Fano factor of each neuron's spike count across samples (trials), by
    elephant.statistics.fanofactor: var/mean; NaN for a neuron silent in every sample."""
    from elephant.statistics import fanofactor
    trains = spike_times(spikes)
    out = np.full(len(trains), np.nan)
    for n, per_sample in enumerate(trains):
        if len(per_sample) and any(t.size for t in per_sample):
            out[n] = float(fanofactor(per_sample))
    return out


def _subsample(n: int, k: int, seed: int = 0) -> np.ndarray:
    if n <= k:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def correlation_matrix(spikes, neurons: np.ndarray | None = None) -> np.ndarray:
    """Pearson correlation of binned spike counts (1 bin = 1 step, samples back to back), by
    elephant.spike_train_correlation.correlation_coefficient; [k, k], NaN rows for silent neurons."""
    import quantities as pq
    from elephant.conversion import BinnedSpikeTrain
    from elephant.spike_train_correlation import correlation_coefficient
    s = _as_spikes(spikes)
    if neurons is not None:
        s = s[:, :, neurons]
    T, B, N = s.shape
    counts = s.transpose(2, 1, 0).reshape(N, B * T).astype(np.int64)
    bst = BinnedSpikeTrain(counts, bin_size=1 * pq.ms, t_start=0 * pq.ms)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore")        # silent neurons: undefined correlation, NaN
        return np.atleast_2d(correlation_coefficient(bst))


def mean_pairwise_correlation(spikes, max_neurons: int = SYNC_NEURONS, seed: int = 0) -> float:
    """Mean off-diagonal correlation over pairs of neurons that both vary (Elephant); NaN if < 2 do."""
    s = _as_spikes(spikes)
    T, B, N = s.shape
    flat = s.transpose(2, 1, 0).reshape(N, B * T)
    varying = np.nonzero(flat.any(1) & ~flat.all(1))[0]
    if varying.size < 2:
        return float("nan")
    pick = varying[_subsample(varying.size, max_neurons, seed)]
    c = correlation_matrix(s, pick)
    off = c[~np.eye(c.shape[0], dtype=bool)]
    off = off[np.isfinite(off)]
    return float(off.mean()) if off.size else float("nan")


def spike_contrast_sync(spikes, max_neurons: int = SYNC_NEURONS, seed: int = 0) -> float:
    """Spike-contrast synchrony (Ciba et al. 2018) by elephant.spike_train_synchrony.spike_contrast on
    up to max_neurons neurons, samples back to back (1 step = 1 ms, smallest bin 0.5 steps).
    0 = asynchronous, 1 = fully synchronous; NaN when undefined (no neuron with 2 or more spikes)."""
    import neo
    import quantities as pq
    from elephant.spike_train_synchrony import spike_contrast
    s = _as_spikes(spikes)
    T, B, N = s.shape
    if N < 2 or T * B < 2:
        return float("nan")
    flat = s.transpose(2, 1, 0).reshape(N, B * T)
    pick = _subsample(N, max_neurons, seed)
    trains = [neo.SpikeTrain(np.nonzero(flat[n])[0].astype(float), t_start=0.0, t_stop=float(B * T),
                             units="ms") for n in pick]
    if not any(len(t) >= 2 for t in trains):
        return float("nan")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(spike_contrast(trains, min_bin=0.5 * pq.ms))
    except ValueError:
        return float("nan")


def chi(spikes) -> float:
    """Population synchrony chi (Golomb 2007; snncore.metrics.chi_synchrony), batch mean."""
    from .metrics import chi_synchrony
    return float(chi_synchrony(torch.as_tensor(_as_spikes(spikes), dtype=torch.float32)))


def silent_saturated(rates: np.ndarray, saturated_at: float = SATURATED_AT) -> tuple[int, int]:
    """(neurons that never fired, neurons firing on >= saturated_at of the steps)."""
    r = np.asarray(rates, dtype=float)
    return int((r == 0).sum()), int((r >= saturated_at).sum())


def sparsity(activations) -> float:
    """Share of zero entries of an activation array (1 = all zero)."""
    a = activations.detach().cpu().numpy() if isinstance(activations, torch.Tensor) else np.asarray(activations)
    return float((a == 0).mean()) if a.size else float("nan")


def synops(pre, weight) -> float:
    """Synaptic operations per sample of one weight layer: pre [T, B, N_pre] activity (any non-zero
    entry counts as an event), weight [N_post, N_pre]; each event costs its neuron's fan-out
    (the non-zero weights in its column). Mean over the B samples."""
    p = pre.detach().cpu().numpy() if isinstance(pre, torch.Tensor) else np.asarray(pre)
    w = weight.detach().cpu().numpy() if isinstance(weight, torch.Tensor) else np.asarray(weight)
    p = p.reshape(p.shape[0], p.shape[1], -1)
    if w.shape[1] != p.shape[2]:
        raise ValueError(f"synops: weight has {w.shape[1]} inputs but pre has {p.shape[2]} neurons")
    fan_out = (w != 0).sum(axis=0)                             # [N_pre]
    events = (p != 0).sum(axis=0)                              # [B, N_pre]
    return float((events @ fan_out).mean()) if p.shape[1] else 0.0


@dataclass
class LayerStats:
    """Statistics of one spiking layer; per-neuron arrays plus the scalar summary."""
    name: str
    n_neurons: int
    rates: np.ndarray                 # [N] spikes / step
    cv: np.ndarray                    # [N] NaN where undefined
    fano: np.ndarray                  # [N] NaN where undefined
    corr: float
    chi: float
    spike_contrast: float
    silent: int
    saturated: int
    sparsity: float
    synops: float | None = None       # of the weight layer that drives these neurons, per sample
    dense_macs: float | None = None   # T x N_pre x N_post: what a dense network would compute

    def summary(self) -> dict[str, Any]:
        def m(a):
            a = a[np.isfinite(a)]
            return float(a.mean()) if a.size else None
        finite = self.rates[np.isfinite(self.rates)]
        return {"neurons": self.n_neurons, "rate_mean": m(self.rates),
                "rate_median": float(np.median(finite)) if finite.size else None,
                "cv_isi_mean": m(self.cv), "cv_isi_defined": int(np.isfinite(self.cv).sum()),
                "fano_mean": m(self.fano), "fano_defined": int(np.isfinite(self.fano).sum()),
                "corr_mean": _num(self.corr), "chi": _num(self.chi),
                "spike_contrast": _num(self.spike_contrast), "silent": self.silent,
                "saturated": self.saturated, "sparsity": _num(self.sparsity),
                "synops_per_sample": _num(self.synops), "dense_macs_per_sample": _num(self.dense_macs)}


def _num(v):
    return None if v is None or not math.isfinite(v) else float(v)


def layer_statistics(name: str, spikes, *, max_sync_neurons: int = SYNC_NEURONS, seed: int = 0,
                     saturated_at: float = SATURATED_AT) -> LayerStats:
    """All the per-layer statistics of spikes [T, B, N]."""
    s = _as_spikes(spikes)
    rates = firing_rates(s)
    silent, saturated = silent_saturated(rates, saturated_at)
    return LayerStats(name=name, n_neurons=s.shape[2], rates=rates, cv=isi_cv(s), fano=fano_factors(s),
                      corr=mean_pairwise_correlation(s, max_sync_neurons, seed), chi=chi(s),
                      spike_contrast=spike_contrast_sync(s, max_sync_neurons, seed),
                      silent=silent, saturated=saturated, sparsity=sparsity(s))


def neuron_statistics(spikes, neuron: int) -> dict[str, Any]:
    """One neuron's numbers (for the clicked neuron): rate, spike count, CV of ISI, Fano factor."""
    s = _as_spikes(spikes)[:, :, neuron:neuron + 1]
    cv, fano = isi_cv(s)[0], fano_factors(s)[0]
    return {"neuron": int(neuron), "rate": float(s.mean()), "spikes": int(s.sum()),
            "samples_with_spikes": int(s.any(axis=0).sum()), "cv_isi": _num(cv), "fano": _num(fano)}


# ============================================================== loading and recording
def load_checkpoint(source: str | Path | bytes | BinaryIO) -> dict:
    """Read a checkpoint safely (torch.load weights_only=True: plain tensors and containers only, so
    a pickle that would run code is refused). Raises InspectError with a one-line reason."""
    name = str(source) if isinstance(source, (str, Path)) else "the uploaded file"
    if isinstance(source, (str, Path)):
        p = Path(source)
        if not p.exists():
            raise InspectError(f"checkpoint file {str(p)!r} does not exist")
        if not p.is_file():
            raise InspectError(f"{str(p)!r} is not a file (give a checkpoint .pt file or a run id)")
    buf = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = torch.load(buf, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 -- truncated zip, foreign pickle, refused globals: all one message
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "weights_only" in str(e) or "Unsupported global" in str(e) or "GLOBAL" in str(e):
            why = "it holds Python objects other than tensors and plain containers (refused, not executed)"
        raise InspectError(f"{name} is not a readable checkpoint: {why[:200]}") from None
    if not isinstance(state, dict):
        raise InspectError(f"{name} is not a Plasticity Lab checkpoint (expected a dict, got {type(state).__name__})")
    return state


def checkpoint_config(state: dict):
    """The RunConfig saved inside a checkpoint; InspectError when it is missing or invalid."""
    from .config import ConfigError, RunConfig
    cfg = state.get("config")
    if not isinstance(cfg, dict):
        raise InspectError("the checkpoint has no run config inside; Inspect rebuilds the network from it "
                           "(checkpoints written by the Trainer carry one)")
    try:
        return RunConfig.from_dict(cfg)
    except ConfigError as e:
        raise InspectError(f"the checkpoint's config is not valid here: {e}") from None


SUPPORTED_MODELS = ("mlp", "mps_mlp")


def check_supported(cfg, state: dict | None = None) -> None:
    """InspectError for runs Inspect cannot rebuild (e.g. an IP2 checkpoint from before task
    checkpoints carried the network)."""
    if cfg.model == "rsnn" and (state is None or isinstance(state.get("ip2"), dict)):
        return
    if cfg.model == "rsnn":
        raise InspectError("this IP2 checkpoint was written before task checkpoints carried the recurrent "
                           "network, so there is nothing to re-run (resume or repeat the run to get one)")
    if cfg.model not in SUPPORTED_MODELS or (state is not None and not isinstance(state.get("model"), dict)):
        what = f"rule {cfg.rule!r}, model {cfg.model!r}"
        raise InspectError(f"Inspect re-runs feed-forward networks (models {', '.join(SUPPORTED_MODELS)}) from "
                           f"their checkpoint weights; this run ({what}) keeps no network weights in its "
                           f"checkpoint (its per-task rasters are on the Train page)")


@dataclass
class LayerRecord:
    """One weight layer's activity over the inspected samples (numpy, CPU)."""
    name: str
    pre: np.ndarray                   # [T, B, N_pre] input activity (bool for spikes, float for currents)
    post: np.ndarray                  # [T, B, N] bool spikes (read-out: logit > 0)
    v: np.ndarray | None              # [T, B, N] membrane before reset (logits for a non-spiking read-out)
    weight: np.ndarray                # [N, N_pre] as used in the forward pass
    spiking: bool = True
    v_threshold: float | None = None


@dataclass
class Recording:
    cfg: Any
    layers: dict[str, LayerRecord]
    labels: np.ndarray
    predictions: np.ndarray
    epoch: int | None = None
    step: int | None = None
    extra: dict = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        return float((self.labels == self.predictions).mean()) if self.labels.size else float("nan")


def _lif_modules(model) -> dict[str, torch.nn.Module]:
    """layer name -> the neuron module whose membrane we reconstruct (SpikingMLP layout)."""
    lifs = dict(zip(getattr(model, "names", []), getattr(model, "lifs", [])))
    if getattr(model, "out_lif", None) is not None:
        lifs["out"] = model.out_lif
    return lifs


def lif_pre_reset(x_seq: torch.Tensor, v_seq: torch.Tensor, lif) -> torch.Tensor:
    """Membrane potential before the threshold test, from a SpikingJelly LIF node's inputs x_seq and its
    post-reset voltages v_seq ([T, ...]), by the node's own charge equation (spikes: H >= v_threshold)."""
    v0 = lif.v_reset if lif.v_reset is not None else 0.0
    prev = torch.cat([torch.full_like(v_seq[:1], v0), v_seq[:-1]])
    tau, vr = float(lif.tau), (0.0 if lif.v_reset is None else float(lif.v_reset))
    if lif.decay_input:
        return prev + (x_seq - (prev - vr)) / tau
    return prev - (prev - vr) / tau + x_seq


@torch.no_grad()
def _record_ip2(state: dict, cfg, n_samples: int, seed: int) -> Recording:
    """IP2: the recurrent network of the task boundary the checkpoint holds, run on n_samples
    trials of the next task of its family (the task it would learn next). Layers: "rsnn" (its
    input and recurrent synapses; membrane u) and "out" (the read-out y, not spiking)."""
    from .rules.ip2 import L2LRunner
    point = state["ip2"]
    mask = point.get("mask") or point.get("current", "").split("+")
    try:
        r = L2LRunner(cfg.rule_object_params(), [m for m in mask if m], cfg.seed)
        r.load_state_dict(point["sequence"]["runner"])
    except (RuntimeError, KeyError, ValueError) as e:
        raise InspectError(f"the checkpoint's recurrent network does not fit its config: "
                           f"{str(e).strip().splitlines()[0][:200]}") from None
    task = r.family.new_task()
    x, target, lmask = task.batch(max(1, int(n_samples)), torch.Generator().manual_seed(seed))
    m = r.model
    y, rec = m(x, record=True)
    s = rec["s"]
    s_prev = torch.cat([torch.zeros_like(s[:1]), s[:-1]])
    W = torch.cat([m.W_in, m.W_rec], 1)
    layers = {
        "rsnn": LayerRecord("rsnn", pre=torch.cat([x, s_prev], -1).numpy(), post=s.numpy() != 0,
                            v=rec["u"].float().numpy(), weight=W.detach().float().numpy(), spiking=True,
                            v_threshold=float(m.theta.mean())),
        "out": LayerRecord("out", pre=s.numpy() != 0, post=y.numpy() > 0, v=y.float().numpy(),
                           weight=m.W_out.detach().float().numpy(), spiking=False)}
    sel = lmask & (target >= 0)
    return Recording(cfg=cfg, layers=layers, labels=target[sel].numpy(), predictions=y.argmax(-1)[sel].numpy(),
                     epoch=state.get("tasks_done"), step=state.get("step"),
                     extra={"note": f"IP2: {x.shape[1]} trials of the next task of family "
                                    f"{cfg.rule_object_params().family!r}; accuracy over the scored steps"})


@torch.no_grad()
def record_network(state: dict, n_samples: int = 64, seed: int = 12345) -> Recording:
    """Rebuild the checkpoint's network, load its weights and run it on the first n_samples test
    samples (encoded with a fixed generator) recording every layer's spikes and membrane."""
    from spikingjelly.activation_based import functional
    from .data import load_dataset
    from .models import build_model
    cfg = checkpoint_config(state)
    check_supported(cfg, state)
    if cfg.model == "rsnn":
        return _record_ip2(state, cfg, n_samples, seed)
    try:
        data = load_dataset(cfg)
        model = build_model(cfg, data.input_size, data.n_classes, data.input_shape)
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError, ValueError) as e:
        raise InspectError(f"the checkpoint's weights do not fit the network its config builds: "
                           f"{str(e).strip().splitlines()[0][:200]}") from None
    model.eval()
    n = max(1, min(int(n_samples), int(data.test_y.numel())))
    g = torch.Generator().manual_seed(seed)
    x, y = next(data.batches("test", n, cfg.timesteps, shuffle=False, generator=g))
    lifs = _lif_modules(model)
    seen: dict[str, torch.Tensor] = {}
    hooks = []
    for name, lif in lifs.items():
        lif.store_v_seq = True
        hooks.append(lif.register_forward_hook(lambda m, inp, out, name=name: seen.__setitem__(name, inp[0])))
    try:
        functional.reset_net(model)
        out = model(x)
        traces = model.layer_traces()
    finally:
        for h in hooks:
            h.remove()
    layers = {}
    for name, tr in traces.items():
        v = tr.v
        if v is None and name in seen and getattr(lifs[name], "v_seq", None) is not None:
            v = lif_pre_reset(seen[name], lifs[name].v_seq, lifs[name])
        thr = None
        if tr.spiking:
            lif = lifs.get(name)
            thr = float(lif.v_threshold) if lif is not None else float(getattr(model, "v_th", cfg.v_threshold))
        pre = tr.pre.reshape(tr.pre.shape[0], tr.pre.shape[1], -1)
        pre_np = pre.cpu().numpy()
        if np.isin(pre_np, (0.0, 1.0)).all():
            pre_np = pre_np.astype(bool)
        layers[name] = LayerRecord(name=name, pre=pre_np, post=tr.post.cpu().numpy() != 0,
                                   v=None if v is None else v.float().cpu().numpy(),
                                   weight=tr.weight.detach().float().cpu().numpy(), spiking=tr.spiking,
                                   v_threshold=thr)
    functional.reset_net(model)
    pred = out.float().mean(0).argmax(-1).cpu().numpy()
    return Recording(cfg=cfg, layers=layers, labels=y.cpu().numpy(), predictions=pred,
                     epoch=state.get("epochs_done"), step=state.get("step"))


def analyse(rec: Recording, *, max_sync_neurons: int = SYNC_NEURONS, seed: int = 0) -> dict[str, LayerStats]:
    """LayerStats for every weight layer (input order) with the SynOps of the weights driving it; a
    non-spiking read-out (logits) has no spike statistics, only its SynOps."""
    out = {}
    for name, lr in rec.layers.items():
        T = lr.pre.shape[0]
        ops = synops(lr.pre, lr.weight)
        macs = float(T * lr.weight.shape[0] * lr.weight.shape[1])
        if lr.spiking:
            st = layer_statistics(name, lr.post, max_sync_neurons=max_sync_neurons, seed=seed)
        else:   # read-out logits: no spikes to describe, only its cost and how sparse its input is
            n = lr.weight.shape[0]
            nan = np.full(n, np.nan)
            st = LayerStats(name=name, n_neurons=n, rates=nan, cv=nan, fano=nan, corr=float("nan"),
                            chi=float("nan"), spike_contrast=float("nan"), silent=0, saturated=0,
                            sparsity=float("nan"))
        st.synops, st.dense_macs = ops, macs
        out[name] = st
    return out


def report(rec: Recording, stats: dict[str, LayerStats], source: str) -> dict[str, Any]:
    """JSON-able summary: what was inspected and the per-layer numbers."""
    cfg = rec.cfg
    total_ops = sum(s.synops or 0.0 for s in stats.values())
    total_macs = sum(s.dense_macs or 0.0 for s in stats.values())
    spiking = [s for s in stats.values() if rec.layers[s.name].spiking]
    zeros = sum(s.sparsity * s.n_neurons for s in spiking)
    return {"source": source, "rule": cfg.rule, "model": cfg.model, "dataset": cfg.dataset,
            "epoch": rec.epoch, "step": rec.step, "samples": int(rec.labels.size),
            "timesteps": cfg.timesteps, "accuracy": _num(rec.accuracy),
            "synops_per_sample": total_ops, "dense_macs_per_sample": total_macs,
            "activation_sparsity": _num(zeros / max(sum(s.n_neurons for s in spiking), 1)) if spiking else None,
            "layers": {n: {"spiking": rec.layers[n].spiking, **s.summary()} for n, s in stats.items()}}


# ============================================================== weights over training
def model_weights(state: dict) -> dict[str, np.ndarray]:
    """Layer name -> the weight matrix the network uses, from a checkpoint's model state (no data
    needed: the layer sizes come from the state dict itself)."""
    w = state.get("model") or {}
    out = {}
    if any(k.startswith("fcs.") for k in w):                  # SpikingMLP: fcs.i.weight, out.weight
        i = 0
        while f"fcs.{i}.weight" in w:
            out[f"fc{i + 1}"] = w[f"fcs.{i}.weight"]
            i += 1
        if "out.weight" in w:
            out["out"] = w["out.weight"]
    elif any(k.startswith("layers.") for k in w):             # MPSNet: W_eff = sum_k A_k W_k, from the
        from .rules.mps import MPSNet                          # net itself (shares need its Z and mode)
        cfg = checkpoint_config(state)
        idx = sorted({int(k.split(".")[1]) for k in w if k.startswith("layers.")})
        shapes = [next(v.shape for k, v in w.items() if k.startswith(f"layers.{i}.W_")) for i in idx]
        sizes = [shapes[0][1]] + [s[0] for s in shapes]
        try:
            net = MPSNet.from_params(sizes, cfg.timesteps, cfg.rule_object_params())
            net.load_state_dict(w)
        except (RuntimeError, ValueError) as e:
            raise InspectError(f"the checkpoint's weights do not fit an MPS network: "
                               f"{str(e).strip().splitlines()[0][:200]}") from None
        with torch.no_grad():
            out = {n: layer.effective_weight() for n, layer in zip(net.names, net.layers)}
    return {k: v.detach().float().cpu().numpy() for k, v in out.items()}


def weight_histograms(weights_by_epoch: dict[int, dict[str, np.ndarray]], bins: int = 40) -> dict[str, dict]:
    """Per layer: shared bin edges over all epochs and the share of weights per bin at each epoch,
    {layer: {"edges": [bins+1], "epochs": [E], "share": [E, bins]}} (scrubbing keeps the x axis fixed)."""
    out: dict[str, dict] = {}
    layers = sorted({n for ws in weights_by_epoch.values() for n in ws},
                    key=lambda n: (n == "out", n))
    epochs = sorted(weights_by_epoch)
    for name in layers:
        have = [e for e in epochs if name in weights_by_epoch[e]]
        allw = np.concatenate([weights_by_epoch[e][name].ravel() for e in have])
        lo, hi = float(np.nanmin(allw)), float(np.nanmax(allw))
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, bins + 1)
        share = np.stack([np.histogram(weights_by_epoch[e][name], bins=edges)[0] /
                          max(weights_by_epoch[e][name].size, 1) for e in have])
        out[name] = {"edges": edges, "epochs": have, "share": share}
    return out


def checkpoint_weight_histograms(checkpoints: list[tuple[int, int, Path]], bins: int = 40) -> dict[str, dict]:
    """weight_histograms over checkpoints [(epoch, step, path)] (unreadable files skipped)."""
    by_epoch = {}
    for epoch, _step, path in checkpoints:
        try:
            ws = model_weights(load_checkpoint(path))
        except InspectError:
            continue
        if ws:
            by_epoch[int(epoch)] = ws
    return weight_histograms(by_epoch, bins) if by_epoch else {}


def run_weight_histograms(store, run_id: str, bins: int = 40) -> dict[str, dict]:
    """weight_histograms over a run's per-epoch checkpoints."""
    return checkpoint_weight_histograms(store.checkpoints(run_id), bins)


# ============================================================== runs
def run_checkpoint(store, run_id: str) -> tuple[int, int, Path]:
    """(epoch, step, path) of a run's newest checkpoint; InspectError if the run is unknown or has none."""
    from .store import check_run_id
    try:
        check_run_id(run_id)
    except ValueError as e:
        raise InspectError(str(e)) from None
    run = store.get_run(run_id)
    if run is None:
        raise InspectError(f"run {run_id!r} is not in {store.root}")
    cks = store.checkpoints(run_id)
    if not cks:
        from .config import RunConfig
        try:
            check_supported(RunConfig.from_dict(run["config"]))
        except InspectError:
            raise
        except Exception:  # noqa: BLE001 -- an old config: the missing checkpoint is the news
            pass
        raise InspectError(f"run {run_id} has no checkpoint yet (one is written at the end of each epoch; "
                           f"status: {run['status']})")
    return cks[-1]


def file_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]
