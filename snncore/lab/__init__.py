"""Rule Lab: one plasticity rule on a tiny in-process population, fast enough for a slider.

Pure and deterministic given the seed; no Streamlit here (the page is app_pages/rule_lab.py, the
speed check bench/bench_rule_lab.py). The updates are the training engine's own code, never a copy:

    stdp, rstdp, ssdp, da_ssdp   the Rule objects' ``after_step`` (and ``after_backward``), called
                                 with a StepContext whose one layer "lab" is the population's
                                 weight [N_post, N_pre]; they call stdp_delta / rstdp_delta /
                                 ssdp_delta / fit_gate / dopamine_gate inside
    mps                          an MPSNet with the MPS rule's hooks around a real Adam step
    ip2                          ip2.L2LRunner (the protocol's own update) on one task

Set-up for the four spike-timing rules: N_pre input neurons (the chosen input) drive N_post LIF
neurons through W (no recurrence). One *update* = one window of T steps for B trials: the input is
drawn, the population simulated with the current W, then the rule changes W once, exactly as the
Trainer does after each optimizer step (traces start at zero in every window). The LIF here is the
plain hard-reset form of SpikingJelly's LIFNode(decay_input=False, v_reset=0):

    v[t] = (1 - 1/tau_m) v[t-1] + I[t],  I[t] = W s_pre[t],  s[t] = [v[t] >= v_th],  v <- 0 after a spike

written as a numpy loop over T (tens of neurons: per-step framework overhead would dominate).

Inputs (``InputSpec.kind``): "poisson" (independent spikes at ``rate`` per step), "bursts"
(synchronous volleys every ``period`` steps, each spike jittered by N(0, jitter^2) steps, plus
background spikes at ``rate``), "pattern" (a repeated sweep: neuron i fires at offset
i * period / N within every period, jittered, plus background at ``rate``). ``spread`` scales each
trial's rates by a factor m drawn from U[1 - spread, 1 + spread], and a neuron joins each volley /
pattern repeat with probability min(1, m) (trial-to-trial variability, which is what gives DA-SSDP
different synchrony per sample). Rules with labels (R-STDP, MPS) have two
classes: the input group of the trial's class (first or second half of the inputs) carries the
structure; the other group fires background only (Poisson: at rate / 4).
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .rules.base import LayerTrace, StepContext, check_params

RULES = ("stdp", "rstdp", "ssdp", "da_ssdp", "mps", "ip2")
TITLES = {"stdp": "STDP", "rstdp": "R-STDP (reward-modulated STDP)", "ssdp": "SSDP (synchrony-dependent)",
          "da_ssdp": "DA-SSDP (dopamine-gated SSDP)", "mps": "MPS (multi-plasticity synergy)",
          "ip2": "Intrinsic plasticity (IP²-RSNN)"}
INPUTS = ("poisson", "bursts", "pattern")
INPUT_TITLES = {"poisson": "Poisson", "bursts": "synchronous bursts", "pattern": "jittered repeated pattern"}
N_CLASSES = 2
MAX_RASTER = 1200            # most time steps drawn in a raster (trial 0 of each update, side by side)


# ----------------------------------------------------------------------------- specifications
@dataclass
class InputSpec:
    """What drives the population (see the module docstring)."""
    kind: str = "pattern"
    rate: float = 0.05        # spikes per step: Poisson rate, or background rate for bursts / pattern
    jitter: float = 1.0       # std of the spike-time jitter (steps) of bursts / pattern
    period: int = 20          # steps between volleys / pattern repeats
    spread: float = 0.0       # trial-to-trial rate variability: factor ~ U[1 - spread, 1 + spread]


@dataclass
class PopSpec:
    """The tiny population and the length of the experiment."""
    n_pre: int = 20
    n_post: int = 8           # post neurons (MPS: hidden neurons; IP2: recurrent neurons)
    T: int = 60               # steps per window (one update)
    batch: int = 2            # trials per update
    updates: int = 10
    tau_m: float = 10.0       # membrane time constant (steps)
    v_th: float = 1.0
    w_init: float = 0.25      # initial weights ~ U[0, 2 w_init]
    seed: int = 0


# per-rule starting points: sizes that answer in well under 200 ms on 2 cores
DEFAULT_POP = {
    "stdp": PopSpec(n_pre=20, n_post=8, T=60, batch=2, updates=12),
    "rstdp": PopSpec(n_pre=20, n_post=8, T=40, batch=8, updates=15, w_init=0.2),
    "ssdp": PopSpec(n_pre=20, n_post=10, T=16, batch=8, updates=16, tau_m=5.0, w_init=0.1),
    "da_ssdp": PopSpec(n_pre=20, n_post=10, T=16, batch=8, updates=20, tau_m=5.0, w_init=0.15),
    "mps": PopSpec(n_pre=20, n_post=16, T=8, batch=16, updates=10),
    "ip2": PopSpec(n_post=16, T=10, batch=8, updates=12),
}
DEFAULT_INPUT = {
    "stdp": InputSpec(kind="pattern", rate=0.02, jitter=1.0, period=20),
    "rstdp": InputSpec(kind="poisson", rate=0.08, jitter=1.0, period=20),
    "ssdp": InputSpec(kind="bursts", rate=0.01, jitter=1.0, period=16),
    "da_ssdp": InputSpec(kind="poisson", rate=0.05, jitter=1.5, period=16, spread=0.6),
    "mps": InputSpec(kind="poisson", rate=0.3, jitter=1.0, period=8),
    "ip2": InputSpec(),        # IP2 uses its own task family's inputs
}
# the sandbox's own knobs beside the rule's Params (defaults per rule)
LAB_EXTRA = {"rstdp": {"target_group": 0}, "da_ssdp": {"warmup": 8, "corr_SL": -0.8}}


def default_params(rule: str):
    """The rule's Params dataclass with the paper's defaults (IP2: reduced lab sizes, see below)."""
    cls = _params_class(rule)
    return cls()


def _params_class(rule: str):
    if rule not in RULES:
        raise ValueError(f"rule: {rule!r} is not allowed (choose from {', '.join(RULES)})")
    from .rules import get_rule
    return get_rule(rule).Params


def make_params(rule: str, values: dict | None = None):
    """Params of the rule with ``values`` replaced; range errors raise ValueError (one line)."""
    p = dataclasses.replace(default_params(rule), **(values or {}))
    errors = check_params(p)
    if errors:
        raise ValueError("; ".join(errors))
    return p


# ----------------------------------------------------------------------------- inputs and LIF
def _check_input(inp: InputSpec) -> None:
    if inp.kind not in INPUTS:
        raise ValueError(f"input: {inp.kind!r} is not allowed (choose from {', '.join(INPUTS)})")
    if not 0.0 <= inp.rate <= 1.0:
        raise ValueError(f"rate: {inp.rate} is out of range (allowed: 0 <= rate <= 1 spikes per step)")
    if not 0.0 <= inp.jitter <= 50.0:
        raise ValueError(f"jitter: {inp.jitter} is out of range (allowed: 0 <= jitter <= 50 steps)")
    if not 1 <= int(inp.period) <= 1000:
        raise ValueError(f"period: {inp.period} is out of range (allowed: 1 <= period <= 1000 steps)")
    if not 0.0 <= inp.spread <= 1.0:
        raise ValueError(f"spread: {inp.spread} is out of range (allowed: 0 <= spread <= 1)")


def _check_pop(pop: PopSpec) -> None:
    for name, lo, hi in (("n_pre", 2, 200), ("n_post", 2, 200), ("T", 4, 1000), ("batch", 1, 256),
                         ("updates", 1, 500)):
        v = getattr(pop, name)
        if not lo <= int(v) <= hi:
            raise ValueError(f"{name}: {v} is out of range (allowed: {lo} <= {name} <= {hi})")
    if not pop.tau_m >= 1.0:
        raise ValueError(f"tau_m: {pop.tau_m} is out of range (allowed: >= 1 step)")
    if not pop.v_th > 0:
        raise ValueError(f"v_th: {pop.v_th} must be > 0")


def make_input(inp: InputSpec, n_pre: int, T: int, B: int, rng: np.random.Generator,
               labels: np.ndarray | None = None, n_classes: int = N_CLASSES) -> np.ndarray:
    """Input spikes float32 [T, B, n_pre] (0/1); see the module docstring for the three kinds.

    labels [B] (ints < n_classes) or None: with labels only the class's input group (a contiguous
    block of n_pre / n_classes neurons) carries the structure, the rest fires background."""
    _check_input(inp)
    m = 1.0 + inp.spread * rng.uniform(-1.0, 1.0, size=B)                        # [B] trial factor
    rate = np.clip(inp.rate * m, 0.0, 1.0)[None, :, None]
    if labels is None:
        signal = np.ones((B, n_pre), dtype=bool)
    else:
        group = (np.arange(n_pre) * n_classes) // n_pre                            # [n_pre]
        signal = group[None, :] == np.asarray(labels)[:, None]                     # [B, n_pre]
    u = rng.random((T, B, n_pre))
    if inp.kind == "poisson":
        r = np.where(signal[None], rate, rate / 4.0)
        return (u < r).astype(np.float32)
    x = (u < rate).astype(np.float32)                                              # background
    P = int(inp.period)
    starts = np.arange(0, T, P)                                                    # [R] repeats
    if inp.kind == "bursts":
        offs = np.full(n_pre, P // 2, dtype=float)                                 # one volley per period
    else:
        offs = np.arange(n_pre) * P / n_pre                                        # the sweep
    t = starts[:, None, None] + offs[None, None, :] + inp.jitter * rng.standard_normal((starts.size, B, n_pre))
    t = np.rint(t).astype(np.int64)                                                # [R, B, n_pre]
    join = rng.random(t.shape) < np.minimum(1.0, m)[None, :, None]                # volley participation
    ok = (t >= 0) & (t < T) & signal[None] & join
    r_i, b_i, n_i = np.nonzero(ok)
    x[t[r_i, b_i, n_i], b_i, n_i] = 1.0
    return x


def lif_run(current: np.ndarray, tau_m: float, v_th: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Hard-reset LIF, v[t] = (1 - 1/tau_m) v[t-1] + I[t], spike at v >= v_th, then v = 0.

    current [T, B, N] -> (spikes float32 [T, B, N], v before reset float32 [T, B, N])."""
    T = current.shape[0]
    decay = 1.0 - 1.0 / float(tau_m)
    v = np.zeros(current.shape[1:], dtype=np.float32)
    s_out = np.empty(current.shape, dtype=np.float32)
    v_out = np.empty(current.shape, dtype=np.float32)
    for t in range(T):
        v = v * decay + current[t]
        v_out[t] = v
        s = v >= v_th
        s_out[t] = s
        v[s] = 0.0
    return s_out, v_out


