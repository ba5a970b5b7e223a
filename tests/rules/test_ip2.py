"""IP2 (snncore.rules.ip2): the section-5 worked example number for number, the invariants, the
task families, the L2L fit, and small runs of the protocol and the slow level."""
import math

import numpy as np
import pytest
import torch

from snncore.rules import ip2
from snncore.rules.base import Rule, check_params
from snncore.rules.ip2 import (IP2, PROPS, RSNN, IP2Params, L2LRunner, dh_step, homeostatic_term,
                               ip2_loss, l2l_fit, make_family, make_optimizer, normalize_mask,
                               readout_step, run_sequence, slow_level_search)

TOL = 1e-5
D64 = torch.float64


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny matrices: a multi-thread pool only adds contention on a busy 2-core box."""
    with ip2.torch_threads(1):
        yield


def t(v):
    return torch.tensor(v, dtype=D64)


def example():
    """The section-5 inputs (float64)."""
    return dict(x=t([1.0, 0.0]), s_prev=t([1.0, 0.0]), d_prev=t([0.2, 0.0]), u_prev=t([0.5, 0.3]),
                W_in=t([[1.0, 0.5], [-0.5, 1.0]]), W_rec=t([[0.0, 0.8], [0.4, 0.0]]), b=t([0.0, 0.0]),
                tau_d=t([20.0, 40.0]), tau_s=t([10.0, 20.0]), theta=t([0.3, 0.2]), dt=5.0)


def close(a, b, tol=TOL):
    a = torch.as_tensor(a, dtype=D64)
    assert torch.allclose(a, t(b), atol=tol, rtol=0), (a.tolist(), b)


def example_model(mask=PROPS):
    """A 2-neuron RSNN holding the worked example's weights and intrinsics, float64."""
    e = example()
    m = RSNN(2, 2, 2, dt=5.0, mask=mask).double()
    with torch.no_grad():
        m.W_in.copy_(e["W_in"])
        m.W_rec.copy_(e["W_rec"])
        m.b.zero_()
        m.W_out.copy_(t([[0.5, -0.5], [1.0, 1.0]]))
        m.b_out.zero_()
        m.rho_d.copy_(e["tau_d"].log()[:, None])
        m.rho_s.copy_(e["tau_s"].log())
        m.theta.copy_(e["theta"])
    state = {"d": e["d_prev"][None], "u": e["u_prev"][None], "s": e["s_prev"][None], "y": t([[0.0, 0.1]])}
    return m, state, e["x"][None, None]


def small_params(**over):
    vals = dict(N=12, batch=4, max_updates=6, win=3, n_tasks=3, k_pilot=2, homeo_win=3)
    vals.update(over)
    return IP2Params(**vals)


# ------------------------------------------------------------------ section 5, number for number

def test_worked_example_step():
    e = example()
    I = e["x"] @ e["W_in"].T + e["s_prev"] @ e["W_rec"].T + e["b"]
    close(I, [1.0, -0.1])
    close(torch.exp(-5.0 / e["tau_d"]), [0.778801, 0.882497])
    close(torch.exp(-5.0 / e["tau_s"]), [0.606531, 0.778801])
    d, u, s = dh_step(**e)
    close(d, [0.376959, -0.011750])
    close(u, [0.151587, 0.231041])
    close(u - e["theta"], [-0.148413, 0.031041])
    assert s.tolist() == [0.0, 1.0]
    # the same step in batch form and with tau_d given as [N, K=1]
    e2 = dict(e, x=e["x"][None], s_prev=e["s_prev"][None], d_prev=e["d_prev"][None],
              u_prev=e["u_prev"][None], tau_d=e["tau_d"][:, None])
    d2, u2, s2 = dh_step(**e2)
    assert torch.equal(d2[0], d) and torch.equal(u2[0], u) and torch.equal(s2[0], s)


def test_worked_example_readout():
    y = readout_step(t([0.0, 1.0]), t([0.0, 0.1]), t([[0.5, -0.5], [1.0, 1.0]]), t([0.0, 0.0]), 100.0, 5.0)
    assert math.isclose(math.exp(-5.0 / 100.0), 0.951229, abs_tol=TOL)
    close(y, [-0.024385, 0.143894])


