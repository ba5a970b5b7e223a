"""R-STDP (snncore.rules.rstdp): hand-computed cases, per-sample reward folding, and the hook."""
import math

import pytest
import torch

from snncore.rules.base import LayerTrace, StepContext, check_params
from snncore.rules.rstdp import RSTDP, RSTDPParams, reward_from_output, rstdp_delta
from snncore.rules.stdp import stdp_delta


def spikes(T, B, N, times):
    s = torch.zeros(T, B, N, dtype=torch.float64)
    for t, b, n in times:
        s[t, b, n] = 1.0
    return s


def naive_rstdp(pre, post, reward, r_bar, tau_pre, tau_post, tau_e, eta, eta_plus, eta_minus):
    """Per-sample eligibility e[t] = e[t-1] exp(-1/tau_e) + STDP term at t, read at T-1 (loops)."""
    T, B, n_pre = pre.shape
    n_post = post.shape[2]
    dW = torch.zeros(n_post, n_pre, dtype=torch.float64)
    for b in range(B):
        x = torch.zeros(n_pre, dtype=torch.float64)
        y = torch.zeros(n_post, dtype=torch.float64)
        e = torch.zeros(n_post, n_pre, dtype=torch.float64)
        for t in range(T):
            x = x * math.exp(-1 / tau_pre) + pre[t, b]
            y = y * math.exp(-1 / tau_post) + post[t, b]
            term = eta_plus * torch.outer(post[t, b], x) - eta_minus * torch.outer(y, pre[t, b])
            e = e * math.exp(-1 / tau_e) + term
        dW += eta * (float(reward[b]) - r_bar) * e
    return dW


def test_by_hand_single_pair():
    # pre at t=1, post at t=3, T=5, tau=2, tau_e=4: STDP term at t=3 is eta_plus exp(-2/2);
    # the eligibility decays one step to the read-out at t=4: * exp(-1/4).
    pre, post = spikes(5, 1, 1, [(1, 0, 0)]), spikes(5, 1, 1, [(3, 0, 0)])
    dW = rstdp_delta(pre, post, torch.tensor([1.0]), 0.25, tau_pre=2.0, tau_post=2.0, tau_e=4.0,
                     eta=0.1, eta_plus=1.0, eta_minus=1.05)
    assert dW.item() == pytest.approx(0.1 * 0.75 * math.exp(-1.0) * math.exp(-0.25), rel=1e-12)


def test_by_hand_depression_and_two_samples():
    # sample 0: post at t=0, pre at t=2 (LTD, term at t=2, read at t=3); reward +1
    # sample 1: pre at t=1, post at t=2 (LTP, term at t=2);               reward -1
    pre = spikes(4, 2, 1, [(2, 0, 0), (1, 1, 0)])
    post = spikes(4, 2, 1, [(0, 0, 0), (2, 1, 0)])
    r_bar = 0.5
    dW = rstdp_delta(pre, post, torch.tensor([1.0, -1.0]), r_bar, tau_pre=2.0, tau_post=3.0,
                     tau_e=5.0, eta=0.2, eta_plus=1.0, eta_minus=1.5)
    e0 = -1.5 * math.exp(-2 / 3) * math.exp(-1 / 5)
    e1 = 1.0 * math.exp(-1 / 2) * math.exp(-1 / 5)
    expected = 0.2 * ((1.0 - r_bar) * e0 + (-1.0 - r_bar) * e1)
    assert dW.item() == pytest.approx(expected, rel=1e-12)


def test_equals_naive_per_sample_eligibility_loop():
    g = torch.Generator().manual_seed(0)
    pre = (torch.rand(11, 4, 5, generator=g) < 0.3).double()
    post = (torch.rand(11, 4, 3, generator=g) < 0.3).double()
    reward = torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64)
    kw = dict(tau_pre=3.0, tau_post=2.0, tau_e=6.0, eta=0.05, eta_plus=1.0, eta_minus=1.2)
    got = rstdp_delta(pre, post, reward, 0.3, **kw)
    assert torch.allclose(got, naive_rstdp(pre, post, reward, 0.3, **kw), atol=1e-14)