# ----------------------------------------------------------------------------- the result
@dataclass
class LabResult:
    """Everything the page draws (numpy, CPU). Rasters are trial 0 of each update side by side."""
    rule: str
    params: Any
    pop: PopSpec
    inp: InputSpec
    T: int                                   # steps per window (raster boundaries)
    pre_raster: np.ndarray                   # [N_pre, steps] bool (IP2: input currents, float)
    post_raster: np.ndarray                  # [N_post, steps] bool
    traces: dict[str, np.ndarray]            # name -> [T] of the last update's trial 0
    W0: np.ndarray                           # weight before the first update [N_post, N_pre]
    W: np.ndarray                            # weight after the last update
    history: dict[str, np.ndarray]           # per-update series (w_mean, dw, rate, ...)
    extras: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0                     # simulation time (for the page's caption)

    @property
    def dW(self) -> np.ndarray:
        return self.W - self.W0


def _raster(chunks: list[np.ndarray]) -> np.ndarray:
    """[steps, N] chunks -> [N, steps] bool, at most MAX_RASTER steps (the newest kept)."""
    r = np.concatenate(chunks, 0) if chunks else np.zeros((0, 0))
    return (r[-MAX_RASTER:] != 0).T.copy()


def _init_weight(pop: PopSpec, rng: np.random.Generator) -> torch.Tensor:
    return torch.from_numpy(rng.uniform(0.0, 2.0 * pop.w_init, size=(pop.n_post, pop.n_pre)).astype(np.float32))


def _ctx(step: int, total: int, W: torch.Tensor, pre, post, v=None, *, out=None, y=None,
         loss=None, extras=None) -> StepContext:
    """The StepContext the Trainer would build, with the population's weight as layer 'lab'."""
    z = torch.zeros(())
    return StepContext(step=step, epoch=0, total_steps=total, model=torch.nn.Identity(), x=pre,
                       y=y if y is not None else torch.zeros(pre.shape[1], dtype=torch.long),
                       out=out if out is not None else post, loss=loss if loss is not None else z,
                       layers={"lab": LayerTrace(weight=W, pre=pre, post=post, v=v)},
                       extras=extras or {})


