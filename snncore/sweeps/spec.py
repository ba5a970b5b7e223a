"""A sweep's axes: `--grid NAME=v1,v2` and `--range NAME=lo:hi[:log]` over RunConfig fields and rule
hyperparameters (`RULE.NAME` or the base rule's own NAME), checked point by point before any run.

Grid points are the product of the grids, times seeds seed0 .. seed0+N-1 (seed is then one more axis).
A list-valued field takes a list in brackets (`--grid hidden=[256,128],[512]`, `--grid mask=[],[tau_d]`);
a bare value is a one-element list (`--grid hidden=64,128` sweeps [64] and [128]).
"""
from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass, field

from ..config import ConfigError, RunConfig

SEARCHES = ("grid", "random", "optuna")


class SweepError(ValueError):
    """A bad grid, range or sweep option; the message is the one line printed (exit 2)."""


@dataclass
class Axis:
    name: str                  # as given: "lr", "RULE.NAME", "NAME"
    target: tuple[str, str]    # ("cfg", field) or ("rule", param)
    values: list | None = None          # grid
    lo: float | None = None             # range
    hi: float | None = None
    log: bool = False


@dataclass
class SweepSpec:
    base: dict                           # the base config (RunConfig.to_dict())
    axes: list[Axis] = field(default_factory=list)
    seeds: int = 1
    search: str = "grid"
    trials: int = 0
    configs: list | None = None          # a list of whole configs instead of axes (`--configs FILE`)

    def apply(self, point: dict) -> dict:
        """The config dict of one point ({axis name: value}, "seed" included; or {"config": i})."""
        if self.configs is not None and "config" in point:
            return dict(self.configs[int(point["config"])])
        d = {**self.base, "rule_params": dict(self.base.get("rule_params") or {})}
        for ax in self.axes:
            if ax.name in point:
                kind, key = ax.target
                (d["rule_params"] if kind == "rule" else d)[key] = point[ax.name]
        if "seed" in point:
            d["seed"] = point["seed"]
        return d

    def grid_points(self) -> list[dict]:
        """Every grid point with its seed, in a fixed order (the trial index is the position)."""
        if self.configs is not None:
            return [{"config": i, "seed": c.get("seed", 0)} for i, c in enumerate(self.configs)]
        grids = [a for a in self.axes if a.values is not None]
        seed0 = int(self.base.get("seed", 0))
        out = []
        for combo in itertools.product(*[a.values for a in grids]):
            for s in range(self.seeds):
                p = {a.name: v for a, v in zip(grids, combo)}
                if self.seeds > 1 or "seed" not in p:
                    p["seed"] = seed0 + s if "seed" not in p else p["seed"]
                out.append(p)
        return out

    def to_dict(self) -> dict:
        return {"base": self.base, "axes": [dataclasses.asdict(a) for a in self.axes], "seeds": self.seeds,
                "search": self.search, "trials": self.trials, "configs": self.configs}

    @classmethod
    def from_dict(cls, d: dict) -> "SweepSpec":
        axes = [Axis(**{**a, "target": tuple(a["target"])}) for a in d["axes"]]
        return cls(base=d["base"], axes=axes, seeds=d["seeds"], search=d["search"], trials=d["trials"],
                   configs=d.get("configs"))


def _target(name: str, base: RunConfig) -> tuple[str, str]:
    """Resolve a swept name through RunConfig's fields and the rule registry."""
    from ..rules import get_rule, rule_names
    fields = RunConfig.fields()
    if name in fields and name != "rule_params":
        return ("cfg", name)
    rule_fields = {f.name for f in dataclasses.fields(get_rule(base.rule).Params)}
    if "." in name:
        rule, param = name.rsplit(".", 1)
        if rule not in rule_names() and rule != base.rule:
            raise SweepError(f"{name}: unknown rule {rule!r} (rules: {', '.join(rule_names())})")
        if rule != base.rule:
            raise SweepError(f"{name}: the sweep's rule is {base.rule!r}, not {rule!r} (give --rule {rule})")
        param = param.replace("-", "_")
        if param not in rule_fields:
            raise SweepError(f"{name}: rule {rule!r} has no hyperparameter {param!r} "
                             f"(its hyperparameters: {', '.join(sorted(rule_fields)) or 'none'})")
        return ("rule", param)
    if name.replace("-", "_") in rule_fields:
        return ("rule", name.replace("-", "_"))
    if name.replace("-", "_") in fields:
        return ("cfg", name.replace("-", "_"))
    raise SweepError(f"{name}: not a config field nor a hyperparameter of rule {base.rule!r} "
                     f"(see `python -m snncore train --help`)")


def _split(opt: str, text: str) -> tuple[str, str]:
    name, sep, rest = text.partition("=")
    if not sep or not name.strip():
        raise SweepError(f"{opt} {text!r}: expected NAME=VALUES")
    return name.strip(), rest.strip()


def _check(spec: SweepSpec, opt: str, ax: Axis, value) -> None:
    try:
        RunConfig.from_dict(spec.apply({ax.name: value}))
    except ConfigError as e:
        shown = f"[{','.join(map(str, value))}]" if isinstance(value, list) else value
        raise SweepError(f"{opt} {ax.name}={shown}: {e}") from None


