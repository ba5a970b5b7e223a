"""Rule Lab: one plasticity rule on a tiny in-process population, fast enough for a slider.

Pure and deterministic given the seed; no Streamlit here (the page is app_pages/rule_lab.py, the
speed check bench/bench_rule_lab.py). This package is the generic part: inputs, the LIF
population, the result record and controls (the figures: snncore.viz.lab). Each rule brings its own part,
a ``LabSpec`` in its package's lab.py (``LAB``, found by ``Rule.lab()``): the simulation, which
calls the training engine's own update code (never a copy), its widgets, figures and texts. The
Rule Lab's rules are the registered rules that have one, in registry order.

Set-up for the spike-timing rules: N_pre input neurons (the chosen input) drive N_post LIF
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
pattern repeat with probability min(1, m) (trial-to-trial variability, which is what gives a
synchrony-gated rule different synchrony per sample). Rules with labels have two classes: the
input group of the trial's class (first or second half of the inputs) carries the structure; the
other group fires background only (Poisson: at rate / 4).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from .. import neurons
from ..rules.base import LayerTrace, StepContext, check_params

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


@dataclass(frozen=True)
class LabSpec:
    """A rule's Rule Lab part (its package's lab.py ``LAB``). Sizes should answer in well under
    200 ms on 2 cores.

    simulate(params, pop, inp, extra) -> LabResult: one experiment (``params`` checked, ``extra``
    = the ``extra`` defaults updated by the caller's; runs single-threaded). figures(res, ups) ->
    the rule's own figures by name (``ups`` = 1..updates), beside the shared pre / post / traces /
    weights / dweights. controls: one (Params field, kind, *args) per widget: kind "slider" (lo,
    hi, step), "log" (hi), "choice", "check", "multi". extra_controls: the sandbox's own knobs
    beside the Params, one dict each: name (key in ``extra``), key (widget key lab_<rule>_<key>),
    kind "radio" (options, format) or "slider" (lo, hi, step; hi "updates-1" = one less than the
    updates slider), label, help, section ("rule": under the rule's parameters; "population":
    after the updates slider)."""
    title: str
    simulate: Callable[..., "LabResult"]
    figures: Callable[..., dict]
    pop: PopSpec
    inp: InputSpec
    controls: list
    order: list                                  # the page's figure order (others follow)
    equations: list                              # LaTeX, as the rule's docstrings state them
    lessons: dict                                # "what", "try", "expect": texts for a student
    extra: dict = field(default_factory=dict)
    extra_controls: list = field(default_factory=list)
    min_updates: int = 1
    uses_input: bool = True                      # False: the rule brings its own input
    input_note: str = ""                         # the page's caption when uses_input is False
    caption: Callable[..., str] | None = None    # more of the page's result line (res -> text)
    pre_title: str = "input (pre) spikes · trial 0 of each update"
    pre_heat: tuple | None = None                # (xtitle, ytitle): input drawn as a heatmap
    post_title: str = "post spikes · trial 0 of each update"
    post_windows: bool = True                    # dotted lines between updates in the post raster
    weight_name: str = "W"
    weight_axes: tuple = ("pre neuron i", "post neuron j")
    rank: int = 100                              # place in the page's rule list (ties: registry order)


def rules() -> tuple[str, ...]:
    """The Rule Lab's rules: registered rules with a LabSpec, by LabSpec.rank (ties: registry order)."""
    from ..rules import get_rule, rule_names
    have = [(get_rule(r).lab(), r) for r in rule_names()]
    return tuple(r for s, r in sorted((x for x in have if x[0] is not None), key=lambda x: x[0].rank))


def spec(rule: str) -> LabSpec:
    """The rule's LabSpec (a registered rule, or one given by its import path package.module:Class);
    ValueError (one line) when the rule has none or does not load."""
    from ..rules import get_rule, is_import_path, rule_names
    if is_import_path(rule) and rule not in rule_names():
        try:
            s = get_rule(rule).lab()
        except ValueError as e:
            raise ValueError(f"rule: {e}") from None
        if s is None:
            raise ValueError(f"rule: {rule!r} has no Rule Lab part (a LAB in its package's lab.py, "
                             f"or a lab() classmethod; docs/NEW_RULE.md)")
        return s
    s = get_rule(rule).lab() if rule in rule_names() else None
    if s is None:
        raise ValueError(f"rule: {rule!r} is not allowed (choose from {', '.join(rules())}, "
                         f"or give your own as package.module:Class)")
    return s


# the per-rule tables the tests and bench read, built from the specs at each access (PEP 562),
# so a rule registered later is in them
_TABLES = {"RULES": None, "TITLES": "title", "DEFAULT_POP": "pop", "DEFAULT_INPUT": "inp",
           "LAB_EXTRA": "extra", "EQUATIONS": "equations", "LESSONS": "lessons", "CONTROLS": "controls",
           "ORDER": "order"}


def __getattr__(name: str):
    if name not in _TABLES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name == "RULES":
        return rules()
    return {r: getattr(spec(r), _TABLES[name]) for r in rules()}


def default_params(rule: str):
    """The rule's Params dataclass with the paper's defaults."""
    return _params_class(rule)()


def _params_class(rule: str):
    spec(rule)
    from ..rules import get_rule
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
    tr = neurons.lif_sequence(np.asarray(current, np.float32),
                              neurons.LIFParams(tau=float(tau_m), v_th=v_th, v_reset=0.0, decay_input=False))
    return tr.spikes, tr.h


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

    @property
    def figures(self) -> dict:
        """The Rule Lab page's figures of this result by name, as plotly Figures."""
        import plotly.graph_objects as go
        from ..viz.lab import figures as _figs
        return {k: go.Figure(v) for k, v in _figs(self).items()}


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
             extra: dict | None = None, **overrides) -> LabResult:
    """Run one sandbox experiment. ``params``: the rule's Params (None = paper defaults) or a dict
    of overrides; ``overrides``: hyperparameters by name (``simulate(rule, eta_plus=1e-2)``);
    ``pop`` / ``inp`` default to the rule's LabSpec; ``extra``: the sandbox's own knobs
    (LabSpec.extra). Deterministic given pop.seed. Bad values raise ValueError with a one-line
    message; ``res.figures`` are the page's figures."""
    s = spec(rule)
    if overrides:
        names = [f.name for f in dataclasses.fields(_params_class(rule))]
        bad = sorted(set(overrides) - set(names))
        if bad:
            raise ValueError(f"{bad[0]}: not a hyperparameter of rule {rule!r} (allowed: {', '.join(names)})")
        if params is not None and not isinstance(params, dict):
            params = dataclasses.asdict(params)
        params = {**(params or {}), **overrides}
    if params is None or isinstance(params, dict):
        params = make_params(rule, params)
    else:
        errors = check_params(params)
        if errors:
            raise ValueError("; ".join(errors))
    pop = pop if pop is not None else dataclasses.replace(s.pop)
    inp = inp if inp is not None else dataclasses.replace(s.inp)
    ex = dict(s.extra)
    ex.update(extra or {})
    _check_pop(pop)
    if s.uses_input:
        _check_input(inp)
    from ..threads import torch_threads
    t0 = time.perf_counter()
    # tiny tensors: one thread (a 2-thread pool on a busy 2-core box is far slower), and no torch
    # RNG touched (numpy Generator from the seed), so results depend on the seed alone
    with torch_threads(1):
        res = s.simulate(params, pop, inp, ex)
    res.rule = rule
    res.seconds = time.perf_counter() - t0
    return res