def test_long_tau_e_reduces_to_reward_weighted_stdp():
    g = torch.Generator().manual_seed(1)
    pre = (torch.rand(8, 3, 4, generator=g) < 0.3).double()
    post = (torch.rand(8, 3, 2, generator=g) < 0.3).double()
    reward = torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64)
    r_bar = -0.2
    got = rstdp_delta(pre, post, reward, r_bar, tau_pre=2.0, tau_post=2.0, tau_e=1e12, eta=0.1,
                      eta_plus=1.0, eta_minus=1.1)
    ref = sum(0.1 * (float(reward[b]) - r_bar) *
              stdp_delta(pre[:, b:b + 1], post[:, b:b + 1], tau_pre=2.0, tau_post=2.0, eta_plus=1.0,
                         eta_minus=1.1) for b in range(3))
    assert torch.allclose(got, ref, atol=1e-10)


def test_zero_when_reward_equals_baseline_and_sign_flips():
    g = torch.Generator().manual_seed(2)
    pre = (torch.rand(7, 3, 4, generator=g) < 0.4).double()
    post = (torch.rand(7, 3, 3, generator=g) < 0.4).double()
    kw = dict(tau_pre=2.0, tau_post=2.0, tau_e=5.0, eta=0.1)
    assert rstdp_delta(pre, post, torch.full((3,), 0.4), 0.4, **kw).abs().max() < 1e-15
    plus = rstdp_delta(pre, post, torch.ones(3), 0.0, **kw)
    minus = rstdp_delta(pre, post, -torch.ones(3), 0.0, **kw)
    assert plus.abs().max() > 0
    assert torch.allclose(minus, -plus, atol=1e-15)


def test_no_spikes_gives_zero_and_multiplicative_bounds():
    assert rstdp_delta(torch.zeros(5, 2, 3), torch.zeros(5, 2, 2), torch.ones(2), 0.0).abs().sum() == 0
    g = torch.Generator().manual_seed(3)
    W = torch.empty(3, 4, dtype=torch.float64).uniform_(-0.3, 0.3, generator=g)
    for _ in range(20):
        pre = (torch.rand(9, 2, 4, generator=g) < 0.3).double()
        post = (torch.rand(9, 2, 3, generator=g) < 0.3).double()
        r = torch.where(torch.rand(2, generator=g) < 0.5, 1.0, -1.0).double()
        W = W + rstdp_delta(pre, post, r, 0.0, weight=W, tau_pre=2.0, tau_post=2.0, tau_e=5.0,
                            eta=0.02, bounds="multiplicative", w_min=-0.3, w_max=0.3)
        assert W.min() >= -0.3 - 1e-12 and W.max() <= 0.3 + 1e-12


def test_batch_sum_equals_sum_of_single_samples():
    g = torch.Generator().manual_seed(4)
    pre = (torch.rand(6, 4, 3, generator=g) < 0.4).double()
    post = (torch.rand(6, 4, 2, generator=g) < 0.4).double()
    r = torch.tensor([1.0, -1.0, 1.0, 1.0], dtype=torch.float64)
    whole = rstdp_delta(pre, post, r, 0.1, tau_e=3.0)
    parts = sum(rstdp_delta(pre[:, b:b + 1], post[:, b:b + 1], r[b:b + 1], 0.1, tau_e=3.0) for b in range(4))
    assert torch.allclose(whole, parts, atol=1e-15)


def test_reward_from_output():
    out = torch.zeros(3, 2, 3)
    out[:, 0, 2] = 1.0     # sample 0 predicts 2
    out[:, 1, 0] = 1.0     # sample 1 predicts 0
    r = reward_from_output(out, torch.tensor([2, 1]))
    assert r.tolist() == [1.0, -1.0]


