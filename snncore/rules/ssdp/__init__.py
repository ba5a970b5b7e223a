"""ssdp: spike-synchrony-dependent plasticity (a local update added after each optimizer step).

Source: Tian et al., "Learning with Spike Synchrony in Spiking Neural Networks", arXiv 2505.14841,
and the authors' public code (GitHub NeuroSyd/SSDP: ``SSD-ViT/models/spikingresformer.py``
``SSDPModule``, ``SSDP_DH_SNN/train_ssdp.py``). The paper body was not available; the equations are
the code's, checked against the abstract (specification: docs/ALGORITHMS_SSDP.md).

Symbols, for one plastic weight W of shape [N_post, N_pre] (a Linear, or a 1x1 conv seen as one):

    pre  in {0,1}^[T, B, N_pre]   spikes entering W (float or bool)
    post in {0,1}^[T, B, N_post]  spikes of the neurons W drives; for a non-spiking read-out
                                  post[t] = (logit[t] > 0) (the model's LayerTrace provides this)
    a[b, n]   = any_t s[t, b, n]                  fired at least once in the window, [B, N]
    tau[b, n] = first spike time in 0..T-1, or the sentinel T when silent
    dt[b,j,i] = |tau_post[b, j] - tau_pre[b, i]|  (time steps)
    G[b,j,i]  = exp(-dt^2 / (2 sigma^2))          Gaussian synchrony kernel
    C[b,j,i]  = a_post[b, j] * a_pre[b, i]        co-firing in the window

    P_b = A_plus * C_b * G_b - A_base * (1 - C_b) * G_b        (per sample)
    dW  = clip( mean_b g_b P_b , -1, +1 ),   W <- W + dW        (in place, under no_grad)

with g_b = 1 for SSDP (DA-SSDP, in :mod:`snncore.rules.da_ssdp`, supplies a per-sample gate).
The rule is symmetric in time (|dt|, unlike STDP) and uses binary "fired", not spike counts.
Every pair that did not co-fire is depressed by A_base * G ("baseline decay"), silent pairs
included (two silent neurons have dt = 0 and get the full -A_base). Synchrony of a sample, as
DA-SSDP uses it and as telemetry reports it: S_b = mean_{j,i} C[b,j,i] = mean(a_post_b) mean(a_pre_b).

Linear-memory form (what :func:`ssdp_delta` computes; [B, N_post, N_pre] is never built): the
latencies are integers 0..T, so with one-hot codes O_post[b,j,u], O_pre[b,i,v] and the table
K[u,v] = exp(-(u-v)^2 / (2 sigma^2)) of size (T+1) x (T+1),

    sum_b g_b P_b = (A_plus + A_base) sum_b g_b (a_post O_post)_b K (a_pre O_pre)_b^T
                    - A_base sum_b g_b O_post,b K O_pre,b^T

i.e. einsums 'b,bju,uv,biv->ji'. Because a neuron fired exactly when its latency is below T, both
terms fold into one (T+1)^2 table M (see :func:`_delta_from_codes`), restricted to the latencies that
occur in the batch, and the whole sum is one matrix product with memory O(B (N_pre + N_post)(T+1)).
:func:`ssdp_delta_dense` is the materialised reference used by the tests.

Timing [code]: every training step after ``optimizer.step()``, from that step's forward spikes (no
extra forward), never touching ``.grad`` or optimizer state. Defaults [code]: A_plus = 1e-4,
A_base = 5e-5, sigma = 1 step. Short CPU runs see no effect at 1e-4; lesson presets may raise
A_plus to 1e-3..1e-2.

Our readings ([ours] in the specification):
- latency: the paper says "first-spike latencies"; the ViT/DA code takes the *last* spike (argmax of
  a cumsum). Default ``latency = "first"``; ``"last"`` reproduces the code.
- depress_silent: default True as in the code (silent pairs are depressed); False gives pairs where
  both neurons are silent no update, so a window without spikes gives dW = 0.
- targets: the code adapts the classifier and the last hidden projection ("deeper layers" in the
  paper); ours is a list of layer names, default [] = the last two weight layers of the model.
- start_step: the code starts at epoch 10 of 600; default 0 here for short runs.
- schedule: the code anneals the amplitudes per epoch on the classifier; we offer "cosine"
  (A(step) = A * (1 + cos(pi * p)) / 2 with p the fraction of the steps from start_step to the end
  of the run, applied to every target), default "constant". The amplitudes are constants of the
  rule, not trainable parameters.
- 1x1 conv: space is reduced per channel with any() over (H, W) at each t [code]; a weight whose
  element count is N_post * N_pre (e.g. [C_out, C_in, 1, 1]) receives dW reshaped.
- several processes (DDP): dW is all-reduced (mean) across ranks before it is added, so replicas
  never drift (the authors' code does not do this).
- telemetry "dw_ratio/<layer>" = mean|dW| / mean|optimizer step on W| measured from a copy of W
  taken in after_backward; an optimizer step of exactly zero is clamped to 1e-12 (a huge ratio
  reads "the rule dominates").
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..base import Rule, StepContext, check_params, param

__all__ = [
    "SSDP", "SSDPParams", "ssdp_delta", "ssdp_delta_dense", "synchrony", "first_spike_latency",
    "last_spike_latency", "spike_latency", "fired", "gaussian_kernel",
]

LATENCIES = ("first", "last")
LAT_SAMPLES, LAT_NEURONS = 32, 256   # latency subsample saved by arrays(): samples x neurons
RASTER_NEURONS = 64                  # neurons per side in the one-sample raster saved by arrays()


# --------------------------------------------------------------------------- pure functions
def _as_bool(s: torch.Tensor) -> torch.Tensor:
    """Spikes [T, B, N] (or [T, B, C, H, W] from a 1x1 conv: any() over space) as bool [T, B, N]."""
    if s.dim() < 3:
        raise ValueError(f"spikes must be [T, B, N] (time first), got shape {tuple(s.shape)}")
    s = s.detach()
    b = s if s.dtype == torch.bool else (s != 0)
    if b.dim() > 3:
        b = b.flatten(3).any(-1)
    return b


def _work_dtype(*ts: torch.Tensor) -> torch.dtype:
    dt = None
    for t in ts:
        if t.is_floating_point():
            dt = t.dtype if dt is None else torch.promote_types(dt, t.dtype)
    return dt if dt is not None else torch.get_default_dtype()


def fired(s: torch.Tensor) -> torch.Tensor:
    """a[b, n] = any_t s[t, b, n] as bool [B, N]."""
    return _as_bool(s).any(0)


def first_spike_latency(s: torch.Tensor) -> torch.Tensor:
    """Index of the first spike in 0..T-1 per (b, n), or T when silent; int64 [B, N]."""
    b = _as_bool(s)
    T = b.shape[0]
    # max over t of b*(T - t) is T - first (0 when silent); a float amax is ~8x faster on CPU than
    # an int64 amin over a where(); exact for T < 2^24
    w = (T - torch.arange(T, device=b.device, dtype=torch.float32)).view(T, *([1] * (b.dim() - 1)))
    return (T - (b * w).amax(0)).long()


def last_spike_latency(s: torch.Tensor) -> torch.Tensor:
    """Index of the last spike in 0..T-1 per (b, n), or T when silent (the authors' ViT/DA code)."""
    b = _as_bool(s)
    T = b.shape[0]
    w = torch.arange(1, T + 1, device=b.device, dtype=torch.float32).view(T, *([1] * (b.dim() - 1)))
    last1 = (b * w).amax(0).long()                        # last + 1, or 0 when silent
    return torch.where(last1 == 0, T, last1 - 1)


def spike_latency(s: torch.Tensor, latency: str = "first") -> torch.Tensor:
    if latency == "first":
        return first_spike_latency(s)
    if latency == "last":
        return last_spike_latency(s)
    raise ValueError(f"latency: {latency!r} is not allowed (choose from first, last)")


def gaussian_kernel(T: int, sigma: float = 1.0, *, dtype=None, device=None) -> torch.Tensor:
    """K[u, v] = exp(-(u - v)^2 / (2 sigma^2)) for latencies u, v in 0..T (T = silent); (T+1)^2."""
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    u = torch.arange(T + 1, dtype=torch.float64, device=device)
    d2 = (u[:, None] - u[None, :]) ** 2
    k = torch.exp(-d2 / (2.0 * float(sigma) ** 2))
    return k.to(dtype or torch.get_default_dtype())


def synchrony(pre: torch.Tensor, post: torch.Tensor) -> torch.Tensor:
    """S_b = mean_{j,i} a_post[b,j] a_pre[b,i] = mean_j a_post[b,j] * mean_i a_pre[b,i]; [B]."""
    dt = _work_dtype(pre, post)
    return fired(post).to(dt).mean(-1) * fired(pre).to(dt).mean(-1)


def _codes(s: torch.Tensor, latency: str):
    """(a bool [B, N], tau int64 [B, N]) of one spike tensor."""
    b = _as_bool(s)
    return b.any(0), spike_latency(b, latency)


def _delta_from_codes(a_pre, tau_pre, a_post, tau_post, T, *, a_plus, a_base, sigma,
                      depress_silent, gate, dtype) -> torch.Tensor:
    """clip(mean_b g_b P_b, -1, 1) from fired flags and latencies, in linear memory.

    A neuron fired in the window exactly when its latency is below the sentinel T, so both terms of
    P fold into one table M[u, v] = (A+ + A_base) [u<T][v<T] K[u, v] - A_base K[u, v] (and
    M[T, T] = 0 when silent pairs are spared): sum_b g_b P_b[j, i] = sum_b g_b M[tau_post, tau_pre].
    Only latencies that occur in this batch are kept (L <= T + 1 of them), the neurons of the larger
    side are one-hot codes and the smaller side gathers rows of M, and one matrix product with
    inner size B * L sums over samples.
    """
    B = a_pre.shape[0]
    if a_post.shape[0] != B:
        raise ValueError(f"pre and post disagree on the batch size ({B} vs {a_post.shape[0]})")
    U = T + 1
    dev = a_pre.device
    K = gaussian_kernel(T, sigma, dtype=dtype, device=dev)
    on = torch.arange(U, device=dev) < T
    M = (a_plus + a_base) * K * (on[:, None] & on[None, :]) - a_base * K
    if not depress_silent:
        M[T, T] = 0.0
    if gate is None:
        g = None
    else:
        g = torch.as_tensor(gate, dtype=dtype, device=dev).reshape(-1)
        if g.numel() == 1:
            g = g.expand(B)
        if g.numel() != B:
            raise ValueError(f"gate must have one value per sample ({B}), got {g.numel()}")
    # keep only the latencies present (first spikes bunch early: often L << T + 1)
    present = torch.zeros(U, dtype=torch.bool, device=dev)
    present[tau_pre.reshape(-1)] = True
    present[tau_post.reshape(-1)] = True
    lat = present.nonzero().squeeze(1)
    L = lat.numel()
    remap = torch.cumsum(present.long(), 0) - 1
    Mc = M[lat][:, lat]                                   # [L, L]
    ip, iq = remap[tau_pre].T, remap[tau_post].T          # [Npre, B], [Npost, B]
    Npre, Npost = ip.shape[0], iq.shape[0]
    gv = g.view(1, B, 1) if g is not None else None
    if Npost >= Npre:        # one-hot on post (larger), rows of M gathered for pre
        X = torch.zeros(Npost, B, L, dtype=dtype, device=dev)
        X.scatter_(2, iq[..., None], gv.expand(Npost, B, 1) if gv is not None else 1.0)
        Y = Mc.T[ip]                                      # Y[i, b, u] = M[u, tau_pre[b, i]]
    else:                    # one-hot on pre, rows of M gathered for post
        X = Mc[iq]                                        # X[j, b, v] = M[tau_post[b, j], v]
        if gv is not None:
            X = X * gv
        Y = torch.zeros(Npre, B, L, dtype=dtype, device=dev)
        Y.scatter_(2, ip[..., None], 1.0)
    d = X.reshape(Npost, -1) @ Y.reshape(Npre, -1).T
    return (d / B).clamp_(-1.0, 1.0)


def _check_shapes(pre, post):
    if pre.shape[:2] != post.shape[:2]:
        raise ValueError(f"pre {tuple(pre.shape)} and post {tuple(post.shape)} must share [T, B]")


def ssdp_delta(pre: torch.Tensor, post: torch.Tensor, *, a_plus: float, a_base: float,
               sigma: float = 1.0, latency: str = "first", depress_silent: bool = True,
               gate: torch.Tensor | None = None) -> torch.Tensor:
    """dW = clip(mean_b g_b P_b, -1, 1), [N_post, N_pre], in linear memory (see the module doc).

    pre [T, B, N_pre], post [T, B, N_post]: float or bool 0/1 spikes. gate: [B] or None (= ones).
    """
    _check_shapes(pre, post)
    dtype = _work_dtype(pre, post)
    a_pre, tau_pre = _codes(pre, latency)
    a_post, tau_post = _codes(post, latency)
    return _delta_from_codes(a_pre, tau_pre, a_post, tau_post, pre.shape[0], a_plus=a_plus,
                             a_base=a_base, sigma=sigma, depress_silent=depress_silent,
                             gate=gate, dtype=dtype)


def ssdp_delta_dense(pre: torch.Tensor, post: torch.Tensor, *, a_plus: float, a_base: float,
                     sigma: float = 1.0, latency: str = "first", depress_silent: bool = True,
                     gate: torch.Tensor | None = None) -> torch.Tensor:
    """Reference form that materialises [B, N_post, N_pre] (tests only; same result)."""
    _check_shapes(pre, post)
    dtype = _work_dtype(pre, post)
    T, B = pre.shape[:2]
    a_pre, tau_pre = _codes(pre, latency)
    a_post, tau_post = _codes(post, latency)
    dt = (tau_post[:, :, None] - tau_pre[:, None, :]).abs().to(dtype)
    G = torch.exp(-dt ** 2 / (2.0 * float(sigma) ** 2))
    C = (a_post[:, :, None] & a_pre[:, None, :]).to(dtype)
    P = a_plus * C * G - a_base * (1.0 - C) * G
    if not depress_silent:
        both_silent = (~a_post)[:, :, None] & (~a_pre)[:, None, :]
        P = torch.where(both_silent, torch.zeros((), dtype=dtype), P)
    g = torch.ones(B, dtype=dtype) if gate is None else torch.as_tensor(gate, dtype=dtype).reshape(-1).expand(B)
    return (g.to(P.device).view(B, 1, 1) * P).mean(0).clamp(-1.0, 1.0)


# --------------------------------------------------------------------------- helpers for rules
def dist_world_size() -> int:
    d = torch.distributed
    if d.is_available() and d.is_initialized():
        return d.get_world_size()
    return 1


def all_reduce_mean_(t: torch.Tensor) -> torch.Tensor:
    """Mean of ``t`` across DDP ranks, in place (no-op with one process)."""
    n = dist_world_size()
    if n > 1:
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.SUM)
        t.div_(n)
    return t


