"""Downloads against a local HTTP server on 127.0.0.1 (never the internet): progress, checksums,
temp name + rename, archives unpacked, and the whole ensure() path for MNIST and CIFAR-10."""
import functools
import hashlib
import http.server
import io
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from snncore.config import RunConfig
from snncore.data import DatasetError, OfflineError, load_dataset
from snncore.data import download as dl
from snncore.data.images import write_cifar_batch, write_idx


@pytest.fixture
def server(tmp_path):
    """Serve tmp_path/'srv' on 127.0.0.1; yields (folder, base URL)."""
    root = tmp_path / "srv"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


def md5(p: Path) -> str:
    return hashlib.md5(p.read_bytes()).hexdigest()


def test_download_progress_checksum_and_rename(server, tmp_path):
    srv, url = server
    (srv / "blob.bin").write_bytes(bytes(range(256)) * 1000)
    seen = []
    dest = tmp_path / "out" / "blob.bin"
    dl.download(url + "blob.bin", dest, md5=md5(srv / "blob.bin"),
                sha256=hashlib.sha256((srv / "blob.bin").read_bytes()).hexdigest(),
                progress=lambda what, done, total: seen.append((what, done, total)))
    assert dest.read_bytes() == (srv / "blob.bin").read_bytes()
    assert seen[0] == ("blob.bin", 0, 256_000) and seen[-1] == ("blob.bin", 256_000, 256_000)
    assert [d for _, d, _ in seen] == sorted(d for _, d, _ in seen) and len(seen) > 2
    assert sorted(p.name for p in dest.parent.iterdir()) == ["blob.bin"]


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    srv, url = server
    (srv / "blob.bin").write_bytes(b"abc" * 100)
    dest = tmp_path / "out" / "blob.bin"
    with pytest.raises(DatasetError, match=r"blob.bin from .* has the wrong checksum \(md5 [0-9a-f]{32}, expected 0+\)"):
        dl.download(url + "blob.bin", dest, md5="0" * 32)
    assert not dest.exists() and list(dest.parent.iterdir()) == []


def test_missing_file_on_server_and_closed_port(server, tmp_path):
    _, url = server
    with pytest.raises(OfflineError, match="cannot download .*nope.bin"):
        dl.download(url + "nope.bin", tmp_path / "nope.bin")
    with pytest.raises(OfflineError, match="cannot download http://127.0.0.1:9/x"):
        dl.download("http://127.0.0.1:9/x", tmp_path / "x")
    assert list(tmp_path.glob("*.part")) == [] and not (tmp_path / "nope.bin").exists()


def _mnist_files(srv: Path, n=30):
    r = np.random.default_rng(0)
    for split, k in (("train", n), ("t10k", n // 3)):
        write_idx(srv / f"{split}-images-idx3-ubyte.gz", r.integers(0, 256, (k, 28, 28)))
        write_idx(srv / f"{split}-labels-idx1-ubyte.gz", r.integers(0, 10, k))


def test_ensure_downloads_mnist_through_mirror(server, tmp_path, monkeypatch):
    srv, url = server
    _mnist_files(srv)
    monkeypatch.setenv("SNNCORE_DATA_MIRROR", url)
    # the real checksums would reject our tiny files: use theirs (same code path otherwise)
    real = dl.spec("mnist")
    fake = dl.Spec(real.folder, [dl.Resource(r.filename, r.url, md5(srv / r.filename)) for r in real.resources],
                   real.required)
    monkeypatch.setattr(dl, "spec", lambda name: fake if name == "mnist" else real)
    calls = []
    cfg = RunConfig.from_dict({"dataset": "mnist", "data_dir": str(tmp_path / "data")})
    b = load_dataset(cfg, progress=lambda *a: calls.append(a))
    assert b.train_y.numel() == 30 and b.test_y.numel() == 10
    assert {c[0] for c in calls} == {r.filename for r in real.resources}
    assert sorted(p.name for p in (tmp_path / "data/MNIST/raw").iterdir()) == sorted(r.filename for r in real.resources)
    # a second load reuses the files (the server is no longer needed)
    monkeypatch.setenv("SNNCORE_DATA_MIRROR", "http://127.0.0.1:9/")
    assert load_dataset(cfg).train_y.numel() == 30


def test_real_checksums_reject_wrong_files(server, tmp_path, monkeypatch):
    srv, url = server
    _mnist_files(srv)
    monkeypatch.setenv("SNNCORE_DATA_MIRROR", url)
    cfg = RunConfig.from_dict({"dataset": "mnist", "data_dir": str(tmp_path / "data")})
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz from .* wrong checksum .*f68b3c2dcbeaaa9fbdd348bbdeb94873"):
        load_dataset(cfg)
    assert not list((tmp_path / "data").rglob("*.gz")) and not list((tmp_path / "data").rglob("*.part"))


def test_ensure_downloads_and_unpacks_cifar10_archive(server, tmp_path, monkeypatch):
    srv, url = server
    buf = io.BytesIO()
    r = np.random.default_rng(0)
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            p = tmp_path / name
            write_cifar_batch(p, r.integers(0, 256, (4, 3072), dtype=np.uint8), r.integers(0, 10, 4))
            tar.add(p, arcname=f"cifar-10-batches-py/{name}")
    (srv / "cifar-10-python.tar.gz").write_bytes(buf.getvalue())
    monkeypatch.setenv("SNNCORE_DATA_MIRROR", url)
    real = dl.spec("cifar10")
    fake = dl.Spec(real.folder, [dl.Resource(real.resources[0].filename, real.resources[0].url,
                                             md5(srv / "cifar-10-python.tar.gz"), extract=True)], real.required)
    monkeypatch.setattr(dl, "spec", lambda name: fake)
    b = load_dataset(RunConfig.from_dict({"dataset": "cifar10", "data_dir": str(tmp_path / "data")}))
    assert b.train_y.numel() == 20 and b.test_y.numel() == 4
    assert not [p for p in (tmp_path / "data").iterdir() if p.name.startswith(".extract")]


def test_unreadable_archive_message(server, tmp_path, monkeypatch):
    srv, url = server
    (srv / "cifar-10-python.tar.gz").write_bytes(b"this is not a tar archive at all" * 10)
    monkeypatch.setenv("SNNCORE_DATA_MIRROR", url)
    real = dl.spec("cifar10")
    fake = dl.Spec(real.folder, [dl.Resource(real.resources[0].filename, real.resources[0].url,
                                             md5(srv / "cifar-10-python.tar.gz"), extract=True)], real.required)
    monkeypatch.setattr(dl, "spec", lambda name: fake)
    with pytest.raises(DatasetError, match=r"cifar-10-python.tar.gz is not a zip or tar archive: delete it"):
        load_dataset(RunConfig.from_dict({"dataset": "cifar10", "data_dir": str(tmp_path / "data")}))
    assert not [p for p in (tmp_path / "data").iterdir() if p.name.startswith(".extract")]
