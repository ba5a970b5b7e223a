"""Synaptic operations (SynOps) and dense multiply-accumulates of weight layers.

Dense layer: each input event (any non-zero entry) costs its neuron's fan-out, the non-zero weights
in its column. Conv layer (`conv_fan_out`, `conv_synops`): an input spike at channel c, position
(y, x) reaches every output (o, y', x') whose kernel window covers it, i.e. each tap (ky, kx) with
y'*stride - pad + ky*dil = y (and the same for x) for some y' inside the output map; its fan-out is
    sum over such taps (ky, kx) of #{o : W[o, c, ky, kx] != 0},
which is out_channels x kh x kw for an interior pixel at stride 1 with dense weights, about
out_channels x kh x kw / stride^2 on average at stride s, and less on the border (zero padding
receives no spikes). SynOps = sum over inputs of events x fan-out (mean over samples). Dense MACs
of a conv: T x out_channels x H_out x W_out x in_channels x kh x kw.
"""
from __future__ import annotations

import numpy as np
import torch


def synops(pre, weight) -> float:
    """Synaptic operations per sample of one weight layer: pre [T, B, N_pre] activity (any non-zero
    entry counts as an event), weight [N_post, N_pre]; each event costs its neuron's fan-out
    (the non-zero weights in its column). Mean over the B samples."""
    p = pre.detach().cpu().numpy() if isinstance(pre, torch.Tensor) else np.asarray(pre)
    w = weight.detach().cpu().numpy() if isinstance(weight, torch.Tensor) else np.asarray(weight)
    p = p.reshape(p.shape[0], p.shape[1], -1)
    if w.shape[1] != p.shape[2]:
        raise ValueError(f"synops: weight has {w.shape[1]} inputs but pre has {p.shape[2]} neurons")
    fan_out = (w != 0).sum(axis=0)                             # [N_pre]
    events = (p != 0).sum(axis=0)                              # [B, N_pre]
    return float((events @ fan_out).mean()) if p.shape[1] else 0.0


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, (int, np.integer)) else (int(v[0]), int(v[1]))


def conv_out_size(n: int, k: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length of a convolution along one axis (PyTorch's formula)."""
    return (n + 2 * padding - dilation * (k - 1) - 1) // stride + 1


def _taps(n_in: int, k: int, stride: int, padding: int, dilation: int) -> np.ndarray:
    """[n_in, k] bool: kernel tap j of some in-range output position lands on input position i."""
    n_out = conv_out_size(n_in, k, stride, padding, dilation)
    o = np.arange(n_in)[:, None] + padding - dilation * np.arange(k)[None, :]     # = y' * stride
    return (o >= 0) & (o % stride == 0) & (o // stride < n_out)


def conv_fan_out(weight, in_hw, stride=1, padding=0, dilation=1) -> np.ndarray:
    """[C_in, H, W] fan-out of each input position of a 2-D convolution (groups=1): the synapses an
    input spike there drives, sum over the taps (ky, kx) that place it inside the output map of the
    non-zero weights W[:, c, ky, kx] (see the module docstring)."""
    w = weight.detach().cpu().numpy() if isinstance(weight, torch.Tensor) else np.asarray(weight)
    if w.ndim != 4:
        raise ValueError(f"conv_fan_out: expected a conv weight [C_out, C_in, kh, kw], got shape {w.shape}")
    (H, W), (sh, sw), (ph, pw), (dh, dw) = _pair(in_hw), _pair(stride), _pair(padding), _pair(dilation)
    nz = (w != 0).sum(axis=0).astype(np.float64)                     # [C_in, kh, kw]
    vy = _taps(H, w.shape[2], sh, ph, dh).astype(np.float64)         # [H, kh]
    vx = _taps(W, w.shape[3], sw, pw, dw).astype(np.float64)         # [W, kw]
    return np.einsum("cij,yi,xj->cyx", nz, vy, vx)


def conv_synops(pre, weight, stride=1, padding=0, dilation=1) -> float:
    """Synaptic operations per sample of one conv layer: pre [T, B, C_in, H, W] activity (any non-zero
    entry is an event) times the fan-out of its position (conv_fan_out), summed; mean over samples."""
    p = pre.detach().cpu().numpy() if isinstance(pre, torch.Tensor) else np.asarray(pre)
    if p.ndim != 5:
        raise ValueError(f"conv_synops: expected pre [T, B, C, H, W], got shape {p.shape}")
    if not p.shape[1]:
        return 0.0
    events = (p != 0).sum(axis=0).mean(axis=0)                        # [C_in, H, W] per sample
    fan = conv_fan_out(weight, p.shape[-2:], stride, padding, dilation)
    if fan.shape != events.shape:
        raise ValueError(f"conv_synops: weight has {fan.shape[0]} input channels but pre has {events.shape[0]}")
    return float((events * fan).sum())


def conv_dense_macs(weight_shape, in_hw, T: int, stride=1, padding=0, dilation=1) -> float:
    """Multiply-accumulates per sample of a dense conv over T steps: T x C_out x H_out x W_out x C_in x kh x kw."""
    co, ci, kh, kw = (int(v) for v in weight_shape)
    (H, W), (sh, sw), (ph, pw), (dh, dw) = _pair(in_hw), _pair(stride), _pair(padding), _pair(dilation)
    return float(T * co * conv_out_size(H, kh, sh, ph, dh) * conv_out_size(W, kw, sw, pw, dw) * ci * kh * kw)
