"""Rule registry: built-in rules, installed ones (entry-point group ``snncore.rules``, entry name =
rule id, value "module:Class") and any rule given by its import path "package.module:Class".

Import-path rules named in the environment variable SNNCORE_RULES (comma- or space-separated) are
listed beside the built-in ones (the app's rule lists, `--help`), so a lab's own rules need no
typing: ``SNNCORE_RULES=examples.triplet_stdp:TripletSTDP make app``."""
from __future__ import annotations

import importlib
import importlib.metadata
import os
import re
import sys

from .base import Rule, StepContext, LayerTrace, param  # noqa: F401

# rule id -> "module:Class" (imported on first use, so one rule's import cost is not everyone's)
REGISTRY: dict[str, str] = {
    "bptt": "snncore.rules.bptt:BPTT",
    "ssdp": "snncore.rules.ssdp:SSDP",
    "da_ssdp": "snncore.rules.da_ssdp:DASSDP",
    "stdp": "snncore.rules.stdp:STDP",
    "rstdp": "snncore.rules.rstdp:RSTDP",
    "mps": "snncore.rules.mps:MPS",
    "ip2": "snncore.rules.ip2:IP2",
}

DEFAULT_RULE = "bptt"      # a new run's rule: the surrogate-gradient baseline
FORM_RULE = "ssdp"         # the rule the app's Train form opens with
ENTRY_POINT_GROUP = "snncore.rules"
LIST_ENV = "SNNCORE_RULES"
_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")
_eps_cache: dict[tuple, dict[str, str]] = {}
_listed_cache: dict[tuple, tuple[list[str], dict[str, str]]] = {}


def entry_point_rules() -> dict[str, str]:
    """Installed rules: entry name -> "module:Class" (a built-in id wins over an entry point).
    Cached per sys.path: scanning the installed distributions costs milliseconds."""
    key = tuple(sys.path)
    if key not in _eps_cache:
        found = {}
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if re.fullmatch(r"[A-Za-z_]\w*", ep.name) and ep.name not in REGISTRY:
                found.setdefault(ep.name, ep.value)
        _eps_cache.clear()
        _eps_cache[key] = found
    return _eps_cache[key]


def listed_rules() -> tuple[list[str], dict[str, str]]:
    """The import paths SNNCORE_RULES names that load, and {path: why} for those that do not (a
    typo there must not break every rule list, so it is reported, not raised). Cached per value
    of the variable and sys.path."""
    raw = os.environ.get(LIST_ENV, "")
    key = (raw, tuple(sys.path))
    if key not in _listed_cache:
        ok, bad = [], {}
        for path in dict.fromkeys(re.split(r"[,\s]+", raw.strip())):
            if not path:
                continue
            try:
                load_path(path)
                ok.append(path)
            except ValueError as e:
                bad[path] = str(e)
        _listed_cache.clear()
        _listed_cache[key] = (ok, bad)
    ok, bad = _listed_cache[key]
    return list(ok), dict(bad)


def rule_names() -> list[str]:
    """Built-in rule ids, then installed ones, then the import paths SNNCORE_RULES lists (any
    other import path works too, but is not listed)."""
    names = list(REGISTRY) + [n for n in entry_point_rules() if n not in REGISTRY]
    return names + [p for p in listed_rules()[0] if p not in names]


def is_import_path(name: str) -> bool:
    return isinstance(name, str) and ":" in name


def get_rule(name: str) -> type[Rule]:
    """The Rule class of a rule id or an import path; ValueError with one line otherwise."""
    if name in REGISTRY:
        return load_path(REGISTRY[name])
    eps = entry_point_rules()
    if name in eps:
        try:
            return load_path(eps[name])
        except ValueError as e:
            raise ValueError(f"installed rule {name!r} (entry point {eps[name]!r}): {e}") from None
    if is_import_path(name):
        return load_path(name)
    raise ValueError(f"unknown rule {name!r} (choose from {', '.join(rule_names())}, "
                     f"or give your own as package.module:Class)")


def load_path(path: str) -> type[Rule]:
    """Import "package.module:Class" (from the Python path, then the current folder, as
    `python -m snncore` finds it) and check that it is a Rule subclass."""
    if not isinstance(path, str) or not _PATH.fullmatch(path):
        raise ValueError(f"{path!r} is not an import path of the form package.module:Class")
    mod_name, cls_name = path.split(":")
    if mod_name.split(".")[0] in sys.stdlib_module_names:
        raise ValueError(f"{path!r}: module {mod_name!r} is part of Python's standard library, not a rule")
    try:
        mod = _import(mod_name)
    except ModuleNotFoundError as e:
        raise ValueError(f"{path!r}: module {e.name or mod_name!r} not found (not on the Python path "
                         f"nor in the current folder {os.getcwd()})") from None
    except Exception as e:  # noqa: BLE001 -- the user's module failed while importing: say how, in one line
        msg = " ".join(str(e).split())
        raise ValueError(f"{path!r}: importing module {mod_name!r} failed: {type(e).__name__}: {msg}") from None
    cls = getattr(mod, cls_name, None)
    if cls is None:
        raise ValueError(f"{path!r}: module {mod_name!r} has no attribute {cls_name!r}")
    if not (isinstance(cls, type) and issubclass(cls, Rule)):
        raise ValueError(f"{path!r}: {mod_name}.{cls_name} is not a Rule subclass (snncore.rules.base.Rule)")
    return cls


def _import(mod_name: str):
    try:
        return importlib.import_module(mod_name)
    except ModuleNotFoundError as e:
        cwd = os.getcwd()
        top = mod_name.split(".")[0]
        if e.name != top or cwd in sys.path or "" in sys.path:
            raise
        sys.path.append(cwd)       # the app runs from its folder without it on sys.path
        return importlib.import_module(mod_name)
