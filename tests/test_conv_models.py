"""Conv spiking models (vgg11, resnet19): shapes, layer traces, size, training, amp and refusals."""
import math
import tomllib

import pytest
import torch
from spikingjelly.activation_based import functional

from snncore import rules
from snncore.config import ConfigError, RunConfig
from snncore.models import build_model
from snncore.models.conv import SpikingResNet19, SpikingVGG11, build_conv
from snncore.store import RunStore
from snncore.train import Trainer

TINY_CONV = dict(dataset="digits", epochs=1, timesteps=2, batch_size=32, hidden=[16], n_train=64,
                 record_every=2, log_every=1, width=0.0625)


def spikes(T, B, D, p=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, D, generator=g) < p).float()


def is_binary(t):
    return bool(((t == 0) | (t == 1)).all())


@pytest.mark.parametrize("model", ["vgg11", "resnet19"])
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32)])
def test_output_shape_and_gradients(model, shape):
    torch.manual_seed(0)
    net = build_conv(model, shape, 7, hidden=[12], width=0.0625)
    x = spikes(3, 2, math.prod(shape))
    out = net(x)
    assert out.shape == (3, 2, 7)
    out.mean().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)
    # an already image-shaped input gives the same result
    functional.reset_net(net)
    assert torch.allclose(net(x.reshape(3, 2, *shape)), out)


def test_vgg_traces():
    torch.manual_seed(0)
    net = SpikingVGG11((1, 8, 8), [12], 10, width=0.125, v_threshold=0.5)
    out = net(spikes(2, 3, 64))
    tr = net.layer_traces()
    assert list(tr) == net.names == [f"conv{i}" for i in range(1, 9)] + ["fc1", "out"]
    # an 8x8 image has room for three 2x2 pools (8 -> 4 -> 2 -> 1): after conv1, conv2, conv4
    assert net.pool_after == [True, True, False, True, False, False, False, False]
    assert tr["conv1"].pre.shape == (2, 3, 1, 8, 8) and tr["conv1"].post.shape == (2, 3, 8, 8, 8)
    assert tr["conv3"].pre.shape == (2, 3, 16, 2, 2)            # after two pools
    assert torch.equal(tr["conv2"].pre, torch.nn.functional.max_pool2d(
        tr["conv1"].post.flatten(0, 1), 2).reshape(2, 3, 8, 4, 4))
    assert tr["conv4"].pre is tr["conv3"].post                    # no pool between them
    for name in net.names[:-1]:
        assert tr[name].spiking and is_binary(tr[name].post) and is_binary(tr[name].pre)
        assert tr[name].weight is net.weight_layers()[name].weight
    # fc1 sees real spikes: the flattened 1x1 maps of conv8 (max pooling keeps them 0/1)
    assert tr["fc1"].pre.shape == (2, 3, 64) and torch.equal(tr["fc1"].pre, tr["conv8"].post.flatten(2))
    assert tr["fc1"].weight.shape == (12, 64) and tr["fc1"].post.shape == (2, 3, 12)
    o = tr["out"]
    assert not o.spiking and o.v is out and torch.equal(o.post, (out > 0).float())
    assert tr["conv8"].post.sum() > 0                             # the net is not silent


def test_resnet_traces_and_tdbn():
    torch.manual_seed(0)
    net = SpikingResNet19((3, 8, 8), [16], 10, width=0.0625, v_threshold=0.5)
    net(spikes(2, 3, 3 * 64))
    tr = net.layer_traces()
    blocks = [(1, 3), (2, 3), (3, 2)]
    convs = ["conv1"] + [f"layer{s}.{b}.conv{k}" for s, n in blocks for b in range(n) for k in (1, 2)]
    assert list(tr) == net.names == convs + ["fc1", "out"]
    assert len(convs) == 17                          # 1 stem + 16 block convs (+ fc1, out = 19 layers)
    # inside a block conv2 reads conv1's spikes; a block reads the previous block's output
    assert tr["layer1.0.conv2"].pre is tr["layer1.0.conv1"].post
    assert tr["layer2.0.conv1"].pre is tr["layer1.2.conv2"].post
    assert tr["layer1.0.conv1"].pre is tr["conv1"].post
    # stages halve the map: 8x8 -> 4x4 -> 2x2; channels 8, 16, 32 at width 1/16
    assert tr["layer1.2.conv2"].post.shape == (2, 3, 8, 8, 8)
    assert tr["layer2.0.conv1"].post.shape == (2, 3, 16, 4, 4)
    assert tr["layer3.1.conv2"].post.shape == (2, 3, 32, 2, 2)
    # fc1's input is the global average of the last block's spikes, in [0, 1]
    last = tr["layer3.1.conv2"].post
    assert torch.allclose(tr["fc1"].pre, last.mean(dim=(-2, -1)))
    assert tr["fc1"].pre.min() >= 0 and tr["fc1"].pre.max() <= 1
    for name in convs + ["fc1"]:
        assert is_binary(tr[name].post)
        assert tr[name].weight is net.weight_layers()[name].weight
    # tdBN: scale starts at alpha * V_th, alpha = 1/sqrt(2) for the two summed branches
    b = net.layer2[0]
    assert torch.allclose(net.bn1.weight, torch.full_like(net.bn1.weight, 0.5))
    assert torch.allclose(b.bn1.weight, torch.full_like(b.bn1.weight, 0.5))
    assert torch.allclose(b.bn2.weight, torch.full_like(b.bn2.weight, 0.5 / math.sqrt(2)))
    assert torch.allclose(b.shortcut[1].weight, torch.full_like(b.shortcut[1].weight, 0.5 / math.sqrt(2)))
    assert b.shortcut[0].kernel_size == (1, 1) and b.shortcut[0].stride == (2, 2)
    assert net.layer1[0].shortcut is None and net.layer2[1].shortcut is None


