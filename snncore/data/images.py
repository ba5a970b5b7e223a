"""Static image datasets read from their standard files (our own readers; torchvision cannot be
imported beside this torch): IDX for MNIST / Fashion-MNIST, the python-pickle batches for CIFAR.

Images stay uint8 in memory ([N, C*H*W]) and are turned into floats per batch (see DataBundle.decode),
with CIFAR's crop + flip augmentation done there on the training split when asked for.
"""
from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import torch

from .download import _IDX, DatasetError, OfflineError, data_root, ensure, file_digest, spec

# per-channel mean / std of the training pixels in [0, 1] (used by the direct-current encoding)
NORM = {"mnist": ((0.1307,), (0.3081,)),
        "fashion_mnist": ((0.2860,), (0.3530,)),
        "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
        "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))}
TITLES = {"mnist": "MNIST handwritten digits", "fashion_mnist": "Fashion-MNIST clothing images",
          "cifar10": "CIFAR-10 colour images", "cifar100": "CIFAR-100 colour images (fine labels)"}
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _open(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DatasetError(f"{path} cannot be read ({getattr(e, 'strerror', None) or e}): "
                           f"delete it and fetch it again") from None


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (optionally .gz): magic 0 0 type ndim, big-endian dims, then the data."""
    path = Path(path)
    raw = _open(path)
    fix = "delete it and fetch it again"
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DatasetError(f"{path} is not an IDX file (bad magic number): {fix}")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise DatasetError(f"{path} is truncated (header cut short): {fix}")
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    want = int(np.prod(dims)) * dtype.itemsize
    body = raw[4 + 4 * ndim:]
    if len(body) != want:
        raise DatasetError(f"{path} is truncated or corrupt ({len(body)} data bytes, expected {want} for "
                           f"shape {tuple(dims)}): {fix}")
    return np.frombuffer(body, dtype=dtype).reshape(dims)


def _idx_file(folder: Path, stem: str) -> Path:
    for p in (folder / stem, folder / f"{stem}.gz"):
        if p.exists():
            return p
    raise DatasetError(f"{folder / stem}(.gz) is missing")


def _idx_present(folder: Path) -> list[str]:
    """Which of the four IDX files (each plain or .gz) are directly in folder."""
    return [n for n in _IDX if (folder / n).is_file() or (folder / f"{n}.gz").is_file()]


def _not_the_other_set(folder: Path, name: str) -> None:
    """Fashion-MNIST's files carry MNIST's names: a flat folder of the published .gz files of the
    other set (known by their checksums) is refused rather than trained on as `name`."""
    other = "fashion_mnist" if name == "mnist" else "mnist"
    for r in spec(other).resources:
        f = folder / r.filename
        if "labels" in r.filename and f.is_file() and file_digest(f) == r.md5:
            raise DatasetError(f"{f} is {other}'s file (its published checksum), not {name}'s: give --data-dir a "
                               f"folder with the {name} files, or use --dataset {other}")


def idx_folder(name: str, root: Path, explicit: bool, *, allow_download: bool = True, progress=None) -> Path:
    """The folder holding the four IDX files of `name`. A folder given explicitly (--data-dir, the
    data_dir field) may hold them directly, as users download them, or be torchvision's MNIST/
    with raw/ in it, and is then taken as the dataset asked for (both sets use the same names).
    Otherwise (and in the shared data folder, $SNNCORE_DATA or ./data, where a flat set would be
    ambiguous) torchvision's layout: <root>/MNIST/raw or <root>/FashionMNIST/raw, fetched if missing."""
    sub = Path(spec(name).folder)                        # MNIST/raw, FashionMNIST/raw
    nested = not [p for p in _IDX if not any((root / sub / a).exists() for a in (p, p + ".gz"))]
    if explicit and not nested:
        for folder in (root, root / "raw"):
            have = _idx_present(folder)
            if len(have) == len(_IDX):
                _not_the_other_set(folder, name)
                return folder
            if have and folder == root:
                gone = [n for n in _IDX if n not in have]
                urls = ", ".join(r.url for r in spec(name).resources if r.filename[:-3] in gone)
                raise DatasetError(f"{name}: {root} holds {', '.join(have)} but not {', '.join(gone)}(.gz): put "
                                   f"{urls} into {root} too (or point --data-dir at a folder with all four)")
    if not explicit and not nested and len(_idx_present(root)) == len(_IDX):
        raise DatasetError(f"{name}: {root} is the shared data folder and holds the four IDX files directly; "
                           f"MNIST and Fashion-MNIST use the same names, so give --data-dir {root} to use them as "
                           f"{name}, or move them into {root / sub}")
    try:
        return ensure(name, root, allow_download=allow_download, progress=progress)
    except OfflineError as e:
        raise OfflineError(f"{e}; a folder given as --data-dir may also hold the four files directly, as "
                           f"downloaded") from None


def load_idx_set(folder: Path, name: str):
    """(xtr [N, 784] uint8, ytr, xte, yte) from the four IDX files of the MNIST family."""
    out = []
    for split in ("train", "t10k"):
        x = read_idx(_idx_file(folder, f"{split}-images-idx3-ubyte"))
        y = read_idx(_idx_file(folder, f"{split}-labels-idx1-ubyte"))
        if x.ndim != 3 or y.ndim != 1 or x.shape[0] != y.shape[0] or x.dtype != np.uint8:
            raise DatasetError(f"{folder}: {split} images {x.shape} and labels {y.shape} do not match "
                               f"(expected [N, 28, 28] uint8 and [N]): fetch the {name} files again")
        if y.size and (y.min() < 0 or y.max() > 9):
            raise DatasetError(f"{folder}/{split}-labels-idx1-ubyte has labels outside 0..9: fetch it again")
        out += [torch.from_numpy(x.reshape(len(x), -1).copy()), torch.from_numpy(y.astype(np.int64))]
    return tuple(out)


# what a CIFAR batch may reference: numpy's array reconstruction (numpy 1 and 2 names) and the
# bytes codec protocol-2 pickles use; anything else (os.system, eval, ...) is refused, never called
_CIFAR_GLOBALS = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                  ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
                  ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"), ("copy_reg", "_reconstructor"),
                  ("copyreg", "_reconstructor"), ("__builtin__", "object"), ("builtins", "object")}


class _CifarUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _CIFAR_GLOBALS:
            raise pickle.UnpicklingError(f"refers to {module}.{name}, which a CIFAR batch never does")
        return super().find_class(module, name)


def read_cifar_batch(path: Path, label_key: str):
    """One python-pickle batch: dict with b'data' [N, 3072] uint8 (R, G, B planes) and labels.
    Unpickled with only numpy's array reconstruction allowed: a file with code in it is refused."""
    fix = "delete it and fetch it again"
    try:
        with open(path, "rb") as f:
            d = _CifarUnpickler(f, encoding="bytes").load()
    except FileNotFoundError:
        raise DatasetError(f"{path} is missing") from None
    except pickle.UnpicklingError as e:
        if "which a CIFAR batch never does" in str(e):
            raise DatasetError(f"{path} is not a CIFAR batch: it {e} (refused, not run): {fix}") from None
        raise DatasetError(f"{path} is truncated or corrupt (UnpicklingError): {fix}") from None
    except Exception as e:  # noqa: BLE001 -- unpickling a damaged file raises many kinds of errors
        raise DatasetError(f"{path} is truncated or corrupt ({type(e).__name__}): {fix}") from None
    if not isinstance(d, dict) or b"data" not in d or label_key.encode() not in d:
        raise DatasetError(f"{path} is not a CIFAR batch (no b'data' / b'{label_key}' entries): {fix}")
    x = np.asarray(d[b"data"])
    y = np.asarray(d[label_key.encode()], dtype=np.int64)
    if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3072 or len(x) != len(y):
        raise DatasetError(f"{path}: data {x.shape} {x.dtype} and {len(y)} labels do not match "
                           f"(expected [N, 3072] uint8): {fix}")
    return x, y


def load_cifar_set(root: Path, name: str):
    if name == "cifar10":
        folder, key = root / "cifar-10-batches-py", "labels"
        train = [folder / f"data_batch_{i}" for i in range(1, 6)]
        test = [folder / "test_batch"]
    else:
        folder, key = root / "cifar-100-python", "fine_labels"
        train, test = [folder / "train"], [folder / "test"]
    out = []
    for files in (train, test):
        parts = [read_cifar_batch(p, key) for p in files]
        x = np.concatenate([p[0] for p in parts])
        y = np.concatenate([p[1] for p in parts])
        out += [torch.from_numpy(x), torch.from_numpy(y)]
    n_classes = 10 if name == "cifar10" else 100
    for yy in (out[1], out[3]):
        if yy.numel() and (int(yy.min()) < 0 or int(yy.max()) >= n_classes):
            raise DatasetError(f"{folder}: labels outside 0..{n_classes - 1}: fetch the files again")
    return tuple(out)


def augment_crop_flip(x: torch.Tensor, shape: tuple, generator: torch.Generator | None, pad: int = 4) -> torch.Tensor:
    """Random crop after zero padding by `pad` and random horizontal flip, per sample.
    x [B, C*H*W] float -> same shape."""
    C, H, W = shape
    B = x.shape[0]
    img = torch.nn.functional.pad(x.view(B, C, H, W), (pad, pad, pad, pad))
    oy = torch.randint(0, 2 * pad + 1, (B,), generator=generator).to(x.device)
    ox = torch.randint(0, 2 * pad + 1, (B,), generator=generator).to(x.device)
    flip = (torch.rand(B, generator=generator) < 0.5).to(x.device)
    cols = torch.arange(W, device=x.device).view(1, W)
    cols = torch.where(flip.view(B, 1), W - 1 - cols, cols) + ox.view(B, 1)       # [B, W]
    rows = torch.arange(H, device=x.device).view(1, H) + oy.view(B, 1)             # [B, H]
    b = torch.arange(B, device=x.device).view(B, 1, 1)
    out = img.permute(0, 2, 3, 1)[b, rows.view(B, H, 1), cols.view(B, 1, W)]      # [B, H, W, C]
    return out.permute(0, 3, 1, 2).reshape(B, -1)


def load_images(name: str, *, encoding: str, data_dir: str = "", augment: bool = False,
                allow_download: bool = True, progress=None):
    """MNIST / Fashion-MNIST / CIFAR-10 / CIFAR-100 as a DataBundle (uint8 storage)."""
    from . import DataBundle
    root = data_root(data_dir)
    if name in ("mnist", "fashion_mnist"):
        base = idx_folder(name, root, bool(data_dir), allow_download=allow_download, progress=progress)
        xtr, ytr, xte, yte = load_idx_set(base, name)
        shape, n_classes = (1, 28, 28), 10
    else:
        base = ensure(name, root, allow_download=allow_download, progress=progress)
        xtr, ytr, xte, yte = load_cifar_set(root, name)
        shape, n_classes = (3, 32, 32), (10 if name == "cifar10" else 100)
    C, H, W = shape
    desc = (f"{TITLES[name]}, {H}x{W}x{C} ({C * H * W} inputs), {n_classes} classes, from {base}"
            + (", crop+flip augmentation" if augment else ""))
    return DataBundle(name, xtr, ytr, xte, yte, n_classes, "static", encoding, desc, input_shape=shape,
                      scale=1 / 255.0, norm=NORM[name], augment=augment)


# ---- writers of the same formats (tests, benchmarks, converting own data) ---------------------
def write_idx(path: str | Path, arr: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (gzip-compressed when the name ends in .gz)."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    raw = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape) + arr.tobytes()
    path = Path(path)
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)


def write_cifar_batch(path: str | Path, x: np.ndarray, labels, label_key: str = "labels") -> None:
    """Write a CIFAR python-pickle batch: x [N, 3072] uint8 (R, G, B planes of 32x32)."""
    d = {b"batch_label": b"written by snncore", b"data": np.asarray(x, dtype=np.uint8),
         label_key.encode(): [int(v) for v in labels]}
    with open(path, "wb") as f:
        pickle.dump(d, f, protocol=2)