# ----------------------------------------------------------------------------- simulation
def simulate(rule: str, params=None, pop: PopSpec | None = None, inp: InputSpec | None = None,
             extra: dict | None = None) -> LabResult:
    """Run one sandbox experiment. ``params``: the rule's Params (None = paper defaults) or a dict
    of overrides; ``pop`` / ``inp`` default to DEFAULT_POP / DEFAULT_INPUT of the rule; ``extra``:
    the sandbox's own knobs (LAB_EXTRA). Deterministic given pop.seed. Bad values raise ValueError
    with a one-line message."""
    if rule not in RULES:
        raise ValueError(f"rule: {rule!r} is not allowed (choose from {', '.join(RULES)})")
    if params is None or isinstance(params, dict):
        params = make_params(rule, params)
    else:
        errors = check_params(params)
        if errors:
            raise ValueError("; ".join(errors))
    pop = pop if pop is not None else dataclasses.replace(DEFAULT_POP[rule])
    inp = inp if inp is not None else dataclasses.replace(DEFAULT_INPUT[rule])
    ex = dict(LAB_EXTRA.get(rule, {}))
    ex.update(extra or {})
    _check_pop(pop)
    if rule != "ip2":
        _check_input(inp)
    from .rules.ip2 import torch_threads
    t0 = time.perf_counter()
    # tiny tensors: one thread (a 2-thread pool on a busy 2-core box is far slower), and no torch
    # RNG touched (numpy Generator from the seed), so results depend on the seed alone
    with torch_threads(1), torch.no_grad():
        fn = {"stdp": _sim_stdp, "rstdp": _sim_stdp, "ssdp": _sim_ssdp, "da_ssdp": _sim_ssdp}.get(rule)
        if fn is not None:
            res = fn(rule, params, pop, inp, ex)
    if rule == "mps":
        with torch_threads(1):
            res = _sim_mps(params, pop, inp, ex)
    elif rule == "ip2":
        res = _sim_ip2(params, pop, ex)
    res.seconds = time.perf_counter() - t0
    return res


def _population_step(W: torch.Tensor, pre: np.ndarray, pop: PopSpec):
    """Post spikes and membrane of the LIF population for input spikes pre [T, B, N_pre]."""
    current = pre @ W.numpy().T                                                    # [T, B, N_post]
    return lif_run(current, pop.tau_m, pop.v_th)


def _sim_stdp(rule: str, p, pop: PopSpec, inp: InputSpec, ex: dict) -> LabResult:
    from .rules import stdp as S
    from .rules.rstdp import RSTDP, eligibility_weights

    rng = np.random.default_rng(pop.seed)
    W = _init_weight(pop, rng)
    W0 = W.clone()
    R = RSTDP(p) if rule == "rstdp" else S.STDP(p)
    target = int(ex.get("target_group", 0))
    pre_c, post_c, hist = [], [], {k: [] for k in ("w_mean", "dw", "rate", "reward", "r_bar", "correct")}
    for e in range(pop.updates):
        labels = rng.integers(0, N_CLASSES, size=pop.batch) if rule == "rstdp" else None
        pre = make_input(inp, pop.n_pre, pop.T, pop.batch, rng, labels)
        post, v = _population_step(W, pre, pop)
        pre_t, post_t = torch.from_numpy(pre), torch.from_numpy(post)
        out = y = None
        if rule == "rstdp":
            # read-out: the post neurons in N_CLASSES groups; group c answers class c. The reward
            # is the rule's own reward_from_output: +1 when the trial's class group fires most.
            # target_group flips which group should answer class 0 (1 = the "wrong" mapping).
            out = post_t.reshape(pop.T, pop.batch, N_CLASSES, -1).mean(-1)
            y = torch.from_numpy((labels + target) % N_CLASSES)
        before = W.clone()
        R.after_step(_ctx(e, pop.updates, W, pre_t, post_t, torch.from_numpy(v), out=out, y=y))
        tel = R.telemetry()
        hist["w_mean"].append(float(W.mean()))
        hist["dw"].append(float((W - before).abs().mean()))
        hist["rate"].append(float(post.mean()))
        if rule == "rstdp":
            hist["reward"].append(tel["reward"])
            hist["r_bar"].append(tel["reward_mean"])
            hist["correct"].append(float((out.mean(0).argmax(-1) == y).float().mean()))
        pre_c.append(pre[:, 0])
        post_c.append(post[:, 0])
    # traces of the last window, trial 0: the rule's own trace function
    x = S.traces(torch.from_numpy(pre[:, :1]), p.tau_pre)[:, 0].numpy()           # [T, N_pre]
    yv = S.traces(torch.from_numpy(post[:, :1]), p.tau_post)[:, 0].numpy()        # [T, N_post]
    pi, pj = _busiest(pre[:, 0], 3), _busiest(post[:, 0], 2)
    traces = {f"pre trace x[{i}]": x[:, i] for i in pi}
    traces.update({f"post trace y[{j}]": yv[:, j] for j in pj})
    traces.update({f"membrane v[{j}]": v[:, 0, j] for j in pj})
    dt = S.WINDOW_DT
    eta = p.eta if rule == "rstdp" else 1.0
    extras = {"window_dt": dt.astype(float),
              "window_dw": eta * S.stdp_window(dt, p.tau_pre, p.tau_post, p.eta_plus, p.eta_minus).numpy()}
    if rule == "rstdp":
        extras["elig_w"] = eligibility_weights(pop.T, p.tau_e, dtype=torch.float64).numpy()
        extras["groups"] = N_CLASSES
    return LabResult(rule, p, pop, inp, pop.T, _raster(pre_c), _raster(post_c), traces, W0.numpy(),
                     W.numpy().copy(), {k: np.asarray(v, float) for k, v in hist.items() if v}, extras)


def _busiest(s: np.ndarray, n: int) -> list[int]:
    """Indices of the n neurons with most spikes in s [T, N] (ties: lower index), sorted."""
    c = s.sum(0)
    return sorted(np.argsort(-c, kind="stable")[:n].tolist())


