"""STDP (snncore.rules.stdp): hand-computed cases, the vectorised traces, bounds, and the hook."""
import math

import pytest
import torch

from snncore.rules.base import LayerTrace, StepContext, check_params, params_from_dict
from snncore.rules.stdp import STDP, STDPParams, stdp_delta, stdp_window, traces


def spikes(T, B, N, times):
    """[T, B, N] float64 zeros with ones at (t, b, n) for each triple in times."""
    s = torch.zeros(T, B, N, dtype=torch.float64)
    for t, b, n in times:
        s[t, b, n] = 1.0
    return s


def naive_traces(s, tau):
    x = torch.zeros_like(s[0])
    out = []
    for t in range(s.shape[0]):
        x = x * math.exp(-1.0 / tau) + s[t]
        out.append(x.clone())
    return torch.stack(out)


def naive_stdp(pre, post, W, tau_pre, tau_post, eta_plus, eta_minus, bounds, w_min, w_max):
    """Per-step, per-sample, per-synapse loops straight from the equations."""
    T, B, n_pre = pre.shape
    n_post = post.shape[2]
    dW = torch.zeros(n_post, n_pre, dtype=torch.float64)
    for b in range(B):
        x = torch.zeros(n_pre, dtype=torch.float64)
        y = torch.zeros(n_post, dtype=torch.float64)
        for t in range(T):
            x = x * math.exp(-1 / tau_pre) + pre[t, b]
            y = y * math.exp(-1 / tau_post) + post[t, b]
            for j in range(n_post):
                for i in range(n_pre):
                    fp, fm = (1.0, 1.0) if bounds == "additive" else (w_max - W[j, i], W[j, i] - w_min)
                    dW[j, i] += eta_plus * fp * post[t, b, j] * x[i] - eta_minus * fm * y[j] * pre[t, b, i]
    return dW


# ---------------------------------------------------------------- traces

@pytest.mark.parametrize("tau", [0.5, 2.0, 5.0, 1e4])
def test_traces_equal_naive_loop(tau):
    g = torch.Generator().manual_seed(0)
    s = (torch.rand(17, 3, 5, generator=g) < 0.3).double()
    assert torch.allclose(traces(s, tau), naive_traces(s, tau), rtol=1e-12, atol=1e-12)


def test_traces_blocked_path_equals_naive_loop():
    g = torch.Generator().manual_seed(1)
    s = (torch.rand(23, 2, 4, generator=g) < 0.4).double()
    for chunk in (1, 4, 7, 23, 64):
        assert torch.allclose(traces(s, 3.0, chunk=chunk), naive_traces(s, 3.0), atol=1e-12)


def test_traces_bool_and_float32():
    s = torch.zeros(6, 1, 2, dtype=torch.bool)
    s[0, 0, 0] = True
    x = traces(s, 2.0)
    assert x.dtype == torch.float32
    assert x[5, 0, 0].item() == pytest.approx(math.exp(-5 / 2), rel=1e-6)
    assert x[:, 0, 1].abs().sum() == 0


# ---------------------------------------------------------------- hand-computed cases

def test_pre_before_post_by_hand():
    # one pre spike at t=1, one post spike at t=3, tau=2: only LTP, x_i[3] = exp(-(3-1)/2)
    pre, post = spikes(5, 1, 1, [(1, 0, 0)]), spikes(5, 1, 1, [(3, 0, 0)])
    dW = stdp_delta(pre, post, tau_pre=2.0, tau_post=2.0, eta_plus=0.01, eta_minus=0.02)
    assert dW.shape == (1, 1)
    assert dW.item() == pytest.approx(0.01 * math.exp(-1.0), rel=1e-12)
    assert dW.item() > 0


def test_post_before_pre_by_hand():
    # post at t=1, pre at t=3: only LTD, y_j[3] = exp(-2/2)
    pre, post = spikes(5, 1, 1, [(3, 0, 0)]), spikes(5, 1, 1, [(1, 0, 0)])
    dW = stdp_delta(pre, post, tau_pre=2.0, tau_post=2.0, eta_plus=0.01, eta_minus=0.02)
    assert dW.item() == pytest.approx(-0.02 * math.exp(-1.0), rel=1e-12)
    assert dW.item() < 0


