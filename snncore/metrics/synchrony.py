"""Population synchrony and rates.

chi (Golomb 2007): chi^2 = Var_t(P(t)) / mean_i Var_t(s_i(t)), with P(t) = mean_i s_i(t) the
population activity. chi = 1 for perfectly synchronous neurons, ~1/sqrt(N) for independent ones.
Computed per sample over the window and averaged over the batch; neurons that never vary
(silent or always on) are left out of the denominator's mean as Golomb's measure is undefined
for them; a sample with no varying neuron contributes nothing.
"""
from __future__ import annotations

import torch


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
