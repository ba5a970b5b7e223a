"""Datasets: a registry of loaders returning a DataBundle; batches are shaped [T, B, ...].

Static datasets keep their samples as tensors (float in [0, 1], or uint8 with `scale` = 1/255 to
save memory) and are encoded to spikes per batch (rate / latency / direct current); spike datasets
keep spike trains [N, T, D] (bool, or bit-packed uint8 [N, T, ceil(D/8)] with `packed`).

Built-ins (digits, synthetic, l2l_tasks) need no network; the others read their standard files
from the data folder (--data-dir, $SNNCORE_DATA or ./data) and download what is missing.
l2l_tasks (l2l_tasks.py) is a task family, not a sample set: a rule that requires it runs its own
loop and draws tasks with make_family; load_dataset says so instead of building a DataBundle.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .download import DatasetError, OfflineError, data_root  # noqa: F401 -- re-exported
from .encode import encode

BUILTIN = ("digits", "synthetic", "l2l_tasks")
IMAGE_SETS = ("mnist", "fashion_mnist", "cifar10", "cifar100")
EVENT_SETS = ("nmnist", "dvs_gesture", "cifar10_dvs", "shd")
FILE_SETS = IMAGE_SETS + EVENT_SETS
TASK_SETS = ("l2l_tasks",)          # generated task families (l2l_tasks.py), no fixed samples


@dataclass
class DataBundle:
    name: str
    train_x: torch.Tensor          # static: [N, D] float in [0, 1] (or uint8, see scale); spikes: [N, T, D] bool
    train_y: torch.Tensor          # [N] int64
    test_x: torch.Tensor
    test_y: torch.Tensor
    n_classes: int
    kind: str                      # "static" | "spikes"
    encoding: str                  # for static data; "spikes" otherwise
    description: str = ""
    input_shape: tuple = ()        # per-time-step sample shape, e.g. (1, 8, 8) for images; () = flat [D]
    scale: float = 1.0             # static: stored value * scale = intensity in [0, 1]
    norm: tuple | None = None      # static: per-channel (mean, std) applied to the direct-current input
    augment: bool = False          # static images: random crop (pad 4) + horizontal flip on train batches
    packed: bool = False           # spikes stored bit-packed along the last axis
    width: int = 0                 # D when it is not the last storage dimension (packed)

    @property
    def shape(self) -> tuple:
        """(C, H, W) for image-like data, else (D,)."""
        return tuple(self.input_shape) or (self.input_size,)

    @property
    def input_size(self) -> int:
        if self.width:
            return int(self.width)
        return int(self.train_x.shape[-1])

    @property
    def frames(self) -> int:
        """T stored with spike data (0 for static data, encoded to any T)."""
        return int(self.train_x.shape[1]) if self.kind == "spikes" else 0

    def to(self, device) -> "DataBundle":
        for k in ("train_x", "train_y", "test_x", "test_y"):
            setattr(self, k, getattr(self, k).to(device))
        return self

    def info(self) -> dict:
        return {"dataset": self.name, "input_size": self.input_size, "classes": self.n_classes,
                "train_samples": int(self.train_y.numel()), "test_samples": int(self.test_y.numel()),
                "encoding": self.encoding, "description": self.description, "shape": list(self.shape),
                **({"frames": self.frames} if self.kind == "spikes" else {})}

    def decode(self, xb: torch.Tensor, *, train: bool = False,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Stored samples -> static: float [B, D] in [0, 1] (augmented when asked for and train);
        spikes: bool/float [B, T, D]."""
        if self.kind == "spikes":
            if self.packed:
                from .events import unpack
                return unpack(xb, self.input_size)
            return xb
        x = xb.float() * self.scale if (self.scale != 1.0 or xb.dtype != torch.float32) else xb
        if self.augment and train and self.input_shape:
            from .images import augment_crop_flip
            x = augment_crop_flip(x, tuple(self.input_shape), generator)
        return x

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        """Direct current: (x - mean) / std per channel (x [..., D], channels major in D)."""
        mean, std = self.norm
        C = len(mean)
        per = x.shape[-1] // C
        m = torch.tensor(mean, device=x.device).repeat_interleave(per)
        s = torch.tensor(std, device=x.device).repeat_interleave(per)
        return (x - m) / s

    def batches(self, split: str, batch_size: int, T: int, *, shuffle: bool,
                generator: torch.Generator | None = None, rank: int = 0, world: int = 1,
                pad: bool = True, sample_generator: torch.Generator | None = None):
        """Yield (x [T, B, D] float spikes or currents, y [B]) over one pass of the split.

        Several processes (world > 1): every rank draws the same order from ``generator`` (same
        seed on every rank) and takes the rank-strided share order[rank::world]; with ``pad`` the
        order is first extended by wrap-around to a multiple of world (torch's DistributedSampler),
        so every rank yields the same number of equal-sized batches. ``sample_generator`` (default:
        ``generator``) draws the encoding / augmentation noise; give each rank its own, so the
        shared order generator stays in step on every rank."""
        xs, ys = (self.train_x, self.train_y) if split == "train" else (self.test_x, self.test_y)
        n = ys.numel()
        order = (torch.randperm(n, generator=generator).to(ys.device) if shuffle
                 else torch.arange(n, device=ys.device))
        if world > 1:
            if pad and n % world and n:
                extra = world - n % world
                order = torch.cat([order, order.repeat(-(-extra // n))[:extra]])
            order = order[rank::world]
            n = order.numel()
        gen = sample_generator if sample_generator is not None else generator
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            xb = self.decode(xs[idx], train=split == "train", generator=gen)
            if self.kind == "spikes":
                x = xb.transpose(0, 1).float()                    # [T, B, D]
            else:
                x = encode(xb, T, self.encoding, generator=gen)
                if self.encoding == "direct" and self.norm is not None:
                    x = self._normalise(x[0]).unsqueeze(0).expand_as(x)    # still one copy over T
            yield x, ys[idx]

    def steps_per_epoch(self, batch_size: int, world: int = 1) -> int:
        """Batches per epoch of each rank (batch_size per rank; the share is padded to ceil(n/world))."""
        return -(-(-(-int(self.train_y.numel()) // world)) // batch_size)


def load_dataset(cfg, *, allow_download: bool = True, progress=None) -> DataBundle:
    """Build the dataset a RunConfig names. Built-ins need no network; file datasets raise
    DatasetError (missing / corrupt files, offline, a package not installed) with the fix."""
    if cfg.dataset == "digits":
        from .digits import load_digits
        b = load_digits(cfg.encoding)
    elif cfg.dataset == "synthetic":
        from .synthetic import make_synthetic
        b = make_synthetic(T=cfg.timesteps, classes=cfg.syn_classes, channels=cfg.syn_channels,
                           group=cfg.syn_group, n_train=cfg.syn_samples, sync=cfg.syn_sync,
                           jitter=cfg.syn_jitter, noise=cfg.syn_noise, seed=cfg.seed)
    elif cfg.dataset in IMAGE_SETS:
        from .images import load_images
        b = load_images(cfg.dataset, encoding=cfg.encoding, data_dir=cfg.data_dir, augment=cfg.augment,
                        allow_download=allow_download, progress=progress)
    elif cfg.dataset in EVENT_SETS:
        from .events import load_events
        b = load_events(cfg.dataset, data_dir=cfg.data_dir, frames=cfg.frames or cfg.timesteps,
                        mode=cfg.frame_mode, allow_download=allow_download, progress=progress)
    elif cfg.dataset in TASK_SETS:
        from .l2l_tasks import DESCRIPTION
        raise ValueError(f"dataset: {cfg.dataset!r} is {DESCRIPTION}; it has no fixed samples to load: "
                         "the rule that requires it draws its tasks (snncore.data.l2l_tasks.make_family)")
    else:
        raise ValueError(f"dataset: unknown dataset {cfg.dataset!r}")
    if cfg.n_train and cfg.n_train < b.train_y.numel():
        b.train_x, b.train_y = b.train_x[:cfg.n_train], b.train_y[:cfg.n_train]
    return b


def prepare_dataset(cfg, *, allow_download: bool = True, progress=None) -> None:
    """Fetch what is missing and build any frame cache now, so a run starts on usable data
    (raises DatasetError with the file and the fix). Built-ins: nothing to do."""
    if cfg.dataset in FILE_SETS:
        load_dataset(cfg, allow_download=allow_download, progress=progress)
