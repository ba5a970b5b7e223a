"""Synthetic synchrony task: each class is a group of channels firing together.

Sample of class c: the channels of group c each join one synchronous volley at a random onset with
probability `sync`, each spike displaced by Gaussian jitter (std `jitter` steps, rounded, kept in the
window); every channel also fires Poisson background spikes at `noise` per step. Rates alone carry
little information when sync is high and noise matters, synchrony carries the label: the natural
playground for synchrony rules (ALGORITHMS_SSDP.md, section 7).
"""
from __future__ import annotations

import torch


def synth_spikes(labels: torch.Tensor, *, T: int, channels: int, group: int, sync: float,
                 jitter: float, noise: float, generator: torch.Generator) -> torch.Tensor:
    """Spike trains [N, T, channels] (bool) for the given labels [N]."""
    n = labels.numel()
    s = torch.rand((n, T, channels), generator=generator) < noise             # background
    # group c occupies channels [c*group, (c+1)*group) modulo channels
    offs = torch.arange(group)
    ch = (labels.view(n, 1) * group + offs.view(1, group)) % channels          # [N, group]
    onset = torch.randint(0, max(1, T - max(1, int(3 * jitter)) ), (n, 1), generator=generator)
    t = onset.float() + jitter * torch.randn((n, group), generator=generator)
    t = t.round().long().clamp(0, T - 1)                                       # [N, group]
    joins = torch.rand((n, group), generator=generator) < sync
    rows = torch.arange(n).view(n, 1).expand(n, group)
    s[rows[joins], t[joins], ch[joins]] = True
    return s


def make_synthetic(*, T: int, classes: int, channels: int, group: int, n_train: int, sync: float,
                   jitter: float, noise: float, seed: int = 0):
    from . import DataBundle

    g = torch.Generator().manual_seed(10_000 + seed)
    n_test = max(classes, n_train // 4)
    ytr = torch.randint(0, classes, (n_train,), generator=g)
    yte = torch.randint(0, classes, (n_test,), generator=g)
    kw = dict(T=T, channels=channels, group=group, sync=sync, jitter=jitter, noise=noise, generator=g)
    return DataBundle("synthetic", synth_spikes(ytr, **kw), ytr, synth_spikes(yte, **kw), yte, classes,
                      "spikes", "spikes",
                      f"synchronous groups of {group} of {channels} channels, {classes} classes, "
                      f"sync {sync}, jitter {jitter}, noise {noise}/step")