def _population_step(W: torch.Tensor, pre: np.ndarray, pop: PopSpec):
    """Post spikes and membrane of the LIF population for input spikes pre [T, B, N_pre]."""
    current = pre @ W.numpy().T                                                    # [T, B, N_post]
    return lif_run(current, pop.tau_m, pop.v_th)


def _busiest(s: np.ndarray, n: int) -> list[int]:
    """Indices of the n neurons with most spikes in s [T, N] (ties: lower index), sorted."""
    c = s.sum(0)
    return sorted(np.argsort(-c, kind="stable")[:n].tolist())


# ----------------------------------------------------------------------------- controls
def _log_grid(default: float, lo: float = 0.0, hi: float = 1.0) -> list[float]:
    """0 and 1-2-5 steps per decade from 1e-6 to 1, plus the default, within [lo, hi]."""
    grid = [0.0] + [m * 10.0 ** e for e in range(-6, 1) for m in (1.0, 2.0, 5.0)]
    vals = sorted({round(v, 12) for v in grid if lo <= v <= hi} | {float(default)})
    return vals


def control_specs(rule: str) -> list[dict]:
    """One dict per widget of the rule: name, kind, default (the Params default), help, and
    options (choice / multi / log) or lo, hi, step (slider)."""
    cls = _params_class(rule)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    d = cls()
    out = []
    for name, kind, *args in spec(rule).controls:
        f = fields[name]
        m = f.metadata
        item = {"name": name, "kind": kind, "default": getattr(d, name), "help": m.get("help") or ""}
        if kind == "slider":
            item.update(lo=args[0], hi=args[1], step=args[2])
        elif kind == "log":
            item["options"] = _log_grid(getattr(d, name), 0.0, args[0])
        elif kind in ("choice", "multi"):
            item["options"] = list(m["choices"])
        out.append(item)
    return out


# the figures (generic helpers and the page's set), importable from here as before
from ..viz.lab import _add_points, _heat, _layout, _lines, _png, figures, raster, to_plotly_json  # noqa: E402,F401