def resnet19_params(c_in, classes, fc=256):
    """Hand count of ResNet-19 (tdBN paper's table): conv weights, BN scale+shift, FC weights+bias."""
    n = 9 * c_in * 128 + 2 * 128                              # stem conv + tdBN
    c = 128
    for out, blocks in ((128, 3), (256, 3), (512, 2)):
        for b in range(blocks):
            n += 9 * c * out + 2 * out + 9 * out * out + 2 * out
            if c != out:
                n += c * out + 2 * out                        # 1x1 shortcut + tdBN
            c = out
    return n + (512 * fc + fc) + (fc * classes + classes)


def test_full_size_resnet19_parameter_count():
    net = SpikingResNet19((3, 32, 32), [256], 10)
    n = sum(p.numel() for p in net.parameters())
    assert n == resnet19_params(3, 10)
    assert 12.5e6 < n < 12.9e6                                # literature: ~12.6 M
    assert net.conv1.out_channels == 128 and net.layer3[1].conv2.out_channels == 512
    n100 = sum(p.numel() for p in SpikingResNet19((3, 32, 32), [256], 100).parameters())
    assert n100 - n == 90 * 257                               # only the classifier grows
    half = SpikingResNet19((3, 32, 32), [256], 10, width=0.5)
    assert half.conv1.out_channels == 64 and half.layer3[0].conv1.out_channels == 256
    vgg = SpikingVGG11((3, 32, 32), [256], 10)
    assert [c.out_channels for c in vgg.convs] == [64, 128, 256, 256, 512, 512, 512, 512]
    assert vgg.pool_after.count(True) == 5 and vgg.fc1.in_features == 512


def make_trainer(tmp_path, **kw):
    store = RunStore(tmp_path / "runs")
    cfg = RunConfig.from_dict({**TINY_CONV, **kw})
    rid = store.create_run(cfg.to_dict())
    return store, rid, Trainer(cfg, store, rid)


def test_resnet19_trains_with_ssdp_on_its_fc_layers(tmp_path, runs_dir):
    torch.manual_seed(0)
    store, rid, tr = make_trainer(tmp_path, model="resnet19", rule="ssdp",
                                  rule_params={"a_plus": 0.01})
    w_conv = tr.model.layer3[1].conv2.weight.detach().clone()
    s = tr.run()
    assert s["status"] == "finished" and s["steps"] == 2 and 0 <= s["test_accuracy"] <= 1
    m = store.metrics_frame(rid)
    for key in ("train/loss", "test/accuracy", "rate/conv1", "rate/layer3.1.conv2", "rate/fc1", "sync/chi"):
        assert key in m, key
    tel = store.metrics_frame(rid, "telemetry")
    assert {"dw/fc1", "dw/out"} <= set(tel.columns)           # SSDP's default: the last two layers
    assert not any(c.startswith("dw/") and "conv" in c for c in tel.columns)
    assert not torch.equal(w_conv, tr.model.layer3[1].conv2.weight)   # the convs learn by gradient
    snap = store.load_snapshot(rid)
    assert snap["raster/conv1"].dtype == bool and snap["raster/conv1"].shape == (256, 2 * 2)   # 2 batches x T


def test_vgg11_bf16_autocast_run(tmp_path, runs_dir):
    torch.manual_seed(0)
    store, rid, tr = make_trainer(tmp_path, model="vgg11", amp="bf16", n_train=32, rule="stdp",
                                  rule_params={"targets": ["fc1"]}, readout="rate")
    s = tr.run()
    assert s["status"] == "finished" and s["steps"] == 1
    assert math.isfinite(float(store.metrics_frame(rid)["train/loss"].iloc[0]))
    t = tr.model.layer_traces()
    assert t["conv1"].post.dtype == torch.bfloat16            # the forward ran under autocast
    assert tr.model.convs[0].weight.dtype == torch.float32    # weights stay float32
    x, _ = next(tr.data.batches("train", 4, 2, shuffle=False))
    functional.reset_net(tr.model)
    with tr.autocast():
        tr.model(x)
    assert tr.model.lifs[0].v.dtype == torch.float32          # the membrane integrates in float32
    assert "dw/fc1" in store.metrics_frame(rid, "telemetry")


