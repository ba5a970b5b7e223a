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
    rule: str | None = None    # a rule hyperparameter named RULE.NAME: the rule it belongs to (None: any
                               # point's rule that has it)


@dataclass
class SweepSpec:
    base: dict                           # the base config (RunConfig.to_dict())
    axes: list[Axis] = field(default_factory=list)
    seeds: int = 1
    search: str = "grid"
    trials: int = 0
    configs: list | None = None          # a list of whole configs instead of axes (`--configs FILE`)

    def rule_axis(self) -> Axis | None:
        return next((a for a in self.axes if a.target == ("cfg", "rule")), None)

    def rule_of(self, point: dict) -> str:
        """The rule a point trains with: its swept `rule`, else the base's."""
        ax = self.rule_axis()
        return point[ax.name] if ax is not None and ax.name in point else self.base.get("rule")

    def applies(self, ax: Axis, rule: str) -> bool:
        """Whether a rule hyperparameter axis sets anything at a point of this rule: RULE.NAME only
        at RULE's points; a bare NAME wherever the point's rule has that hyperparameter. Config
        fields apply everywhere."""
        if ax.target[0] != "rule":
            return True
        if ax.rule is not None:
            return ax.rule == rule
        from ..rules import get_rule
        try:
            return ax.target[1] in {f.name for f in dataclasses.fields(get_rule(rule).Params)}
        except (KeyError, ValueError):
            return False

    def normalize(self, point: dict) -> dict:
        """The point with None for each rule hyperparameter its rule does not have (a sweep over
        rules: bptt's points have no ssdp.a_plus), so such points print, group and dedupe alike."""
        rule = self.rule_of(point)
        return {k: (None if (ax := self._axis(k)) is not None and not self.applies(ax, rule) else v)
                for k, v in point.items()}

    def _axis(self, name: str) -> Axis | None:
        return next((a for a in self.axes if a.name == name), None)

    def apply(self, point: dict) -> dict:
        """The config dict of one point ({axis name: value}, "seed" included; or {"config": i}).
        A point whose swept rule is not the base's starts from that rule's own defaults (the
        base's rule_params are the base rule's); a rule hyperparameter its rule does not have is
        not set (it is None in the point)."""
        if self.configs is not None and "config" in point:
            return dict(self.configs[int(point["config"])])
        rule = self.rule_of(point)
        same = rule == self.base.get("rule")
        d = {**self.base, "rule": rule, "rule_params": dict(self.base.get("rule_params") or {}) if same else {}}
        if not same:
            d.update(_rule_setting(rule, d))
        for ax in self.axes:
            if ax.name in point and point[ax.name] is not None and self.applies(ax, rule):
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
        out, seen = [], set()
        for combo in itertools.product(*[a.values for a in grids]):
            for s in range(self.seeds):
                p = self.normalize({a.name: v for a, v in zip(grids, combo)})
                if self.seeds > 1 or "seed" not in p:
                    p["seed"] = seed0 + s if "seed" not in p else p["seed"]
                key = repr(sorted(p.items()))
                if key not in seen:            # a rule without a swept hyperparameter: its point once
                    seen.add(key)
                    out.append(p)
        return out

    def to_dict(self) -> dict:
        return {"base": self.base, "axes": [dataclasses.asdict(a) for a in self.axes], "seeds": self.seeds,
                "search": self.search, "trials": self.trials, "configs": self.configs}

    @classmethod
    def from_dict(cls, d: dict) -> "SweepSpec":
        axes = [Axis(**{**a, "target": tuple(a["target"])}) for a in d["axes"]]   # older sweeps: no "rule"
        return cls(base=d["base"], axes=axes, seeds=d["seeds"], search=d["search"], trials=d["trials"],
                   configs=d.get("configs"))


def _rule_setting(rule: str, d: dict) -> dict:
    """What a point of another rule than the base's trains on, as Train sets it: the model and
    dataset the rule needs (mps: its mps_mlp), and where the base's model or dataset belongs to
    another rule, the default one (a swept model or dataset still wins: axes apply after)."""
    from ..config import owned
    from ..rules import get_rule
    try:
        cls = get_rule(rule)
    except (KeyError, ValueError):
        return {}                      # an unknown rule: RunConfig's check names it
    out, own, default = {}, owned(), RunConfig()
    for what, needs in (("model", cls.requires_model), ("dataset", cls.requires_dataset)):
        if needs:
            out[what] = needs
        elif own[what].get(d.get(what)) not in (None, rule):
            out[what] = getattr(default, what)
    return out


def _params_of(rule: str) -> set[str]:
    from ..rules import get_rule
    return {f.name for f in dataclasses.fields(get_rule(rule).Params)}


