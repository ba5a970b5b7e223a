"""MPS (multi-plasticity synergy): the worked example of ALGORITHMS_MPS.md section 5, number for
number, and the invariants listed there."""
import math

import pytest
import torch

from snncore.rules.base import StepContext, check_params
from snncore.rules.mps import (MECHANISMS, MPS, MPSLinear, MPSNet, MPSParams, hebbian_delta,
                               sbp_hidden_delta, sbp_output_delta, shares, stdp_delta)

TOL = dict(atol=1e-5, rtol=0)


def t(x):
    return torch.tensor(x, dtype=torch.float64)


def close(a, b):
    torch.testing.assert_close(a.to(torch.float64), t(b) if not torch.is_tensor(b) else b.double(), **TOL)


# ------------------------------------------------------------------ the worked example (section 5)
X = [[1, 0, 1], [0, 1, 1], [1, 1, 0]]          # t1..t3, B = 1


def example_net():
    net = MPSNet([3, 2, 2], T=3, rho=0.5, v_th=1.0, a=1.0, bias=False).double()
    l1, l2 = net.layers
    with torch.no_grad():
        l1.W_bp.copy_(t([[1.8, 0.6, 1.5], [-0.9, 2.4, 1.2]]))
        l1.W_hebb.copy_(t([[0.6, 0, 0.3], [0, 0.9, 0]]))
        l1.W_sbp.copy_(t([[1.2, 0.3, -0.6], [0.6, 0.6, 1.8]]))
        l1.Z.copy_(t([[math.log(2), 0], [0, 0], [0, 0]]))
        l2.W_bp.copy_(t([[3, -1.5], [0.6, 2.7]]))
        l2.W_hebb.zero_()
        l2.W_sbp.copy_(t([[1.5, 1.5], [-1.5, 3]]))
        l2.Z.zero_()
        l1.F_sbp.copy_(t([[1, -1], [0.5, 0.5]]))
    x = t(X).unsqueeze(1)                      # [T=3, B=1, 3]
    y = t([[1, 0]])
    return net, x, y


def test_worked_example_forward_and_loss():
    net, x, y = example_net()
    close(net.layers[0].A(), [[0.5, 1 / 3], [0.25, 1 / 3], [0.25, 1 / 3]])
    out = net(x)
    s1, s2 = net.snapshot
    close(net.layers[0](x)[:, 0], [[2.025, 0.9], [1.05, 2.3], [1.725, 1.2]])
    close(s1["u"][:, 0], [[2.025, 0.9], [1.5625, 2.75], [2.00625, 2.075]])
    close(s1["s_out"][:, 0], [[1, 0], [1, 1], [1, 1]])
    close(net.layers[1](s1["s_out"])[:, 0], [[1.5, -0.3], [1.5, 1.6], [1.5, 1.6]])
    close(out[:, 0], [[1, 0], [1, 1], [1, 1]])
    close(net.readout(out), [[1, 2 / 3]])
    close(net.loss(out, y), 2 / 9)
    close(net.loss(out, torch.tensor([0])), 2 / 9)           # labels give the same one-hot


def test_worked_example_stbp_gradients():
    net, x, y = example_net()
    net.loss(net(x), y).backward()
    l1, l2 = net.layers
    close(l2.W_bp.grad, [[0, 0], [0.111111, 0.074074]])
    close(l2.Z.grad.T, [[0, 0, 0], [0.159259, -0.107407, -0.051852]])
    close(l1.W_bp.grad, [[0, 0, 0], [0.070370, 0, 0.070370]])
    close(l1.Z.grad.T, [[0, 0, 0], [-0.042222, -0.063333, 0.105556]])
    for layer in net.layers:                                   # columns of dL/dZ sum to 0
        close(layer.Z.grad.sum(0), [0, 0])
        assert layer.W_hebb.grad is None and layer.W_sbp.grad is None


