"""Loader speed against the model's step rate, measured in the same run on the same machine.

    python bench/bench_loaders.py [--quick] [--batches 50] [--json]

Writes synthetic files in the real formats to a temp folder at realistic sizes (MNIST: 60,000 +
10,000 IDX images; CIFAR-10: 5 x 10,000 + 10,000 pickled images; N-MNIST: .bin files of ~4,000
events; SHD: HDF5 of ~8,000 spikes per sample), loads them through load_dataset (the code a run
uses) and times `DataBundle.batches` (decode + augmentation + encoding; batch 64, T = 16) beside
one training step (forward + backward + Adam) of a 256-hidden spiking MLP on the same batches.
Target: loader >= 3x the step rate. The event sets are timed from their frame cache (the first
load builds it; its time per sample is reported too).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def write_files(root: Path, quick: bool) -> dict:
    from snncore.data.events import write_nmnist_bin, write_shd_h5
    from snncore.data.images import write_cifar_batch, write_idx
    r = np.random.default_rng(0)
    n_mnist, n_cifar = (6000, 1000) if quick else (60_000, 10_000)
    d = root / "MNIST/raw"
    d.mkdir(parents=True)
    for split, n in (("train", n_mnist), ("t10k", n_mnist // 6)):
        write_idx(d / f"{split}-images-idx3-ubyte.gz", r.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(d / f"{split}-labels-idx1-ubyte.gz", r.integers(0, 10, n, dtype=np.uint8))
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        write_cifar_batch(d / name, r.integers(0, 256, (n_cifar, 3072), dtype=np.uint8), r.integers(0, 10, n_cifar))
    n_ev = 100 if quick else 600                             # per digit and split
    for split in ("Train", "Test"):
        for digit in range(10):
            dd = root / "NMNIST" / split / str(digit)
            dd.mkdir(parents=True)
            for k in range(n_ev if split == "Train" else n_ev // 6):
                m = 4000
                write_nmnist_bin(dd / f"{k:05d}.bin", r.integers(0, 34, m), r.integers(0, 34, m),
                                 np.sort(r.integers(0, 300_000, m)), r.integers(0, 2, m))
    d = root / "SHD"
    d.mkdir()
    n_shd = 400 if quick else 2000
    for split, n in (("train", n_shd), ("test", n_shd // 4)):
        times = [np.sort(r.uniform(0, 1.0, 8000)) for _ in range(n)]
        units = [r.integers(0, 700, 8000) for _ in range(n)]
        write_shd_h5(d / f"shd_{split}.h5", times, units, r.integers(0, 20, n))
    return {"mnist_train": n_mnist, "cifar10_train": 5 * n_cifar, "nmnist_train": 10 * n_ev, "shd_train": n_shd}


def time_loader(b, n_batches: int, T: int = 16, bs: int = 64) -> tuple[float, list]:
    g = torch.Generator().manual_seed(0)
    it = b.batches("train", bs, T, shuffle=True, generator=g)
    kept, t0 = [], time.perf_counter()
    for i, (x, y) in enumerate(it):
        if i < 5:
            kept.append((x, y))
        if i + 1 >= n_batches:
            break
    return (i + 1) / (time.perf_counter() - t0), kept


def time_step(b, batches: list, n_steps: int) -> float:
    from spikingjelly.activation_based import functional
    from snncore.config import RunConfig
    from snncore.models import build_model
    from snncore.train import loss_fn
    cfg = RunConfig.from_dict({"hidden": [256]})
    model = build_model(cfg, b.input_size, b.n_classes, b.input_shape)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    t0 = time.perf_counter()
    for i in range(n_steps):
        x, y = batches[i % len(batches)]
        functional.reset_net(model)
        loss = loss_fn(model(x), y, cfg.readout)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return n_steps / (time.perf_counter() - t0)


def run(args) -> dict:
    from snncore.config import RunConfig
    from snncore.data import load_dataset
    torch.set_num_threads(1)
    out = {"setup": {}, "loaders": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        out["setup"]["samples"] = write_files(root, args.quick)
        out["setup"]["write_seconds"] = round(time.perf_counter() - t0, 1)
        cases = [("mnist", {"encoding": "rate"}), ("mnist", {"encoding": "direct"}),
                 ("cifar10", {"encoding": "rate", "augment": True}), ("nmnist", {"frames": 16}),
                 ("shd", {"frames": 16})]
        for name, extra in cases:
            cfg = RunConfig.from_dict({"dataset": name, "data_dir": str(root), "timesteps": 16, **extra})
            t0 = time.perf_counter()
            b = load_dataset(cfg, allow_download=False)
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            load_dataset(cfg, allow_download=False)
            second = time.perf_counter() - t0
            loader = [time_loader(b, args.batches) for _ in range(3)]
            bps = float(np.median([l[0] for l in loader]))
            step = float(np.median([time_step(b, loader[0][1], max(5, args.batches // 5)) for _ in range(3)]))
            row = {"dataset": name, **extra, "train_samples": int(b.train_y.numel()),
                   "load_s_first": round(first, 2), "load_s_cached": round(second, 2),
                   "loader_batches_per_s": round(bps, 1), "step_per_s": round(step, 1),
                   "ratio": round(bps / step, 1)}
            out["loaders"].append(row)
            if not args.json:
                print(f"{name:8} {json.dumps(extra):34} load {first:6.2f}s (again {second:5.2f}s)  "
                      f"loader {bps:8.1f} batches/s  step {step:6.1f}/s  ratio {bps / step:6.1f}x", flush=True)
    out["ok"] = all(r["ratio"] >= 3 for r in out["loaders"])
    return out


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a tenth of the sizes")
    p.add_argument("--batches", type=int, default=50, help="batches timed per loader and repeat")
    p.add_argument("--json", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    res = run(args)
    if args.json:
        print(json.dumps(res))
    else:
        print(f"loader >= 3x step everywhere: {res['ok']}")
    return res


if __name__ == "__main__":
    main()
