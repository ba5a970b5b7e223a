"""mps: multi-plasticity synergy with adaptive mechanism assignment.

Source: Liu, Deng, Yu, "Multi-Plasticity Synergy with Adaptive Mechanism Assignment for Training
Spiking Neural Networks", arXiv 2508.13673 (2025). Specification: docs/ALGORITHMS_MPS.md.

**The paper's method section was not available; this is our reading of it.** Known from the paper:
the abstract, one figure caption, and a third-party article quoting the LIF below, a rectangular
surrogate, three mechanisms (STBP, Hebbian, SBP) and ``W^l = sum_k lambda_k W_k^l`` with lambda
"adaptively learned". Every item marked [ours] below is our reading, not the paper's text.

Neuron (multi-step, SpikingJelly ``LIFNode(tau=1/(1-rho), decay_input=False, v_reset=None,
detach_reset=False, surrogate_function=PiecewiseLeakyReLU(w=a/2, c=0))``)::

    U[t] = rho (U[t-1] - V_th S[t-1]) + I[t],   S[t] = 1[U[t] >= V_th]      (soft reset)
    dS/dU = (1/a) 1[|U - V_th| < a/2]                                    (rectangular surrogate)
    U = v_seq + V_th S   (SpikingJelly's v_seq is the value after reset)

Layer [ours]: for mechanisms k (default bp, hebb, sbp) a weight ``W_k [N, N_in]`` each, a bias b
(STBP's only: present only when bp is a mechanism), logits ``Z [K, N]`` (granularity "neuron") or
``Z [K, 1]`` (granularity "layer", the quoted lambda_k)::

    A   = softmax_k(Z / tau_a)          (columns sum to 1; "hard": one-hot argmax forward,
                                          softmax gradient backward; "fixed": Z frozen at 0)
    C_k = S_in W_k^T                    ([T, B, N], all T at once)
    I   = sum_k A_k * C_k + b   ==   S_in W_eff^T + b,   W_eff = sum_k diag(A_k) W_k

Local weights enter the graph as constants. Readout r = mean_t S_out; loss MSE against one-hot
(cross-entropy on r selectable).

Mechanisms, each changing only its own W_k [ours, from the lineage]:

* bp (STBP): BPTT with the surrogate trains W_bp, b and Z (Adam; Z in its own group, lr_z).
* hebb (Wu et al., Nat. Commun. 2022 lineage): hidden ``phi = tanh(U/V_th - theta_H)``, output
  teacher-clamped ``phi = y - 1/C`` at every t;
  ``dW = eta_H/(T B) sum_{t,b} phi[t,b] (x) S_in[t,b]``;
  ``W_hebb <- clip(gamma_H W_hebb + dW, -c_H, c_H)``; W_hebb starts at 0.
* sbp (self-backpropagation, Zhang et al., Sci. Adv. 2021): ``e = y - r``, ``xbar = mean_t S``.
  Output: ``dW^L = eta_S/B sum_b e_b (x) xbar_b^{L-1}``. Hidden, top down:
  ``m_j = mean_i |dW_sbp^{l+1}[i, j]|``, ``mhat = m / (max m + 1e-12)``, ``g = e F_l^T`` with a
  fixed random ``F_l [N_l, C] ~ U(+-1/sqrt C)``, ``dW^l = eta_S/B sum_b (mhat * g_b) (x) xbar_b^{l-1}``;
  ``W_sbp <- clip(W_sbp + dW, -c_S, c_S)``.

All local deltas are computed from the same forward snapshot (top down) before any is applied.
Step order: reset states; forward (S and U kept per layer); loss; backward; optimizer step; local
Hebbian/SBP deltas under no_grad; telemetry. No local updates in eval mode.
Init: each component ~ U(+-g sqrt(K) / sqrt(fan_in)), g = 2, except W_hebb = 0 (spec).

Second reading (section 3b of the spec, mechanisms ``bp,stdp,hetero,homeo``) [ours]:

* stdp: pair-based with traces (ALGORITHMS.md), x[t] = x[t-1] e^{-1/tau} + s_in[t] (likewise y),
  ``dW = A+ sum_{t,b} s_out (x) x - A- sum_{t,b} y (x) s_in`` (summed over the batch),
  A+ 1e-3, A- 1.05e-3, tau 2 steps; W_stdp clipped to +-c_H [ours].
* hetero: each step ``dW_hetero[j, :] = -mean_i dW_stdp[j, i]`` (that step's STDP change, from
  the same snapshot, computed even when stdp itself is not a mechanism); clipped to +-c_H [ours].
* homeo: ``W_homeo[j, :] *= 1 + eta_homeo (r* - r_j)``, r_j the neuron's mean spikes per step,
  r* = 0.1, eta_homeo 1e-2; clipped to +-c_H [ours].

Further readings of ours, named here so they can be checked:
[ours] bias exists only with the bp mechanism; it and Z start at 0 (equal shares).
[ours] STDP/hetero/homeo components start uniform like W_bp/W_sbp (only W_hebb starts at 0).
[ours] telemetry ``dw_<mech>`` is mean |W_after - W_before| of the applied change (for hebb this
       includes the gamma decay and clipping); ``dw_bp`` is the optimizer step's change.
[ours] ``cos_<mech>`` is the cosine between that applied change and the negative STBP gradient the
       component would receive if it were trainable, ``-dL/dW_k = -diag(A_k) sum_{t,b} dL/dI (x)
       S_in`` (dL/dI captured by a hook in the forward); absent when no backward ran.
[ours] a 2-D input [B, N] is fed as a constant current at every one of the T steps.
[ours] cross-entropy (loss="ce") is taken on the mean rates used directly as logits.
Conv layers (one logit per output channel, outer products through unfold) are not implemented yet.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import torch

from ...models.mps_net import (ASSIGN_MODES, DEFAULT_MECHANISMS, GRANULARITIES,  # noqa: F401
                               MECHANISM_LAYOUT, MPSLinear, shares)
from ...models.mps_net import MPSNet as _Net
from ..base import Rule, StepContext, param

__all__ = [
    "shares", "hebbian_delta", "sbp_output_delta", "sbp_hidden_delta", "stdp_delta",
    "hetero_delta", "homeo_delta", "Mechanism", "MECHANISMS", "MPSLinear", "MPSNet",
    "MPSParams", "MPS", "DEFAULT_MECHANISMS",
]



# ----------------------------------------------------------------------------- pure functions
def hebbian_delta(s_in: torch.Tensor, phi: torch.Tensor, eta: float) -> torch.Tensor:
    """dW = eta / (T B) sum_{t,b} phi[t,b] (x) s_in[t,b]; s_in [T,B,N_in], phi [T,B,N] -> [N,N_in]."""
    T, B = s_in.shape[0], s_in.shape[1]
    return (eta / (T * B)) * phi.reshape(T * B, -1).transpose(0, 1) @ s_in.reshape(T * B, -1)


def sbp_output_delta(e: torch.Tensor, xbar_in: torch.Tensor, eta: float) -> torch.Tensor:
    """dW^L = eta / B sum_b e_b (x) xbar_in_b; e [B,C], xbar_in [B,N_in] -> [C,N_in]."""
    return (eta / e.shape[0]) * e.transpose(0, 1) @ xbar_in


def sbp_hidden_delta(dW_above: torch.Tensor, e: torch.Tensor, F_l: torch.Tensor,
                     xbar_in: torch.Tensor, eta: float) -> torch.Tensor:
    """Hidden SBP: m_j = mean_i |dW_above[i,j]|, mhat = m / (max m + 1e-12), g = e F^T,
    dW = eta / B sum_b (mhat * g_b) (x) xbar_in_b.
    dW_above [N_above,N], e [B,C], F_l [N,C], xbar_in [B,N_in] -> [N,N_in]."""
    m = dW_above.abs().mean(dim=0)
    mhat = m / (m.max() + 1e-12)
    g = e @ F_l.transpose(0, 1)                     # [B, N]
    return (eta / e.shape[0]) * (mhat * g).transpose(0, 1) @ xbar_in


def _traces(s: torch.Tensor, tau: float) -> torch.Tensor:
    decay = math.exp(-1.0 / tau)
    out = torch.empty_like(s)
    x = torch.zeros_like(s[0])
    for t in range(s.shape[0]):
        x = x * decay + s[t]
        out[t] = x
    return out


def stdp_delta(s_in: torch.Tensor, s_out: torch.Tensor, a_plus: float = 1e-3,
               a_minus: float = 1.05e-3, tau: float = 2.0) -> torch.Tensor:
    """Pair-based additive STDP with exponential traces, summed over T and the batch.
    s_in [T,B,N_in], s_out [T,B,N] -> [N,N_in]."""
    x = _traces(s_in, tau).flatten(0, 1)
    y = _traces(s_out, tau).flatten(0, 1)
    si, so = s_in.flatten(0, 1), s_out.flatten(0, 1)
    return a_plus * so.transpose(0, 1) @ x - a_minus * y.transpose(0, 1) @ si


def hetero_delta(d_stdp: torch.Tensor) -> torch.Tensor:
    """Heterosynaptic balance: every synapse onto j moves by -mean_i d_stdp[j, i]."""
    return (-d_stdp.mean(dim=1, keepdim=True)).expand_as(d_stdp).clone()


def homeo_delta(W: torch.Tensor, rate: torch.Tensor, eta: float = 1e-2,
                r_target: float = 0.1) -> torch.Tensor:
    """Multiplicative scaling W[j,:] *= 1 + eta (r* - r_j), written as the additive delta."""
    return W * (eta * (r_target - rate)).unsqueeze(1)


def _reduce_delta(mech: str, d: torch.Tensor, layer_deltas: dict) -> torch.Tensor:
    """Several processes (DDP): combine one mechanism's delta over the ranks right after it is
    computed (top down, so the layer below reads the combined one), as one process would over the
    global batch: batch sums (stdp, and hetero made from this rank's own stdp) are summed, batch
    means (hebb, sbp, homeo) averaged; hetero made from the combined stdp is already global.
    The identity with one process."""
    from ... import distributed
    if not distributed.is_distributed():
        return d
    if mech == "hetero" and "stdp" in layer_deltas:
        return d
    d = d.contiguous()
    return distributed.all_reduce_sum_(d) if mech in ("stdp", "hetero") else distributed.all_reduce_mean_(d)


# ----------------------------------------------------------------------------- mechanism registry
class Mechanism:
    """One plasticity mechanism: its own W_k in every MPS layer.

    local=False: trained by the gradient (a Parameter). local=True: a buffer changed only by
    ``delta`` (computed from the forward snapshot, layers visited top down, ``deltas[l]`` already
    holding this step's deltas of layer l's earlier mechanisms and ``deltas[l+1]`` those of the layer
    above) followed by ``apply`` (in place, under no_grad)."""

    name = ""
    local = True
    init = "uniform"          # "uniform" or "zero"
    summary = ""

    def delta(self, net: "MPSNet", l: int, hp: SimpleNamespace,
              deltas: list[dict[str, torch.Tensor]]) -> torch.Tensor:
        raise NotImplementedError

    def apply(self, W: torch.Tensor, dW: torch.Tensor, hp: SimpleNamespace) -> None:
        W.add_(dW)


class _BP(Mechanism):
    name, local, summary = "bp", False, "STBP: surrogate-gradient BPTT (W_bp, b, Z)"


class _Hebb(Mechanism):
    name, init, summary = "hebb", "zero", "Hebbian: tanh(U/V_th - theta) x pre, teacher at output"

    def delta(self, net, l, hp, deltas):
        snap = net.snapshot[l]
        if l == len(net.layers) - 1:
            C = hp.y.shape[1]
            phi = (hp.y - 1.0 / C).unsqueeze(0).expand(snap["s_in"].shape[0], -1, -1)
        else:
            phi = torch.tanh(snap["u"] / net.v_th - hp.theta_h)
        return hebbian_delta(snap["s_in"], phi, hp.eta_h)

    def apply(self, W, dW, hp):
        W.mul_(hp.gamma_h).add_(dW).clamp_(-hp.c_h, hp.c_h)


class _SBP(Mechanism):
    name, summary = "sbp", "Self-backpropagation: output error, top-down by |dW| above"

    def delta(self, net, l, hp, deltas):
        xbar_in = net.snapshot[l]["s_in"].mean(dim=0)
        if l == len(net.layers) - 1:
            return sbp_output_delta(hp.e, xbar_in, hp.eta_s)
        above = deltas[l + 1].get("sbp")
        if above is None:
            raise ValueError("sbp in a hidden layer needs sbp in the layer above")
        return sbp_hidden_delta(above, hp.e, net.layers[l].F_sbp, xbar_in, hp.eta_s)

    def apply(self, W, dW, hp):
        W.add_(dW).clamp_(-hp.c_s, hp.c_s)


class _STDP(Mechanism):
    name, summary = "stdp", "Pair-based STDP with traces"

    def delta(self, net, l, hp, deltas):
        snap = net.snapshot[l]
        return stdp_delta(snap["s_in"], snap["s_out"], hp.a_plus, hp.a_minus, hp.tau_stdp)

    def apply(self, W, dW, hp):
        W.add_(dW).clamp_(-hp.c_h, hp.c_h)


class _Hetero(_STDP):
    name, summary = "hetero", "Heterosynaptic: minus the mean STDP change onto each neuron"

    def delta(self, net, l, hp, deltas):
        d = deltas[l].get("stdp")
        if d is None:
            d = super().delta(net, l, hp, deltas)
        return hetero_delta(d)


class _Homeo(Mechanism):
    name, summary = "homeo", "Homeostatic multiplicative scaling toward a target rate"

    def delta(self, net, l, hp, deltas):
        rate = net.snapshot[l]["s_out"].mean(dim=(0, 1))
        return homeo_delta(net.layers[l].weight_of("homeo"), rate, hp.eta_homeo, hp.r_target)

    def apply(self, W, dW, hp):
        W.add_(dW).clamp_(-hp.c_h, hp.c_h)


MECHANISMS: dict[str, Mechanism] = {m.name: m for m in
                                    (_BP(), _Hebb(), _SBP(), _STDP(), _Hetero(), _Homeo())}
if {m.name: (m.local, m.init) for m in MECHANISMS.values()} != MECHANISM_LAYOUT:
    raise RuntimeError("snncore.rules.mps.MECHANISMS and models.mps_net.MECHANISM_LAYOUT disagree")


# ----------------------------------------------------------------------------- network
# the layer and the network: snncore.models.mps_net (re-exported above)
def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    na, nb = float(a.norm()), float(b.norm())
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float((a * b).sum()) / (na * nb)


@torch.no_grad()
def local_update(net: _Net, y_onehot: torch.Tensor, eta_h: float = 1e-2, gamma_h: float = 0.95,
                 c_h: float = 4.0, theta_h: float = 0.0, eta_s: float = 0.05,
                 c_s: float = 4.0, *, a_plus: float = 1e-3, a_minus: float = 1.05e-3,
                 tau_stdp: float = 2.0, eta_homeo: float = 1e-2,
                 r_target: float = 0.1) -> dict[str, dict[str, dict[str, float]]]:
    """The network's local plasticity: all local deltas from the last forward's snapshot (top
    down), then applied.

    Returns {layer: {mech: {"dw": mean |applied change|, "cos": cosine with -dL/dW_k}}}
    ("cos" only when a backward pass filled dL/dI). Does nothing in eval mode."""
    if not net.training or not net.snapshot:
        return {}
    y = net.onehot(y_onehot).to(net.snapshot[-1]["s_out"].dtype)
    r = net.snapshot[-1]["s_out"].mean(dim=0)
    hp = SimpleNamespace(y=y, e=y - r, eta_h=eta_h, gamma_h=gamma_h, c_h=c_h,
                         theta_h=theta_h, eta_s=eta_s, c_s=c_s, a_plus=a_plus,
                         a_minus=a_minus, tau_stdp=tau_stdp, eta_homeo=eta_homeo,
                         r_target=r_target)
    L = len(net.layers)
    deltas: list[dict[str, torch.Tensor]] = [dict() for _ in range(L)]
    for l in reversed(range(L)):
        for m in net.layers[l].mechanisms:
            if MECHANISMS[m].local:
                d = MECHANISMS[m].delta(net, l, hp, deltas)
                deltas[l][m] = _reduce_delta(m, d, deltas[l])
    net.last_deltas = deltas
    report: dict[str, dict[str, dict[str, float]]] = {}
    for l, (name, layer) in enumerate(zip(net.names, net.layers)):
        snap = net.snapshot[l]
        G = None
        if snap.get("grad_I") is not None:
            gI, s_in = snap["grad_I"], snap["s_in"]
            G = gI.flatten(0, 1).transpose(0, 1) @ s_in.flatten(0, 1)   # dL/dW_eff
        report[name] = {}
        for m, d in deltas[l].items():
            W = layer.weight_of(m)
            before = W.clone()
            MECHANISMS[m].apply(W, d, hp)
            change = W - before
            rec = {"dw": float(change.abs().mean())}
            if G is not None:
                k = layer.mechanisms.index(m)
                rec["cos"] = _cos(change, -(layer.last_A[k].unsqueeze(1) * G))
            report[name][m] = rec
    return report


class MPSNet(_Net):
    """The MPS network (snncore.models.mps_net.MPSNet) with its local plasticity as a method:
    ``net.local_update(y_onehot, ...)`` is :func:`local_update` (the Trainer's model, built by the
    model registry, is the plain network; the rule calls the function)."""

    local_update = local_update


# ----------------------------------------------------------------------------- rule
@dataclass
class MPSParams:
    eta_h: float = param(1e-2, 0.0, 1.0, "Hebbian learning rate eta_H")
    gamma_h: float = param(0.95, 0.0, 1.0, "Hebbian decay gamma_H (W <- gamma W + dW)")
    c_h: float = param(4.0, 0.0, None, "Hebbian clip |W_hebb| <= c_H (also stdp/hetero/homeo)", lo_open=True)
    theta_h: float = param(0.0, None, None, "Hebbian offset theta_H in tanh(U/V_th - theta_H)")
    eta_s: float = param(0.05, 0.0, 1.0, "SBP learning rate eta_S")
    c_s: float = param(4.0, 0.0, None, "SBP clip |W_sbp| <= c_S", lo_open=True)
    tau_a: float = param(1.0, 1e-3, None, "softmax temperature of the shares")
    granularity: str = param("neuron", help="one logit per neuron or per layer",
                             choices=GRANULARITIES)
    assign_mode: str = param("soft", help="soft | hard (straight-through) | fixed (equal shares)",
                             choices=ASSIGN_MODES)
    mechanisms: list = param(list(DEFAULT_MECHANISMS), help="mechanisms (each its own W_k)",
                             choices=tuple(MECHANISMS))
    lr_z: float = param(1e-2, 0.0, None, "learning rate of the assignment logits Z")
    rho: float = param(0.5, 0.0, 0.999, "membrane decay rho", lo_open=True)
    v_th: float = param(1.0, 0.0, None, "threshold V_th", lo_open=True)
    a: float = param(1.0, 0.0, None, "surrogate width a (dS/dU = 1/a on |U-V_th| < a/2)", lo_open=True)
    loss: str = param("mse", help="mse on rates vs one-hot, or ce on rates", choices=("mse", "ce"))
    a_plus: float = param(1e-3, 0.0, 1.0, "stdp/hetero: potentiation A+")
    a_minus: float = param(1.05e-3, 0.0, 1.0, "stdp/hetero: depression A-")
    tau_stdp: float = param(2.0, 1e-3, None, "stdp/hetero: trace time constant (steps)")
    eta_homeo: float = param(1e-2, 0.0, 1.0, "homeo: scaling rate")
    r_target: float = param(0.1, 0.0, 1.0, "homeo: target spikes per step r*")


class MPS(Rule):
    """Multi-plasticity synergy (our reading; see the module docstring)."""

    name = "mps"
    Params = MPSParams
    requires_model = "mps_mlp"
    summary = ("Several plasticity mechanisms (STBP, Hebbian, SBP), each with its own weights, mixed "
               "per neuron by learned shares. The paper's method section was not available; this is "
               "our reading of it.")

    def __init__(self, params=None, model=None, *, total_steps=1, device="cpu"):
        super().__init__(params, model, total_steps=total_steps, device=device)
        if model is not None:
            self._check(model)
            if not any(p.requires_grad for p in model.parameters()):
                self.uses_gradient = False
        self._report: dict = {}
        self._bp_before: dict[str, torch.Tensor] = {}
        self._dw_bp: dict[str, float] = {}

    @staticmethod
    def _check(model) -> "MPSNet":
        if not isinstance(model, _Net):
            raise ValueError(f"rule mps needs model 'mps_mlp' (an MPSNet), got {type(model).__name__}")
        return model

    def _local_kwargs(self) -> dict:
        p = self.params
        return dict(eta_h=p.eta_h, gamma_h=p.gamma_h, c_h=p.c_h, theta_h=p.theta_h, eta_s=p.eta_s,
                    c_s=p.c_s, a_plus=p.a_plus, a_minus=p.a_minus, tau_stdp=p.tau_stdp,
                    eta_homeo=p.eta_homeo, r_target=p.r_target)

    def after_backward(self, ctx: StepContext) -> None:
        model = self._check(ctx.model)
        self.model = model
        self._bp_before = {n: l.W_bp.detach().clone() for n, l in zip(model.names, model.layers)
                           if "bp" in l.mechanisms}

    def after_step(self, ctx: StepContext) -> None:
        model = self._check(ctx.model)
        self.model = model
        self._dw_bp = {}
        for n, l in zip(model.names, model.layers):
            if n in self._bp_before:
                self._dw_bp[n] = float((l.W_bp.detach() - self._bp_before[n]).abs().mean())
        self._bp_before = {}
        if not model.training:
            self._report = {}
            return
        self._report = local_update(model, model.onehot(ctx.y), **self._local_kwargs())

    def telemetry(self) -> dict[str, float]:
        model = self.model
        if not isinstance(model, _Net):
            return {}
        out: dict[str, float] = {}
        with torch.no_grad():
            for l, (name, layer) in enumerate(zip(model.names, model.layers)):
                A = layer.A()
                for k, m in enumerate(layer.mechanisms):
                    out[f"share_{m}/{name}"] = float(A[k].mean())
                for m, v in layer.contributions().items():
                    out[f"contrib_{m}/{name}"] = v
                if name in self._dw_bp:
                    out[f"dw_bp/{name}"] = self._dw_bp[name]
                for m, rec in self._report.get(name, {}).items():
                    out[f"dw_{m}/{name}"] = rec["dw"]
                    if "cos" in rec:
                        out[f"cos_{m}/{name}"] = rec["cos"]
                if l < len(model.snapshot):
                    s = model.snapshot[l]["s_out"]
                    out[f"silent/{name}"] = float((s.sum(dim=(0, 1)) == 0).float().mean())
        return out

    def arrays(self) -> dict:
        """For the app, at each snapshot: ``assign/<layer>`` = the shares A [K, N] (float32; rows in
        the order of ``mechanisms``, a fixed-width unicode array, so the .npz loads without pickle);
        from the last forward, sample 0, up to 4 evenly spaced neurons (indices ``curr_ids/<layer>``):
        the component currents ``curr/<layer>`` = A_k C_k [K, T, n], the bias ``curr_b/<layer>`` [n],
        the membrane U ``curr_u/<layer>`` [T, n] and spikes ``curr_s/<layer>`` [T, n] (bool)."""
        model = self.model
        if not isinstance(model, _Net):
            return {}
        out = {"mechanisms": np.array(list(model.mechanisms), dtype="U8")}
        for i, name in enumerate(model.names):
            out[f"assign/{name}"] = model.assignment_map(name).astype(np.float32)
            layer = model.layers[i]
            if layer.last_components is None or layer.last_A is None or i >= len(model.snapshot):
                continue
            C, snap = layer.last_components, model.snapshot[i]             # [K, T, B, N]
            n = C.shape[-1]
            idx = torch.linspace(0, n - 1, min(4, n), device=C.device).round().long()
            host = lambda t: t.detach().to("cpu", torch.float32).numpy()  # noqa: E731
            out[f"curr/{name}"] = host(layer.last_A[:, None, idx] * C[:, :, 0].index_select(-1, idx))
            out[f"curr_b/{name}"] = host(layer.bias[idx]) if layer.bias is not None else np.zeros(idx.numel(), np.float32)
            out[f"curr_u/{name}"] = host(snap["u"][:, 0].index_select(-1, idx))
            out[f"curr_s/{name}"] = host(snap["s_out"][:, 0].index_select(-1, idx)) > 0
            out[f"curr_ids/{name}"] = idx.to("cpu", torch.int32).numpy()
        return out

    def assignment_map(self, layer: int | str) -> np.ndarray:
        """Shares [K, N] of one layer (rows in the order of the model's mechanisms)."""
        return self._check(self.model).assignment_map(layer)
