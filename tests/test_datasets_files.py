"""File datasets: tiny files in the real on-disk formats, loaded through the code a user runs;
corrupt variants give one message naming the file; frame caches are written atomically.
No test touches the network: downloads point at a closed port on 127.0.0.1."""
import gzip
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from snncore.config import ConfigError, RunConfig
from snncore.data import DatasetError, OfflineError, load_dataset
from snncore.data.events import cache_path, write_nmnist_bin, write_shd_h5
from snncore.data.images import read_idx, write_cifar_batch, write_idx

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    # any download attempt goes to a closed local port, never to the internet
    monkeypatch.setenv("SNNCORE_DATA_MIRROR", "http://127.0.0.1:9/")


def make_mnist(root: Path, n_train=40, n_test=20, folder="MNIST/raw", gz=True, seed=0):
    d = root / folder
    d.mkdir(parents=True, exist_ok=True)
    r = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        x = r.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = r.integers(0, 10, n, dtype=np.uint8)
        write_idx(d / f"{split}-images-idx3-ubyte{'.gz' if gz else ''}", x)
        write_idx(d / f"{split}-labels-idx1-ubyte", y)
        out[split] = (x, y)
    return out


def make_cifar10(root: Path, n=6, seed=0):
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True, exist_ok=True)
    r = np.random.default_rng(seed)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        write_cifar_batch(d / name, r.integers(0, 256, (n, 3072), dtype=np.uint8), r.integers(0, 10, n))
    return d


def make_nmnist(root: Path, per_digit=2, events=300, seed=0):
    r = np.random.default_rng(seed)
    for split in ("Train", "Test"):
        for digit in range(10):
            d = root / "NMNIST" / split / str(digit)
            d.mkdir(parents=True, exist_ok=True)
            for k in range(per_digit):
                t = np.sort(r.integers(0, 300_000, events))
                write_nmnist_bin(d / f"{k:05d}.bin", r.integers(0, 34, events), r.integers(0, 34, events),
                                 t, r.integers(0, 2, events))


def make_shd(root: Path, n=12, seed=0):
    d = root / "SHD"
    d.mkdir(parents=True, exist_ok=True)
    r = np.random.default_rng(seed)
    for split in ("train", "test"):
        times = [np.sort(r.uniform(0, 1.0, 200)) for _ in range(n)]
        units = [r.integers(0, 700, 200) for _ in range(n)]
        write_shd_h5(d / f"shd_{split}.h5", times, units, r.integers(0, 20, n))
    return d


def cfg(**kw):
    return RunConfig.from_dict({"hidden": [16], "timesteps": 4, **kw})