def test_two_synapses_and_both_terms_by_hand():
    # pre i0 at t=0 and t=2, pre i1 at t=4; post j0 at t=3. tau_pre=2, tau_post=4.
    pre = spikes(6, 1, 2, [(0, 0, 0), (2, 0, 0), (4, 0, 1)])
    post = spikes(6, 1, 1, [(3, 0, 0)])
    ep, em = 0.1, 0.3
    dW = stdp_delta(pre, post, tau_pre=2.0, tau_post=4.0, eta_plus=ep, eta_minus=em)
    # i0 -> j0: LTP at t=3 reads x = exp(-3/2) + exp(-1/2); no pre spike after the post spike
    exp_00 = ep * (math.exp(-1.5) + math.exp(-0.5))
    # i1 -> j0: LTD at t=4 reads y = exp(-1/4); no pre trace when the post spike came
    exp_01 = -em * math.exp(-0.25)
    assert dW[0, 0].item() == pytest.approx(exp_00, rel=1e-12)
    assert dW[0, 1].item() == pytest.approx(exp_01, rel=1e-12)


def test_simultaneous_spikes_count_both_terms():
    pre, post = spikes(3, 1, 1, [(1, 0, 0)]), spikes(3, 1, 1, [(1, 0, 0)])
    dW = stdp_delta(pre, post, tau_pre=2.0, tau_post=2.0, eta_plus=0.01, eta_minus=0.02)
    assert dW.item() == pytest.approx(0.01 - 0.02)


def test_multiplicative_by_hand():
    pre, post = spikes(5, 1, 2, [(1, 0, 0), (3, 0, 1)]), spikes(5, 1, 1, [(2, 0, 0)])
    W = torch.tensor([[0.2, -0.4]], dtype=torch.float64)
    dW = stdp_delta(pre, post, W, tau_pre=2.0, tau_post=2.0, eta_plus=0.1, eta_minus=0.1,
                    bounds="multiplicative", w_min=-1.0, w_max=1.0)
    assert dW[0, 0].item() == pytest.approx(0.1 * (1.0 - 0.2) * math.exp(-0.5), rel=1e-12)
    assert dW[0, 1].item() == pytest.approx(-0.1 * (-0.4 + 1.0) * math.exp(-0.5), rel=1e-12)


def test_random_case_equals_naive_loops():
    g = torch.Generator().manual_seed(2)
    pre = (torch.rand(9, 3, 4, generator=g) < 0.3).double()
    post = (torch.rand(9, 3, 3, generator=g) < 0.3).double()
    W = torch.rand(3, 4, generator=g, dtype=torch.float64) - 0.5
    for bounds in ("additive", "multiplicative"):
        kw = dict(tau_pre=3.0, tau_post=1.5, eta_plus=0.01, eta_minus=0.012, bounds=bounds,
                  w_min=-0.7, w_max=0.9)
        got = stdp_delta(pre, post, W, **kw)
        assert torch.allclose(got, naive_stdp(pre, post, W, **kw), atol=1e-14)


def test_window_matches_single_pairs():
    kw = dict(tau_pre=2.0, tau_post=3.0, eta_plus=0.01, eta_minus=0.015)
    for dt in range(-5, 6):
        t_pre, t_post = 6, 6 + dt
        dW = stdp_delta(spikes(13, 1, 1, [(t_pre, 0, 0)]), spikes(13, 1, 1, [(t_post, 0, 0)]), **kw)
        assert dW.item() == pytest.approx(stdp_window(dt, **kw).item(), rel=1e-12)
    w = stdp_window(torch.arange(-3, 4), **kw)
    assert w.shape == (7,) and (w[:3] < 0).all() and (w[4:] > 0).all()
    assert w[0] == pytest.approx(-0.015 * math.exp(-1.0))


def test_no_spikes_gives_zero():
    z_pre, z_post = torch.zeros(8, 4, 5), torch.zeros(8, 4, 3)
    W = torch.rand(3, 5)
    assert stdp_delta(z_pre, z_post).abs().sum() == 0
    assert stdp_delta(z_pre, z_post, W, bounds="multiplicative").abs().sum() == 0
    # spikes on one side only also give zero
    pre = torch.ones(8, 4, 5)
    assert stdp_delta(pre, z_post).abs().sum() == 0
    assert stdp_delta(z_pre, torch.ones(8, 4, 3)).abs().sum() == 0


def test_batch_sum_equals_sum_of_single_samples():
    g = torch.Generator().manual_seed(3)
    pre = (torch.rand(10, 5, 6, generator=g) < 0.25).double()
    post = (torch.rand(10, 5, 4, generator=g) < 0.25).double()
    W = torch.rand(4, 6, generator=g, dtype=torch.float64) - 0.5
    kw = dict(tau_pre=4.0, tau_post=2.0, eta_plus=1e-2, eta_minus=1.1e-2, bounds="multiplicative")
    whole = stdp_delta(pre, post, W, **kw)
    parts = sum(stdp_delta(pre[:, b:b + 1], post[:, b:b + 1], W, **kw) for b in range(5))
    assert torch.allclose(whole, parts, atol=1e-14)


