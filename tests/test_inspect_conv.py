"""Inspect on conv models (vgg11, resnet19): conv SynOps on hand-computed cases, then tiny trained runs
inspected through the Python API (checked against an independent re-run of the network), the command
line (--json) and the page (AppTest)."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from streamlit.testing.v1 import AppTest

from snncore import inspect as A
from snncore import metrics as M
from snncore.inspect import conv as inspect_conv
from snncore.cli import inspect as cli_inspect
from snncore.config import RunConfig
from snncore.data import load_dataset
from snncore.models import build_model
from snncore.store import RunStore
from snncore.train import Trainer
from tests.test_datasets_files import make_cifar10
from tests.test_inspect_app import click_raster, titles

SEED = 12345          # record_network's default encoding seed
VGG = dict(dataset="digits", model="vgg11", width=0.25, rule="bptt", epochs=2, timesteps=4, batch_size=16,
           hidden=[16], n_train=16, v_threshold=0.15, record_every=2, device="cpu")
RESNET = dict(dataset="cifar10", model="resnet19", width=0.0625, rule="bptt", epochs=1, max_steps=1,
              timesteps=2, batch_size=4, n_train=4, hidden=[16], v_threshold=0.15, record_every=2, device="cpu")


# ---- SynOps of a convolution, by hand ---------------------------------------------------------
def test_conv_fan_out_and_synops_hand_case():
    w = np.ones((2, 1, 3, 3))
    w[1, 0, 0, 0] = 0.0                     # one zero weight: tap (0, 0) reaches one output channel only
    fan = M.conv_fan_out(w, (3, 3), stride=1, padding=1)
    # centre: all 9 taps land inside the 3x3 output -> 2*9 - 1; corner (0, 0): taps ky, kx in {0, 1}
    # (including the zero one) -> 2*4 - 1; corner (2, 2): taps {1, 2} x {1, 2} -> 2*4; edge (0, 1): 2*6 - 1
    assert fan[0, 1, 1] == 17 and fan[0, 0, 0] == 7 and fan[0, 2, 2] == 8 and fan[0, 0, 1] == 11
    pre = np.zeros((2, 2, 1, 3, 3))
    pre[0, 0, 0, 1, 1] = pre[1, 0, 0, 0, 0] = 1          # sample 0: centre + corner (0,0) = 17 + 7
    pre[0, 1, 0, 2, 2] = pre[1, 1, 0, 2, 2] = 1          # sample 1: corner (2,2) twice = 16
    assert M.conv_synops(pre, w, 1, 1) == 20.0
    # stride 2 on 4x4 (padding 1): along an axis input 0 is reached by 1 tap, 1 by 2, 2 and 3 by 1
    fan2 = M.conv_fan_out(np.ones((3, 1, 3, 3)), (4, 4), stride=2, padding=1)[0]
    assert fan2[1, 1] == 3 * 2 * 2 and fan2[0, 0] == 3 and fan2[3, 1] == 3 * 2 and fan2.sum() == 3 * 25
    # dense MACs count the padded taps too: T * C_out * 2 * 2 * C_in * 9
    assert M.conv_dense_macs((3, 1, 3, 3), (4, 4), T=5, stride=2, padding=1) == 5 * 3 * 4 * 9


@pytest.mark.parametrize("stride,padding,dilation,hw", [(1, 1, 1, (5, 6)), (2, 1, 1, (7, 8)), (2, 0, 2, (9, 7)),
                                                        (1, 0, 1, (4, 4))])
def test_conv_synops_equals_the_summed_convolution_of_the_events(stride, padding, dilation, hw):
    """Each event x its fan-out = the sum of a convolution of the event counts with the non-zero mask."""
    g = torch.Generator().manual_seed(1)
    w = torch.randn(4, 3, 3, 3, generator=g) * (torch.rand(4, 3, 3, 3, generator=g) < 0.6)
    pre = (torch.rand(3, 2, 3, *hw, generator=g) < 0.3).float()
    ref = F.conv2d(pre.flatten(0, 1), (w != 0).float(), stride=stride, padding=padding, dilation=dilation).sum() / 2
    assert M.conv_synops(pre, w, stride, padding, dilation) == pytest.approx(float(ref))


# ---- tiny runs ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 2-epoch vgg11 run on digits (8x8), a 1-step resnet19 run on tiny CIFAR-10 files (32x32) and a
    copy of the resnet checkpoint whose BN variances are shrunk so that every stage fires."""
    tmp = tmp_path_factory.mktemp("inspect_conv")
    make_cifar10(tmp / "data")
    mp = pytest.MonkeyPatch()
    mp.setenv("SNNCORE_DATA_MIRROR", "http://127.0.0.1:9/")     # never the internet (the files are all there)
    store = RunStore(tmp / "runs")
    ids = {}
    for key, kw in (("vgg", VGG), ("resnet", dict(RESNET, data_dir=str(tmp / "data")))):
        cfg = RunConfig.from_dict(kw)
        ids[key] = store.create_run(cfg.to_dict(), f"tiny-{key}")
        assert Trainer(cfg, store, ids[key]).run()["status"] == "finished"
    state = A.load_checkpoint(store.checkpoints(ids["resnet"])[-1][2])
    state["model"] = {k: v * 1e-3 if k.endswith("running_var") else v for k, v in state["model"].items()}
    hot = tmp / "resnet_hot.pt"
    torch.save(state, hot)
    mp.undo()
    return {"root": tmp / "runs", "store": store, "hot": hot, **ids}


