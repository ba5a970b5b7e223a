"""Neuron dynamics in one place: pure state-in / state-out step functions (the Norse style).

Every neuron here is a frozen parameter record, a state record (a NamedTuple of tensors) and a
step function ``step(input, state, params) -> (spike, new_state)`` that reads nothing else and
writes nothing. Time is discrete (one call = one step); the forward spike is the Heaviside step
H(z) = 1[z >= 0] (H(0) = 1, as SpikingJelly's surrogates); a caller that trains through the spike
passes its own ``spike_fn`` (a SpikingJelly surrogate module, say), which must have the same forward.

Neurons
    LIF                 :func:`lif_step` / :func:`lif_sequence`  (SpikingJelly 2.0 LIFNode, hard or soft reset)
    two-compartment     :func:`two_compartment_step`             (the DH-SNN neuron of IP2's RSNN)
    adaptive threshold  :func:`adaptive_threshold_step`          (ALIF, Bellec et al.'s e-prop neuron)

Tested equal to these (tests/test_neurons.py): SpikingJelly's multi-step LIFNode, :mod:`snncore.models.lif` (the whole-sequence autograd Function, both its Numba-fused and
torch-op paths), the Rule Lab's numpy ``lif_run``, the MPS network's soft-reset LIF and IP2's RSNN
and ``dh_step``. :mod:`snncore.models.lif` stays the training path (surrogate gradients, speed);
this module is the reference its forward pass must equal.

Arguments are torch tensors (numpy arrays and Python numbers are converted with ``torch.as_tensor``),
except that :func:`lif_sequence` runs a numpy input in numpy (the Rule Lab's tiny populations); all
arithmetic is elementwise with broadcasting, so any shape works ([B, N], [N], ...).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np
import torch

SpikeFn = Callable[[torch.Tensor], torch.Tensor]


def heaviside(z: torch.Tensor) -> torch.Tensor:
    """H(z) = 1[z >= 0] in z's dtype (H(0) = 1): the forward pass of every SpikingJelly surrogate."""
    return (z >= 0).to(z.dtype)


def _t(x) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(x)


# ============================================================================ LIF
@dataclass(frozen=True)
class LIFParams:
    """Parameters of a leaky integrate-and-fire neuron in SpikingJelly's convention.

    tau          membrane time constant in steps (> 0; SpikingJelly's ``tau``; decay per step 1 - 1/tau)
    v_th         firing threshold (``v_threshold``)
    v_reset      reset potential of the hard reset; ``None`` selects the soft reset (subtract v_th)
    decay_input  True: the input is scaled by 1/tau too (SpikingJelly's default)
    detach_reset True: the reset term does not carry the spike's gradient (only matters with a surrogate)
    """
    tau: float = 2.0
    v_th: float = 1.0
    v_reset: float | None = 0.0
    decay_input: bool = True
    detach_reset: bool = False

    def __post_init__(self):
        if not self.tau > 0:
            raise ValueError(f"tau must be > 0, got {self.tau}")

    @property
    def soft_reset(self) -> bool:
        return self.v_reset is None

    def node_kwargs(self) -> dict:
        """These parameters as SpikingJelly ``LIFNode`` / ``FastLIFNode`` keyword arguments, so a
        module builds its layer from the record: ``LIFNode(**p.node_kwargs(), surrogate_function=...)``."""
        return dict(tau=self.tau, decay_input=self.decay_input, v_threshold=self.v_th,
                    v_reset=self.v_reset, detach_reset=self.detach_reset)

    @property
    def v_rest(self) -> float:
        """Potential the membrane decays to, and SpikingJelly's initial v: v_reset (0 for the soft reset)."""
        return 0.0 if self.v_reset is None else float(self.v_reset)


class LIFState(NamedTuple):
    v: torch.Tensor          # membrane potential after the previous step's reset


def lif_init(like: torch.Tensor, p: LIFParams) -> LIFState:
    """SpikingJelly's initial state: v = v_reset (0 for the soft reset), shaped and typed like ``like``."""
    return LIFState(torch.full_like(_t(like), p.v_rest))


def lif_charge(x: torch.Tensor, v: torch.Tensor, p: LIFParams) -> torch.Tensor:
    """Charged (pre-reset) potential h, written as SpikingJelly's reference (``_ops/lif/reference.charge``)::

        h = v + (x - (v - v_r)) / tau        (decay_input=True)
        h = v - (v - v_r) / tau + x          (decay_input=False)

    with v_r = v_reset (0 for the soft reset). The same as h = (1 - 1/tau) v + v_r / tau + x' with
    x' = x / tau or x, up to float rounding.
    """
    r = p.v_rest
    if p.decay_input:
        return v + (x - (v - r)) / p.tau
    return v - (v - r) / p.tau + x


