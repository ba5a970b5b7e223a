"""SSDP: the worked example of docs/ALGORITHMS_SSDP.md number for number, its invariants, and the
rule's hooks on a tiny hand-built model."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

from snncore.rules import get_rule
from snncore.rules.base import LayerTrace, StepContext, check_params
from snncore.rules.ssdp import (SSDP, SSDPParams, first_spike_latency, gaussian_kernel,
                                last_spike_latency, ssdp_delta, ssdp_delta_dense, synchrony)

TOL = dict(atol=1e-5, rtol=0)


# ----------------------------------------------------------------------------- worked example
def _trains(rows):
    """rows[b][n] = '1000' -> tensor [T, B, N]."""
    return torch.tensor([[[int(c) for c in s] for s in r] for r in rows], dtype=torch.float32).permute(2, 0, 1)


PRE = _trains([["1000", "0011"], ["0000", "0101"]])
POST = _trains([["0100", "0000"], ["1010", "0000"]])


def test_worked_example_latencies_and_synchrony():
    assert first_spike_latency(PRE).tolist() == [[0, 2], [4, 1]]
    assert first_spike_latency(POST).tolist() == [[1, 4], [0, 4]]
    assert last_spike_latency(PRE).tolist() == [[0, 3], [4, 3]]
    assert last_spike_latency(POST).tolist() == [[1, 4], [2, 4]]
    torch.testing.assert_close(synchrony(PRE, POST), torch.tensor([0.5, 0.25]), **TOL)
    torch.testing.assert_close(synchrony(PRE.bool(), POST.bool()), torch.tensor([0.5, 0.25]), **TOL)


@pytest.mark.parametrize("fn", [ssdp_delta, ssdp_delta_dense])
@pytest.mark.parametrize("as_bool", [False, True])
def test_worked_example_dw(fn, as_bool):
    pre, post = (PRE.bool(), POST.bool()) if as_bool else (PRE, POST)
    dw = fn(pre, post, a_plus=1.0, a_base=0.5, sigma=1.0)
    torch.testing.assert_close(dw, torch.tensor([[0.303181, 0.606531], [-0.250084, -0.036611]]), **TOL)
    g = torch.tensor([1.8, 0.8])
    dw = fn(pre, post, a_plus=1.0, a_base=0.5, gate=g)
    torch.testing.assert_close(dw, torch.tensor([[0.545811, 0.788490], [-0.200151, -0.063123]]), **TOL)
    dw = fn(pre, post, a_plus=1.0, a_base=0.5, latency="last")
    torch.testing.assert_close(dw, torch.tensor([[0.269432, 0.370933], [-0.250084, -0.303265]]), **TOL)


def test_kernel_table():
    K = gaussian_kernel(4, 1.0)
    assert K.shape == (5, 5)
    torch.testing.assert_close(K[0, 1], torch.tensor(math.exp(-0.5)))
    assert torch.all(K.diagonal() == 1)


# ----------------------------------------------------------------------------- invariants
def _rand_spikes(seed, T, B, n_pre, n_post, p=0.3):
    g = torch.Generator().manual_seed(seed)
    rates = 0.05 + p * torch.rand(1, B, 1, generator=g)
    pre = (torch.rand(T, B, n_pre, generator=g) < rates).float()
    post = (torch.rand(T, B, n_post, generator=g) < rates).float()
    return pre, post


dims = st.tuples(st.integers(0, 10_000), st.integers(1, 7), st.integers(1, 6), st.integers(1, 6),
                 st.integers(1, 6))
KW = dict(a_plus=0.3, a_base=0.2)


@settings(max_examples=30, deadline=None)
@given(dims, st.sampled_from(["first", "last"]), st.booleans(), st.floats(0.3, 5.0), st.booleans())
def test_dense_and_linear_forms_agree(d, latency, depress_silent, sigma, gated):
    seed, T, B, n_pre, n_post = d
    pre, post = _rand_spikes(seed, T, B, n_pre, n_post)
    gate = torch.rand(B, generator=torch.Generator().manual_seed(seed)) * 2 if gated else None
    kw = dict(KW, sigma=sigma, latency=latency, depress_silent=depress_silent, gate=gate)
    torch.testing.assert_close(ssdp_delta(pre, post, **kw), ssdp_delta_dense(pre, post, **kw),
                               atol=1e-6, rtol=1e-5)


@settings(max_examples=30, deadline=None)
@given(dims, st.sampled_from(["first", "last"]), st.booleans())
def test_swap_pre_post_transposes(d, latency, depress_silent):
    seed, T, B, n_pre, n_post = d
    pre, post = _rand_spikes(seed, T, B, n_pre, n_post)
    kw = dict(KW, latency=latency, depress_silent=depress_silent)
    torch.testing.assert_close(ssdp_delta(post, pre, **kw), ssdp_delta(pre, post, **kw).T,
                               atol=1e-7, rtol=0)


@settings(max_examples=20, deadline=None)
@given(dims)
def test_permutations_and_duplicated_batch(d):
    seed, T, B, n_pre, n_post = d
    pre, post = _rand_spikes(seed, T, B, n_pre, n_post)
    g = torch.Generator().manual_seed(seed + 1)
    gate = torch.rand(B, generator=g) * 2
    dw = ssdp_delta(pre, post, **KW, gate=gate)
    pi, pj, pb = (torch.randperm(n, generator=g) for n in (n_pre, n_post, B))
    # permuting neurons permutes dW
    torch.testing.assert_close(ssdp_delta(pre[:, :, pi], post[:, :, pj], **KW, gate=gate),
                               dw[pj][:, pi], atol=1e-7, rtol=0)
    # permuting the batch (gate along with it) leaves dW unchanged
    torch.testing.assert_close(ssdp_delta(pre[:, pb], post[:, pb], **KW, gate=gate[pb]), dw,
                               atol=1e-7, rtol=1e-6)
    # duplicating the batch leaves dW unchanged
    torch.testing.assert_close(ssdp_delta(torch.cat([pre, pre], 1), torch.cat([post, post], 1), **KW,
                                          gate=torch.cat([gate, gate])), dw, atol=1e-7, rtol=1e-6)


def test_cofiring_pairs_signs():
    T, B = 5, 8
    pre, post = _rand_spikes(3, T, B, 4, 3)
    pre[:, :, 0] = 0
    post[:, :, 0] = 0
    pre[1 + torch.arange(B) % 3, torch.arange(B), 0] = 1     # i0 fires in every sample
    post[torch.arange(B) % 4, torch.arange(B), 0] = 1        # j0 fires in every sample
    pre[:, :, 1] = 0                                          # i1 never fires: never co-fires
    for latency in ("first", "last"):
        for ds in (True, False):
            dw = ssdp_delta(pre, post, **KW, latency=latency, depress_silent=ds)
            assert dw[0, 0] > 0
            assert torch.all(dw[:, 1] <= 0)


@settings(max_examples=30, deadline=None)
@given(dims, st.booleans(), st.floats(0.0, 2.0))
def test_bounds(d, depress_silent, gmax):
    seed, T, B, n_pre, n_post = d
    pre, post = _rand_spikes(seed, T, B, n_pre, n_post)
    gate = torch.rand(B, generator=torch.Generator().manual_seed(seed)) * gmax
    dw = ssdp_delta(pre, post, **KW, gate=gate, depress_silent=depress_silent)
    m = gate.max()
    assert torch.all(dw >= -KW["a_base"] * m - 1e-7)
    assert torch.all(dw <= KW["a_plus"] * m + 1e-7)


def test_clip_to_unit_interval():
    pre, post = _rand_spikes(0, 4, 5, 3, 3, p=0.9)
    dw = ssdp_delta(pre, post, a_plus=50.0, a_base=40.0)
    assert dw.abs().max() <= 1.0
    assert (dw.abs() == 1.0).any()


def test_no_spikes():
    z = torch.zeros(4, 3, 5)
    gate = torch.tensor([0.5, 1.0, 2.0])
    dw = ssdp_delta(z, z[..., :2], **KW, gate=gate)
    torch.testing.assert_close(dw, torch.full((2, 5), -KW["a_base"] * gate.mean().item()))
    assert torch.equal(ssdp_delta(z, z[..., :2], **KW, gate=gate, depress_silent=False),
                       torch.zeros(2, 5))
    assert torch.equal(ssdp_delta_dense(z, z[..., :2], **KW, depress_silent=False), torch.zeros(2, 5))


@pytest.mark.parametrize("latency", ["first", "last"])
@pytest.mark.parametrize("shift", [1, 3])
def test_common_time_shift(latency, shift):
    T, B = 8, 5
    pre, post = _rand_spikes(7, T - 3, B, 6, 4, p=0.5)
    # no silent neuron: make each fire at a random time inside the first T-3 steps
    g = torch.Generator().manual_seed(11)
    for s in (pre, post):
        t = torch.randint(0, T - 3, s.shape[1:], generator=g)
        s.scatter_(0, t.unsqueeze(0), 1.0)
    pad = torch.zeros(3, B, 1)
    pre0, post0 = torch.cat([pre, pad.expand(3, B, 6)]), torch.cat([post, pad.expand(3, B, 4)])
    pre1, post1 = pre0.roll(shift, 0), post0.roll(shift, 0)
    kw = dict(KW, latency=latency)
    torch.testing.assert_close(ssdp_delta(pre1, post1, **kw), ssdp_delta(pre0, post0, **kw), atol=1e-7, rtol=0)


def test_sigma_infinity_counts_cofiring():
    pre, post = _rand_spikes(5, 6, 7, 5, 4)
    gate = torch.rand(7, generator=torch.Generator().manual_seed(5)) * 2
    a_pre, a_post = pre.amax(0), post.amax(0)
    C = a_post[:, :, None] * a_pre[:, None, :]
    want = (gate[:, None, None] * (KW["a_plus"] * C - KW["a_base"] * (1 - C))).mean(0)
    for sigma in (float("inf"), 1e6):
        torch.testing.assert_close(ssdp_delta(pre, post, **KW, sigma=sigma, gate=gate), want,
                                   atol=1e-6, rtol=0)


def test_conv_spikes_reduce_space_per_channel():
    g = torch.Generator().manual_seed(2)
    pre = (torch.rand(4, 3, 5, 2, 2, generator=g) < 0.1).float()
    post = (torch.rand(4, 3, 6, 2, 2, generator=g) < 0.1).float()
    want = ssdp_delta(pre.amax((3, 4)), post.amax((3, 4)), **KW)
    torch.testing.assert_close(ssdp_delta(pre, post, **KW), want, atol=0, rtol=0)


def test_bad_inputs():
    with pytest.raises(ValueError):
        ssdp_delta(torch.zeros(4, 2, 3), torch.zeros(4, 3, 3), **KW)
    with pytest.raises(ValueError):
        ssdp_delta(PRE, POST, **KW, latency="middle")
    with pytest.raises(ValueError):
        ssdp_delta(PRE, POST, **KW, gate=torch.ones(5))


# ----------------------------------------------------------------------------- the Rule
def test_params_defaults_and_registry():
    p = SSDPParams()
    assert (p.a_plus, p.a_base, p.sigma, p.latency, p.depress_silent, p.start_step, p.targets,
            p.schedule) == (1e-4, 5e-5, 1.0, "first", True, 0, [], "constant")
    assert check_params(p) == []
    assert get_rule("ssdp") is SSDP
    assert SSDP.name == "ssdp" and SSDP.summary
    with pytest.raises(ValueError, match="latency"):
        SSDP(SSDPParams(latency="middle"))


SIZES = {"fc1": (7, 5), "fc2": (5, 4), "out": (4, 3)}


def make_model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.ModuleDict({k: torch.nn.Linear(i, o) for k, (i, o) in SIZES.items()})


def make_ctx(model, step, seed, total_steps=10, optimizer=None, T=5, B=6, extras=None):
    g = torch.Generator().manual_seed(1000 + seed)
    rates = 0.05 + 0.5 * torch.rand(1, B, 1, generator=g)
    spikes = [(torch.rand(T, B, n, generator=g) < rates).float() for n in (7, 5, 4, 3)]
    h = spikes[0]
    for lin in model.values():
        h = lin(h)
    loss = h.pow(2).mean()
    layers = {name: LayerTrace(weight=lin.weight, pre=spikes[i], post=spikes[i + 1])
              for i, (name, lin) in enumerate(model.items())}
    return StepContext(step=step, epoch=0, total_steps=total_steps, model=model, x=spikes[0],
                       y=torch.zeros(B, dtype=torch.long), out=h, loss=loss, layers=layers,
                       optimizer=optimizer, extras=extras or {})


def run_step(rule, model, opt, ctx):
    """The Trainer's order; returns the weights right after optimizer.step() and the grads/state."""
    opt.zero_grad()
    ctx.loss.backward()
    rule.after_backward(ctx)
    opt.step()
    w_opt = {k: m.weight.detach().clone() for k, m in model.items()}
    rule._test_b_opt = {k: m.bias.detach().clone() for k, m in model.items()}
    grads = {k: m.weight.grad.clone() for k, m in model.items()}
    state = {id(p): {k: v.clone() if torch.is_tensor(v) else v for k, v in s.items()}
             for p, s in opt.state.items()}
    rule.after_step(ctx)
    return w_opt, grads, state


