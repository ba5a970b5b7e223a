"""scikit-learn's bundled 8x8 handwritten digits (1797 samples, offline), 80/20 stratified split.

The split arrays are kept in the user's cache folder ($XDG_CACHE_HOME or ~/.cache, then
snncore/digits-split-v1.npz) after the first load: importing scikit-learn (through SciPy) costs
~1.7 s, more than a whole default digits run, and every fresh process (a CLI run, each sweep
worker, the app's first run) would pay it. A built-in dataset writes nothing to the data folder.
Where the cache cannot be written, every load builds the split with scikit-learn as before.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import torch

CACHE = "digits-split-v1.npz"
_KEYS = ("xtr", "ytr", "xte", "yte")


def _build() -> dict:
    from sklearn.datasets import load_digits as _load
    from sklearn.model_selection import train_test_split

    d = _load()
    x = (d.data / 16.0).astype(np.float32)                        # pixel values 0..16 -> [0, 1]
    y = d.target.astype(np.int64)
    # a fixed split (not the run seed) so runs with different seeds share one test set
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    return dict(zip(_KEYS, (xtr, ytr, xte, yte)))


def _valid(a: dict) -> bool:
    return (a["xtr"].shape == (1437, 64) and a["xte"].shape == (360, 64) and a["xtr"].dtype == np.float32
            and a["ytr"].shape == (1437,) and a["yte"].shape == (360,) and a["ytr"].dtype == np.int64)


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "snncore"


def split_arrays(folder: str | Path | None = None) -> dict:
    """{xtr, ytr, xte, yte} numpy arrays: from the cache file (in ``folder``, default cache_dir())
    when it is there and sound, else built with scikit-learn and cached (written atomically; a
    failed write only skips caching)."""
    path = Path(folder or cache_dir()) / CACHE
    try:
        with np.load(path) as f:
            a = {k: f[k] for k in _KEYS}
        if _valid(a):
            return a
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        pass                                   # missing, truncated or foreign: rebuild it
    a = _build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{CACHE}.{os.getpid()}.tmp.npz")
        np.savez(tmp, **a)
        os.replace(tmp, path)
    except OSError:
        pass
    return a


def load_digits(encoding: str = "rate"):
    from . import DataBundle

    a = split_arrays()
    return DataBundle("digits", torch.from_numpy(a["xtr"]), torch.from_numpy(a["ytr"]), torch.from_numpy(a["xte"]),
                      torch.from_numpy(a["yte"]), 10, "static", encoding,
                      "scikit-learn digits, 8x8 grey images (64 inputs), 10 classes",
                      input_shape=(1, 8, 8))
