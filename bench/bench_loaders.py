"""Loader speed against the model's step rate, measured in the same run on the same machine.

    python bench/bench_loaders.py [--quick] [--batches 50] [--repeats 3] [--only mnist,shd] [--json]

Writes synthetic files in the real formats to a temp folder with our writers, at full size by
default (MNIST: 60,000 + 10,000 IDX images; CIFAR-10: 5 x 10,000 + 10,000 pickled images) and, for
the event sets, realistic events per sample on a subset of the samples (N-MNIST: 6,000 .bin files
of 4,000 events; SHD: 2,000 HDF5 trains of 8,000 spikes; DVS Gesture: 33 .npy recordings of
300,000 events over 6 s; CIFAR10-DVS: 100 AEDAT4 files of 200,000 events over 1.3 s, written by
tests/aedat4_writer.py), loads them through load_dataset (the code a run uses) and times
`DataBundle.batches` (decode + augmentation + encoding; batch 64, T = 16) beside one training step
(forward + backward + Adam) of a 256-hidden spiking MLP on the same batches. Target: loader >= 3x
the step rate. The event sets are timed from their frame cache; the first load builds it and its
time per sample is reported (the cost of the first epoch's data on the full dataset: x N samples).
--quick takes a tenth of the samples. Medians of --repeats; the load average is printed with them.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch



def write_files(root: Path, quick: bool, only: set) -> dict:
    from snncore.data.events import write_nmnist_bin, write_shd_h5
    from snncore.data.images import write_cifar_batch, write_idx
    r = np.random.default_rng(0)
    n_mnist, n_cifar = (6000, 1000) if quick else (60_000, 10_000)
    out = {}
    if "mnist" in only:
        d = root / "MNIST/raw"
        d.mkdir(parents=True)
        for split, n in (("train", n_mnist), ("t10k", n_mnist // 6)):
            write_idx(d / f"{split}-images-idx3-ubyte.gz", r.integers(0, 256, (n, 28, 28), dtype=np.uint8))
            write_idx(d / f"{split}-labels-idx1-ubyte.gz", r.integers(0, 10, n, dtype=np.uint8))
        out["mnist_train"] = n_mnist
    if "cifar10" in only:
        d = root / "cifar-10-batches-py"
        d.mkdir(parents=True)
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            write_cifar_batch(d / name, r.integers(0, 256, (n_cifar, 3072), dtype=np.uint8),
                              r.integers(0, 10, n_cifar))
        out["cifar10_train"] = 5 * n_cifar
    if "nmnist" in only:
        n_ev = 60 if quick else 600                             # per digit and split
        for split in ("Train", "Test"):
            for digit in range(10):
                dd = root / "NMNIST" / split / str(digit)
                dd.mkdir(parents=True)
                for k in range(n_ev if split == "Train" else n_ev // 6):
                    m = 4000
                    write_nmnist_bin(dd / f"{k:05d}.bin", r.integers(0, 34, m), r.integers(0, 34, m),
                                     np.sort(r.integers(0, 300_000, m)), r.integers(0, 2, m))
        out["nmnist_train"] = 10 * n_ev
    if "shd" in only:
        d = root / "SHD"
        d.mkdir()
        n_shd = 200 if quick else 2000
        for split, n in (("train", n_shd), ("test", n_shd // 4)):
            times = [np.sort(r.uniform(0, 1.0, 8000)) for _ in range(n)]
            units = [r.integers(0, 700, 8000) for _ in range(n)]
            write_shd_h5(d / f"shd_{split}.h5", times, units, r.integers(0, 20, n))
        out["shd_train"] = n_shd
    if "dvs_gesture" in only:
        m = 300_000 if not quick else 30_000
        users = [("ibmGestureTrain", "user01_fluorescent"), ("ibmGestureTrain", "user02_led"),
                 ("ibmGestureTest", "user24_natural")]
        for split, user in users:
            d = root / "DVSGesture" / split / user
            d.mkdir(parents=True)
            for label in range(11):                           # Tonic's .npy: x, y, p, t in ms
                ev = np.stack([r.integers(0, 128, m), r.integers(0, 128, m), r.integers(0, 2, m),
                               np.sort(r.integers(0, 6000, m))], axis=1).astype(np.int32)
                np.save(d / f"{label}.npy", ev)
        out["dvs_gesture_train"] = 22
    if "cifar10_dvs" in only:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        from aedat4_writer import write_aedat4
        from tonic.datasets import CIFAR10DVS
        per_class, m = (5, 20_000) if quick else (10, 200_000)     # 5: the fewest that leave a test file
        for cname in CIFAR10DVS.classes:
            d = root / "CIFAR10DVS" / cname
            d.mkdir(parents=True)
            for k in range(per_class):
                t = 1_600_000_000_000_000 + np.sort(r.integers(0, 1_300_000, m))
                write_aedat4(d / f"cifar10_{cname}_{k}.aedat4", t, r.integers(0, 128, m), r.integers(0, 128, m),
                             r.integers(0, 2, m), packet_size=4096)
        out["cifar10_dvs_train"] = 10 * round(per_class * 0.9)
    return out


def time_loader(b, n_batches: int, T: int = 16, bs: int = 64) -> tuple[float, list]:
    """Batches per second over n_batches (further epochs when the split is shorter)."""
    g = torch.Generator().manual_seed(0)
    kept, done, t0 = [], 0, time.perf_counter()
    while done < n_batches:
        for x, y in b.batches("train", bs, T, shuffle=True, generator=g):
            if len(kept) < 5:
                kept.append((x, y))
            done += 1
            if done >= n_batches:
                break
    return done / (time.perf_counter() - t0), kept


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


# train samples of the real datasets: the event sets' frame caches are tiled up to these counts
# before the loader is timed (the written subset only sets the per-sample cost of the first load)
REAL_TRAIN = {"nmnist": 60_000, "shd": 8_156, "dvs_gesture": 1_077, "cifar10_dvs": 9_000}
CASES = [("mnist", {"encoding": "rate"}), ("mnist", {"encoding": "direct"}),
         ("cifar10", {"encoding": "rate", "augment": True}), ("nmnist", {"frames": 16}),
         ("shd", {"frames": 16}), ("dvs_gesture", {"frames": 16}), ("cifar10_dvs", {"frames": 16})]


def run(args) -> dict:
    from snncore.config import RunConfig
    from snncore.data import load_dataset
    torch.set_num_threads(1)
    only = set(args.only.split(",")) if args.only else {name for name, _ in CASES}
    out = {"setup": {"threads": 1, "load_average_start": [round(v, 2) for v in os.getloadavg()]}, "loaders": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        out["setup"]["samples"] = write_files(root, args.quick, only)
        out["setup"]["write_seconds"] = round(time.perf_counter() - t0, 1)
        for name, extra in CASES:
            if name not in only:
                continue
            cfg = RunConfig.from_dict({"dataset": name, "data_dir": str(root), "timesteps": 16, **extra})
            t0 = time.perf_counter()
            b = load_dataset(cfg, allow_download=False)
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            load_dataset(cfg, allow_download=False)
            second = time.perf_counter() - t0
            n = int(b.train_y.numel() + b.test_y.numel())
            written = int(b.train_y.numel())
            if name in REAL_TRAIN and not args.quick:
                reps = -(-REAL_TRAIN[name] // written)
                b.train_x = b.train_x.repeat(reps, *([1] * (b.train_x.dim() - 1)))[:REAL_TRAIN[name]]
                b.train_y = b.train_y.repeat(reps)[:REAL_TRAIN[name]]
            loader = [time_loader(b, args.batches) for _ in range(args.repeats)]
            bps = float(np.median([l[0] for l in loader]))
            step = float(np.median([time_step(b, loader[0][1], max(5, args.batches // 5))
                                    for _ in range(args.repeats)]))
            load = os.getloadavg()[0]
            row = {"dataset": name, **extra, "train_samples": int(b.train_y.numel()), "written_train": written,
                   "load_s_first": round(first, 2), "load_ms_per_sample_first": round(1000 * first / n, 2),
                   "load_s_cached": round(second, 2), "loader_batches_per_s": round(bps, 1),
                   "loader_min_max": [round(min(l[0] for l in loader), 1), round(max(l[0] for l in loader), 1)],
                   "step_per_s": round(step, 1), "ratio": round(bps / step, 1), "load_average": round(load, 2)}
            out["loaders"].append(row)
            if not args.json:
                print(f"{name:11} {json.dumps(extra):34} load {first:7.2f}s ({1000 * first / n:6.2f} ms/sample, "
                      f"again {second:5.2f}s)  loader {bps:8.1f} batches/s  step {step:6.1f}/s  "
                      f"ratio {bps / step:6.1f}x  (load avg {load:.1f})", flush=True)
    out["setup"]["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    out["ok"] = all(r["ratio"] >= 3 for r in out["loaders"])
    return out


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a tenth of the samples")
    p.add_argument("--batches", type=int, default=50, help="batches timed per loader and repeat")
    p.add_argument("--repeats", type=int, default=3, help="timings per loader and per step (median)")
    p.add_argument("--only", default="", help="comma-separated datasets (default: all of "
                   + ", ".join(dict.fromkeys(n for n, _ in CASES)) + ")")
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