def test_worked_example_local_deltas_pure_functions():
    net, x, y = example_net()
    net(x)
    s1, s2 = net.snapshot
    phi1 = torch.tanh(s1["u"] / 1.0 - 0.0)
    d_h1 = hebbian_delta(x, phi1, 0.1)
    close(d_h1, [[0.064341, 0.062676, 0.062719], [0.056175, 0.065361, 0.056939]])
    teacher = (y - 0.5).expand(3, 1, 2)
    close(teacher[0], [[0.5, -0.5]])
    close(hebbian_delta(s1["s_out"], teacher, 0.1), [[0.05, 0.033333], [-0.05, -0.033333]])
    e = y - s2["s_out"].mean(0)
    d_s2 = sbp_output_delta(e, s1["s_out"].mean(0), 0.1)
    close(d_s2, [[0, 0], [-0.066667, -0.044444]])
    m = d_s2.abs().mean(0)
    close(m, [0.033333, 0.022222])
    close(m / m.max(), [1, 2 / 3])
    d_s1 = sbp_hidden_delta(d_s2, e, net.layers[0].F_sbp, x.mean(0), 0.1)
    close(d_s1, [[0.044444] * 3, [-0.014815] * 3])


def test_worked_example_local_update():
    net, x, y = example_net()
    net.loss(net(x), y).backward()
    l1, l2 = net.layers
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rep = net.local_update(y, eta_h=0.1, gamma_h=0.95, c_h=4.0, theta_h=0.0, eta_s=0.1, c_s=4.0)
    close(net.last_deltas[0]["hebb"], [[0.064341, 0.062676, 0.062719], [0.056175, 0.065361, 0.056939]])
    close(l1.W_hebb, [[0.634341, 0.062676, 0.347719], [0.056175, 0.920361, 0.056939]])
    close(l2.W_hebb, [[0.05, 0.033333], [-0.05, -0.033333]])
    close(net.last_deltas[1]["sbp"], [[0, 0], [-0.066667, -0.044444]])
    close(net.last_deltas[0]["sbp"], [[0.044444] * 3, [-0.014815] * 3])
    close(l2.W_sbp - before["layers.1.W_sbp"], [[0, 0], [-0.066667, -0.044444]])
    close(l1.W_sbp - before["layers.0.W_sbp"], [[0.044444] * 3, [-0.014815] * 3])
    for key in ("layers.0.W_bp", "layers.1.W_bp", "layers.0.Z", "layers.1.Z"):
        assert torch.equal(net.state_dict()[key], before[key])
    assert set(rep) == {"fc1", "out"} and set(rep["fc1"]) == {"hebb", "sbp"}
    assert all(-1 <= r["cos"] <= 1 and r["dw"] >= 0 for d in rep.values() for r in d.values())


# ------------------------------------------------------------------ invariants
def rand_net(seed=0, **kw):
    kw.setdefault("mechanisms", ("bp", "hebb", "sbp"))
    net = MPSNet([12, 16, 5], T=6, seed=seed, **kw)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for layer in net.layers:
            for m in layer.mechanisms:
                if MECHANISMS[m].local:
                    layer.weight_of(m).uniform_(-1, 1, generator=g)
            if layer.Z.shape[0] > 1:
                layer.Z.normal_(0, 1, generator=g)
            if layer.bias is not None:
                layer.bias.uniform_(-0.2, 0.2, generator=g)
    x = (torch.rand(6, 8, 12, generator=g) < 0.4).float()
    y = torch.randint(0, 5, (8,), generator=g)
    return net, x, y


@pytest.mark.parametrize("mode", ["soft", "hard", "fixed"])
def test_shares_columns_sum_to_one(mode):
    Z = torch.randn(3, 7, requires_grad=True)
    A = shares(Z, 0.7, mode)
    torch.testing.assert_close(A.sum(0), torch.ones(7))
    assert (A >= 0).all()
    if mode == "hard":
        assert set(A.detach().unique().tolist()) <= {0.0, 1.0}
        (A * torch.randn(3, 7)).sum().backward()
        assert Z.grad is not None and Z.grad.abs().sum() > 0     # straight-through
    if mode == "fixed":
        assert not A.requires_grad
    for gran in ("neuron", "layer"):
        layer = MPSLinear(4, 5, granularity=gran, assign_mode=mode)
        assert layer.Z.shape == (3, 5 if gran == "neuron" else 1)
        torch.testing.assert_close(layer.A().sum(0), torch.ones(5))
    with pytest.raises(ValueError):
        shares(Z, 1.0, "bogus")


