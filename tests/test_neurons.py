"""snncore.neurons is the reference for every neuron update in the code base: worked examples by hand,
then each other implementation (SpikingJelly's LIFNode, snncore.models.lif on its fused and torch-op
paths, the Rule Lab's numpy lif_run, MPSNet's soft-reset LIF, IP2's RSNN and dh_step) driven with
random inputs must give the same spikes, and the same potentials to rounding."""
import dataclasses
import math
import warnings
import zlib

import numpy as np
import pytest
import torch
from spikingjelly.activation_based import functional, neuron, surrogate

from snncore import neurons as nr
from snncore.models import lif as L
from snncore.neurons import (AdaptiveThresholdParams, LIFParams, LIFState, TwoCompartmentParams,
                             TwoCompartmentState)

warnings.filterwarnings("ignore")
D64 = torch.float64


def _seed(*key):
    torch.manual_seed(zlib.crc32(repr(key).encode()))


def _close(a, b, tol=1e-6):
    a, b = (torch.as_tensor(t, dtype=t.dtype if torch.is_tensor(t) else D64).to(D64) for t in (a, b))
    torch.testing.assert_close(a, b, atol=tol, rtol=tol)


# ----------------------------------------------------------------------------- worked by hand
def test_lif_three_steps_by_hand_hard_and_soft():
    # tau=2, v_th=1, decay_input, x = 2.5, 0.5, 1.7, v starts at 0:  h = v + (x - v)/2
    #   hard (v_reset=0):  t1 h = 1.25 -> spike, v = 0
    #                      t2 h = 0 + 0.5/2 = 0.25 -> no, v = 0.25
    #                      t3 h = 0.25 + (1.7 - 0.25)/2 = 0.975 -> no, v = 0.975
    #   soft (v_reset=None): t1 h = 1.25 -> spike, v = 1.25 - 1 = 0.25
    #                      t2 h = 0.25 + (0.5 - 0.25)/2 = 0.375 -> no, v = 0.375
    #                      t3 h = 0.375 + (1.7 - 0.375)/2 = 1.0375 -> spike, v = 0.0375
    x = torch.tensor([2.5, 0.5, 1.7], dtype=D64)[:, None]
    hard = nr.lif_sequence(x, LIFParams(tau=2.0, v_th=1.0, v_reset=0.0))
    soft = nr.lif_sequence(x, LIFParams(tau=2.0, v_th=1.0, v_reset=None))
    assert hard.spikes[:, 0].tolist() == [1.0, 0.0, 0.0]
    _close(hard.h[:, 0], [1.25, 0.25, 0.975], 1e-12)
    _close(hard.v[:, 0], [0.0, 0.25, 0.975], 1e-12)
    assert soft.spikes[:, 0].tolist() == [1.0, 0.0, 1.0]
    _close(soft.h[:, 0], [1.25, 0.375, 1.0375], 1e-12)
    _close(soft.v[:, 0], [0.25, 0.375, 0.0375], 1e-12)
    _close(soft.state.v, [0.0375], 1e-12)


def test_lif_decay_input_false_and_v_reset_by_hand():
    # tau=4, v_th=1, v_reset=-0.5, no input decay: h = v - (v + 0.5)/4 + x, v starts at v_reset
    #   t1 h = -0.5 - 0 + 1.5 = 1.0 -> spike (H(0) = 1), v = -0.5
    #   t2 h = -0.5 + 0.2 = -0.3, v = -0.3
    #   t3 h = -0.3 - 0.05 + 0.4 = 0.05
    p = LIFParams(tau=4.0, v_th=1.0, v_reset=-0.5, decay_input=False)
    tr = nr.lif_sequence(torch.tensor([1.5, 0.2, 0.4], dtype=D64), p)
    assert tr.spikes.tolist() == [1.0, 0.0, 0.0]
    _close(tr.h, [1.0, -0.3, 0.05], 1e-12)
    _close(tr.v, [-0.5, -0.3, 0.05], 1e-12)
    trn = nr.lif_sequence(np.array([1.5, 0.2, 0.4]), p)             # the numpy path, [T] alone
    assert trn.spikes.tolist() == [1.0, 0.0, 0.0] and trn.state.v.shape == ()
    np.testing.assert_allclose(trn.v, [-0.5, -0.3, 0.05], atol=1e-12)


