"""stdp: pair-based spike-timing-dependent plasticity in trace form.

Sources: Bi & Poo, "Synaptic modifications in cultured hippocampal neurons", J. Neurosci. 1998
(the window: pre-before-post potentiates, post-before-pre depresses, both decaying roughly
exponentially with the spike-time difference); Song, Miller & Abbott, "Competitive Hebbian
learning through STDP", Nat. Neurosci. 2000 (additive rule, eta_minus slightly above eta_plus,
bounded weights); Morrison, Diesmann & Gerstner, "Phenomenological models of synaptic plasticity
based on spike timing", Biol. Cybern. 2008 (the all-to-all trace form used here, and the soft
"multiplicative" bounds).

Symbols (one plastic weight W, shape [N_post, N_pre], synapse i -> j; time in steps t = 0..T-1):
    s_i[t] in {0,1}   spike of presynaptic neuron i at step t       (``pre``,  [T, B, N_pre])
    s_j[t] in {0,1}   spike of postsynaptic neuron j at step t      (``post``, [T, B, N_post])
    x_i[t]            presynaptic trace,  x_i[t] = x_i[t-1] * exp(-1/tau_pre)  + s_i[t],  x_i[-1] = 0
    y_j[t]            postsynaptic trace, y_j[t] = y_j[t-1] * exp(-1/tau_post) + s_j[t],  y_j[-1] = 0
    eta_plus, eta_minus   potentiation / depression amplitudes
    f_plus, f_minus       weight dependence: additive f = 1; multiplicative (soft bounds)
                          f_plus(W) = w_max - W, f_minus(W) = W - w_min

Update, summed over the time window and the batch b:
    dW_ji = eta_plus  * f_plus(W_ji)  * sum_{t,b} s_j[t] x_i[t]      (LTP: post spike reads pre trace)
          - eta_minus * f_minus(W_ji) * sum_{t,b} y_j[t] s_i[t]      (LTD: pre spike reads post trace)

For one pre spike at t_pre and one post spike at t_post (dt = t_post - t_pre) this is the window
    W(dt) = eta_plus * exp(-dt/tau_pre) [dt >= 0]  -  eta_minus * exp(dt/tau_post) [dt <= 0]
(:func:`stdp_window`), the exponential fit of Bi & Poo's data.

How it is computed (PERFORMANCE.md "Plasticity rules"): the traces are one [T, T] decay-matrix
product x = D @ s with D[t, t'] = exp(-(t - t')/tau) for t >= t' (exact, no per-step Python loop;
long windows are done in blocks of ``chunk`` steps with the trace carried across blocks), and each
of the two sums is one matrix product over all M = T*B rows:
    LTP = post[M, N_post]^T @ x[M, N_pre],   LTD = y[M, N_post]^T @ pre[M, N_pre].
Memory is O(weights + activations); no [B, N_post, N_pre] tensor is ever built.

Our readings (ALGORITHMS.md "stdp"):
- The trace includes the current step's spike (x[t] already contains s[t]), as in the equations.
  So a pre and a post spike in the same step count both as LTP and as LTD: the window at dt = 0
  is eta_plus - eta_minus (slight net depression with the defaults).
- Traces start at zero in every batch (the Trainer resets states per batch); nothing carries over.
- dW is the sum over the batch, not the mean (as specified), so its size grows with B.
- When: in ``after_step``, i.e. after ``optimizer.step()``, in place under ``no_grad``, using that
  step's forward spikes; ``.grad`` and the optimizer state are never touched. The rule is "added
  to a gradient-trained layer": ``uses_gradient = True``, the Trainer still trains by gradient.
  A purely unsupervised mode (no backward, STDP only) is left to the Trainer as an option later.
- Weight dependence at the current (post-optimizer) weight. Multiplicative bounds: the result is
  clamped to [w_min, w_max] afterwards (the soft bounds alone overshoot when eta * counts > 1).
  Additive: no clamp unless ``clip_additive`` is set (Song et al.'s hard bounds).
- ``targets``: names of the layers (keys of ``StepContext.layers``) the rule changes; the empty
  default means the first weight layer of the model (the input projection), never the read-out.
- With torch.distributed initialised, dW is summed across ranks before it is added (the batch sum
  becomes the global-batch sum and the replicas stay identical).
- Telemetry per target layer: "dw/<layer>" = Frobenius norm of the last update, "w_mean/<layer>",
  "w_std/<layer>". A coarse weight histogram is available from :meth:`STDP.weight_histogram`;
  :meth:`STDP.arrays` (per snapshot) saves a 40-bin one per target layer and the window.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..base import LayerTrace, Rule, StepContext, param

__all__ = ["traces", "decay_matrix", "stdp_delta", "stdp_window", "STDPParams", "STDP"]

HIST_BINS = 40                     # weight-histogram bins saved with each snapshot (arrays())
WINDOW_DT = np.arange(-20, 21)     # dt = t_post - t_pre (steps) of the saved learning window


# ---------------------------------------------------------------------------------------------
# pure functions
# ---------------------------------------------------------------------------------------------

def _work_dtype(*tensors: torch.Tensor | None) -> torch.dtype:
    """float64 when any input is float64, else float32 (low-precision inputs accumulate in fp32)."""
    for t in tensors:
        if t is not None and t.dtype == torch.float64:
            return torch.float64
    return torch.float32


def decay_matrix(T: int, tau: float, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """D[t, t'] = exp(-(t - t')/tau) for t >= t', else 0; shape [T, T] (lower triangular)."""
    if not tau > 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    idx = torch.arange(T, device=device, dtype=dtype)
    diff = idx[:, None] - idx[None, :]                                    # [T, T], t - t'
    return torch.where(diff >= 0, torch.exp(-diff.clamp(min=0) / tau), torch.zeros((), dtype=dtype, device=device))


