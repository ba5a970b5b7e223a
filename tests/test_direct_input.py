"""Direct (static-current) input is one tensor viewed over T; the MLP applies its first layer once."""
import torch

from snncore.data.encode import encode
from snncore.models.mlp import SpikingMLP, linear_over_time, time_invariant


def _run(net, x):
    for m in net.lifs:
        m.reset()
    net.zero_grad(set_to_none=True)
    out = net(x)
    (out.mean(0) * torch.arange(out.shape[-1])).sum().backward()
    return out.detach(), [p.grad.clone() for p in net.parameters()]


def test_direct_encoding_is_a_stride0_view_and_rate_is_not():
    x = torch.rand(4, 6)
    d = encode(x, 5, "direct")
    assert d.shape == (5, 4, 6) and d.stride(0) == 0 and time_invariant(d)
    assert torch.equal(d[3], x)
    assert not time_invariant(d.contiguous())
    assert not time_invariant(encode(x, 5, "rate", generator=torch.Generator().manual_seed(0)))
    assert not time_invariant(encode(x, 1, "direct"))        # T = 1: nothing to share


def test_linear_over_time_equals_per_step_linear_with_grads():
    torch.manual_seed(0)
    fc = torch.nn.Linear(6, 3)
    x = torch.rand(2, 6)
    y = linear_over_time(fc, x.unsqueeze(0).expand(4, 2, 6))
    assert y.shape == (4, 2, 3) and y.stride(0) == 0
    w = torch.randn(4, 2, 3)
    (y * w).sum().backward()
    gW = fc.weight.grad.clone()
    fc.weight.grad = None
    # by hand: d/dW sum_t w[t] (x W^T + b) = (sum_t w[t])^T x
    assert torch.allclose(gW, w.sum(0).T @ x, atol=1e-6)


def test_mlp_fast_path_gives_the_same_outputs_and_grads_as_the_copied_input():
    torch.manual_seed(1)
    x = torch.rand(8, 20) * 2
    for fast in (True, False):
        net = SpikingMLP(20, [16, 12], 4, fast_lif=fast)
        o1, g1 = _run(net, encode(x, 6, "direct"))
        o2, g2 = _run(net, encode(x, 6, "direct").contiguous())
        assert torch.equal(o1, o2)
        for a, b in zip(g1, g2):
            assert torch.allclose(a, b, atol=1e-5, rtol=1e-5)


def test_direct_batches_from_the_pipeline_stay_views_with_normalisation():
    from snncore.data import DataBundle
    tr = torch.rand(10, 2 * 3 * 3)
    b = DataBundle(train_x=tr, train_y=torch.arange(10) % 2, test_x=tr, test_y=torch.arange(10) % 2,
                   n_classes=2, kind="static", encoding="direct", name="t", input_shape=(2, 3, 3),
                   norm=((0.5, 0.25), (0.5, 0.25)))
    x, y = next(b.batches("train", 4, 5, shuffle=False))
    assert x.shape == (5, 4, 18) and x.stride(0) == 0
    want = (tr[:4] - torch.tensor([0.5] * 9 + [0.25] * 9)) / torch.tensor([0.5] * 9 + [0.25] * 9)
    assert torch.allclose(x[2], want)


def test_readout_over_time_matches_linear_for_time_invariant_and_general_gradients():
    """The read-out's backward does the work once when dL/dy is the same at every step (a loss on
    the mean over T); any other gradient takes the usual products. Both equal nn.Linear's."""
    from snncore.models.mlp import readout_over_time
    torch.manual_seed(3)
    fc = torch.nn.Linear(7, 4)
    s = (torch.rand(6, 5, 7) < 0.4).float()
    for loss in (lambda y: (y.mean(0) * torch.arange(4.0)).sum(), lambda y: (y * torch.randn_like(y)).sum()):
        grads = []
        for f in (readout_over_time, lambda m, x: m(x)):
            sa = s.clone().requires_grad_()
            fc.zero_grad(set_to_none=True)
            y = f(fc, sa)
            torch.manual_seed(4)
            loss(y).backward()
            grads.append((y.detach(), sa.grad, fc.weight.grad.clone(), fc.bias.grad.clone()))
        for a, b in zip(*grads):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
    sa = s.clone().requires_grad_()
    seen = []
    sa.register_hook(lambda g: seen.append(g.stride(0)))
    readout_over_time(fc, sa).mean(0).sum().backward()
    assert seen == [0]                            # one [B, N] product, viewed over T
