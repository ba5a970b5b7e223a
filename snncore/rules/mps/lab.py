"""MPS's Rule Lab part (LAB): an MPSNet (inputs -> hidden -> 2 outputs) with the MPS rule's hooks
around a real Adam step, two input classes; its controls, figures and texts."""
from __future__ import annotations

import numpy as np
import torch

from ...lab import N_CLASSES, InputSpec, LabResult, LabSpec, PopSpec, _busiest, _raster, make_input
from ...viz.lab import _layout, _lines
from ..base import StepContext


def simulate(p, pop: PopSpec, inp: InputSpec, ex: dict) -> LabResult:
    from . import MPS, MPSNet

    rng = np.random.default_rng(pop.seed)
    net = MPSNet.from_params([pop.n_pre, pop.n_post, N_CLASSES], pop.T, p, seed=pop.seed)
    net.train()
    rule = MPS(p, net)
    opt = torch.optim.Adam(net.param_groups(lr=1e-2, lr_z=p.lr_z)) if rule.uses_gradient else None
    W0 = net.layers[0].effective_weight().detach().numpy().copy()
    mech = list(net.mechanisms)
    hist: dict[str, list] = {k: [] for k in ("loss", "accuracy", "rate")}
    pre_c, post_c = [], []
    for e in range(pop.updates):
        labels = rng.integers(0, N_CLASSES, size=pop.batch)
        x = torch.from_numpy(make_input(inp, pop.n_pre, pop.T, pop.batch, rng, labels))
        y = torch.from_numpy(labels)
        out = net(x)
        loss = net.loss(out, y)
        ctx = StepContext(step=e, epoch=0, total_steps=pop.updates, model=net, x=x, y=y, out=out,
                          loss=loss, layers=net.layer_traces(), optimizer=opt)
        if opt is not None:
            opt.zero_grad(set_to_none=True)
            loss.backward()
            rule.after_backward(ctx)
            opt.step()
        rule.after_step(ctx)
        tel = rule.telemetry()
        for k, v in tel.items():
            hist.setdefault(k, []).append(v)
        hist["loss"].append(float(loss.detach()))
        hist["accuracy"].append(float((net.readout(out.detach()).argmax(-1) == y).float().mean()))
        hidden = net.snapshot[0]["s_out"]
        hist["rate"].append(float(hidden.mean()))
        pre_c.append(x[:, 0].numpy())
        post_c.append(hidden[:, 0].numpy())
    u = net.snapshot[0]["u"][:, 0].numpy()                                         # [T, N]
    pj = _busiest(net.snapshot[0]["s_out"][:, 0].numpy(), 3)
    traces = {f"membrane U[{j}]": u[:, j] for j in pj}
    layer = net.layers[0]
    extras = {"mechanisms": mech,
              "assign": {n: net.assignment_map(n) for n in net.names},
              "components": {m: layer.weight_of(m).detach().numpy().copy() for m in mech},
              "contrib_last": layer.contributions(), "labels_last": labels}
    n = len(hist["loss"])
    hist = {k: np.asarray(v, float) for k, v in hist.items() if len(v) == n}
    return LabResult("", p, pop, inp, pop.T, _raster(pre_c), _raster(post_c), traces, W0,
                     layer.effective_weight().detach().numpy().copy(), hist, extras)