def _sim_ssdp(rule: str, p, pop: PopSpec, inp: InputSpec, ex: dict) -> LabResult:
    from .rules.da_ssdp import DASSDP, dopamine_gate
    from .rules.ssdp import SSDP, gaussian_kernel, spike_latency, ssdp_delta, synchrony

    rng = np.random.default_rng(pop.seed)
    W = _init_weight(pop, rng)
    W0 = W.clone()
    da = rule == "da_ssdp"
    if da:
        warm = int(ex.get("warmup", 8))
        if not 0 <= warm < pop.updates:
            raise ValueError(f"warm-up: {warm} updates is out of range (allowed: 0 <= warm-up < updates = {pop.updates})")
        corr = float(ex.get("corr_SL", -0.8))
        if not -1.0 <= corr <= 1.0:
            raise ValueError(f"corr(S, L): {corr} is out of range (allowed: -1 <= value <= 1)")
        p = dataclasses.replace(p, warmup_steps=warm) if warm > 0 else dataclasses.replace(p, warmup_steps=0, warmup_frac=0.0)
        R = DASSDP(p, total_steps=pop.updates)
    else:
        R = SSDP(p, total_steps=pop.updates)
    pre_c, post_c = [], []
    hist = {k: [] for k in ("w_mean", "dw", "rate", "sync", "gate_mean", "phase")}
    S_all, L_all, gates = [], [], None
    for e in range(pop.updates):
        pre = make_input(inp, pop.n_pre, pop.T, pop.batch, rng)
        post, v = _population_step(W, pre, pop)
        pre_t, post_t = torch.from_numpy(pre), torch.from_numpy(post)
        extras = None
        loss = None
        S_b = synchrony(pre_t, post_t).double().numpy()                            # [B]
        if da:
            # the sandbox has no task loss: L is made to correlate with synchrony by corr(S, L)
            # (the student's choice), so the gate's dependence on that relation can be seen
            zS = (S_b - S_b.mean()) / (S_b.std() + 1e-8)
            L_b = 1.0 + 0.3 * (corr * zS + math.sqrt(max(0.0, 1.0 - corr * corr)) * rng.standard_normal(pop.batch))
            extras = {"per_sample_loss": torch.from_numpy(L_b.astype(np.float32))}
            loss = torch.tensor(float(L_b.mean()))
            S_all.append(S_b)
            L_all.append(L_b)
        before = W.clone()
        ctx = _ctx(e, pop.updates, W, pre_t, post_t, torch.from_numpy(v), loss=loss, extras=extras)
        R.after_backward(ctx)
        R.after_step(ctx)
        tel = R.telemetry()
        hist["w_mean"].append(float(W.mean()))
        hist["dw"].append(float((W - before).abs().mean()))
        hist["rate"].append(float(post.mean()))
        hist["sync"].append(float(tel.get("sync/lab", S_b.mean())))
        if da:
            hist["phase"].append(float(tel.get("phase", 0.0)))
            hist["gate_mean"].append(float(tel["gate_mean/lab"]) if "gate_mean/lab" in tel else float("nan"))
        pre_c.append(pre[:, 0])
        post_c.append(post[:, 0])
    T = pop.T
    pj = _busiest(post[:, 0], 3)
    traces = {f"membrane v[{j}]": v[:, 0, j] for j in pj}
    # the kernel and the per-pair window, both from the rule's own functions, one call each:
    # co-fired: one pre neuron spiking at t = 0, post neuron d spiking at t = d  -> dW[d, 0];
    # post silent: pre neuron d spiking at t = d, one post neuron silent (latency T) -> dW[0, d]
    K = gaussian_kernel(T, p.sigma, dtype=torch.float64).numpy()
    dts = np.arange(T)
    sweep = torch.from_numpy(np.eye(T, dtype=np.float32)[:, None, :])           # [T, 1, T]: neuron d at t = d
    first = torch.zeros(T, 1, 1)
    first[0] = 1.0
    kw = dict(a_plus=p.a_plus, a_base=p.a_base, sigma=p.sigma, latency=p.latency,
              depress_silent=p.depress_silent)
    co = ssdp_delta(first, sweep, **kw)[:, 0].double().numpy()
    pre_only = ssdp_delta(sweep, torch.zeros(T, 1, 1), **kw)[0].double().numpy()
    lat_pre = spike_latency(torch.from_numpy(pre), p.latency).numpy()
    lat_post = spike_latency(torch.from_numpy(post), p.latency).numpy()
    extras = {"kernel_dt": np.arange(T + 1, dtype=float), "kernel_g": K[0], "pair_dt": dts.astype(float),
              "pair_cofired": np.asarray(co), "pair_post_silent": np.asarray(pre_only),
              "lat_pre": lat_pre, "lat_post": lat_post}
    if da:
        fit = R.gate_params()
        extras["warm_S"] = np.concatenate(S_all[:int(p.warmup_steps)]) if p.warmup_steps else np.zeros(0)
        extras["warm_L"] = np.concatenate(L_all[:int(p.warmup_steps)]) if p.warmup_steps else np.zeros(0)
        extras["corr_SL"] = corr
        if fit:
            k, mu, sd = fit["lab"]
            extras["fit"] = (k, mu, sd)
            s_grid = np.linspace(0.0, 1.0, 101)
            extras["gate_S"] = s_grid
            extras["gate_g"] = dopamine_gate(torch.from_numpy(s_grid), k, mu, sd).numpy()
            arr = R.arrays()
            extras["gate_last"] = arr.get("gate/lab", np.zeros(0))
            extras["S_last"] = S_all[-1]
    hist = {k: np.asarray(v, float) for k, v in hist.items() if v}
    return LabResult(rule, p, pop, inp, T, _raster(pre_c), _raster(post_c), traces, W0.numpy(),
                     W.numpy().copy(), hist, extras)


def _sim_mps(p, pop: PopSpec, inp: InputSpec, ex: dict) -> LabResult:
    from .rules.mps import MPS, MPSNet

    rng = np.random.default_rng(pop.seed)
    net = MPSNet.from_params([pop.n_pre, pop.n_post, N_CLASSES], pop.T, p, seed=pop.seed)
    net.train()
    rule = MPS(p, net)
    opt = torch.optim.Adam(net.param_groups(lr=1e-2, lr_z=p.lr_z)) if rule.uses_gradient else None
    W0 = net.layers[0].effective_weight().detach().numpy().copy()
    mech = list(net.mechanisms)
    hist: dict[str, list] = {k: [] for k in ("loss", "accuracy", "rate")}
    pre_c, post_c = [], []
    for e in range(pop.updates):
        labels = rng.integers(0, N_CLASSES, size=pop.batch)
        x = torch.from_numpy(make_input(inp, pop.n_pre, pop.T, pop.batch, rng, labels))
        y = torch.from_numpy(labels)
        out = net(x)
        loss = net.loss(out, y)
        ctx = StepContext(step=e, epoch=0, total_steps=pop.updates, model=net, x=x, y=y, out=out,
                          loss=loss, layers=net.layer_traces(), optimizer=opt)
        if opt is not None:
            opt.zero_grad(set_to_none=True)
            loss.backward()
            rule.after_backward(ctx)
            opt.step()
        rule.after_step(ctx)
        tel = rule.telemetry()
        for k, v in tel.items():
            hist.setdefault(k, []).append(v)
        hist["loss"].append(float(loss.detach()))
        hist["accuracy"].append(float((net.readout(out.detach()).argmax(-1) == y).float().mean()))
        hidden = net.snapshot[0]["s_out"]
        hist["rate"].append(float(hidden.mean()))
        pre_c.append(x[:, 0].numpy())
        post_c.append(hidden[:, 0].numpy())
    u = net.snapshot[0]["u"][:, 0].numpy()                                         # [T, N]
    pj = _busiest(net.snapshot[0]["s_out"][:, 0].numpy(), 3)
    traces = {f"membrane U[{j}]": u[:, j] for j in pj}
    layer = net.layers[0]
    extras = {"mechanisms": mech,
              "assign": {n: net.assignment_map(n) for n in net.names},
              "components": {m: layer.weight_of(m).detach().numpy().copy() for m in mech},
              "contrib_last": layer.contributions(), "labels_last": labels}
    n = len(hist["loss"])
    hist = {k: np.asarray(v, float) for k, v in hist.items() if len(v) == n}
    return LabResult("mps", p, pop, inp, pop.T, _raster(pre_c), _raster(post_c), traces, W0,
                     layer.effective_weight().detach().numpy().copy(), hist, extras)