def traces(s: torch.Tensor, tau: float, *, chunk: int = 128) -> torch.Tensor:
    """Exponential spike traces x[t] = x[t-1] * exp(-1/tau) + s[t] (x[-1] = 0), time first.

    s: [T, ...] spikes (bool or float). Returns float [T, ...] (float64 if s is, else float32).
    Exact and vectorised: x = D @ s with D the [T, T] decay matrix (:func:`decay_matrix`). For
    T > chunk the window is done in blocks of ``chunk`` steps (cost T*chunk instead of T^2 per
    column), carrying the trace from one block to the next: x_block = D_L @ s_block + g * x_prev,
    g[k] = exp(-(k+1)/tau).
    """
    T = s.shape[0]
    dtype = _work_dtype(s)
    flat = s.reshape(T, -1).to(dtype)                                     # [T, K]
    if T == 0:
        return flat.reshape(s.shape)
    if T <= chunk:
        return (decay_matrix(T, tau, dtype=dtype, device=s.device) @ flat).reshape(s.shape)
    D = decay_matrix(chunk, tau, dtype=dtype, device=s.device)           # [L, L]
    g = torch.exp(-torch.arange(1, chunk + 1, dtype=dtype, device=s.device) / tau)[:, None]  # [L, 1]
    out = torch.empty_like(flat)
    carry = None
    for a in range(0, T, chunk):
        b = min(T, a + chunk)
        L = b - a
        blk = D[:L, :L] @ flat[a:b]
        if carry is not None:
            blk = blk + g[:L] * carry
        out[a:b] = blk
        carry = blk[-1:]
    return out.reshape(s.shape)


