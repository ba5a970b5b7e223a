"""Datasets: a registry of loaders returning a DataBundle; batches are shaped [T, B, ...].

Static datasets keep their samples as float tensors in [0, 1] and are encoded to spikes per batch
(rate / latency / direct current); spike datasets keep bool spike trains [N, T, D].
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .encode import encode


@dataclass
class DataBundle:
    name: str
    train_x: torch.Tensor          # static: [N, D] float in [0, 1]; spikes: [N, T, D] bool
    train_y: torch.Tensor          # [N] int64
    test_x: torch.Tensor
    test_y: torch.Tensor
    n_classes: int
    kind: str                      # "static" | "spikes"
    encoding: str                  # for static data; "spikes" otherwise
    description: str = ""
    input_shape: tuple = ()        # per-time-step sample shape, e.g. (1, 8, 8) for images; () = flat [D]

    @property
    def shape(self) -> tuple:
        """(C, H, W) for image-like data, else (D,)."""
        return tuple(self.input_shape) or (self.input_size,)

    @property
    def input_size(self) -> int:
        return int(self.train_x.shape[-1])

    def to(self, device) -> "DataBundle":
        for k in ("train_x", "train_y", "test_x", "test_y"):
            setattr(self, k, getattr(self, k).to(device))
        return self

    def info(self) -> dict:
        return {"dataset": self.name, "input_size": self.input_size, "classes": self.n_classes,
                "train_samples": int(self.train_y.numel()), "test_samples": int(self.test_y.numel()),
                "encoding": self.encoding, "description": self.description, "shape": list(self.shape)}

    def batches(self, split: str, batch_size: int, T: int, *, shuffle: bool,
                generator: torch.Generator | None = None):
        """Yield (x [T, B, D] float spikes or currents, y [B]) over one pass of the split."""
        xs, ys = (self.train_x, self.train_y) if split == "train" else (self.test_x, self.test_y)
        n = ys.numel()
        order = (torch.randperm(n, generator=generator).to(ys.device) if shuffle
                 else torch.arange(n, device=ys.device))
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            xb = xs[idx]
            if self.kind == "spikes":
                x = xb.transpose(0, 1).float()                    # [T, B, D]
            else:
                x = encode(xb, T, self.encoding, generator=generator)
            yield x, ys[idx]

    def steps_per_epoch(self, batch_size: int) -> int:
        return -(-int(self.train_y.numel()) // batch_size)


def load_dataset(cfg) -> DataBundle:
    """Build the dataset a RunConfig names (all built-ins need no network)."""
    if cfg.dataset == "digits":
        from .digits import load_digits
        b = load_digits(cfg.encoding)
    elif cfg.dataset == "synthetic":
        from .synthetic import make_synthetic
        b = make_synthetic(T=cfg.timesteps, classes=cfg.syn_classes, channels=cfg.syn_channels,
                           group=cfg.syn_group, n_train=cfg.syn_samples, sync=cfg.syn_sync,
                           jitter=cfg.syn_jitter, noise=cfg.syn_noise, seed=cfg.seed)
    else:
        raise ValueError(f"dataset: unknown dataset {cfg.dataset!r}")
    if cfg.n_train and cfg.n_train < b.train_y.numel():
        b.train_x, b.train_y = b.train_x[:cfg.n_train], b.train_y[:cfg.n_train]
    return b
