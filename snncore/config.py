"""RunConfig: everything that defines a run, as plain data, and its validation.

The app, the command line and config files all go through `RunConfig.from_dict` + `validate`,
so a bad value gets the same message everywhere: the field, what was given, what is allowed.
"""
from __future__ import annotations

import dataclasses
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .rules import DEFAULT_RULE, get_rule, rule_names
from .rules.base import check_params, coerce, param, params_from_dict

DATASETS = ("digits", "synthetic", "l2l_tasks", "mnist", "fashion_mnist", "cifar10", "cifar100",
            "nmnist", "dvs_gesture", "cifar10_dvs", "shd")
EVENT_DATASETS = ("nmnist", "dvs_gesture", "cifar10_dvs", "shd")
MODELS = ("mlp", "mps_mlp", "rsnn", "vgg11", "resnet19")
CONV_MODELS = ("vgg11", "resnet19")          # need an image shape (C, H, W) per step
FLAT_DATASETS = ("synthetic", "l2l_tasks", "shd")   # flat channel vectors: no image shape
AMP = ("off", "bf16", "fp16")
SURROGATES = ("sigmoid", "atan", "piecewise")
ENCODINGS = ("rate", "latency", "direct")


def conv_rules() -> dict[str, str | None]:
    """Rules that run on conv models (registry order) -> the weight layers each changes when its
    targets are empty (Rule.conv_targets: "first", "last two"; None: it changes none itself).
    Local rules act on the Linear layers fc1..fcK, out only."""
    return {n: get_rule(n).conv_targets for n in rule_names() if get_rule(n).conv_targets is not False}


def owned() -> dict[str, dict[str, str]]:
    """Models / datasets that belong to one rule (its requires_model / requires_dataset):
    {"model": {model: rule}, "dataset": {dataset: rule}}."""
    out: dict[str, dict[str, str]] = {"model": {}, "dataset": {}}
    for n in rule_names():
        cls = get_rule(n)
        for what, needs in (("model", cls.requires_model), ("dataset", cls.requires_dataset)):
            if needs:
                out[what].setdefault(needs, n)
    return out


def __getattr__(name: str):
    # CONV_RULES / OWNED as before, asked of the rules on first use (importing every rule at
    # `import snncore.config` would cost each process all the rules' imports)
    if name == "CONV_RULES":
        return conv_rules()
    if name == "OWNED":
        return owned()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class ConfigError(ValueError):
    """A config value is invalid; the message names the field and the allowed values."""


