"""The one protocol every plasticity rule follows.

The Trainer calls the hooks in this fixed order for every training batch:

    reset states -> forward (model keeps per-layer spikes) -> loss
      -> rule.after_forward(ctx)
      -> loss.backward() -> rule.after_backward(ctx)
      -> optimizer.step() -> rule.after_step(ctx)      # SSDP-style post-optimiser updates go here
      -> telemetry = rule.telemetry()                   # scalars the app plots live
    and rule.on_epoch_end(epoch) after each epoch.

A rule is one module: its equations in the docstring, a ``Params`` dataclass with the paper's
defaults (fields declared with :func:`param`, so validation and the command line know their
ranges), pure update functions tests can call with hand-made tensors, and a thin ``Rule`` subclass.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import torch


def param(default: Any, lo: float | None = None, hi: float | None = None, help: str = "",
          choices: tuple | None = None, lo_open: bool = False):
    """A hyperparameter field with its allowed range (inclusive unless lo_open) and help text."""
    meta = {"lo": lo, "hi": hi, "help": help, "choices": choices, "lo_open": lo_open}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class NoParams:
    """A rule without hyperparameters."""


@dataclass
class LayerTrace:
    """What one weight layer saw in the last forward pass (time first).

    weight: the layer's weight, [N_post, N_pre] (a Linear) -- the tensor local rules change.
    pre:    spikes entering the layer, float 0/1, [T, B, N_pre].
    post:   spikes of the neurons it drives, float 0/1, [T, B, N_post]; for a non-spiking
            read-out post[t] = (logit[t] > 0) (SSDP's convention).
    v:      membrane potential (or logits for the read-out), [T, B, N_post], when recorded.
    """
    weight: torch.nn.Parameter
    pre: torch.Tensor
    post: torch.Tensor
    v: torch.Tensor | None = None
    spiking: bool = True


@dataclass
class StepContext:
    step: int                      # global optimizer step, 0-based
    epoch: int
    total_steps: int               # planned optimizer steps of the whole run
    model: torch.nn.Module
    x: torch.Tensor                # input spikes [T, B, ...]
    y: torch.Tensor                # labels [B]
    out: torch.Tensor              # model output over time [T, B, C]
    loss: torch.Tensor             # scalar training loss of this batch
    layers: dict[str, LayerTrace]  # ordered input -> output
    optimizer: torch.optim.Optimizer | None = None
    extras: dict[str, Any] = field(default_factory=dict)


class Rule:
    """Base class: the surrogate-gradient baseline does nothing at any hook."""

    name: str = "base"
    Params: type = NoParams
    summary: str = ""              # one line for the app
    uses_gradient: bool = True     # False: the Trainer skips backward/optimizer for this rule
    requires_model: str | None = None    # a model id this rule only works with (e.g. "mps_mlp")
    requires_dataset: str | None = None  # a dataset id this rule only works with (e.g. "l2l_tasks")
    runs_own_loop: bool = False          # True: the Trainer calls rule.run_loop(sink) instead of its loop
    # on the conv models (vgg11, resnet19): False = not supported; None = runs there without
    # changing layers itself; "first" / "last two" = the weight layers it changes when its
    # `targets` hyperparameter is empty (local rules may change the Linear layers only)
    conv_targets: str | None | bool = False
    checkpoint_unit: str = "epoch"       # what one checkpoint of a run stands for ("task": one per task)
    legacy_loop_keys: tuple[str, ...] = ()   # own-loop rules: older checkpoint keys of the loop state
    baseline: bool = False               # True: the gradient-only reference the benchmarks compare with

    # ---- what the rest of the system reads from a rule (no rule id is named outside its module).
    # A rule package keeps the larger parts in submodules, imported on first use: lab.py (LAB: its
    # Rule Lab simulation, controls, figures, texts), panels.py (panels: its Train/Inspect panels
    # from arrays/telemetry), bench.py (CASES: its benchmark cases). A one-module rule overrides
    # the classmethods instead.
    @classmethod
    def lab(cls):
        """The rule's Rule Lab spec, or None when it has none."""
        return rule_part(cls, "lab", "LAB")

    @classmethod
    def panel_builder(cls):
        """The function that builds the rule's panels, or None (the app then shows its telemetry)."""
        return rule_part(cls, "panels", "panels")

    @classmethod
    def panel_flag(cls, name: str) -> bool:
        """A module-level flag of the rule's panels.py (NEEDS_SNAPSHOT, RECONSTRUCTED; see
        snncore.viz.panels); False when absent."""
        return bool(rule_part(cls, "panels", name))

    @classmethod
    def bench_cases(cls) -> list:
        """The rule's benchmark cases (empty: none)."""
        return list(rule_part(cls, "bench", "CASES") or [])

    # Inspect: a rule whose checkpoint keeps its network outside state["model"] (or whose weights
    # need the rule's own network to read) says so in its package's inspect.py.
    @classmethod
    def inspect_supports(cls, cfg, state: dict | None) -> bool | None:
        """True: Inspect re-runs this checkpoint through inspect_record; None: the generic path
        decides. Raises snncore.inspect.InspectError when the rule knows the checkpoint cannot be re-run."""
        fn = rule_part(cls, "inspect", "supports")
        return fn(cfg, state) if fn is not None else None

    @classmethod
    def inspect_record(cls, state: dict, cfg, n_samples: int, seed: int):
        """snncore.inspect.Recording of the checkpoint's network run on n_samples inputs, or None (the
        generic path rebuilds the model from state["model"])."""
        fn = rule_part(cls, "inspect", "record")
        return fn(state, cfg, n_samples, seed) if fn is not None else None

    @classmethod
    def checkpoint_weights(cls, state: dict) -> dict | None:
        """Layer name -> weight tensor the network uses, from a checkpoint, or None (the generic
        path reads state["model"] by its key layout)."""
        fn = rule_part(cls, "inspect", "weights")
        return fn(state) if fn is not None else None

    def __init__(self, params=None, model: torch.nn.Module | None = None, *,
                 total_steps: int = 1, device: torch.device | str = "cpu"):
        self.params = params if params is not None else self.Params()
        self.model = model
        self.total_steps = max(1, int(total_steps))
        self.device = torch.device(device)

    def after_forward(self, ctx: StepContext) -> None:
        pass

    def after_backward(self, ctx: StepContext) -> None:
        pass

    def after_step(self, ctx: StepContext) -> None:
        pass

    def on_epoch_end(self, epoch: int) -> None:
        pass

    def telemetry(self) -> dict[str, float]:
        """Flat scalars for this step, keys like 'sync/fc2' or 'dw/out' (plotted live, grouped by
        the part before '/')."""
        return {}

    def arrays(self) -> dict:
        """Non-scalar state the app draws for this rule (weight histograms, assignment maps, gate
        histograms, ...): name -> numpy array. Called at each spike snapshot; saved in the same
        .npz under 'rule/<name>'. Keep it small (it is written every record_every steps)."""
        return {}

    def planned_units(self) -> int:
        """Own-loop rules: the checkpoint units the run plans (its progress bar's total)."""
        return 1

    def run_loop(self, sink: "LoopSink", seed: int, resume: dict | None = None) -> dict:
        """Own-loop rules (runs_own_loop): the whole run, reporting through `sink` (metrics,
        telemetry rows, snapshots, checkpoints, progress, stop requests). `resume` is the loop
        state of the checkpoint being continued (what the rule gave sink.checkpoint). Returns the
        run summary's own fields, plus "stopped": True when it ended on a stop request."""
        raise NotImplementedError(f"rule {self.name!r} does not run its own loop")

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class LoopSink:
    """What an own-loop rule reports to (the Trainer's writer; see snncore.train.RunSink).
    `step` is the global update count the rows are logged at; `units` counts checkpoint units
    done (rule.checkpoint_unit). Every method is cheap; metric rows are buffered."""

    step: int = 0
    units: int = 0

    log_every: int = 1              # updates between telemetry rows (the run's log_every)

    def metrics(self, values: dict, step: int | None = None) -> None:
        """Buffer metric rows {key: value} at `step` (default: the current update)."""

    def telemetry(self, values: dict, step: int | None = None) -> None:
        """Buffer one telemetry row {key: value} at `step` (default: the current update)."""

    def snapshot(self, arrays: dict, step: int | None = None) -> None:
        """Save arrays for the app (name -> numpy array) as this step's snapshot."""

    def checkpoint(self, loop_state: dict) -> None:
        """Write every buffered row, then a checkpoint holding `loop_state` (plain data)."""

    def advance(self, steps: int = 0, units: int = 0) -> bool:
        """Count updates / units done; returns True when a stop was requested."""
        return False

    def should_stop(self) -> bool:
        return False


def rule_part(cls: type, submodule: str, attr: str):
    """`attr` of the submodule `submodule` of the package that defines rule class `cls`, or None
    when that package has no such submodule (or the rule is a plain module)."""
    import importlib
    import sys

    pkg = sys.modules.get(cls.__module__)
    if pkg is None or not hasattr(pkg, "__path__"):          # a plain module: nothing to look up
        return None
    name = f"{cls.__module__}.{submodule}"
    try:
        mod = importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name == name:
            return None
        raise
    return getattr(mod, attr, None)


def params_from_dict(cls: type, values: dict | None) -> Any:
    """Build a Params dataclass from a (possibly string-valued) dict; unknown keys are errors."""
    values = dict(values or {})
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(names))
    if unknown:
        allowed = ", ".join(sorted(names)) or "none"
        raise ValueError(f"unknown hyperparameter {unknown[0]!r} for this rule (allowed: {allowed})")
    kwargs = {}
    for k, v in values.items():
        kwargs[k] = coerce(v, type(getattr(cls(), k)), k)
    return cls(**kwargs)