def test_two_compartment_three_steps_by_hand():
    # dt=1, tau_d = tau_s = 1/ln 2 (beta = alpha = 1/2), theta = 0.45, I = 1, 1, 0, all state 0:
    #   t1 d = 0.5;   u = 0 + 0.5*0.5 - 0 = 0.25                   -> s = 0
    #   t2 d = 0.75;  u = 0.125 + 0.375 - 0 = 0.5                   -> s = 1
    #   t3 d = 0.375; u = 0.25 + 0.1875 - 0.45*1 = -0.0125           -> s = 0 (reset one step late)
    tau = torch.tensor([1 / math.log(2)], dtype=D64)
    p = TwoCompartmentParams(tau_d=tau, tau_s=tau, theta=torch.tensor([0.45], dtype=D64), dt=1.0)
    st = nr.two_compartment_init(1, 1, p)
    out = []
    for i in (1.0, 1.0, 0.0):
        s, st = nr.two_compartment_step(torch.tensor([[i]], dtype=D64), st, p)
        out.append((st.d.item(), st.u.item(), s.item()))
    _close([o[0] for o in out], [0.5, 0.75, 0.375], 1e-12)
    _close([o[1] for o in out], [0.25, 0.5, -0.0125], 1e-12)
    assert [o[2] for o in out] == [0.0, 1.0, 0.0]


def test_adaptive_threshold_three_steps_by_hand():
    # LIF tau=2, v_th=1, hard reset to 0; beta=0.5, tau_a = 1/ln 2 (rho_a = 1/2); x = 2.5 each step
    #   t1 h = 1.25,  A = 1 + 0.5*0    = 1     -> spike, v = 0,    a = 0 + 1 = 1
    #   t2 h = 1.25,  A = 1 + 0.5*1    = 1.5   -> none,  v = 1.25, a = 0.5
    #   t3 h = 1.25 + (2.5 - 1.25)/2 = 1.875, A = 1 + 0.25 = 1.25 -> spike, v = 0, a = 0.25 + 1 = 1.25
    # (a plain LIF would fire at t2 as well)
    p = AdaptiveThresholdParams(lif=LIFParams(tau=2.0, v_th=1.0, v_reset=0.0), tau_a=1 / math.log(2), beta=0.5)
    st = nr.adaptive_threshold_init(torch.zeros(1, dtype=D64), p)
    rows = []
    for _ in range(3):
        s, st = nr.adaptive_threshold_step(torch.tensor([2.5], dtype=D64), st, p)
        rows.append((s.item(), st.v.item(), st.a.item()))
    assert [r[0] for r in rows] == [1.0, 0.0, 1.0]
    _close([r[1] for r in rows], [0.0, 1.25, 0.0], 1e-12)
    _close([r[2] for r in rows], [1.0, 0.5, 1.25], 1e-12)


@pytest.mark.parametrize("v_reset", [0.0, None])
def test_adaptive_threshold_with_beta_zero_is_lif(v_reset):
    _seed("alif0", v_reset)
    lp = LIFParams(tau=3.0, v_th=0.7, v_reset=v_reset)
    p = AdaptiveThresholdParams(lif=lp, tau_a=10.0, beta=0.0)
    x = torch.randn(25, 4, 6) + 0.6
    st_a, st_l = nr.adaptive_threshold_init(x[0], p), nr.lif_init(x[0], lp)
    for xt in x:
        sa, st_a = nr.adaptive_threshold_step(xt, st_a, p)
        sl, st_l = nr.lif_step(xt, st_l, lp)
        assert torch.equal(sa, sl) and torch.equal(st_a.v, st_l.v)
    assert st_a.a.sum() > 0                       # spikes happened and were counted


def test_adaptation_lowers_the_rate():
    x = torch.full((200, 8), 0.9)
    lp = LIFParams(tau=5.0, v_th=0.5)
    plain = nr.lif_sequence(x, lp).spikes.sum()
    st = nr.adaptive_threshold_init(x[0], AdaptiveThresholdParams(lif=lp, tau_a=30.0, beta=0.3))
    n = 0.0
    for xt in x:
        s, st = nr.adaptive_threshold_step(xt, st, AdaptiveThresholdParams(lif=lp, tau_a=30.0, beta=0.3))
        n += s.sum().item()
    assert 0 < n < 0.8 * plain.item()


def test_records_are_frozen_and_checked():
    p = LIFParams()
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.tau = 3.0
    with pytest.raises(ValueError):
        LIFParams(tau=0.0)
    with pytest.raises(ValueError):
        AdaptiveThresholdParams(tau_a=-1.0)
    with pytest.raises(ValueError):
        nr.lif_sequence(torch.zeros(0, 3), p)
    with pytest.raises(ValueError):
        nr.lif_sequence(np.zeros((0, 3)), p)
    tr = nr.lif_sequence(torch.tensor([[1, 0], [1, 1]]), LIFParams(tau=2.0, v_th=0.7))   # integer input
    assert tr.spikes.dtype == torch.float32 and tr.spikes.tolist() == [[0.0, 0.0], [1.0, 0.0]]