def parse_spec(base: RunConfig, grids: list[str], ranges: list[str], seeds: int = 1, search: str = "grid",
               trials: int = 0) -> SweepSpec:
    """Build the spec and check every point (every grid value, both ends of every range) against
    RunConfig's validation; raises SweepError with one line naming the bad one."""
    if search not in SEARCHES:
        raise SweepError(f"--search {search!r}: choose one of {', '.join(SEARCHES)}")
    if seeds < 1:
        raise SweepError(f"--seeds {seeds}: give 1 or more")
    if trials < 0:
        raise SweepError(f"--trials {trials}: give 1 or more")
    spec = SweepSpec(base=base.to_dict(), seeds=seeds, search=search, trials=trials)
    seen = set()
    for opt, items in (("--grid", grids), ("--range", ranges)):
        for text in items:
            name, rest = _split(opt, text)
            ax = Axis(name=name, target=_target(name, base))
            if ax.target in seen:
                raise SweepError(f"{opt} {name}: swept twice")
            seen.add(ax.target)
            spec.axes.append(ax)             # before the checks: apply() sets only known axes
            if opt == "--grid":
                vals = _grid_values(text, rest)
                if not vals or any(v == "" for v in vals):
                    raise SweepError(f"--grid {text!r}: an empty value list or an empty value (give NAME=v1,v2,...)")
                ax.values = vals
                for v in vals:
                    _check(spec, opt, ax, v)
                # the typed values (as validated), so points compare and print as numbers
                ax.values = [_typed(spec, ax, v) for v in vals]
            else:
                parts = rest.split(":")
                if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
                    raise SweepError(f"--range {text!r}: expected NAME=lo:hi or NAME=lo:hi:log")
                try:
                    lo, hi = float(parts[0]), float(parts[1])
                except ValueError:
                    raise SweepError(f"--range {text!r}: lo and hi must be numbers") from None
                if not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
                    raise SweepError(f"--range {text!r}: need finite lo < hi")
                ax.lo, ax.hi, ax.log = lo, hi, len(parts) == 3
                if ax.log and lo <= 0:
                    raise SweepError(f"--range {text!r}: a log range needs lo > 0")
                if not isinstance(_typed(spec, ax, base_value(spec, ax)), float):
                    raise SweepError(f"--range {name}: {name} is not a real number; use --grid")
                for v in (lo, hi):
                    _check(spec, opt, ax, v)
    if any(a.lo is not None for a in spec.axes) and search == "grid":
        raise SweepError("--range needs --search random or optuna (grid search takes --grid values)")
    if search != "grid" and trials < 1:
        raise SweepError(f"--search {search} needs --trials N (N >= 1)")
    if not spec.axes and seeds == 1 and search == "grid":
        raise SweepError("nothing to sweep: give --grid NAME=v1,v2, --range NAME=lo:hi or --seeds N")
    return spec


def _grid_values(text: str, rest: str) -> list:
    """v1,v2,... with bracketed list values kept whole: "[256],[256,128]" -> [["256"], ["256", "128"]]."""
    vals, depth, cur, bracketed = [], 0, "", False
    for ch in rest + ",":
        if ch == "[":
            if depth or cur.strip():
                raise SweepError(f"--grid {text!r}: a '[' inside a value (lists do not nest)")
            depth, bracketed = 1, True
        elif ch == "]":
            if not depth:
                raise SweepError(f"--grid {text!r}: a ']' without its '['")
            depth = 0
        elif ch == "," and not depth:
            if bracketed:
                inner = cur.strip()
                vals.append([x.strip() for x in inner.split(",") if x.strip()] if inner else [])
            else:
                vals.append(cur.strip())
            cur, bracketed = "", False
        elif bracketed and not depth and ch.strip():
            raise SweepError(f"--grid {text!r}: text after a ']' (separate values with commas)")
        else:
            cur += ch
    if depth:
        raise SweepError(f"--grid {text!r}: a '[' without its ']'")
    return vals if rest.strip() else []


def configs_spec(configs: list) -> SweepSpec:
    """A sweep over whole configs (each validated; its seed its own), e.g. Compare's "repeat with
    N seeds" over several seed groups at once; SweepError names the first bad one."""
    if not isinstance(configs, list) or not configs:
        raise SweepError("--configs: give a non-empty list of configs")
    out = []
    for i, c in enumerate(configs):
        try:
            out.append(RunConfig.from_dict(c).to_dict())
        except ConfigError as e:
            raise SweepError(f"--configs: config {i + 1}: {e}") from None
    return SweepSpec(base=out[0], configs=out)


def load_configs(path: str) -> list:
    """The configs of a `--configs` file: JSON (a list) or TOML (`[[run]]` tables)."""
    import json
    import tomllib
    try:
        text = open(path, "rb").read()
    except OSError as e:
        raise SweepError(f"--configs {path}: {e.strerror or e}") from None
    try:
        data = json.loads(text) if path.endswith(".json") else tomllib.loads(text.decode()).get("run")
    except (ValueError, UnicodeDecodeError) as e:
        raise SweepError(f"--configs {path}: not valid {'JSON' if path.endswith('.json') else 'TOML'}: "
                         f"{' '.join(str(e).split())}") from None
    if not isinstance(data, list):
        raise SweepError(f"--configs {path}: expected a JSON list or TOML [[run]] tables")
    return data


def base_value(spec: SweepSpec, ax: Axis):
    kind, key = ax.target
    if kind == "cfg":
        return spec.base.get(key)
    cfg = RunConfig.from_dict(spec.base)
    return getattr(cfg.rule_object_params(), key)


def _typed(spec: SweepSpec, ax: Axis, value):
    cfg = RunConfig.from_dict(spec.apply({ax.name: value}))
    kind, key = ax.target
    return getattr(cfg, key) if kind == "cfg" else getattr(cfg.rule_object_params(), key)
