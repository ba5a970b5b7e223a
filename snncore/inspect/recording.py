"""Running a checkpoint's network on test samples with every layer recorded (`record_network`):
the model is rebuilt from the config stored in the checkpoint, its weights loaded, and each weight
layer's input, spikes and membrane (before the threshold test) kept as a LayerRecord. A rule that
runs its own network records it through Rule.inspect_record; conv models go through conv.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .checkpoints import CONV_MODELS, InspectError, _rule_class, check_supported, checkpoint_config


@dataclass
class LayerRecord:
    """One weight layer's activity over the inspected samples (numpy, CPU)."""
    name: str
    pre: np.ndarray                   # [T, B, N_pre] input activity (bool for spikes, float for currents)
    post: np.ndarray                  # [T, B, N] bool spikes (read-out: logit > 0)
    v: np.ndarray | None              # [T, B, N] membrane before reset (logits for a non-spiking read-out)
    weight: np.ndarray | None         # [N, N_pre] as used in the forward pass (None: a conv layer)
    spiking: bool = True
    v_threshold: float | None = None
    # conv models (pre is None there: SynOps and the whole-layer counts are taken while recording)
    shape: tuple | None = None        # (C, H, W) of a conv layer's neuron map
    neurons: np.ndarray | None = None     # flat indices (c*H*W + y*W + x) of the recorded neurons; None: all
    rates_all: np.ndarray | None = None   # [n_total] spikes per step of every neuron of the layer
    synops: float | None = None       # per sample, all inputs (plus a ResNet shortcut's)
    dense_macs: float | None = None

    @property
    def n_total(self) -> int:
        return int(self.rates_all.size) if self.rates_all is not None else int(self.post.shape[2])

    def neuron_index(self, j: int) -> int:
        """The layer-wide neuron number of recorded neuron j (column j of post / v)."""
        return int(j) if self.neurons is None else int(self.neurons[j])

    def position(self, j: int) -> tuple[int, int, int] | None:
        """(channel, y, x) of recorded neuron j of a conv layer; None for a flat layer."""
        if self.shape is None:
            return None
        c, y, x = np.unravel_index(self.neuron_index(j), self.shape)
        return int(c), int(y), int(x)

    def neuron_label(self, j: int) -> str:
        """'neuron 17' (flat layer), 'neuron 17 (channel 3, y 4, x 0)' (conv layer) or, for a sampled
        flat layer, 'neuron 17 (#912 of the layer)'."""
        pos = self.position(j)
        if pos is not None:
            return f"neuron {j} (channel {pos[0]}, y {pos[1]}, x {pos[2]})"
        return f"neuron {j}" if self.neurons is None else f"neuron {j} (#{self.neuron_index(j)} of the layer)"


@dataclass
class Recording:
    cfg: Any
    layers: dict[str, LayerRecord]
    labels: np.ndarray
    predictions: np.ndarray
    epoch: int | None = None
    step: int | None = None
    extra: dict = field(default_factory=dict)
    # IP2: labels are per scored step of each trial, not per sample; its trials have their own
    # length and its checkpoints count tasks (None / "epoch": labels.size, cfg.timesteps, epochs)
    samples: int | None = None
    timesteps: int | None = None
    unit: str = "epoch"

    @property
    def accuracy(self) -> float:
        return float((self.labels == self.predictions).mean()) if self.labels.size else float("nan")


def _lif_modules(model) -> dict[str, torch.nn.Module]:
    """layer name -> the neuron module whose membrane we reconstruct (SpikingMLP layout)."""
    lifs = dict(zip(getattr(model, "names", []), getattr(model, "lifs", [])))
    if getattr(model, "out_lif", None) is not None:
        lifs["out"] = model.out_lif
    return lifs


def lif_pre_reset(x_seq: torch.Tensor, v_seq: torch.Tensor, lif) -> torch.Tensor:
    """Membrane potential before the threshold test, from a SpikingJelly LIF node's inputs x_seq and its
    post-reset voltages v_seq ([T, ...]), by the node's own charge equation (spikes: H >= v_threshold)."""
    v0 = lif.v_reset if lif.v_reset is not None else 0.0
    prev = torch.cat([torch.full_like(v_seq[:1], v0), v_seq[:-1]])
    return _charge(prev, x_seq, lif)