def figures(res: LabResult, ups: np.ndarray) -> dict[str, dict]:
    """Assignment shares, each mechanism's contribution and weight change, loss and accuracy."""
    h, ex = res.history, res.extras
    figs: dict[str, dict] = {}
    mech = ex["mechanisms"]
    A = np.asarray(ex["assign"]["fc1"], dtype=float)
    from ...viz import SHARE_COLORSCALE       # the Train page's scale, spelt out (see there)
    figs["assign"] = {"data": [{"type": "heatmap", "z": A, "y": mech, "zmin": 0, "zmax": 1,
                                "colorscale": SHARE_COLORSCALE,
                                "colorbar": {"thickness": 12, "title": {"text": "share"}}}],
                      "layout": _layout("mechanism assignment A (hidden neurons)", "hidden neuron", "mechanism",
                                        yaxis={"autorange": "reversed"})}
    figs["contrib"] = _lines({m: h[f"contrib_{m}/fc1"] for m in mech if f"contrib_{m}/fc1" in h},
                             "each mechanism's contribution mean |A_k·C_k| (hidden)", "update", "mean |A_k·C_k|", x=ups)
    figs["dw_mech"] = _lines({m: h[f"dw_{m}/fc1"] for m in mech if f"dw_{m}/fc1" in h},
                             "change of each W_k per update (hidden)", "update", "mean |ΔW_k|", x=ups)
    figs["history"] = _lines({"loss": h["loss"], "batch accuracy": h["accuracy"], "hidden rate": h["rate"]},
                             "per update", "update", "value", x=ups)
    return figs


LAB = LabSpec(
    rank=4,
    title="MPS (multi-plasticity synergy)",
    simulate=simulate,
    figures=figures,
    pop=PopSpec(n_pre=20, n_post=16, T=8, batch=16, updates=10),
    inp=InputSpec(kind="poisson", rate=0.3, jitter=1.0, period=8),
    controls=[("mechanisms", "multi"), ("eta_h", "log", 1.0), ("gamma_h", "slider", 0.0, 1.0, 0.01),
              ("eta_s", "log", 1.0), ("lr_z", "log", 1.0), ("tau_a", "slider", 0.1, 5.0, 0.1),
              ("assign_mode", "choice")],
    post_title="hidden spikes · trial 0 of each update",
    weight_name="W_eff of the hidden layer",
    weight_axes=("pre neuron i", "hidden neuron j"),
    order=["assign", "contrib", "dw_mech", "history", "pre", "post", "weights", "dweights", "traces"],
    equations=[
        r"A = \operatorname{softmax}_k(Z/\tau_a), \qquad I = \sum_k A_k \odot (S_{in} W_k^\top) + b",
        r"U[t] = \rho\,(U[t-1] - V_{th} S[t-1]) + I[t], \qquad S[t] = [U[t] \ge V_{th}]",
        r"\text{hebb: } W_H \leftarrow \operatorname{clip}\!\Big(\gamma_H W_H + \tfrac{\eta_H}{TB}\sum_{t,b} \phi \otimes S_{in}\Big),"
        r"\; \phi = \tanh(U/V_{th} - \theta_H)",
        r"\text{sbp: } e = y - r, \quad \Delta W^{L}_S = \tfrac{\eta_S}{B}\sum_b e_b \otimes \bar x_b, \quad "
        r"\Delta W^{l}_S = \tfrac{\eta_S}{B}\sum_b (\hat m \odot e_b F_l^\top) \otimes \bar x_b",
        r"\text{bp: } W_{bp}, b, Z \leftarrow \text{Adam}(\nabla L), \quad L = \lVert \bar S_{out} - \text{onehot}(y) \rVert^2",
    ],
    lessons={
        "what": "Each synapse has one weight per mechanism (bp: surrogate gradient; hebb: Hebbian; sbp: "
                "self-backpropagation; optionally stdp, hetero, homeo). Each neuron mixes them by learned "
                "shares A = softmax(Z/τ_a). Here: 20 inputs → 16 hidden → 2 outputs, two input classes. "
                "This is our reading of the paper (its method section was not available).",
        "try": "Raise lr_z to 1 and watch the shares move away from 1/3. Set η_H to 0.1 or γ_H to 1. Remove "
               "mechanisms (at least one must stay). Use assign_mode hard: every neuron picks one mechanism.",
        "expect": "W_hebb starts at zero, so Hebbian's contribution grows from nothing; bp and sbp start "
                  "with random weights and carry the current at first. With lr_z = 1e-2 the shares barely "
                  "move in 10 updates. Accuracy on the batch stays near chance in so few updates.",
    },
)