def _sim_ip2(p, pop: PopSpec, ex: dict) -> LabResult:
    from .rules.ip2 import PROPS, L2LRunner, _prop_values

    p = dataclasses.replace(p, N=pop.n_post, batch=pop.batch, T=pop.T, meta_mode="fixed", threads=1)
    r = L2LRunner(p, p.mask, seed=pop.seed)
    torch.manual_seed(pop.seed)        # nothing below draws from it; pinned anyway for determinism
    r.start_task()
    n_show = min(5, r.model.N)
    idx = sorted(set(np.linspace(0, r.model.N - 1, n_show).round().astype(int).tolist()))
    traj = {q: [_prop_values(r.model, q)[idx].numpy().copy()] for q in PROPS}
    W0 = r.model.W_rec.detach().numpy().copy()
    hist: dict[str, list] = {"loss": [], "l_task": [], "mean_u2": []}
    for _ in range(pop.updates):
        info = r.update()
        for k in hist:
            hist[k].append(info[k])
        for q in PROPS:
            traj[q].append(_prop_values(r.model, q)[idx].numpy().copy())
    tr = r.trial_trace(n_trace=3)
    x = r.last_batch[0][:, 0].numpy()                                              # [T, D] input currents
    s = np.asarray(tr["s"], dtype=bool)                                            # [T, N]
    traces = {f"membrane u[{j}]": np.asarray(tr["u"][k]) for k, j in enumerate(tr["neurons"])}
    extras = {"traj": {q: np.stack(v) for q, v in traj.items()}, "neurons": idx, "mask": list(r.mask),
              "y": np.asarray(tr["y"]), "target": np.asarray(tr["target"]),
              "all_values": {q: _prop_values(r.model, q).numpy() for q in PROPS}}
    return LabResult("ip2", p, pop, InputSpec(), pop.T, x.T.copy(), s.T.copy(), traces, W0,
                     r.model.W_rec.detach().numpy().copy(),
                     {k: np.asarray(v, float) for k, v in hist.items()}, extras)


# ----------------------------------------------------------------------------- controls
def _log_grid(default: float, lo: float = 0.0, hi: float = 1.0) -> list[float]:
    """0 and 1-2-5 steps per decade from 1e-6 to 1, plus the default, within [lo, hi]."""
    grid = [0.0] + [m * 10.0 ** e for e in range(-6, 1) for m in (1.0, 2.0, 5.0)]
    vals = sorted({round(v, 12) for v in grid if lo <= v <= hi} | {float(default)})
    return vals


# (param, kind, *args): kind "slider" (lo, hi, step), "log" (hi), "choice", "check", "multi"
CONTROLS: dict[str, list[tuple]] = {
    "stdp": [("eta_plus", "log", 0.1), ("eta_minus", "log", 0.1), ("tau_pre", "slider", 1.0, 30.0, 0.5),
             ("tau_post", "slider", 1.0, 30.0, 0.5), ("bounds", "choice"), ("clip_additive", "check")],
    "rstdp": [("eta", "log", 1.0), ("tau_e", "slider", 1.0, 100.0, 1.0), ("r_decay", "slider", 0.0, 1.0, 0.01),
              ("tau_pre", "slider", 1.0, 30.0, 0.5), ("tau_post", "slider", 1.0, 30.0, 0.5),
              ("eta_plus", "slider", 0.0, 3.0, 0.05), ("eta_minus", "slider", 0.0, 3.0, 0.05)],
    "ssdp": [("a_plus", "log", 0.1), ("a_base", "log", 0.1), ("sigma", "slider", 0.25, 10.0, 0.25),
             ("latency", "choice"), ("depress_silent", "check")],
    "da_ssdp": [("a_plus", "log", 0.1), ("a_base", "log", 0.1), ("sigma", "slider", 0.25, 10.0, 0.25),
                ("latency", "choice"), ("gate_mode", "choice"), ("depress_silent", "check")],
    "mps": [("mechanisms", "multi"), ("eta_h", "log", 1.0), ("gamma_h", "slider", 0.0, 1.0, 0.01),
            ("eta_s", "log", 1.0), ("lr_z", "log", 1.0), ("tau_a", "slider", 0.1, 5.0, 0.1),
            ("assign_mode", "choice")],
    "ip2": [("mask", "multi"), ("eta", "log", 1.0), ("lr_w", "log", 1.0), ("neuron", "choice")],
}


def control_specs(rule: str) -> list[dict]:
    """One dict per widget of the rule: name, kind, default (the Params default), help, and
    options (choice / multi / log) or lo, hi, step (slider)."""
    cls = _params_class(rule)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    d = cls()
    out = []
    for name, kind, *args in CONTROLS[rule]:
        f = fields[name]
        m = f.metadata
        spec = {"name": name, "kind": kind, "default": getattr(d, name), "help": m.get("help") or ""}
        if kind == "slider":
            spec.update(lo=args[0], hi=args[1], step=args[2])
        elif kind == "log":
            spec["options"] = _log_grid(getattr(d, name), 0.0, args[0])
        elif kind in ("choice", "multi"):
            spec["options"] = list(m["choices"])
        out.append(spec)
    return out


# ----------------------------------------------------------------------------- figures
# Built as plain plotly figure dicts in the house style of snncore.viz (LAYOUT, rasters as one PNG
# image): st.plotly_chart validates a figure once anyway, and building go.Figure objects first
# (px.imshow, add_trace, add_hline) cost more than the whole simulation on a busy 2-core box.

def _layout(title: str, xtitle: str, ytitle: str, **kw) -> dict:
    from .viz import LAYOUT
    lay = {k: v for k, v in LAYOUT.items() if not k.startswith("title_")}
    lay["title"] = {"text": title, "y": LAYOUT.get("title_y", 0.97), "yanchor": LAYOUT.get("title_yanchor", "top")}
    lay["xaxis"] = {"title": {"text": xtitle}}
    lay["yaxis"] = {"title": {"text": ytitle}}
    for k, v in kw.items():
        if isinstance(v, dict) and isinstance(lay.get(k), dict):
            lay[k] = {**lay[k], **v}
        else:
            lay[k] = v
    return lay


def _lines(series: dict[str, np.ndarray], title: str, xtitle: str, ytitle: str, *, x=None,
           log: bool = False, mode: str = "lines") -> dict:
    data = []
    for name, y in series.items():
        y = np.asarray(y, dtype=float)
        data.append({"type": "scatter", "x": np.arange(y.size) if x is None else np.asarray(x), "y": y,
                     "name": name, "mode": mode})
    return {"data": data, "layout": _layout(title, xtitle, ytitle, yaxis={"type": "log"} if log else {})}


def _heat(W: np.ndarray, title: str, *, xtitle="pre neuron i", ytitle="post neuron j",
          colorscale="RdBu", diverging: bool = True) -> dict:
    W = np.asarray(W, dtype=float)
    tr = {"type": "heatmap", "z": W, "colorscale": colorscale, "colorbar": {"thickness": 12},
          "hovertemplate": "row %{y} col %{x}<br>%{z:.4g}<extra></extra>"}
    if diverging:
        lim = float(np.abs(W).max()) or 1.0
        tr.update(zmid=0.0, zmin=-lim, zmax=lim, reversescale=True)
    return {"data": [tr], "layout": _layout(title, xtitle, ytitle, yaxis={"autorange": "reversed"})}


