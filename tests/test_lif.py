"""Our whole-sequence LIF Function against SpikingJelly's multi-step LIFNode: same spikes, same
gradients (1e-6), for each surrogate the config offers, several shapes and reset variants. Every
test runs twice: on the compiled fused kernels (Numba, the CPU default) and on the torch-op path
(the fallback where Numba is missing)."""
import warnings
import zlib

import pytest
import torch
from spikingjelly.activation_based import functional, neuron, surrogate as sg

from snncore.models import lif as L
from snncore.models.lif import FastLIFNode, lif_multi_step

warnings.filterwarnings("ignore")


@pytest.fixture(autouse=True, params=["fused", "torch-ops"])
def lif_path(request, monkeypatch):
    if request.param == "fused":             # the CPU default, unpatched
        assert L.lif_fused.available(), "Numba kernels did not compile: the CPU would run the slow path"
        assert L._use_fused(torch.zeros(2, 3))
    else:
        monkeypatch.setattr(L, "_use_fused", lambda x: False)
    return request.param

SURROGATES = {"sigmoid": lambda: sg.Sigmoid(alpha=4.0), "atan": lambda: sg.ATan(alpha=2.0),
              "piecewise": lambda: sg.PiecewiseQuadratic(alpha=1.0)}


def _pair(surrogate, **kw):
    args = dict(tau=2.0, decay_input=True, v_threshold=1.0, v_reset=0.0, detach_reset=False, step_mode="m")
    args.update(kw)
    return (neuron.LIFNode(surrogate_function=SURROGATES[surrogate](), **args),
            FastLIFNode(surrogate_function=SURROGATES[surrogate](), **args))


def _run_both(ref, ours, x, use_v=False):
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    sa, sb = ref(xa), ours(xb)
    w = torch.randn_like(sa)
    la, lb = (sa * w).sum(), (sb * w).sum()
    if use_v:          # the final membrane in the loss too: exercises the dL/dv_T path
        la, lb = la + ref.v.sum() * 0.7, lb + ours.v.sum() * 0.7
    la.backward()
    lb.backward()
    return sa, sb, xa.grad, xb.grad


