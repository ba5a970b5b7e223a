"""IP2's Rule Lab part (LAB): the protocol's own L2LRunner on one go/no-go task, with the rule's
Params resized to the lab population (N, batch, T); its controls, figures and texts. The input
is the task family's own, so the page offers no input choice."""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ...lab import InputSpec, LabResult, LabSpec, PopSpec
from ...viz.lab import _lines


def simulate(p, pop: PopSpec, inp: InputSpec, ex: dict) -> LabResult:
    from . import PROPS, L2LRunner, _prop_values

    p = dataclasses.replace(p, N=pop.n_post, batch=pop.batch, T=pop.T, meta_mode="fixed", threads=1)
    r = L2LRunner(p, p.mask, seed=pop.seed)
    torch.manual_seed(pop.seed)        # nothing below draws from it; pinned anyway for determinism
    r.start_task()
    n_show = min(5, r.model.N)
    idx = sorted(set(np.linspace(0, r.model.N - 1, n_show).round().astype(int).tolist()))
    traj = {q: [_prop_values(r.model, q)[idx].numpy().copy()] for q in PROPS}
    W0 = r.model.W_rec.detach().numpy().copy()
    hist: dict[str, list] = {"loss": [], "l_task": [], "mean_u2": []}
    for _ in range(pop.updates):
        info = r.update()
        for k in hist:
            hist[k].append(info[k])
        for q in PROPS:
            traj[q].append(_prop_values(r.model, q)[idx].numpy().copy())
    tr = r.trial_trace(n_trace=3)
    x = r.last_batch[0][:, 0].numpy()                                              # [T, D] input currents
    s = np.asarray(tr["s"], dtype=bool)                                            # [T, N]
    traces = {f"membrane u[{j}]": np.asarray(tr["u"][k]) for k, j in enumerate(tr["neurons"])}
    extras = {"traj": {q: np.stack(v) for q, v in traj.items()}, "neurons": idx, "mask": list(r.mask),
              "y": np.asarray(tr["y"]), "target": np.asarray(tr["target"]),
              "all_values": {q: _prop_values(r.model, q).numpy() for q in PROPS}}
    return LabResult("", p, pop, InputSpec(), pop.T, x.T.copy(), s.T.copy(), traces, W0,
                     r.model.W_rec.detach().numpy().copy(),
                     {k: np.asarray(v, float) for k, v in hist.items()}, extras)


def figures(res: LabResult, ups: np.ndarray) -> dict[str, dict]:
    """Each neuron property's trajectory over the updates, and the loss."""
    h, ex = res.history, res.extras
    figs: dict[str, dict] = {}
    unit = {"tau_d": " (ms)", "tau_s": " (ms)", "theta": ""}
    for q, v in ex["traj"].items():
        state = "learnable" if q in ex["mask"] else "frozen"
        figs[f"traj_{q}"] = _lines({f"neuron {n}": v[:, k] for k, n in enumerate(ex["neurons"])},
                                   f"{q} of {len(ex['neurons'])} neurons over updates ({state})", "update",
                                   q + unit[q], x=np.arange(v.shape[0]))
    figs["history"] = _lines({"loss": h["loss"], "task loss": h["l_task"]}, "loss per update", "update",
                             "loss", x=ups)
    return figs


LAB = LabSpec(
    rank=5,
    title="Intrinsic plasticity (IP²-RSNN)",
    simulate=simulate,
    figures=figures,
    pop=PopSpec(n_post=16, T=10, batch=8, updates=12),
    inp=InputSpec(),
    uses_input=False,
    input_note="Input: the go/no-go task family of IP² (stimulus, fixation and cue channels).",
    controls=[("mask", "multi"), ("eta", "log", 1.0), ("lr_w", "log", 1.0), ("neuron", "choice")],
    pre_title="task input x (last batch, trial 0)",
    pre_heat=("time step", "input channel"),
    post_title="recurrent spikes · one trial after the last update",
    post_windows=False,
    weight_name="W_rec",
    weight_axes=("recurrent neuron (from)", "recurrent neuron (to)"),
    order=["traj_theta", "traj_tau_s", "traj_tau_d", "history", "pre", "post", "weights", "dweights", "traces"],
    equations=[
        r"d[t] = \beta\, d[t-1] + (1-\beta)\, I[t], \quad u[t] = \alpha\, u[t-1] + (1-\alpha)\, d[t] - \theta\, s[t-1],"
        r"\quad s[t] = H(u[t] - \theta)",
        r"\beta = e^{-dt/\tau_d}, \quad \alpha = e^{-dt/\tau_s}, \quad I[t] = x[t] W_{in}^\top + s[t-1] W_{rec}^\top + b",
        r"L = L_{task} + \lambda_h \lvert \overline{u^2} - \sigma_h \rvert + \lambda_I \overline{W_{in}^2} + "
        r"\lambda_R \overline{W_{rec}^2} + \lambda_O \overline{W_{out}^2}",
        r"\text{fast level: } (\ln\tau_d,\ \ln\tau_s,\ \theta)_{m=1} \leftarrow \text{Adam}(\nabla L,\ \eta); "
        r"\quad m = 0 \text{ types stay frozen}",
    ],
    lessons={
        "what": "Intrinsic plasticity: besides the weights, neuron properties adapt by gradient: dendritic "
                "and somatic time constants τ_d, τ_s and threshold θ. Only the types in the mask are "
                "learnable (the slow level of IP² picks the mask; here you pick it). A 16-neuron recurrent "
                "net learns one go/no-go task. Our reading of the paper.",
        "try": "Tick θ and raise η to 0.1: thresholds spread apart. Untick all: the properties are flat "
               "lines. Switch to the point neuron (β = 0: τ_d has no effect).",
        "expect": "Only learnable properties move; frozen ones stay exactly constant. With larger η they "
                  "drift further and some hit the clamps (τ in [5, 2000] ms, θ in [0.05, 2]). The loss falls "
                  "slowly: 12 updates are the start of one task, not learning to learn.",
    },
)
