"""scikit-learn's bundled 8x8 handwritten digits (1797 samples, offline), 80/20 stratified split."""
from __future__ import annotations

import numpy as np
import torch


def load_digits(encoding: str = "rate"):
    from sklearn.datasets import load_digits as _load
    from sklearn.model_selection import train_test_split

    from . import DataBundle

    d = _load()
    x = (d.data / 16.0).astype(np.float32)                        # pixel values 0..16 -> [0, 1]
    y = d.target.astype(np.int64)
    # a fixed split (not the run seed) so runs with different seeds share one test set
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    return DataBundle("digits", torch.from_numpy(xtr), torch.from_numpy(ytr), torch.from_numpy(xte),
                      torch.from_numpy(yte), 10, "static", encoding,
                      "scikit-learn digits, 8x8 grey images (64 inputs), 10 classes",
                      input_shape=(1, 8, 8))
