"""Rule registry: a new rule is a new module plus one line here."""
from __future__ import annotations

import importlib

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


def rule_names() -> list[str]:
    return list(REGISTRY)


def get_rule(name: str) -> type[Rule]:
    if name not in REGISTRY:
        raise ValueError(f"unknown rule {name!r} (choose from {', '.join(REGISTRY)})")
    mod, cls = REGISTRY[name].split(":")
    return getattr(importlib.import_module(mod), cls)
