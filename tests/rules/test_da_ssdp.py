"""DA-SSDP: the gate fit of docs/ALGORITHMS_SSDP.md number for number, its invariants, and the
rule's warm-up / fit / gated phases on a tiny hand-built model."""
from __future__ import annotations

import pytest
import torch
from hypothesis import example, given, settings, strategies as st

from snncore.rules import get_rule
from snncore.rules.base import LayerTrace, StepContext, check_params
from snncore.rules.da_ssdp import DASSDP, DASSDPParams, dopamine_gate, fit_gate
from snncore.rules.ssdp import ssdp_delta, synchrony

TOL = dict(atol=1e-5, rtol=0)


def _trains(rows):
    return torch.tensor([[[int(c) for c in s] for s in r] for r in rows], dtype=torch.float32).permute(2, 0, 1)


PRE = _trains([["1000", "0011"], ["0000", "0101"]])
POST = _trains([["0100", "0000"], ["1010", "0000"]])


# ----------------------------------------------------------------------------- worked example
def test_fit_gate_worked_example():
    k, mu, sd = fit_gate(torch.tensor([.1, .2, .3, .4]), torch.tensor([2.0, 1.8, 1.5, 1.1]))
    assert k.item() == pytest.approx(0.989071, abs=1e-5)
    assert mu.item() == pytest.approx(0.25, abs=1e-5)
    assert sd.item() == pytest.approx(0.111803, abs=1e-5)
    k, _, _ = fit_gate(torch.tensor([.1, .3, .1, .3]), torch.tensor([1.0, 1, 2, 2]))
    assert k.item() == pytest.approx(0.0, abs=1e-7)
    k, mu, sd = fit_gate(torch.full((5,), 0.3), torch.tensor([1.0, 2, 3, 4, 5]))
    assert k.item() == 0.0 and mu.item() == pytest.approx(0.3) and sd.item() == pytest.approx(1e-8, abs=1e-9)


def test_gated_worked_example():
    S = synchrony(PRE, POST)
    g = dopamine_gate(S, 0.4, 0.3, 0.1)
    torch.testing.assert_close(g, torch.tensor([1.8, 0.8]), **TOL)
    g_t = dopamine_gate(S, torch.tensor(0.4), torch.tensor(0.3), torch.tensor(0.1))
    torch.testing.assert_close(g_t, g)
    dw = ssdp_delta(PRE, POST, a_plus=1.0, a_base=0.5, gate=g)
    torch.testing.assert_close(dw, torch.tensor([[0.545811, 0.788490], [-0.200151, -0.063123]]), **TOL)


def test_gate_clips_to_0_2():
    g = dopamine_gate(torch.tensor([-10.0, 0.3, 10.0]), 1.0, 0.3, 0.1)
    assert g.tolist() == [0.0, 1.0, 2.0]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 10)), min_size=2, max_size=40))
@example(pairs=[(0.0, 0.0), (1.0, 0.001953125)])  # CI found it: L's sd just above 1e-3
def test_fit_gate_is_minus_pearson_and_bounded(pairs):
    S = torch.tensor([p[0] for p in pairs], dtype=torch.float64)
    L = torch.tensor([p[1] for p in pairs], dtype=torch.float64)
    k, mu, sd = fit_gate(S, L)
    assert -1.0 <= k.item() <= 1.0
    assert mu.item() == pytest.approx(S.mean().item())
    sS, sL = S.std(unbiased=False), L.std(unbiased=False)
    if sS > 1e-3 and sL > 1e-3:
        # k = -r shrunk by the eps in both standard deviations (eps/sd is 1e-5 at sd = 1e-3)
        r = torch.corrcoef(torch.stack([S, L]))[0, 1]
        shrink = (sS / (sS + 1e-8) * sL / (sL + 1e-8)).item()
        assert k.item() == pytest.approx(-r.item() * shrink, abs=1e-9)


def test_fit_gate_rejects_bad_input():
    with pytest.raises(ValueError):
        fit_gate(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError):
        fit_gate(torch.zeros(0), torch.zeros(0))


