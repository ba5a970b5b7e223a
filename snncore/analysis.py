"""Inspect: what did a rule do to the network? Spike statistics per layer, and the loading that feeds them.

Statistics are pure functions on spike arrays shaped [T, B, N] (time, samples, neurons; 0/1), one time
step = one bin (1 ms when Elephant needs units). Where Elephant provides a statistic it computes it:

    CV of inter-spike intervals   elephant.statistics.cv on each neuron's ISIs (pooled over samples;
                                  an ISI never spans two samples, the network is reset between them)
    Fano factor                   elephant.statistics.fanofactor: spike counts of a neuron across samples
    mean pairwise correlation     elephant.spike_train_correlation.correlation_coefficient on the
                                  binned trains (samples back to back), mean over pairs of firing neurons
    spike-contrast synchrony      elephant.spike_train_synchrony.spike_contrast on a neuron subsample

Ours (Elephant has none): population synchrony chi (Golomb 2007, snncore.metrics), silent and
saturated counts, activation sparsity (share of zero activations) and SynOps per sample
(sum over weight layers of presynaptic spikes x fan-out, the fan-out counting non-zero weights).

Loading: a checkpoint is read with torch.load(weights_only=True) (never unpickles code), the model is
rebuilt from the config stored in it, its weights loaded, and it is run on test samples with every
layer's spikes and membrane potential recorded (`record_network`).

Conv models (vgg11, resnet19; `_record_conv`): a "neuron" of a conv layer is one channel at one
position of its C x H x W spike map, numbered by the flat index c*H*W + y*W + x. Such a layer has
far too many neurons to describe one by one (131 072 per layer in a ResNet-19 at width 1 on 32x32),
so spikes and membranes are kept for a fixed random sample of at most CONV_NEURONS of them per
layer (same sample for every chunk and run: seed = the layer's index); CV of ISI, Fano, correlation,
spike-contrast, chi, the histograms and the raster describe that sample. Mean rate, silent and
saturated counts and sparsity come from every neuron's spike count, and SynOps from every input
event (both exact). The network runs in chunks of samples sized so that one chunk's traced activity
stays under RECORD_ELEMENTS values (eval-mode BN makes chunks independent), so memory is bounded
whatever the width and sample count; time grows with samples x T x the network's MACs.

SynOps of a conv layer (`conv_fan_out`, `conv_synops`): an input spike at channel c, position (y, x)
reaches every output (o, y', x') whose kernel window covers it, i.e. each tap (ky, kx) with
y'*stride - pad + ky*dil = y (and the same for x) for some y' inside the output map; its fan-out is
    sum over such taps (ky, kx) of #{o : W[o, c, ky, kx] != 0},
which is out_channels x kh x kw for an interior pixel at stride 1 with dense weights, about
out_channels x kh x kw / stride^2 on average at stride s, and less on the border (zero padding
receives no spikes). SynOps = sum over inputs of events x fan-out (mean over samples); ResNet
1x1 shortcut convs are added to the layer whose neurons they drive (the block's conv2). As for
every layer, any non-zero input counts as one event (resnet19's fc1 reads the pooled spike
fractions, so a channel with a spike anywhere is one event per step). Dense MACs
of a conv: T x out_channels x H_out x W_out x in_channels x kh x kw.
"""
from __future__ import annotations

import hashlib
import io
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

SATURATED_AT = 0.9          # a neuron firing on at least 90 % of the steps counts as saturated
SYNC_NEURONS = 64           # spike-contrast and correlation run on at most this many neurons
CONV_NEURONS = 512          # conv models: neurons recorded per layer (random sample of channel x position)
RECORD_ELEMENTS = 1 << 26   # conv models: traced activity values per forward chunk (bounds memory, ~0.5 GB)
CONV_DATA_BATCH = 16        # conv models: test samples encoded per batch (fixed, so chunking never
                            # changes the encoding noise)