@pytest.mark.parametrize("gran", ["neuron", "layer"])
def test_dLdZ_columns_sum_to_zero_and_component_equals_effective(gran):
    net, x, y = rand_net(granularity=gran)
    net.loss(net(x), y).backward()
    for layer in net.layers:
        torch.testing.assert_close(layer.Z.grad.sum(0), torch.zeros(layer.Z.shape[1]), atol=1e-7, rtol=0)
    s_in = net.snapshot[1]["s_in"]
    layer = net.layers[1]
    torch.testing.assert_close(layer(s_in), layer.forward_effective(s_in), atol=1e-5, rtol=1e-5)
    W = sum(layer.A()[k].unsqueeze(1) * layer.weight_of(m) for k, m in enumerate(layer.mechanisms))
    torch.testing.assert_close(layer.effective_weight(), W)


def test_one_hot_on_bp_reproduces_plain_stbp():
    from spikingjelly.activation_based import neuron, surrogate
    net, x, y = rand_net()
    for layer in net.layers:
        layer.set_active(["bp"])
        assert not layer.Z.requires_grad
        torch.testing.assert_close(layer.A(), torch.tensor([[1.0], [0.0], [0.0]]).expand(3, layer.n_out))
    assert all(layer.W_hebb.abs().sum() > 0 and layer.W_sbp.abs().sum() > 0 for layer in net.layers)
    out = net(x)
    net.loss(out, y).backward()
    # plain STBP net with the same W_bp and b
    Ws = [layer.W_bp.detach().clone().requires_grad_() for layer in net.layers]
    bs = [layer.bias.detach().clone().requires_grad_() for layer in net.layers]
    h = x
    for W, b in zip(Ws, bs):
        lif = neuron.LIFNode(tau=2.0, decay_input=False, v_reset=None, v_threshold=1.0,
                             detach_reset=False, surrogate_function=surrogate.PiecewiseLeakyReLU(w=0.5, c=0.),
                             step_mode="m")
        h = lif(torch.nn.functional.linear(h, W) + b)
    torch.nn.functional.mse_loss(h.mean(0), torch.nn.functional.one_hot(y, 5).float()).backward()
    torch.testing.assert_close(out, h, atol=0, rtol=0)
    for layer, W, b in zip(net.layers, Ws, bs):
        torch.testing.assert_close(layer.W_bp.grad, W.grad, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(layer.bias.grad, b.grad, atol=1e-6, rtol=1e-5)


def test_locality_of_optimizer_and_local_steps():
    net, x, y = rand_net()
    opt = torch.optim.Adam(net.param_groups(lr=1e-2, lr_z=1e-1))
    assert {id(p) for g in opt.param_groups for p in g["params"]} == \
        {id(p) for p in net.parameters() if p.requires_grad}
    assert opt.param_groups[1]["lr"] == 1e-1 and all(g["params"][0].shape[0] == 3 for g in opt.param_groups[1:])
    local = lambda: {n: b.clone() for n, b in net.named_buffers() if ".W_" in n}      # noqa: E731
    grad_t = lambda: {n: p.detach().clone() for n, p in net.named_parameters()}       # noqa: E731
    loc0, par0 = local(), grad_t()
    opt.zero_grad()
    net.loss(net(x), y).backward()
    opt.step()
    assert all(torch.equal(v, local()[k]) for k, v in loc0.items())
    par1 = grad_t()
    assert any(not torch.equal(par0[k], par1[k]) for k in par0)
    net.local_update(net.onehot(y), **dict(eta_h=0.5, gamma_h=0.9, c_h=4.0, theta_h=0.0, eta_s=0.5, c_s=4.0))
    assert all(torch.equal(v, grad_t()[k]) for k, v in par1.items())          # W_bp, b, Z untouched
    assert any(not torch.equal(v, local()[k]) for k, v in loc0.items())


def test_no_presynaptic_spikes_decays_hebb_exactly():
    net, x, y = rand_net()
    net(torch.zeros_like(x))
    W0 = net.layers[0].W_hebb.clone()
    net.local_update(net.onehot(y), eta_h=0.3, gamma_h=0.95, c_h=4.0, theta_h=0.0, eta_s=0.05, c_s=4.0)
    assert torch.equal(net.layers[0].W_hebb, 0.95 * W0)


def test_hebb_bounded_and_zero_error_gives_zero_sbp():
    net, x, y = rand_net()
    for _ in range(5):
        net(x)
        net.local_update(net.onehot(y), eta_h=50.0, gamma_h=1.0, c_h=0.3, theta_h=-1.0, eta_s=0.05, c_s=4.0)
        assert all(layer.W_hebb.abs().max() <= 0.3 for layer in net.layers)
    assert any(layer.W_hebb.abs().max() == 0.3 for layer in net.layers)
    # e = 0: the pure functions and the network give zero SBP deltas
    e = torch.zeros(8, 5)
    assert torch.count_nonzero(sbp_output_delta(e, torch.rand(8, 16), 0.1)) == 0
    assert torch.count_nonzero(sbp_hidden_delta(torch.randn(5, 16), e, torch.randn(16, 5), torch.rand(8, 12), 0.1)) == 0
    out = net(x)
    W_sbp = [layer.W_sbp.clone() for layer in net.layers]
    net.local_update(net.readout(out), eta_h=0.01, gamma_h=0.95, c_h=4.0, theta_h=0.0, eta_s=0.5, c_s=4.0)
    for layer, W in zip(net.layers, W_sbp):
        assert torch.equal(layer.W_sbp, W)


def test_eval_mode_changes_nothing():
    net, x, y = rand_net()
    rule = MPS(MPSParams(), net)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    net.eval()
    with torch.no_grad():
        out = net(x)
    ctx = StepContext(step=0, epoch=0, total_steps=1, model=net, x=x, y=y, out=out,
                      loss=net.loss(out, y), layers={})
    rule.after_step(ctx)
    assert net.local_update(net.onehot(y), 1.0, 0.5, 4.0, 0.0, 1.0, 4.0) == {}
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in state.items())


