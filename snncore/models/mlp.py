"""Spiking MLP: (Linear -> multi-step LIF) x 1..3 -> Linear read-out, all T steps at once.

Each Linear acts on the whole sequence [T, B, N] in one matmul; the LIF layers integrate all T
steps in one call: on the CPU our whole-sequence autograd Function (snncore/models/lif.py, same
spikes and gradients as SpikingJelly, ~2-4x faster there), on a GPU SpikingJelly's own
Triton/CUDA kernels (FastLIFNode picks per device). The read-out is non-spiking
(logits per step, loss on their mean over T = the mean membrane of a non-leaky integrator) or,
with readout="rate", a LIF layer whose mean firing rate is the output.
"""
from __future__ import annotations

import torch
from torch import nn
from spikingjelly.activation_based import surrogate as sg

from ..rules.base import LayerTrace
from .lif import FastLIFNode


def make_surrogate(name: str, alpha: float):
    if name == "sigmoid":
        return sg.Sigmoid(alpha=alpha)
    if name == "atan":
        return sg.ATan(alpha=alpha)
    if name == "piecewise":
        return sg.PiecewiseQuadratic(alpha=alpha)
    raise ValueError(f"surrogate: unknown surrogate {name!r}")


def make_lif(tau, v_threshold, v_reset, surrogate, alpha, use_fast: bool = True):
    """A multi-step LIF layer (SpikingJelly's LIFNode; use_fast=False: SpikingJelly's path everywhere)."""
    return FastLIFNode(use_fast=use_fast, tau=tau, decay_input=True, v_threshold=v_threshold, v_reset=v_reset,
                          surrogate_function=make_surrogate(surrogate, alpha), detach_reset=False,
                          step_mode="m")


def time_invariant(x: torch.Tensor) -> bool:
    """True for a [T, ...] input that is one tensor repeated over T as a stride-0 view (direct encoding)."""
    return x.dim() > 1 and x.shape[0] > 1 and x.stride(0) == 0


def linear_over_time(fc: nn.Linear, s: torch.Tensor) -> torch.Tensor:
    """fc on every step of s [T, B, N]. A time-invariant s (direct current) costs one step: the product
    is made once and viewed over T, and autograd sums the T gradients before the one weight-gradient
    GEMM (T x fewer FLOPs in the first layer, the bulk of an MNIST-size MLP; same values)."""
    if time_invariant(s):
        return fc(s[0]).unsqueeze(0).expand(s.shape[0], *s.shape[1:-1], fc.out_features)
    return fc(s)


class _ReadoutOverTime(torch.autograd.Function):
    """y[t] = s[t] W^T + b, with a backward that spots a time-invariant output gradient (the loss
    on the mean over T of the logits: dL/dy[t] is the same at every t) and then does the work once:
    dL/ds = (g W) viewed over T (stride 0), dL/dW = g^T sum_t s[t], dL/db = T sum g. Otherwise the
    usual three products. Same values up to float summation order."""

    @staticmethod
    def forward(ctx, s, weight, bias):
        ctx.save_for_backward(s, weight)
        ctx.has_bias = bias is not None
        return nn.functional.linear(s, weight, bias)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        s, w = ctx.saved_tensors
        T, C, N = g.shape[0], g.shape[-1], s.shape[-1]
        need_s, need_w, need_b = ctx.needs_input_grad
        gs = gw = gb = None
        if g.stride(0) == 0 or torch.equal(g[1:], g[:1].expand_as(g[1:])):
            g0 = g[0]
            if need_s:
                gs = (g0 @ w).unsqueeze(0).expand(T, *g0.shape[:-1], N)
            if need_w:
                gw = g0.reshape(-1, C).t() @ s.sum(0).reshape(-1, N)
            if need_b and ctx.has_bias:
                gb = g0.reshape(-1, C).sum(0) * T
        else:
            if need_s:
                gs = g @ w
            if need_w:
                gw = g.reshape(-1, C).t() @ s.reshape(-1, N)
            if need_b and ctx.has_bias:
                gb = g.reshape(-1, C).sum(0)
        return gs, gw, gb


def readout_over_time(fc: nn.Linear, s: torch.Tensor) -> torch.Tensor:
    """fc on every step of s [T, B, N] (see :class:`_ReadoutOverTime`); plain fc under autocast or
    mixed dtypes, where autograd's own casts are needed."""
    if (s.dim() < 3 or s.shape[0] < 2 or s.dtype != fc.weight.dtype
            or torch.is_autocast_enabled(s.device.type) or not torch.is_grad_enabled()):
        return fc(s)
    return _ReadoutOverTime.apply(s, fc.weight, fc.bias)


class TracedLayers:
    """What rules and the recorder read from a model: ``self._trace`` (name -> LayerTrace, in input ->
    output order) and ``self.names`` (the weight layers), both set by the model."""

    def layer_traces(self) -> dict[str, LayerTrace]:
        """Per weight layer, input -> output order, what the last forward pass saw."""
        return self._trace

    def spiking_layers(self) -> list[str]:
        return [n for n, t in self._trace.items() if t.spiking] or self.names[:-1]


class SpikingMLP(TracedLayers, nn.Module):
    def __init__(self, n_in: int, hidden: list[int], n_out: int, *, tau=2.0, v_threshold=1.0,
                 v_reset=0.0, surrogate="sigmoid", alpha=4.0, readout="mem", fast_lif: bool = True):
        """fast_lif=False: SpikingJelly's own LIF path on every device (the benchmarks' reference)."""
        super().__init__()
        sizes = [n_in] + list(hidden)
        self.fcs = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.lifs = nn.ModuleList(make_lif(tau, v_threshold, v_reset, surrogate, alpha, fast_lif)
                                  for _ in hidden)
        self.out = nn.Linear(sizes[-1], n_out)
        self.readout = readout
        self.out_lif = (make_lif(tau, v_threshold, v_reset, surrogate, alpha, fast_lif)
                        if readout == "rate" else None)
        self.names = [f"fc{i + 1}" for i in range(len(hidden))] + ["out"]
        self._trace: dict[str, LayerTrace] = {}

    def weight_layers(self) -> dict[str, nn.Linear]:
        return dict(zip(self.names, list(self.fcs) + [self.out]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [T, B, ...] -> per-step output [T, B, C] (logits, or spikes for readout='rate')."""
        T, B = x.shape[:2]
        s = x.reshape(T, B, -1)
        trace = {}
        for name, fc, lif in zip(self.names, self.fcs, self.lifs):
            post = lif(linear_over_time(fc, s))                   # [T, B, N]
            trace[name] = LayerTrace(fc.weight, s, post)
            s = post
        logits = readout_over_time(self.out, s)                   # [T, B, C]
        if self.out_lif is not None:
            out = self.out_lif(logits)
            trace["out"] = LayerTrace(self.out.weight, s, out)
        else:
            out = logits
            trace["out"] = LayerTrace(self.out.weight, s, (logits > 0).float(), v=logits, spiking=False)
        self._trace = trace
        return out

