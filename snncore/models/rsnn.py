"""The recurrent spiking network of IP2 (IP^2-RSNN): a DH-SNN with per-neuron intrinsic
properties and a leaky linear read-out. Equations: snncore/rules/ip2/__init__.py (section 1 of
/work/shared/docs/ALGORITHMS_IP2.md); the rule's pure one-step functions dh_step / readout_step
stay there and use spike_fn from here.

    d[t] = beta d[t-1] + (1 - beta) I[t],   I[t] = x[t] W_in^T + s[t-1] W_rec^T + b
    u[t] = alpha u[t-1] + (1 - alpha) sum_k d[t] - theta s[t-1]
    s[t] = H(u[t] - theta)   (surrogate: SpikingJelly ATan, alpha = 2)
    y[t] = kappa y[t-1] + (1 - kappa)(s[t] W_out^T + b_out)
    beta = exp(-dt/tau_d), alpha = exp(-dt/tau_s), kappa = exp(-dt/tau_out)
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
from spikingjelly.activation_based import surrogate

from ..neurons import TwoCompartmentParams, TwoCompartmentState, two_compartment_step

PROPS: tuple[str, ...] = ("tau_d", "tau_s", "theta")
TAU_MIN, TAU_MAX = 5.0, 2000.0
THETA_MIN, THETA_MAX = 0.05, 2.0

_SPIKE = surrogate.ATan(alpha=2.0)   # heaviside forward, arctan surrogate backward


def spike_fn(v: torch.Tensor) -> torch.Tensor:
    """s = H(v) (H(0) = 1) with SpikingJelly's ATan(alpha=2) surrogate gradient."""
    return _SPIKE(v)


def normalize_mask(mask) -> list[str]:
    """A mask as the ordered list of learnable property names. Accepts names, "none", "tau_d+theta",
    or a 0/1 triple over (tau_d, tau_s, theta)."""
    if mask is None:
        return []
    if isinstance(mask, str):
        mask = [] if mask in ("", "none") else mask.replace(",", "+").split("+")
    mask = list(mask)
    if len(mask) == 3 and all(isinstance(v, (bool, int, float)) and not isinstance(v, str) for v in mask):
        return [p for p, v in zip(PROPS, mask) if v]
    bad = [m for m in mask if m not in PROPS]
    if bad:
        raise ValueError(f"unknown intrinsic property {bad[0]!r} (choose from {', '.join(PROPS)})")
    return [p for p in PROPS if p in mask]


def mask_key(mask) -> str:
    m = normalize_mask(mask)
    return "+".join(m) if m else "none"


