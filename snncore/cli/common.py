"""Written once for every subcommand: the one-line-error parser, `fail`, strict JSON, and the run
config flags (every RunConfig field, and each rule's hyperparameters from its Params dataclass).

A rule hyperparameter is a flag twice: --NAME (shared by every rule that has it) and --RULE.NAME;
when NAME is also a run setting (config.rule_param_clashes), --NAME is the run setting and only
--RULE.NAME reaches the rule.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints usage + message by default)
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


def fail(message: str, code: int = 2):
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def rule_param_fields(extra: str | None = None) -> dict[str, dict[str, type]]:
    """rule -> {param name: type} for every registered rule, and `extra` (an import-path rule
    given with --rule or in --config) when it loads (when not, validation names why)."""
    from ..rules import get_rule, is_import_path, rule_names
    out = {}
    names = rule_names()
    if extra and is_import_path(extra) and extra not in names:
        try:
            get_rule(extra)
            names.append(extra)
        except ValueError:
            pass
    for name in names:
        cls = get_rule(name).Params
        out[name] = {f.name: type(getattr(cls(), f.name)) for f in dataclasses.fields(cls)}
    return out


def field_help(name: str) -> str:
    """What a run config field or train option is, in a few words ('learning-rate schedule')."""
    from ..config import RunConfig
    f = RunConfig.fields().get(name)
    return (f.metadata.get("help") if f is not None else "") or f"--{name.replace('_', '-')} option"


def rule_in_argv(argv) -> str | None:
    """The rule named by --rule (or in the --config file) of a train command line, before parsing."""
    argv, rule, cfg = list(argv or []), None, None
    for i, a in enumerate(argv):
        for flag in ("--rule", "--config"):
            if a == flag and i + 1 < len(argv):
                val = argv[i + 1]
            elif a.startswith(flag + "="):
                val = a[len(flag) + 1:]
            else:
                continue
            rule, cfg = (val, cfg) if flag == "--rule" else (rule, val)
    if rule is None and cfg:
        try:
            from ..config import RunConfig
            rule = RunConfig.load(cfg).get("rule")
        except Exception:  # noqa: BLE001 -- a bad file is reported by the parse that follows
            rule = None
    return rule if isinstance(rule, str) else None


def config_from_args(args, note: bool = True) -> "RunConfig":
    from ..config import ConfigError, RunConfig
    values = RunConfig.load(args.config) if args.config else {}
    values.pop("lesson", None)          # a lesson preset file is a config plus its [lesson] text
    if values.get("rule_params") is not None and not isinstance(values.get("rule_params"), dict):
        raise ConfigError("rule_params: expected a table of the rule's hyperparameters")
    rule_params = dict(values.get("rule_params") or {})
    for k, v in vars(args).items():
        if v is None:
            continue
        if k.startswith("cfg:"):
            values[k[4:]] = v
    rule = values.get("rule", RunConfig().rule)
    fields = rule_param_fields(rule if isinstance(rule, str) else None)
    for k, v in vars(args).items():
        if v is None:
            continue
        if k.startswith("rp:"):
            name = k[3:]
            if rule not in fields:
                continue  # unknown rule: validation below names it
            if name not in fields[rule]:
                allowed = ", ".join("--" + n.replace("_", "-") for n in fields[rule]) or "none"
                raise ConfigError(f"--{name.replace('_', '-')} is not a hyperparameter of rule {rule!r} "
                                  f"(its hyperparameters: {allowed})")
            rule_params[name] = v
        elif k.startswith("rule:"):
            r, name = k.split(":", 1)[1].rsplit(":", 1)      # an import-path rule holds ':'
            if r != rule:
                raise ConfigError(f"--{r}.{name.replace('_', '-')} given but the rule is {rule!r}")
            rule_params[name] = v
    values["rule_params"] = rule_params
    cfg = RunConfig.from_dict(values)
    if note:
        note_clashing_flags(args, cfg, fields.get(rule, {}))
    return cfg


def note_clashing_flags(args, cfg, rule_fields) -> None:
    """`--schedule constant --rule ssdp` sets the learning-rate schedule, not SSDP's: say so (on
    stderr, after validation, so a bad config still gets its one error line alone)."""
    given = vars(args)
    for name in rule_fields:
        if given.get(f"cfg:{name}") is not None and given.get(f"rule:{cfg.rule}:{name}") is None:
            flag = name.replace("_", "-")
            print(f"note: --{flag} set the run's {field_help(name)}; rule {cfg.rule}'s own {name} is "
                  f"--{cfg.rule}.{flag}", file=sys.stderr)


def finite(obj):
    """NaN/inf -> null, so the JSON line is strict JSON."""
    if isinstance(obj, float):
        return obj if obj == obj and abs(obj) != float("inf") else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def print_json(obj) -> None:
    """One line of strict JSON on stdout (NaN/inf as null)."""
    print(json.dumps(finite(obj)))


def clash_epilog(argv) -> str:
    """The train help's note on rule hyperparameters named like a run setting (argv: for an
    import-path rule named by --rule or --config, whose Params are read too)."""
    from ..config import rule_param_clashes
    clashes = [(rule, name) for rule, fields in rule_param_fields(rule_in_argv(argv)).items() for name in fields
               if rule_param_clashes(name)]
    return ("A rule hyperparameter named like a run setting has only its --RULE.NAME flag; "
            "the short flag is the run setting: "
            + "; ".join(f"--{n.replace('_', '-')} is the run's {field_help(n)}, --{r}.{n.replace('_', '-')} "
                        f"rule {r}'s {n}" for r, n in clashes)
            + ". Given such a short flag with that rule, a note on stderr says so.")


def add_config_flags(p: argparse.ArgumentParser, argv) -> None:
    """--FIELD for every RunConfig field (dest "cfg:FIELD") and the rule hyperparameter group
    (dest "rp:NAME" for --NAME, "rule:RULE:NAME" for --RULE.NAME); config_from_args reads them."""
    from ..config import RunConfig, rule_param_clashes
    extra = rule_in_argv(argv)
    for name, f in RunConfig.fields().items():
        if name == "rule_params":
            continue
        p.add_argument(f"--{name.replace('_', '-')}", dest=f"cfg:{name}", default=None, metavar="V",
                       help=f"{f.metadata.get('help', '')} (default {f.default if f.default is not dataclasses.MISSING else f.default_factory()})")
    seen = {}
    g = p.add_argument_group("rule hyperparameters (apply to the chosen --rule; each also as --RULE.NAME)")
    for rule, fields in rule_param_fields(extra).items():
        for name in fields:
            clash = rule_param_clashes(name)      # the --RULE.NAME form is its only flag: listed
            g.add_argument(f"--{rule}.{name.replace('_', '-')}", dest=f"rule:{rule}:{name}", default=None,
                           metavar="V", help=f"rule {rule}'s {name} (--{name.replace('_', '-')} is the run's "
                           f"{field_help(name)})" if clash else argparse.SUPPRESS)
            if not clash:
                seen.setdefault(name, []).append(rule)
    for name, rules in sorted(seen.items()):
        g.add_argument(f"--{name.replace('_', '-')}", dest=f"rp:{name}", default=None, metavar="V",
                       help=f"rules: {', '.join(rules)}")