def test_rule_needs_mps_model_and_params_are_valid():
    with pytest.raises(ValueError, match="rule mps needs model 'mps_mlp'"):
        MPS(MPSParams(), torch.nn.Linear(2, 2))
    rule = MPS(MPSParams())
    ctx = StepContext(step=0, epoch=0, total_steps=1, model=torch.nn.Linear(2, 2), x=torch.zeros(1),
                      y=torch.zeros(1), out=torch.zeros(1), loss=torch.zeros(()), layers={})
    with pytest.raises(ValueError, match="rule mps needs model 'mps_mlp'"):
        rule.after_step(ctx)
    assert check_params(MPSParams()) == []
    assert check_params(MPSParams(mechanisms=["bp", "nope"]))
    assert MPS.name == "mps"


@pytest.mark.parametrize("mechs", [("bp", "stdp", "hetero", "homeo"), ("bp", "sbp"), ("sbp",)])
def test_other_mechanism_sets(mechs):
    net, x, y = rand_net(mechanisms=mechs)
    if mechs == ("sbp",):
        assert not any(p.requires_grad for p in net.parameters())
        assert MPS(MPSParams(mechanisms=list(mechs)), net).uses_gradient is False
    else:
        net.loss(net(x), y).backward()
    net(x)
    before = {m: [l.weight_of(m).clone() for l in net.layers] for m in mechs}
    rep = net.local_update(net.onehot(y), 1e-2, 0.95, 4.0, 0.0, 0.05, 4.0, a_plus=1e-2, a_minus=1e-2)
    for l, layer in enumerate(net.layers):
        d = net.last_deltas[l]
        assert set(d) == {m for m in mechs if m != "bp"}
        if "hetero" in d:      # STDP + heterosynaptic change keeps each neuron's total weight
            torch.testing.assert_close(d["hetero"], -d["stdp"].mean(1, keepdim=True).expand_as(d["stdp"]))
            torch.testing.assert_close((d["stdp"] + d["hetero"]).sum(1), torch.zeros(layer.n_out), atol=1e-6, rtol=0)
            torch.testing.assert_close(d["stdp"], stdp_delta(net.snapshot[l]["s_in"], net.snapshot[l]["s_out"],
                                                             1e-2, 1e-2, 2.0))
        if "homeo" in d:
            r = net.snapshot[l]["s_out"].mean((0, 1))
            torch.testing.assert_close(layer.W_homeo, (before["homeo"][l] * (1 + 1e-2 * (0.1 - r)).unsqueeze(1)).clamp(-4, 4))
        if "bp" in mechs:
            assert torch.equal(layer.W_bp, before["bp"][l])
    assert set(rep) == {"fc1", "out"}