class RSNN(nn.Module):
    """Recurrent DH-SNN (section 1) with a linear leaky read-out; loops over T inside.

    forward(x [T,B,D], state=None, record=False) -> (y [T,B,O], rec) where rec["u"] is [T,B,N]
    (always, for the homeostatic term), rec["state"] the final state dict (d, u, s, y), and with
    record=True also rec["s"] and rec["d"] ([T,B,N], d summed over branches).
    """

    def __init__(self, D: int, N: int, O: int, *, K: int = 1, dt: float = 100.0, tau_out: float = 100.0,
                 neuron: str = "dh", mask=("tau_d",), seed: int = 0):
        super().__init__()
        if neuron not in ("dh", "point"):
            raise ValueError(f"neuron must be 'dh' or 'point', got {neuron!r}")
        self.D, self.N, self.O, self.K = D, N, O, int(K)
        self.dt, self.tau_out, self.neuron = float(dt), float(tau_out), neuron
        g = torch.Generator().manual_seed(int(seed))
        NK = N * self.K
        self.W_in = nn.Parameter(torch.randn(NK, D, generator=g) / math.sqrt(D))
        self.W_rec = nn.Parameter(torch.randn(NK, N, generator=g) * math.sqrt(0.25 / N))
        self.b = nn.Parameter(torch.zeros(NK))
        self.W_out = nn.Parameter(torch.zeros(O, N))
        self.b_out = nn.Parameter(torch.zeros(O))
        tau_d = 50.0 + 250.0 * torch.rand(N, self.K, generator=g)
        tau_s = 20.0 + 80.0 * torch.rand(N, generator=g)
        self.rho_d = nn.Parameter(tau_d.log())
        self.rho_s = nn.Parameter(tau_s.log())
        self.theta = nn.Parameter(torch.full((N,), 0.5))
        if self.K > 1:   # each branch of each neuron sees a fixed random 1/K of the D+N inputs
            bm = torch.zeros(N, self.K, D + N)
            for n in range(N):
                group = torch.randperm(D + N, generator=g) % self.K
                bm[n] = (group[None, :] == torch.arange(self.K)[:, None]).float()
            self.register_buffer("branch_mask", bm.reshape(NK, D + N))
        else:
            self.branch_mask = None
        self.mask: list[str] = []
        self.set_mask(mask)

    # -- intrinsic properties
    @property
    def tau_d(self) -> torch.Tensor:
        return self.rho_d.exp()

    @property
    def tau_s(self) -> torch.Tensor:
        return self.rho_s.exp()

    def prop_param(self, name: str) -> nn.Parameter:
        return {"tau_d": self.rho_d, "tau_s": self.rho_s, "theta": self.theta}[name]

    def weights(self) -> list[nn.Parameter]:
        return [self.W_in, self.W_rec, self.b, self.W_out, self.b_out]

    def set_mask(self, mask) -> None:
        """Learnable property types: requires_grad True for those, False (frozen) for the rest."""
        self.mask = normalize_mask(mask)
        for p in PROPS:
            self.prop_param(p).requires_grad_(p in self.mask)

    @torch.no_grad()
    def clamp_(self) -> None:
        """Clamp the learnable properties only: tau in [5, 2000] ms, theta in [0.05, 2]."""
        lo, hi = math.log(TAU_MIN), math.log(TAU_MAX)
        if "tau_d" in self.mask:
            self.rho_d.clamp_(lo, hi)
        if "tau_s" in self.mask:
            self.rho_s.clamp_(lo, hi)
        if "theta" in self.mask:
            self.theta.clamp_(THETA_MIN, THETA_MAX)

    def zero_state(self, B: int) -> dict:
        z = self.W_in.new_zeros
        d = z(B, self.N, self.K) if self.K > 1 else z(B, self.N)
        return {"d": d, "u": z(B, self.N), "s": z(B, self.N), "y": z(B, self.O)}

    def forward(self, x: torch.Tensor, state: dict | None = None, record: bool = False):
        T, B, _ = x.shape
        N, K = self.N, self.K
        st = self.zero_state(B) if state is None else state
        d, u, s, y = st["d"], st["u"], st["s"], st["y"]
        W_in, W_rec = self.W_in, self.W_rec
        if self.branch_mask is not None:
            W_in = W_in * self.branch_mask[:, :self.D]
            W_rec = W_rec * self.branch_mask[:, self.D:]
        xin = torch.addmm(self.b, x.reshape(T * B, -1), W_in.T).view(T, B, -1)   # [T,B,NK], all steps
        point = self.neuron == "point"
        # the neuron itself is snncore.neurons.two_compartment_step (one home for neuron dynamics)
        p = TwoCompartmentParams(None if point else self.tau_d, self.tau_s, self.theta, self.dt)
        dec = p.decays()                                                # once per sequence (carry grads)
        ns = TwoCompartmentState(d, u, s)
        W_recT = W_rec.T
        us, ss, ds = [], [], []
        for t in range(T):
            I = torch.addmm(xin[t], ns.s, W_recT)                       # x W_in^T + s[t-1] W_rec^T + b
            if K > 1:
                I = I.view(B, N, K)
            s, ns = two_compartment_step(I, ns, p, spike_fn, dec)
            us.append(ns.u)
            ss.append(s)
            if record:
                ds.append(ns.d.sum(-1) if K > 1 else ns.d)
        d, u = ns.d, ns.u
        s_all = torch.stack(ss)                                         # [T,B,N]
        # read-out: the linear recurrence y[t] = kappa y[t-1] + (1-kappa) z[t] as one matmul
        z = torch.addmm(self.b_out, s_all.reshape(T * B, N), self.W_out.T).view(T, B, self.O)
        kappa = math.exp(-self.dt / self.tau_out)
        tt = torch.arange(T, dtype=z.dtype, device=z.device)
        lag = tt[:, None] - tt[None, :]
        Lk = (1 - kappa) * kappa ** lag.clamp(min=0) * (lag >= 0)   # [T,T] lower triangular
        ys = torch.einsum("ts,sbo->tbo", Lk, z) + (kappa ** (tt + 1))[:, None, None] * y
        y = ys[-1]
        rec = {"u": torch.stack(us), "state": {"d": d, "u": u, "s": s, "y": y}}
        if record:
            rec["s"] = s_all
            rec["d"] = torch.stack(ds)
        return ys, rec
