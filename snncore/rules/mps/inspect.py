"""MPS in Inspect: the weight a layer uses is W_eff = sum_k A_k W_k, with shares A_k that need the
net's Z and mode, so the weights are read through the rebuilt MPSNet."""
from __future__ import annotations

import torch


def weights(state: dict) -> dict | None:
    """Layer name -> W_eff of each MPS layer of the checkpoint's net (None: no MPS layers)."""
    from ...inspect import InspectError, checkpoint_config
    from . import MPSNet
    w = state.get("model") or {}
    if not any(k.startswith("layers.") for k in w):
        return None
    cfg = checkpoint_config(state)
    idx = sorted({int(k.split(".")[1]) for k in w if k.startswith("layers.")})
    shapes = [next(v.shape for k, v in w.items() if k.startswith(f"layers.{i}.W_")) for i in idx]
    sizes = [shapes[0][1]] + [s[0] for s in shapes]
    try:
        net = MPSNet.from_params(sizes, cfg.timesteps, cfg.rule_object_params())
        net.load_state_dict(w)
    except (RuntimeError, ValueError) as e:
        raise InspectError(f"the checkpoint's weights do not fit an MPS network: "
                           f"{str(e).strip().splitlines()[0][:200]}") from None
    with torch.no_grad():
        return {n: layer.effective_weight() for n, layer in zip(net.names, net.layers)}
