"""da_ssdp: SSDP gated by a dopamine-like factor fitted once to the synchrony-loss correlation.

Source: Tian et al., "Synchrony-Gated Plasticity with Dopamine Modulation for Spiking Neural
Networks", arXiv 2512.07194, and the authors' public code (GitHub NeuroSyd/DA-SSDP:
``SSDP-V5/model/models/spikingresformer.py`` ``AdaptiveSSDPModule``, ``SSDP-V5/model/train.py``).
The paper body was not available; the equations are the code's, checked against the abstract
(specification: docs/ALGORITHMS_SSDP.md). The SSDP part (P_b, the kernel, latencies, timing,
targets) is :mod:`snncore.rules.ssdp`; its docstring defines the symbols.

Per plastic layer and sample b:

    S_b = mean_{j,i} a_post[b,j] a_pre[b,i]        batch synchrony (latencies do not enter S)

1. Warm-up (the rule leaves the weights untouched): record S_b of every sample and the batch's
   training loss L (the loss used for backward) for each sample.
2. Fit, once at the end of the warm-up (then frozen):
       mu = mean(S),  sd = std(S) + 1e-8  (population std),
       k  = -mean( (S - mu)/sd * (L - mean L)/(std L + 1e-8) )   = minus Pearson's r, k in [-1, 1].
3. Gate ("dopamine" factor) per sample:  g_b = clip(1 + k (S_b - mu) / sd, 0, 2).
4. After every later optimizer step:  dW = clip( mean_b g_b P_b, -1, 1 ),  W <- W + dW,
   with P_b = A_plus C_b G_b - A_base (1 - C_b) G_b as in SSDP.
k = 0 (synchrony unrelated to the loss, or constant synchrony) gives g = 1: plain two-factor SSDP.
Defaults [code]: A_plus = 1.5e-3, A_base = 5e-4, sigma = 1 step, gate clip [0, 2].

Our readings ([ours] in the specification):
- warm-up length: the code warms up 100 of 600 epochs; ours is ``warmup_frac`` (1/6) of the
  planned optimizer steps (``ctx.total_steps``, rounded), or ``warmup_steps`` when > 0. A warm-up of
  zero steps fits on an empty record, which gives k = 0, mu = 0, sd = 1 (g = 1, plain SSDP).
- per-sample loss: the code uses the batch's mean loss for every sample of the batch; we do the
  same unless the trainer passes ``ctx.extras["per_sample_loss"]`` ([B]), which is then used.
- the record stays on the device and is bounded by ``max_record`` samples: with the warm-up's
  expected sample count known from the first batch, every ``stride``-th sample is kept (a uniform
  subsample over the whole warm-up), so there is no host sync per step.
- the fit happens at the end of the last warm-up step (so that step's telemetry shows k, mu, sd),
  or at the first later step if the warm-up end was skipped (e.g. a resume).
- gate_mode "batch": one gate per batch, from the batch mean of S (the code's alternative).
- latency "first" by default (the paper); "last" reproduces the authors' ViT/DA code.
- k, mu, sd (and the warm-up record while it is still open) are saved by ``state_dict`` (the
  authors' code loses them on resume).
- several processes (DDP): k is fitted on the record gathered from every rank, and dW is
  all-reduced (mean) before it is added, so replicas never drift (the authors' code does not).
- telemetry "corr/<layer>" during warm-up is the running Pearson r(S, L) over every warm-up sample
  (not only the subsample), kept as on-device running sums.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..base import StepContext, param
from ..ssdp import SSDP, LATENCIES, dist_world_size, all_reduce_mean_  # noqa: F401

__all__ = ["DASSDP", "DASSDPParams", "fit_gate", "dopamine_gate"]

WARM_KEEP = 2000     # most warm-up (S, L) points saved by arrays() for the S-vs-L scatter


def fit_gate(sync: torch.Tensor, loss: torch.Tensor, eps: float = 1e-8):
    """(k, mu, sd) from paired records of synchrony S and loss L (1-D, equal length).

    mu = mean S, sd = std S + eps (population), k = -mean(zS * zL) = minus Pearson's r(S, L).
    Returned as 0-d tensors of sync's floating dtype (computed in float64).
    """
    s = torch.as_tensor(sync).detach()
    l = torch.as_tensor(loss).detach()
    if s.dim() != 1 or l.dim() != 1 or s.numel() != l.numel():
        raise ValueError(f"fit_gate needs 1-D sync and loss of equal length, got "
                         f"{tuple(s.shape)} and {tuple(l.shape)}")
    if s.numel() == 0:
        raise ValueError("fit_gate needs at least one (sync, loss) pair")
    out_dtype = s.dtype if s.is_floating_point() else torch.get_default_dtype()
    s64, l64 = s.to(torch.float64), l.to(s.device, torch.float64)
    mu = s64.mean()
    sd = s64.std(unbiased=False) + eps
    zl = (l64 - l64.mean()) / (l64.std(unbiased=False) + eps)
    k = (-((s64 - mu) / sd * zl).mean()).clamp(-1.0, 1.0)
    return k.to(out_dtype), mu.to(out_dtype), sd.to(out_dtype)


def dopamine_gate(sync: torch.Tensor, k, mu, sd) -> torch.Tensor:
    """g_b = clip(1 + k (S_b - mu) / sd, 0, 2), same shape as sync."""
    return (1.0 + k * (sync - mu) / sd).clamp(0.0, 2.0)


@dataclass
class DASSDPParams:
    a_plus: float = param(1.5e-3, 0.0, 1.0, "potentiation amplitude A_plus (code default 1.5e-3)")
    a_base: float = param(5e-4, 0.0, 1.0, "baseline depression A_base (code default 5e-4)")
    sigma: float = param(1.0, 0.0, 1e6, "width of the Gaussian synchrony kernel, in time steps",
                         lo_open=True)
    latency: str = param("first", help="spike time used for dt: first spike (paper) or last spike "
                         "(the authors' code)", choices=LATENCIES)
    depress_silent: bool = param(True, help="depress pairs where both neurons stayed silent")
    warmup_frac: float = param(1 / 6, 0.0, 1.0, "share of the planned steps spent recording "
                               "synchrony and loss before the gate is fitted")
    warmup_steps: int = param(0, 0, None, "warm-up length in optimizer steps (0: use warmup_frac)")
    gate_mode: str = param("per_sample", help="one gate per sample, or one per batch from the "
                           "batch mean synchrony", choices=("per_sample", "batch"))
    targets: list = param([], help="plastic layer names; empty = the last two weight layers")
    max_record: int = param(65536, 1, None, "most (synchrony, loss) samples kept for the fit "
                            "(uniform subsample of the warm-up)")


class DASSDP(SSDP):
    """SSDP with a loss-correlated gate fitted after a warm-up (see the module docstring)."""

    name = "da_ssdp"
    Params = DASSDPParams
    summary = ("DA-SSDP: record synchrony vs loss during a warm-up, fit a dopamine-like gate "
               "once, then apply SSDP scaled per sample by that gate.")

    def __init__(self, params=None, model=None, *, total_steps: int = 1, device="cpu"):
        super().__init__(params, model, total_steps=total_steps, device=device)
        self._fitted = False
        self._k: torch.Tensor | None = None     # [n_layers], frozen after the fit
        self._mu: torch.Tensor | None = None
        self._sd: torch.Tensor | None = None
        self._fit_n = 0
        self._warm_keep: tuple[torch.Tensor, torch.Tensor] | None = None   # record subsample at the fit
        self._last_gate: dict[str, torch.Tensor] = {}
        self._reset_record()

    def _reset_record(self):
        self._rec_S: torch.Tensor | None = None   # [n_layers, max_record]
        self._rec_L: torch.Tensor | None = None   # [max_record]
        self._mom: torch.Tensor | None = None     # [n_layers, 6] float64: n, sS, sL, sSS, sLL, sSL
        self._rec_n = 0                           # samples stored
        self._seen = 0                            # warm-up samples seen
        self._stride: int | None = None
        self._slot = None                         # this step's (offset, stride, m, start)
        self._loss_b: torch.Tensor | None = None

    # ----------------------------------------------------------------- phase logic
    def warmup_len(self, total_steps: int | None = None) -> int:
        p = self.params
        if int(p.warmup_steps) > 0:
            return int(p.warmup_steps)
        total = int(total_steps) if total_steps else self.total_steps
        return int(round(float(p.warmup_frac) * max(1, total)))

    @property
    def fitted(self) -> bool:
        return self._fitted

    def _active(self, ctx: StepContext) -> bool:
        return self._fitted

    def _will_act(self, ctx: StepContext) -> bool:
        return self._fitted or ctx.step >= self.warmup_len(ctx.total_steps)

    def _begin_step(self, ctx: StepContext) -> None:
        W = self.warmup_len(ctx.total_steps)
        if not self._fitted and ctx.step >= W:
            self._fit()
        self._tel_host["phase"] = 1.0 if self._fitted else 0.0
        self._tel_host["warmup_progress"] = 1.0 if (self._fitted or W <= 0) else min(1.0, (ctx.step + 1) / W)
        if self._fitted:
            return
        names = self.targets(ctx)
        first = ctx.layers[names[0]].pre
        B = int(first.shape[1])
        dev = first.device
        psl = ctx.extras.get("per_sample_loss") if ctx.extras else None
        if psl is not None:
            lb = torch.as_tensor(psl).detach().reshape(-1).float().to(dev)
            if lb.numel() != B:
                raise ValueError(f"extras['per_sample_loss'] has {lb.numel()} values for a batch of {B}")
        else:
            lb = ctx.loss.detach().reshape(()).float().to(dev).expand(B)
        self._loss_b = lb
        cap = int(self.params.max_record)
        if self._rec_S is None or self._rec_S.shape[0] != len(names) or self._rec_S.device != dev:
            self._rec_S = torch.zeros(len(names), cap, device=dev)
            self._rec_L = torch.zeros(cap, device=dev)
            self._mom = torch.zeros(len(names), 6, dtype=torch.float64, device=dev)
        if self._stride is None:
            self._stride = max(1, math.ceil(max(1, W) * B / cap))
        stride = self._stride
        offset = (-self._seen) % stride
        m = min(len(range(offset, B, stride)), cap - self._rec_n)
        self._slot = (offset, stride, m, self._rec_n)
        if m > 0:
            self._rec_L[self._rec_n:self._rec_n + m] = lb[offset::stride][:m]

    def _observe(self, li: int, name: str, sync: torch.Tensor, ctx: StepContext) -> None:
        if self._fitted:
            return
        offset, stride, m, start = self._slot
        s = sync.detach().float()
        if m > 0:
            self._rec_S[li, start:start + m] = s[offset::stride][:m]
        s64, l64 = s.double(), self._loss_b.double()
        mom = self._mom[li]
        mom[0] += s64.numel()
        mom[1:] += torch.stack([s64.sum(), l64.sum(), (s64 * s64).sum(), (l64 * l64).sum(),
                                (s64 * l64).sum()])
        n, sS, sL, sSS, sLL, sSL = mom.unbind()
        num = n * sSL - sS * sL
        den = (n * sSS - sS * sS).clamp_min(0) * (n * sLL - sL * sL).clamp_min(0)
        r = torch.where(den > 0, num / den.clamp_min(1e-300).sqrt(), torch.zeros_like(num))
        self._tel(f"corr/{name}", r.clamp(-1.0, 1.0))

    def _end_step(self, ctx: StepContext) -> None:
        if self._fitted:
            return
        offset, stride, m, start = self._slot
        self._rec_n = start + m
        self._seen += int(ctx.layers[self.targets(ctx)[0]].pre.shape[1])
        self._slot, self._loss_b = None, None
        if ctx.step >= self.warmup_len(ctx.total_steps) - 1:
            self._fit()
            self._tel_host["phase"] = 1.0
            self._tel_host["warmup_progress"] = 1.0
            for li, name in enumerate(self._targets):
                self._tel(f"k/{name}", self._k[li])
                self._tel(f"mu/{name}", self._mu[li])
                self._tel(f"sd/{name}", self._sd[li])

    def _fit(self) -> None:
        """Fit k, mu, sd per layer on the (gathered) record, once; then free the record."""
        names = self._targets or []
        n_layers = len(names) if names else (self._rec_S.shape[0] if self._rec_S is not None else 0)
        dev = self._rec_S.device if self._rec_S is not None else self.device
        S = self._rec_S[:, :self._rec_n] if self._rec_S is not None else torch.zeros(n_layers, 0, device=dev)
        L = self._rec_L[:self._rec_n] if self._rec_L is not None else torch.zeros(0, device=dev)
        S, L = _gather_record(S, L)
        ks, mus, sds = [], [], []
        for li in range(n_layers):
            if L.numel() == 0:
                k, mu, sd = (torch.zeros((), device=dev), torch.zeros((), device=dev),
                             torch.ones((), device=dev))
            else:
                k, mu, sd = fit_gate(S[li].float(), L.float())
            ks.append(k.float()); mus.append(mu.float()); sds.append(sd.float())
        empty = torch.zeros(0, device=dev)
        self._k = torch.stack(ks) if ks else empty
        self._mu = torch.stack(mus) if mus else empty
        self._sd = torch.stack(sds) if sds else empty.clone()
        self._fit_n = int(L.numel())
        self._fitted = True
        if L.numel():   # a small subsample of the record stays for the app's scatter (device copy)
            S_k, L_k = _subsample(S, L, WARM_KEEP)
            self._warm_keep = (S_k.float().clone(), L_k.float().clone())
        self._reset_record()

    def _gate(self, li: int, name: str, sync: torch.Tensor) -> torch.Tensor:
        k, mu, sd = (t[li].to(sync.device) for t in (self._k, self._mu, self._sd))
        if self.params.gate_mode == "batch":
            g = dopamine_gate(sync.mean(), k, mu, sd).expand_as(sync)
        else:
            g = dopamine_gate(sync, k, mu, sd)
        self._tel(f"k/{name}", k)
        self._tel(f"mu/{name}", mu)
        self._tel(f"sd/{name}", sd)
        self._tel(f"gate_mean/{name}", g.mean())
        self._tel(f"gate_clipped/{name}", ((g <= 0) | (g >= 2)).float().mean())
        self._last_gate[name] = g
        return g

    def arrays(self) -> dict:
        """SSDP's arrays (kernel, latencies) plus, for the S-vs-L scatter, up to 2000 warm-up
        samples ``warm_S/<layer>`` (float32) with their loss ``warm_L`` (the running record during
        the warm-up, the record kept at the fit afterwards; absent after a resume past the fit),
        ``warmup`` (0-d: warm-up progress 0..1), and once fitted ``fit/<layer>`` = [k, mu, sd]
        (float64) and the last batch's gate values ``gate/<layer>`` (float32 [B])."""
        out = super().arrays()
        names = list(self._targets or [])
        rec = None
        if not self._fitted and self._rec_S is not None and self._rec_n > 0:
            rec = _subsample(self._rec_S[:, :self._rec_n], self._rec_L[:self._rec_n], WARM_KEEP)
        elif self._warm_keep is not None:
            rec = self._warm_keep
        if rec is not None and names and rec[0].shape[0] == len(names):
            S = rec[0].detach().to("cpu", torch.float32).numpy()
            out["warm_L"] = rec[1].detach().to("cpu", torch.float32).numpy()
            for li, n in enumerate(names):
                out[f"warm_S/{n}"] = S[li].copy()
        out["warmup"] = np.array(float(self._tel_host.get("warmup_progress", 1.0 if self._fitted else 0.0)))
        if self._fitted and names and self._k is not None and self._k.numel() == len(names):
            kms = torch.stack([self._k, self._mu, self._sd]).detach().to("cpu", torch.float64).numpy()
            for li, n in enumerate(names):
                out[f"fit/{n}"] = kms[:, li].copy()
            for n, g in self._last_gate.items():
                out[f"gate/{n}"] = g.detach().to("cpu", torch.float32).numpy().reshape(-1)
        return out

    def gate_params(self) -> dict[str, tuple[float, float, float]] | None:
        """{layer: (k, mu, sd)} once fitted (one host sync; for the app, not the training loop)."""
        if not self._fitted or self._targets is None:
            return None
        vals = torch.stack([self._k, self._mu, self._sd]).cpu().tolist()
        return {n: (vals[0][i], vals[1][i], vals[2][i]) for i, n in enumerate(self._targets)}

    # ----------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        st = super().state_dict()
        st["fitted"] = self._fitted
        st["fit_n"] = self._fit_n
        if self._fitted:
            st.update(k=self._k.detach().cpu().clone(), mu=self._mu.detach().cpu().clone(),
                      sd=self._sd.detach().cpu().clone())
        elif self._rec_S is not None:   # an open warm-up: keep what was recorded
            st["record"] = {"S": self._rec_S[:, :self._rec_n].cpu().clone(),
                            "L": self._rec_L[:self._rec_n].cpu().clone(),
                            "mom": self._mom.cpu().clone(), "seen": self._seen,
                            "stride": self._stride}
        return st

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        state = state or {}
        self._reset_record()
        self._fitted = bool(state.get("fitted", False))
        self._fit_n = int(state.get("fit_n", 0))
        if self._fitted:
            self._k = torch.as_tensor(state["k"]).float().to(self.device)
            self._mu = torch.as_tensor(state["mu"]).float().to(self.device)
            self._sd = torch.as_tensor(state["sd"]).float().to(self.device)
        else:
            self._k = self._mu = self._sd = None
            rec = state.get("record")
            if rec is not None:
                cap = int(self.params.max_record)
                S, L = rec["S"], rec["L"]
                n = min(int(L.numel()), cap)
                self._rec_S = torch.zeros(S.shape[0], cap, device=self.device)
                self._rec_L = torch.zeros(cap, device=self.device)
                self._rec_S[:, :n] = S[:, :n].to(self.device)
                self._rec_L[:n] = L[:n].to(self.device)
                self._mom = rec["mom"].to(self.device, torch.float64)
                self._rec_n, self._seen, self._stride = n, int(rec["seen"]), rec["stride"]