def test_worked_example_point_neuron():
    e = example()
    _, u, _ = dh_step(**dict(e, tau_d=t([0.0, 0.0])))       # beta = exp(-dt/0) = 0
    close(u, [0.396735, 0.211520])
    m, state, x = example_model()
    m.neuron = "point"
    _, rec = m(x, state=state)
    close(rec["u"][0, 0], [0.396735, 0.211520])


def test_worked_example_module_matches():
    m, state, x = example_model()
    y, rec = m(x, state=state, record=True)
    close(rec["u"][0, 0], [0.151587, 0.231041])
    close(rec["d"][0, 0], [0.376959, -0.011750])
    assert rec["s"][0, 0].tolist() == [0.0, 1.0]
    close(y[0, 0], [-0.024385, 0.143894])


def test_worked_example_gradients():
    e = example()
    rho_d = e["tau_d"].log().requires_grad_()
    rho_s = e["tau_s"].log().requires_grad_()
    theta = e["theta"].clone().requires_grad_()
    _, u, _ = dh_step(**dict(e, tau_d=rho_d.exp(), tau_s=rho_s.exp(), theta=theta))
    loss = 0.5 * (u ** 2).sum()
    assert math.isclose(loss.item(), 0.038179, abs_tol=TOL)
    gd, gs, gt = torch.autograd.grad(loss, (rho_d, rho_s, theta))
    close(gd, [-0.009290, 0.000564])
    close(gs, [0.005656, 0.014024])
    close(gt, [-0.151587, 0.0])
    # the same gradients through the module
    m, state, x = example_model()
    _, rec = m(x, state=state)
    (0.5 * (rec["u"] ** 2).sum()).backward()
    close(m.rho_d.grad[:, 0], [-0.009290, 0.000564])
    close(m.rho_s.grad, [0.005656, 0.014024])
    close(m.theta.grad, [-0.151587, 0.0])


def test_worked_example_masked_sgd_step():
    m, state, x = example_model(mask=PROPS)        # gradients for all three first
    _, rec = m(x, state=state)
    (0.5 * (rec["u"] ** 2).sum()).backward()
    assert m.rho_s.grad.abs().sum() > 0 and m.theta.grad.abs().sum() > 0
    rho_s0, theta0 = m.rho_s.detach().clone(), m.theta.detach().clone()
    m.set_mask((1, 0, 0))                          # m = (1, 0, 0)
    opt = make_optimizer(m, m.mask, lr_w=0.1, eta=0.1, kind="sgd")
    assert [g["name"] for g in opt.param_groups] == ["weights", "tau_d"]
    opt.step()
    m.clamp_()
    close(m.tau_d[:, 0], [20.018589, 39.997745])
    assert torch.equal(m.rho_s.detach(), rho_s0) and torch.equal(m.theta.detach(), theta0)
    assert not m.rho_s.requires_grad and not m.theta.requires_grad and m.rho_d.requires_grad


def test_worked_example_homeostatic_term():
    u = t([0.151587, 0.231041])
    assert math.isclose(homeostatic_term(u, 0.02, 0.05).item(), 0.000909, abs_tol=TOL)
    assert homeostatic_term(u, None, 0.05).item() == 0.0
    # inside the loss: the difference between sigma_h set and unset is exactly that term
    m, state, x = example_model()
    y, rec = m(x, state=state)
    kw = dict(lambda_h=0.05, lambda_I=1e-4, lambda_R=1e-3, lambda_O=1e-2)
    tgt, lm = torch.zeros(1, 1, dtype=torch.long), torch.ones(1, 1, dtype=torch.bool)
    L1, lt1, mu2 = ip2_loss(y, rec["u"], tgt, lm, m, sigma_h=0.02, **kw)
    L0, lt0, _ = ip2_loss(y, rec["u"], tgt, lm, m, sigma_h=None, **kw)
    assert math.isclose((L1 - L0).item(), 0.000909, abs_tol=TOL)
    assert math.isclose(mu2.item(), 0.038179, abs_tol=TOL)
    reg = 1e-4 * m.W_in.pow(2).mean() + 1e-3 * m.W_rec.pow(2).mean() + 1e-2 * m.W_out.pow(2).mean()
    assert math.isclose((L0 - lt0).item(), reg.item(), rel_tol=1e-12)


# ------------------------------------------------------------------ invariants