@dataclass
class RunConfig:
    # what to train
    dataset: str = param("digits", choices=DATASETS, help="built-in dataset")
    model: str = param("mlp", choices=MODELS, help="network architecture")
    rule: str = param(DEFAULT_RULE, help="plasticity rule id")
    rule_params: dict = param({}, help="the rule's hyperparameters (defaults from its paper)")
    name: str = param("", help="optional label for the run")
    # training
    epochs: int = param(10, 1, 100_000, help="passes over the training set")
    timesteps: int = param(16, 1, 10_000, help="simulation steps T per sample")
    batch_size: int = param(64, 1, 65_536, help="samples per optimizer step (per process under torchrun)")
    lr: float = param(5e-3, 0.0, 10.0, lo_open=True, help="learning rate")
    optimizer: str = param("adam", choices=("adam", "adamw", "sgd"), help="optimizer")
    weight_decay: float = param(0.0, 0.0, 1.0, help="weight decay")
    schedule: str = param("cosine", choices=("cosine", "constant"), help="learning-rate schedule")
    seed: int = param(0, 0, 2**31 - 1, help="random seed")
    device: str = param("auto", choices=("auto", "cpu", "cuda"), help="where to train")
    amp: str = param("off", choices=AMP, help="mixed precision for forward/backward (torch.autocast): "
                     "bf16 (CPU or GPU) or fp16 (CUDA only, with a gradient scaler)")
    max_steps: int = param(0, 0, 10**9, help="stop after this many optimizer steps (0: no limit)")
    # model
    hidden: list = param([256], help="hidden layer sizes, 1 to 3 layers")
    tau: float = param(2.0, 1.0, 1e4, lo_open=True, help="membrane time constant (steps; > 1, SpikingJelly's LIF needs it)")
    v_threshold: float = param(1.0, 0.0, 100.0, lo_open=True, help="firing threshold")
    v_reset: float = param(0.0, -100.0, 100.0, help="reset potential (hard reset)")
    surrogate: str = param("sigmoid", choices=SURROGATES, help="surrogate gradient")
    surrogate_alpha: float = param(4.0, 0.0, 100.0, lo_open=True, help="surrogate sharpness")
    readout: str = param("mem", choices=("mem", "rate"), help="loss on mean membrane or mean rate")
    width: float = param(1.0, 0.0, 16.0, lo_open=True, help="conv models: channel multiplier "
                         "(1 = the paper's channels; e.g. 0.125 for a quick CPU run)")
    # data
    encoding: str = param("rate", choices=ENCODINGS, help="how static inputs become spikes")
    n_train: int = param(0, 0, 10**8, help="use at most this many training samples (0: all)")
    data_dir: str = param("", help="folder with the dataset files ('': $SNNCORE_DATA or ./data); missing files are downloaded")
    augment: bool = param(False, help="cifar10/cifar100: random crop (pad 4) + horizontal flip of training images")
    frames: int = param(0, 0, 10_000, help="event datasets: frames per sample (0: timesteps)")
    frame_mode: str = param("time", choices=("time", "count"), help="event datasets: frames by equal time bins or equal event counts")
    syn_classes: int = param(4, 2, 100, help="synthetic: number of classes")
    syn_channels: int = param(64, 4, 10_000, help="synthetic: input channels")
    syn_group: int = param(8, 1, 10_000, help="synthetic: channels in each class's synchronous group")
    syn_samples: int = param(1200, 10, 10**7, help="synthetic: training samples (test: a quarter)")
    syn_sync: float = param(0.9, 0.0, 1.0, help="synthetic: chance a group channel joins the volley")
    syn_jitter: float = param(0.0, 0.0, 1000.0, help="synthetic: spike-time jitter (std, steps)")
    syn_noise: float = param(0.02, 0.0, 1.0, help="synthetic: background Poisson rate per step")
    # recording (bounded: bool spikes, neuron subsample, ring buffer of recent batches)
    record_layer: str = param("", help="layer whose raster is recorded ('' = first hidden)")
    record_neurons: int = param(256, 1, 100_000, help="neurons kept in the raster (subsample)")
    record_batches: int = param(4, 1, 1000, help="recent batches kept in the ring buffer")
    record_every: int = param(10, 1, 10**6, help="steps between spike snapshots")
    snapshots_kept: int = param(50, 1, 100_000, help="snapshot files kept on disk per run")
    keep_checkpoints: int = param(2, 1, 10_000, help="full checkpoints (with optimizer state, for resuming) kept "
                                  "per run: the newest N, plus the best by test accuracy")
    weight_history: int = param(50, 0, 100_000, help="weights-only checkpoints kept for Inspect's weight history, "
                                "spread evenly over the run (0: none)")
    log_every: int = param(5, 1, 10**6, help="steps between rows of accuracy, rates, synchrony and rule telemetry (the loss is kept every step)")
    # hyperparameter changes during the run (made live from the app / API, or planned): replayed at
    # their steps by --resume and by this config, so a run with a mid-run change stays reproducible
    changes: list = param([], help="hyperparameter changes during the run, STEP:NAME=VALUE each (NAME: lr "
                          "or a rule hyperparameter), applied before training batch STEP (0-based); "
                          "e.g. 40:a_plus=0.002,80:lr=0.001")

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def fields(cls) -> dict[str, dataclasses.Field]:
        return {f.name: f for f in dataclasses.fields(cls)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "RunConfig":
        """Build and validate; raises ConfigError naming the first bad field."""
        if not isinstance(values, dict):
            raise ConfigError("config: expected a table of fields")
        fields = cls.fields()
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise ConfigError(f"unknown config field {unknown[0]!r} (see `python -m snncore train --help`)")
        kwargs = {}
        for k, v in values.items():
            default = getattr(cls(), k)
            if k == "hidden":
                v = _parse_hidden(v)
            elif k == "rule_params":
                if not isinstance(v, dict):
                    raise ConfigError("rule_params: expected a table of the rule's hyperparameters")
            elif k == "changes":
                v = _change_list(v)
            else:
                try:
                    v = coerce(v, type(default), k)
                except ValueError as e:
                    raise ConfigError(str(e)) from None
            kwargs[k] = v
        # a rule that needs its own model / dataset gets them unless they were given explicitly
        rule = kwargs.get("rule", cls().rule)
        if _rule_loads(rule):
            rcls = get_rule(rule)
            for what, needs in (("model", rcls.requires_model), ("dataset", rcls.requires_dataset)):
                if needs and what not in values:
                    kwargs[what] = needs
        cfg = cls(**kwargs)
        errors = cfg.errors()
        if errors:
            raise ConfigError(errors[0])
        # the given hyperparameters typed and in the rule's order ("1e-3" from a flag and 0.001 from
        # a file are the same run); the ones not given stay out: they keep meaning "the default"
        typed = cfg.rule_object_params()
        cfg.rule_params = {f.name: getattr(typed, f.name) for f in dataclasses.fields(typed)
                           if f.name in cfg.rule_params}
        if cfg.changes:       # each checked against the rule's ranges, typed, in step order
            checked = []
            for step, name, value in (parse_change(c) for c in cfg.changes):
                try:
                    checked.append((step, name, check_change(cfg, name, value)))
                except ConfigError as e:
                    raise ConfigError(f"changes: {step}:{name}={value}: {e}") from None
            cfg.changes = [format_change(*c) for c in sorted(checked, key=lambda c: c[0])]
        return cfg

    @classmethod
    def load(cls, path: str | Path) -> dict:
        """Read a TOML or JSON file into a plain dict (not yet validated)."""
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as e:
            raise ConfigError(f"config file {str(p)!r} cannot be read: {e.strerror}") from None
        try:
            if p.suffix.lower() == ".json":
                data = json.loads(text)
            else:
                import tomllib
                data = tomllib.loads(text)
        except Exception as e:  # noqa: BLE001 -- parser errors vary; the message is what matters
            raise ConfigError(f"config file {str(p)!r} is not valid {'JSON' if p.suffix == '.json' else 'TOML'}: {e}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {str(p)!r}: expected a table of fields")
        return data

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_toml(self) -> str:
        lines, tables = [], []
        for k, v in self.to_dict().items():
            if k == "changes" and not v:
                continue                       # no changes: the file stays as it was before changes existed
            if isinstance(v, dict):
                tables.append((k, v))
            else:
                lines.append(f"{k} = {_toml_value(v)}")
        for k, v in tables:
            lines.append(f"\n[{k}]")
            lines += [f"{kk} = {_toml_value(vv)}" for kk, vv in v.items()]
        return "\n".join(lines) + "\n"

    def command_line(self) -> str:
        """The equivalent `python -m snncore train` command (non-default fields only): every value
        shell-quoted, so `shlex.split` + the parser give this config back (the round-trip tests)."""
        default = RunConfig()
        parts = ["python -m snncore train"]
        for k, v in self.to_dict().items():
            if k == "rule_params":
                parts += [_cli_flag(rule_param_flag(self.rule, kk), vv) for kk, vv in v.items()]
            elif v != getattr(default, k) or k in ("dataset", "model", "rule", "epochs", "seed"):
                parts.append(_cli_flag(f"--{k.replace('_', '-')}", v))
        return " ".join(parts)

    # ---- validation ---------------------------------------------------------------------
    def errors(self) -> list[str]:
        errs = check_params(self)
        try:
            get_rule(self.rule)
        except ValueError as e:
            errs.append(f"rule: {e}")
        else:
            try:
                errs += check_params(self.rule_object_params(), prefix=f"{self.rule}.")
            except ValueError as e:
                errs.append(f"{self.rule}.{e}")
        if _rule_loads(self.rule):
            cls = get_rule(self.rule)
            for what, needs in (("model", cls.requires_model), ("dataset", cls.requires_dataset)):
                got = getattr(self, what)
                if needs and got != needs:
                    errs.append(f"{what}: rule {self.rule!r} needs {what} {needs!r} (got {got!r})")
                elif not needs and got in (own := owned()[what]):
                    errs.append(f"{what}: {got!r} works with rule {own[got]!r} only (got rule {self.rule!r})")
        if not isinstance(self.hidden, list) or not 1 <= len(self.hidden) <= 3:
            errs.append("hidden: give 1 to 3 hidden layer sizes, e.g. 256 or 256,128")
        else:
            for h in self.hidden:
                if not isinstance(h, int) or isinstance(h, bool) or not 1 <= h <= 100_000:
                    errs.append(f"hidden: layer size {h!r} is out of range (allowed: 1 <= size <= 100000)")
                    break
        if self.name and not re.fullmatch(r"[A-Za-z0-9_.\- ]{1,80}", self.name) or self.name in (".", ".."):
            errs.append("name: use up to 80 letters, digits, spaces, '.', '_' or '-' (no path separators)")
        if self.augment and self.dataset not in ("cifar10", "cifar100"):
            errs.append(f"augment: crop+flip augmentation applies to cifar10 and cifar100 only (got dataset {self.dataset!r})")
        if self.frames and self.dataset not in EVENT_DATASETS:
            errs.append(f"frames: applies to the event datasets {', '.join(EVENT_DATASETS)} only (got dataset {self.dataset!r}); use timesteps")
        errs += self._conv_errors() + self._amp_errors()
        if self.dataset == "synthetic" and self.syn_group * 1 > self.syn_channels:
            errs.append(f"syn_group: {self.syn_group} exceeds syn_channels ({self.syn_channels})")
        return errs

    def _conv_errors(self) -> list[str]:
        """Conv models need image data, and local rules may change their Linear layers only."""
        if self.model not in CONV_MODELS:
            if self.width != 1.0:
                return [f"width: applies to the conv models {', '.join(CONV_MODELS)} only (got model {self.model!r})"]
            return []
        errs = []
        if self.dataset in FLAT_DATASETS:
            errs.append(f"model: {self.model!r} needs image data (C, H, W per step); dataset {self.dataset!r} "
                        f"gives flat vectors (use model 'mlp')")
        if not _rule_loads(self.rule) or get_rule(self.rule).requires_model:
            return errs                    # reported above (unknown rule / the rule's own model)
        default = get_rule(self.rule).conv_targets
        if default is False:
            return errs + [f"rule: {self.rule!r} is not supported on model {self.model!r} "
                           f"(allowed: {', '.join(conv_rules())})"]
        if default is None or not isinstance(self.hidden, list):
            return errs
        fcs = [f"fc{i + 1}" for i in range(len(self.hidden))] + ["out"]
        try:
            targets = [str(t) for t in coerce(self.rule_params.get("targets") or [], list, "targets")]
        except ValueError:
            return errs                    # reported above with the rule's parameters
        bad = [t for t in targets if t not in fcs]
        if bad:
            errs.append(f"{self.rule}.targets: {bad[0]!r} is not a fully connected layer of model {self.model!r}; "
                        f"{self.rule} changes Linear layers only (allowed: {', '.join(fcs)})")
        elif not targets and default == "first":
            errs.append(f"{self.rule}.targets: on model {self.model!r} the default target (the first weight "
                        f"layer) is the 3x3 conv stem, which {self.rule} cannot change; set targets to "
                        f"fully connected layers ({', '.join(fcs)}), e.g. targets=fc1")
        return errs

    def _amp_errors(self) -> list[str]:
        if self.amp == "off":
            return []
        if self.model not in ("mlp",) + CONV_MODELS:
            return [f"amp: mixed precision applies to the models {', '.join(('mlp',) + CONV_MODELS)} "
                    f"(got model {self.model!r}); use amp=off"]
        if self.amp == "fp16" and self.device == "cpu":
            return ["amp: 'fp16' needs a CUDA GPU (device is 'cpu'); use amp=bf16 on the CPU, or off"]
        return []

    def rule_object_params(self):
        """The rule's typed Params built from rule_params (raises ValueError on unknown/bad keys)."""
        return params_from_dict(get_rule(self.rule).Params, self.rule_params)


# ---- hyperparameter changes during a run ---------------------------------------------------------
LIVE_RUN_FIELDS = ("lr",)       # run settings a live change may set (the rest shape the run itself)


def changeable(cfg: "RunConfig") -> dict[str, dict]:
    """What a live change may set for this run: name -> {"type", "lo", "hi", "lo_open", "choices",
    "help", "value"}: the learning rate (where the run has an optimizer) and the rule's scalar
    hyperparameters (int, float, bool, a choice; not lists such as targets). A rule may narrow
    this with a class attribute `live_params` (a tuple of names). Own-loop rules: none."""
    rcls = get_rule(cfg.rule)
    if getattr(rcls, "runs_own_loop", False):
        return {}
    out = {}
    for name in LIVE_RUN_FIELDS:
        f = RunConfig.fields()[name]
        out[name] = dict(f.metadata, type=type(getattr(cfg, name)), value=getattr(cfg, name))
    live = getattr(rcls, "live_params", None)
    params = cfg.rule_object_params()
    for f in dataclasses.fields(params):
        v = getattr(params, f.name)
        if isinstance(v, (list, dict)) or (live is not None and f.name not in live) or f.name in out:
            continue
        out[f.name] = dict(f.metadata, type=type(v), value=v)
    return out


def check_change(cfg: "RunConfig", name: str, value) -> Any:
    """The typed value of a live change of `name` to `value`, validated as RunConfig validates
    the same value given at the start (the rule's Params ranges); ConfigError otherwise."""
    if not isinstance(name, str) or not name:
        raise ConfigError("change: give the name of a hyperparameter")
    allowed = changeable(cfg)
    if name not in allowed:
        if getattr(get_rule(cfg.rule), "runs_own_loop", False):
            raise ConfigError(f"{name}: rule {cfg.rule!r} runs its own loop; its hyperparameters cannot be "
                              f"changed while it runs (pause, step and continue work)")
        raise ConfigError(f"{name}: cannot be changed during a run of rule {cfg.rule!r} "
                          f"(allowed: {', '.join(allowed) or 'none'})")
    try:
        value = coerce(value, allowed[name]["type"], name)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    d = {k: v for k, v in cfg.to_dict().items() if k != "changes"}
    if name in LIVE_RUN_FIELDS:
        d[name] = value
    else:
        d["rule_params"] = {**d["rule_params"], name: value}
    try:
        RunConfig.from_dict(d)
    except ConfigError as e:
        raise ConfigError(str(e).replace(f"{cfg.rule}.{name}:", f"{name}:", 1)) from None
    return value


def parse_change(text) -> tuple[int, str, Any]:
    """'STEP:NAME=VALUE' (or a table {step, name, value}) -> (step, name, raw value)."""
    if isinstance(text, dict):
        if set(text) != {"step", "name", "value"}:
            raise ConfigError(f"changes: a change is a table with step, name and value, got {sorted(text)}")
        step, name, value = text["step"], text["name"], text["value"]
    elif isinstance(text, str) and re.fullmatch(r"\s*\d+\s*:\s*[A-Za-z_][A-Za-z0-9_]*\s*=.+", text):
        step, rest = text.split(":", 1)
        name, value = (s.strip() for s in rest.split("=", 1))
    else:
        raise ConfigError(f"changes: expected STEP:NAME=VALUE (e.g. 40:a_plus=0.002), got {text!r}")
    if isinstance(step, bool) or not isinstance(step, (int, str)) or not str(step).strip().isdigit():
        raise ConfigError(f"changes: step must be a whole number >= 0, got {step!r}")
    if not isinstance(name, str):
        raise ConfigError(f"changes: name must be a hyperparameter name, got {name!r}")
    return int(step), name, value


def format_change(step: int, name: str, value) -> str:
    return f"{int(step)}:{name}={_cli_value(value)}"


def _change_list(v) -> list:
    if isinstance(v, (str, dict)):
        v = [v]
    if not isinstance(v, (list, tuple)):
        raise ConfigError(f"changes: expected a list of STEP:NAME=VALUE, got {v!r}")
    out = []
    for c in v:
        if isinstance(c, str) and "," in c:      # the command line's comma-separated form
            out += [s for s in (x.strip() for x in c.split(",")) if s]
        else:
            out.append(c)
    return out


def _cli_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v) if isinstance(v, float) else str(v)