def test_soft_bounds_keep_weights_in_range():
    g = torch.Generator().manual_seed(4)
    w_min, w_max = -0.5, 0.8
    W = torch.empty(6, 8, dtype=torch.float64).uniform_(w_min, w_max, generator=g)
    W[0, 0], W[1, 1] = w_min, w_max        # at the bounds: that direction must not move
    for _ in range(20):
        pre = (torch.rand(12, 2, 8, generator=g) < 0.2).double()
        post = (torch.rand(12, 2, 6, generator=g) < 0.2).double()
        dW = stdp_delta(pre, post, W, tau_pre=3.0, tau_post=3.0, eta_plus=0.01, eta_minus=0.01,
                        bounds="multiplicative", w_min=w_min, w_max=w_max)
        W = W + dW
        assert W.min() >= w_min - 1e-12 and W.max() <= w_max + 1e-12


def test_soft_bound_factors_vanish_at_the_bounds():
    pre, post = spikes(5, 1, 2, [(1, 0, 0), (3, 0, 1)]), spikes(5, 1, 1, [(2, 0, 0)])
    W = torch.tensor([[1.0, -1.0]], dtype=torch.float64)    # i0 potentiated at w_max, i1 depressed at w_min
    dW = stdp_delta(pre, post, W, tau_pre=2.0, tau_post=2.0, bounds="multiplicative")
    assert dW.abs().max() == 0


def test_bad_arguments():
    with pytest.raises(ValueError):
        stdp_delta(torch.zeros(3, 1, 2), torch.zeros(3, 1, 2), None, bounds="multiplicative")
    with pytest.raises(ValueError):
        stdp_delta(torch.zeros(3, 1, 2), torch.zeros(3, 1, 2), bounds="hard")
    with pytest.raises(ValueError):
        stdp_delta(torch.zeros(3, 2, 2), torch.zeros(3, 1, 2))


# ---------------------------------------------------------------- params and the hook

def test_params_defaults_and_validation():
    p = STDPParams()
    assert (p.tau_pre, p.tau_post, p.eta_plus, p.eta_minus) == (5.0, 5.0, 1e-3, 1.05e-3)
    assert p.bounds == "additive" and p.targets == []
    assert check_params(p) == []
    q = params_from_dict(STDPParams, {"bounds": "multiplicative", "targets": "fc1, fc2", "tau_pre": "3"})
    assert q.targets == ["fc1", "fc2"] and q.tau_pre == 3.0
    assert check_params(params_from_dict(STDPParams, {"bounds": "nope"}))
    assert check_params(params_from_dict(STDPParams, {"tau_pre": 0.0}))
    with pytest.raises(ValueError):
        STDP(STDPParams(w_min=1.0, w_max=0.0))


def make_ctx(seed=0, T=6, B=3):
    g = torch.Generator().manual_seed(seed)
    model = torch.nn.Sequential()
    model.add_module("fc1", torch.nn.Linear(5, 4, bias=False))
    model.add_module("fc2", torch.nn.Linear(4, 3, bias=False))
    s0 = (torch.rand(T, B, 5, generator=g) < 0.5).float()
    s1 = (torch.rand(T, B, 4, generator=g) < 0.5).float()
    logits = torch.randn(T, B, 3, generator=g)
    layers = {"fc1": LayerTrace(model.fc1.weight, s0, s1),
              "fc2": LayerTrace(model.fc2.weight, s1, (logits > 0).float(), v=logits, spiking=False)}
    for prm in model.parameters():
        prm.grad = torch.full_like(prm, 0.123)
    y = torch.randint(0, 3, (B,), generator=g)
    ctx = StepContext(step=0, epoch=0, total_steps=10, model=model, x=s0, y=y, out=logits,
                      loss=torch.tensor(1.0), layers=layers)
    return model, ctx