def assert_grads_and_state_untouched(model, opt, grads, state):
    for k, m in model.items():
        assert torch.equal(m.weight.grad, grads[k])
    for p, s in opt.state.items():
        for k, v in s.items():
            assert torch.equal(v, state[id(p)][k]) if torch.is_tensor(v) else v == state[id(p)][k]


def test_hooks_apply_exact_delta_to_last_two_layers_only():
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
    params = SSDPParams(a_plus=1e-2, a_base=5e-3)
    rule = SSDP(params, model, total_steps=10)
    for step in range(3):
        ctx = make_ctx(model, step, step, optimizer=opt)
        w_opt, grads, state = run_step(rule, model, opt, ctx)
        b_opt = rule._test_b_opt
        assert torch.equal(model["fc1"].weight, w_opt["fc1"])
        for name in ("fc2", "out"):
            tr = ctx.layers[name]
            dw = ssdp_delta(tr.pre, tr.post, a_plus=1e-2, a_base=5e-3)
            assert torch.equal(model[name].weight, w_opt[name] + dw)
            assert not torch.equal(model[name].weight, w_opt[name])
        for name in SIZES:           # biases are never touched
            assert torch.equal(model[name].bias, b_opt[name])
        assert_grads_and_state_untouched(model, opt, grads, state)
        tel = rule.telemetry()
        assert all(isinstance(v, float) for v in tel.values())
        for name in ("fc2", "out"):
            tr = ctx.layers[name]
            dw = ssdp_delta(tr.pre, tr.post, a_plus=1e-2, a_base=5e-3)
            assert tel[f"sync/{name}"] == pytest.approx(synchrony(tr.pre, tr.post).mean().item(), abs=1e-6)
            assert tel[f"dw/{name}"] == pytest.approx(dw.abs().mean().item(), rel=1e-5)
            assert tel[f"potentiated/{name}"] == pytest.approx((dw > 0).float().mean().item())
            assert tel[f"depressed/{name}"] == pytest.approx((dw < 0).float().mean().item())
            assert tel[f"silent/{name}"] == pytest.approx((tr.post.amax((0, 1)) == 0).float().mean().item())
            assert tel[f"rate/{name}"] == pytest.approx(tr.post.mean().item(), abs=1e-6)
            assert tel[f"dw_ratio/{name}"] > 0
        assert not any(k.endswith("/fc1") for k in tel)


