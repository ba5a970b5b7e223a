"""Fused whole-sequence LIF kernels (forward and backward) compiled with Numba, for the CPU.

Same equations as :mod:`snncore.models.lif` (SpikingJelly 2.0's multi-step LIFNode)::

    h[t] = v[t-1] + (x[t] - (v[t-1] - v_reset)) / tau        (decay_input=True)
    h[t] = v[t-1] - (v[t-1] - v_reset) / tau + x[t]          (decay_input=False)
    s[t] = h[t] >= v_threshold
    v[t] = v_reset if s[t] else h[t]                          (hard reset; soft: h[t] - s[t] v_threshold)

    gh[t] = gs[t] sg[t] + dv[t] r[t],   dv[T-1] = gv,   dv[t-1] = gh[t] (1 - 1/tau)
    gx[t] = gh[t] / tau (decay_input; gh[t] otherwise),   gv0 = dv[-1]

Why: with torch ops the LIF layer makes about 23 elementwise passes over [T, B, N] (each op reads and
writes the whole block); here each element is read and written once per direction, with the
recurrence over t kept in registers per neuron block. Blocks of neurons run in parallel (prange).

Numba compiles each dtype signature once per machine (``cache=True`` keeps the machine code in
``__pycache__``); :func:`available` is False when Numba is missing or compilation fails, and the
torch-op Function is used instead.
"""
from __future__ import annotations

import math
import os
import threading

import numpy as np
import torch

try:
    import numba
    from numba import njit, prange
except Exception:          # noqa: BLE001 - any import failure means: use the torch-op path
    numba = None

# One kernel at a time per process: Numba's fallback threading layer (workqueue, where no OpenMP or
# TBB runtime is found) aborts the process on concurrent launches from two threads (app sessions)
_LAUNCH = threading.Lock()
BLOCK = 2048               # neurons per parallel work item: 8 KB of fp32 per row, rows stream through cache
_state = {"ok": None}


if numba is not None:
    @njit(cache=True, nogil=True)
    def _scalars(c):
        # the literals as scalars: loads from an array inside a loop that stores to another array
        # stop LLVM from vectorizing it (the arrays might alias)
        return (c[0], c[1], c[2], c[3])

    @njit(cache=True, nogil=True, fastmath=True, inline="always")
    def _surrogates(z, sig, out, n, alpha, sid, c):
        """out[:n] = d spike / d z at z[:n] (sig: sigmoid(alpha z) from torch, for the Sigmoid
        surrogate). One loop per surrogate, so each vectorizes."""
        one = c[1]
        if sid == 0:                                   # Sigmoid: alpha (1 - s) s, s = sigmoid(alpha z)
            for j in range(n):
                out[j] = (one - sig[j]) * sig[j] * alpha
        elif sid == 1:                                 # ATan: (alpha/2) / (1 + (pi/2 alpha z)^2)
            k = c[2]                                   # pi/2 alpha and alpha/2, rounded from double as torch does
            a2 = c[3]
            for j in range(n):
                u = z[j] * k
                out[j] = a2 / (one + u * u)
        else:                                          # PiecewiseQuadratic: max(0, alpha - alpha^2 |z|)
            a2 = alpha * alpha
            for j in range(n):
                out[j] = max(alpha - a2 * abs(z[j]), c[0])

    # Each block of neurons works on small scratch rows of its own: loops that read and write
    # only those (and one row of a big array) vectorize; loops over several big arrays that might
    # alias each other ran scalar (10x slower, measured).

    @njit(cache=True, nogil=True, parallel=True)
    def _forward(x, v0, h, s, vT, a, scaled, alpha, tau, decay_input, thr, hard, r, c):
        T, M = h.shape
        c = _scalars(c)
        one, zero = c[1], c[0]
        tx = x.shape[0]                                # 1: the same input at every step (direct encoding)
        nblk = (M + BLOCK - 1) // BLOCK
        for b in prange(nblk):
            i0 = b * BLOCK
            i1 = min(M, i0 + BLOCK)
            n = i1 - i0
            v = v0[i0:i1].copy()
            hb = np.empty(n, h.dtype)
            for t in range(T):
                xr = x[t if tx > 1 else 0, i0:i1]
                if decay_input:
                    for j in range(n):
                        hb[j] = v[j] + (xr[j] - (v[j] - r)) / tau
                else:
                    for j in range(n):
                        hb[j] = v[j] - (v[j] - r) / tau + xr[j]
                if hard:
                    for j in range(n):
                        v[j] = r if hb[j] >= thr else hb[j]
                else:
                    for j in range(n):
                        v[j] = hb[j] - thr if hb[j] >= thr else hb[j]
                ht = h[t, i0:i1]
                st = s[t, i0:i1]
                for j in range(n):
                    ht[j] = hb[j]
                    st[j] = one if hb[j] >= thr else zero
                if scaled:                             # alpha (h - thr): the Sigmoid surrogate's argument
                    at = a[t, i0:i1]
                    for j in range(n):
                        at[j] = (hb[j] - thr) * alpha
            vT[i0:i1] = v

    @njit(cache=True, nogil=True, fastmath=True, parallel=True)
    def _backward(h, sig, gs, has_gs, gv, gx, gv0, tau, decay_input, thr, hard, r, detach, alpha, sid, c):
        T, M = h.shape
        c = _scalars(c)
        one, zero = c[1], c[0]
        decay = one - one / tau
        gscale = one / tau if decay_input else one
        nblk = (M + BLOCK - 1) // BLOCK
        for b in prange(nblk):
            i0 = b * BLOCK
            i1 = min(M, i0 + BLOCK)
            n = i1 - i0
            dv = gv[i0:i1].copy()                      # dL/dv[t], carried backwards in time
            z = np.empty(n, h.dtype)
            sg = np.empty(n, h.dtype)
            rr = np.empty(n, h.dtype)
            gh = np.empty(n, h.dtype)
            for t in range(T - 1, -1, -1):
                ht = h[t, i0:i1]
                for j in range(n):
                    z[j] = ht[j] - thr
                _surrogates(z, sig[t if sid == 0 else 0, i0:i1], sg, n, alpha, sid, c)
                if hard:                               # r = d v / d h
                    for j in range(n):
                        rr[j] = one if z[j] < zero else zero
                    if not detach:
                        for j in range(n):
                            rr[j] += (r - ht[j]) * sg[j]
                elif detach:
                    rr[:] = one
                else:
                    for j in range(n):
                        rr[j] = one - thr * sg[j]
                for j in range(n):
                    gh[j] = dv[j] * rr[j]
                if has_gs:
                    gt = gs[t if gs.shape[0] > 1 else 0, i0:i1]
                    for j in range(n):
                        gh[j] += gt[j] * sg[j]
                gxt = gx[t, i0:i1]
                for j in range(n):
                    gxt[j] = gh[j] * gscale
                    dv[j] = gh[j] * decay
            gv0[i0:i1] = dv