def _rows(z: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[T, B, N] -> [T*B, N] in the working dtype."""
    if z.dim() != 3:
        raise ValueError(f"expected spikes shaped [T, B, N], got {tuple(z.shape)}")
    return z.reshape(-1, z.shape[-1]).to(dtype)


def _bound_factors(weight, bounds, w_min, w_max, dtype):
    """(f_plus, f_minus) as scalars (additive) or [N_post, N_pre] tensors (multiplicative)."""
    if bounds == "additive":
        return 1.0, 1.0
    if bounds == "multiplicative":
        if weight is None:
            raise ValueError("bounds='multiplicative' needs the weight (f_plus = w_max - W, f_minus = W - w_min)")
        W = weight.detach().to(dtype)
        if W.dim() != 2:
            W = W.reshape(W.shape[0], -1)
        return (w_max - W), (W - w_min)
    raise ValueError(f"bounds: {bounds!r} is not allowed (choose from additive, multiplicative)")


def _weighted_stdp_sums(pre, post, row_weight, *, tau_pre, tau_post, dtype):
    """(LTP, LTD) = (sum_m c_m s_j x_i, sum_m c_m y_j s_i) over the M = T*B rows, each [N_post, N_pre].

    row_weight: None (all ones) or [T, B] factors folded into the post-side rows, so a per-step or
    per-sample weighting costs nothing extra and no [B, N_post, N_pre] tensor appears.
    """
    if pre.shape[:2] != post.shape[:2]:
        raise ValueError(f"pre {tuple(pre.shape)} and post {tuple(post.shape)} must share [T, B]")
    x = _rows(traces(pre, tau_pre), dtype)                                # [M, N_pre]
    y = _rows(traces(post, tau_post), dtype)                              # [M, N_post]
    s_pre = _rows(pre, dtype)                                             # [M, N_pre]
    s_post = _rows(post, dtype)                                           # [M, N_post]
    if row_weight is not None:
        c = row_weight.to(dtype).reshape(-1, 1)                           # [M, 1]
        s_post = s_post * c
        y = y * c
    ltp = s_post.T @ x                                                    # [N_post, N_pre]
    ltd = y.T @ s_pre                                                     # [N_post, N_pre]
    return ltp, ltd


def stdp_delta(pre: torch.Tensor, post: torch.Tensor, weight: torch.Tensor | None = None, *,
               tau_pre: float = 5.0, tau_post: float = 5.0, eta_plus: float = 1e-3,
               eta_minus: float = 1.05e-3, bounds: str = "additive", w_min: float = -1.0,
               w_max: float = 1.0) -> torch.Tensor:
    """The STDP update dW [N_post, N_pre] for spikes pre [T, B, N_pre], post [T, B, N_post].

    dW = eta_plus f_plus(W) * sum_{t,b} s_j x_i - eta_minus f_minus(W) * sum_{t,b} y_j s_i,
    two matrix products over the T*B rows. ``weight`` is needed only for multiplicative bounds
    (it may also be a 1x1-conv weight [N_post, N_pre, 1, 1]; the result is always 2-D).
    Returned in float64 if any input is float64, else float32; the weight is not changed.
    """
    dtype = _work_dtype(pre, post, weight)
    f_plus, f_minus = _bound_factors(weight, bounds, w_min, w_max, dtype)
    ltp, ltd = _weighted_stdp_sums(pre, post, None, tau_pre=tau_pre, tau_post=tau_post, dtype=dtype)
    return eta_plus * f_plus * ltp - eta_minus * f_minus * ltd


def stdp_window(dt, tau_pre: float = 5.0, tau_post: float = 5.0, eta_plus: float = 1e-3,
                eta_minus: float = 1.05e-3) -> torch.Tensor:
    """Effective learning window dW(dt) of one pre/post spike pair, dt = t_post - t_pre (steps).

    eta_plus exp(-dt/tau_pre) for dt >= 0, minus eta_minus exp(dt/tau_post) for dt <= 0; at
    dt = 0 both terms apply (the traces include the current spike). Accepts a number, a list,
    an array or a tensor; returns a float64 tensor of the same shape (``.numpy()`` for plotting).
    """
    d = torch.as_tensor(dt, dtype=torch.float64)
    ltp = torch.where(d >= 0, eta_plus * torch.exp(-d.clamp(min=0) / tau_pre), torch.zeros_like(d))
    ltd = torch.where(d <= 0, eta_minus * torch.exp(d.clamp(max=0) / tau_post), torch.zeros_like(d))
    return ltp - ltd


# ---------------------------------------------------------------------------------------------
# helpers shared with rstdp
# ---------------------------------------------------------------------------------------------

def _all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum over DDP ranks when torch.distributed is initialised (a no-op otherwise)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def resolve_targets(targets: list[str], layers: dict[str, LayerTrace]) -> list[str]:
    """The target layer names present in ``layers``; [] -> the first weight layer."""
    if not layers:
        return []
    if not targets:
        return [next(iter(layers))]
    missing = [t for t in targets if t not in layers]
    if missing:
        raise ValueError(f"targets: layer {missing[0]!r} not found (layers: {', '.join(layers)})")
    return list(targets)


def apply_delta(weight: torch.nn.Parameter, dW: torch.Tensor, *, clamp: tuple[float, float] | None) -> None:
    """W += dW in place under no_grad (dW [N_post, N_pre] reshaped to the weight's shape)."""
    with torch.no_grad():
        if dW.shape != weight.shape:
            if dW.numel() != weight.numel():
                raise ValueError(f"update {tuple(dW.shape)} does not fit weight {tuple(weight.shape)}")
            dW = dW.reshape(weight.shape)
        weight.add_(dW.to(weight.dtype))
        if clamp is not None:
            weight.clamp_(clamp[0], clamp[1])


def histogram(weight: torch.Tensor, bins: int = 20, range_: tuple[float, float] | None = None):
    """(edges [bins+1], counts [bins]) of a weight tensor, on the CPU, float64 edges / int64 counts."""
    w = weight.detach().to("cpu", torch.float64).flatten()
    w = w[torch.isfinite(w)]          # a diverged weight (the Trainer fails the run) must not crash this
    if range_ is None:
        lo, hi = (float(w.min()), float(w.max())) if w.numel() else (0.0, 1.0)
    else:
        lo, hi = float(range_[0]), float(range_[1])
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    # clamp first: a float32 weight clamped to w_min can sit a rounding error below float64 w_min
    counts = torch.histc(w.clamp(lo, hi), bins=bins, min=lo, max=hi).to(torch.int64)
    edges = torch.linspace(lo, hi, bins + 1, dtype=torch.float64)
    return edges, counts


W_SAVE_MAX = 16384           # 64 KiB of float32 per snapshot at most


def weight_hist_arrays(weights: dict[str, torch.Tensor], range_: tuple[float, float] | None,
                       bins: int = HIST_BINS) -> dict[str, np.ndarray]:
    """{'whist/<layer>': int64 counts [bins], 'wedges/<layer>': float64 edges [bins+1]} per layer.

    range_: fixed [lo, hi] (bounded weights), or None for each weight's observed range.
    A layer of at most W_SAVE_MAX weights also saves the matrix itself, 'w/<layer>' float32
    [post, pre]: the app reads per-channel means off it (pattern vs noise channels, which input
    group each neuron prefers), that a histogram cannot give.
    """
    out: dict[str, np.ndarray] = {}
    for name, w in weights.items():
        edges, counts = histogram(w, bins, range_)
        out[f"whist/{name}"] = counts.numpy().astype(np.int64)
        out[f"wedges/{name}"] = edges.numpy().astype(np.float64)
        if w.dim() == 2 and w.numel() <= W_SAVE_MAX:
            out[f"w/{name}"] = w.detach().float().cpu().numpy().astype(np.float32)
    return out


# ---------------------------------------------------------------------------------------------
# the rule
# ---------------------------------------------------------------------------------------------

def check_weight_bounds(p) -> None:
    """Params cross-check (STDP, R-STDP): w_min < w_max. In __post_init__, so config validation,
    not the run, names the field."""
    if isinstance(p.w_min, (int, float)) and isinstance(p.w_max, (int, float)) and not p.w_min < p.w_max:
        raise ValueError(f"w_min: {p.w_min} must be below w_max ({p.w_max})")


@dataclass
class STDPParams:
    tau_pre: float = param(5.0, lo=1e-3, help="presynaptic trace time constant (steps)")
    tau_post: float = param(5.0, lo=1e-3, help="postsynaptic trace time constant (steps)")
    eta_plus: float = param(1e-3, lo=0.0, hi=1.0, help="potentiation amplitude (pre before post)")
    eta_minus: float = param(1.05e-3, lo=0.0, hi=1.0, help="depression amplitude (post before pre)")
    bounds: str = param("additive", choices=("additive", "multiplicative"),
                        help="weight dependence: additive f=1, or multiplicative soft bounds")
    w_min: float = param(-1.0, help="lower weight bound (soft bound; clamp when multiplicative)")
    w_max: float = param(1.0, help="upper weight bound (soft bound; clamp when multiplicative)")
    clip_additive: bool = param(False, help="also clamp to [w_min, w_max] in additive mode (hard bounds)")
    targets: list[str] = param([], help="layer names to change; empty = the first weight layer")

    def __post_init__(self):
        check_weight_bounds(self)


class STDP(Rule):
    name = "stdp"
    conv_targets = "first"        # on conv models the first weight layer (the conv stem): targets must name Linear ones
    Params = STDPParams
    summary = "Pair-based STDP (exponential traces) added to a gradient-trained layer."
    uses_gradient = True

    def __init__(self, params=None, model=None, *, total_steps=1, device="cpu"):
        super().__init__(params, model, total_steps=total_steps, device=device)
        self._weights: dict[str, torch.Tensor] = {}
        self._stats: dict[str, torch.Tensor] = {}      # on device; read only in telemetry()

    def _kw(self) -> dict:
        p = self.params
        return dict(tau_pre=p.tau_pre, tau_post=p.tau_post, eta_plus=p.eta_plus,
                    eta_minus=p.eta_minus, bounds=p.bounds, w_min=p.w_min, w_max=p.w_max)

    def _clamp(self):
        p = self.params
        return (p.w_min, p.w_max) if (p.bounds == "multiplicative" or p.clip_additive) else None

    def after_step(self, ctx: StepContext) -> None:
        with torch.no_grad():
            for name in resolve_targets(self.params.targets, ctx.layers):
                lt = ctx.layers[name]
                dW = stdp_delta(lt.pre.detach(), lt.post.detach(), lt.weight, **self._kw())
                dW = _all_reduce_sum(dW)
                apply_delta(lt.weight, dW, clamp=self._clamp())
                self._record(name, lt.weight, dW)

    def _record(self, name: str, weight: torch.Tensor, dW: torch.Tensor) -> None:
        self._weights[name] = weight
        w = weight.detach().float()
        self._stats[name] = torch.stack([dW.float().norm(), w.mean(), w.std(unbiased=False)])

    def telemetry(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, s in self._stats.items():
            dw, mean, std = s.tolist()
            out[f"dw/{name}"] = float(dw)
            out[f"w_mean/{name}"] = float(mean)
            out[f"w_std/{name}"] = float(std)
        return out

    def arrays(self) -> dict:
        """For the app, at each snapshot (nothing per step): per target layer the weight histogram
        ``whist/<layer>`` (40 bins, int64) with its ``wedges/<layer>`` (over [w_min, w_max] when the
        weights are clamped there, else their observed range), and the learning window
        ``window_dt`` (dt = t_post - t_pre, -20..20 steps) / ``window_dw`` (dW of one spike pair)."""
        p = self.params
        bounded = p.bounds == "multiplicative" or p.clip_additive
        out = weight_hist_arrays(self._weights, (p.w_min, p.w_max) if bounded else None)
        out["window_dt"] = WINDOW_DT.astype(np.float64)
        out["window_dw"] = stdp_window(WINDOW_DT, p.tau_pre, p.tau_post, p.eta_plus, p.eta_minus).numpy()
        return out

    def weight_histogram(self, layer: str, bins: int = 20):
        """(edges [bins+1], counts [bins]) of a target layer's weight as last updated (CPU tensors).

        Multiplicative bounds: bins span [w_min, w_max]; additive: the weights' own range.
        """
        w = self._weights.get(layer)
        if w is None and self.model is not None:
            mod = dict(self.model.named_modules()).get(layer)
            w = getattr(mod, "weight", None)
        if w is None:
            raise KeyError(f"no weight seen for layer {layer!r} (seen: {', '.join(self._weights) or 'none'})")
        p = self.params
        rng = (p.w_min, p.w_max) if p.bounds == "multiplicative" else None
        return histogram(w, bins, rng)