def test_dw_ratio_measures_the_optimizer_step():
    model = make_model(1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    rule = SSDP(SSDPParams(a_plus=1e-3, a_base=1e-3), model)
    ctx = make_ctx(model, 0, 0, optimizer=opt)
    before = {k: m.weight.detach().clone() for k, m in model.items()}
    w_opt, _, _ = run_step(rule, model, opt, ctx)
    tel = rule.telemetry()
    for name in ("fc2", "out"):
        dw = model[name].weight.detach() - w_opt[name]
        want = dw.abs().mean() / (w_opt[name] - before[name]).abs().mean()
        assert tel[f"dw_ratio/{name}"] == pytest.approx(want.item(), rel=1e-4)


def test_explicit_targets_and_unknown_target():
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    rule = SSDP(SSDPParams(a_plus=1e-2, targets=["fc1"]), model)
    ctx = make_ctx(model, 0, 0, optimizer=opt)
    w_opt, _, _ = run_step(rule, model, opt, ctx)
    assert not torch.equal(model["fc1"].weight, w_opt["fc1"])
    for name in ("fc2", "out"):
        assert torch.equal(model[name].weight, w_opt[name])
    bad = SSDP(SSDPParams(targets=["fc9"]), model)
    with pytest.raises(ValueError, match=r"fc9.*fc1, fc2, out"):
        bad.after_step(make_ctx(model, 0, 0))


def test_start_step_and_cosine_schedule():
    model = make_model()
    rule = SSDP(SSDPParams(a_plus=1e-2, start_step=2), model)
    for step in range(4):
        ctx = make_ctx(model, step, step)
        w = {k: m.weight.detach().clone() for k, m in model.items()}
        rule.after_backward(ctx)
        rule.after_step(ctx)
        changed = not torch.equal(model["out"].weight, w["out"])
        assert changed == (step >= 2)
        assert rule.telemetry()["dw/out"] == 0.0 or step >= 2
    cos = SSDP(SSDPParams(a_plus=1e-2, a_base=5e-3, schedule="cosine"), model)
    for step, factor in ((0, 1.0), (5, 0.5), (10, 0.0)):
        ctx = make_ctx(model, step, step, total_steps=10)
        w = model["out"].weight.detach().clone()
        cos.after_step(ctx)
        tr = ctx.layers["out"]
        want = ssdp_delta(tr.pre, tr.post, a_plus=1e-2 * factor, a_base=5e-3 * factor)
        torch.testing.assert_close(model["out"].weight - w, want, atol=1e-7, rtol=1e-4)


def test_conv_1x1_weight_and_bool_spikes():
    conv = torch.nn.Conv2d(3, 4, 1)
    g = torch.Generator().manual_seed(0)
    pre = torch.rand(4, 2, 3, 5, 5, generator=g) < 0.05
    post = torch.rand(4, 2, 4, 5, 5, generator=g) < 0.05
    ctx = StepContext(step=0, epoch=0, total_steps=1, model=conv, x=pre.float(), y=torch.zeros(2),
                      out=post.float(), loss=torch.tensor(0.0),
                      layers={"conv": LayerTrace(weight=conv.weight, pre=pre, post=post)})
    rule = SSDP(SSDPParams(a_plus=1e-2))
    w = conv.weight.detach().clone()
    rule.after_step(ctx)
    want = ssdp_delta(pre, post, a_plus=1e-2, a_base=5e-5).reshape(4, 3, 1, 1)
    assert torch.equal(conv.weight, w + want)


def test_state_dict_round_trip():
    model = make_model()
    rule = SSDP(SSDPParams(), model)
    rule.after_step(make_ctx(model, 0, 0))
    st_ = rule.state_dict()
    other = SSDP(SSDPParams(), model)
    other.load_state_dict(st_)
    assert other.state_dict() == st_ == {"targets": ["fc2", "out"]}


def test_linear_form_handles_a_size_the_dense_form_would_not():
    # [B, N_post, N_pre] would be 64 * 1500 * 1500 floats (576 MB, several such temporaries);
    # the linear form needs B * N * (T+1) per operand.
    T, B, n = 4, 64, 1500
    g = torch.Generator().manual_seed(0)
    pre = torch.rand(T, B, n, generator=g) < 0.1
    post = torch.rand(T, B, n, generator=g) < 0.1
    dw = ssdp_delta(pre, post, a_plus=1e-4, a_base=5e-5)
    assert dw.shape == (n, n)
    # spot-check one row against the dense form on that row only
    ref = ssdp_delta_dense(pre, post[:, :, :1], a_plus=1e-4, a_base=5e-5)
    torch.testing.assert_close(dw[:1], ref, atol=1e-9, rtol=1e-5)


def _npz_round_trip(arrays):
    import io

    import numpy as np
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def test_arrays_kernel_and_latencies():
    import numpy as np
    model = make_model()
    rule = SSDP(SSDPParams(sigma=1.5), model)
    a0 = rule.arrays()                                        # before any step: the kernel only
    assert set(a0) == {"kernel_dt", "kernel_g"} and a0["kernel_g"][0] == 1.0
    ctx = make_ctx(model, 0, 0, T=5, B=6)
    rule.after_step(ctx)
    a = _npz_round_trip(rule.arrays())
    assert set(a) == {"kernel_dt", "kernel_g", "lat_T", "lat_pre/fc2", "lat_post/fc2", "lat_pre/out",
                      "lat_post/out", *(f"raster_{s}{i}/{n}" for s in ("pre", "post") for i in ("", "_ids")
                                        for n in ("fc2", "out"))}
    np.testing.assert_array_equal(a["kernel_dt"], np.arange(6))
    np.testing.assert_allclose(a["kernel_g"], gaussian_kernel(5, 1.5, dtype=torch.float64)[0].numpy())
    assert int(a["lat_T"]) == 5
    for name in ("fc2", "out"):
        tr = ctx.layers[name]
        assert a[f"lat_pre/{name}"].dtype == np.int32 and a[f"lat_pre/{name}"].shape == (6, SIZES[name][0])
        np.testing.assert_array_equal(a[f"lat_pre/{name}"], first_spike_latency(tr.pre).numpy())
        np.testing.assert_array_equal(a[f"lat_post/{name}"], first_spike_latency(tr.post).numpy())
        np.testing.assert_array_equal(a[f"raster_post/{name}"], tr.post[:, 0].T.numpy()[a[f"raster_post_ids/{name}"]] > 0)


def test_arrays_latency_subsample_is_bounded():
    from snncore.rules.ssdp import LAT_NEURONS, LAT_SAMPLES, _latency_sample
    tau = torch.randint(0, 9, (100, 1000))
    s = _latency_sample(tau)
    assert s.shape == (LAT_SAMPLES, LAT_NEURONS)
    assert (s[:, 0] == tau[:LAT_SAMPLES, 0].numpy()).all() and (s[:, -1] == tau[:LAT_SAMPLES, -1].numpy()).all()