def test_masked_properties_bit_identical_after_tasks():
    p = small_params(n_tasks=3)
    for mask in (["tau_d"], ["theta"], []):
        r0 = L2LRunner(p, mask, seed=1)
        init = {q: r0.model.prop_param(q).detach().clone() for q in PROPS}
        res = run_sequence(p, mask, seed=1, n_tasks=3)
        assert res["mask"] == mask
        last = res["snapshots"][-1]
        for q in PROPS:
            v0 = ip2._prop_values(r0.model, q).double().tolist()
            if q in mask:
                assert last[q]["values"] != v0
            else:
                assert last[q]["values"] == v0
        # and directly on the tensors
        r = L2LRunner(p, mask, seed=1)
        for _ in range(3):
            r.start_task()
            for _ in range(4):
                r.update()
            r.end_task()
        for q in PROPS:
            same = torch.equal(r.model.prop_param(q).detach(), init[q])
            assert same == (q not in mask), q


def test_zero_input_and_state_stay_zero():
    m = RSNN(5, 7, 3, seed=0)
    with torch.no_grad():
        m.W_out.normal_()
    y, rec = m(torch.zeros(10, 4, 5), record=True)
    for v in (y, rec["u"], rec["s"], rec["d"]):
        assert torch.count_nonzero(v) == 0


def test_spike_lowers_u_by_exactly_theta():
    e = example()
    e["W_rec"] = torch.zeros(2, 2, dtype=D64)
    for s_prev in ([1.0, 1.0], [1.0, 0.0]):
        _, u1, _ = dh_step(**dict(e, s_prev=t(s_prev)))
        _, u0, _ = dh_step(**dict(e, s_prev=t([0.0, 0.0])))
        assert torch.allclose(u0 - u1, e["theta"] * t(s_prev), atol=1e-15, rtol=0)
    # through the module
    m, state, x = example_model()
    with torch.no_grad():
        m.W_rec.zero_()
    _, r1 = m(x, state=dict(state, s=t([[1.0, 1.0]])))
    _, r0 = m(x, state=dict(state, s=t([[0.0, 0.0]])))
    assert torch.allclose(r0["u"] - r1["u"], m.theta.detach(), atol=1e-15, rtol=0)


def test_alpha_beta_in_open_unit_interval_and_clamps():
    m = RSNN(4, 6, 3, mask=PROPS)
    with torch.no_grad():
        m.rho_d.fill_(20.0)
        m.rho_s.fill_(-20.0)
        m.theta.fill_(9.0)
    m.clamp_()
    assert torch.allclose(m.tau_d, torch.full_like(m.tau_d, 2000.0))
    assert torch.allclose(m.tau_s, torch.full_like(m.tau_s, 5.0))
    assert torch.all(m.theta == 2.0)
    for dt in (1.0, 100.0):
        for tau in (m.tau_d, m.tau_s):
            a = torch.exp(-dt / tau)
            assert torch.all(a > 0) and torch.all(a < 1)
    # clamping touches only learnable properties
    f = RSNN(4, 6, 3, mask=["theta"])
    with torch.no_grad():
        f.rho_d.fill_(20.0)
    f.clamp_()
    assert torch.all(f.rho_d == 20.0)
    # after training with everything learnable: still inside
    res = run_sequence(small_params(n_tasks=2), PROPS, seed=0, n_tasks=2)
    snap = res["snapshots"][-1]
    for q, lo, hi in (("tau_d", 5, 2000), ("tau_s", 5, 2000), ("theta", 0.05, 2)):
        v = np.array(snap[q]["values"])
        assert np.all(v >= lo - 1e-6) and np.all(v <= hi + 1e-6)


def test_spikes_binary_readout_not_thresholded():
    torch.manual_seed(0)
    m = RSNN(6, 16, 3, seed=0)
    with torch.no_grad():
        m.W_out.normal_()
    x = torch.randn(20, 5, 6) * 3
    y, rec = m(x, record=True)
    assert set(rec["s"].unique().tolist()) <= {0.0, 1.0} and rec["s"].sum() > 0
    assert not set(y.unique().tolist()) <= {0.0, 1.0}