@pytest.mark.parametrize("surrogate", list(SURROGATES))
@pytest.mark.parametrize("shape", [(1, 1, 1), (13, 3, 5), (40, 4, 2, 3)])
@pytest.mark.parametrize("v_reset", [0.0, -0.4, None])
def test_spikes_and_grads_match_spikingjelly(surrogate, shape, v_reset):
    torch.manual_seed(zlib.crc32(repr((surrogate, shape, v_reset)).encode()))
    ref, ours = _pair(surrogate, v_reset=v_reset)
    x = torch.randn(shape) * 1.5 + 0.8
    sa, sb, ga, gb = _run_both(ref, ours, x)
    assert sb.dtype == x.dtype and sb.shape == x.shape
    assert torch.equal(sa, sb)
    assert sb.sum() > 0 or shape == (1, 1, 1)              # the case actually fires
    torch.testing.assert_close(gb, ga, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(ours.v, ref.v, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("detach_reset", [False, True])
@pytest.mark.parametrize("decay_input", [True, False])
@pytest.mark.parametrize("tau", [2.0, 7.5])
def test_options_match(detach_reset, decay_input, tau):
    torch.manual_seed(1)
    ref, ours = _pair("sigmoid", detach_reset=detach_reset, decay_input=decay_input, tau=tau, v_threshold=0.8)
    x = torch.randn(30, 6, 8) + 0.5
    sa, sb, ga, gb = _run_both(ref, ours, x, use_v=True)
    assert torch.equal(sa, sb)
    torch.testing.assert_close(gb, ga, atol=1e-6, rtol=1e-6)


def test_state_carries_over_between_calls_and_reset_net():
    """Two calls without reset continue from the stored membrane, as SpikingJelly's does."""
    torch.manual_seed(2)
    ref, ours = _pair("atan")
    x1, x2 = torch.randn(7, 2, 9) + 0.6, torch.randn(5, 2, 9) + 0.6
    for m in (ref, ours):
        m(x1)
    assert torch.equal(ref(x2), ours(x2))
    functional.reset_net(ours)
    functional.reset_net(ref)
    assert torch.equal(ref(x2), ours(x2))


def test_long_sequence_across_time_blocks(monkeypatch):
    """T longer than one time block: the backward carry crosses block boundaries."""
    monkeypatch.setattr(L, "CHUNK_ELEMENTS", 16)            # 16 // 8 -> 2 steps per block
    torch.manual_seed(3)
    ref, ours = _pair("piecewise")
    x = torch.randn(25, 2, 4) + 0.7
    sa, sb, ga, gb = _run_both(ref, ours, x, use_v=True)
    assert torch.equal(sa, sb)
    torch.testing.assert_close(gb, ga, atol=1e-6, rtol=1e-6)


def test_float64_matches_reference_tightly():
    torch.manual_seed(4)
    ref, ours = _pair("sigmoid")
    x = torch.randn(20, 3, 4, dtype=torch.float64) + 0.8
    sa, sb, ga, gb = _run_both(ref, ours, x)
    assert sb.dtype == torch.float64 and torch.equal(sa, sb)
    torch.testing.assert_close(gb, ga, atol=1e-12, rtol=1e-12)


def test_hand_computed_case():
    """tau=2, thr=1, v_reset=0, decay_input: h = v + (x - v)/2. x = 1.5, 1.5, 0.2:
    h0 = 0.75 (no spike), h1 = 0.75 + 0.375 = 1.125 (spike, v=0), h2 = 0.1."""
    x = torch.tensor([[1.5], [1.5], [0.2]], requires_grad=True)
    s, v = lif_multi_step(x, 0.0, tau=2.0, surrogate="sigmoid", alpha=4.0)
    assert s.flatten().tolist() == [0.0, 1.0, 0.0]
    assert v.item() == pytest.approx(0.1)
    s[2].sum().backward()           # ds2/dx2 = sg(h2 - 1) / tau; x0, x1 reach h2 only via the reset path
    z = torch.tensor(0.1 - 1.0)
    sg2 = 4 * torch.sigmoid(4 * z) * (1 - torch.sigmoid(4 * z))
    assert x.grad[2].item() == pytest.approx(sg2.item() / 2, rel=1e-6)


def test_spikingjelly_path_kept_where_ours_is_not_used():
    """A surrogate outside the three (or use_fast=False) goes through SpikingJelly's own path."""
    x = torch.randn(6, 2, 3) + 0.8
    a = neuron.LIFNode(surrogate_function=sg.SoftSign(), step_mode="m")
    b = FastLIFNode(surrogate_function=sg.SoftSign(), step_mode="m")
    assert not L.supports(x, b.surrogate_function)
    assert torch.equal(a(x), b(x))
    c = FastLIFNode(surrogate_function=sg.Sigmoid(), step_mode="m", use_fast=False)
    assert torch.equal(c(x), neuron.LIFNode(surrogate_function=sg.Sigmoid(), step_mode="m")(x))


def test_bf16_input_integrates_in_fp32():
    torch.manual_seed(5)
    x = (torch.randn(10, 2, 6) + 0.8).to(torch.bfloat16).requires_grad_()
    ours = FastLIFNode(surrogate_function=sg.Sigmoid(), step_mode="m")
    s = ours(x)
    assert s.dtype == torch.bfloat16 and ours.v.dtype == torch.float32
    s32, _ = lif_multi_step(x.detach().float(), 0.0)
    assert torch.equal(s.float(), s32)
    s.sum().backward()
    assert x.grad.dtype == torch.bfloat16 and torch.isfinite(x.grad.float()).all()


def test_bad_surrogate_name():
    with pytest.raises(ValueError, match="surrogate: unknown surrogate 'relu'"):
        lif_multi_step(torch.zeros(2, 1), surrogate="relu")


def test_mlp_uses_fast_path_and_matches_spikingjelly_mlp():
    from snncore.models.mlp import SpikingMLP
    torch.manual_seed(6)
    a = SpikingMLP(12, [16, 8], 3, readout="rate")
    b = SpikingMLP(12, [16, 8], 3, readout="rate", fast_lif=False)
    b.load_state_dict(a.state_dict())
    assert all(m.use_fast for m in a.lifs) and not any(m.use_fast for m in b.lifs)
    x = (torch.rand(9, 5, 12) < 0.4).float()
    oa, ob = a(x), b(x)
    assert torch.equal(oa, ob)
    oa.pow(2).sum().backward()
    ob.pow(2).sum().backward()
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, atol=1e-6, rtol=1e-5)
    tr = a.layer_traces()
    assert list(tr) == ["fc1", "fc2", "out"] and tr["fc2"].post.shape == (9, 5, 8)


def test_stride0_input_equals_its_copy():
    """Direct input (one tensor viewed over T) gives the same spikes and input gradient as its copy."""
    torch.manual_seed(7)
    base = (torch.randn(3, 40) + 0.9)
    a = base.clone().requires_grad_()
    b = base.clone().requires_grad_()
    sa, va = lif_multi_step(a.unsqueeze(0).expand(20, 3, 40), 0.0)
    sb, vb = lif_multi_step(b.unsqueeze(0).repeat(20, 1, 1), 0.0)
    assert torch.equal(sa, sb) and torch.equal(va, vb) and sa.sum() > 0
    w = torch.randn_like(sa)
    (sa * w).sum().backward()
    (sb * w).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, atol=1e-6, rtol=1e-6)


def test_small_layers_run_the_kernels_on_one_thread(lif_path):
    """Spinning OpenMP workers collapse beside a busy process (the app): small calls use one thread."""
    if lif_path != "fused":
        pytest.skip("fused kernels only")
    import numba
    L.lif_fused.forward(torch.rand(4, 2, 8), torch.zeros(2, 8), 2.0, True, 1.0, 0.0)
    assert numba.get_num_threads() == 1
    big = torch.rand(2, L.lif_fused.PARALLEL_MIN // 2)
    L.lif_fused.forward(big, torch.zeros(big.shape[1:]), 2.0, True, 1.0, 0.0)
    assert numba.get_num_threads() == max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
