"""Encoders: static inputs x in [0, 1], [B, D] -> spikes or currents over T steps, [T, B, D]."""
from __future__ import annotations

import torch


def encode(x: torch.Tensor, T: int, encoding: str, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """rate: Bernoulli(x) each step; latency: one spike at t = round((1 - x)(T - 1)) for x > 0
    (brighter fires earlier); direct: the value itself as an input current at every step."""
    x = x.float().clamp(0.0, 1.0)
    if encoding == "rate":
        if generator is not None and generator.device != x.device:
            r = torch.rand((T, *x.shape), generator=generator).to(x.device)
        else:
            r = torch.rand((T, *x.shape), generator=generator, device=x.device)
        return (r < x.unsqueeze(0)).float()
    if encoding == "latency":
        t_fire = torch.round((1.0 - x) * (T - 1)).long()           # [B, D]
        steps = torch.arange(T, device=x.device).view(T, *([1] * x.dim()))
        return ((steps == t_fire.unsqueeze(0)) & (x.unsqueeze(0) > 0)).float()
    if encoding == "direct":
        return x.unsqueeze(0).expand(T, *x.shape).contiguous()
    raise ValueError(f"encoding: unknown encoding {encoding!r} (choose from rate, latency, direct)")