def make_ctx(correct, T=6, B=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    model = torch.nn.Sequential()
    model.add_module("fc1", torch.nn.Linear(5, 4, bias=False))
    model.add_module("fc2", torch.nn.Linear(4, 3, bias=False))
    s0 = (torch.rand(T, B, 5, generator=g) < 0.5).float()
    s1 = (torch.rand(T, B, 4, generator=g) < 0.5).float()
    y = torch.arange(B) % 3
    logits = torch.zeros(T, B, 3)
    pred = y if correct else (y + 1) % 3
    logits[:, torch.arange(B), pred] = 1.0
    layers = {"fc1": LayerTrace(model.fc1.weight, s0, s1),
              "fc2": LayerTrace(model.fc2.weight, s1, (logits > 0).float(), v=logits, spiking=False)}
    for prm in model.parameters():
        prm.grad = torch.full_like(prm, -0.5)
    return model, StepContext(step=0, epoch=0, total_steps=5, model=model, x=s0, y=y, out=logits,
                              loss=torch.tensor(1.0), layers=layers)


def test_hook_reward_baseline_targets_and_grad():
    p = RSTDPParams(eta=0.05, r_decay=0.5)
    assert check_params(p) == []
    model, ctx = make_ctx(correct=True)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    rule = RSTDP(p, model)
    assert rule.uses_gradient and rule.name == "rstdp" and rule.telemetry() == {}
    lt = ctx.layers["fc1"]
    expected = rstdp_delta(lt.pre, lt.post, torch.ones(4), 0.0, tau_pre=p.tau_pre, tau_post=p.tau_post,
                           tau_e=p.tau_e, eta=p.eta, eta_plus=p.eta_plus, eta_minus=p.eta_minus)
    rule.after_step(ctx)
    assert torch.allclose(model.fc1.weight, before["fc1.weight"] + expected, atol=1e-7)
    assert not torch.equal(model.fc1.weight, before["fc1.weight"])
    assert torch.equal(model.fc2.weight, before["fc2.weight"])
    for prm in model.parameters():
        assert torch.equal(prm.grad, torch.full_like(prm, -0.5))
    tel = rule.telemetry()
    assert set(tel) == {"reward", "reward_mean", "dw/fc1", "w_mean/fc1"}
    assert tel["reward"] == 1.0 and tel["reward_mean"] == pytest.approx(0.5)   # 0.5*0 + 0.5*1
    # all wrong now: r - r_bar = -1.5, the old baseline is used, then updated
    model2, ctx2 = make_ctx(correct=False)
    w0 = model2.fc1.weight.detach().clone()
    lt2 = ctx2.layers["fc1"]
    exp2 = rstdp_delta(lt2.pre, lt2.post, -torch.ones(4), 0.5, tau_pre=p.tau_pre, tau_post=p.tau_post,
                       tau_e=p.tau_e, eta=p.eta, eta_plus=p.eta_plus, eta_minus=p.eta_minus)
    rule.after_step(ctx2)
    assert torch.allclose(model2.fc1.weight, w0 + exp2, atol=1e-7)
    tel = rule.telemetry()
    assert tel["reward"] == -1.0 and tel["reward_mean"] == pytest.approx(-0.25)
    state = rule.state_dict()
    other = RSTDP(p, model)
    other.load_state_dict(state)
    assert float(other.r_bar) == pytest.approx(-0.25)


def test_hook_target_readout_only():
    model, ctx = make_ctx(correct=False, seed=1)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    rule = RSTDP(RSTDPParams(targets=["fc2"], eta=0.1, bounds="multiplicative", w_min=-0.6, w_max=0.6), model)
    rule.after_step(ctx)
    assert torch.equal(model.fc1.weight, before["fc1.weight"])
    assert not torch.equal(model.fc2.weight, before["fc2.weight"])
    assert model.fc2.weight.abs().max() <= 0.6
    assert set(rule.telemetry()) == {"reward", "reward_mean", "dw/fc2", "w_mean/fc2"}
    edges, counts = rule.weight_histogram("fc2", bins=5)
    assert edges[0] == -0.6 and edges[-1] == pytest.approx(0.6) and counts.sum() == 12


def test_registry_loads_rstdp():
    from snncore.rules import get_rule
    assert get_rule("rstdp") is RSTDP


def test_arrays_histogram_and_window():
    import io

    import numpy as np

    from snncore.rules.stdp import stdp_window
    model, ctx = make_ctx(correct=True)
    p = RSTDPParams(eta=0.05, targets=["fc1", "fc2"])
    rule = RSTDP(p, model)
    rule.after_step(ctx)
    buf = io.BytesIO()
    np.savez(buf, **rule.arrays())
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as z:
        a = {k: z[k] for k in z.files}
    assert set(a) == {"whist/fc1", "wedges/fc1", "whist/fc2", "wedges/fc2", "w/fc1", "w/fc2",
                      "window_dt", "window_dw"}
    for name, lin in (("fc1", model.fc1), ("fc2", model.fc2)):
        assert a[f"whist/{name}"].shape == (40,) and a[f"whist/{name}"].dtype == np.int64
        assert a[f"wedges/{name}"].shape == (41,) and a[f"whist/{name}"].sum() == lin.weight.numel()
    assert a["window_dt"].shape == a["window_dw"].shape == (41,)
    np.testing.assert_allclose(a["window_dw"], 0.05 * stdp_window(np.arange(-20, 21), p.tau_pre, p.tau_post,
                                                                  p.eta_plus, p.eta_minus).numpy())