def _charge(v: torch.Tensor, x: torch.Tensor, lif) -> torch.Tensor:
    """The node's charge equation: H from the previous (post-reset) membrane v and the input x."""
    tau, vr = float(lif.tau), (0.0 if lif.v_reset is None else float(lif.v_reset))
    if lif.decay_input:
        return v + (x - (v - vr)) / tau
    return v - (v - vr) / tau + x


@torch.no_grad()
def record_network(state: dict, n_samples: int = 64, seed: int = 12345) -> Recording:
    """Rebuild the checkpoint's network, load its weights and run it on the first n_samples test
    samples (encoded with a fixed generator) recording every layer's spikes and membrane."""
    from spikingjelly.activation_based import functional
    from ..data import load_dataset
    from ..models import build_model
    cfg = checkpoint_config(state)
    check_supported(cfg, state)
    rec = _rule_class(cfg).inspect_record(state, cfg, n_samples, seed)
    if rec is not None:                    # the rule runs its own network (e.g. a recurrent one)
        return rec
    try:
        data = load_dataset(cfg)
        model = build_model(cfg, data.input_size, data.n_classes, data.input_shape)
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError, ValueError) as e:
        raise InspectError(f"the checkpoint's weights do not fit the network its config builds: "
                           f"{str(e).strip().splitlines()[0][:200]}") from None
    model.eval()
    n = max(1, min(int(n_samples), int(data.test_y.numel())))
    g = torch.Generator().manual_seed(seed)
    if cfg.model in CONV_MODELS:
        from .conv import record_conv     # conv.py builds on this module
        return record_conv(model, data, cfg, state, n, g)
    x, y = next(data.batches("test", n, cfg.timesteps, shuffle=False, generator=g))
    lifs = _lif_modules(model)
    seen: dict[str, torch.Tensor] = {}
    hooks = []
    for name, lif in lifs.items():
        lif.store_v_seq = True
        hooks.append(lif.register_forward_hook(lambda m, inp, out, name=name: seen.__setitem__(name, inp[0])))
    try:
        functional.reset_net(model)
        out = model(x)
        traces = model.layer_traces()
    finally:
        for h in hooks:
            h.remove()
    layers = {}
    for name, tr in traces.items():
        v = tr.v
        if v is None and name in seen and getattr(lifs[name], "v_seq", None) is not None:
            v = lif_pre_reset(seen[name], lifs[name].v_seq, lifs[name])
        thr = None
        if tr.spiking:
            lif = lifs.get(name)
            thr = float(lif.v_threshold) if lif is not None else float(getattr(model, "v_th", cfg.v_threshold))
        pre = tr.pre.reshape(tr.pre.shape[0], tr.pre.shape[1], -1)
        pre_np = pre.cpu().numpy()
        if np.isin(pre_np, (0.0, 1.0)).all():
            pre_np = pre_np.astype(bool)
        layers[name] = LayerRecord(name=name, pre=pre_np, post=tr.post.cpu().numpy() != 0,
                                   v=None if v is None else v.float().cpu().numpy(),
                                   weight=tr.weight.detach().float().cpu().numpy(), spiking=tr.spiking,
                                   v_threshold=thr)
    functional.reset_net(model)
    pred = out.float().mean(0).argmax(-1).cpu().numpy()
    return Recording(cfg=cfg, layers=layers, labels=y.cpu().numpy(), predictions=pred,
                     epoch=state.get("epochs_done"), step=state.get("step"))


def lif_membrane(x_seq: torch.Tensor, spikes: torch.Tensor, lif) -> torch.Tensor:
    """Membrane before the threshold test of a LIF node (fresh state) from its input x_seq [T, ...]
    and the spikes it emitted, by the node's charge and reset equations (hard reset to v_reset, or
    soft: minus v_threshold). Used on a neuron sample, so the node keeps its fast path."""
    x = x_seq.float()
    vr = None if lif.v_reset is None else float(lif.v_reset)
    th = float(lif.v_threshold)
    v = torch.full_like(x[0], 0.0 if vr is None else vr)
    out = torch.empty_like(x)
    for t in range(x.shape[0]):
        h = _charge(v, x[t], lif)
        out[t] = h
        s = spikes[t].float()
        v = h * (1 - s) + s * vr if vr is not None else h - s * th
    return out
