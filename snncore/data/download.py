"""Where dataset files live, and fetching them: checksum-verified downloads written to a temp name
then renamed, archives extracted beside them, and one clear message when the machine is offline.

Folder layouts follow the ecosystem so existing folders are reused as they are: torchvision's for
the image sets (MNIST/raw, FashionMNIST/raw, cifar-10-batches-py, cifar-100-python) and Tonic's
for the event sets (NMNIST/Train, DVSGesture/ibmGestureTrain, CIFAR10DVS/<class>, SHD/shd_train.h5).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

Progress = Callable[[str, int, int], None]     # (what, bytes done, bytes total or 0 when unknown)


class DatasetError(ValueError):
    """A dataset cannot be used; the one-line message names the file and the fix."""


class OfflineError(DatasetError):
    """Files are missing and could not be downloaded."""


def data_root(data_dir: str = "") -> Path:
    """The data folder: the given one, else $SNNCORE_DATA, else ./data."""
    return Path(data_dir or os.environ.get("SNNCORE_DATA") or "data").expanduser()


@dataclass
class Resource:
    filename: str             # saved as <folder>/<filename>
    url: str
    md5: str = ""
    sha256: str = ""
    extract: bool = False     # an archive to unpack into the folder


@dataclass
class Spec:
    folder: str                              # relative to the data root
    resources: list[Resource]
    # present when usable: a list of alternatives per file, relative to folder (e.g. x or x.gz)
    required: list[tuple[str, ...]]
    needs: tuple[str, ...] = ()              # python packages needed to read it
    note: str = ""
    nested_zips: bool = False                # the archive holds one zip per class (CIFAR10-DVS)
    extra_glob: tuple[str, str, int] | None = field(default=None)   # (subdir, pattern, min count)


_MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
_FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_IDX = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_MNIST_MD5 = ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
              "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c")
_FASHION_MD5 = ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310")


def _idx_spec(folder: str, base: str, md5s) -> Spec:
    return Spec(folder, [Resource(f"{n}.gz", base + f"{n}.gz", md5) for n, md5 in zip(_IDX, md5s)],
                [(n, n + ".gz") for n in _IDX])


def _tonic(cls_name: str):
    try:
        import tonic.datasets as td
    except ImportError:
        raise DatasetError("event datasets need the package 'tonic': pip install tonic") from None
    return getattr(td, cls_name)


def spec(name: str) -> Spec:
    """Files, URLs and checksums of a dataset (event sets take theirs from Tonic's classes)."""
    if name == "mnist":
        return _idx_spec("MNIST/raw", _MNIST_URL, _MNIST_MD5)
    if name == "fashion_mnist":
        return _idx_spec("FashionMNIST/raw", _FASHION_URL, _FASHION_MD5)
    if name == "cifar10":
        return Spec("", [Resource("cifar-10-python.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                                  "c58f30108f718f92721af3b95e74349a", extract=True)],
                    [(f"cifar-10-batches-py/{f}",) for f in
                     ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")])
    if name == "cifar100":
        return Spec("", [Resource("cifar-100-python.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                                  "eb9058c3a382ffc7106e4002c42a8d85", extract=True)],
                    [("cifar-100-python/train",), ("cifar-100-python/test",)])
    if name == "nmnist":
        c = _tonic("NMNIST")
        return Spec("NMNIST", [Resource(c.train_filename, c.train_url, c.train_md5, extract=True),
                               Resource(c.test_filename, c.test_url, c.test_md5, extract=True)],
                    [("Train",), ("Test",)], needs=("tonic",))
    if name == "dvs_gesture":
        c = _tonic("DVSGesture")
        return Spec("DVSGesture", [Resource(c.train_filename, c.train_url, c.train_md5, extract=True),
                                   Resource(c.test_filename, c.test_url, c.test_md5, extract=True)],
                    [("ibmGestureTrain",), ("ibmGestureTest",)], needs=("tonic",))
    if name == "cifar10_dvs":
        c = _tonic("CIFAR10DVS")
        return Spec("CIFAR10DVS", [Resource(c.filename, c.url, c.file_md5, extract=True)],
                    [(k,) for k in c.classes], needs=("tonic", "aedat"), nested_zips=True,
                    note="AEDAT4 files, read by tonic.io.read_aedat4")
    if name == "shd":
        c = _tonic("SHD")
        return Spec("SHD", [Resource(c.train_zip, c.base_url + c.train_zip, c.train_md5, extract=True),
                            Resource(c.test_zip, c.base_url + c.test_zip, c.test_md5, extract=True)],
                    [("shd_train.h5",), ("shd_test.h5",)], needs=("tonic", "h5py"))
    raise DatasetError(f"dataset: {name!r} has no files to fetch")


def file_digest(path: Path, algo: str = "md5") -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _mirror_url(url: str, filename: str) -> str:
    """$SNNCORE_DATA_MIRROR (a folder URL holding the same file names) replaces the origin."""
    m = os.environ.get("SNNCORE_DATA_MIRROR", "")
    return (m.rstrip("/") + "/" + filename) if m else url


def download(url: str, dest: Path, *, md5: str = "", sha256: str = "", progress: Progress | None = None,
             timeout: float = 30.0) -> Path:
    """Fetch url to dest: stream to a temp name in dest's folder, check the checksum, rename.
    Nothing is left at dest (or the temp name) on failure."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        try:
            req = urllib.request.Request(url, headers={"User-Agent": "snncore"})
            with urllib.request.urlopen(req, timeout=timeout) as r, os.fdopen(fd, "wb") as out:
                total = int(r.headers.get("Content-Length") or 0)
                done = 0
                if progress:
                    progress(dest.name, 0, total)
                while chunk := r.read(1 << 16):
                    out.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(dest.name, done, total)
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", None) or getattr(e, "strerror", None) or str(e)
            raise OfflineError(f"cannot download {url}: {reason}") from None
        if total and done != total:
            raise DatasetError(f"download of {url} stopped after {done} of {total} bytes; try again")
        for algo, want in (("md5", md5), ("sha256", sha256)):
            if want:
                got = file_digest(Path(tmp), algo)
                if got != want.lower():
                    raise DatasetError(f"{dest.name} from {url} has the wrong checksum ({algo} {got}, expected "
                                       f"{want}); the download was discarded: try again or use another mirror")
        os.replace(tmp, dest)
        return dest
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def extract(archive: Path, into: Path) -> None:
    """Unpack a .zip / .tar(.gz) into a temp folder beside `into`, then move its entries in."""
    into.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=into))
    try:
        try:
            if zipfile.is_zipfile(archive):
                with zipfile.ZipFile(archive) as z:
                    z.extractall(tmp)
            elif tarfile.is_tarfile(archive):
                with tarfile.open(archive) as t:
                    t.extractall(tmp, filter="data")
            else:
                raise DatasetError(f"{archive} is not a zip or tar archive: delete it and fetch it again")
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as e:
            raise DatasetError(f"{archive} cannot be unpacked ({e}): delete it and fetch it again") from None
        for entry in tmp.iterdir():
            target = into / entry.name
            if target.exists():
                shutil.rmtree(target) if target.is_dir() else target.unlink()
            os.replace(entry, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def missing(name: str, root: Path) -> list[str]:
    """Required paths (relative to the data root) not present."""
    s = spec(name)
    base = root / s.folder
    return [str(Path(s.folder) / alts[0]) for alts in s.required if not any((base / a).exists() for a in alts)]


def how_to_get(name: str, root: Path, missing_files: list[str]) -> str:
    s = spec(name)
    base = root / s.folder if s.folder else root
    urls = ", ".join(f"{r.filename} from {r.url}" for r in s.resources)
    unpack = " and unpack them there" if any(r.extract for r in s.resources) else ""
    return (f"{name}: missing {', '.join(missing_files)} under {root}; put {urls} into {base}{unpack} "
            f"(or point --data-dir / SNNCORE_DATA at a folder that has them)")


def ensure(name: str, root: Path, *, allow_download: bool = True, progress: Progress | None = None) -> Path:
    """Make the dataset's files present under root (reusing what is there), downloading what is
    missing when allowed. Returns the dataset folder; raises DatasetError with the fix."""
    root = Path(root)
    s = spec(name)
    base = root / s.folder
    gone = missing(name, root)
    if not gone:
        return base
    if not allow_download:
        raise OfflineError(how_to_get(name, root, gone))
    if root.exists() and not root.is_dir():
        raise DatasetError(f"data folder {root} is a file: give a folder with --data-dir / SNNCORE_DATA")
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DatasetError(f"data folder {base} cannot be created ({e.strerror}): choose a writable "
                           f"--data-dir / SNNCORE_DATA") from None
    for r in s.resources:
        target = base / r.filename
        if not target.exists():
            try:
                download(_mirror_url(r.url, r.filename), target, md5=r.md5, sha256=r.sha256, progress=progress)
            except OfflineError as e:
                raise OfflineError(f"{how_to_get(name, root, gone)}; {e}") from None
        if r.extract and not target.name.endswith(".h5"):
            extract(target, base)
    if s.nested_zips:                         # CIFAR10-DVS: one zip per class inside the archive
        for z in sorted(base.glob("*.zip")):
            if z.name != s.resources[0].filename and not (base / z.stem).exists():
                extract(z, base)
    gone = missing(name, root)
    if gone:
        raise DatasetError(f"{name}: after downloading, {', '.join(gone)} is still missing under {root}; "
                           f"the archive layout is not the expected one")
    return base
