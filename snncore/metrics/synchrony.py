"""Population synchrony and rates.

On numpy spike arrays [T, B, N] (samples back to back, 1 step = 1 ms), by Elephant:
    mean pairwise correlation     elephant.spike_train_correlation.correlation_coefficient on the
                                  binned trains, mean over pairs of firing neurons
    spike-contrast synchrony      elephant.spike_train_synchrony.spike_contrast on a neuron subsample

chi (Golomb 2007): chi^2 = Var_t(P(t)) / mean_i Var_t(s_i(t)), with P(t) = mean_i s_i(t) the
population activity. chi = 1 for perfectly synchronous neurons, ~1/sqrt(N) for independent ones.
Computed per sample over the window and averaged over the batch; neurons that never vary
(silent or always on) are left out of the denominator's mean as Golomb's measure is undefined
for them; a sample with no varying neuron contributes nothing.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

from .spikes import as_spikes, subsample

SYNC_NEURONS = 64           # spike-contrast and correlation run on at most this many neurons


def chi_synchrony(spikes: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """spikes [T, B, N] 0/1 -> scalar tensor: batch-mean chi (0 when nothing varies)."""
    s = spikes.float().reshape(spikes.shape[0], spikes.shape[1], -1)
    m = s.mean(dim=0)                                         # [B, N]
    var_i = (s * s).mean(dim=0) - m * m                       # Var_t; one pass, no strided var
    active = var_i > eps
    n_active = active.sum(dim=1)                              # [B]
    pop = (s * active.unsqueeze(0)).sum(dim=2) / n_active.clamp(min=1)   # [T, B] over varying neurons
    var_p = (pop * pop).mean(dim=0) - pop.mean(dim=0) ** 2    # [B]
    mean_var = (var_i * active).sum(dim=1) / n_active.clamp(min=1)
    chi2 = torch.where(n_active > 0, var_p / mean_var.clamp(min=eps), torch.zeros_like(var_p))
    valid = (n_active > 0).float()
    return (chi2.clamp(min=0).sqrt() * valid).sum() / valid.sum().clamp(min=1)


def firing_rate(spikes: torch.Tensor) -> torch.Tensor:
    """Mean spikes per neuron per step, scalar tensor."""
    return spikes.float().mean()


def correlation_matrix(spikes, neurons: np.ndarray | None = None) -> np.ndarray:
    """Pearson correlation of binned spike counts (1 bin = 1 step, samples back to back), by
    elephant.spike_train_correlation.correlation_coefficient; [k, k], NaN rows for silent neurons."""
    import quantities as pq
    from elephant.conversion import BinnedSpikeTrain
    from elephant.spike_train_correlation import correlation_coefficient
    s = as_spikes(spikes)
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
    s = as_spikes(spikes)
    T, B, N = s.shape
    flat = s.transpose(2, 1, 0).reshape(N, B * T)
    varying = np.nonzero(flat.any(1) & ~flat.all(1))[0]
    if varying.size < 2:
        return float("nan")
    pick = varying[subsample(varying.size, max_neurons, seed)]
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
    s = as_spikes(spikes)
    T, B, N = s.shape
    if N < 2 or T * B < 2:
        return float("nan")
    flat = s.transpose(2, 1, 0).reshape(N, B * T)
    pick = subsample(N, max_neurons, seed)
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
    return float(chi_synchrony(torch.as_tensor(as_spikes(spikes), dtype=torch.float32)))
