"""Run health: a plain warning when a run's test accuracy never left chance level.

A rule with an extreme hyperparameter (e.g. SSDP a_plus = 1.0) can train to the end at 10 % on a
10-class set without any error; the Train page, Home and `python -m snncore runs` say so instead.
Judged on the best test accuracy over the evaluations done (one per epoch), so it needs no extra
query beyond RunStore.list_runs and says nothing before the first evaluation (no fair chance yet).
"""
from __future__ import annotations

# classes per dataset (synthetic: its syn_classes); l2l_tasks has no accuracy
CLASSES = {"digits": 10, "mnist": 10, "fashion_mnist": 10, "cifar10": 10, "cifar100": 100,
           "nmnist": 10, "dvs_gesture": 11, "cifar10_dvs": 10, "shd": 20}


def n_classes(config: dict) -> int | None:
    ds = config.get("dataset")
    if ds == "synthetic":
        return int(config.get("syn_classes") or 4)
    return CLASSES.get(ds)


def chance_ceiling(classes: int) -> float:
    """Best accuracy still counted as chance: 25 % above 1/classes, at most 5 points above it
    (10 classes: 12.5 %; 2 classes: 55 %; 100 classes: 1.25 %)."""
    chance = 1.0 / classes
    return min(chance * 1.25, chance + 0.05)


def at_chance(run: dict) -> tuple[float, float] | None:
    """(best test accuracy, chance) when the run's best test accuracy so far is at chance level;
    None when it learned, has no evaluation yet, or its dataset has no classes."""
    best = run.get("best_accuracy")
    classes = n_classes(run.get("config") or {})
    if best is None or not classes or classes < 2:
        return None
    return (float(best), 1.0 / classes) if best <= chance_ceiling(classes) else None


def chance_warning(run: dict) -> str | None:
    """One-paragraph warning for a run at chance level, or None."""
    hit = at_chance(run)
    if hit is None:
        return None
    best, chance = hit
    cfg = run.get("config") or {}
    epochs = run.get("epoch") or 0
    when = f"after {epochs} epoch{'s' if epochs != 1 else ''}" if epochs else "so far"
    rule = cfg.get("rule", "the rule")
    return (f"Accuracy stayed at chance level: best test accuracy {best:.1%} {when}, chance is {chance:.1%} "
            f"({round(1 / chance)} classes): the network is not learning. Check {rule}'s hyperparameters "
            f"(amplitudes, rates) and the learning rate (now {cfg.get('lr', '?')}): one may be extreme; "
            f"compare with the rule's defaults. A very small network or very few timesteps can do this too.")