@pytest.fixture(scope="module")
def vgg_rec(runs):
    """The vgg run's newest checkpoint recorded on 12 test samples (shared by the tests below)."""
    state = A.load_checkpoint(A.run_checkpoint(runs["store"], runs["vgg"])[2])
    return state, A.record_network(state, n_samples=12)


@torch.no_grad()
def rerun(state, n):
    """Independent reference: the checkpoint's network on the first n test samples, encoded as
    record_network encodes them, in one batch; every layer's traces."""
    from spikingjelly.activation_based import functional
    cfg = RunConfig.from_dict(state["config"])
    data = load_dataset(cfg)
    model = build_model(cfg, data.input_size, data.n_classes, data.input_shape)
    model.load_state_dict(state["model"])
    model.eval()
    x, y = next(data.batches("test", A.CONV_DATA_BATCH, cfg.timesteps, shuffle=False,
                             generator=torch.Generator().manual_seed(SEED)))
    functional.reset_net(model)
    out = model(x[:, :n])
    return model, model.layer_traces(), out, y[:n]


def reference_synops(model, traces, n) -> dict[str, float]:
    """Per layer: sum over steps and samples of conv2d(events, non-zero mask) (a Linear: events @ mask),
    plus the ResNet shortcut conv of the block input, / n."""
    mods = dict(model.named_modules())
    wl = model.weight_layers()
    out = {}
    for name, tr in traces.items():
        srcs = [(wl[name], tr.pre)]
        if name.endswith(".conv2") and getattr(mods[name[:-6]], "shortcut", None) is not None:
            srcs.append((mods[name[:-6]].shortcut[0], traces[name[:-1] + "1"].pre))
        ops = 0.0
        for mod, pre in srcs:
            ev = (pre != 0).float()
            mask = (mod.weight != 0).float()
            if isinstance(mod, torch.nn.Conv2d):
                ops += float(F.conv2d(ev.flatten(0, 1), mask, stride=mod.stride, padding=mod.padding).sum())
            else:
                ops += float((ev @ mask.T).sum())
        out[name] = ops / n
    return out