def test_stdp_delta_pair():
    s_in = torch.zeros(4, 1, 1)
    s_out = torch.zeros(4, 1, 1)
    s_in[0, 0, 0] = 1
    s_out[1, 0, 0] = 1                                    # pre one step before post: potentiation
    torch.testing.assert_close(stdp_delta(s_in, s_out, 1.0, 0.0, 2.0), torch.tensor([[math.exp(-0.5)]]))
    torch.testing.assert_close(stdp_delta(s_out, s_in, 0.0, 1.0, 2.0), torch.tensor([[-math.exp(-0.5)]]))


# ------------------------------------------------------------------ a tiny training smoke test
def test_training_smoke_and_telemetry():
    torch.manual_seed(0)
    T, B, C = 8, 32, 10
    protos = torch.rand(C, 64)
    p = MPSParams()
    net = MPSNet.from_params([64, 32, C], T, p, seed=0)
    rule = MPS(p, net, total_steps=3)
    opt = torch.optim.Adam(net.param_groups(lr=1e-3, lr_z=p.lr_z))
    for step in range(3):
        y = torch.randint(0, C, (B,))
        x = (torch.rand(T, B, 64) < (protos[y] * 0.8).unsqueeze(0)).float()
        opt.zero_grad()
        out = net(x)
        loss = net.loss(out, y)
        ctx = StepContext(step=step, epoch=0, total_steps=3, model=net, x=x, y=y, out=out, loss=loss,
                          layers=net.layer_traces(), optimizer=opt)
        rule.after_forward(ctx)
        loss.backward()
        rule.after_backward(ctx)
        opt.step()
        rule.after_step(ctx)
        tel = rule.telemetry()
        assert math.isfinite(loss.item())
        assert all(isinstance(v, float) and math.isfinite(v) for v in tel.values())
    for name in ("fc1", "out"):
        assert abs(sum(tel[f"share_{m}/{name}"] for m in ("bp", "hebb", "sbp")) - 1) < 1e-5
        for m in ("bp", "hebb", "sbp"):
            assert f"contrib_{m}/{name}" in tel and f"dw_{m}/{name}" in tel
        for m in ("hebb", "sbp"):
            assert -1 <= tel[f"cos_{m}/{name}"] <= 1
        assert 0 <= tel[f"silent/{name}"] <= 1
    amap = rule.assignment_map("fc1")
    assert amap.shape == (3, 32) and abs(amap.sum(0) - 1).max() < 1e-5
    assert net.assignment_map(1).shape == (3, C)


def test_arrays_assignment_and_mechanism_names():
    import io

    import numpy as np
    net, x, y = rand_net(3, mechanisms=("bp", "stdp", "hetero", "homeo"))
    rule = MPS(MPSParams(mechanisms=["bp", "stdp", "hetero", "homeo"]), net)
    buf = io.BytesIO()
    np.savez(buf, **rule.arrays())
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as z:                # unicode arrays need no pickle
        a = {k: z[k] for k in z.files}
    assert set(a) == {"mechanisms", "assign/fc1", "assign/out"}
    assert a["mechanisms"].dtype.kind == "U" and a["mechanisms"].tolist() == ["bp", "stdp", "hetero", "homeo"]
    assert a["assign/fc1"].shape == (4, 16) and a["assign/out"].shape == (4, 5)
    assert a["assign/fc1"].dtype == np.float32
    np.testing.assert_allclose(a["assign/fc1"], net.assignment_map("fc1"), rtol=1e-6)
    np.testing.assert_allclose(a["assign/out"].sum(0), 1.0, atol=1e-5)
    assert MPS(MPSParams(), None).arrays() == {}