def test_lif_step_accepts_numpy_and_passes_a_surrogate_gradient():
    s, st = nr.lif_step(np.array([2.5, 0.2]), LIFState(torch.zeros(2, dtype=D64)), LIFParams())
    assert s.tolist() == [1.0, 0.0] and st.v.tolist() == [0.0, 0.1]
    x = torch.tensor([1.9, 2.1], requires_grad=True)
    s, _ = nr.lif_step(x, LIFState(torch.zeros(2)), LIFParams(), spike_fn=surrogate.Sigmoid(alpha=4.0))
    assert s.tolist() == [0.0, 1.0]
    s.sum().backward()
    assert (x.grad > 0).all()


def test_lif_sequence_continues_from_a_state():
    _seed("cont")
    p = LIFParams(tau=3.0, v_reset=None)
    x = torch.randn(20, 5) + 0.7
    whole = nr.lif_sequence(x, p)
    first = nr.lif_sequence(x[:8], p)
    second = nr.lif_sequence(x[8:], p, first.state)
    assert torch.equal(torch.cat([first.spikes, second.spikes]), whole.spikes)
    assert torch.equal(second.state.v, whole.state.v)


@pytest.mark.parametrize("v_reset", [0.0, -0.3, None])
@pytest.mark.parametrize("decay_input", [True, False])
def test_lif_sequence_is_lif_step_looped_in_torch_and_numpy(v_reset, decay_input):
    """lif_sequence's shortcuts (no "- 0", the hard reset as a select, the numpy path) change no bit."""
    _seed("seq", v_reset, decay_input)
    p = LIFParams(tau=3.0, v_th=0.8, v_reset=v_reset, decay_input=decay_input)
    x = torch.randn(40, 3, 6) * 1.3 + 0.5
    st, spikes, vs = nr.lif_init(x[0], p), [], []
    for xt in x:
        s, st = nr.lif_step(xt, st, p)
        spikes.append(s)
        vs.append(st.v)
    tr = nr.lif_sequence(x, p)
    assert torch.equal(tr.spikes, torch.stack(spikes)) and torch.equal(tr.v, torch.stack(vs))
    assert tr.spikes.sum() > 0
    trn = nr.lif_sequence(x.numpy(), p)
    assert isinstance(trn.h, np.ndarray) and trn.h.dtype == np.float32
    for a, b in zip((trn.spikes, trn.h, trn.v, trn.state.v), (tr.spikes, tr.h, tr.v, tr.state.v)):
        assert np.array_equal(a, b.numpy())


# ----------------------------------------------------------------------------- SpikingJelly's LIFNode
@pytest.mark.parametrize("v_reset", [0.0, -0.3, None])
@pytest.mark.parametrize("decay_input", [True, False])
@pytest.mark.parametrize("tau", [2.0, 5.5])
def test_lif_equals_spikingjelly_lifnode(v_reset, decay_input, tau):
    _seed("sj", v_reset, decay_input, tau)
    x = torch.randn(30, 4, 7) * 1.2 + 0.6
    p = LIFParams(tau=tau, v_th=0.9, v_reset=v_reset, decay_input=decay_input)
    sj = neuron.LIFNode(**p.node_kwargs(), surrogate_function=surrogate.Sigmoid(), step_mode="m", store_v_seq=True)
    assert (sj.tau, sj.v_threshold, sj.v_reset, sj.decay_input) == (tau, 0.9, v_reset, decay_input)
    state = None                                # None: SpikingJelly's initial v (v_reset, or 0)
    with torch.no_grad():
        for part in (x[:17], x[17:]):           # the state carries over between calls, as the module's
            ref = sj(part)
            ours = nr.lif_sequence(part, p, state)
            assert torch.equal(ref, ours.spikes)
            _close(ours.v, sj.v_seq)
            _close(ours.state.v, sj.v)
            assert ours.spikes.sum() > 0
            state = ours.state


def test_lif_step_equals_spikingjelly_functional_step():
    _seed("sjf")
    x, v = torch.randn(3, 5) + 0.8, torch.randn(3, 5) * 0.3
    for v_reset in (0.0, None):
        s_ref, v_ref = functional.lif_step(x, v, 2.0, True, 1.0, v_reset, surrogate.Sigmoid(), False)
        s, st = nr.lif_step(x, LIFState(v), LIFParams(tau=2.0, v_th=1.0, v_reset=v_reset))
        assert torch.equal(s, s_ref)
        _close(st.v, v_ref)