def _rule_loads(rule) -> bool:
    """A rule id or import path that loads (RunConfig.errors names why one does not)."""
    try:
        return isinstance(rule, str) and get_rule(rule) is not None
    except ValueError:
        return False


def _parse_hidden(v) -> list:
    if isinstance(v, int) and not isinstance(v, bool):
        return [v]
    if isinstance(v, str):
        try:
            return [int(s) for s in v.replace(" ", "").split(",") if s != ""]
        except ValueError:
            raise ConfigError(f"hidden: expected sizes like 256 or 256,128, got {v!r}") from None
    if isinstance(v, (list, tuple)):
        out = []
        for s in v:
            try:
                out.append(coerce(s, int, "hidden"))
            except ValueError:
                raise ConfigError(f"hidden: expected whole numbers, got {s!r}") from None
        return out
    raise ConfigError(f"hidden: expected sizes like 256 or 256,128, got {v!r}")


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return repr(v)


# `train`'s own options besides the config fields: no rule hyperparameter may take these flags
CLI_OPTIONS = ("config", "runs_dir", "run_id", "resume", "json", "dry_run", "help")


def rule_param_clashes(name: str) -> bool:
    """True where a rule hyperparameter's name is also a run config field or a `train` option:
    its short flag means that (`--schedule` is the learning-rate schedule), it has `--RULE.NAME` only."""
    return name in RunConfig.fields() or name in CLI_OPTIONS


def rule_param_flag(rule: str, name: str) -> str:
    """The command-line flag of one rule hyperparameter: `--a-plus`, or `--ssdp.schedule` where the
    short form means something else (see rule_param_clashes)."""
    flag = name.replace("_", "-")
    return f"--{rule}.{flag}" if rule_param_clashes(name) else f"--{flag}"


def _cli_flag(flag: str, v) -> str:
    if isinstance(v, list):                    # the parser splits lists at commas; [] is ''
        raw = ",".join(str(x) for x in v)
    elif isinstance(v, bool):
        raw = "true" if v else "false"
    else:
        raw = str(v)
    # argparse reads a value starting with '-' (e.g. -1e-05) as the next flag; with '=' it cannot
    return f"{flag}={shlex.quote(raw)}" if raw.startswith("-") else f"{flag} {shlex.quote(raw)}"
