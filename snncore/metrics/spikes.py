"""Spike-train statistics per neuron: pure functions on spike arrays shaped [T, B, N] (time, samples,
neurons; 0/1), one time step = one bin (1 ms where Elephant needs units). Where Elephant provides a
statistic it computes it:

    CV of inter-spike intervals   elephant.statistics.cv on each neuron's ISIs (pooled over samples;
                                  an ISI never spans two samples, the network is reset between them)
    Fano factor                   elephant.statistics.fanofactor: spike counts of a neuron across samples

Ours (Elephant has none): silent and saturated counts and activation sparsity (share of zero
activations). Synchrony measures are in synchrony.py, SynOps in synops.py.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

SATURATED_AT = 0.9          # a neuron firing on at least 90 % of the steps counts as saturated


def as_spikes(spikes) -> np.ndarray:
    s = spikes.detach().cpu().numpy() if isinstance(spikes, torch.Tensor) else np.asarray(spikes)
    if s.ndim != 3:
        raise ValueError(f"spikes: expected an array [T, B, N], got shape {s.shape}")
    return s != 0


def firing_rates(spikes) -> np.ndarray:
    """[T, B, N] -> [N]: spikes per neuron per step, averaged over samples."""
    s = as_spikes(spikes)
    return s.mean(axis=(0, 1)) if s.size else np.zeros(s.shape[2])


def spike_times(spikes) -> list[list[np.ndarray]]:
    """[T, B, N] -> per neuron, per sample, the spike times (time-step indices, ascending)."""
    s = as_spikes(spikes)
    T, B, N = s.shape
    flat = s.transpose(2, 1, 0).reshape(N * B, T)             # row = (neuron, sample)
    rows, ts = np.nonzero(flat)
    cuts = np.searchsorted(rows, np.arange(1, N * B))
    per_row = np.split(ts.astype(float), cuts)
    return [per_row[n * B:(n + 1) * B] for n in range(N)]


def isi_per_neuron(spikes) -> list[np.ndarray]:
    """[T, B, N] -> per neuron, its inter-spike intervals (steps) within each sample, pooled over samples.
    Vectorised; equals elephant.statistics.isi on each sample's train (tested)."""
    s = as_spikes(spikes)
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
    out = np.full(as_spikes(spikes).shape[2], np.nan)
    isis = isi_per_neuron(spikes)
    ok = np.array([isi.size >= 2 for isi in isis], dtype=bool)
    if ok.any():      # one Elephant call on the NaN-padded rows (7x faster than a call per neuron)
        rows = [isis[n] for n in np.nonzero(ok)[0]]
        sizes = np.array([r.size for r in rows])
        pad = np.full((len(rows), int(sizes.max())), np.nan)
        pad[np.arange(pad.shape[1])[None, :] < sizes[:, None]] = np.concatenate(rows)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[ok] = np.asarray(cv(pad, axis=1, nan_policy="omit"), dtype=float)
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


def subsample(n: int, k: int, seed: int = 0) -> np.ndarray:
    if n <= k:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def silent_saturated(rates: np.ndarray, saturated_at: float = SATURATED_AT) -> tuple[int, int]:
    """(neurons that never fired, neurons firing on >= saturated_at of the steps)."""
    r = np.asarray(rates, dtype=float)
    return int((r == 0).sum()), int((r >= saturated_at).sum())


def sparsity(activations) -> float:
    """Share of zero entries of an activation array (1 = all zero)."""
    a = activations.detach().cpu().numpy() if isinstance(activations, torch.Tensor) else np.asarray(activations)
    return float((a == 0).mean()) if a.size else float("nan")