def resolve_targets(requested: list[str], layers: dict) -> list[str]:
    """The plastic layers: the names asked for (checked), or the last two weight layers."""
    available = list(layers)
    if not available:
        raise ValueError("this model reports no weight layers (ctx.layers is empty); "
                         "SSDP needs at least one")
    if not requested:
        return available[-2:]
    unknown = [n for n in requested if n not in layers]
    if unknown:
        raise ValueError(f"targets: unknown layer {unknown[0]!r} (available layers: "
                         f"{', '.join(available)})")
    return list(dict.fromkeys(requested))


@dataclass
class SSDPParams:
    a_plus: float = param(1e-4, 0.0, 1.0, "potentiation amplitude A_plus for co-firing pairs "
                          "(code default 1e-4; lessons on short CPU runs may use 1e-3..1e-2)")
    a_base: float = param(5e-5, 0.0, 1.0, "baseline depression A_base for pairs that did not co-fire")
    sigma: float = param(1.0, 0.0, 1e6, "width of the Gaussian synchrony kernel, in time steps",
                         lo_open=True)
    latency: str = param("first", help="spike time used for dt: first spike (paper) or last spike "
                         "(the authors' ViT code)", choices=LATENCIES)
    depress_silent: bool = param(True, help="depress pairs where both neurons stayed silent "
                                 "(code: yes; no = such pairs get no update)")
    start_step: int = param(0, 0, None, "first optimizer step at which the rule acts")
    targets: list = param([], help="plastic layer names; empty = the last two weight layers")
    schedule: str = param("constant", help="amplitude schedule over the run",
                          choices=("constant", "cosine"))


