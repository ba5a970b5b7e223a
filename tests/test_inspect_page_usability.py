"""Inspect page usability (AppTest): the test-sample count defaults by model (conv models few, with a
warning when many are asked for, the user's choice kept), the layer picker is a selectbox when the
layers would not fit a radio, and the non-spiking read-out is a note, not a table row of "None"."""
import re

import pandas as pd
import pytest

from snncore import inspect as A
from snncore.inspect import conv as inspect_conv
from snncore.config import RunConfig
from snncore.store import RunStore
from snncore.train import Trainer
from tests.test_inspect_app import inspect_page_opener, titles
from tests.test_inspect_cli import INSPECT_TINY
from tests.test_inspect_conv import VGG


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny finished mlp run and a tiny 1-epoch vgg11 run (digits, 8x8) in one runs folder."""
    root = tmp_path_factory.mktemp("inspect_usability") / "runs"
    store = RunStore(root)
    ids = {}
    for key, kw in (("mlp", INSPECT_TINY), ("vgg", dict(VGG, epochs=1))):
        cfg = RunConfig.from_dict(kw)
        ids[key] = store.create_run(cfg.to_dict(), f"tiny-{key}")
        assert Trainer(cfg, store, ids[key]).run()["status"] == "finished"
    return root, store, ids


@pytest.fixture
def page(runs, monkeypatch):
    return inspect_page_opener(runs[0], monkeypatch)


def shown_samples(at) -> str:
    return next(m.value for m in at.markdown if "test samples ×" in m.value)


def slow_warnings(at) -> list[str]:
    return [w.value for w in at.warning if "will be slow" in w.value]


def test_sample_count_defaults_by_model_and_keeps_the_users_choice(page, runs, monkeypatch):
    _, _, r = runs
    at = page(r["mlp"])
    assert at.number_input(key="samples").value == 64 and "64 test samples" in shown_samples(at)
    # an untouched count follows the model: a conv run starts with a few samples, and no warning
    at.selectbox(key="inspect_run").set_value(r["vgg"]).run()
    assert not at.exception and not at.error, (at.exception, at.error)
    assert at.number_input(key="samples").value == 8 and "8 test samples" in shown_samples(at)
    assert not slow_warnings(at)
    # this tiny vgg on 8x8 digits is quick at 64 samples: no warning (it used to say "slow ... 0 s")
    at.number_input(key="samples").set_value(64).run()
    assert not at.exception and "64 test samples" in shown_samples(at)
    assert not slow_warnings(at)
    # as slow as a full-size net: a visible warning with an estimate, and the choice is honoured
    monkeypatch.setattr(inspect_conv, "CONV_SECONDS", {"vgg11": 100.0, "resnet19": 100.0})
    at.number_input(key="samples").set_value(72).run()
    assert not at.exception and "72 test samples" in shown_samples(at)
    (w,) = slow_warnings(at)
    assert "72 test samples of a vgg11 (width 0.25, 4 steps)" in w and "lower bound" in w
    assert f"{A.conv_inspect_seconds(dict(VGG), 72) / 60:.0f} min" in w
    # the explicit choice survives a change of run, both ways
    at.selectbox(key="inspect_run").set_value(r["mlp"]).run()
    assert at.number_input(key="samples").value == 72 and not slow_warnings(at)
    at.number_input(key="samples").set_value(16).run()
    at.selectbox(key="inspect_run").set_value(r["vgg"]).run()
    assert at.number_input(key="samples").value == 16 and slow_warnings(at)


def test_slow_estimate_scales_with_samples_steps_width_and_image_area():
    full = dict(model="resnet19", dataset="cifar10", timesteps=4, width=1.0)
    assert A.conv_inspect_seconds(full, 64) == pytest.approx(64 * 4 * A.CONV_SECONDS["resnet19"])
    assert A.conv_inspect_seconds(dict(full, width=0.5), 64) == pytest.approx(A.conv_inspect_seconds(full, 16))
    assert A.conv_inspect_seconds(dict(full, dataset="digits"), 64) == pytest.approx(
        A.conv_inspect_seconds(full, 64) / 16)


def test_uploaded_conv_checkpoint_defaults_to_few_samples(page, runs):
    _, store, r = runs
    at = page(r["mlp"])
    at.radio(key="source").set_value("a checkpoint file").run()
    assert at.number_input(key="samples").value == 64          # no file yet: the model is unknown
    at.file_uploader(key="upload").upload("vgg.pt", store.checkpoints(r["vgg"])[-1][2].read_bytes()).run()
    assert not at.exception and not at.error, (at.exception, at.error)
    assert at.number_input(key="samples").value == 8 and "8 test samples" in shown_samples(at)


def test_layer_picker_is_a_selectbox_for_many_layers(page, runs):
    _, _, r = runs
    at = page(r["mlp"])
    assert at.radio(key="layer").options == ["fc1"] and at.radio(key="layer").value == "fc1"
    at = page(r["vgg"])
    assert not [w for w in at.radio if w.key == "layer"]
    pick = at.selectbox(key="layer")
    assert pick.options == [f"conv{i}" for i in range(1, 9)] + ["fc1"] and pick.value == "conv1"
    assert "conv1 raster (click a spike to pick its neuron)" in titles(at)
    pick.set_value("conv3").run()
    assert not at.exception and "conv3 raster (click a spike to pick its neuron)" in titles(at)
    # from a run with a radio to one with a selectbox in one session: the default layer again
    at = page(r["mlp"])
    at.selectbox(key="inspect_run").set_value(r["vgg"]).run()
    assert not at.exception and at.selectbox(key="layer").value == "conv1"


@pytest.mark.parametrize("key,first,outputs", [("mlp", "fc1", 10), ("vgg", "conv1", 10)])
def test_readout_is_a_note_not_a_row_of_nones(page, runs, key, first, outputs):
    """The non-spiking read-out has no spike statistics: Streamlit would draw its empty cells as grey
    "None" (even under a Styler's na_rep), so it is a note under the table, with its SynOps."""
    _, _, r = runs
    at = page(r[key])
    table = at.dataframe[0].value
    assert table["layer"].iloc[0] == first and "out" not in table["layer"].tolist()
    for c in ("neurons", "rate (spk/step)", "silent", "saturated", "sparsity", "SynOps / sample"):
        assert pd.api.types.is_numeric_dtype(table[c]) and table[c].notna().all(), c     # sorts as numbers
    (note,) = [m.value for m in at.markdown if "non-spiking read-out" in m.value]
    assert note.startswith(f"**out** ({outputs} neurons)") and "no spike statistics" in note
    ops = float(re.search(r"SynOps / sample ([\d,]+)", note).group(1).replace(",", ""))
    total = float(next(m.value for m in at.metric if m.label == "SynOps per sample").replace(",", ""))
    assert ops >= 0 and table["SynOps / sample"].sum() + ops == pytest.approx(total, abs=2)
