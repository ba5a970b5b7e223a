"""Convolutional spiking networks: a VGG-11-style net and Spiking ResNet-19 (tdBN), all T steps at once.

Built from SpikingJelly 2.0's multi-step layers (``layer.Conv2d``, ``layer.BatchNorm2d``,
``layer.ThresholdDependentBatchNorm2d``, ``layer.MaxPool2d``, ``neuron.LIFNode`` as
:class:`~snncore.models.lif.FastLIFNode`, step_mode='m'):
a conv or BN layer runs on the whole sequence folded to [T*B, C, H, W]; the LIF integrates over T.
Input [T, B, D] (flat, as the data pipeline delivers it) is reshaped to [T, B, C, H, W] with the
dataset's per-step sample shape; output [T, B, classes] as for :class:`SpikingMLP` (logits per
step, or read-out spikes with readout='rate'). ``width`` multiplies every conv's channel count
(1 = the papers' widths; 1/16 trains a few steps on a CPU in a test); the fully connected head
after the pool has the sizes of ``hidden``.

``resnet19`` -- Zheng et al., "Going Deeper With Directly-Trained Larger Spiking Neural Networks",
AAAI 2021 (tdBN), the CIFAR network of their Table: 3x3 conv stem, 128 channels; basic blocks
[3, 3, 2] with 128, 256, 512 channels (the first block of stages 2 and 3 has stride 2 and a
1x1 conv + BN shortcut); global average pool; FC 256 (spiking); FC classes. Block:
LIF(tdBN(conv3x3(LIF(tdBN(conv3x3(s))))) + shortcut(s)). tdBN normalises each channel over
(T, B, H, W) and starts its scale at alpha * V_th, with alpha = 1/sqrt(2) for the two BNs whose
outputs are summed before a block's last LIF and 1 elsewhere (the paper's rule). About 12.7 M
parameters at width 1 with 10 classes (the literature quotes ~12.6 M).

``vgg11`` -- the VGG-11 layout ("A": 64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M) of
3x3 conv -> BN -> LIF blocks, as in SpikingJelly's ``spiking_vgg11_bn``, with a CIFAR-size head
(flatten -> ``hidden`` spiking FCs -> FC classes) instead of ImageNet's 7x7 pool and 4096-wide
FCs. Max pooling (of spikes, so the result is still 0/1) is skipped where the map is already
1 pixel high or wide, so an 8x8 digit passes through the three pools it has room for.

Layer traces (what rules and the recorder see), in input -> output order: every 3x3 conv with
pre/post spikes [T, B, C, H, W] (the residual 1x1 shortcuts are left out: their post neurons are
conv2's), then the Linear layers ``fc1..fcK`` and ``out`` with [T, B, N] tensors. The input of
``fc1`` is the flattened max-pooled spikes (vgg11, 0/1) or, for resnet19, the global average of
the last stage's spike maps: per channel, the fraction of positions that spiked at step t, in
[0, 1]. Local rules act on the Linear layers only (the config refuses conv targets): SSDP's
"fired" (any nonzero) of such an input is "any position of the channel spiked", its 1x1-conv
convention; STDP's update, linear in the input, is the mean of the update over the positions
tied to one weight by the pool.

Mixed precision: the LIF keeps its membrane in float32 when its input is half precision (under
torch.autocast), so SpikingJelly's registered LIF op integrates in float32 and emits spikes in
the input's dtype (with a half-precision membrane it would fall back to a per-step reference
loop in half precision).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from spikingjelly.activation_based import layer

from ..rules.base import LayerTrace
from .lif import FastLIFNode
from .mlp import TracedLayers, make_surrogate, readout_over_time

VGG11 = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")
RESNET19_STAGES = ((128, 3, 1), (256, 3, 2), (512, 2, 2))     # (channels, blocks, first stride)
RESNET19_STEM = 128
_HALF = (torch.float16, torch.bfloat16)


class LIF(FastLIFNode):
    """SpikingJelly's multi-step LIFNode (via FastLIFNode: our whole-sequence Function on the CPU,
    SpikingJelly's kernels elsewhere) with a float32 membrane under half-precision input."""

    def materialize_states(self, inputs, states, step_mode):
        states = super().materialize_states(inputs, states, step_mode)
        v = states[0]
        if isinstance(v, torch.Tensor) and v.dtype in _HALF and self._neuron_precision is None:
            v = v.float()          # a fresh state (reset value) after reset_net: nothing is lost
        return (v, *states[1:])


def make_lif(tau, v_threshold, v_reset, surrogate, alpha) -> LIF:
    return LIF(tau=tau, decay_input=True, v_threshold=v_threshold, v_reset=v_reset,
               surrogate_function=make_surrogate(surrogate, alpha), detach_reset=False, step_mode="m")


