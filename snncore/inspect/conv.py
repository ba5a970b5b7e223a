"""Recording conv models (vgg11, resnet19) for Inspect (`record_conv`).

A "neuron" of a conv layer is one channel at one position of its C x H x W spike map, numbered by
the flat index c*H*W + y*W + x. Such a layer has far too many neurons to describe one by one
(131 072 per layer in a ResNet-19 at width 1 on 32x32), so spikes and membranes are kept for a
fixed random sample of at most CONV_NEURONS of them per layer (same sample for every chunk and run:
seed = the layer's index); CV of ISI, Fano, correlation, spike-contrast, chi, the histograms and
the raster describe that sample. Mean rate, silent and saturated counts and sparsity come from
every neuron's spike count, and SynOps from every input event (both exact; the formula is in
snncore.metrics.synops). ResNet 1x1 shortcut convs are added to the layer whose neurons they drive
(the block's conv2). As for every layer, any non-zero input counts as one event (resnet19's fc1
reads the pooled spike fractions, so a channel with a spike anywhere is one event per step). The
network runs in chunks of samples sized so that one chunk's traced activity stays under
RECORD_ELEMENTS values (eval-mode BN makes chunks independent), so memory is bounded whatever the
width and sample count; time grows with samples x T x the network's MACs.
"""
from __future__ import annotations

import numpy as np
import torch

from ..metrics.spikes import subsample
from ..metrics.synops import conv_dense_macs, conv_fan_out
from .checkpoints import InspectError
from .recording import LayerRecord, Recording, lif_membrane

CONV_NEURONS = 512          # conv models: neurons recorded per layer (random sample of channel x position)
RECORD_ELEMENTS = 1 << 26   # conv models: traced activity values per forward chunk (bounds memory, ~0.5 GB)
CONV_DATA_BATCH = 16        # conv models: test samples encoded per batch (fixed, so chunking never
                            # changes the encoding noise)
# seconds per sample and step of a bare forward pass at width 1 on 32x32 images, 2-core CPU
# (measured; recording adds to it, so estimates from it are lower bounds)
CONV_SECONDS = {"vgg11": 0.03, "resnet19": 0.17}
_PIXELS = {"digits": 8 * 8, "mnist": 28 * 28, "fashion_mnist": 28 * 28}      # others: 32 x 32 or more


def conv_inspect_seconds(cfg: dict, samples: int) -> float:
    """Rough lower bound of Inspect's time for a conv run: samples x steps x width^2 x image area
    (relative to 32 x 32) x the measured seconds per sample and step."""
    T, width = int(cfg.get("timesteps") or 16), float(cfg.get("width") or 1.0)
    area = _PIXELS.get(cfg.get("dataset"), 32 * 32) / (32 * 32)
    return samples * T * width ** 2 * area * CONV_SECONDS.get(cfg.get("model"), max(CONV_SECONDS.values()))


def _conv_lifs(model) -> dict[str, torch.nn.Module]:
    """Trace name -> the LIF node behind it in a conv model (vgg11: lifs[i]; resnet19: lif1 and each
    block's lif1 / lif2; the head's fcK_lif and out_lif)."""
    mods = dict(model.named_modules())
    out = {}
    for i, name in enumerate(getattr(model, "conv_names", [])):
        if hasattr(model, "lifs"):                                   # SpikingVGG11
            out[name] = model.lifs[i]
        else:                                                        # conv1 -> lif1, layerS.B.convK -> .lifK
            head, _, last = name.rpartition(".")
            out[name] = mods[(head + "." if head else "") + last.replace("conv", "lif")]
    for name in getattr(model, "fc_names", []):
        out[name] = getattr(model, name + "_lif")
    if getattr(model, "out_lif", None) is not None:
        out["out"] = model.out_lif
    return out


def _shortcut_convs(model) -> dict[str, tuple[torch.nn.Module, str]]:
    """ResNet: conv2 trace name -> (the block's 1x1 shortcut conv, the trace whose pre is its input)."""
    out = {}
    for name in getattr(model, "conv_names", []):
        if name.endswith(".conv2"):
            block = dict(model.named_modules())[name.rpartition(".")[0]]
            sc = getattr(block, "shortcut", None)
            if sc is not None:
                out[name] = (sc[0], name[:-1] + "1")
    return out


def _is_conv(mod) -> bool:
    return isinstance(mod, torch.nn.Conv2d)


def _fan_out(mod, in_shape) -> np.ndarray:
    """Fan-out of every input element of a weight module (Conv2d: [C, H, W]; Linear: [N_pre])."""
    if _is_conv(mod):
        if mod.groups != 1 or isinstance(mod.padding, str):
            raise InspectError("Inspect counts SynOps of plain convolutions only (groups 1, numeric padding)")
        return conv_fan_out(mod.weight, in_shape[-2:], mod.stride, mod.padding, mod.dilation)
    return (mod.weight.detach().cpu().numpy() != 0).sum(axis=0).astype(np.float64)


def _dense_macs(mod, in_shape, T: int) -> float:
    if _is_conv(mod):
        return conv_dense_macs(mod.weight.shape, in_shape[-2:], T, mod.stride, mod.padding, mod.dilation)
    return float(T * mod.weight.shape[0] * mod.weight.shape[1])


