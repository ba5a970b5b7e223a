"""The MPS network (multi-plasticity synergy): fully connected layers with one weight matrix W_k
per plasticity mechanism, mixed per neuron by learned shares, and soft-reset LIF neurons.
Equations: snncore/rules/mps/__init__.py and /work/shared/docs/ALGORITHMS_MPS.md. How each local
mechanism learns (its delta and apply, the network's local_update) is the rule's: here is only
what building and running the network needs. Re-exported at snncore.rules.mps.

    A   = softmax_k(Z / tau_a)     (shares [K, N]; "hard": straight-through one-hot; "fixed": no grad)
    I   = sum_k A_k * (S_in W_k^T) + b  ==  S_in W_eff^T + b,   W_eff = sum_k diag(A_k) W_k
    U[t] = rho (U[t-1] - V_th S[t-1]) + I[t],   S[t] = 1[U[t] >= V_th]
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..neurons import LIFParams
from ..rules.base import LayerTrace

DEFAULT_MECHANISMS = ("bp", "hebb", "sbp")
ASSIGN_MODES = ("soft", "hard", "fixed")
GRANULARITIES = ("neuron", "layer")

# mechanism -> (changed by a local rule, not the gradient?, initial W_k: "uniform" or "zero"); the
# learning of each is snncore.rules.mps.MECHANISMS (checked there to agree with this table)
MECHANISM_LAYOUT: dict[str, tuple[bool, str]] = {
    "bp": (False, "uniform"), "hebb": (True, "zero"), "sbp": (True, "uniform"),
    "stdp": (True, "uniform"), "hetero": (True, "uniform"), "homeo": (True, "uniform"),
}


def check_mechanisms(mechanisms: Sequence[str]) -> tuple[str, ...]:
    mechs = tuple(mechanisms)
    if not mechs:
        raise ValueError("mechanisms: at least one is needed")
    bad = [m for m in mechs if m not in MECHANISM_LAYOUT]
    if bad:
        raise ValueError(f"mechanisms: {bad[0]!r} is not allowed (choose from {', '.join(MECHANISM_LAYOUT)})")
    if len(set(mechs)) != len(mechs):
        raise ValueError(f"mechanisms: duplicates in {list(mechs)}")
    return mechs


def shares(Z: torch.Tensor, tau_a: float = 1.0, mode: str = "soft") -> torch.Tensor:
    """Mechanism shares A = softmax_k(Z / tau_a) over dim 0 of Z [K, N] (columns sum to 1).

    mode "soft": the softmax; "hard": one-hot argmax in the forward pass, softmax gradient in the
    backward pass (straight-through); "fixed": softmax of the detached logits (no gradient to Z).
    Logits set to -inf give a share of exactly 0 (ablations)."""
    if mode not in ASSIGN_MODES:
        raise ValueError(f"assign_mode {mode!r} is not allowed (choose from {', '.join(ASSIGN_MODES)})")
    if tau_a <= 0:
        raise ValueError(f"tau_a must be > 0, got {tau_a}")
    if mode == "fixed":
        Z = Z.detach()
    soft = torch.softmax(Z / tau_a, dim=0)
    if mode == "hard":
        hard = torch.zeros_like(soft).scatter_(0, soft.argmax(dim=0, keepdim=True), 1.0)
        return hard + (soft - soft.detach())
    return soft


class MPSLinear(nn.Module):
    """One MPS layer: W_k per mechanism, bias (STBP's), assignment logits Z, shares A.

    forward(s_in [T,B,N_in]) -> I [T,B,N] = sum_k A_k * (s_in W_k^T) + b (local W_k as constants)."""

    def __init__(self, n_in: int, n_out: int, mechanisms: Sequence[str] = DEFAULT_MECHANISMS,
                 granularity: str = "neuron", assign_mode: str = "soft", tau_a: float = 1.0,
                 bias: bool = True, init_gain: float = 2.0):
        super().__init__()
        self.mechanisms = check_mechanisms(mechanisms)
        if granularity not in GRANULARITIES:
            raise ValueError(f"granularity {granularity!r} is not allowed (choose from {', '.join(GRANULARITIES)})")
        if assign_mode not in ASSIGN_MODES:
            raise ValueError(f"assign_mode {assign_mode!r} is not allowed (choose from {', '.join(ASSIGN_MODES)})")
        if tau_a <= 0:
            raise ValueError(f"tau_a must be > 0, got {tau_a}")
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.granularity, self.assign_mode, self.tau_a = granularity, assign_mode, float(tau_a)
        K = len(self.mechanisms)
        bound = init_gain * math.sqrt(K) / math.sqrt(n_in)
        for m in self.mechanisms:
            w = torch.zeros(n_out, n_in)
            if MECHANISM_LAYOUT[m][1] == "uniform":
                w.uniform_(-bound, bound)
            if MECHANISM_LAYOUT[m][0]:
                self.register_buffer("W_" + m, w)
            else:
                setattr(self, "W_" + m, nn.Parameter(w))
        n_z = n_out if granularity == "neuron" else 1
        self.Z = nn.Parameter(torch.zeros(K, n_z), requires_grad=(assign_mode != "fixed" and K > 1))
        self.register_buffer("mask", torch.ones(K, dtype=torch.bool))
        has_grad_mech = any(not MECHANISM_LAYOUT[m][0] for m in self.mechanisms)
        self.bias = nn.Parameter(torch.zeros(n_out)) if (bias and has_grad_mech) else None
        self.last_A: torch.Tensor | None = None            # [K, N] from the last forward
        self.last_components: torch.Tensor | None = None   # [K, T, B, N] C_k, detached

    def extra_repr(self) -> str:
        return (f"{self.n_in} -> {self.n_out}, mechanisms={list(self.mechanisms)}, "
                f"granularity={self.granularity}, assign_mode={self.assign_mode}, tau_a={self.tau_a}")

    def weight_of(self, mech: str) -> torch.Tensor:
        return getattr(self, "W_" + mech)

    def set_active(self, mechs: Sequence[str]) -> None:
        """Ablation: mask the other mechanisms' logits to -inf; Z frozen when one stays active."""
        mechs = set(mechs)
        unknown = mechs - set(self.mechanisms)
        if unknown or not mechs:
            raise ValueError(f"set_active: {sorted(unknown) or 'nothing'} not among {list(self.mechanisms)}")
        with torch.no_grad():
            self.mask.copy_(torch.tensor([m in mechs for m in self.mechanisms]))
        self.Z.requires_grad_(len(mechs) > 1 and self.assign_mode != "fixed")

    def A(self) -> torch.Tensor:
        """Shares [K, N] (broadcast to N for granularity 'layer')."""
        Z = self.Z
        if not bool(self.mask.all()):
            Z = Z.masked_fill(~self.mask.unsqueeze(1), float("-inf"))
        A = shares(Z, self.tau_a, self.assign_mode)
        return A.expand(-1, self.n_out)

    def _w(self, m: str) -> torch.Tensor:
        W = self.weight_of(m)
        return W.detach() if MECHANISM_LAYOUT[m][0] else W

    def effective_weight(self) -> torch.Tensor:
        """W_eff = sum_k diag(A_k) W_k, [N, N_in] (differentiable in W_bp and Z)."""
        A = self.A()
        return sum(A[k].unsqueeze(1) * self._w(m) for k, m in enumerate(self.mechanisms))

    def forward(self, s_in: torch.Tensor) -> torch.Tensor:
        A = self.A()
        comps = [F.linear(s_in, self._w(m)) for m in self.mechanisms]
        I = sum(A[k] * c for k, c in enumerate(comps))
        if self.bias is not None:
            I = I + self.bias
        self.last_A = A.detach()
        self.last_components = torch.stack([c.detach() for c in comps])
        return I

    def forward_effective(self, s_in: torch.Tensor) -> torch.Tensor:
        """The same current through one matrix W_eff (the invariant the tests check)."""
        return F.linear(s_in, self.effective_weight(), self.bias)

    def contributions(self) -> dict[str, float]:
        """mean |A_k C_k| of the last forward, per mechanism."""
        if self.last_components is None:
            return {}
        c = (self.last_A[:, None, None, :] * self.last_components).abs()
        return {m: float(c[k].mean()) for k, m in enumerate(self.mechanisms)}


# ----------------------------------------------------------------------------- network
class MPSNet(nn.Module):
    """Fully connected MPS network: MPSLinear + multi-step soft-reset LIF per layer.

    forward(x [T,B,N_in] spikes, or [B,N_in] fed as a constant current) -> output spikes [T,B,C];
    keeps ``snapshot[l] = {s_in, s_out, u, grad_I}`` of the last forward (u = pre-reset U)."""

    def __init__(self, sizes: Sequence[int], T: int, rho: float = 0.5, v_th: float = 1.0,
                 a: float = 1.0, mechanisms: Sequence[str] = DEFAULT_MECHANISMS,
                 granularity: str = "neuron", assign_mode: str = "soft", tau_a: float = 1.0,
                 bias: bool = True, init_gain: float = 2.0, loss: str = "mse",
                 seed: int | None = None):
        super().__init__()
        from spikingjelly.activation_based import neuron, surrogate

        sizes = [int(s) for s in sizes]
        if len(sizes) < 2:
            raise ValueError("sizes: need at least [n_in, n_out]")
        if not 0.0 < rho < 1.0:
            raise ValueError(f"rho must be in (0, 1), got {rho}")
        if v_th <= 0 or a <= 0:
            raise ValueError("v_th and a must be > 0")
        if loss not in ("mse", "ce"):
            raise ValueError(f"loss {loss!r} is not allowed (choose from mse, ce)")
        self.sizes, self.T = sizes, int(T)
        self.rho, self.v_th, self.a, self.loss_kind = float(rho), float(v_th), float(a), loss
        self.mechanisms = check_mechanisms(mechanisms)
        self.names = [f"fc{i + 1}" for i in range(len(sizes) - 2)] + ["out"]   # as SpikingMLP
        C = sizes[-1]
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            self.layers = nn.ModuleList(
                MPSLinear(sizes[i], sizes[i + 1], self.mechanisms, granularity, assign_mode,
                          tau_a, bias, init_gain) for i in range(len(sizes) - 1))
            if "sbp" in self.mechanisms:    # fixed random feedback for hidden layers, never trained
                for layer in self.layers[:-1]:
                    layer.register_buffer(
                        "F_sbp", torch.empty(layer.n_out, C).uniform_(-1 / math.sqrt(C), 1 / math.sqrt(C)))
        # U[t] = rho U[t-1] + I[t], soft reset: SpikingJelly's LIF with tau = 1/(1-rho), no input decay
        self.lif_params = LIFParams(tau=1.0 / (1.0 - rho), v_th=v_th, v_reset=None, decay_input=False,
                                    detach_reset=False)
        self.lifs = nn.ModuleList(
            neuron.LIFNode(**self.lif_params.node_kwargs(),
                           surrogate_function=surrogate.PiecewiseLeakyReLU(w=a / 2, c=0.0),
                           step_mode="m", store_v_seq=True)
            for _ in self.layers)
        self.snapshot: list[dict] = []

    @classmethod
    def from_params(cls, sizes: Sequence[int], T: int, p: "MPSParams", **kw) -> "MPSNet":
        return cls(sizes, T, rho=p.rho, v_th=p.v_th, a=p.a, mechanisms=p.mechanisms,
                   granularity=p.granularity, assign_mode=p.assign_mode, tau_a=p.tau_a,
                   loss=p.loss, **kw)

    # --- forward, readout, loss
    def reset(self) -> None:
        for lif in self.lifs:
            lif.reset()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.reset()
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.T, *x.shape)
        elif x.dim() > 3:
            x = x.flatten(2)
        self.snapshot = []
        h = x
        for layer, lif in zip(self.layers, self.lifs):
            I = layer(h)
            snap = {"s_in": h.detach(), "grad_I": None}
            if I.requires_grad:
                I.register_hook(lambda g, snap=snap: snap.__setitem__("grad_I", g.detach()))
            S = lif(I)
            snap["s_out"] = S.detach()
            snap["u"] = (lif.v_seq + self.v_th * S).detach()
            self.snapshot.append(snap)
            h = S
        return h

    @staticmethod
    def readout(out: torch.Tensor) -> torch.Tensor:
        """Mean output rate over T: [T,B,C] -> [B,C]."""
        return out.mean(dim=0)

    def onehot(self, y: torch.Tensor) -> torch.Tensor:
        if y.dim() == 1:
            return F.one_hot(y.long(), self.sizes[-1]).to(self.layers[0].Z.dtype)
        return y

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        r = self.readout(out)
        if self.loss_kind == "ce":
            return F.cross_entropy(r, y.long() if y.dim() == 1 else y)
        return F.mse_loss(r, self.onehot(y).to(r.dtype))

    def param_groups(self, lr: float = 1e-3, lr_z: float = 1e-2) -> list[dict]:
        """Optimizer groups: W_bp and b at lr, Z at lr_z (frozen tensors left out)."""
        z = [l.Z for l in self.layers if l.Z.requires_grad]
        zid = {id(p) for p in z}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in zid]
        groups = []
        if rest:
            groups.append({"params": rest, "lr": lr})
        if z:
            groups.append({"params": z, "lr": lr_z})
        return groups

    def spiking_layers(self) -> list[str]:
        return list(self.names)

    def layer_traces(self) -> dict[str, LayerTrace]:
        """What each layer saw in the last forward (weight: W_bp if present, else W_eff)."""
        out = {}
        for name, layer, snap in zip(self.names, self.layers, self.snapshot):
            w = layer.W_bp if "bp" in layer.mechanisms else layer.effective_weight().detach()
            out[name] = LayerTrace(weight=w, pre=snap["s_in"], post=snap["s_out"], v=snap["u"])
        return out

    def assignment_map(self, layer: int | str) -> np.ndarray:
        idx = self.names.index(layer) if isinstance(layer, str) else int(layer)
        with torch.no_grad():
            return self.layers[idx].A().detach().cpu().numpy().copy()