def coerce(value: Any, typ: type, name: str) -> Any:
    """Convert a command-line/TOML value to the field's type, with a clear message."""
    try:
        if typ is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            if isinstance(value, (bool, int)) and value in (0, 1):
                return bool(value)
            raise ValueError
        if typ is int:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float):
                if not value.is_integer():
                    raise ValueError
                return int(value)
            return int(value)
        if typ is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if typ is list:
            if isinstance(value, str):
                return [s.strip() for s in value.split(",") if s.strip()]
            return list(value)
        if typ is str:
            if not isinstance(value, str):
                raise ValueError
            return value
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected {typ.__name__}, got {value!r}") from None
    return value


def check_params(obj: Any, prefix: str = "") -> list[str]:
    """Range/choice errors of a Params dataclass, each naming the field and what is allowed."""
    errors = []
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        m = f.metadata
        name = prefix + f.name
        if m.get("choices") is not None:
            if isinstance(v, list):
                bad = [x for x in v if x not in m["choices"]]
                if bad:
                    errors.append(f"{name}: {bad[0]!r} is not allowed (choose from {', '.join(map(str, m['choices']))})")
            elif v not in m["choices"]:
                errors.append(f"{name}: {v!r} is not allowed (choose from {', '.join(map(str, m['choices']))})")
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        lo, hi = m.get("lo"), m.get("hi")
        if isinstance(v, float) and not math.isfinite(v):
            errors.append(f"{name}: must be a finite number{_range(lo, hi, m.get('lo_open'))}, got {v}")
            continue
        if (lo is not None and (v < lo or (m.get("lo_open") and v <= lo))) or (hi is not None and v > hi):
            errors.append(f"{name}: {v} is out of range{_range(lo, hi, m.get('lo_open'))}")
    return errors


def _range(lo, hi, lo_open=False) -> str:
    if lo is None and hi is None:
        return ""
    if hi is None:
        return f" (allowed: {'>' if lo_open else '>='} {lo})"
    if lo is None:
        return f" (allowed: <= {hi})"
    return f" (allowed: {lo} {'<' if lo_open else '<='} value <= {hi})"
