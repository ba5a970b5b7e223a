"""The Train page's dataset panel (app_pages/dataset_panel.py) through AppTest: widgets, the info
card with its preview, and the errors for missing / corrupt files; a Download button fetching
from a local server on 127.0.0.1."""
import hashlib

import pytest
from streamlit.testing.v1 import AppTest

from snncore.data import download as dl
from tests.test_datasets_files import make_mnist, make_nmnist
from tests.test_download import _mnist_files, server  # noqa: F401 -- fixture


def _script():
    import os

    from app_pages.dataset_panel import dataset_fields, render_dataset_info
    from snncore.config import RunConfig
    ds = os.environ["PANEL_DATASET"]
    values = dataset_fields(ds)
    render_dataset_info(RunConfig.from_dict({"dataset": ds, "timesteps": 6, **values}))


def _run(monkeypatch, dataset, data=None):
    monkeypatch.setenv("PANEL_DATASET", dataset)
    if data is not None:
        monkeypatch.setenv("SNNCORE_DATA", str(data))
    monkeypatch.setenv("SNNCORE_DATA_MIRROR", "http://127.0.0.1:9/")
    from app_pages.dataset_panel import _bundle
    _bundle.clear()
    at = AppTest.from_function(_script, default_timeout=60)
    at.run()
    assert not at.exception
    return at


def _metrics(at):
    return {m.label: m.value for m in at.metric}


def test_mnist_card_and_preview(tmp_path, monkeypatch):
    make_mnist(tmp_path)
    at = _run(monkeypatch, "mnist", tmp_path)
    assert [t.label for t in at.text_input] == ["data folder"]
    assert at.selectbox(key="ds_encoding").value == "rate"
    m = _metrics(at)
    assert m["shape"] == "1 x 28 x 28" and m["classes"] == "10" and m["train samples"] == "40"
    assert m["test samples"] == "20" and m["encoding"] == "rate"
    assert len(at.get("image")) == 4 and len(at.get("plotly_chart")) == 1
    assert not at.error
    at.selectbox(key="ds_encoding").set_value("latency").run()
    assert _metrics(at)["encoding"] == "latency"


def test_event_dataset_fields_and_frames(tmp_path, monkeypatch):
    make_nmnist(tmp_path, per_digit=1)
    at = _run(monkeypatch, "nmnist", tmp_path)
    assert at.number_input(key="ds_frames").value == 16
    m = _metrics(at)
    assert m["shape"] == "2 x 34 x 34" and m["encoding"] == "16 frames" and m["train samples"] == "10"
    at.number_input(key="ds_frames").set_value(5).run()
    assert _metrics(at)["encoding"] == "5 frames" and not at.error


def test_builtin_needs_no_folder(monkeypatch, tmp_path):
    at = _run(monkeypatch, "digits", tmp_path / "unused")
    assert not at.text_input and _metrics(at)["shape"] == "1 x 8 x 8"
    assert not (tmp_path / "unused").exists()


def test_missing_and_corrupt_files_show_one_error(tmp_path, monkeypatch):
    at = _run(monkeypatch, "cifar10", tmp_path / "none")
    assert len(at.error) == 1 and "cifar-10-batches-py/data_batch_1" in at.error[0].value
    assert str(tmp_path / "none") in at.error[0].value and at.button(key="ds_download")
    assert at.checkbox(key="ds_augment").value is False
    make_mnist(tmp_path, gz=False)
    (tmp_path / "MNIST/raw/train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 20)
    at = _run(monkeypatch, "mnist", tmp_path)
    assert len(at.error) == 1 and "train-images-idx3-ubyte is truncated" in at.error[0].value
    assert not at.metric


def test_download_button_fetches_from_mirror(server, tmp_path, monkeypatch):  # noqa: F811
    srv, url = server
    _mnist_files(srv)
    real = dl.spec("mnist")
    fake = dl.Spec(real.folder, [dl.Resource(r.filename, r.url, hashlib.md5((srv / r.filename).read_bytes()).hexdigest())
                                 for r in real.resources], real.required)
    monkeypatch.setattr(dl, "spec", lambda name: fake)
    at = _run(monkeypatch, "mnist", tmp_path / "data")
    assert at.error and at.button(key="ds_download")
    monkeypatch.setenv("SNNCORE_DATA_MIRROR", url)
    at.button(key="ds_download").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert _metrics(at)["train samples"] == "30"