def _gather_record(S: torch.Tensor, L: torch.Tensor):
    """Concatenate every DDP rank's record (S [n_layers, n], L [n]); identity with one process."""
    world = dist_world_size()
    if world == 1:
        return S, L
    d = torch.distributed
    n = torch.tensor([L.numel()], device=L.device, dtype=torch.long)
    ns = [torch.zeros_like(n) for _ in range(world)]
    d.all_gather(ns, n)
    sizes = [int(x) for x in ns]
    m = max(sizes)
    Sp = torch.zeros(S.shape[0], m, device=S.device, dtype=S.dtype)
    Lp = torch.zeros(m, device=L.device, dtype=L.dtype)
    Sp[:, :S.shape[1]] = S
    Lp[:L.numel()] = L
    Ss = [torch.zeros_like(Sp) for _ in range(world)]
    Ls = [torch.zeros_like(Lp) for _ in range(world)]
    d.all_gather(Ss, Sp)
    d.all_gather(Ls, Lp)
    return (torch.cat([s[:, :z] for s, z in zip(Ss, sizes)], 1),
            torch.cat([l[:z] for l, z in zip(Ls, sizes)]))


def _subsample(S: torch.Tensor, L: torch.Tensor, keep: int):
    """Every ceil(n/keep)-th column of S [n_layers, n] and entry of L [n]: at most keep of each."""
    stride = max(1, math.ceil(int(L.numel()) / keep))
    return S[:, ::stride][:, :keep], L[::stride][:keep]