def test_independent_sync_and_loss_give_k_near_0_and_plain_ssdp():
    g = torch.Generator().manual_seed(0)
    S, L = torch.rand(50_000, generator=g), torch.rand(50_000, generator=g)
    k, mu, sd = fit_gate(S, L)
    assert abs(k.item()) < 0.02
    # on a batch, the gated update is then within |g - 1| * max(A) of SSDP with the same amplitudes
    pre = (torch.rand(5, 16, 8, generator=g) < torch.rand(1, 16, 1, generator=g)).float()
    post = (torch.rand(5, 16, 6, generator=g) < torch.rand(1, 16, 1, generator=g)).float()
    gate = dopamine_gate(synchrony(pre, post), k, mu, sd)
    kw = dict(a_plus=1.5e-3, a_base=5e-4)
    diff = (ssdp_delta(pre, post, **kw, gate=gate) - ssdp_delta(pre, post, **kw)).abs().max()
    assert (gate - 1).abs().max() < 0.05
    assert diff <= (gate - 1).abs().max() * 1.5e-3 + 1e-9
    # exactly k = 0: exactly SSDP
    g1 = dopamine_gate(synchrony(pre, post), 0.0, mu, sd)
    assert torch.equal(ssdp_delta(pre, post, **kw, gate=g1), ssdp_delta(pre, post, **kw))


# ----------------------------------------------------------------------------- the Rule
def test_params_defaults_and_registry():
    p = DASSDPParams()
    assert (p.a_plus, p.a_base, p.sigma, p.latency, p.depress_silent, p.warmup_steps,
            p.gate_mode, p.targets) == (1.5e-3, 5e-4, 1.0, "first", True, 0, "per_sample", [])
    assert p.warmup_frac == pytest.approx(1 / 6)
    assert check_params(p) == []
    assert get_rule("da_ssdp") is DASSDP
    assert DASSDP(p, total_steps=600).warmup_len() == 100
    assert DASSDP(DASSDPParams(warmup_steps=7), total_steps=600).warmup_len() == 7
    with pytest.raises(ValueError, match="gate_mode"):
        DASSDP(DASSDPParams(gate_mode="global"))


SIZES = {"fc1": (7, 5), "fc2": (5, 4), "out": (4, 3)}


def make_model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.ModuleDict({k: torch.nn.Linear(i, o) for k, (i, o) in SIZES.items()})


def make_ctx(model, step, seed, total_steps=12, optimizer=None, T=5, B=6, extras=None):
    g = torch.Generator().manual_seed(1000 + seed)
    rates = 0.05 + 0.6 * torch.rand(1, B, 1, generator=g)
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
    opt.zero_grad()
    ctx.loss.backward()
    rule.after_backward(ctx)
    opt.step()
    w_opt = {k: m.weight.detach().clone() for k, m in model.items()}
    grads = {k: m.weight.grad.clone() for k, m in model.items()}
    state = {id(p): {k: v.clone() if torch.is_tensor(v) else v for k, v in s.items()}
             for p, s in opt.state.items()}
    rule.after_step(ctx)
    for k, m in model.items():
        assert torch.equal(m.weight.grad, grads[k])
    for p, s in opt.state.items():
        for k, v in s.items():
            assert torch.equal(v, state[id(p)][k]) if torch.is_tensor(v) else v == state[id(p)][k]
    return w_opt