def test_hook_changes_only_first_layer_by_default_and_keeps_grad():
    model, ctx = make_ctx()
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    rule = STDP(STDPParams(eta_plus=0.05, eta_minus=0.04), model)
    assert rule.uses_gradient and rule.name == "stdp"
    expected = stdp_delta(ctx.layers["fc1"].pre, ctx.layers["fc1"].post, model.fc1.weight,
                          **{k: getattr(rule.params, k) for k in
                             ("tau_pre", "tau_post", "eta_plus", "eta_minus", "bounds", "w_min", "w_max")})
    rule.after_step(ctx)
    assert torch.allclose(model.fc1.weight, before["fc1.weight"] + expected, atol=1e-7)
    assert not torch.equal(model.fc1.weight, before["fc1.weight"])
    assert torch.equal(model.fc2.weight, before["fc2.weight"])
    for prm in model.parameters():
        assert torch.equal(prm.grad, torch.full_like(prm, 0.123))
    tel = rule.telemetry()
    assert set(tel) == {"dw/fc1", "w_mean/fc1", "w_std/fc1"}
    assert all(isinstance(v, float) for v in tel.values())
    assert tel["dw/fc1"] == pytest.approx(expected.norm().item(), rel=1e-5)
    assert tel["w_mean/fc1"] == pytest.approx(model.fc1.weight.mean().item(), rel=1e-5)
    edges, counts = rule.weight_histogram("fc1", bins=7)
    assert edges.shape == (8,) and counts.shape == (7,) and counts.sum() == model.fc1.weight.numel()


def test_hook_targets_and_clamp():
    model, ctx = make_ctx(seed=1)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    rule = STDP(STDPParams(targets=["fc2"], bounds="multiplicative", eta_plus=0.9, eta_minus=0.9,
                           w_min=-0.2, w_max=0.2), model)
    for _ in range(3):
        rule.after_step(ctx)
    assert torch.equal(model.fc1.weight, before["fc1.weight"])
    assert not torch.equal(model.fc2.weight, before["fc2.weight"])
    assert model.fc2.weight.min() >= -0.2 and model.fc2.weight.max() <= 0.2
    assert set(rule.telemetry()) == {"dw/fc2", "w_mean/fc2", "w_std/fc2"}
    for prm in model.parameters():
        assert torch.equal(prm.grad, torch.full_like(prm, 0.123))
    with pytest.raises(ValueError, match="nope"):
        STDP(STDPParams(targets=["nope"]), model).after_step(ctx)


def test_registry_loads_stdp():
    from snncore.rules import get_rule
    assert get_rule("stdp") is STDP


def npz_round_trip(arrays):
    """Save as the store does and load with allow_pickle=False (as the app does)."""
    import io

    import numpy as np
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def test_arrays_histogram_and_window():
    import numpy as np
    model, ctx = make_ctx()
    rule = STDP(STDPParams(eta_plus=0.05, eta_minus=0.04), model)
    assert set(rule.arrays()) == {"window_dt", "window_dw"}          # before any step: no histogram
    rule.after_step(ctx)
    a = npz_round_trip(rule.arrays())
    assert set(a) == {"whist/fc1", "wedges/fc1", "w/fc1", "window_dt", "window_dw"}
    np.testing.assert_array_equal(a["w/fc1"], model.fc1.weight.detach().numpy())   # small: saved whole
    assert a["whist/fc1"].shape == (40,) and a["whist/fc1"].dtype == np.int64
    assert a["wedges/fc1"].shape == (41,) and a["wedges/fc1"].dtype == np.float64
    assert a["whist/fc1"].sum() == model.fc1.weight.numel()
    w = model.fc1.weight.detach()
    assert a["wedges/fc1"][0] == pytest.approx(w.min().item()) and a["wedges/fc1"][-1] == pytest.approx(w.max().item())
    np.testing.assert_array_equal(a["window_dt"], np.arange(-20, 21))
    np.testing.assert_allclose(a["window_dw"], stdp_window(np.arange(-20, 21), 5.0, 5.0, 0.05, 0.04).numpy())
    assert a["window_dw"][20] == pytest.approx(0.05 - 0.04)                # dt = 0: both terms
    bounded = STDP(STDPParams(bounds="multiplicative", w_min=-0.3, w_max=0.3), model)
    bounded.after_step(ctx)
    e = bounded.arrays()["wedges/fc1"]
    assert e[0] == -0.3 and e[-1] == pytest.approx(0.3)


def test_arrays_leave_out_a_large_weight_matrix():
    """Only small layers save the matrix with each snapshot (a 784 x 800 layer would be 2.5 MB)."""
    import torch

    from snncore.rules.stdp import W_SAVE_MAX, weight_hist_arrays
    big = torch.zeros(W_SAVE_MAX + 1, 1)
    small = torch.zeros(4, 8)
    a = weight_hist_arrays({"big": big, "small": small}, None)
    assert "w/big" not in a and "whist/big" in a and a["w/small"].shape == (4, 8)