def test_amp_off_runs_in_float32(tmp_path, runs_dir):
    store, rid, tr = make_trainer(tmp_path, model="vgg11", n_train=64)
    x, y = next(tr.data.batches("train", 64, 2, shuffle=False))
    tr.train_step(x, y)
    assert tr.scaler is None and tr.model.layer_traces()["conv1"].post.dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fp16_with_grad_scaler_on_cuda(tmp_path, runs_dir):
    store, rid, tr = make_trainer(tmp_path, model="resnet19", amp="fp16", device="cuda", n_train=64)
    assert tr.scaler is not None
    assert tr.run()["status"] == "finished"
    assert tr.model.layer_traces()["conv1"].post.dtype == torch.float16


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_fp16_refused_without_cuda(tmp_path, runs_dir):
    with pytest.raises(ValueError, match="amp: 'fp16' needs a CUDA GPU.*bf16"):
        make_trainer(tmp_path, model="vgg11", amp="fp16")


@pytest.mark.parametrize("values,words", [
    ({"model": "resnet19", "dataset": "synthetic"}, ["model: 'resnet19' needs image data", "'synthetic'", "mlp"]),
    ({"model": "vgg11", "rule": "stdp"}, ["stdp.targets", "3x3 conv stem", "fc1, out", "targets=fc1"]),
    ({"model": "resnet19", "rule": "rstdp"}, ["rstdp.targets", "fc1, out"]),
    ({"model": "resnet19", "rule": "ssdp", "rule_params": {"targets": ["conv1"]}},
     ["ssdp.targets: 'conv1' is not a fully connected layer of model 'resnet19'", "allowed: fc1, out"]),
    ({"model": "vgg11", "rule": "da_ssdp", "hidden": [32, 16], "rule_params": {"targets": "fc2,layer1.0.conv1"}},
     ["'layer1.0.conv1'", "allowed: fc1, fc2, out"]),
    ({"model": "vgg11", "rule": "mps"}, ["rule 'mps' needs model 'mps_mlp'"]),
    ({"model": "mlp", "width": 0.5}, ["width: applies to the conv models vgg11, resnet19 only"]),
    ({"model": "vgg11", "width": 0.0}, ["width", "0.0 < value <= 16.0"]),
    ({"amp": "fp8"}, ["amp", "off, bf16, fp16"]),
    ({"amp": "fp16", "device": "cpu"}, ["amp: 'fp16' needs a CUDA GPU", "bf16"]),
    ({"amp": "bf16", "rule": "mps"}, ["amp: mixed precision applies to the models mlp, vgg11, resnet19"]),
])
def test_refusals_name_the_problem(values, words):
    with pytest.raises(ConfigError) as e:
        RunConfig.from_dict(values)
    msg = str(e.value)
    for w in words:
        assert w in msg, msg
    assert "\n" not in msg


def test_accepted_combinations():
    for values in ({"model": "resnet19"}, {"model": "vgg11", "rule": "ssdp"}, {"model": "vgg11", "rule": "da_ssdp"},
                   {"model": "resnet19", "rule": "stdp", "rule_params": {"targets": "fc1"}},
                   {"model": "resnet19", "rule": "rstdp", "hidden": [32, 16], "rule_params": {"targets": ["fc2", "out"]}},
                   {"model": "vgg11", "width": 0.25, "amp": "bf16"}, {"model": "mlp", "amp": "bf16"},
                   {"model": "resnet19", "amp": "fp16", "device": "cuda"}):
        RunConfig.from_dict(values)
    cfg = RunConfig.from_dict({"model": "resnet19", "width": 0.5, "amp": "bf16"})
    assert "--width 0.5" in cfg.command_line() and "--amp bf16" in cfg.command_line()
    assert RunConfig.from_dict(tomllib.loads(cfg.to_toml())) == cfg


def test_unlisted_rule_is_refused_on_conv_models(monkeypatch):
    # a rule that does not declare conv support (Rule.conv_targets False, the default)
    import snncore.rules.bptt as bptt
    monkeypatch.setattr(bptt, "Spy2", type("Spy2", (bptt.BPTT,), {"name": "spy2", "conv_targets": False}),
                        raising=False)
    monkeypatch.setitem(rules.REGISTRY, "spy2", "snncore.rules.bptt:Spy2")
    with pytest.raises(ConfigError, match="rule: 'spy2' is not supported on model 'vgg11' \\(allowed: bptt, ssdp"):
        RunConfig.from_dict({"model": "vgg11", "rule": "spy2"})


def test_flat_input_refused_by_the_model():
    cfg = RunConfig(model="resnet19")
    with pytest.raises(ValueError, match="'resnet19' needs image data.*flat vectors"):
        build_model(cfg, 64, 10, ())
    assert isinstance(build_model(RunConfig(model="vgg11", width=0.0625), 64, 10, (1, 8, 8)), SpikingVGG11)