def _png(img: np.ndarray) -> str:
    """uint8 grey image [H, W] -> PNG data URI (what px.imshow(binary_string=True) sends)."""
    import base64
    import io

    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(img, mode="L").save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def raster(r: np.ndarray, title: str, T: int | None = None) -> dict:
    """Spike raster [neurons, steps] as one image (black = spike), as snncore.viz.raster_figure
    draws it, with dotted lines between the updates' windows."""
    r = np.asarray(r, dtype=bool)
    src = _png(np.where(r, 0, 255).astype(np.uint8)) if r.size else ""
    n = r.shape[1] if r.ndim == 2 else 0
    shapes = [] if not T or n <= T else [
        {"type": "line", "xref": "x", "yref": "paper", "x0": k - 0.5, "x1": k - 0.5, "y0": 0, "y1": 1,
         "line": {"width": 1, "dash": "dot", "color": "#d62728"}} for k in range(T, n, T)]
    tr = {"type": "image", "source": src, "hovertemplate": "t=%{x}  neuron %{y}<extra></extra>"}
    return {"data": [tr], "layout": _layout(title, "time step (updates side by side)" if shapes else "time step",
                                            f"neuron ({r.shape[0]})", height=260, shapes=shapes,
                                            xaxis={"scaleanchor": False}, yaxis={"scaleanchor": False})}


def _add_points(fig: dict, x, y, name: str) -> dict:
    fig["data"].append({"type": "scatter", "x": np.asarray(x, float), "y": np.asarray(y, float),
                        "mode": "markers", "name": name})
    return fig


def figures(res: LabResult) -> dict[str, dict]:
    """The page's figures by name, as plotly figure dicts (go.Figure(fig) gives the object)."""
    rule, h, ex = res.rule, res.history, res.extras
    figs: dict[str, dict] = {}
    n_up = len(next(iter(h.values()))) if h else 0
    ups = np.arange(1, n_up + 1)
    if rule == "ip2":
        figs["pre"] = _heat(res.pre_raster, "task input x (last batch, trial 0)", xtitle="time step",
                            ytitle="input channel")
    else:
        figs["pre"] = raster(res.pre_raster, "input (pre) spikes · trial 0 of each update", res.T)
    post_title = {"mps": "hidden spikes · trial 0 of each update",
                  "ip2": "recurrent spikes · one trial after the last update"}.get(rule, "post spikes · trial 0 of each update")
    figs["post"] = raster(res.post_raster, post_title, res.T if rule != "ip2" else None)
    figs["traces"] = _lines(res.traces, "traces in the last window (trial 0)", "time step", "value")
    what = {"mps": "W_eff of the hidden layer", "ip2": "W_rec"}.get(rule, "W")
    xt = "recurrent neuron (from)" if rule == "ip2" else "pre neuron i"
    yt = "recurrent neuron (to)" if rule == "ip2" else ("hidden neuron j" if rule == "mps" else "post neuron j")
    figs["weights"] = _heat(res.W, f"{what} after {n_up} updates", xtitle=xt, ytitle=yt)
    figs["dweights"] = _heat(res.dW, f"change of {what} · mean |ΔW| {np.abs(res.dW).mean():.3g}",
                             xtitle=xt, ytitle=yt)
    if rule in ("stdp", "rstdp"):
        dt, dw = ex["window_dt"], ex["window_dw"]
        figs["window"] = _lines({"LTP: pre → post": np.where(dw >= 0, dw, np.nan),
                                 "LTD: post → pre": np.where(dw <= 0, dw, np.nan)},
                                "learning window" + (" (η·W(Δt): per unit of r − r̄)" if rule == "rstdp" else " W(Δt)"),
                                "Δt = t_post − t_pre (steps)", "ΔW of one spike pair", x=dt, mode="lines+markers")
        ser = {"mean W": h["w_mean"], "mean |ΔW| per update": h["dw"], "post rate": h["rate"]}
        figs["history"] = _lines(ser, "per update", "update", "value", x=ups)
        if rule == "rstdp":
            figs["reward"] = _lines({"reward (batch mean)": h["reward"], "baseline r̄": h["r_bar"],
                                     "correct share": h["correct"]}, "reward per update", "update", "value", x=ups)
    elif rule in ("ssdp", "da_ssdp"):
        figs["window"] = _lines({"pre & post fired: +A₊·G(Δt)": ex["pair_cofired"],
                                 "post silent: −A_base·G(T − t_pre)": ex["pair_post_silent"]},
                                "ΔW of one synapse (the rule's ssdp_delta)",
                                "t_post − t_pre (fired pair) or t_pre (post silent), steps", "ΔW",
                                x=ex["pair_dt"], mode="lines+markers")
        figs["kernel"] = _lines({"G(Δt)": ex["kernel_g"]}, f"synchrony kernel G · σ = {float(res.params.sigma):g} steps",
                                "|Δt| = |τ_post − τ_pre| (steps)", "G", x=ex["kernel_dt"], mode="lines+markers")
        T = res.T
        labels = [str(t) for t in range(T)] + ["silent"]
        lat = []
        for name, l in (("pre", ex["lat_pre"]), ("post", ex["lat_post"])):
            l = np.asarray(l).reshape(-1)
            c = np.bincount(np.clip(l, 0, T), minlength=T + 1)[:T + 1] / max(l.size, 1)
            lat.append({"type": "bar", "x": labels, "y": c, "name": name})
        figs["latency"] = {"data": lat, "layout": _layout(f"{res.params.latency}-spike latency (last update)",
                                                          "latency (step; silent = no spike)", "share of neurons × trials",
                                                          barmode="group", xaxis={"type": "category"})}
        ser = {"mean W": h["w_mean"], "mean |ΔW| per update": h["dw"], "synchrony S": h["sync"], "post rate": h["rate"]}
        if rule == "da_ssdp":
            ser["gate mean"] = h["gate_mean"]
        figs["history"] = _lines(ser, "per update", "update", "value", x=ups)
        if rule == "da_ssdp":
            fit = ex.get("fit")
            if ex["warm_S"].size:
                S, L = ex["warm_S"], ex["warm_L"]
                f = _lines({}, "warm-up record: synchrony S vs loss L", "synchrony S", "loss L")
                _add_points(f, S, L, f"warm-up samples ({S.size})")
                if fit:
                    from .viz.rules import fit_line
                    xs, ys = fit_line(S, L, *fit)
                    f["data"].append({"type": "scatter", "x": xs, "y": ys, "mode": "lines", "name": f"fit: k = {fit[0]:.2f}"})
                figs["sync_loss"] = f
            if fit:
                g = _lines({"gate g(S)": ex["gate_g"]}, f"dopamine gate g(S) · k = {fit[0]:.2f}, μ = {fit[1]:.3f}, sd = {fit[2]:.3f}",
                           "synchrony S", "gate g", x=ex["gate_S"])
                _add_points(g, ex["S_last"], ex["gate_last"], "last update's trials")
                g["layout"]["yaxis"]["range"] = [-0.05, 2.05]
                figs["gate"] = g
    elif rule == "mps":
        mech = ex["mechanisms"]
        A = np.asarray(ex["assign"]["fc1"], dtype=float)
        from .viz import SHARE_COLORSCALE       # the Train page's scale, spelt out (see there)
        figs["assign"] = {"data": [{"type": "heatmap", "z": A, "y": mech, "zmin": 0, "zmax": 1,
                                    "colorscale": SHARE_COLORSCALE,
                                    "colorbar": {"thickness": 12, "title": {"text": "share"}}}],
                          "layout": _layout("mechanism assignment A (hidden neurons)", "hidden neuron", "mechanism",
                                            yaxis={"autorange": "reversed"})}
        figs["contrib"] = _lines({m: h[f"contrib_{m}/fc1"] for m in mech if f"contrib_{m}/fc1" in h},
                                 "each mechanism's contribution mean |A_k·C_k| (hidden)", "update", "mean |A_k·C_k|", x=ups)
        figs["dw_mech"] = _lines({m: h[f"dw_{m}/fc1"] for m in mech if f"dw_{m}/fc1" in h},
                                 "change of each W_k per update (hidden)", "update", "mean |ΔW_k|", x=ups)
        figs["history"] = _lines({"loss": h["loss"], "batch accuracy": h["accuracy"], "hidden rate": h["rate"]},
                                 "per update", "update", "value", x=ups)
    elif rule == "ip2":
        unit = {"tau_d": " (ms)", "tau_s": " (ms)", "theta": ""}
        for q, v in ex["traj"].items():
            state = "learnable" if q in ex["mask"] else "frozen"
            figs[f"traj_{q}"] = _lines({f"neuron {n}": v[:, k] for k, n in enumerate(ex["neurons"])},
                                       f"{q} of {len(ex['neurons'])} neurons over updates ({state})", "update",
                                       q + unit[q], x=np.arange(v.shape[0]))
        figs["history"] = _lines({"loss": h["loss"], "task loss": h["l_task"]}, "loss per update", "update",
                                 "loss", x=ups)
    return figs