def test_warmup_fit_gate_and_checkpoint():
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
    rule = DASSDP(DASSDPParams(a_plus=1e-2, a_base=5e-3, warmup_steps=4), model, total_steps=12)
    S_rec = {"fc2": [], "out": []}
    L_rec = []
    for step in range(4):                                     # warm-up: weights bitwise unchanged
        ctx = make_ctx(model, step, step, optimizer=opt)
        w_opt = run_step(rule, model, opt, ctx)
        for name in SIZES:
            assert torch.equal(model[name].weight, w_opt[name])
        for name in S_rec:
            S_rec[name].append(synchrony(ctx.layers[name].pre, ctx.layers[name].post))
        L_rec.append(ctx.loss.detach().expand(6))
        tel = rule.telemetry()
        assert tel["warmup_progress"] == pytest.approx((step + 1) / 4)
        assert tel["dw/out"] == 0.0
        S_all = torch.cat(S_rec["out"])
        L_all = torch.cat(L_rec)
        r = torch.corrcoef(torch.stack([S_all, L_all]).double())[0, 1].nan_to_num(0.0)
        assert tel["corr/out"] == pytest.approx(r.item(), abs=1e-5)
        if step < 3:
            assert tel["phase"] == 0.0 and not rule.fitted
    assert rule.fitted and tel["phase"] == 1.0                # fitted at the end of the warm-up
    fits = {n: fit_gate(torch.cat(S_rec[n]), torch.cat(L_rec)) for n in S_rec}
    for name, (k, mu, sd) in fits.items():
        assert tel[f"k/{name}"] == pytest.approx(k.item(), abs=1e-6)
        assert tel[f"mu/{name}"] == pytest.approx(mu.item(), abs=1e-6)
        assert tel[f"sd/{name}"] == pytest.approx(sd.item(), abs=1e-6)
    assert any(abs(fits[n][0].item()) > 0.01 for n in fits)   # a non-trivial gate to check

    saved = rule.state_dict()
    for step in range(4, 7):                                  # gated SSDP after the optimizer step
        ctx = make_ctx(model, step, step, optimizer=opt)
        w_opt = run_step(rule, model, opt, ctx)
        assert torch.equal(model["fc1"].weight, w_opt["fc1"])
        tel = rule.telemetry()
        for name, (k, mu, sd) in fits.items():                # gate frozen
            tr = ctx.layers[name]
            gate = dopamine_gate(synchrony(tr.pre, tr.post), k, mu, sd)
            dw = ssdp_delta(tr.pre, tr.post, a_plus=1e-2, a_base=5e-3, gate=gate)
            torch.testing.assert_close(model[name].weight, w_opt[name] + dw, atol=1e-7, rtol=0)
            assert tel[f"k/{name}"] == pytest.approx(k.item(), abs=1e-6)
            assert tel[f"gate_mean/{name}"] == pytest.approx(gate.mean().item(), abs=1e-6)
            assert tel[f"gate_clipped/{name}"] == pytest.approx(((gate <= 0) | (gate >= 2)).float().mean().item())
            assert tel[f"dw/{name}"] == pytest.approx(dw.abs().mean().item(), rel=1e-4)
            assert tel[f"sync/{name}"] == pytest.approx(synchrony(tr.pre, tr.post).mean().item(), abs=1e-6)
        assert tel["phase"] == 1.0 and not any(k.startswith("corr/") for k in tel)

    # resume from the checkpoint taken right after the fit: no second warm-up, same k, mu, sd
    fresh = DASSDP(DASSDPParams(a_plus=1e-2, a_base=5e-3, warmup_steps=4), make_model(), total_steps=12)
    fresh.load_state_dict(saved)
    assert fresh.fitted
    for name, (k, mu, sd) in fits.items():
        got = fresh.gate_params()[name]
        assert got == pytest.approx((k.item(), mu.item(), sd.item()), abs=1e-6)
    m2 = make_model(5)
    fresh2 = DASSDP(DASSDPParams(a_plus=1e-2, a_base=5e-3, warmup_steps=4), m2, total_steps=12)
    fresh2.load_state_dict(saved)
    ctx = make_ctx(m2, 4, 4)
    w = {k: m.weight.detach().clone() for k, m in m2.items()}
    fresh2.after_step(ctx)
    for name, (k, mu, sd) in fits.items():
        tr = ctx.layers[name]
        gate = dopamine_gate(synchrony(tr.pre, tr.post), k, mu, sd)
        torch.testing.assert_close(m2[name].weight - w[name],
                                   ssdp_delta(tr.pre, tr.post, a_plus=1e-2, a_base=5e-3, gate=gate),
                                   atol=1e-7, rtol=0)


