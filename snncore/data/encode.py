"""Encoders: static inputs x in [0, 1], [B, D] -> spikes or currents over T steps, [T, B, D]."""
from __future__ import annotations

import torch


def encode(x: torch.Tensor, T: int, encoding: str, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """rate: Bernoulli(x) each step (drawn from 16-bit uniform integers: P(spike) = round(65536 x) / 65536,
    exact at 0 and 1, within 2^-17 of x elsewhere; 3x faster than float uniforms); latency: one spike at t = round((1 - x)(T - 1)) for x > 0
    (brighter fires earlier); direct: the value itself as an input current at every step, returned as a
    stride-0 view over T (not copied): models see it is time-invariant and apply their first layer once
    (SpikingMLP); treat the result as read-only."""
    x = x.float().clamp(0.0, 1.0)
    if encoding == "rate":
        return (_uniform16(T, x, generator) < ((x * 65536.0).round_().to(torch.int32) - 32768).unsqueeze(0)).float()
    if encoding == "latency":
        t_fire = torch.round((1.0 - x) * (T - 1)).long()           # [B, D]
        steps = torch.arange(T, device=x.device).view(T, *([1] * x.dim()))
        return ((steps == t_fire.unsqueeze(0)) & (x.unsqueeze(0) > 0)).float()
    if encoding == "direct":
        return x.unsqueeze(0).expand(T, *x.shape)
    raise ValueError(f"encoding: unknown encoding {encoding!r} (choose from rate, latency, direct)")


def _uniform16(T: int, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """[T, *x.shape] uniform int16 (as -32768..32767), four per 64-bit draw of the generator."""
    n = T * x.numel()
    dev = generator.device if generator is not None else x.device
    r = torch.randint(-2**63, 2**63 - 1, ((n + 3) // 4,), generator=generator, dtype=torch.int64, device=dev)
    return r.view(torch.int16)[:n].view(T, *x.shape).to(x.device)