def test_k1_equals_unbranched_form():
    torch.manual_seed(0)
    m = RSNN(6, 9, 4, dt=100.0, seed=3).double()
    with torch.no_grad():
        m.W_out.normal_()
        m.b.normal_(0, 0.3)
    x = torch.randn(12, 3, 6, dtype=D64)
    y, rec = m(x, record=True)
    d = u = s = torch.zeros(3, 9, dtype=D64)
    yy = torch.zeros(3, 4, dtype=D64)
    for k in range(12):
        d, u, s = dh_step(x[k], s, d, u, m.W_in, m.W_rec, m.b, m.tau_d, m.tau_s, m.theta, 100.0)
        yy = readout_step(s, yy, m.W_out, m.b_out, 100.0, 100.0)
        assert torch.allclose(rec["u"][k], u, atol=1e-12) and torch.equal(rec["s"][k], s)
        assert torch.allclose(y[k], yy, atol=1e-12)
    # K > 1 runs and keeps shapes
    m2 = RSNN(6, 9, 4, K=3, seed=0)
    y2, rec2 = m2(torch.randn(5, 2, 6), record=True)
    assert y2.shape == (5, 2, 4) and rec2["u"].shape == (5, 2, 9) and rec2["d"].shape == (5, 2, 9)
    assert torch.all(m2.branch_mask.view(9, 3, 15).sum(1) == 1)   # each input to exactly one branch


def test_batch_never_mixes():
    torch.manual_seed(0)
    m = RSNN(6, 16, 3, seed=0)
    with torch.no_grad():
        m.W_out.normal_()
    x = torch.randn(15, 4, 6)
    y, rec = m(x)
    x2 = x.clone()
    x2[:, 1:] = torch.randn(15, 3, 6) * 5
    y2, rec2 = m(x2)
    assert torch.equal(y[:, 0], y2[:, 0]) and torch.equal(rec["u"][:, 0], rec2["u"][:, 0])
    xg = x.clone().requires_grad_()
    yg, _ = m(xg)
    yg[:, 0].sum().backward()
    assert torch.count_nonzero(xg.grad[:, 1:]) == 0 and torch.count_nonzero(xg.grad[:, 0]) > 0


def test_all_learning_rates_zero_loss_constant():
    p = small_params(lr_w=0.0, eta=0.0)
    r = L2LRunner(p, PROPS, seed=0)
    r.start_task()
    r.sigma_h = 0.01                     # homeostatic term on as well
    batch = r.task.batch(4, torch.Generator().manual_seed(5))
    params0 = [q.detach().clone() for q in r.model.parameters()]
    losses = [r.update(batch)["loss"] for _ in range(5)]
    assert len(set(losses)) == 1
    assert all(torch.equal(a, b.detach()) for a, b in zip(params0, r.model.parameters()))


def test_state_carries_over_and_optimizer_resets():
    r = L2LRunner(small_params(), PROPS, seed=0)
    r.start_task()
    for _ in range(4):
        r.update()
    opt1 = r.optimizer
    assert len(opt1.state) > 0
    r.end_task()
    end1 = {k: v.detach().clone() for k, v in r.model.named_parameters()}
    r.start_task()
    assert r.task_index == 2 and r.optimizer is not opt1 and len(r.optimizer.state) == 0
    assert [g["name"] for g in r.optimizer.param_groups] == ["weights", "tau_d", "tau_s", "theta"]
    assert [g["lr"] for g in r.optimizer.param_groups] == [3e-3, 3e-2, 3e-2, 3e-2]
    for k, v in r.model.named_parameters():
        assert torch.equal(v.detach(), end1[k]), k
    # sigma_h is set once, at the end of task 1, from its last homeo_win updates
    s1 = r.sigma_h
    assert s1 is not None and s1 > 0
    r.update()
    r.end_task()
    assert r.sigma_h == s1


# ------------------------------------------------------------------ task families