# ----------------------------------------------------------------------------- snncore.models.lif
@pytest.fixture(params=["fused", "torch-ops"])
def lif_path(request, monkeypatch):
    """As tests/test_lif.py: the Numba kernels (CPU default) and the torch-op fallback."""
    if request.param == "fused":
        assert L.lif_fused.available(), "Numba kernels did not compile: the CPU would run the slow path"
        assert L._use_fused(torch.zeros(2, 3))
    else:
        monkeypatch.setattr(L, "_use_fused", lambda x: False)
    return request.param


@pytest.mark.parametrize("v_reset", [0.0, -0.4, None])
@pytest.mark.parametrize("decay_input", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_models_lif_function_equals_lif_sequence(lif_path, v_reset, decay_input, dtype):
    _seed("mlif", v_reset, decay_input, dtype)
    x = (torch.randn(24, 3, 9) * 1.5 + 0.7).to(dtype)
    v0 = (torch.randn(3, 9) * 0.2).to(dtype)
    p = LIFParams(tau=3.0, v_th=0.8, v_reset=v_reset, decay_input=decay_input)
    with torch.no_grad():
        s, vT = L.lif_multi_step(x, v0, tau=3.0, decay_input=decay_input, v_threshold=0.8, v_reset=v_reset)
    ref = nr.lif_sequence(x, p, LIFState(v0))
    assert torch.equal(s, ref.spikes)
    assert ref.spikes.sum() > 0
    _close(vT, ref.state.v, 1e-5 if dtype == torch.float32 else 1e-12)


@pytest.mark.parametrize("v_reset", [0.0, None])
def test_fused_kernel_charged_potential_equals_lif_sequence(v_reset):
    assert L.lif_fused.available()
    _seed("fused-h", v_reset)
    x = torch.randn(16, 2, 33, dtype=D64) + 0.6
    v0 = torch.zeros(2, 33, dtype=D64)
    s, vT, h, _ = L.lif_fused.forward(x, v0, 2.5, True, 1.0, v_reset)
    ref = nr.lif_sequence(x, LIFParams(tau=2.5, v_reset=v_reset), LIFState(v0))
    assert torch.equal(s, ref.spikes)
    _close(h, ref.h, 1e-12)
    _close(vT, ref.state.v, 1e-12)


# ----------------------------------------------------------------------------- the Rule Lab's lif_run
@pytest.mark.parametrize("tau_m,v_th", [(2.0, 1.0), (10.0, 0.6), (1.0, 0.3)])
def test_lab_lif_run_equals_lif_sequence(tau_m, v_th):
    from snncore.lab import lif_run

    rng = np.random.default_rng(zlib.crc32(repr((tau_m, v_th)).encode()))
    current = (rng.standard_normal((60, 3, 11)) * 0.6 + 0.25).astype(np.float32)
    s, v = lif_run(current, tau_m, v_th)
    ref = nr.lif_sequence(current, LIFParams(tau=tau_m, v_th=v_th, v_reset=0.0, decay_input=False))
    assert np.array_equal(s, ref.spikes)
    assert s.sum() > 0
    np.testing.assert_allclose(v, ref.h, atol=2e-5, rtol=2e-5)   # lif_run's v: the one before the reset


# ----------------------------------------------------------------------------- MPS's soft-reset LIF
def _mps_net():
    try:
        from snncore.models.mps_net import MPSNet
    except ImportError:
        from snncore.rules.mps import MPSNet
    return MPSNet


@pytest.mark.parametrize("rho,v_th", [(0.5, 1.0), (0.8, 0.6)])
def test_mps_soft_reset_lif_equals_lif_sequence(rho, v_th):
    _seed("mps", rho, v_th)
    net = _mps_net()([12, 9, 4], T=15, rho=rho, v_th=v_th, seed=3).double()
    x = (torch.rand(15, 5, 12) < 0.4).double()
    with torch.no_grad():
        out = net(x)
        h = x
        p = LIFParams(tau=1.0 / (1.0 - rho), v_th=v_th, v_reset=None, decay_input=False)
        for layer, snap in zip(net.layers, net.snapshot):
            I = layer(h)
            ref = nr.lif_sequence(I, p)
            assert torch.equal(snap["s_out"], ref.spikes)
            _close(snap["u"], ref.h, 1e-10)                # MPS's U is the pre-reset potential
            # its docstring's recurrence U[t] = rho (U[t-1] - V_th S[t-1]) + I[t]
            U = torch.zeros_like(I[0])
            S = torch.zeros_like(I[0])
            for t in range(I.shape[0]):
                U = rho * (U - v_th * S) + I[t]
                S = (U >= v_th).double()
                _close(ref.h[t], U, 1e-10)
            h = ref.spikes
        assert torch.equal(out, h)
    assert sum(s["s_out"].sum() for s in net.snapshot) > 0


def test_mps_net_builds_its_neurons_from_a_lif_record():
    net = _mps_net()([6, 3], T=4, rho=0.75, v_th=0.6, seed=0)
    assert net.lif_params == LIFParams(tau=4.0, v_th=0.6, v_reset=None, decay_input=False)
    lif = net.lifs[0]
    assert (lif.tau, lif.v_threshold, lif.v_reset, lif.decay_input) == (4.0, 0.6, None, False)


# ----------------------------------------------------------------------------- IP2's two-compartment neuron
def _ip2():
    import snncore.rules.ip2 as ip2
    RSNN = getattr(ip2, "RSNN", None)
    if RSNN is None:                                   # where the RSNN is moving
        from snncore.models.rsnn import RSNN
    return ip2, RSNN


@pytest.mark.parametrize("kind,K", [("dh", 1), ("dh", 3), ("point", 1)])
def test_ip2_rsnn_neuron_equals_two_compartment_step(kind, K):
    """Bit for bit in the RSNN's own float32: the current formed as RSNN.forward forms it, then
    two_compartment_step in place of the loop body's neuron."""
    _, RSNN = _ip2()
    model = RSNN(D=6, N=10, O=3, K=K, dt=100.0, neuron=kind, seed=4)
    with torch.no_grad():
        model.theta.copy_(torch.linspace(0.05, 0.3, 10))     # low thresholds: the cells fire
    _seed("ip2", kind, K)
    T, B = 20, 4
    x = torch.randn(T, B, 6) * 1.5 + 0.5
    with torch.no_grad():
        _, rec = model(x, record=True)
        W_in, W_rec = model.W_in, model.W_rec
        if model.branch_mask is not None:
            W_in, W_rec = W_in * model.branch_mask[:, :6], W_rec * model.branch_mask[:, 6:]
        xin = torch.addmm(model.b, x.reshape(T * B, -1), W_in.T).view(T, B, -1)
        p = TwoCompartmentParams(tau_d=None if kind == "point" else model.tau_d, tau_s=model.tau_s,
                                 theta=model.theta, dt=model.dt)
        assert p.branches == (K if kind == "dh" else 1)
        st, dec = nr.two_compartment_init(B, 10, p), p.decays()
        for t in range(T):
            I = torch.addmm(xin[t], st.s, W_rec.T)
            if K > 1:
                I = I.view(B, 10, K)
            s, st = nr.two_compartment_step(I, st, p, decays=dec if t % 2 else None)
            assert torch.equal(s, rec["s"][t])
            assert torch.equal(st.u, rec["u"][t])
            assert torch.equal(st.d.sum(-1) if K > 1 else st.d, rec["d"][t])
        assert torch.equal(st.u, rec["state"]["u"]) and torch.equal(st.d, rec["state"]["d"])
    assert 0 < rec["s"].sum() < rec["s"].numel()


def test_ip2_dh_step_equals_two_compartment_step():
    ip2, _ = _ip2()
    _seed("dh_step")
    B, D, N, dt = 3, 5, 7, 100.0
    x = torch.randn(B, D, dtype=D64)
    W_in, W_rec, b = torch.randn(N, D, dtype=D64), torch.randn(N, N, dtype=D64) * 0.5, torch.randn(N, dtype=D64)
    tau_d, tau_s = 50 + 250 * torch.rand(N, 1, dtype=D64), 20 + 80 * torch.rand(N, dtype=D64)
    theta = torch.full((N,), 0.3, dtype=D64)
    s_prev = (torch.rand(B, N) < 0.5).double()
    d_prev, u_prev = torch.randn(B, N, dtype=D64), torch.randn(B, N, dtype=D64)
    d, u, s = ip2.dh_step(x, s_prev, d_prev, u_prev, W_in, W_rec, b, tau_d, tau_s, theta, dt)
    p = TwoCompartmentParams(tau_d=tau_d, tau_s=tau_s, theta=theta, dt=dt)
    s2, st = nr.two_compartment_step(x @ W_in.T + s_prev @ W_rec.T + b,
                                     TwoCompartmentState(d_prev, u_prev, s_prev), p, spike_fn=ip2.spike_fn)
    assert torch.equal(s, s2) and 0 < s.sum() < s.numel()
    _close(d, st.d, 1e-12)
    _close(u, st.u, 1e-12)