CONV_MODELS = ("vgg11", "resnet19")
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


class InspectError(ValueError):
    """Bad input for Inspect (missing/corrupt checkpoint, unsupported run); the message says why."""


# ============================================================== statistics (pure)
def _as_spikes(spikes) -> np.ndarray:
    s = spikes.detach().cpu().numpy() if isinstance(spikes, torch.Tensor) else np.asarray(spikes)
    if s.ndim != 3:
        raise ValueError(f"spikes: expected an array [T, B, N], got shape {s.shape}")
    return s != 0


def firing_rates(spikes) -> np.ndarray:
    """[T, B, N] -> [N]: spikes per neuron per step, averaged over samples."""
    s = _as_spikes(spikes)
    return s.mean(axis=(0, 1)) if s.size else np.zeros(s.shape[2])


def spike_times(spikes) -> list[list[np.ndarray]]:
    """[T, B, N] -> per neuron, per sample, the spike times (time-step indices, ascending)."""
    s = _as_spikes(spikes)
    T, B, N = s.shape
    flat = s.transpose(2, 1, 0).reshape(N * B, T)             # row = (neuron, sample)
    rows, ts = np.nonzero(flat)
    cuts = np.searchsorted(rows, np.arange(1, N * B))
    per_row = np.split(ts.astype(float), cuts)
    return [per_row[n * B:(n + 1) * B] for n in range(N)]


def isi_per_neuron(spikes) -> list[np.ndarray]:
    """[T, B, N] -> per neuron, its inter-spike intervals (steps) within each sample, pooled over samples.
    Vectorised; equals elephant.statistics.isi on each sample's train (tested)."""
    s = _as_spikes(spikes)
    T, B, N = s.shape
    flat = s.transpose(2, 1, 0).reshape(N * B, T)
    rows, ts = np.nonzero(flat)                                # sorted by row, then time
    same = rows[1:] == rows[:-1]
    isi = (ts[1:] - ts[:-1])[same].astype(float)
    neuron = rows[1:][same] // B
    cuts = np.searchsorted(neuron, np.arange(1, N))
    return np.split(isi, cuts)


def isi_cv(spikes) -> np.ndarray:
    """[T, B, N] -> [N] coefficient of variation of each neuron's ISIs (elephant.statistics.cv, i.e.
    std/mean with ddof 0); NaN for a neuron with fewer than 2 intervals."""
    from elephant.statistics import cv
    out = np.full(_as_spikes(spikes).shape[2], np.nan)
    isis = isi_per_neuron(spikes)
    ok = np.array([isi.size >= 2 for isi in isis], dtype=bool)
    if ok.any():      # one Elephant call on the NaN-padded rows (7x faster than a call per neuron)
        rows = [isis[n] for n in np.nonzero(ok)[0]]
        sizes = np.array([r.size for r in rows])
        pad = np.full((len(rows), int(sizes.max())), np.nan)
        pad[np.arange(pad.shape[1])[None, :] < sizes[:, None]] = np.concatenate(rows)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[ok] = np.asarray(cv(pad, axis=1, nan_policy="omit"), dtype=float)
    return out


def fano_factors(spikes) -> np.ndarray:
    """[T, B, N] -> [N] Fano factor of each neuron's spike count across samples (trials), by
    elephant.statistics.fanofactor: var/mean; NaN for a neuron silent in every sample."""
    from elephant.statistics import fanofactor
    trains = spike_times(spikes)
    out = np.full(len(trains), np.nan)
    for n, per_sample in enumerate(trains):
        if len(per_sample) and any(t.size for t in per_sample):
            out[n] = float(fanofactor(per_sample))
    return out