@pytest.mark.parametrize("name,D,O", [("gng_dr", 12, 3), ("dms", 11, 3), ("cd_dms", 13, 3)])
def test_make_family_shapes_and_masks(name, D, O):
    fam = make_family(name, n_img=2, p_nogo=0.5, seed=0)
    assert (fam.T, fam.D, fam.O) == (20, D, O)
    task = fam.new_task()
    S = task.stimuli
    assert torch.allclose(S @ S.T, torch.eye(2), atol=1e-5)        # unit norm, orthogonal
    x, tgt, lm = task.batch(64, torch.Generator().manual_seed(0))
    assert x.shape == (20, 64, D) and tgt.shape == (20, 64) and lm.shape == (20, 64)
    assert tgt.dtype == torch.long and lm.dtype == torch.bool
    assert torch.all(lm[15] == 0) and torch.all(lm[:15]) and torch.all(lm[16:])      # grace step 15
    assert torch.all(x[:15, :, 10] == 1) and torch.all(x[15:, :, 10] == 0)           # fixation input
    assert torch.all(tgt[:15] == 0) and torch.all(tgt[15:] > 0) | (name == "gng_dr")
    assert torch.all(tgt[15:] == tgt[15:16])                                          # constant response
    assert torch.all(x[:5, :, :10].norm(dim=-1).sub(1).abs() < 1e-5)                  # stimulus 0-4
    assert torch.all(x[5:10, :, :10] == 0)
    which = lambda v: (v @ S.T).argmax(-1)                                             # noqa: E731
    first = which(x[0, :, :10])
    if name == "gng_dr":
        nogo = x[15, :, 11] == 1
        assert 0 < nogo.sum() < 64 and torch.all(x[:15, :, 11] == 0)
        assert torch.all(tgt[15][nogo] == 0) and torch.all(tgt[15][~nogo] == 1 + first[~nogo])
    else:
        assert torch.all(x[10:15, :, :10].norm(dim=-1).sub(1).abs() < 1e-5)          # test 10-14
        match = which(x[10, :, :10]) == first
        report1 = match
        if name == "cd_dms":
            ctx_b = x[0, :, 12] == 1
            assert torch.all(x[:15, :, 11] + x[:15, :, 12] == 1) and 0 < ctx_b.sum() < 64
            report1 = match ^ ctx_b
        assert torch.all(tgt[15] == torch.where(report1, 1, 2))
    # same seed -> same stimuli; a new task -> new stimuli; batches differ by generator only
    assert torch.equal(make_family(name, seed=0).new_task().stimuli, S)
    assert not torch.equal(fam.new_task().stimuli, S)
    xa = task.batch(8, torch.Generator().manual_seed(1))[0]
    xb = task.batch(8, torch.Generator().manual_seed(1))[0]
    assert torch.equal(xa, xb)


def test_family_options():
    fam = make_family("gng_dr", n_img=4, p_nogo=0.0, seed=2)
    assert fam.O == 5
    x, tgt, _ = fam.new_task().batch(64, torch.Generator().manual_seed(0))
    assert torch.all(x[..., 11] == 0) and set(tgt[15].tolist()) == {1, 2, 3, 4}
    with pytest.raises(ValueError):
        make_family("xor")


# ------------------------------------------------------------------ L2L fit

def test_l2l_fit_recovers_parameters():
    k = np.arange(1, 41)
    y = 900.0 * np.exp(-k / 6.0) + 25.0
    y[0] = 5000.0                                  # task 1 is excluded from the fit
    a, tau, c = l2l_fit(y)
    assert abs(a - 900) < 1e-3 * 900 and abs(tau - 6) < 1e-3 * 6 and abs(c - 25) < 1e-2
    rng = np.random.default_rng(0)
    yn = 600.0 * np.exp(-k / 10.0) + 40.0 + rng.normal(0, 3, k.size)
    a, tau, c = l2l_fit(yn.tolist())
    assert abs(tau - 10) < 1.5 and abs(c - 40) < 4 and abs(a - 600) < 90
    # rising curve (negative a) still fits
    a, tau, c = l2l_fit(-50 * np.exp(-k / 8.0) + 100)
    assert abs(a + 50) < 0.5 and abs(tau - 8) < 0.1 and abs(c - 100) < 0.1
    # fallbacks
    assert l2l_fit([10, 20, 20, 20])[0] == 0.0 and l2l_fit([10, 20, 20, 20])[2] == 20.0
    a, tau, c = l2l_fit([100, 50, 30])
    assert a == 0.0 and math.isnan(tau) and c == 40.0
    assert all(math.isnan(v) for v in l2l_fit([7]))


# ------------------------------------------------------------------ params, masks, runs