def lif_reset(h: torch.Tensor, spike: torch.Tensor, p: LIFParams) -> torch.Tensor:
    """Post-spike potential, as SpikingJelly's ``_ops/reset.voltage``::

        v = s v_reset + (1 - s) h           (hard reset)
        v = h - s v_th                      (soft reset, v_reset=None)
    """
    if p.detach_reset:
        spike = spike.detach()
    if p.v_reset is None:
        return h - spike * p.v_th
    return spike * p.v_reset + (1.0 - spike) * h


def lif_step(x, state: LIFState, p: LIFParams, spike_fn: SpikeFn = heaviside) -> tuple[torch.Tensor, LIFState]:
    """One LIF step: (spike s[t], LIFState(v[t])) from input x[t] and LIFState(v[t-1])::

        h[t] = v[t-1] + (x[t] - (v[t-1] - v_r)) / tau      (decay_input; else v[t-1] - (v[t-1] - v_r)/tau + x[t])
        s[t] = H(h[t] - v_th)
        v[t] = s[t] v_reset + (1 - s[t]) h[t]               (hard reset)
        v[t] = h[t] - s[t] v_th                             (soft reset, v_reset=None)

    v_r = v_reset, 0 for the soft reset. This is SpikingJelly 2.0's LIFNode step, op for op.
    """
    x = _t(x)
    h = lif_charge(x, state.v, p)
    s = spike_fn(h - p.v_th)
    return s, LIFState(lif_reset(h, s, p))


class LIFTrace(NamedTuple):
    spikes: torch.Tensor     # s [T, ...]
    h: torch.Tensor          # charged potential before the reset [T, ...] (what crosses the threshold)
    v: torch.Tensor          # potential after the reset [T, ...] (SpikingJelly's v_seq)
    state: LIFState          # final state (v[T-1]), to continue with


def lif_sequence(x_seq, p: LIFParams, state: LIFState | None = None) -> LIFTrace:
    """:func:`lif_step` looped over the first axis of x_seq [T, ...] (forward only, Heaviside spikes).

    ``state=None`` starts from :func:`lif_init`. Training paths use :mod:`snncore.models.lif`
    (surrogate gradients, fused kernels), whose forward equals this one.

    A numpy x_seq runs in numpy and returns numpy arrays (state included): for tens of neurons the
    per-op cost of torch dominates (Rule Lab sizes, 60 x 2 x 8: ~10x slower in torch). Both paths
    compute lif_step's values; where v_reset = 0 they skip the no-op "- 0" and take the hard reset
    as a select, which equals s v_reset + (1 - s) h for every finite h.
    """
    if isinstance(x_seq, np.ndarray):
        return _lif_sequence_np(x_seq, p, state)
    x_seq = _t(x_seq)
    _check_seq(x_seq)
    if not x_seq.is_floating_point():             # 0/1 spikes as input currents
        x_seq = x_seq.float()
    v = lif_init(x_seq[0], p).v if state is None else state.v
    r, tau, v_th, soft = p.v_rest, p.tau, p.v_th, p.v_reset is None
    spikes, hs, vs = [], [], []
    for x in x_seq:
        dv = v if r == 0.0 else v - r                            # v - v_r
        h = v + (x - dv) / tau if p.decay_input else v - dv / tau + x
        fired = h >= v_th
        s = fired.to(h.dtype)
        v = h - s * v_th if soft else torch.where(fired, r, h)
        spikes.append(s)
        hs.append(h)
        vs.append(v)
    return LIFTrace(torch.stack(spikes), torch.stack(hs), torch.stack(vs), LIFState(v))


def _check_seq(x_seq) -> None:
    if x_seq.ndim < 1 or x_seq.shape[0] == 0:
        raise ValueError(f"x_seq must be [T, ...] with T >= 1, got shape {tuple(x_seq.shape)}")