def _subsample(n: int, k: int, seed: int = 0) -> np.ndarray:
    if n <= k:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def correlation_matrix(spikes, neurons: np.ndarray | None = None) -> np.ndarray:
    """Pearson correlation of binned spike counts (1 bin = 1 step, samples back to back), by
    elephant.spike_train_correlation.correlation_coefficient; [k, k], NaN rows for silent neurons."""
    import quantities as pq
    from elephant.conversion import BinnedSpikeTrain
    from elephant.spike_train_correlation import correlation_coefficient
    s = _as_spikes(spikes)
    if neurons is not None:
        s = s[:, :, neurons]
    T, B, N = s.shape
    counts = s.transpose(2, 1, 0).reshape(N, B * T).astype(np.int64)
    bst = BinnedSpikeTrain(counts, bin_size=1 * pq.ms, t_start=0 * pq.ms)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore")        # silent neurons: undefined correlation, NaN
        return np.atleast_2d(correlation_coefficient(bst))


def mean_pairwise_correlation(spikes, max_neurons: int = SYNC_NEURONS, seed: int = 0) -> float:
    """Mean off-diagonal correlation over pairs of neurons that both vary (Elephant); NaN if < 2 do."""
    s = _as_spikes(spikes)
    T, B, N = s.shape
    flat = s.transpose(2, 1, 0).reshape(N, B * T)
    varying = np.nonzero(flat.any(1) & ~flat.all(1))[0]
    if varying.size < 2:
        return float("nan")
    pick = varying[_subsample(varying.size, max_neurons, seed)]
    c = correlation_matrix(s, pick)
    off = c[~np.eye(c.shape[0], dtype=bool)]
    off = off[np.isfinite(off)]
    return float(off.mean()) if off.size else float("nan")


def spike_contrast_sync(spikes, max_neurons: int = SYNC_NEURONS, seed: int = 0) -> float:
    """Spike-contrast synchrony (Ciba et al. 2018) by elephant.spike_train_synchrony.spike_contrast on
    up to max_neurons neurons, samples back to back (1 step = 1 ms, smallest bin 0.5 steps).
    0 = asynchronous, 1 = fully synchronous; NaN when undefined (no neuron with 2 or more spikes)."""
    import neo
    import quantities as pq
    from elephant.spike_train_synchrony import spike_contrast
    s = _as_spikes(spikes)
    T, B, N = s.shape
    if N < 2 or T * B < 2:
        return float("nan")
    flat = s.transpose(2, 1, 0).reshape(N, B * T)
    pick = _subsample(N, max_neurons, seed)
    trains = [neo.SpikeTrain(np.nonzero(flat[n])[0].astype(float), t_start=0.0, t_stop=float(B * T),
                             units="ms") for n in pick]
    if not any(len(t) >= 2 for t in trains):
        return float("nan")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(spike_contrast(trains, min_bin=0.5 * pq.ms))
    except ValueError:
        return float("nan")


def chi(spikes) -> float:
    """Population synchrony chi (Golomb 2007; snncore.metrics.chi_synchrony), batch mean."""
    from .metrics import chi_synchrony
    return float(chi_synchrony(torch.as_tensor(_as_spikes(spikes), dtype=torch.float32)))


def silent_saturated(rates: np.ndarray, saturated_at: float = SATURATED_AT) -> tuple[int, int]:
    """(neurons that never fired, neurons firing on >= saturated_at of the steps)."""
    r = np.asarray(rates, dtype=float)
    return int((r == 0).sum()), int((r >= saturated_at).sum())


def sparsity(activations) -> float:
    """Share of zero entries of an activation array (1 = all zero)."""
    a = activations.detach().cpu().numpy() if isinstance(activations, torch.Tensor) else np.asarray(activations)
    return float((a == 0).mean()) if a.size else float("nan")