def test_vgg_record_matches_an_independent_rerun(vgg_rec, monkeypatch):
    state, rec = vgg_rec
    n = 12
    model, tr, out, y = rerun(state, n)
    assert list(rec.layers) == [f"conv{i}" for i in range(1, 9)] + ["fc1", "out"]
    assert rec.labels.tolist() == y.tolist() and rec.predictions.tolist() == out.mean(0).argmax(-1).tolist()
    c1, c2 = rec.layers["conv1"], rec.layers["conv2"]
    # conv1: 16 channels x 8 x 8 = 1024 neurons, a sample of 512 recorded; conv2 (32 x 4 x 4 after a pool): all
    assert c1.shape == (16, 8, 8) and c1.n_total == 1024 and c1.post.shape == (4, n, A.CONV_NEURONS)
    assert c1.neurons.size == 512 and np.all(np.diff(c1.neurons) > 0) and c1.neurons[-1] < 1024
    assert c2.shape == (32, 4, 4) and c2.neurons is None and c2.post.shape == (4, n, 512)
    syn = reference_synops(model, tr, n)
    for name, lr in rec.layers.items():
        post = tr[name].post.reshape(4, n, -1)
        idx = np.arange(post.shape[2]) if lr.neurons is None else lr.neurons
        assert np.array_equal(lr.post, post[..., idx].numpy() != 0), name        # the sample, exactly
        np.testing.assert_allclose(lr.rates_all, post.mean((0, 1)).numpy(), atol=1e-6)   # every neuron
        assert lr.synops == pytest.approx(syn[name], rel=1e-9), name
        if lr.spiking:
            assert np.array_equal(lr.v >= lr.v_threshold, lr.post), name       # membrane explains the spikes
    assert c1.position(0) == tuple(np.unravel_index(c1.neurons[0], (16, 8, 8)))
    assert rec.layers["conv2"].synops > 0 and rec.layers["conv1"].post.any()
    stats = A.analyse(rec)
    s1 = stats["conv1"]
    every = tr["conv1"].post.reshape(4, n, -1).mean((0, 1)).numpy()
    assert s1.n_neurons == 1024 and s1.rates.size == 512 and s1.cv.size == 512
    assert (s1.silent, s1.saturated) == ((every == 0).sum(), (every >= M.SATURATED_AT).sum())
    assert s1.sparsity == pytest.approx(1 - every.mean())
    assert s1.dense_macs == 4 * 16 * 8 * 8 * 1 * 9                   # T x C_out x H x W x C_in x 3 x 3
    rep = A.report(rec, stats, "x")
    spikes = sum(float(tr[k].post.sum()) for k in rec.layers if k != "out")
    cells = sum(tr[k].post.numel() for k in rec.layers if k != "out")
    assert rep["activation_sparsity"] == pytest.approx(1 - spikes / cells)
    assert rep["layers"]["conv1"]["neurons_recorded"] == 512 and rep["layers"]["conv1"]["map"] == [16, 8, 8]
    # chunking never changes the result: one sample per forward pass gives the same record
    monkeypatch.setattr(inspect_conv, "RECORD_ELEMENTS", 1)
    small = A.record_network(state, n_samples=n)
    assert "chunks of 1 samples" in small.extra["note"]
    for name, lr in rec.layers.items():
        assert np.array_equal(small.layers[name].post, lr.post) and small.layers[name].synops == pytest.approx(lr.synops)


def test_vgg_weights_over_epochs(runs):
    h = A.run_weight_histograms(runs["store"], runs["vgg"])
    assert list(h) == [f"conv{i}" for i in range(1, 9)] + ["fc1", "out"]        # input order, BN left out
    assert h["conv1"]["epochs"] == [1, 2]
    np.testing.assert_allclose(h["conv1"]["share"].sum(1), 1.0)
    w = A.model_weights(A.load_checkpoint(runs["store"].checkpoints(runs["vgg"])[-1][2]))
    assert w["conv1"].shape == (16, 1, 3, 3) and w["conv8"].shape == (128, 128, 3, 3) and w["fc1"].shape == (16, 128)


def test_resnet_record_counts_shortcuts_and_every_stage(runs):
    state = A.load_checkpoint(runs["hot"])
    n = 4
    rec = A.record_network(state, n_samples=n)
    model, tr, _, _ = rerun(state, n)
    convs = ["conv1"] + [f"layer{s}.{b}.conv{k}" for s, nb in ((1, 3), (2, 3), (3, 2)) for b in range(nb) for k in (1, 2)]
    assert list(rec.layers) == convs + ["fc1", "out"]
    assert rec.layers["conv1"].shape == (8, 32, 32) and rec.layers["conv1"].n_total == 8192
    assert rec.layers["layer3.1.conv2"].shape == (32, 8, 8) and rec.layers["layer3.1.conv2"].post.shape == (2, n, 512)
    syn = reference_synops(model, tr, n)
    for name, lr in rec.layers.items():
        assert lr.synops == pytest.approx(syn[name], rel=1e-9), name
    for name in ("layer1.2.conv2", "layer2.0.conv2", "layer3.1.conv2"):
        assert rec.layers[name].rates_all.mean() > 0, name                    # every stage fires
    # layer2.0.conv2 is driven by conv2 (3x3, 16 -> 16 at 16x16) and the 1x1 stride-2 shortcut (8 -> 16)
    assert rec.layers["layer2.0.conv2"].dense_macs == 2 * (16 * 16 * 16 * 16 * 9 + 16 * 16 * 16 * 8)
    mods = dict(model.named_modules())
    assert bool((mods["layer2.0.shortcut.0"].weight != 0).all())
    ev = (tr["layer2.0.conv1"].pre != 0).float()          # the block input, 8 channels at 32x32
    conv2_only = float(F.conv2d((tr["layer2.0.conv2"].pre != 0).float().flatten(0, 1),
                                (mods["layer2.0.conv2"].weight != 0).float(), padding=1).sum()) / n
    # the 1x1 stride-2 shortcut: an input spike on an even row and column reaches 16 outputs, others none
    assert rec.layers["layer2.0.conv2"].synops == pytest.approx(conv2_only + float(ev[..., ::2, ::2].sum()) / n * 16)
    assert float(ev[..., ::2, ::2].sum()) > 0
    w = A.model_weights(state)
    assert w["layer2.0.shortcut"].shape == (16, 8, 1, 1) and list(w)[0] == "conv1" and list(w)[-1] == "out"


