"""Event-stream datasets through Tonic: N-MNIST, DVS128 Gesture, CIFAR10-DVS and SHD.

Files are found where Tonic's own dataset classes keep them (<data>/NMNIST/Train/<digit>/*.bin,
<data>/DVSGesture/ibmGestureTrain/<user>/<label>.npy, <data>/CIFAR10DVS/<class>/*.aedat4,
<data>/SHD/shd_train.h5), so a folder Tonic already filled is reused. Events are read with Tonic's
readers (tonic.io.read_mnist_file, tonic.io.read_aedat4) or as Tonic reads them (DVS Gesture .npy,
SHD HDF5), downsampled with tonic.transforms.Downsample and binned with tonic.transforms.ToFrame
into a fixed number of frames (by time or by event count). Each frame is binarised (any event in
a pixel -> a spike) and the frames are bit-packed into a cache file on disk, written to a temp name
and renamed, so later runs and epochs read the cache instead of re-binning.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from .download import DatasetError, data_root, ensure

EVENT_SETS = {
    # name: (title, classes, sensor (x, y, p), downsample factor)
    "nmnist": ("N-MNIST saccade recordings of MNIST digits", 10, (34, 34, 2), 1),
    "dvs_gesture": ("DVS128 Gesture (IBM), 11 hand and arm gestures", 11, (128, 128, 2), 4),
    "cifar10_dvs": ("CIFAR10-DVS event recordings of CIFAR-10 images", 10, (128, 128, 2), 4),
    "shd": ("Spiking Heidelberg Digits, spoken digits 0-9 in English and German, 700 cochlea channels",
            20, (700, 1, 1), 1),
}
CACHE_VERSION = 1
_FIX = "delete it and fetch the dataset again"


def _tonic():
    try:
        import tonic
        import tonic.io
        import tonic.transforms
    except ImportError:
        raise DatasetError("event datasets need the package 'tonic': pip install tonic") from None
    return tonic


# ---- listing the samples of a split ----------------------------------------------------------
def list_samples(name: str, base: Path, split: str) -> list[tuple[Path, int]]:
    """(file, label) for every sample of a split, in a fixed order (SHD: one file, see read_shd)."""
    train = split == "train"
    if name == "nmnist":
        folder = base / ("Train" if train else "Test")
        out = [(p, int(p.parent.name)) for p in sorted(folder.glob("[0-9]/*.bin"))]
    elif name == "dvs_gesture":
        folder = base / ("ibmGestureTrain" if train else "ibmGestureTest")
        out = []
        for p in sorted(folder.glob("user*/*.npy")):
            try:
                out.append((p, int(p.stem)))
            except ValueError:
                continue
    elif name == "cifar10_dvs":
        # no official split: the first 90% of each class (sorted by file name) train, the rest test
        classes = _tonic().datasets.CIFAR10DVS.classes
        out = []
        for cname, label in classes.items():
            files = sorted((base / cname).glob("*.aedat4"))
            cut = int(round(len(files) * 0.9))
            out += [(p, label) for p in (files[:cut] if train else files[cut:])]
    else:
        raise DatasetError(f"dataset: {name!r} is not an event dataset")
    if not out:
        raise DatasetError(f"{name}: no {split} samples found in {base}; expected Tonic's layout "
                           f"({_layout(name)})")
    return out


def _layout(name: str) -> str:
    return {"nmnist": "NMNIST/Train/<digit>/*.bin and NMNIST/Test/<digit>/*.bin",
            "dvs_gesture": "DVSGesture/ibmGestureTrain/<user_lighting>/<label>.npy and ibmGestureTest/...",
            "cifar10_dvs": "CIFAR10DVS/<class name>/*.aedat4",
            "shd": "SHD/shd_train.h5 and SHD/shd_test.h5"}[name]


# ---- readers ----------------------------------------------------------------------------------
def read_nmnist(path: Path) -> np.ndarray:
    """N-MNIST .bin (5 bytes per event) via tonic.io.read_mnist_file, with sanity checks."""
    tonic = _tonic()
    size = path.stat().st_size
    if size % 5:
        raise DatasetError(f"{path} is truncated ({size} bytes is not a whole number of 5-byte events): {_FIX}")
    ev = tonic.io.read_mnist_file(str(path), dtype=tonic.datasets.NMNIST.dtype)
    if len(ev) and (ev["x"].max() >= 34 or ev["y"].max() >= 34):
        raise DatasetError(f"{path} is corrupt (event address outside the 34x34 sensor): {_FIX}")
    return ev


def read_gesture(path: Path) -> np.ndarray:
    """DVS Gesture sample as Tonic stores it: .npy [n, 4] columns x, y, p, t (ms)."""
    from numpy.lib import recfunctions
    tonic = _tonic()
    try:
        a = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 -- np.load raises several kinds on damaged files
        raise DatasetError(f"{path} is truncated or corrupt ({type(e).__name__}): {_FIX}") from None
    if a.ndim != 2 or a.shape[1] != 4:
        raise DatasetError(f"{path} is not a DVS Gesture sample (shape {a.shape}, expected [n, 4]): {_FIX}")
    a = a.astype(np.int64)
    a[:, 3] *= 1000                                               # ms -> us, as Tonic does
    return recfunctions.unstructured_to_structured(a, tonic.datasets.DVSGesture.dtype)


def read_cifar10dvs(path: Path) -> np.ndarray:
    """CIFAR10-DVS AEDAT4 file via tonic.io.read_aedat4 (the first event stream): fields t, x, y, p."""
    tonic = _tonic()
    try:
        import aedat  # noqa: F401 -- tonic.io.read_aedat4 needs it
    except ImportError:
        raise DatasetError("cifar10_dvs needs the package 'aedat' to read its AEDAT4 files: pip install aedat") from None
    try:
        ev = tonic.io.read_aedat4(str(path))
    except ValueError as e:
        # Tonic concatenates the event packets: none at all (a file cut after its header)
        if "at least one array" not in str(e):
            raise DatasetError(f"{path} cannot be read as AEDAT4 ({e}): {_FIX}") from None
        raise DatasetError(f"{path} cannot be read as AEDAT4 (no event packets: truncated or corrupt): "
                           f"{_FIX}") from None
    except Exception as e:  # noqa: BLE001 -- aedat raises RuntimeError, Tonic a bare Exception
        raise DatasetError(f"{path} cannot be read as AEDAT4 ({e}): {_FIX}") from None
    ev.dtype.names = ["t", "x", "y", "p"]
    # addresses past the 128x128 sensor would crash the binning with an IndexError
    if len(ev) and (ev["x"].max() >= 128 or ev["y"].max() >= 128):
        raise DatasetError(f"{path} is corrupt (event address outside the 128x128 sensor): {_FIX}")
    return ev


def read_shd(path: Path):
    """SHD HDF5: spikes/times (s, ragged), spikes/units (ragged), labels. Returns a reader."""
    try:
        import h5py
    except ImportError:
        raise DatasetError("shd needs the package 'h5py': pip install h5py") from None
    try:
        f = h5py.File(path, "r")
        times, units, labels = f["spikes/times"], f["spikes/units"], f["labels"][()]
    except FileNotFoundError:
        raise DatasetError(f"{path} is missing") from None
    except (OSError, KeyError) as e:
        raise DatasetError(f"{path} is not a readable SHD HDF5 file ({e}): {_FIX}") from None
    if len(times) != len(labels) or len(units) != len(labels):
        raise DatasetError(f"{path} is corrupt ({len(times)} spike trains, {len(labels)} labels): {_FIX}")
    return f, times, units, labels.astype(np.int64)


# ---- frames and the cache ----------------------------------------------------------------------
def frame_shape(name: str) -> tuple:
    """Per-frame sample shape after downsampling: (P, H, W) for cameras, (700,) for SHD."""
    _, _, (x, y, p), k = EVENT_SETS[name]
    return (x,) if name == "shd" else (p, y // k, x // k)


def _transform(name: str, frames: int, mode: str):
    tf = _tonic().transforms
    _, _, (x, y, p), k = EVENT_SETS[name]
    steps = []
    if k > 1:
        steps.append(tf.Downsample(spatial_factor=1.0 / k))
    sensor = (x // k, y // k, p)
    steps.append(tf.ToFrame(sensor_size=sensor, **({"n_time_bins": frames} if mode == "time"
                                                    else {"n_event_bins": frames})))
    return tf.Compose(steps)


def _frames_of(ev: np.ndarray, transform, frames: int, width: int) -> np.ndarray:
    if len(ev) == 0:
        return np.zeros((frames, width), dtype=bool)
    f = transform(ev)
    out = np.zeros((frames, width), dtype=bool)
    f = f.reshape(f.shape[0], -1)[:frames] > 0
    out[:len(f)] = f
    return out


def cache_path(base: Path, split: str, frames: int, mode: str, name: str) -> Path:
    shape = "x".join(map(str, frame_shape(name)))
    return base / ".snncore-cache" / f"{split}-{mode}{frames}-{shape}-v{CACHE_VERSION}.npz"


def _write_atomic(path: Path, **arrays) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _read_cache(path: Path, n_expected: int | None):
    try:
        with np.load(path) as z:
            x, y = z["x"], z["y"]
    except Exception:  # noqa: BLE001 -- a damaged cache is rebuilt, never trusted
        return None
    if x.ndim != 3 or len(x) != len(y) or (n_expected is not None and len(y) != n_expected):
        return None
    return x, y


def build_split(name: str, base: Path, split: str, frames: int, mode: str, progress=None):
    """(packed frames [N, F, ceil(D/8)] uint8, labels [N]) for a split, from the cache when valid."""
    width = int(np.prod(frame_shape(name)))
    path = cache_path(base, split, frames, mode, name)
    if name == "shd":
        h5 = base / f"shd_{split}.h5"
        f, times, units, labels = read_shd(h5)
        n_expected = len(labels)
    else:
        samples = list_samples(name, base, split)
        n_expected = len(samples)
    hit = _read_cache(path, n_expected) if path.exists() else None
    if hit is not None:
        if name == "shd":
            f.close()
        return hit
    transform = _transform(name, frames, mode)
    xs = np.zeros((n_expected, frames, (width + 7) // 8), dtype=np.uint8)
    if name == "shd":
        dt = _tonic().datasets.SHD.dtype
        try:
            for i in range(n_expected):
                t, u = np.asarray(times[i], dtype=np.float64), np.asarray(units[i])
                if len(t) != len(u) or (len(u) and (u.max() >= 700 or u.min() < 0)):
                    raise DatasetError(f"{h5} is corrupt (sample {i}: {len(t)} times, {len(u)} units, "
                                       f"units must be 0..699): {_FIX}")
                ev = np.empty(len(t), dtype=dt)
                ev["t"], ev["x"], ev["p"] = t * 1e6, u, 0
                xs[i] = np.packbits(_frames_of(ev, transform, frames, width), axis=-1)
                if progress and i % 200 == 0:
                    progress(f"{name} {split} frames", i, n_expected)
        except OSError as e:
            raise DatasetError(f"{h5} is truncated or corrupt ({e}): {_FIX}") from None
        finally:
            f.close()
        ys = labels
    else:
        reader = {"nmnist": read_nmnist, "dvs_gesture": read_gesture, "cifar10_dvs": read_cifar10dvs}[name]
        ys = np.array([lab for _, lab in samples], dtype=np.int64)
        for i, (p, _) in enumerate(samples):
            xs[i] = np.packbits(_frames_of(reader(p), transform, frames, width), axis=-1)
            if progress and i % 200 == 0:
                progress(f"{name} {split} frames", i, n_expected)
    if progress:
        progress(f"{name} {split} frames", n_expected, n_expected)
    try:
        _write_atomic(path, x=xs, y=ys)
    except OSError:
        pass          # a read-only data folder: keep going without a cache
    return xs, ys


def unpack(x: torch.Tensor, width: int) -> torch.Tensor:
    """Bit-packed uint8 [..., ceil(D/8)] (np.packbits order) -> bool [..., D]."""
    if x.device.type == "cpu":          # numpy's table lookup: ~20x the shift-and-mask below on a CPU
        bits = np.unpackbits(x.contiguous().numpy(), axis=-1, count=width)
        return torch.from_numpy(bits).view(torch.bool)
    shifts = torch.arange(7, -1, -1, device=x.device, dtype=torch.uint8)
    bits = (x.unsqueeze(-1) >> shifts) & 1
    return bits.flatten(-2)[..., :width].bool()


def load_events(name: str, *, data_dir: str = "", frames: int = 16, mode: str = "time",
                allow_download: bool = True, progress=None):
    """An event dataset as a spike DataBundle of bit-packed frames (T = frames)."""
    from . import DataBundle
    _tonic()
    if name == "shd":
        try:
            import h5py  # noqa: F401
        except ImportError:
            raise DatasetError("shd needs the package 'h5py': pip install h5py") from None
    root = data_root(data_dir)
    base = ensure(name, root, allow_download=allow_download, progress=progress)
    xtr, ytr = build_split(name, base, "train", frames, mode, progress)
    xte, yte = build_split(name, base, "test", frames, mode, progress)
    title, n_classes, sensor, k = EVENT_SETS[name]
    shape = frame_shape(name)
    for ys, split in ((ytr, "train"), (yte, "test")):
        if len(ys) and (ys.min() < 0 or ys.max() >= n_classes):
            raise DatasetError(f"{name}: {split} labels outside 0..{n_classes - 1} in {base}: {_FIX}")
    how = f"{frames} frames by {'time bins' if mode == 'time' else 'event count'}"
    size = "x".join(map(str, shape))
    desc = (f"{title}; {how}, {size} per frame" + (f" (sensor downsampled {k}x)" if k > 1 else "")
            + f", from {base}")
    return DataBundle(name, torch.from_numpy(xtr), torch.from_numpy(ytr), torch.from_numpy(xte),
                      torch.from_numpy(yte), n_classes, "spikes", "spikes", desc,
                      input_shape=() if name == "shd" else shape, width=int(np.prod(shape)), packed=True)


# ---- writers of the same formats (tests, benchmarks) ------------------------------------------
def write_nmnist_bin(path: str | Path, x, y, t_us, p) -> None:
    """N-MNIST .bin: per event 5 bytes: x, y, p<<7 | t[22:16], t[15:8], t[7:0] (t < 2**23 us)."""
    x, y, t, p = (np.asarray(a, dtype=np.int64) for a in (x, y, t_us, p))
    raw = np.stack([x, y, (p << 7) | ((t >> 16) & 0x7F), (t >> 8) & 0xFF, t & 0xFF], axis=1).astype(np.uint8)
    Path(path).write_bytes(raw.tobytes())


def write_shd_h5(path: str | Path, times: list, units: list, labels) -> None:
    """SHD-style HDF5: spikes/times (s) and spikes/units as ragged arrays, labels, extra/keys."""
    import h5py
    with h5py.File(path, "w") as f:
        ft = f.create_dataset("spikes/times", (len(times),), dtype=h5py.vlen_dtype(np.float16))
        fu = f.create_dataset("spikes/units", (len(units),), dtype=h5py.vlen_dtype(np.uint16))
        for i, (t, u) in enumerate(zip(times, units)):
            ft[i], fu[i] = np.asarray(t, np.float16), np.asarray(u, np.uint16)
        f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint16))
        f.create_dataset("extra/keys", data=np.array([f"digit-{i}".encode() for i in range(20)]))
        f.create_dataset("extra/speaker", data=np.zeros(len(labels), dtype=np.uint16))
