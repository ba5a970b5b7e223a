"""Whole-sequence multi-step LIF: one autograd Function for all T steps (forward and backward).

Same model and conventions as SpikingJelly 2.0's multi-step ``LIFNode`` (decay_input, hard reset to
v_reset or soft reset, detach_reset, Heaviside forward with a surrogate gradient)::

    h[t] = v[t-1] + (x[t] - (v[t-1] - v_reset)) / tau        (decay_input=True)
    h[t] = v[t-1] - (v[t-1] - v_reset) / tau + x[t]          (decay_input=False)
    s[t] = h[t] >= v_threshold
    v[t] = v_reset if s[t] else h[t]                          (hard reset; soft: h[t] - s[t] v_threshold)

The reference for these equations is :func:`snncore.neurons.lif_step` (one step, parameters in
:class:`snncore.neurons.LIFParams`); this module is the fast training path, and its forward
(spikes, final membrane; the fused kernels' h too) is tested equal to
:func:`snncore.neurons.lif_sequence` in tests/test_neurons.py.

On a CPU with Numba (the default install) forward and backward run as compiled fused kernels
(:mod:`snncore.models.lif_fused`: each element read and written once per direction, ~3x faster
than the torch ops below); without Numba, or when its compilation fails, the torch-op version below
runs. Both give SpikingJelly's spikes and its gradients to 1e-6 (tests/test_lif.py runs on each).

Why the torch-op version is faster than a per-step autograd loop on a CPU: there the limit is the cost per torch op,
not arithmetic. The forward runs under no_grad with two ops per step (written into preallocated
buffers); everything that does not depend on the recurrence (input scaling, spikes, surrogate
derivatives, reset factors) is one op over the whole [T, ...] tensor. The backward recurrence

    gh[t] = gs[t] sg[t] + gh[t+1] (1 - 1/tau) r[t],   r[t] = d v[t] / d h[t]
    gx[t] = gh[t] / tau                                (decay_input; gh[t] otherwise)

is one fused multiply-add per step. Gradients are those of SpikingJelly's reference (its
``_ops/lif/cpu.py`` backward) up to float rounding (~1e-7 relative).
"""
from __future__ import annotations

import math

import torch
from spikingjelly.activation_based import neuron

from . import lif_fused

SURROGATE_IDS = {"Sigmoid": 0, "ATan": 1, "PiecewiseQuadratic": 2}
_FLOAT = (torch.float32, torch.float64, torch.bfloat16, torch.float16)   # half input: fp32 membrane


def surrogate_grad(z: torch.Tensor, alpha: float, surrogate_id: int) -> torch.Tensor:
    """d spike / d z of SpikingJelly's surrogates (same op order as its kernels), z = h - threshold."""
    if surrogate_id == 0:                          # Sigmoid
        s = torch.sigmoid(z * alpha)
        return (1 - s).mul_(s).mul_(alpha)
    if surrogate_id == 1:                          # ATan
        u = z * (math.pi / 2 * alpha)
        return (alpha / 2) / u.mul_(u).add_(1)
    if surrogate_id == 2:                          # PiecewiseQuadratic
        return (alpha - alpha * alpha * z.abs()).clamp_min_(0)
    raise ValueError(f"surrogate_id must be 0 (sigmoid), 1 (atan) or 2 (piecewise), got {surrogate_id}")


class LIFSequence(torch.autograd.Function):
    """(x [T, ...], v0 [...]) -> (spikes [T, ...] in x's dtype, v_T [...]).

    Saves one [T, ...] tensor (h, the charged potential) for backward, like SpikingJelly's kernel.
    """

    @staticmethod
    def forward(ctx, x, v0, tau: float, decay_input: bool, v_threshold: float, v_reset,
                detach_reset: bool, alpha: float, surrogate_id: int):
        ctx.cfg = (tau, decay_input, v_threshold, v_reset, detach_reset, alpha, surrogate_id, x.dtype)
        ctx.fused = _use_fused(x)
        if ctx.fused:                   # compiled kernels: one pass over [T, ...] per direction
            spikes, v_last, h, a = lif_fused.forward(x, v0.detach(), tau, decay_input, v_threshold, v_reset,
                                                     alpha if surrogate_id == 0 else None)
            ctx.save_for_backward(h, a)
            return spikes, v_last
        T = x.shape[0]
        decay = 1.0 - 1.0 / tau
        r = 0.0 if v_reset is None else float(v_reset)
        h = torch.empty(x.shape, dtype=v0.dtype, device=x.device)
        spikes = torch.empty_like(x)
        hs = h.unbind(0)
        # the recurrence carries -v, so a hard reset is one torch.threshold (keeps -h where h < thr)
        u = -v0.detach()
        u_next = torch.empty_like(u)
        C = _chunk(x)
        for c0 in range(0, T, C):       # time blocks that stay in cache: no pass over all of [T, ...]
            c1 = min(T, c0 + C)
            blk = h[c0:c1]
            if decay_input:
                torch.add(x[c0:c1], r, out=blk).mul_(-1.0 / tau)        # -(x + r) / tau
            else:
                torch.add(x[c0:c1], r / tau, out=blk).neg_()             # -(x + r / tau)
            for t in range(c0, c1):
                nh = hs[t].add_(u, alpha=decay)                          # -h[t]
                if v_reset is not None:
                    torch.threshold(nh, -v_threshold, -r, out=u_next)    # -v[t]
                    u, u_next = u_next, u
                else:
                    u = nh + (nh <= -v_threshold).to(nh.dtype) * v_threshold
            blk.neg_()
            spikes[c0:c1] = blk >= v_threshold
        ctx.save_for_backward(h)
        return spikes, -u

    @staticmethod
    def backward(ctx, gs, gv):
        tau, decay_input, thr, v_reset, detach_reset, alpha, sid, x_dtype = ctx.cfg
        if ctx.fused:
            h, a = ctx.saved_tensors
            gx, gv0 = lif_fused.backward(h, gs, gv, tau, decay_input, thr, v_reset, detach_reset, alpha, sid, a)
            return (gx.to(x_dtype), gv0 if ctx.needs_input_grad[1] else None,
                    None, None, None, None, None, None, None)
        (h,) = ctx.saved_tensors
        decay = 1.0 - 1.0 / tau
        T = h.shape[0]
        gx = torch.empty_like(h)
        nxt = None                       # gh[c1] of the block after the current one
        C = _chunk(h)
        for c1 in range(T, 0, -C):
            c0 = max(0, c1 - C)
            hb = h[c0:c1]
            sg = surrogate_grad(hb - thr, alpha, sid)
            # rr[t] = d v[t] / d h[t]
            if v_reset is not None:
                rr = (hb < thr).to(h.dtype)
                if not detach_reset:
                    rr.addcmul_(v_reset - hb, sg)
            else:
                rr = torch.ones_like(hb) if detach_reset else (1 - thr * sg)
            gh = gx[c0:c1]
            if gs is not None:
                torch.mul(sg, gs[c0:c1], out=gh)
            else:
                gh.zero_()
            if c1 == T and gv is not None:
                gh[-1].addcmul_(gv.to(h.dtype), rr[-1])
            rr.mul_(decay)
            if nxt is not None:
                gh[-1].addcmul_(nxt, rr[-1])
            ghs, rrs = gh.unbind(0), rr.unbind(0)
            for t in range(c1 - c0 - 2, -1, -1):
                ghs[t].addcmul_(ghs[t + 1], rrs[t])
            nxt = ghs[0].clone()
            if decay_input:
                gh.div_(tau)
        gv0 = nxt * decay if ctx.needs_input_grad[1] else None
        return gx.to(x_dtype), gv0, None, None, None, None, None, None, None