def _consts(nd, alpha: float = 0.0):
    """Literals for the kernels in the working dtype (a Python float would promote float32 to float64):
    0, 1, and the ATan surrogate's pi/2 alpha and alpha/2."""
    return np.array([0.0, 1.0, math.pi / 2 * alpha, alpha / 2], dtype=nd)


def available() -> bool:
    """True once the kernels are compiled and agree with a direct evaluation on a tiny case."""
    if _state["ok"] is None:
        _state["ok"] = numba is not None and os.environ.get("SNNCORE_FUSED_LIF", "1") != "0" and _selftest()
    return _state["ok"]


def _selftest() -> bool:
    try:
        x = torch.tensor([[2.0], [2.0], [0.0]])       # h = 1, 1, 0 with tau 2: fire, fire, rest
        s, vT, h, _ = forward(x, torch.zeros(1), 2.0, True, 1.0, 0.0)
        return bool(torch.equal(s[:, 0], torch.tensor([1.0, 1.0, 0.0])))
    except Exception:      # noqa: BLE001 - a compile failure on an odd machine: fall back, never crash
        return False


# Below this many values per call the kernels run on one thread. Small layers gain little from a
# second thread, and OpenMP workers that wait by spinning collapse when another process wants the CPU:
# the digits run took 108 s instead of ~5 s beside the app's live page (measured; one thread: 4.7 s
# beside a busy core).
PARALLEL_MIN = 1 << 20


def _threads(values: int) -> None:
    # otherwise the run's thread budget (snncore/threads.py gives it to torch and sizes Numba's pool;
    # its idle workers sleep, OMP_WAIT_POLICY=PASSIVE, instead of spinning beside other processes)
    n = 1 if values < PARALLEL_MIN else min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(max(1, n))


def _np(t: torch.Tensor, dtype) -> np.ndarray:
    return t.detach().to(dtype).contiguous().numpy()


