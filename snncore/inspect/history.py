"""Weights over training: the weight matrices a checkpoint's network uses (read from its state, no
data needed; a rule that keeps its network elsewhere reads them through Rule.checkpoint_weights)
and per-layer histograms over a run's checkpoints with shared bin edges.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from .checkpoints import InspectError, _rule_class, load_checkpoint


def model_weights(state: dict) -> dict[str, np.ndarray]:
    """Layer name -> the weight matrix the network uses, from a checkpoint's model state (no data
    needed: the layer sizes come from the state dict itself)."""
    cfg = state.get("config")
    rule_cls = _rule_class(cfg) if isinstance(cfg, dict) else None
    own = rule_cls.checkpoint_weights(state) if rule_cls is not None else None
    if own is not None:                                       # the rule reads its own network
        return {k: v.detach().float().cpu().numpy() for k, v in own.items()}
    w = state.get("model") or {}
    out = {}
    if any(k.startswith("fcs.") for k in w):                  # SpikingMLP: fcs.i.weight, out.weight
        i = 0
        while f"fcs.{i}.weight" in w:
            out[f"fc{i + 1}"] = w[f"fcs.{i}.weight"]
            i += 1
        if "out.weight" in w:
            out["out"] = w["out.weight"]
    elif any(k.startswith(("convs.", "layer1.")) or k == "conv1.weight" for k in w):
        out = _conv_weights(w)
    return {k: v.detach().float().cpu().numpy() for k, v in out.items()}


_CONV_WEIGHT = re.compile(r"^(?:convs\.(\d+)|(conv1)|(layer\d+\.\d+\.conv[12])|(layer\d+\.\d+)\.shortcut\.0"
                          r"|(fc\d+)|(out))\.weight$")


def _conv_weights(w: dict) -> dict[str, torch.Tensor]:
    """Conv-model state dict -> trace name -> weight, input order (vgg11: convs.i -> conv{i+1};
    resnet19: conv1, layerS.B.convK and the 1x1 shortcut as layerS.B.shortcut; then fcK, out).
    BatchNorm scales are not synaptic weights and are left out."""
    out = {}
    for k, v in w.items():                                    # state-dict order = module order
        m = _CONV_WEIGHT.match(k)
        if m is None:
            continue
        vgg, stem, conv, sc, fc, o = m.groups()
        name = (f"conv{int(vgg) + 1}" if vgg is not None else stem or conv or
                (f"{sc}.shortcut" if sc else None) or fc or o)
        out[name] = v
    if "out" in out:
        out["out"] = out.pop("out")
    return out


def weight_histograms(weights_by_epoch: dict[int, dict[str, np.ndarray]], bins: int = 40) -> dict[str, dict]:
    """Per layer: shared bin edges over all epochs and the share of weights per bin at each epoch,
    {layer: {"edges": [bins+1], "epochs": [E], "share": [E, bins]}} (scrubbing keeps the x axis fixed)."""
    out: dict[str, dict] = {}
    layers = list(dict.fromkeys(n for e in sorted(weights_by_epoch) for n in weights_by_epoch[e]))
    layers.sort(key=lambda n: n == "out")                     # input order (stable), read-out last
    epochs = sorted(weights_by_epoch)
    for name in layers:
        have = [e for e in epochs if name in weights_by_epoch[e]]
        allw = np.concatenate([weights_by_epoch[e][name].ravel() for e in have])
        lo, hi = float(np.nanmin(allw)), float(np.nanmax(allw))
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, bins + 1)
        share = np.stack([np.histogram(weights_by_epoch[e][name], bins=edges)[0] /
                          max(weights_by_epoch[e][name].size, 1) for e in have])
        out[name] = {"edges": edges, "epochs": have, "share": share}
    return out


def checkpoint_weight_histograms(checkpoints: list[tuple[int, int, Path]], bins: int = 40) -> dict[str, dict]:
    """weight_histograms over checkpoints [(epoch, step, path)] (unreadable files skipped)."""
    by_epoch = {}
    for epoch, _step, path in checkpoints:
        try:
            ws = model_weights(load_checkpoint(path))
        except InspectError:
            continue
        if ws:
            by_epoch[int(epoch)] = ws
    return weight_histograms(by_epoch, bins) if by_epoch else {}


def run_weight_histograms(store, run_id: str, bins: int = 40) -> dict[str, dict]:
    """weight_histograms over a run's per-epoch checkpoints."""
    return checkpoint_weight_histograms(store.checkpoints(run_id), bins)