def test_params_defaults_and_validation():
    p = IP2Params()
    assert check_params(p) == []
    assert (p.dt, p.T, p.N, p.batch, p.lr_w, p.eta, p.lambda_h, p.lambda_I, p.lambda_R, p.lambda_O,
            p.win, p.crit, p.max_updates, p.n_tasks, p.meta_mode, p.mask, p.k_pilot, p.family, p.neuron) == \
        (100.0, 20, 48, 8, 3e-3, 3e-2, 0.05, 1e-4, 1e-3, 1e-2, 10, 0.05, 2000, 40, "search", ["tau_d"], 15,
         "gng_dr", "dh")
    assert check_params(IP2Params(mask=["tau_x"])) and check_params(IP2Params(meta_mode="x"))
    assert IP2Params.full().T == 2000 and check_params(IP2Params.full()) == []
    assert normalize_mask((0, 1, 1)) == ["tau_s", "theta"] == normalize_mask("theta+tau_s")
    assert normalize_mask("none") == [] == normalize_mask([])


def test_run_sequence_smoke():
    ups, tasks = [], []
    p = small_params(n_tasks=3, max_updates=8)
    res = run_sequence(p, ["tau_d"], seed=0, n_tasks=3, on_update=ups.append, on_task=tasks.append)
    assert len(res["iterations"]) == 3 and len(res["failed"]) == 3 and len(res["snapshots"]) == 4
    assert all(1 <= i <= 8 for i in res["iterations"]) and res["failures"] == sum(res["failed"])
    assert len(ups) == sum(res["iterations"]) and len(tasks) == 3
    assert {"loss", "l_task", "mean_u2", "sigma_h", "tau_d_mean", "tau_s_mean", "theta_mean"} <= set(ups[0])
    assert math.isnan(ups[0]["sigma_h"]) and not math.isnan(ups[-1]["sigma_h"])   # off in task 1 only
    snap = res["snapshots"][1]
    assert {"mean", "q25", "median", "q75", "single", "values"} <= set(snap["tau_d"])
    assert np.array(tasks[0]["trial"]["s"]).shape == (20, 12)
    assert res["ms_per_update"] > 0
    # deterministic given the seed; should_stop ends early
    assert run_sequence(p, ["tau_d"], seed=0, n_tasks=3)["iterations"] == res["iterations"]
    stop = run_sequence(p, ["tau_d"], seed=0, n_tasks=3, should_stop=lambda: True)
    assert stop["stopped"] and stop["iterations"] == []
    # the point neuron and another family run too
    res2 = run_sequence(small_params(neuron="point", family="cd_dms"), [], seed=0, n_tasks=2)
    assert len(res2["iterations"]) == 2


def test_slow_level_search_and_rule(monkeypatch):
    p = small_params(n_tasks=2, k_pilot=2, max_updates=5)
    best, scores = slow_level_search(p, seed=0, candidates=None, k_pilot=2)
    assert set(scores) == {"tau_d", "tau_s", "theta", "none"}
    lowest = min(scores.values())
    assert scores[ip2.mask_key(best)] == lowest
    tied = [k for k, v in scores.items() if v == lowest]
    assert len(best) == min(0 if k == "none" else len(k.split("+")) for k in tied)
    # a failure is penalised by max_updates
    assert ip2.pilot_score([5, 3, 5], [False, False, True], 5) == 4 + 5

    calls = []
    real = ip2.slow_level_search
    monkeypatch.setattr(ip2, "slow_level_search", lambda *a, **k: calls.append(1) or real(*a, **k))
    rule = IP2(p)
    assert isinstance(rule, Rule) and rule.name == "ip2"
    seen_masks = []
    res = rule.run(p, seed=0, on_task=lambda info: seen_masks.append((info["phase"], info["mask"])))
    assert len(calls) == 1                                    # slow level exactly once per family
    main = [m for ph, m in seen_masks if ph == "main"]
    assert len(main) == 2 and all(m == rule.chosen_mask for m in main) and res["mask"] == rule.chosen_mask
    assert res["scores"] == scores                            # same seed -> same pilot
    tel = rule.telemetry()
    assert {"tau_d_mean", "tau_s_mean", "theta_mean", "task", "iters_last", "failures"} <= set(tel)
    assert tel["task"] == 2
    # fixed mode skips the search
    res_f = IP2(p).run(IP2Params(**{**p.__dict__, "meta_mode": "fixed", "mask": ["theta"]}), seed=0)
    assert res_f["mask"] == ["theta"] and res_f["scores"] is None and len(calls) == 1