def _target(name: str, base: RunConfig, rules: list[str] | None = None) -> tuple[tuple[str, str], str | None]:
    """Resolve a swept name through RunConfig's fields and the rule registry: (target, the rule a
    RULE.NAME belongs to). rules: the rules the sweep trains (a swept `rule`'s values, else the
    base's)."""
    from ..rules import rule_names
    rules = rules or [base.rule]
    fields = RunConfig.fields()
    if name in fields and name != "rule_params":
        return ("cfg", name), None
    if "." in name:
        rule, param = name.rsplit(".", 1)
        if rule not in rule_names() and rule not in rules:
            raise SweepError(f"{name}: unknown rule {rule!r} (rules: {', '.join(rule_names())})")
        if rule not in rules:
            shown = " or ".join(repr(r) for r in rules)
            raise SweepError(f"{name}: the sweep trains rule {shown}, not {rule!r} "
                             f"(give --rule {rule}, or sweep it: --grid rule={','.join([*rules, rule])})")
        param = param.replace("-", "_")
        own = _params_of(rule)
        if param not in own:
            raise SweepError(f"{name}: rule {rule!r} has no hyperparameter {param!r} "
                             f"(its hyperparameters: {', '.join(sorted(own)) or 'none'})")
        return ("rule", param), (rule if rule != base.rule or len(rules) > 1 else None)
    bare = name.replace("-", "_")
    if any(bare in _params_of(r) for r in rules):
        return ("rule", bare), None
    if bare in fields:
        return ("cfg", bare), None
    shown = " or ".join(repr(r) for r in rules)
    raise SweepError(f"{name}: not a config field nor a hyperparameter of rule {shown} "
                     f"(see `python -m snncore train --help`)")


def _split(opt: str, text: str) -> tuple[str, str]:
    name, sep, rest = text.partition("=")
    if not sep or not name.strip():
        raise SweepError(f"{opt} {text!r}: expected NAME=VALUES")
    return name.strip(), rest.strip()


def _check(spec: SweepSpec, opt: str, ax: Axis, value) -> None:
    """The value at every swept rule it applies to (a rule hyperparameter: its rule's points)."""
    rax = spec.rule_axis()
    rules = rax.values if rax is not None and rax is not ax and rax.values else [None]
    for rule in rules:
        point = {ax.name: value} if rule is None else {rax.name: rule, ax.name: value}
        if rule is not None and not spec.applies(ax, rule):
            continue
        try:
            RunConfig.from_dict(spec.apply(point))
        except ConfigError as e:
            shown = f"[{','.join(map(str, value))}]" if isinstance(value, list) else value
            at = f" (rule {rule})" if rule is not None and len(rules) > 1 and ax.target[0] == "rule" else ""
            raise SweepError(f"{opt} {ax.name}={shown}{at}: {e}") from None


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
    # a swept rule first, wherever it was given: the other names resolve against its rules
    given = [(opt, t) for opt, items in (("--grid", grids), ("--range", ranges)) for t in items]
    ordered = sorted(given, key=lambda ot: _split(*ot)[0] != "rule")   # the table keeps the given order
    rules = None
    for opt, text in ordered:
        name, rest = _split(opt, text)
        target, owner = _target(name, base, rules)
        ax = Axis(name=name, target=target, rule=owner)
        # ssdp.a_plus beside da_ssdp.a_plus is two axes; a_plus beside ssdp.a_plus is one twice
        if (target, owner) in seen or (owner is None and any(t == target for t, _ in seen)) \
                or (target, None) in seen:
            raise SweepError(f"{opt} {name}: swept twice")
        seen.add((target, owner))
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
            if ax.target == ("cfg", "rule"):
                rules = list(dict.fromkeys(ax.values))
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
    rax = spec.rule_axis()
    for ax in spec.axes:
        if ax.target[0] == "rule" and rax is not None and not any(spec.applies(ax, r) for r in rax.values or []):
            raise SweepError(f"{ax.name}: none of the swept rules ({', '.join(rax.values or [])}) has it")
    spec.axes.sort(key=lambda a: next(i for i, (o, t) in enumerate(given) if _split(o, t)[0] == a.name))
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


def _at(spec: SweepSpec, ax: Axis, value) -> dict:
    """A point setting `value` on `ax`, at a swept rule the axis applies to (the base's first)."""
    rax = spec.rule_axis()
    if ax.target[0] != "rule" or rax is None or rax is ax or spec.applies(ax, spec.base.get("rule")):
        return {ax.name: value}
    rule = next((r for r in rax.values or [] if spec.applies(ax, r)), None)
    return {ax.name: value} if rule is None else {rax.name: rule, ax.name: value}


def base_value(spec: SweepSpec, ax: Axis):
    kind, key = ax.target
    if kind == "cfg":
        return spec.base.get(key)
    cfg = RunConfig.from_dict(spec.apply(_at(spec, ax, None)))
    return getattr(cfg.rule_object_params(), key)


def _typed(spec: SweepSpec, ax: Axis, value):
    cfg = RunConfig.from_dict(spec.apply(_at(spec, ax, value)))
    kind, key = ax.target
    return getattr(cfg, key) if kind == "cfg" else getattr(cfg.rule_object_params(), key)
