"""Per-layer statistics of a recording (`analyse`) and the JSON-able report the CLI and the page show
(`report`). The numbers come from snncore.metrics; a non-spiking read-out (logits) has only its
SynOps. Conv models: spike statistics describe the recorded neuron sample, counts cover every neuron.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..metrics.spikes import SATURATED_AT, as_spikes, fano_factors, firing_rates, isi_cv, silent_saturated, sparsity
from ..metrics.synchrony import SYNC_NEURONS, chi, mean_pairwise_correlation, spike_contrast_sync
from ..metrics.synops import synops
from .recording import Recording


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
    rates_all: np.ndarray | None = None   # conv models: [n_neurons] rate of every neuron (rates: the sample)
    shape: tuple | None = None        # (C, H, W) of a conv layer's spike map

    def summary(self) -> dict[str, Any]:
        def m(a):
            a = a[np.isfinite(a)]
            return float(a.mean()) if a.size else None
        every = self.rates if self.rates_all is None else self.rates_all
        finite = every[np.isfinite(every)]
        return {"neurons": self.n_neurons, "neurons_recorded": int(self.rates.size),
                "map": None if self.shape is None else [int(v) for v in self.shape], "rate_mean": m(every),
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
    s = as_spikes(spikes)
    rates = firing_rates(s)
    silent, saturated = silent_saturated(rates, saturated_at)
    return LayerStats(name=name, n_neurons=s.shape[2], rates=rates, cv=isi_cv(s), fano=fano_factors(s),
                      corr=mean_pairwise_correlation(s, max_sync_neurons, seed), chi=chi(s),
                      spike_contrast=spike_contrast_sync(s, max_sync_neurons, seed),
                      silent=silent, saturated=saturated, sparsity=sparsity(s))


def neuron_statistics(spikes, neuron: int) -> dict[str, Any]:
    """One neuron's numbers (for the clicked neuron): rate, spike count, CV of ISI, Fano factor."""
    s = as_spikes(spikes)[:, :, neuron:neuron + 1]
    cv, fano = isi_cv(s)[0], fano_factors(s)[0]
    return {"neuron": int(neuron), "rate": float(s.mean()), "spikes": int(s.sum()),
            "samples_with_spikes": int(s.any(axis=0).sum()), "cv_isi": _num(cv), "fano": _num(fano)}


def analyse(rec: Recording, *, max_sync_neurons: int = SYNC_NEURONS, seed: int = 0) -> dict[str, LayerStats]:
    """LayerStats for every weight layer (input order) with the SynOps of the weights driving it; a
    non-spiking read-out (logits) has no spike statistics, only its SynOps. Conv models: the spike
    statistics describe the recorded neuron sample; n_neurons, silent, saturated, sparsity and the
    mean rate cover every neuron of the layer (from its spike counts)."""
    out = {}
    for name, lr in rec.layers.items():
        if lr.synops is not None:
            ops, macs = lr.synops, lr.dense_macs
        else:
            ops = synops(lr.pre, lr.weight)
            macs = float(lr.pre.shape[0] * lr.weight.shape[0] * lr.weight.shape[1])
        if lr.spiking:
            st = layer_statistics(name, lr.post, max_sync_neurons=max_sync_neurons, seed=seed)
            if lr.rates_all is not None:
                st.n_neurons, st.rates_all, st.shape = lr.n_total, lr.rates_all, lr.shape
                st.silent, st.saturated = silent_saturated(lr.rates_all)
                st.sparsity = float(1.0 - lr.rates_all.astype(np.float64).mean())
        else:   # read-out logits: no spikes to describe, only its cost and how sparse its input is
            n = lr.n_total
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
            "epoch": rec.epoch, "step": rec.step, "checkpoint_unit": rec.unit,
            "samples": int(rec.labels.size if rec.samples is None else rec.samples),
            "timesteps": int(cfg.timesteps if rec.timesteps is None else rec.timesteps),
            "accuracy": _num(rec.accuracy),
            "synops_per_sample": total_ops, "dense_macs_per_sample": total_macs,
            "activation_sparsity": _num(zeros / max(sum(s.n_neurons for s in spiking), 1)) if spiking else None,
            "layers": {n: {"spiking": rec.layers[n].spiking, **s.summary()} for n, s in stats.items()}}