# ---- images ---------------------------------------------------------------------------------
def test_idx_roundtrip_and_mnist_bundle(tmp_path):
    data = make_mnist(tmp_path)
    assert np.array_equal(read_idx(tmp_path / "MNIST/raw/train-images-idx3-ubyte.gz"), data["train"][0])
    b = load_dataset(cfg(dataset="mnist", data_dir=str(tmp_path)))
    assert b.shape == (1, 28, 28) and b.input_size == 784 and b.n_classes == 10
    assert b.train_x.dtype == torch.uint8 and b.train_y.numel() == 40 and b.test_y.numel() == 20
    assert torch.equal(b.train_y, torch.from_numpy(data["train"][1].astype(np.int64)))
    # decode gives intensities in [0, 1] equal to pixel / 255
    x = b.decode(b.test_x[:3])
    assert torch.allclose(x, torch.from_numpy(data["t10k"][0][:3].reshape(3, -1)).float() / 255)
    xb, yb = next(b.batches("train", 8, 5, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert xb.shape == (5, 8, 784) and set(xb.unique().tolist()) <= {0.0, 1.0}


def test_direct_encoding_is_normalised_per_dataset(tmp_path):
    make_mnist(tmp_path)
    b = load_dataset(cfg(dataset="mnist", data_dir=str(tmp_path), encoding="direct"))
    xb, _ = next(b.batches("test", 4, 2, shuffle=False))
    raw = b.test_x[:4].float() / 255
    assert torch.allclose(xb[0], (raw - 0.1307) / 0.3081, atol=1e-5)


def test_data_dir_from_environment(tmp_path, monkeypatch):
    make_mnist(tmp_path, folder="FashionMNIST/raw", gz=False)
    monkeypatch.setenv("SNNCORE_DATA", str(tmp_path))
    b = load_dataset(cfg(dataset="fashion_mnist"))
    assert b.train_y.numel() == 40 and "Fashion" in b.description


def test_idx_corrupt_variants(tmp_path):
    make_mnist(tmp_path, gz=False)
    f = tmp_path / "MNIST/raw/train-images-idx3-ubyte"
    good = f.read_bytes()
    f.write_bytes(good[:-100])                                   # truncated
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte is truncated or corrupt.*fetch it again"):
        load_dataset(cfg(dataset="mnist", data_dir=str(tmp_path)))
    f.write_bytes(b"\x12\x34" + good[2:])                          # bad magic
    with pytest.raises(DatasetError, match="not an IDX file"):
        load_dataset(cfg(dataset="mnist", data_dir=str(tmp_path)))
    f.write_bytes(good)
    g = tmp_path / "MNIST/raw/train-labels-idx1-ubyte"
    write_idx(g, np.zeros(39, np.uint8))                          # 39 labels for 40 images
    with pytest.raises(DatasetError, match="do not match"):
        load_dataset(cfg(dataset="mnist", data_dir=str(tmp_path)))


def test_gzip_corrupt_names_file(tmp_path):
    make_mnist(tmp_path)
    f = tmp_path / "MNIST/raw/t10k-images-idx3-ubyte.gz"
    f.write_bytes(f.read_bytes()[:50])
    with pytest.raises(DatasetError, match=r"t10k-images-idx3-ubyte.gz cannot be read"):
        load_dataset(cfg(dataset="mnist", data_dir=str(tmp_path)))


def test_missing_files_offline_message_lists_files_and_folder(tmp_path):
    with pytest.raises(OfflineError) as e:
        load_dataset(cfg(dataset="mnist", data_dir=str(tmp_path / "empty")))
    msg = str(e.value)
    assert "MNIST/raw/train-images-idx3-ubyte" in msg and "t10k-labels-idx1-ubyte.gz" in msg
    assert str(tmp_path / "empty" / "MNIST" / "raw") in msg and "cannot download" in msg
    assert "\n" not in msg
    assert not list((tmp_path / "empty").rglob("*.part"))       # no half-written download left


# MNIST / Fashion-MNIST folders as users keep them: the four files directly in --data-dir (as
# downloaded, .gz or not), torchvision's MNIST/raw under it, or torchvision's MNIST/ folder itself
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
@pytest.mark.parametrize("layout", ["flat-gz", "flat-plain", "torchvision", "torchvision-inner"])
def test_idx_folder_layouts(tmp_path, name, layout):
    sub = "MNIST" if name == "mnist" else "FashionMNIST"
    folder = {"flat-gz": "", "flat-plain": "", "torchvision": f"{sub}/raw", "torchvision-inner": f"{sub}/raw"}[layout]
    data = make_mnist(tmp_path / "given", folder=folder or ".", gz=layout != "flat-plain")
    if layout == "flat-gz":                                  # every file gzipped, as published
        for f in (tmp_path / "given").glob("*-ubyte"):
            write_idx(f.with_name(f.name + ".gz"), read_idx(f))
            f.unlink()
    given = tmp_path / "given" / (sub if layout == "torchvision-inner" else "")
    b = load_dataset(cfg(dataset=name, data_dir=str(given)), allow_download=False)
    assert torch.equal(b.test_y, torch.from_numpy(data["t10k"][1].astype(np.int64)))
    assert torch.equal(b.train_x, torch.from_numpy(data["train"][0].reshape(40, -1)))
    assert str(given) in b.description
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        p.name for p in (tmp_path / "given").rglob("*") if p.is_file())        # nothing fetched or moved


def test_flat_folder_given_by_the_cli_trains(tmp_path):
    make_mnist(tmp_path, folder="dl", n_train=64, n_test=16)
    r = _cli("train", "--dataset", "fashion_mnist", "--data-dir", str(tmp_path / "dl"), "--epochs", "1",
             "--timesteps", "2", "--hidden", "8", "--runs-dir", str(tmp_path / "runs"), "--json")
    assert r.returncode == 0, r.stderr
    assert '"status": "finished"' in r.stdout.strip().splitlines()[-1]


def test_flat_files_in_the_shared_data_folder_are_ambiguous(tmp_path, monkeypatch):
    """$SNNCORE_DATA (or ./data) is shared by every dataset: four IDX files directly in it could be
    either set, so the message says how to use them instead of guessing (or downloading)."""
    make_mnist(tmp_path, folder=".")
    monkeypatch.setenv("SNNCORE_DATA", str(tmp_path))
    with pytest.raises(DatasetError) as e:
        load_dataset(cfg(dataset="fashion_mnist"))
    msg = str(e.value)
    assert f"--data-dir {tmp_path}" in msg and str(tmp_path / "FashionMNIST" / "raw") in msg and "\n" not in msg
    assert not (tmp_path / "FashionMNIST").exists()
    # the torchvision layout beside them is unambiguous and wins
    make_mnist(tmp_path, folder="FashionMNIST/raw", seed=3)
    assert load_dataset(cfg(dataset="fashion_mnist")).train_y.numel() == 40


def test_flat_folder_missing_a_file_names_it_and_where(tmp_path):
    make_mnist(tmp_path, folder="dl")
    (tmp_path / "dl" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DatasetError) as e:
        load_dataset(cfg(dataset="mnist", data_dir=str(tmp_path / "dl")))
    msg = str(e.value)
    assert "but not t10k-labels-idx1-ubyte(.gz)" in msg and f"into {tmp_path / 'dl'}" in msg
    assert "t10k-labels-idx1-ubyte.gz" in msg and "http" in msg and "\n" not in msg


def test_offline_message_names_both_layouts(tmp_path):
    with pytest.raises(OfflineError) as e:
        load_dataset(cfg(dataset="fashion_mnist", data_dir=str(tmp_path / "empty")))
    msg = str(e.value)
    assert str(tmp_path / "empty" / "FashionMNIST" / "raw") in msg and "train-images-idx3-ubyte.gz from http" in msg
    assert "may also hold the four files directly" in msg and "\n" not in msg


def test_the_other_sets_published_files_are_refused(tmp_path, monkeypatch):
    """Fashion-MNIST's files carry MNIST's names; the published .gz files are known by checksum."""
    from snncore.data import download as D
    from snncore.data.download import file_digest
    make_mnist(tmp_path, folder=".")
    for f in list(tmp_path.glob("*-ubyte")):
        write_idx(f.with_name(f.name + ".gz"), read_idx(f))
        f.unlink()
    sums = tuple(file_digest(tmp_path / f"{n}.gz") for n in D._IDX)
    monkeypatch.setattr(D, "_MNIST_MD5", sums)               # pretend these are the published MNIST files
    with pytest.raises(DatasetError, match="is mnist's file .* not fashion_mnist's"):
        load_dataset(cfg(dataset="fashion_mnist", data_dir=str(tmp_path)))
    assert load_dataset(cfg(dataset="mnist", data_dir=str(tmp_path))).train_y.numel() == 40


def test_cifar10_bundle_and_augmentation(tmp_path):
    make_cifar10(tmp_path)
    b = load_dataset(cfg(dataset="cifar10", data_dir=str(tmp_path), augment=True))
    assert b.shape == (3, 32, 32) and b.train_y.numel() == 30 and b.test_y.numel() == 6 and b.n_classes == 10
    x = b.decode(b.train_x[:4])
    assert torch.allclose(x, b.train_x[:4].float() / 255)        # no augmentation unless train
    g = torch.Generator().manual_seed(1)
    xa = b.decode(b.train_x[:16], train=True, generator=g).view(16, 3, 32, 32)
    orig = b.decode(b.train_x[:16]).view(16, 3, 32, 32)
    # each augmented image is a shifted (and maybe mirrored) copy: its interior matches some crop
    import torch.nn.functional as F
    padded = F.pad(orig, (4, 4, 4, 4))
    for i in range(16):
        found = False
        for img in (padded[i], padded[i].flip(-1)):
            for oy in range(9):
                for ox in range(9):
                    if torch.equal(img[:, oy:oy + 32, ox:ox + 32], xa[i]):
                        found = True
        assert found
    assert not torch.equal(xa, orig)


def test_cifar100_fine_labels(tmp_path):
    d = tmp_path / "cifar-100-python"
    d.mkdir()
    r = np.random.default_rng(0)
    for name, n in (("train", 10), ("test", 4)):
        write_cifar_batch(d / name, r.integers(0, 256, (n, 3072), dtype=np.uint8), r.integers(0, 100, n),
                          label_key="fine_labels")
    b = load_dataset(cfg(dataset="cifar100", data_dir=str(tmp_path)))
    assert b.n_classes == 100 and b.train_y.numel() == 10


def test_cifar_corrupt_variants(tmp_path):
    d = make_cifar10(tmp_path)
    f = d / "data_batch_3"
    good = f.read_bytes()
    f.write_bytes(good[: len(good) // 2])
    with pytest.raises(DatasetError, match=r"data_batch_3 is truncated or corrupt"):
        load_dataset(cfg(dataset="cifar10", data_dir=str(tmp_path)))
    with open(f, "wb") as fh:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, fh)
    with pytest.raises(DatasetError, match=r"data_batch_3: data \(2, 100\)"):
        load_dataset(cfg(dataset="cifar10", data_dir=str(tmp_path)))
    (d / "test_batch").unlink()
    f.write_bytes(good)
    with pytest.raises(OfflineError, match="cifar-10-batches-py/test_batch"):
        load_dataset(cfg(dataset="cifar10", data_dir=str(tmp_path)))


def test_config_errors_for_dataset_fields():
    with pytest.raises(ConfigError, match="augment: .*cifar10 and cifar100 only"):
        RunConfig.from_dict({"dataset": "mnist", "augment": True})
    with pytest.raises(ConfigError, match="frames: applies to the event datasets"):
        RunConfig.from_dict({"dataset": "mnist", "frames": 10})
    with pytest.raises(ConfigError, match="frame_mode"):
        RunConfig.from_dict({"dataset": "nmnist", "frame_mode": "space"})
    with pytest.raises(ConfigError, match="dataset"):
        RunConfig.from_dict({"dataset": "imagenet"})


# ---- events ---------------------------------------------------------------------------------
def test_nmnist_frames_match_hand_binning_and_cache(tmp_path):
    make_nmnist(tmp_path)
    # one hand-made sample: events at known pixels / times
    f = tmp_path / "NMNIST/Train/3/00000.bin"
    write_nmnist_bin(f, [1, 2, 33, 5], [0, 4, 33, 6], [0, 100_000, 200_000, 300_000], [0, 1, 1, 0])
    c = cfg(dataset="nmnist", data_dir=str(tmp_path), frames=3)
    b = load_dataset(c)
    assert b.kind == "spikes" and b.shape == (2, 34, 34) and b.input_size == 2312 and b.frames == 3
    assert b.train_y.numel() == 20 and b.test_y.numel() == 20 and b.n_classes == 10
    i = 6                                                   # sorted: digit 3, file 00000
    assert int(b.train_y[i]) == 3
    fr = b.decode(b.train_x[i:i + 1])[0].view(3, 2, 34, 34)
    # bins of 100 ms over [0, 300 ms), half-open as Tonic's ToFrame cuts them: the event at exactly
    # the last timestamp falls past the last bin (Tonic's convention, one event in thousands in real data)
    assert int(fr.sum()) == 3
    assert fr[0, 0, 0, 1] and fr[1, 1, 4, 2] and fr[2, 1, 33, 33] and not fr[:, 0, 6, 5].any()
    xb, _ = next(b.batches("train", 5, 99, shuffle=False))
    assert xb.shape == (3, 5, 2312)                         # T is the number of frames
    cp = cache_path(tmp_path / "NMNIST", "train", 3, "time", "nmnist")
    assert cp.exists() and not list(cp.parent.glob("*.part"))
    # the second load reads the cache: a source file deleted in place of being read proves it
    mtime = cp.stat().st_mtime_ns
    b2 = load_dataset(c)
    assert torch.equal(b2.train_x, b.train_x) and cp.stat().st_mtime_ns == mtime


def test_nmnist_event_count_frames(tmp_path):
    make_nmnist(tmp_path, per_digit=1)
    b = load_dataset(cfg(dataset="nmnist", data_dir=str(tmp_path), frames=4, frame_mode="count"))
    x = b.decode(b.train_x)
    assert x.shape == (10, 4, 2312) and bool((x.sum(-1) > 0).all())     # every bin holds events


def test_nmnist_corrupt_leaves_no_cache(tmp_path):
    make_nmnist(tmp_path, per_digit=1)
    f = tmp_path / "NMNIST/Train/7/00000.bin"
    f.write_bytes(f.read_bytes()[:-2])
    with pytest.raises(DatasetError, match=r"NMNIST/Train/7/00000.bin is truncated"):
        load_dataset(cfg(dataset="nmnist", data_dir=str(tmp_path)))
    assert not list((tmp_path / "NMNIST").rglob("*.npz")) and not list((tmp_path / "NMNIST").rglob("*.part"))
    write_nmnist_bin(f, [50], [3], [10], [1])                           # x outside the sensor
    with pytest.raises(DatasetError, match="outside the 34x34 sensor"):
        load_dataset(cfg(dataset="nmnist", data_dir=str(tmp_path)))


def test_damaged_cache_is_rebuilt(tmp_path):
    make_nmnist(tmp_path, per_digit=1)
    c = cfg(dataset="nmnist", data_dir=str(tmp_path))
    b = load_dataset(c)
    cp = cache_path(tmp_path / "NMNIST", "train", 4, "time", "nmnist")
    cp.write_bytes(b"garbage")
    assert torch.equal(load_dataset(c).train_x, b.train_x)


def test_shd_bundle_and_corrupt(tmp_path):
    d = make_shd(tmp_path)
    b = load_dataset(cfg(dataset="shd", data_dir=str(tmp_path), frames=10))
    assert b.shape == (700,) and b.n_classes == 20 and b.train_y.numel() == 12 and b.frames == 10
    x = b.decode(b.train_x)
    assert x.shape == (12, 10, 700) and x.dtype == torch.bool and int(x.sum()) > 0
    xb, _ = next(b.batches("train", 4, 10, shuffle=False))
    assert xb.shape == (10, 4, 700)
    (d / "shd_test.h5").write_bytes((d / "shd_test.h5").read_bytes()[:300])
    with pytest.raises(DatasetError, match=r"shd_test.h5 is not a readable SHD HDF5 file"):
        load_dataset(cfg(dataset="shd", data_dir=str(tmp_path), frames=10))


def test_dvs_gesture_npy_layout(tmp_path):
    r = np.random.default_rng(0)
    for split in ("ibmGestureTrain", "ibmGestureTest"):
        d = tmp_path / "DVSGesture" / split / "user01_fluorescent"
        d.mkdir(parents=True)
        for label in range(11):
            n = 500
            ev = np.stack([r.integers(0, 128, n), r.integers(0, 128, n), r.integers(0, 2, n),
                           np.sort(r.integers(0, 6000, n))], axis=1)
            np.save(d / f"{label}.npy", ev)
    b = load_dataset(cfg(dataset="dvs_gesture", data_dir=str(tmp_path), frames=16))
    assert b.shape == (2, 32, 32) and b.n_classes == 11 and b.train_y.numel() == 11
    assert sorted(b.train_y.tolist()) == list(range(11))
    bad = tmp_path / "DVSGesture/ibmGestureTest/user01_fluorescent/4.npy"
    bad.write_bytes(bad.read_bytes()[:100])
    for p in (tmp_path / "DVSGesture").rglob("*.npz"):
        p.unlink()
    with pytest.raises(DatasetError, match=r"4.npy is truncated or corrupt"):
        load_dataset(cfg(dataset="dvs_gesture", data_dir=str(tmp_path), frames=16))


def test_cifar10_dvs_needs_aedat_or_reads(tmp_path):
    for cname in ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"):
        (tmp_path / "CIFAR10DVS" / cname).mkdir(parents=True)
        (tmp_path / "CIFAR10DVS" / cname / "cifar10_0.aedat4").write_bytes(b"not an aedat4 file")
    try:
        import aedat  # noqa: F401
        match = "cannot be read as AEDAT4"
    except ImportError:
        match = "needs the package 'aedat'.*pip install aedat"
    with pytest.raises(DatasetError, match=match):
        load_dataset(cfg(dataset="cifar10_dvs", data_dir=str(tmp_path)))


# ---- command line -----------------------------------------------------------------------------
def _cli(*args, env_extra=None):
    env = {**os.environ, "SNNCORE_DATA_MIRROR": "http://127.0.0.1:9/", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "snncore", *args], cwd=ROOT, capture_output=True,
                          text=True, env=env, timeout=300)


def test_cli_trains_mnist_from_a_real_format_folder(tmp_path):
    make_mnist(tmp_path / "data", n_train=300, n_test=50)
    r = _cli("train", "--dataset", "mnist", "--data-dir", str(tmp_path / "data"), "--epochs", "1",
             "--n-train", "256", "--timesteps", "4", "--hidden", "16", "--runs-dir", str(tmp_path / "runs"),
             "--json")
    assert r.returncode == 0, r.stderr
    import json
    s = json.loads(r.stdout.strip().splitlines()[-1])
    assert s["status"] == "finished" and s["steps"] == 4          # 256 samples / batch 64


def test_cli_dataset_errors_exit_2_with_one_line(tmp_path):
    r = _cli("train", "--dataset", "cifar10", "--data-dir", str(tmp_path / "nothing"),
             "--runs-dir", str(tmp_path / "runs"))
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: cifar10: missing cifar-10-batches-py/data_batch_1")
    assert "cifar-10-python.tar.gz" in lines[0]
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").rglob("config*"))
    make_mnist(tmp_path / "d", gz=False)
    (tmp_path / "d/MNIST/raw/t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08")
    r = _cli("train", "--dataset", "mnist", "--data-dir", str(tmp_path / "d"), "--runs-dir", str(tmp_path / "runs"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "t10k-labels-idx1-ubyte" in r.stderr