def test_resume_in_the_middle_of_the_warmup():
    p = DASSDPParams(warmup_steps=4)
    model = make_model()
    a = DASSDP(p, model, total_steps=12)
    b = DASSDP(p, model, total_steps=12)
    for step in range(2):
        a.after_step(make_ctx(model, step, step))
    b.load_state_dict(a.state_dict())
    for step in range(2, 4):
        for r in (a, b):
            r.after_step(make_ctx(model, step, step))
    assert a.fitted and b.fitted
    assert a.gate_params() == b.gate_params()


def test_zero_sync_variance_gives_plain_ssdp():
    """k = 0 (constant synchrony): DA-SSDP's update equals SSDP's with the same amplitudes."""
    model = make_model()
    rule = DASSDP(DASSDPParams(warmup_steps=2), model, total_steps=10)
    T, B = 4, 5
    for step in range(2):
        ctx = make_ctx(model, step, step, B=B)
        for tr in ctx.layers.values():                        # every neuron fires once: S = 1
            tr.pre = torch.zeros(T, B, tr.pre.shape[-1]); tr.pre[step] = 1
            tr.post = torch.zeros(T, B, tr.post.shape[-1]); tr.post[-1] = 1
        rule.after_step(ctx)
    assert all(v[0] == 0.0 for v in rule.gate_params().values())
    ctx = make_ctx(model, 2, 2)
    w = {k: m.weight.detach().clone() for k, m in model.items()}
    rule.after_step(ctx)
    for name in ("fc2", "out"):
        tr = ctx.layers[name]
        want = ssdp_delta(tr.pre, tr.post, a_plus=1.5e-3, a_base=5e-4)
        assert torch.equal(model[name].weight, w[name] + want)
        assert rule.telemetry()[f"gate_mean/{name}"] == 1.0


def test_per_sample_loss_batch_gate_and_bounded_record():
    model = make_model()
    p = DASSDPParams(warmup_steps=10, max_record=16, gate_mode="batch", targets=["out"])
    rule = DASSDP(p, model, total_steps=20)
    S_all, L_all = [], []
    for step in range(10):
        psl = torch.rand(6, generator=torch.Generator().manual_seed(step))
        ctx = make_ctx(model, step, step, extras={"per_sample_loss": psl})
        tr = ctx.layers["out"]
        S_all.append(synchrony(tr.pre, tr.post)); L_all.append(psl)
        if step < 9:
            rule.after_step(ctx)
            assert rule._rec_S.shape == (1, 16) and rule._rec_n <= 16
        else:
            rule.after_step(ctx)
    # 60 samples, cap 16 -> every 4th sample kept (stride from the planned 10 x 6 samples)
    S_all, L_all = torch.cat(S_all), torch.cat(L_all)
    k, mu, sd = fit_gate(S_all[::4], L_all[::4])
    assert rule.gate_params()["out"] == pytest.approx((k.item(), mu.item(), sd.item()), abs=1e-6)
    ctx = make_ctx(model, 10, 10)
    w = model["out"].weight.detach().clone()
    rule.after_step(ctx)
    tr = ctx.layers["out"]
    g = dopamine_gate(synchrony(tr.pre, tr.post).mean(), k, mu, sd).expand(6)
    torch.testing.assert_close(model["out"].weight - w,
                               ssdp_delta(tr.pre, tr.post, a_plus=1.5e-3, a_base=5e-4, gate=g),
                               atol=1e-8, rtol=0)
    assert torch.equal(model["fc2"].weight, make_model()["fc2"].weight)
    with pytest.raises(ValueError, match="per_sample_loss"):
        DASSDP(p, model, total_steps=20).after_step(
            make_ctx(model, 0, 0, extras={"per_sample_loss": torch.zeros(3)}))