def forward(x: torch.Tensor, v0: torch.Tensor, tau: float, decay_input: bool, v_threshold: float,
            v_reset: float | None, alpha: float | None = None):
    """(spikes [T, ...] in x's dtype, v_T [...], h [T, ...] in v0's dtype, a) for CPU x [T, ...];
    a = alpha (h - v_threshold) (bit for bit torch's) when alpha is given, else None."""
    T = x.shape[0]
    sd = v0.dtype
    nd = np.float64 if sd == torch.float64 else np.float32
    if x.stride(0) == 0:                               # expanded over T: read one row
        xa = _np(x[0].reshape(1, -1), sd)
    else:
        xa = _np(x.reshape(T, -1), sd)
    M = xa.shape[1]
    _threads(T * M)
    h = torch.empty((T, M), dtype=sd)
    s = torch.empty((T, M), dtype=sd)
    vT = torch.empty(M, dtype=sd)
    a = torch.empty((T, M), dtype=sd) if alpha is not None else torch.empty((1, 1), dtype=sd)
    with _LAUNCH:
        _forward(xa, _np(v0.expand(x.shape[1:]).reshape(-1), sd), h.numpy(), s.numpy(), vT.numpy(),
                 a.numpy(), alpha is not None, nd(alpha or 0.0), nd(tau), bool(decay_input), nd(v_threshold),
                 v_reset is not None, nd(0.0 if v_reset is None else v_reset), _consts(nd))
    shape = x.shape
    return s.to(x.dtype).view(shape), vT.view(shape[1:]), h.view(shape), (a.view(shape) if alpha is not None else None)


def backward(h: torch.Tensor, gs: torch.Tensor | None, gv: torch.Tensor | None, tau: float,
             decay_input: bool, v_threshold: float, v_reset: float | None, detach_reset: bool,
             alpha: float, surrogate_id: int, a: torch.Tensor | None = None):
    """(gx [T, ...] in h's dtype, gv0 [...]) for the saved charged potential h (and a from
    :func:`forward`, which spares two passes for the Sigmoid surrogate). gs may be a stride-0 view
    over T (a time-invariant gradient): its one row is read."""
    T = h.shape[0]
    sd = h.dtype
    nd = np.float64 if sd == torch.float64 else np.float32
    ha = h.reshape(T, -1).numpy()
    M = ha.shape[1]
    if gs is None:
        gsa = np.zeros((1, 1), nd)
    elif gs.stride(0) == 0 and T > 1:
        gsa = _np(gs[0].reshape(1, -1), sd)
    else:
        gsa = _np(gs.reshape(T, -1), sd)
    gva = _np(gv.reshape(-1), sd) if gv is not None else np.zeros(M, nd)
    # sigmoid by torch: bit for bit SpikingJelly's (its alpha (1 - s) s cancels where s ~ 1, so
    # any other exp, even a more accurate one, differed from it by more than 1e-6 after T steps)
    if surrogate_id != 0:
        sig = np.zeros((1, 1), nd)
    elif a is not None:
        sig = torch.sigmoid(a).reshape(T, -1).numpy()          # not in place: a backward may run twice
    else:
        sig = torch.sub(h, v_threshold).mul_(alpha).sigmoid_().reshape(T, -1).numpy()
    _threads(T * M)
    gx = torch.empty((T, M), dtype=sd)
    gv0 = torch.empty(M, dtype=sd)
    with _LAUNCH:
        _backward(ha, sig, gsa, gs is not None, gva, gx.numpy(), gv0.numpy(), nd(tau), bool(decay_input),
                  nd(v_threshold), v_reset is not None, nd(0.0 if v_reset is None else v_reset),
                  bool(detach_reset), nd(alpha), int(surrogate_id), _consts(nd, alpha))
    return gx.view(h.shape), gv0.view(h.shape[1:])


def warm_up() -> float:
    """Compile (or load from the cache) the float32 kernels now; seconds taken. ``make`` runs this
    after installing, and the app in the background at start, so a first run does not pay ~10 s of
    compilation inside its first training step."""
    import time
    t0 = time.perf_counter()
    if available():
        x = torch.rand(3, 2, 8) * 2
        s, v, h, a = forward(x, torch.zeros(2, 8), 2.0, True, 1.0, 0.0, 4.0)
        backward(h, torch.ones_like(s), None, 2.0, True, 1.0, 0.0, False, 4.0, 0, a)
    return time.perf_counter() - t0


if __name__ == "__main__":
    took = warm_up()
    print(f"fused LIF kernels {'ready' if available() else 'unavailable (torch-op path will be used)'} "
          f"in {took:.1f} s")