def to_plotly_json(fig: dict) -> str:
    """What the Rule Lab page pays per figure: a go.Figure built without re-validation (the page's
    _figure), which st.plotly_chart turns into a dict (to_dict) and serialises."""
    import plotly.graph_objects as go
    import plotly.io as pio
    return pio.to_json(go.Figure(fig, _validate=False).to_dict(), validate=False)


# ----------------------------------------------------------------------------- texts
# Equations (LaTeX, as the rule modules' docstrings state them) and a short text for a student:
# what the rule does, what to try here, what to expect. Written against what this sandbox shows.
EQUATIONS: dict[str, list[str]] = {
    "stdp": [
        r"x_i[t] = x_i[t-1]\,e^{-1/\tau_{pre}} + s_i[t], \qquad y_j[t] = y_j[t-1]\,e^{-1/\tau_{post}} + s_j[t]",
        r"\Delta W_{ji} = \eta_+ f_+(W_{ji}) \sum_{t,b} s_j[t]\,x_i[t] \;-\; \eta_- f_-(W_{ji}) \sum_{t,b} y_j[t]\,s_i[t]",
        r"W(\Delta t) = \eta_+ e^{-\Delta t/\tau_{pre}}\,[\Delta t \ge 0] - \eta_- e^{\Delta t/\tau_{post}}\,[\Delta t \le 0],"
        r"\quad \Delta t = t_{post} - t_{pre}",
        r"\text{additive: } f_\pm = 1; \quad \text{multiplicative: } f_+ = w_{max} - W,\; f_- = W - w_{min}",
    ],
    "rstdp": [
        r"L_{ji}[t] = \eta_+ f_+ \, s_j[t]\,x_i[t] - \eta_- f_- \, y_j[t]\,s_i[t], \qquad "
        r"e_{ji}[t] = e_{ji}[t-1]\,e^{-1/\tau_e} + L_{ji}[t]",
        r"r_b = \begin{cases} r_{correct} & \arg\max_c \langle out_{b,c} \rangle_t = y_b \\ r_{wrong} & \text{otherwise}\end{cases}"
        r"\qquad \bar r \leftarrow r_{decay}\,\bar r + (1-r_{decay})\,\langle r_b \rangle_b",
        r"\Delta W_{ji} = \eta \sum_b (r_b - \bar r)\; e_{ji,b}[T-1]",
    ],
    "ssdp": [
        r"a_n = [\text{neuron } n \text{ fired in the window}], \quad \tau_n = \text{first spike time (or } T \text{ if silent)}",
        r"G_{ji} = \exp\!\left(-\frac{(\tau_j - \tau_i)^2}{2\sigma^2}\right), \qquad C_{ji} = a_j\, a_i",
        r"P_b = A_+\, C_b\, G_b \;-\; A_{base}\,(1 - C_b)\, G_b",
        r"\Delta W = \operatorname{clip}\big(\operatorname{mean}_b\, P_b,\; -1,\; 1\big)",
    ],
    "da_ssdp": [
        r"S_b = \operatorname{mean}_j a_{post,j}\cdot \operatorname{mean}_i a_{pre,i} \quad \text{(synchrony of trial } b)",
        r"\text{warm-up fit: } \mu = \overline{S},\; sd = \operatorname{std} S,\; k = -\operatorname{corr}(S, L)",
        r"g_b = \operatorname{clip}\!\left(1 + k\,\frac{S_b - \mu}{sd},\; 0,\; 2\right)",
        r"\Delta W = \operatorname{clip}\big(\operatorname{mean}_b\, g_b\, P_b,\; -1,\; 1\big), \quad P_b \text{ as in SSDP}",
    ],
    "mps": [
        r"A = \operatorname{softmax}_k(Z/\tau_a), \qquad I = \sum_k A_k \odot (S_{in} W_k^\top) + b",
        r"U[t] = \rho\,(U[t-1] - V_{th} S[t-1]) + I[t], \qquad S[t] = [U[t] \ge V_{th}]",
        r"\text{hebb: } W_H \leftarrow \operatorname{clip}\!\Big(\gamma_H W_H + \tfrac{\eta_H}{TB}\sum_{t,b} \phi \otimes S_{in}\Big),"
        r"\; \phi = \tanh(U/V_{th} - \theta_H)",
        r"\text{sbp: } e = y - r, \quad \Delta W^{L}_S = \tfrac{\eta_S}{B}\sum_b e_b \otimes \bar x_b, \quad "
        r"\Delta W^{l}_S = \tfrac{\eta_S}{B}\sum_b (\hat m \odot e_b F_l^\top) \otimes \bar x_b",
        r"\text{bp: } W_{bp}, b, Z \leftarrow \text{Adam}(\nabla L), \quad L = \lVert \bar S_{out} - \text{onehot}(y) \rVert^2",
    ],
    "ip2": [
        r"d[t] = \beta\, d[t-1] + (1-\beta)\, I[t], \quad u[t] = \alpha\, u[t-1] + (1-\alpha)\, d[t] - \theta\, s[t-1],"
        r"\quad s[t] = H(u[t] - \theta)",
        r"\beta = e^{-dt/\tau_d}, \quad \alpha = e^{-dt/\tau_s}, \quad I[t] = x[t] W_{in}^\top + s[t-1] W_{rec}^\top + b",
        r"L = L_{task} + \lambda_h \lvert \overline{u^2} - \sigma_h \rvert + \lambda_I \overline{W_{in}^2} + "
        r"\lambda_R \overline{W_{rec}^2} + \lambda_O \overline{W_{out}^2}",
        r"\text{fast level: } (\ln\tau_d,\ \ln\tau_s,\ \theta)_{m=1} \leftarrow \text{Adam}(\nabla L,\ \eta); "
        r"\quad m = 0 \text{ types stay frozen}",
    ],
}