class SSDP(Rule):
    """Synchrony-dependent plasticity added after every optimizer step (see the module docstring)."""

    name = "ssdp"
    conv_targets = "last two"     # on conv models, by default: the last two Linear layers
    Params = SSDPParams
    summary = ("SSDP: after each optimizer step, strengthen synapses whose pre and post neurons "
               "fired close in time (Gaussian in first-spike latency), decay the others.")

    def __init__(self, params=None, model=None, *, total_steps: int = 1, device="cpu"):
        super().__init__(params, model, total_steps=total_steps, device=device)
        errors = check_params(self.params)
        if errors:
            raise ValueError("; ".join(errors))
        self._targets: list[str] | None = None
        self._prev: dict[str, torch.Tensor] = {}     # weight copies taken in after_backward
        self._prev_step: int | None = None
        self._tel_keys: list[str] = []
        self._tel_vals: list[torch.Tensor] = []
        self._tel_host: dict[str, float] = {}
        self._tel_cache: dict[str, float] | None = None
        self._lat: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}   # last batch's latencies
        self._T: int | None = None
        self._spk: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}   # last batch's pre/post spikes

    # ----------------------------------------------------------------- pieces subclasses change
    def _active(self, ctx: StepContext) -> bool:
        """Whether the rule changes the weights at this step."""
        return ctx.step >= int(getattr(self.params, "start_step", 0))

    def _amplitudes(self, ctx: StepContext) -> tuple[float, float]:
        p = self.params
        if getattr(p, "schedule", "constant") != "cosine":
            return float(p.a_plus), float(p.a_base)
        start = int(getattr(p, "start_step", 0))
        total = max(1, int(ctx.total_steps or self.total_steps))
        frac = min(1.0, max(0.0, (ctx.step - start) / max(1, total - start)))
        f = 0.5 * (1.0 + math.cos(math.pi * frac))
        return float(p.a_plus) * f, float(p.a_base) * f

    def _observe(self, li: int, name: str, sync: torch.Tensor, ctx: StepContext) -> None:
        """Sees each target's per-sample synchrony every step (DA-SSDP records it in warm-up)."""

    def _gate(self, li: int, name: str, sync: torch.Tensor) -> torch.Tensor | None:
        return None

    def _begin_step(self, ctx: StepContext) -> None:
        pass

    def _end_step(self, ctx: StepContext) -> None:
        pass

    # ----------------------------------------------------------------- hooks
    def targets(self, ctx: StepContext) -> list[str]:
        if self._targets is None or any(n not in ctx.layers for n in self._targets):
            self._targets = resolve_targets(list(self.params.targets), ctx.layers)
        return self._targets

    def after_backward(self, ctx: StepContext) -> None:
        """Copy each target weight before the optimizer step (for dw_ratio): one memcpy each."""
        if not self._will_act(ctx):
            return
        with torch.no_grad():
            for name in self.targets(ctx):
                w = ctx.layers[name].weight
                buf = self._prev.get(name)
                if buf is None or buf.shape != w.shape or buf.dtype != w.dtype or buf.device != w.device:
                    buf = self._prev[name] = torch.empty_like(w, memory_format=torch.contiguous_format)
                buf.copy_(w.detach())
        self._prev_step = ctx.step

    def _will_act(self, ctx: StepContext) -> bool:
        return self._active(ctx)

    def _tel(self, key: str, value: torch.Tensor) -> None:
        self._tel_keys.append(key)
        self._tel_vals.append(value.detach().reshape(()).float())

    def after_step(self, ctx: StepContext) -> None:
        names = self.targets(ctx)
        self._tel_keys, self._tel_vals, self._tel_host, self._tel_cache = [], [], {}, None
        p = self.params
        with torch.no_grad():
            self._begin_step(ctx)
            active = self._active(ctx)
            a_plus, a_base = self._amplitudes(ctx)
            for li, name in enumerate(names):
                tr = ctx.layers[name]
                pre, post = _as_bool(tr.pre), _as_bool(tr.post)
                _check_shapes(pre, post)
                T = pre.shape[0]
                dtype = _work_dtype(tr.pre, tr.post)
                a_pre, tau_pre = pre.any(0), spike_latency(pre, p.latency)
                a_post, tau_post = post.any(0), spike_latency(post, p.latency)
                self._lat[name] = (tau_pre, tau_post)   # references only; copied in arrays()
                self._spk[name] = (pre, post)           # references only; sample 0 copied in arrays()
                self._T = T
                fa_pre, fa_post = a_pre.to(dtype), a_post.to(dtype)
                sync = fa_post.mean(-1) * fa_pre.mean(-1)              # [B]
                self._observe(li, name, sync, ctx)
                self._tel(f"sync/{name}", sync.mean())
                self._tel(f"silent/{name}", (~a_post.any(0)).float().mean())
                self._tel(f"rate/{name}", post.float().mean())
                if not active:
                    self._tel_host[f"dw/{name}"] = 0.0
                    continue
                gate = self._gate(li, name, sync)
                dW = _delta_from_codes(a_pre, tau_pre, a_post, tau_post, T, a_plus=a_plus,
                                       a_base=a_base, sigma=p.sigma,
                                       depress_silent=p.depress_silent, gate=gate, dtype=dtype)
                all_reduce_mean_(dW)
                w = tr.weight
                if dW.numel() != w.numel():
                    raise ValueError(f"layer {name!r}: weight {tuple(w.shape)} does not match "
                                     f"post x pre = {tuple(dW.shape)}")
                dWv = dW.reshape(w.shape).to(w.dtype)
                dw_abs = dW.abs().mean()
                prev = self._prev.get(name)
                if self._prev_step == ctx.step and prev is not None:
                    opt_abs = (w.detach() - prev).abs().float().mean()
                    self._tel(f"dw_ratio/{name}", dw_abs.float() / opt_abs.clamp_min(1e-12))
                w.add_(dWv)
                self._tel(f"dw/{name}", dw_abs)
                self._tel(f"potentiated/{name}", (dW > 0).float().mean())
                self._tel(f"depressed/{name}", (dW < 0).float().mean())
            self._end_step(ctx)

    def telemetry(self) -> dict[str, float]:
        if self._tel_cache is None:
            out = dict(self._tel_host)
            if self._tel_vals:
                vals = torch.stack([v.to(self._tel_vals[0].device) for v in self._tel_vals]).tolist()
                out.update(zip(self._tel_keys, vals))
            self._tel_cache = out
        return dict(self._tel_cache)

    def arrays(self) -> dict:
        """For the app, at each snapshot (nothing per step): the kernel ``kernel_dt`` = 0..T (the
        last batch's T; T is the silent sentinel) and ``kernel_g`` = G(dt); per target layer the
        last batch's spike latencies (``latency`` = first or last; T = silent) of the pre and post
        neurons, ``lat_pre/<layer>`` / ``lat_post/<layer>`` (int32 [samples, neurons], at most
        32 samples x 256 evenly spaced neurons), and ``lat_T`` (that T, 0-d int64); the first sample's
        spikes ``raster_pre/<layer>`` / ``raster_post/<layer>`` (bool [neurons, T], at most 64 evenly
        spaced neurons, their indices in ``raster_pre_ids/<layer>`` / ``raster_post_ids/<layer>``)."""
        sigma = float(self.params.sigma)
        T = self._T if self._T is not None else max(8, int(math.ceil(4 * sigma)))
        dt = np.arange(T + 1, dtype=np.float64)
        out = {"kernel_dt": dt, "kernel_g": np.exp(-dt ** 2 / (2.0 * sigma ** 2))}
        for name, (tp, tq) in self._lat.items():
            out[f"lat_pre/{name}"] = _latency_sample(tp)
            out[f"lat_post/{name}"] = _latency_sample(tq)
        if self._lat:
            out["lat_T"] = np.array(T, dtype=np.int64)
        for name, (sp, sq) in self._spk.items():   # one sample's raster, for the first-spike markers
            for side, s in (("pre", sp), ("post", sq)):
                idx = _even(s.shape[-1], RASTER_NEURONS, s.device)
                out[f"raster_{side}/{name}"] = s[:, 0].index_select(-1, idx).T.to("cpu").numpy().astype(bool)
                out[f"raster_{side}_ids/{name}"] = idx.to("cpu", torch.int32).numpy()
        return out

    def state_dict(self) -> dict:
        return {"targets": list(self._targets) if self._targets is not None else None}

    def load_state_dict(self, state: dict) -> None:
        t = (state or {}).get("targets")
        self._targets = list(t) if t is not None else None


def _even(n: int, k: int, device) -> torch.Tensor:
    """At most k evenly spaced indices of 0..n-1 (all of them when n <= k)."""
    if n <= k:
        return torch.arange(n, device=device)
    return torch.linspace(0, n - 1, k, device=device).round().long()


def _latency_sample(tau: torch.Tensor) -> np.ndarray:
    """At most LAT_SAMPLES x LAT_NEURONS (evenly spaced neurons) of latencies [B, N], int32 numpy."""
    t = tau.detach()[:LAT_SAMPLES]
    n = t.shape[-1]
    if n > LAT_NEURONS:
        t = t[:, torch.linspace(0, n - 1, LAT_NEURONS, device=t.device).round().long()]
    return t.to("cpu", torch.int32).numpy()
