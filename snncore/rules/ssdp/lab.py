"""SSDP's Rule Lab part (LAB), shared with DA-SSDP (snncore.rules.da_ssdp.lab): the synchrony
simulation on the lab population, its controls, figures and texts.

One update: the input drawn, the LIF population run with the current W, then the rule's own
``after_backward`` and ``after_step`` (DA-SSDP: with a per-trial loss made to correlate with
synchrony by the student's corr(S, L), since the sandbox has no task)."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from ...lab import InputSpec, LabResult, LabSpec, PopSpec, _busiest, _ctx, _init_weight, \
    _population_step, _raster, make_input
from ...viz.lab import _add_points, _layout, _lines


def simulate_sync(p, pop: PopSpec, inp: InputSpec, ex: dict, *, gated: bool) -> LabResult:
    """SSDP (gated=False) or DA-SSDP (gated=True) on the lab population."""
    with torch.no_grad():
        return _simulate_sync(p, pop, inp, ex, gated)


def _simulate_sync(p, pop: PopSpec, inp: InputSpec, ex: dict, da: bool) -> LabResult:
    from ..da_ssdp import DASSDP, dopamine_gate
    from ..ssdp import SSDP, gaussian_kernel, spike_latency, ssdp_delta, synchrony

    rng = np.random.default_rng(pop.seed)
    W = _init_weight(pop, rng)
    W0 = W.clone()
    if da:
        warm = int(ex.get("warmup", 8))
        if not 0 <= warm < pop.updates:
            raise ValueError(f"warm-up: {warm} updates is out of range (allowed: 0 <= warm-up < updates = {pop.updates})")
        corr = float(ex.get("corr_SL", -0.8))
        if not -1.0 <= corr <= 1.0:
            raise ValueError(f"corr(S, L): {corr} is out of range (allowed: -1 <= value <= 1)")
        p = dataclasses.replace(p, warmup_steps=warm) if warm > 0 else dataclasses.replace(p, warmup_steps=0, warmup_frac=0.0)
        R = DASSDP(p, total_steps=pop.updates)
    else:
        R = SSDP(p, total_steps=pop.updates)
    pre_c, post_c = [], []
    hist = {k: [] for k in ("w_mean", "dw", "rate", "sync", "gate_mean", "phase")}
    S_all, L_all = [], []
    for e in range(pop.updates):
        pre = make_input(inp, pop.n_pre, pop.T, pop.batch, rng)
        post, v = _population_step(W, pre, pop)
        pre_t, post_t = torch.from_numpy(pre), torch.from_numpy(post)
        extras = None
        loss = None
        S_b = synchrony(pre_t, post_t).double().numpy()                            # [B]
        if da:
            # the sandbox has no task loss: L is made to correlate with synchrony by corr(S, L)
            # (the student's choice), so the gate's dependence on that relation can be seen
            zS = (S_b - S_b.mean()) / (S_b.std() + 1e-8)
            L_b = 1.0 + 0.3 * (corr * zS + math.sqrt(max(0.0, 1.0 - corr * corr)) * rng.standard_normal(pop.batch))
            extras = {"per_sample_loss": torch.from_numpy(L_b.astype(np.float32))}
            loss = torch.tensor(float(L_b.mean()))
            S_all.append(S_b)
            L_all.append(L_b)
        before = W.clone()
        ctx = _ctx(e, pop.updates, W, pre_t, post_t, torch.from_numpy(v), loss=loss, extras=extras)
        R.after_backward(ctx)
        R.after_step(ctx)
        tel = R.telemetry()
        hist["w_mean"].append(float(W.mean()))
        hist["dw"].append(float((W - before).abs().mean()))
        hist["rate"].append(float(post.mean()))
        hist["sync"].append(float(tel.get("sync/lab", S_b.mean())))
        if da:
            hist["phase"].append(float(tel.get("phase", 0.0)))
            hist["gate_mean"].append(float(tel["gate_mean/lab"]) if "gate_mean/lab" in tel else float("nan"))
        pre_c.append(pre[:, 0])
        post_c.append(post[:, 0])
    T = pop.T
    pj = _busiest(post[:, 0], 3)
    traces = {f"membrane v[{j}]": v[:, 0, j] for j in pj}
    # the kernel and the per-pair window, both from the rule's own functions, one call each:
    # co-fired: one pre neuron spiking at t = 0, post neuron d spiking at t = d  -> dW[d, 0];
    # post silent: pre neuron d spiking at t = d, one post neuron silent (latency T) -> dW[0, d]
    K = gaussian_kernel(T, p.sigma, dtype=torch.float64).numpy()
    dts = np.arange(T)
    sweep = torch.from_numpy(np.eye(T, dtype=np.float32)[:, None, :])           # [T, 1, T]: neuron d at t = d
    first = torch.zeros(T, 1, 1)
    first[0] = 1.0
    kw = dict(a_plus=p.a_plus, a_base=p.a_base, sigma=p.sigma, latency=p.latency,
              depress_silent=p.depress_silent)
    co = ssdp_delta(first, sweep, **kw)[:, 0].double().numpy()
    pre_only = ssdp_delta(sweep, torch.zeros(T, 1, 1), **kw)[0].double().numpy()
    lat_pre = spike_latency(torch.from_numpy(pre), p.latency).numpy()
    lat_post = spike_latency(torch.from_numpy(post), p.latency).numpy()
    extras = {"kernel_dt": np.arange(T + 1, dtype=float), "kernel_g": K[0], "pair_dt": dts.astype(float),
              "pair_cofired": np.asarray(co), "pair_post_silent": np.asarray(pre_only),
              "lat_pre": lat_pre, "lat_post": lat_post}
    if da:
        fit = R.gate_params()
        extras["warm_S"] = np.concatenate(S_all[:int(p.warmup_steps)]) if p.warmup_steps else np.zeros(0)
        extras["warm_L"] = np.concatenate(L_all[:int(p.warmup_steps)]) if p.warmup_steps else np.zeros(0)
        extras["corr_SL"] = corr
        if fit:
            k, mu, sd = fit["lab"]
            extras["fit"] = (k, mu, sd)
            s_grid = np.linspace(0.0, 1.0, 101)
            extras["gate_S"] = s_grid
            extras["gate_g"] = dopamine_gate(torch.from_numpy(s_grid), k, mu, sd).numpy()
            arr = R.arrays()
            extras["gate_last"] = arr.get("gate/lab", np.zeros(0))
            extras["S_last"] = S_all[-1]
    hist = {k: np.asarray(v, float) for k, v in hist.items() if v}
    return LabResult("", p, pop, inp, T, _raster(pre_c), _raster(post_c), traces, W0.numpy(),
                     W.numpy().copy(), hist, extras)


def sync_figures(res: LabResult, ups: np.ndarray, *, gated: bool) -> dict[str, dict]:
    """Per-pair window, kernel, latencies, history (DA-SSDP: and the warm-up fit and the gate)."""
    h, ex = res.history, res.extras
    figs: dict[str, dict] = {}
    figs["window"] = _lines({"pre & post fired: +A₊·G(Δt)": ex["pair_cofired"],
                             "post silent: −A_base·G(T − t_pre)": ex["pair_post_silent"]},
                            "ΔW of one synapse (the rule's ssdp_delta)",
                            "t_post − t_pre (fired pair) or t_pre (post silent), steps", "ΔW",
                            x=ex["pair_dt"], mode="lines+markers")
    figs["kernel"] = _lines({"G(Δt)": ex["kernel_g"]}, f"synchrony kernel G · σ = {float(res.params.sigma):g} steps",
                            "|Δt| = |τ_post − τ_pre| (steps)", "G", x=ex["kernel_dt"], mode="lines+markers")
    T = res.T
    labels = [str(t) for t in range(T)] + ["silent"]
    lat = []
    for name, l in (("pre", ex["lat_pre"]), ("post", ex["lat_post"])):
        l = np.asarray(l).reshape(-1)
        c = np.bincount(np.clip(l, 0, T), minlength=T + 1)[:T + 1] / max(l.size, 1)
        lat.append({"type": "bar", "x": labels, "y": c, "name": name})
    figs["latency"] = {"data": lat, "layout": _layout(f"{res.params.latency}-spike latency (last update)",
                                                      "latency (step; silent = no spike)", "share of neurons × trials",
                                                      barmode="group", xaxis={"type": "category"})}
    ser = {"mean W": h["w_mean"], "mean |ΔW| per update": h["dw"], "synchrony S": h["sync"], "post rate": h["rate"]}
    if gated:
        ser["gate mean"] = h["gate_mean"]
    figs["history"] = _lines(ser, "per update", "update", "value", x=ups)
    if gated:
        fit = ex.get("fit")
        if ex["warm_S"].size:
            S, L = ex["warm_S"], ex["warm_L"]
            f = _lines({}, "warm-up record: synchrony S vs loss L", "synchrony S", "loss L")
            _add_points(f, S, L, f"warm-up samples ({S.size})")
            if fit:
                from ...viz.rules import fit_line
                xs, ys = fit_line(S, L, *fit)
                f["data"].append({"type": "scatter", "x": xs, "y": ys, "mode": "lines", "name": f"fit: k = {fit[0]:.2f}"})
            figs["sync_loss"] = f
        if fit:
            g = _lines({"gate g(S)": ex["gate_g"]}, f"dopamine gate g(S) · k = {fit[0]:.2f}, μ = {fit[1]:.3f}, sd = {fit[2]:.3f}",
                       "synchrony S", "gate g", x=ex["gate_S"])
            _add_points(g, ex["S_last"], ex["gate_last"], "last update's trials")
            g["layout"]["yaxis"]["range"] = [-0.05, 2.05]
            figs["gate"] = g
    return figs


LAB = LabSpec(
    rank=2,
    title="SSDP (synchrony-dependent)",
    simulate=lambda p, pop, inp, ex: simulate_sync(p, pop, inp, ex, gated=False),
    figures=lambda res, ups: sync_figures(res, ups, gated=False),
    pop=PopSpec(n_pre=20, n_post=10, T=16, batch=8, updates=16, tau_m=5.0, w_init=0.1),
    inp=InputSpec(kind="bursts", rate=0.01, jitter=1.0, period=16),
    controls=[("a_plus", "log", 0.1), ("a_base", "log", 0.1), ("sigma", "slider", 0.25, 10.0, 0.25),
              ("latency", "choice"), ("depress_silent", "check")],
    order=["window", "kernel", "pre", "post", "latency", "history", "weights", "dweights", "traces"],
    equations=[
        r"a_n = [\text{neuron } n \text{ fired in the window}], \quad \tau_n = \text{first spike time (or } T \text{ if silent)}",
        r"G_{ji} = \exp\!\left(-\frac{(\tau_j - \tau_i)^2}{2\sigma^2}\right), \qquad C_{ji} = a_j\, a_i",
        r"P_b = A_+\, C_b\, G_b \;-\; A_{base}\,(1 - C_b)\, G_b",
        r"\Delta W = \operatorname{clip}\big(\operatorname{mean}_b\, P_b,\; -1,\; 1\big)",
    ],
    lessons={
        "what": "Uses only whether each neuron fired in the window and its first-spike time. A pair that "
                "both fired is strengthened by A₊·G, G a Gaussian of their latency difference (symmetric in "
                "time, unlike STDP); every other pair is weakened by A_base·G.",
        "try": "Raise A₊ to 1e-2 and A_base to 5e-3, then compare synchronous bursts with Poisson input. "
               "Widen σ: the kernel flattens and co-firing counts regardless of timing. Increase the "
               "jitter of the bursts.",
        "expect": "With bursts every neuron fires together, synchrony S is 1 and the weights grow. With "
                  "sparse Poisson input many neurons stay silent and latencies differ, so depression wins "
                  "and the weights shrink, which lowers the post rate further. At the code default "
                  "A₊ = 1e-4 the change is about 1e-4 per update: visible only in the ΔW panel.",
    },
)