LESSONS: dict[str, dict[str, str]] = {
    "stdp": {
        "what": "Changes each synapse by the timing of its pre and post spikes: a pre spike shortly before a "
                "post spike strengthens it (LTP), shortly after weakens it (LTD). The traces x and y carry "
                "the memory of recent spikes; the window plot is the change one spike pair causes.",
        "try": "Keep the repeated pattern (a sweep: input 0 fires first, input 19 last in each period) and "
               "raise η₊ and η₋ ten-fold, both to 1e-2. Then switch the input to Poisson, and then set η₋ to "
               "2e-2, twice η₊. Move τ_pre / τ_post and watch the window widen.",
        "expect": "With the pattern, inputs that fire early in the sweep (left columns of ΔW) are potentiated "
                  "and late ones depressed, because the post neurons fire part-way through the sweep. With "
                  "Poisson input there is no repeated timing, yet the weights still grow a little (mean ΔW > 0), "
                  "even at the default η₋ = 1.05e-3 just above η₊: each post spike follows the pre spikes "
                  "that caused it, so pre-before-post pairs outnumber the reverse. Only a clearly larger η₋ "
                  "(2e-2 against 1e-2) makes depression win, and the post rate falls. At the default "
                  "η ≈ 1e-3 the change after a dozen updates is small (mean |ΔW| ≈ 0.02).",
    },
    "rstdp": {
        "what": "The STDP term is not applied directly: it accumulates in an eligibility trace (decay τ_e) "
                "and is applied at the end of the trial times the reward prediction error r − r̄. Here the "
                "post neurons form two groups; group c should fire most for input class c (class c drives "
                "input half c). Reward +1 if it does, −1 if not.",
        "try": "Raise η to 1e-2 and watch ΔW's sign follow the reward. Set the baseline decay r_decay to 1 "
               "(no baseline) and compare. Shorten τ_e: only spike pairs near the end of the window count.",
        "expect": "The reward curve is noisy: with 15 updates of 8 trials the correct share hovers near 50 % "
                  "and the task is not learned here. What you can see is the mechanism: trials rewarded "
                  "above the baseline r̄ push weights along their STDP term, trials below it push them "
                  "the opposite way, and a reward equal to r̄ changes nothing.",
    },
    "ssdp": {
        "what": "Uses only whether each neuron fired in the window and its first-spike time. A pair that "
                "both fired is strengthened by A₊·G, G a Gaussian of their latency difference (symmetric in "
                "time, unlike STDP); every other pair is weakened by A_base·G.",
        "try": "Raise A₊ to 1e-2 and A_base to 5e-3, then compare synchronous bursts with Poisson input. "
               "Widen σ: the kernel flattens and co-firing counts regardless of timing. Increase the "
               "jitter of the bursts.",
        "expect": "With bursts every neuron fires together, synchrony S is 1 and the weights grow. With "
                  "sparse Poisson input many neurons stay silent and latencies differ, so depression wins "
                  "and the weights shrink, which lowers the post rate further. At the code default "
                  "A₊ = 1e-4 the change is about 1e-4 per update: visible only in the ΔW panel.",
    },
    "da_ssdp": {
        "what": "SSDP scaled per trial by a dopamine-like gate g. During a warm-up the rule records each "
                "trial's synchrony S and loss L (weights untouched), then fits k = −corr(S, L) once. "
                "Afterwards trials whose synchrony predicts low loss get g > 1, the others g < 1.",
        "try": "The sandbox has no task loss, so you set how loss relates to synchrony (corr(S, L)). Move it "
               "from −0.8 to +0.8 and to 0. Change the warm-up length. Switch gate_mode to batch.",
        "expect": "k comes out near −corr(S, L): with loss falling as synchrony rises (negative corr) the gate "
                  "rises with S; with positive corr it falls; near 0 the gate is ≈1 and DA-SSDP is plain "
                  "SSDP. The trial-to-trial spread of the input rate is what makes S vary; set it to 0 and "
                  "the fit has nothing to work with.",
    },
    "mps": {
        "what": "Each synapse has one weight per mechanism (bp: surrogate gradient; hebb: Hebbian; sbp: "
                "self-backpropagation; optionally stdp, hetero, homeo). Each neuron mixes them by learned "
                "shares A = softmax(Z/τ_a). Here: 20 inputs → 16 hidden → 2 outputs, two input classes. "
                "This is our reading of the paper (its method section was not available).",
        "try": "Raise lr_z to 1 and watch the shares move away from 1/3. Set η_H to 0.1 or γ_H to 1. Remove "
               "mechanisms (at least one must stay). Use assign_mode hard: every neuron picks one mechanism.",
        "expect": "W_hebb starts at zero, so Hebbian's contribution grows from nothing; bp and sbp start "
                  "with random weights and carry the current at first. With lr_z = 1e-2 the shares barely "
                  "move in 10 updates. Accuracy on the batch stays near chance in so few updates.",
    },
    "ip2": {
        "what": "Intrinsic plasticity: besides the weights, neuron properties adapt by gradient: dendritic "
                "and somatic time constants τ_d, τ_s and threshold θ. Only the types in the mask are "
                "learnable (the slow level of IP² picks the mask; here you pick it). A 16-neuron recurrent "
                "net learns one go/no-go task. Our reading of the paper.",
        "try": "Tick θ and raise η to 0.1: thresholds spread apart. Untick all: the properties are flat "
               "lines. Switch to the point neuron (β = 0: τ_d has no effect).",
        "expect": "Only learnable properties move; frozen ones stay exactly constant. With larger η they "
                  "drift further and some hit the clamps (τ in [5, 2000] ms, θ in [0.05, 2]). The loss falls "
                  "slowly: 12 updates are the start of one task, not learning to learn.",
    },
}