def _use_fused(x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and lif_fused.available()


CHUNK_ELEMENTS = 1 << 15      # 128 KB of fp32 per time block: cache-resident and below torch's parallel grain (no OpenMP barriers)


def _chunk(x: torch.Tensor) -> int:
    return max(1, CHUNK_ELEMENTS // max(1, x[0].numel()))


def lif_multi_step(x: torch.Tensor, v0: torch.Tensor | float = 0.0, tau: float = 2.0,
                   decay_input: bool = True, v_threshold: float = 1.0, v_reset: float | None = 0.0,
                   surrogate: str = "sigmoid", alpha: float = 4.0, detach_reset: bool = False):
    """Spikes [T, ...] and final membrane [...] of a multi-step LIF layer driven by x [T, ...]."""
    sid = {"sigmoid": 0, "atan": 1, "piecewise": 2}.get(surrogate)
    if sid is None:
        raise ValueError(f"surrogate: unknown surrogate {surrogate!r} (choose from sigmoid, atan, piecewise)")
    if not isinstance(v0, torch.Tensor):
        v0 = torch.full(x.shape[1:], float(v0), dtype=_state_dtype(x), device=x.device)
    return LIFSequence.apply(x, v0, float(tau), bool(decay_input), float(v_threshold),
                             None if v_reset is None else float(v_reset), bool(detach_reset),
                             float(alpha), sid)


def _state_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def supports(x: torch.Tensor, surrogate_function) -> bool:
    """True where our Function is the fastest path: CPU tensors (fp32/fp64; half input integrates
    in fp32), a built-in surrogate with
    a float alpha. On CUDA SpikingJelly's own Triton/CUDA kernels are used instead."""
    return (x.device.type == "cpu" and x.dtype in _FLOAT
            and type(surrogate_function).__name__ in SURROGATE_IDS
            and type(surrogate_function).__module__.endswith("activation_based.surrogate")
            and getattr(surrogate_function, "spiking", True)
            and isinstance(getattr(surrogate_function, "alpha", None), (int, float)))


class FastLIFNode(neuron.LIFNode):
    """SpikingJelly's LIFNode (same parameters, state, reset_net behaviour) whose multi-step forward
    uses :class:`LIFSequence` where that is the fastest path (CPU), and SpikingJelly's own kernels
    elsewhere (Triton/CUDA on a GPU). ``use_fast=False`` forces SpikingJelly's path."""

    def __init__(self, *args, use_fast: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.use_fast = use_fast

    def multi_step_forward(self, x_seq: torch.Tensor, *args, **kwargs):
        if (not self.use_fast or args or kwargs or self.store_v_seq or self._neuron_precision is not None
                or not supports(x_seq, self.surrogate_function)):
            return super().multi_step_forward(x_seq, *args, **kwargs)
        (v,) = self.materialize_states((x_seq,), tuple(self._memories.values()), "m")[:1]
        sf = self.surrogate_function
        spikes, v_last = LIFSequence.apply(
            x_seq, v.to(_state_dtype(x_seq)), float(self.tau), bool(self.decay_input), float(self.v_threshold),
            None if self.v_reset is None else float(self.v_reset), bool(self.detach_reset),
            float(sf.alpha), SURROGATE_IDS[type(sf).__name__])
        self._memories["v"] = v_last
        self.v_seq = None
        return spikes