def _lif_sequence_np(x_seq: np.ndarray, p: LIFParams, state: LIFState | None) -> LIFTrace:
    """lif_sequence in numpy, written into preallocated arrays (within ~20% of a bare v*decay + I
    loop at Rule Lab sizes; the Rule Lab answers every slider move)."""
    _check_seq(x_seq)
    if not np.issubdtype(x_seq.dtype, np.floating):
        x_seq = x_seq.astype(np.float32)
    if x_seq.ndim == 1:                  # [T]: numpy makes 0-d results scalars, so run it as [T, 1]
        st = None if state is None else LIFState(np.reshape(state.v, (1,)))
        tr = _lif_sequence_np(x_seq[:, None], p, st)
        return LIFTrace(tr.spikes[:, 0], tr.h[:, 0], tr.v[:, 0], LIFState(tr.state.v.reshape(())))
    r, tau, v_th, soft = p.v_rest, p.tau, p.v_th, p.v_reset is None
    S, H, V = np.empty_like(x_seq), np.empty_like(x_seq), np.empty_like(x_seq)
    v = np.full_like(x_seq[0], r) if state is None else np.asarray(state.v, dtype=x_seq.dtype)
    for t in range(x_seq.shape[0]):
        x = x_seq[t]
        dv = v if r == 0.0 else v - r
        h = v + (x - dv) / tau if p.decay_input else v - dv / tau + x
        H[t] = h
        fired = h >= v_th
        S[t] = fired
        if soft:
            v = h - S[t] * v_th
        else:
            h[fired] = r                                         # h is this step's own array
            v = h
        V[t] = v
    return LIFTrace(S, H, V, LIFState(v))


# ============================================================================ two-compartment (IP2)
@dataclass(frozen=True, eq=False)          # eq=False: == on tensor fields has no single truth value
class TwoCompartmentParams:
    """Per-neuron intrinsic properties of IP2's dendritic (DH-SNN) neuron; tensors, may require grad.

    tau_d   dendritic time constant(s) in ms: [N] (one branch), [N, 1] (same) or [N, K] (K branches);
            ``None``: the point neuron (beta = 0, d = I exactly)
    tau_s   somatic time constant in ms [N]
    theta   threshold [N] (also the soft reset's size)
    dt      step length in ms
    """
    tau_d: torch.Tensor | None
    tau_s: torch.Tensor
    theta: torch.Tensor
    dt: float = 1.0

    @property
    def branches(self) -> int:
        return 1 if self.tau_d is None or self.tau_d.dim() < 2 else int(self.tau_d.shape[-1])

    def beta(self) -> torch.Tensor | None:
        """exp(-dt / tau_d): [N] for one branch, [N, K] for K > 1; None for the point neuron."""
        if self.tau_d is None:
            return None
        tau_d = _t(self.tau_d)
        if tau_d.dim() == 2 and tau_d.shape[-1] == 1:
            tau_d = tau_d[:, 0]
        return torch.exp(-self.dt / tau_d)

    def alpha(self) -> torch.Tensor:
        """exp(-dt / tau_s) [N]."""
        return torch.exp(-self.dt / _t(self.tau_s))

    def decays(self) -> "TwoCompartmentDecays":
        """The per-step factors, for a caller that loops over T to compute once (they carry the
        gradient to tau_d and tau_s)."""
        beta, alpha = self.beta(), self.alpha()
        return TwoCompartmentDecays(beta, None if beta is None else 1 - beta, alpha, 1 - alpha)


class TwoCompartmentDecays(NamedTuple):
    beta: torch.Tensor | None        # exp(-dt/tau_d) (None: point neuron)
    one_minus_beta: torch.Tensor | None
    alpha: torch.Tensor              # exp(-dt/tau_s)
    one_minus_alpha: torch.Tensor


class TwoCompartmentState(NamedTuple):
    d: torch.Tensor          # dendritic current [B, N] (or [B, N, K])
    u: torch.Tensor          # somatic potential [B, N]
    s: torch.Tensor          # spikes of the previous step [B, N] (the reset arrives one step late)


def two_compartment_init(B: int, N: int, p: TwoCompartmentParams, dtype=None, device=None) -> TwoCompartmentState:
    """All zeros (IP2's state at trial onset)."""
    K = p.branches
    z = lambda *shape: torch.zeros(*shape, dtype=dtype or _t(p.theta).dtype, device=device)  # noqa: E731
    return TwoCompartmentState(z(B, N, K) if K > 1 else z(B, N), z(B, N), z(B, N))