def test_no_warmup_fits_empty_record_as_plain_ssdp():
    model = make_model()
    rule = DASSDP(DASSDPParams(warmup_frac=0.0), model, total_steps=10)
    ctx = make_ctx(model, 0, 0)
    w = model["out"].weight.detach().clone()
    rule.after_step(ctx)
    assert rule.fitted and rule.gate_params()["out"] == (0.0, 0.0, 1.0)
    tr = ctx.layers["out"]
    assert torch.equal(model["out"].weight, w + ssdp_delta(tr.pre, tr.post, a_plus=1.5e-3, a_base=5e-4))


def test_hooks_make_no_python_level_host_sync(monkeypatch):
    """Warm-up, fit and gated steps read nothing back to the host (item, tolist, bool(tensor),
    float(tensor)...); only telemetry() does, once per step."""
    model = make_model()
    rule = DASSDP(DASSDPParams(warmup_steps=3), model, total_steps=10)
    ctxs = [make_ctx(model, s, s, extras={"per_sample_loss": torch.rand(6)}) for s in range(6)]

    def boom(*a, **k):
        raise AssertionError("host sync inside a rule hook")

    for step, ctx in enumerate(ctxs):
        with monkeypatch.context() as m:
            for attr in ("item", "tolist", "__bool__", "__float__", "__int__", "numpy", "cpu"):
                m.setattr(torch.Tensor, attr, boom)
            rule.after_backward(ctx)
            rule.after_step(ctx)
        tel = rule.telemetry()
        assert tel["phase"] == (1.0 if step >= 2 else 0.0)


def _npz_round_trip(arrays):
    import io

    import numpy as np
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def test_arrays_warmup_record_fit_and_gate():
    import numpy as np
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)
    rule = DASSDP(DASSDPParams(a_plus=1e-2, a_base=5e-3, warmup_steps=3), model, total_steps=12)
    S_rec, L_rec = [], []
    for step in range(2):
        ctx = make_ctx(model, step, step, optimizer=opt)
        run_step(rule, model, opt, ctx)
        S_rec.append(synchrony(ctx.layers["out"].pre, ctx.layers["out"].post))
        L_rec.append(ctx.loss.detach().expand(6))
    a = _npz_round_trip(rule.arrays())                        # mid warm-up: the running record
    assert {"kernel_dt", "kernel_g", "warm_L", "warm_S/fc2", "warm_S/out", "warmup"} <= set(a)
    assert not any(k.startswith(("fit/", "gate/")) for k in a)
    assert a["warm_L"].dtype == np.float32 and a["warm_L"].shape == (12,) and a["warm_S/out"].shape == (12,)
    np.testing.assert_allclose(a["warm_S/out"], torch.cat(S_rec).numpy(), atol=1e-6)
    np.testing.assert_allclose(a["warm_L"], torch.cat(L_rec).numpy(), rtol=1e-6)
    assert float(a["warmup"]) == pytest.approx(2 / 3)
    for step in range(2, 5):                                  # fit at step 2, then gated
        run_step(rule, model, opt, make_ctx(model, step, step, optimizer=opt))
    a = _npz_round_trip(rule.arrays())
    assert a["warm_S/out"].shape == (18,) and a["warm_L"].shape == (18,)   # kept at the fit
    assert float(a["warmup"]) == 1.0
    params = rule.gate_params()
    for name in ("fc2", "out"):
        assert a[f"fit/{name}"].dtype == np.float64
        np.testing.assert_allclose(a[f"fit/{name}"], params[name], rtol=1e-6)
        g = a[f"gate/{name}"]
        assert g.dtype == np.float32 and g.shape == (6,) and ((g >= 0) & (g <= 2)).all()


def test_arrays_warm_record_subsample_is_bounded():
    from snncore.rules.da_ssdp import WARM_KEEP, _subsample
    S, L = torch.rand(2, 10_001), torch.rand(10_001)
    s, l = _subsample(S, L, WARM_KEEP)
    assert s.shape == (2, l.numel()) and 1000 < l.numel() <= WARM_KEEP
    assert torch.equal(s[:, 0], S[:, 0]) and torch.equal(l[1], L[6])