@torch.no_grad()
def record_conv(model, data, cfg, state: dict, n: int, g: torch.Generator) -> Recording:
    """Run a conv model on n test samples in memory-bounded chunks; per layer keep a neuron sample's
    spikes and membranes, every neuron's spike count and every input's event count (module docstring)."""
    from spikingjelly.activation_based import functional
    T = cfg.timesteps
    names = list(model.names)
    weights = model.weight_layers()
    lifs = _conv_lifs(model)
    shortcuts = _shortcut_convs(model)
    # traced values per sample: one T=1 pass of one blank sample gives every layer's size
    functional.reset_net(model)
    model(torch.zeros(1, 1, *model.input_shape))
    per_sample = sum(tr.pre[0, 0].numel() + tr.post[0, 0].numel() for tr in model.layer_traces().values())
    functional.reset_net(model)
    chunk = int(max(1, min(n, RECORD_ELEMENTS // max(1, 2 * T * per_sample))))   # x2: the LIF inputs

    picks: dict[str, np.ndarray] = {}

    def pick(name: str, N: int) -> np.ndarray:
        if name not in picks:
            picks[name] = subsample(N, CONV_NEURONS, seed=names.index(name))
        return picks[name]

    lif_in: dict[str, torch.Tensor] = {}
    hooks = [lif.register_forward_hook(
        lambda m, inp, out, name=name: lif_in.__setitem__(
            name, inp[0].reshape(inp[0].shape[0], inp[0].shape[1], -1)[..., torch.as_tensor(
                pick(name, inp[0][0, 0].numel()))]))
        for name, lif in lifs.items()]
    post_s: dict[str, list] = {n_: [] for n_ in names}
    v_s: dict[str, list] = {n_: [] for n_ in names}
    counts: dict[str, torch.Tensor] = {}
    events: dict[tuple[str, str], torch.Tensor] = {}      # (layer, "main" | "shortcut") -> [input shape]
    in_shapes: dict[tuple[str, str], tuple] = {}
    spiking: dict[str, bool] = {}
    labels, preds = [], []
    seen = 0
    try:
        for x, y in data.batches("test", CONV_DATA_BATCH, T, shuffle=False, generator=g):
            x, y = x[:, :n - seen].cpu(), y[:n - seen].cpu()
            for i in range(0, y.numel(), chunk):
                xc = x[:, i:i + chunk]
                functional.reset_net(model)
                lif_in.clear()
                out = model(xc)
                traces = model.layer_traces()
                nonzero: dict[int, torch.Tensor] = {}      # id(tensor) -> its events per element

                def events_of(t: torch.Tensor, binary: bool = False) -> torch.Tensor:
                    # a layer's pre is mostly the previous layer's post: count each tensor once
                    if id(t) not in nonzero:
                        flat = t.reshape(t.shape[0] * t.shape[1], -1)
                        nonzero[id(t)] = (flat if binary else (flat != 0)).sum(0, dtype=torch.float32)
                    return nonzero[id(t)].double()          # float32 counts are exact below 2^24

                for name, tr in traces.items():
                    post = tr.post.reshape(tr.post.shape[0], tr.post.shape[1], -1)
                    idx = torch.as_tensor(pick(name, post.shape[2]))
                    ps = post[..., idx]
                    post_s[name].append(ps.cpu().numpy() != 0)
                    c = events_of(tr.post, binary=True)    # spikes (and logit > 0) are 0/1
                    counts[name] = c if name not in counts else counts[name] + c
                    spiking[name] = tr.spiking
                    if tr.v is not None:
                        v_s[name].append(tr.v.reshape(ps.shape[0], ps.shape[1], -1)[..., idx].float().cpu().numpy())
                    elif name in lif_in:
                        v_s[name].append(lif_membrane(lif_in[name], ps, lifs[name]).cpu().numpy())
                    srcs = [("main", tr.pre)]
                    if name in shortcuts:
                        srcs.append(("shortcut", traces[shortcuts[name][1]].pre))
                    for kind, pre in srcs:
                        e = events_of(pre).reshape(pre.shape[2:])
                        events[name, kind] = e if (name, kind) not in events else events[name, kind] + e
                        in_shapes[name, kind] = tuple(pre.shape[2:])
                preds.append(out.float().mean(0).argmax(-1).cpu().numpy())
                labels.append(y[i:i + chunk].numpy())
            seen += y.numel()
            if seen >= n:
                break
    finally:
        for h in hooks:
            h.remove()
        functional.reset_net(model)
    layers = {}
    for name in names:
        if name not in counts:
            continue
        mod = weights[name]
        ops = macs = 0.0
        for kind in ("main", "shortcut"):
            if (name, kind) not in events:
                continue
            m = mod if kind == "main" else shortcuts[name][0]
            shape = in_shapes[name, kind]
            ops += float((events[name, kind].numpy() / seen * _fan_out(m, shape)).sum())
            macs += _dense_macs(m, shape, T)
        tr = model.layer_traces()[name]
        shape = tuple(tr.post.shape[2:]) if tr.post.dim() == 5 else None
        N = int(counts[name].numel())
        idx = picks[name]
        layers[name] = LayerRecord(
            name=name, pre=None, post=np.concatenate(post_s[name], axis=1),
            v=np.concatenate(v_s[name], axis=1) if v_s[name] else None,
            weight=None if _is_conv(mod) else mod.weight.detach().float().cpu().numpy(),
            spiking=spiking[name], v_threshold=float(lifs[name].v_threshold) if name in lifs else None,
            shape=shape, neurons=None if idx.size == N else idx,
            rates_all=(counts[name].numpy() / (T * seen)).astype(np.float32), synops=ops, dense_macs=macs)
    return Recording(cfg=cfg, layers=layers, labels=np.concatenate(labels), predictions=np.concatenate(preds),
                     epoch=state.get("epochs_done"), step=state.get("step"),
                     extra={"note": f"conv layers: statistics of a random sample of up to {CONV_NEURONS} "
                                    f"neurons (channel x position) per layer; chunks of {chunk} samples"})