# ---- command line -------------------------------------------------------------------------------
def test_cli_json_and_text(runs, vgg_rec, capsys):
    rc = cli_inspect.main([runs["vgg"], "--runs-dir", str(runs["root"]), "--json", "--samples", "12"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    rep = json.loads(out)
    assert rep["model"] == "vgg11" and rep["samples"] == 12 and rep["timesteps"] == 4
    c1 = rep["layers"]["conv1"]
    assert (c1["neurons"], c1["neurons_recorded"], c1["map"]) == (1024, 512, [16, 8, 8])
    assert c1["silent"] + c1["saturated"] <= 1024 and c1["sparsity"] == pytest.approx(1 - c1["rate_mean"])
    rec = vgg_rec[1]
    assert rep["synops_per_sample"] == pytest.approx(sum(l.synops for l in rec.layers.values()))
    assert c1["rate_mean"] == pytest.approx(float(rec.layers["conv1"].rates_all.mean()))
    assert rep["synops_per_sample"] == pytest.approx(sum(l["synops_per_sample"] for l in rep["layers"].values()))
    rc = cli_inspect.main([str(runs["hot"]), "--samples", "2"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    rows = {l.split()[0]: l.split() for l in out.splitlines() if l.strip().startswith(("conv1", "layer2.0.conv2"))}
    assert rows["conv1"][1:3] == ["8192", "512"] and rows["layer2.0.conv2"][1:3] == ["4096", "512"]
    assert "a neuron is one channel at one position" in out


# ---- the page -------------------------------------------------------------------------------
def test_page_inspects_a_conv_run(runs, vgg_rec, monkeypatch):
    monkeypatch.setenv("SNNCORE_RUNS", str(runs["root"]))
    at = AppTest.from_file("../app.py", default_timeout=180)
    at.query_params["run"] = runs["vgg"]
    at.run()
    at.switch_page("app_pages/inspect_run.py")
    at.run()
    at.number_input(key="samples").set_value(8).run()
    assert not at.exception and not at.error, (at.exception, at.error)
    table = at.dataframe[0].value
    assert table["layer"].tolist()[:2] == ["conv1", "conv2"] and table.loc[0, "neurons"] == 1024
    assert table.loc[0, "recorded"] == 512 and table.loc[0, "map (C×H×W)"] == "16 × 8 × 8"
    assert any("a neuron is one channel at one position" in c.value for c in at.caption)
    assert any("conv1: 1,024 neurons" in c.value and "random sample" in c.value for c in at.caption)
    t = " | ".join(titles(at))
    for want in ("conv1: firing rate", "conv1: CV of ISI", "conv1: Fano factor", "conv1: firing rate per channel",
                 "conv1 raster", "weight distribution at epoch 2", "conv1: weight histogram over training"):
        assert want in t, t
    rec = vgg_rec[1]          # 12 samples, the same neuron sample as the page's 8
    c, y, x = rec.layers["conv1"].position(5)
    at.number_input(key="neuron_conv1").set_value(5).run()
    assert f"conv1 neuron 5 (channel {c}, y {y}, x {x}): membrane and spikes" in titles(at)
    stats = at.dataframe[1].value.set_index("statistic")["value"]
    assert stats["channel"] == str(c) and stats["position (y, x)"] == f"({y}, {x})"
    assert stats["index in the layer"] == str(rec.layers["conv1"].neurons[5])
    at = click_raster(at, {"curve_number": 0, "point_number": 0, "point_index": 0, "x": 1, "y": 9, "customdata": 9})
    assert not at.exception and at.number_input(key="neuron_conv1").value == 9
    at.selectbox(key="layer").set_value("conv2").run()
    assert not at.exception and "conv2 raster (click a spike to pick its neuron)" in titles(at)
    assert any("conv2: 512 neurons" in cap.value and "all of them are recorded" in cap.value for cap in at.caption)
    # a resnet checkpoint uploaded as a file
    at.radio(key="source").set_value("a checkpoint file").run()
    at.file_uploader(key="upload").upload("resnet_hot.pt", runs["hot"].read_bytes()).run()
    assert not at.exception and not at.error, (at.exception, at.error)
    table = at.dataframe[0].value
    assert len(table) == 18 and "layer2.0.conv2" in table["layer"].tolist()      # + the read-out note