def scaled(channels: int, width: float) -> int:
    """Channel count times the width multiplier, at least 1."""
    return max(1, int(round(channels * width)))


def check_image_shape(input_shape, model: str) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in (input_shape or ()))
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"model: {model!r} needs image data with a (channels, height, width) shape per "
                         f"step; this dataset gives {shape or 'flat vectors'} (use model 'mlp')")
    return shape


class _SpikingConvNet(TracedLayers, nn.Module):
    """Shared parts: input reshape, the spiking FC head and read-out, layer traces."""

    model_id = ""

    def __init__(self, input_shape, hidden, n_classes, *, tau, v_threshold, v_reset, surrogate,
                 alpha, readout):
        super().__init__()
        self.input_shape = check_image_shape(input_shape, self.model_id)
        self._lif_args = (tau, v_threshold, v_reset, surrogate, alpha)
        self.v_threshold = v_threshold
        self.readout = readout
        self.hidden = list(hidden)
        self.n_classes = n_classes
        self._trace: dict[str, LayerTrace] = {}

    def _lif(self) -> LIF:
        return make_lif(*self._lif_args)

    def _build_head(self, n_features: int) -> None:
        sizes = [n_features] + self.hidden
        self.fc_names = [f"fc{i + 1}" for i in range(len(self.hidden))]
        for name, a, b in zip(self.fc_names, sizes[:-1], sizes[1:]):
            setattr(self, name, layer.Linear(a, b, step_mode="m"))
            setattr(self, name + "_lif", self._lif())
        self.out = layer.Linear(sizes[-1], self.n_classes, step_mode="m")
        self.out_lif = self._lif() if self.readout == "rate" else None

    def _head(self, s: torch.Tensor, trace: dict) -> torch.Tensor:
        for name in self.fc_names:
            fc = getattr(self, name)
            post = getattr(self, name + "_lif")(fc(s))
            trace[name] = LayerTrace(fc.weight, s, post)
            s = post
        logits = readout_over_time(self.out, s)
        if self.out_lif is not None:
            out = self.out_lif(logits)
            trace["out"] = LayerTrace(self.out.weight, s, out)
        else:
            out = logits
            trace["out"] = LayerTrace(self.out.weight, s, (logits > 0).to(logits.dtype), v=logits,
                                      spiking=False)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [T, B, D] or [T, B, C, H, W] -> per-step output [T, B, classes]."""
        T, B = x.shape[:2]
        self._trace = {}           # drop the last batch's spikes before this batch makes its own
        trace: dict[str, LayerTrace] = {}
        feats = self._features(x.reshape(T, B, *self.input_shape), trace)    # [T, B, F]
        out = self._head(feats, trace)
        self._trace = trace
        return out

    def weight_layers(self) -> dict[str, nn.Module]:
        """Trace name -> the conv / Linear module holding that weight."""
        mods = dict(self.named_modules())
        return {n: mods[self._module_path.get(n, n)] for n in self.names}


class SpikingVGG11(_SpikingConvNet):
    """VGG-11 layout of conv3x3 -> BN -> LIF blocks with max pooling, then a spiking FC head."""

    model_id = "vgg11"

    def __init__(self, input_shape, hidden, n_classes, *, width=1.0, tau=2.0, v_threshold=1.0,
                 v_reset=0.0, surrogate="sigmoid", alpha=4.0, readout="mem"):
        super().__init__(input_shape, hidden, n_classes, tau=tau, v_threshold=v_threshold,
                         v_reset=v_reset, surrogate=surrogate, alpha=alpha, readout=readout)
        c, h, w = self.input_shape
        self.convs, self.bns, self.lifs = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        self.pool_after: list[bool] = []
        for item in VGG11:
            if item == "M":
                if h >= 2 and w >= 2:      # no room left on a small image: skip the pool
                    self.pool_after[-1] = True
                    h, w = h // 2, w // 2
                continue
            out_c = scaled(item, width)
            self.convs.append(layer.Conv2d(c, out_c, 3, padding=1, bias=False, step_mode="m"))
            self.bns.append(layer.BatchNorm2d(out_c, step_mode="m"))
            self.lifs.append(self._lif())
            self.pool_after.append(False)
            c = out_c
        self.pool = layer.MaxPool2d(2, 2, step_mode="m")
        self.conv_names = [f"conv{i + 1}" for i in range(len(self.convs))]
        self._module_path = {n: f"convs.{i}" for i, n in enumerate(self.conv_names)}
        self._build_head(c * h * w)
        self.names = self.conv_names + self.fc_names + ["out"]

    def _features(self, s: torch.Tensor, trace: dict) -> torch.Tensor:
        for name, conv, bn, lif, pool in zip(self.conv_names, self.convs, self.bns, self.lifs,
                                             self.pool_after):
            post = lif(bn(conv(s)))
            trace[name] = LayerTrace(conv.weight, s, post)
            s = self.pool(post) if pool else post
        return s.flatten(2)


class BasicBlock(nn.Module):
    """tdBN basic block: LIF(tdBN_a(conv3x3(LIF(tdBN_1(conv3x3(s))))) + shortcut(s))."""

    def __init__(self, in_c, out_c, stride, lif, v_threshold):
        super().__init__()
        a_sum = 1.0 / math.sqrt(2.0)        # the two branches are summed: tdBN's alpha = 1/sqrt(2)
        self.conv1 = layer.Conv2d(in_c, out_c, 3, stride=stride, padding=1, bias=False, step_mode="m")
        self.bn1 = layer.ThresholdDependentBatchNorm2d(1.0, v_threshold, out_c)
        self.lif1 = lif()
        self.conv2 = layer.Conv2d(out_c, out_c, 3, padding=1, bias=False, step_mode="m")
        self.bn2 = layer.ThresholdDependentBatchNorm2d(a_sum, v_threshold, out_c)
        self.shortcut = None
        if stride != 1 or in_c != out_c:
            self.shortcut = nn.Sequential(
                layer.Conv2d(in_c, out_c, 1, stride=stride, bias=False, step_mode="m"),
                layer.ThresholdDependentBatchNorm2d(a_sum, v_threshold, out_c))
        self.lif2 = lif()

    def forward(self, s: torch.Tensor, trace: dict, prefix: str) -> torch.Tensor:
        mid = self.lif1(self.bn1(self.conv1(s)))
        res = s if self.shortcut is None else self.shortcut(s)
        out = self.lif2(self.bn2(self.conv2(mid)) + res)
        trace[prefix + "conv1"] = LayerTrace(self.conv1.weight, s, mid)
        trace[prefix + "conv2"] = LayerTrace(self.conv2.weight, mid, out)
        return out


class SpikingResNet19(_SpikingConvNet):
    """Spiking ResNet-19 with tdBN (Zheng et al. 2021); see the module docstring."""

    model_id = "resnet19"

    def __init__(self, input_shape, hidden, n_classes, *, width=1.0, tau=2.0, v_threshold=1.0,
                 v_reset=0.0, surrogate="sigmoid", alpha=4.0, readout="mem"):
        super().__init__(input_shape, hidden, n_classes, tau=tau, v_threshold=v_threshold,
                         v_reset=v_reset, surrogate=surrogate, alpha=alpha, readout=readout)
        c = scaled(RESNET19_STEM, width)
        self.conv1 = layer.Conv2d(self.input_shape[0], c, 3, padding=1, bias=False, step_mode="m")
        self.bn1 = layer.ThresholdDependentBatchNorm2d(1.0, v_threshold, c)
        self.lif1 = self._lif()
        self.conv_names = ["conv1"]
        self._module_path = {}
        stages = []
        for si, (channels, blocks, stride) in enumerate(RESNET19_STAGES):
            out_c = scaled(channels, width)
            stage = nn.ModuleList()
            for bi in range(blocks):
                stage.append(BasicBlock(c, out_c, stride if bi == 0 else 1, self._lif, v_threshold))
                c = out_c
                self.conv_names += [f"layer{si + 1}.{bi}.conv1", f"layer{si + 1}.{bi}.conv2"]
            stages.append(stage)
        self.layer1, self.layer2, self.layer3 = stages
        self._build_head(c)
        self.names = self.conv_names + self.fc_names + ["out"]

    def _features(self, s: torch.Tensor, trace: dict) -> torch.Tensor:
        post = self.lif1(self.bn1(self.conv1(s)))
        trace["conv1"] = LayerTrace(self.conv1.weight, s, post)
        s = post
        for si, stage in enumerate((self.layer1, self.layer2, self.layer3)):
            for bi, block in enumerate(stage):
                s = block(s, trace, f"layer{si + 1}.{bi}.")
        return s.mean(dim=(-2, -1))          # global average pool -> [T, B, C]


CONV_MODELS = {"vgg11": SpikingVGG11, "resnet19": SpikingResNet19}


def build_conv(model: str, input_shape, n_classes: int, *, hidden, width=1.0, **kw) -> _SpikingConvNet:
    """A conv model by id ('vgg11' or 'resnet19')."""
    if model not in CONV_MODELS:
        raise ValueError(f"model: unknown conv model {model!r} (choose from {', '.join(CONV_MODELS)})")
    return CONV_MODELS[model](input_shape, list(hidden), n_classes, width=width, **kw)