def two_compartment_step(I, state: TwoCompartmentState, p: TwoCompartmentParams,
                         spike_fn: SpikeFn = heaviside, decays: TwoCompartmentDecays | None = None,
                         ) -> tuple[torch.Tensor, TwoCompartmentState]:
    """One step of IP2's DH-SNN neuron (docs ALGORITHMS_IP2.md section 1, snncore.rules.ip2.RSNN)::

        d[t] = beta d[t-1] + (1 - beta) I[t]                 beta  = exp(-dt / tau_d)  (d = I: point neuron)
        u[t] = alpha u[t-1] + (1 - alpha) sum_k d[t] - theta s[t-1]      alpha = exp(-dt / tau_s)
        s[t] = H(u[t] - theta)

    I[t] is the neuron's total synaptic current [B, N] (or [B, N, K] for K branches): for the
    RSNN, x[t] W_in^T + s[t-1] W_rec^T + b; forming it is the network's job, not the neuron's.
    The reset is soft and one step late: theta s[t-1] comes off u[t]. IP2 passes its ATan surrogate
    as spike_fn. ``decays``: p.decays() computed once by a caller looping over T (else per call).
    The ops are the RSNN's (addcmul, in its order), so its values are reproduced bit for bit.
    Returns (s[t], TwoCompartmentState(d[t], u[t], s[t])).
    """
    I = _t(I)
    beta, omb, alpha, oma = p.decays() if decays is None else decays
    d = I if beta is None else torch.addcmul(beta * state.d, omb, I)            # beta d + (1 - beta) I
    dsum = d.sum(-1) if p.branches > 1 else d
    u = torch.addcmul(torch.addcmul(alpha * state.u, oma, dsum), p.theta, state.s, value=-1.0)
    s = spike_fn(u - p.theta)
    return s, TwoCompartmentState(d, u, s)


# ============================================================================ adaptive threshold (ALIF)
@dataclass(frozen=True)
class AdaptiveThresholdParams:
    """Adaptive-threshold LIF (ALIF): a LIF membrane plus a spike-triggered threshold adaptation.

    lif     the membrane (:class:`LIFParams`; its v_th is the baseline threshold)
    tau_a   adaptation time constant in steps (> 0): a decays by rho_a = exp(-1/tau_a) per step
    beta    threshold increase per unit of adaptation (beta = 0: plain LIF)
    """
    lif: LIFParams = LIFParams()
    tau_a: float = 20.0
    beta: float = 0.07

    def __post_init__(self):
        if not self.tau_a > 0:
            raise ValueError(f"tau_a must be > 0, got {self.tau_a}")

    @property
    def rho_a(self) -> float:
        return math.exp(-1.0 / self.tau_a)


class AdaptiveThresholdState(NamedTuple):
    v: torch.Tensor          # membrane after the previous reset
    a: torch.Tensor          # threshold adaptation a[t-1] (0 at rest)


def adaptive_threshold_init(like: torch.Tensor, p: AdaptiveThresholdParams) -> AdaptiveThresholdState:
    like = _t(like)
    return AdaptiveThresholdState(torch.full_like(like, p.lif.v_rest), torch.zeros_like(like))


def adaptive_threshold_step(x, state: AdaptiveThresholdState, p: AdaptiveThresholdParams,
                            spike_fn: SpikeFn = heaviside) -> tuple[torch.Tensor, AdaptiveThresholdState]:
    """One ALIF step. Source: Bellec, Scherr, Subramoney, Hajek, Salaj, Legenstein, Maass, "A solution
    to the learning dilemma for recurrent networks of spiking neurons", Nat. Commun. 11, 3625 (2020),
    Methods, ALIF neuron (introduced in Bellec et al., "Long short-term memory and learning-to-learn
    in networks of spiking neurons", NeurIPS 2018)::

        h[t] = lif_charge(x[t], v[t-1])                     (SpikingJelly's charge, as lif_step)
        A[t] = v_th + beta a[t-1]                           (adaptive threshold)
        s[t] = H(h[t] - A[t])
        v[t] = lif_reset(h[t], s[t])                        (hard: v_reset; soft: h - s v_th)
        a[t] = rho_a a[t-1] + s[t],   rho_a = exp(-1/tau_a)

    A and a are e-prop's (A^t = v_th + beta a^t, a^{t+1} = rho a^t + z^t). One difference, named:
    e-prop subtracts v_th from the next step's undecayed membrane; here the reset happens at the
    spike step (SpikingJelly's convention, as lif_step), so the soft reset's v_th decays once with
    the membrane. The soft reset subtracts the baseline v_th, not A[t], as in e-prop. e-prop's
    membrane is decay_input=False with its alpha = 1 - 1/tau. With beta = 0 this is :func:`lif_step`
    exactly.
    """
    x = _t(x)
    h = lif_charge(x, state.v, p.lif)
    s = spike_fn(h - (p.lif.v_th + p.beta * state.a))
    v = lif_reset(h, s, p.lif)
    a = p.rho_a * state.a + s
    return s, AdaptiveThresholdState(v, a)
