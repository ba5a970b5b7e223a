"""Finding and reading a checkpoint for Inspect: a run's newest one, or a file / upload read with
torch.load(weights_only=True) (never unpickles code); the run config stored inside it; whether
Inspect can rebuild its network (a rule that keeps its network elsewhere answers through
Rule.inspect_supports). Every refusal is an InspectError whose message says why.
"""
from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path
from typing import Any, BinaryIO

import torch

CONV_MODELS = ("vgg11", "resnet19")


class InspectError(ValueError):
    """Bad input for Inspect (missing/corrupt checkpoint, unsupported run); the message says why."""


def load_checkpoint(source: str | Path | bytes | BinaryIO) -> dict:
    """Read a checkpoint safely (torch.load weights_only=True: plain tensors and containers only, so
    a pickle that would run code is refused). Raises InspectError with a one-line reason."""
    name = str(source) if isinstance(source, (str, Path)) else "the uploaded file"
    if isinstance(source, (str, Path)):
        p = Path(source)
        if not p.exists():
            raise InspectError(f"checkpoint file {str(p)!r} does not exist")
        if not p.is_file():
            raise InspectError(f"{str(p)!r} is not a file (give a checkpoint .pt file or a run id)")
    buf = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = torch.load(buf, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 -- truncated zip, foreign pickle, refused globals: all one message
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "weights_only" in str(e) or "Unsupported global" in str(e) or "GLOBAL" in str(e):
            why = "it holds Python objects other than tensors and plain containers (refused, not executed)"
        raise InspectError(f"{name} is not a readable checkpoint: {why[:200]}") from None
    if not isinstance(state, dict):
        raise InspectError(f"{name} is not a Plasticity Lab checkpoint (expected a dict, got {type(state).__name__})")
    return state


def checkpoint_config(state: dict):
    """The RunConfig saved inside a checkpoint; InspectError when it is missing or invalid."""
    from ..config import ConfigError, RunConfig
    cfg = state.get("config")
    if not isinstance(cfg, dict):
        raise InspectError("the checkpoint has no run config inside; Inspect rebuilds the network from it "
                           "(checkpoints written by the Trainer carry one)")
    try:
        return RunConfig.from_dict(cfg)
    except ConfigError as e:
        raise InspectError(f"the checkpoint's config is not valid here: {e}") from None


SUPPORTED_MODELS = ("mlp", "mps_mlp") + CONV_MODELS


def _rule_class(cfg_or_rule):
    """The rule class a config (object or dict) or rule id names; None when it names none we know."""
    from ..rules import get_rule
    rule = cfg_or_rule if isinstance(cfg_or_rule, str) or cfg_or_rule is None else (
        cfg_or_rule.get("rule") if isinstance(cfg_or_rule, dict) else getattr(cfg_or_rule, "rule", None))
    try:
        return get_rule(rule) if rule else None
    except ValueError:
        return None


def check_supported(cfg, state: dict | None = None) -> None:
    """InspectError for runs Inspect cannot rebuild (a rule that keeps its network elsewhere says
    so through Rule.inspect_supports, e.g. an own-loop checkpoint from before it carried one)."""
    rule_cls = _rule_class(cfg)
    if rule_cls is not None and rule_cls.inspect_supports(cfg, state):
        return
    if cfg.model not in SUPPORTED_MODELS or (state is not None and not isinstance(state.get("model"), dict)):
        what = f"rule {cfg.rule!r}, model {cfg.model!r}"
        raise InspectError(f"Inspect re-runs feed-forward networks (models {', '.join(SUPPORTED_MODELS)}) from "
                           f"their checkpoint weights; this run ({what}) keeps no network weights in its "
                           f"checkpoint (its per-task rasters are on the Train page)")


def checkpoint_unit(cfg: dict | Any) -> str:
    """What a run's checkpoints count: the rule's checkpoint_unit (e.g. "task" for a rule that
    writes one per task of its sequence), else "epoch"."""
    return getattr(_rule_class(cfg), "checkpoint_unit", "epoch")


def run_checkpoint(store, run_id: str) -> tuple[int, int, Path]:
    """(epoch, step, path) of a run's newest checkpoint; InspectError if the run is unknown or has none."""
    from ..store import check_run_id
    try:
        check_run_id(run_id)
    except ValueError as e:
        raise InspectError(str(e)) from None
    run = store.get_run(run_id)
    if run is None:
        raise InspectError(f"run {run_id!r} is not in {store.root}")
    cks = store.checkpoints(run_id)
    if not cks:
        from ..config import RunConfig
        try:
            check_supported(RunConfig.from_dict(run["config"]))
        except InspectError:
            raise
        except Exception:  # noqa: BLE001 -- an old config: the missing checkpoint is the news
            pass
        raise InspectError(f"run {run_id} has no checkpoint yet (one is written at the end of each epoch; "
                           f"status: {run['status']})")
    return cks[-1]


def file_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]