def synops(pre, weight) -> float:
    """Synaptic operations per sample of one weight layer: pre [T, B, N_pre] activity (any non-zero
    entry counts as an event), weight [N_post, N_pre]; each event costs its neuron's fan-out
    (the non-zero weights in its column). Mean over the B samples."""
    p = pre.detach().cpu().numpy() if isinstance(pre, torch.Tensor) else np.asarray(pre)
    w = weight.detach().cpu().numpy() if isinstance(weight, torch.Tensor) else np.asarray(weight)
    p = p.reshape(p.shape[0], p.shape[1], -1)
    if w.shape[1] != p.shape[2]:
        raise ValueError(f"synops: weight has {w.shape[1]} inputs but pre has {p.shape[2]} neurons")
    fan_out = (w != 0).sum(axis=0)                             # [N_pre]
    events = (p != 0).sum(axis=0)                              # [B, N_pre]
    return float((events @ fan_out).mean()) if p.shape[1] else 0.0


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, (int, np.integer)) else (int(v[0]), int(v[1]))


def conv_out_size(n: int, k: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length of a convolution along one axis (PyTorch's formula)."""
    return (n + 2 * padding - dilation * (k - 1) - 1) // stride + 1


def _taps(n_in: int, k: int, stride: int, padding: int, dilation: int) -> np.ndarray:
    """[n_in, k] bool: kernel tap j of some in-range output position lands on input position i."""
    n_out = conv_out_size(n_in, k, stride, padding, dilation)
    o = np.arange(n_in)[:, None] + padding - dilation * np.arange(k)[None, :]     # = y' * stride
    return (o >= 0) & (o % stride == 0) & (o // stride < n_out)


def conv_fan_out(weight, in_hw, stride=1, padding=0, dilation=1) -> np.ndarray:
    """[C_in, H, W] fan-out of each input position of a 2-D convolution (groups=1): the synapses an
    input spike there drives, sum over the taps (ky, kx) that place it inside the output map of the
    non-zero weights W[:, c, ky, kx] (see the module docstring)."""
    w = weight.detach().cpu().numpy() if isinstance(weight, torch.Tensor) else np.asarray(weight)
    if w.ndim != 4:
        raise ValueError(f"conv_fan_out: expected a conv weight [C_out, C_in, kh, kw], got shape {w.shape}")
    (H, W), (sh, sw), (ph, pw), (dh, dw) = _pair(in_hw), _pair(stride), _pair(padding), _pair(dilation)
    nz = (w != 0).sum(axis=0).astype(np.float64)                     # [C_in, kh, kw]
    vy = _taps(H, w.shape[2], sh, ph, dh).astype(np.float64)         # [H, kh]
    vx = _taps(W, w.shape[3], sw, pw, dw).astype(np.float64)         # [W, kw]
    return np.einsum("cij,yi,xj->cyx", nz, vy, vx)


def conv_synops(pre, weight, stride=1, padding=0, dilation=1) -> float:
    """Synaptic operations per sample of one conv layer: pre [T, B, C_in, H, W] activity (any non-zero
    entry is an event) times the fan-out of its position (conv_fan_out), summed; mean over samples."""
    p = pre.detach().cpu().numpy() if isinstance(pre, torch.Tensor) else np.asarray(pre)
    if p.ndim != 5:
        raise ValueError(f"conv_synops: expected pre [T, B, C, H, W], got shape {p.shape}")
    if not p.shape[1]:
        return 0.0
    events = (p != 0).sum(axis=0).mean(axis=0)                        # [C_in, H, W] per sample
    fan = conv_fan_out(weight, p.shape[-2:], stride, padding, dilation)
    if fan.shape != events.shape:
        raise ValueError(f"conv_synops: weight has {fan.shape[0]} input channels but pre has {events.shape[0]}")
    return float((events * fan).sum())


def conv_dense_macs(weight_shape, in_hw, T: int, stride=1, padding=0, dilation=1) -> float:
    """Multiply-accumulates per sample of a dense conv over T steps: T x C_out x H_out x W_out x C_in x kh x kw."""
    co, ci, kh, kw = (int(v) for v in weight_shape)
    (H, W), (sh, sw), (ph, pw), (dh, dw) = _pair(in_hw), _pair(stride), _pair(padding), _pair(dilation)
    return float(T * co * conv_out_size(H, kh, sh, ph, dh) * conv_out_size(W, kw, sw, pw, dw) * ci * kh * kw)


@dataclass
class LayerStats:
    """Statistics of one spiking layer; per-neuron arrays plus the scalar summary."""
    name: str
    n_neurons: int
    rates: np.ndarray                 # [N] spikes / step
    cv: np.ndarray                    # [N] NaN where undefined
    fano: np.ndarray                  # [N] NaN where undefined
    corr: float
    chi: float
    spike_contrast: float
    silent: int
    saturated: int
    sparsity: float
    synops: float | None = None       # of the weight layer that drives these neurons, per sample
    dense_macs: float | None = None   # T x N_pre x N_post: what a dense network would compute
    rates_all: np.ndarray | None = None   # conv models: [n_neurons] rate of every neuron (rates: the sample)
    shape: tuple | None = None        # (C, H, W) of a conv layer's spike map

    def summary(self) -> dict[str, Any]:
        def m(a):
            a = a[np.isfinite(a)]
            return float(a.mean()) if a.size else None
        every = self.rates if self.rates_all is None else self.rates_all
        finite = every[np.isfinite(every)]
        return {"neurons": self.n_neurons, "neurons_recorded": int(self.rates.size),
                "map": None if self.shape is None else [int(v) for v in self.shape], "rate_mean": m(every),
                "rate_median": float(np.median(finite)) if finite.size else None,
                "cv_isi_mean": m(self.cv), "cv_isi_defined": int(np.isfinite(self.cv).sum()),
                "fano_mean": m(self.fano), "fano_defined": int(np.isfinite(self.fano).sum()),
                "corr_mean": _num(self.corr), "chi": _num(self.chi),
                "spike_contrast": _num(self.spike_contrast), "silent": self.silent,
                "saturated": self.saturated, "sparsity": _num(self.sparsity),
                "synops_per_sample": _num(self.synops), "dense_macs_per_sample": _num(self.dense_macs)}


def _num(v):
    return None if v is None or not math.isfinite(v) else float(v)


def layer_statistics(name: str, spikes, *, max_sync_neurons: int = SYNC_NEURONS, seed: int = 0,
                     saturated_at: float = SATURATED_AT) -> LayerStats:
    """All the per-layer statistics of spikes [T, B, N]."""
    s = _as_spikes(spikes)
    rates = firing_rates(s)
    silent, saturated = silent_saturated(rates, saturated_at)
    return LayerStats(name=name, n_neurons=s.shape[2], rates=rates, cv=isi_cv(s), fano=fano_factors(s),
                      corr=mean_pairwise_correlation(s, max_sync_neurons, seed), chi=chi(s),
                      spike_contrast=spike_contrast_sync(s, max_sync_neurons, seed),
                      silent=silent, saturated=saturated, sparsity=sparsity(s))


def neuron_statistics(spikes, neuron: int) -> dict[str, Any]:
    """One neuron's numbers (for the clicked neuron): rate, spike count, CV of ISI, Fano factor."""
    s = _as_spikes(spikes)[:, :, neuron:neuron + 1]
    cv, fano = isi_cv(s)[0], fano_factors(s)[0]
    return {"neuron": int(neuron), "rate": float(s.mean()), "spikes": int(s.sum()),
            "samples_with_spikes": int(s.any(axis=0).sum()), "cv_isi": _num(cv), "fano": _num(fano)}


# ============================================================== loading and recording
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
    from .config import ConfigError, RunConfig
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
    from .rules import get_rule
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
    from .data import load_dataset
    from .models import build_model
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
        return _record_conv(model, data, cfg, state, n, g)
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
def _record_conv(model, data, cfg, state: dict, n: int, g: torch.Generator) -> Recording:
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
            picks[name] = _subsample(N, CONV_NEURONS, seed=names.index(name))
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


def analyse(rec: Recording, *, max_sync_neurons: int = SYNC_NEURONS, seed: int = 0) -> dict[str, LayerStats]:
    """LayerStats for every weight layer (input order) with the SynOps of the weights driving it; a
    non-spiking read-out (logits) has no spike statistics, only its SynOps. Conv models: the spike
    statistics describe the recorded neuron sample; n_neurons, silent, saturated, sparsity and the
    mean rate cover every neuron of the layer (from its spike counts)."""
    out = {}
    for name, lr in rec.layers.items():
        if lr.synops is not None:
            ops, macs = lr.synops, lr.dense_macs
        else:
            ops = synops(lr.pre, lr.weight)
            macs = float(lr.pre.shape[0] * lr.weight.shape[0] * lr.weight.shape[1])
        if lr.spiking:
            st = layer_statistics(name, lr.post, max_sync_neurons=max_sync_neurons, seed=seed)
            if lr.rates_all is not None:
                st.n_neurons, st.rates_all, st.shape = lr.n_total, lr.rates_all, lr.shape
                st.silent, st.saturated = silent_saturated(lr.rates_all)
                st.sparsity = float(1.0 - lr.rates_all.astype(np.float64).mean())
        else:   # read-out logits: no spikes to describe, only its cost and how sparse its input is
            n = lr.n_total
            nan = np.full(n, np.nan)
            st = LayerStats(name=name, n_neurons=n, rates=nan, cv=nan, fano=nan, corr=float("nan"),
                            chi=float("nan"), spike_contrast=float("nan"), silent=0, saturated=0,
                            sparsity=float("nan"))
        st.synops, st.dense_macs = ops, macs
        out[name] = st
    return out


def checkpoint_unit(cfg: dict | Any) -> str:
    """What a run's checkpoints count: the rule's checkpoint_unit (e.g. "task" for a rule that
    writes one per task of its sequence), else "epoch"."""
    return getattr(_rule_class(cfg), "checkpoint_unit", "epoch")


def report(rec: Recording, stats: dict[str, LayerStats], source: str) -> dict[str, Any]:
    """JSON-able summary: what was inspected and the per-layer numbers."""
    cfg = rec.cfg
    total_ops = sum(s.synops or 0.0 for s in stats.values())
    total_macs = sum(s.dense_macs or 0.0 for s in stats.values())
    spiking = [s for s in stats.values() if rec.layers[s.name].spiking]
    zeros = sum(s.sparsity * s.n_neurons for s in spiking)
    return {"source": source, "rule": cfg.rule, "model": cfg.model, "dataset": cfg.dataset,
            "epoch": rec.epoch, "step": rec.step, "checkpoint_unit": rec.unit,
            "samples": int(rec.labels.size if rec.samples is None else rec.samples),
            "timesteps": int(cfg.timesteps if rec.timesteps is None else rec.timesteps),
            "accuracy": _num(rec.accuracy),
            "synops_per_sample": total_ops, "dense_macs_per_sample": total_macs,
            "activation_sparsity": _num(zeros / max(sum(s.n_neurons for s in spiking), 1)) if spiking else None,
            "layers": {n: {"spiking": rec.layers[n].spiking, **s.summary()} for n, s in stats.items()}}


# ============================================================== weights over training
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


# ============================================================== runs
def run_checkpoint(store, run_id: str) -> tuple[int, int, Path]:
    """(epoch, step, path) of a run's newest checkpoint; InspectError if the run is unknown or has none."""
    from .store import check_run_id
    try:
        check_run_id(run_id)
    except ValueError as e:
        raise InspectError(str(e)) from None
    run = store.get_run(run_id)
    if run is None:
        raise InspectError(f"run {run_id!r} is not in {store.root}")
    cks = store.checkpoints(run_id)
    if not cks:
        from .config import RunConfig
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
