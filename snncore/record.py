"""Bounded spike recorder: bool spikes, a fixed neuron subsample, a ring buffer of recent batches.

Memory is O(layers x ring x T x neurons_kept) whatever the run's length: the ring buffer
(a deque with maxlen) drops the oldest batch when a new one arrives.
"""
from __future__ import annotations

from collections import deque

import numpy as np
import torch


class SpikeRecorder:
    def __init__(self, layers: list[str], max_neurons: int = 256, ring: int = 4, seed: int = 0):
        self.layers = list(layers)
        self.max_neurons = int(max_neurons)
        self.ring = int(ring)
        self.seed = seed
        self.index: dict[str, torch.Tensor] = {}
        self.buffers: dict[str, deque] = {name: deque(maxlen=self.ring) for name in self.layers}
        self.rates: dict[str, deque] = {name: deque(maxlen=self.ring) for name in self.layers}

    def _subsample(self, name: str, n: int, device) -> torch.Tensor:
        if name not in self.index:
            g = torch.Generator().manual_seed(self.seed)
            k = min(n, self.max_neurons)
            idx = torch.randperm(n, generator=g)[:k].sort().values if k < n else torch.arange(n)
            self.index[name] = idx.to(device)
        return self.index[name]

    @torch.no_grad()
    def observe(self, spikes: dict[str, torch.Tensor]) -> None:
        """spikes: layer -> [T, B, N] tensor of 0/1. Keeps sample 0's subsampled raster (bool) and
        the population rate per step over the whole layer and batch."""
        for name in self.layers:
            s = spikes.get(name)
            if s is None:
                continue
            s = s.reshape(s.shape[0], s.shape[1], -1)
            idx = self._subsample(name, s.shape[-1], s.device)
            self.buffers[name].append(s[:, 0].index_select(-1, idx).bool().cpu())    # [T, n_kept]
            self.rates[name].append(s.float().mean(dim=(1, 2)).cpu())                 # [T]

    def snapshot(self) -> dict[str, np.ndarray]:
        """raster/<layer>: [n_kept, ring*T] bool (neurons x time, recent batches side by side);
        rate/<layer>: [ring*T] population rate; neurons/<layer>: kept neuron indices."""
        out = {}
        for name in self.layers:
            if not self.buffers[name]:
                continue
            out[f"raster/{name}"] = torch.cat(list(self.buffers[name]), dim=0).T.numpy()
            out[f"rate/{name}"] = torch.cat(list(self.rates[name])).numpy().astype(np.float32)
            out[f"neurons/{name}"] = self.index[name].cpu().numpy()
        return out

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for b in self.buffers.values() for t in b) + \
            sum(t.numel() * t.element_size() for b in self.rates.values() for t in b)
