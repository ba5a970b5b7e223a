"""STDP's Rule Lab part (LAB), shared with R-STDP (snncore.rules.rstdp.lab): the spike-timing
simulation on the lab population, its controls, figures and texts.

One update: the input drawn, the LIF population run with the current W, then the rule's own
``after_step`` changes W once (R-STDP: with the read-out and labels below)."""
from __future__ import annotations

import numpy as np
import torch

from ...lab import N_CLASSES, InputSpec, LabResult, LabSpec, PopSpec, _busiest, _ctx, _init_weight, \
    _population_step, _raster, make_input
from ...viz.lab import _lines


def simulate_timing(p, pop: PopSpec, inp: InputSpec, ex: dict, *, reward: bool) -> LabResult:
    """STDP (reward=False) or R-STDP (reward=True) on the lab population."""
    with torch.no_grad():
        return _simulate_timing(p, pop, inp, ex, reward)


def _simulate_timing(p, pop: PopSpec, inp: InputSpec, ex: dict, reward: bool) -> LabResult:
    from .. import stdp as S
    from ..rstdp import RSTDP, eligibility_weights

    rng = np.random.default_rng(pop.seed)
    W = _init_weight(pop, rng)
    W0 = W.clone()
    R = RSTDP(p) if reward else S.STDP(p)
    target = int(ex.get("target_group", 0))
    pre_c, post_c, hist = [], [], {k: [] for k in ("w_mean", "dw", "rate", "reward", "r_bar", "correct")}
    for e in range(pop.updates):
        labels = rng.integers(0, N_CLASSES, size=pop.batch) if reward else None
        pre = make_input(inp, pop.n_pre, pop.T, pop.batch, rng, labels)
        post, v = _population_step(W, pre, pop)
        pre_t, post_t = torch.from_numpy(pre), torch.from_numpy(post)
        out = y = None
        if reward:
            # read-out: the post neurons in N_CLASSES groups; group c answers class c. The reward
            # is the rule's own reward_from_output: +1 when the trial's class group fires most.
            # target_group flips which group should answer class 0 (1 = the "wrong" mapping).
            out = post_t.reshape(pop.T, pop.batch, N_CLASSES, -1).mean(-1)
            y = torch.from_numpy((labels + target) % N_CLASSES)
        before = W.clone()
        R.after_step(_ctx(e, pop.updates, W, pre_t, post_t, torch.from_numpy(v), out=out, y=y))
        tel = R.telemetry()
        hist["w_mean"].append(float(W.mean()))
        hist["dw"].append(float((W - before).abs().mean()))
        hist["rate"].append(float(post.mean()))
        if reward:
            hist["reward"].append(tel["reward"])
            hist["r_bar"].append(tel["reward_mean"])
            hist["correct"].append(float((out.mean(0).argmax(-1) == y).float().mean()))
        pre_c.append(pre[:, 0])
        post_c.append(post[:, 0])
    # traces of the last window, trial 0: the rule's own trace function
    x = S.traces(torch.from_numpy(pre[:, :1]), p.tau_pre)[:, 0].numpy()           # [T, N_pre]
    yv = S.traces(torch.from_numpy(post[:, :1]), p.tau_post)[:, 0].numpy()        # [T, N_post]
    pi, pj = _busiest(pre[:, 0], 3), _busiest(post[:, 0], 2)
    traces = {f"pre trace x[{i}]": x[:, i] for i in pi}
    traces.update({f"post trace y[{j}]": yv[:, j] for j in pj})
    traces.update({f"membrane v[{j}]": v[:, 0, j] for j in pj})
    dt = S.WINDOW_DT
    eta = p.eta if reward else 1.0
    extras = {"window_dt": dt.astype(float),
              "window_dw": eta * S.stdp_window(dt, p.tau_pre, p.tau_post, p.eta_plus, p.eta_minus).numpy()}
    if reward:
        extras["elig_w"] = eligibility_weights(pop.T, p.tau_e, dtype=torch.float64).numpy()
        extras["groups"] = N_CLASSES
    return LabResult("", p, pop, inp, pop.T, _raster(pre_c), _raster(post_c), traces, W0.numpy(),
                     W.numpy().copy(), {k: np.asarray(v, float) for k, v in hist.items() if v}, extras)


def timing_figures(res: LabResult, ups: np.ndarray, *, reward: bool) -> dict[str, dict]:
    """The learning window and the per-update history (R-STDP: and the reward)."""
    h, ex = res.history, res.extras
    figs: dict[str, dict] = {}
    dt, dw = ex["window_dt"], ex["window_dw"]
    figs["window"] = _lines({"LTP: pre → post": np.where(dw >= 0, dw, np.nan),
                             "LTD: post → pre": np.where(dw <= 0, dw, np.nan)},
                            "learning window" + (" (η·W(Δt): per unit of r − r̄)" if reward else " W(Δt)"),
                            "Δt = t_post − t_pre (steps)", "ΔW of one spike pair", x=dt, mode="lines+markers")
    ser = {"mean W": h["w_mean"], "mean |ΔW| per update": h["dw"], "post rate": h["rate"]}
    figs["history"] = _lines(ser, "per update", "update", "value", x=ups)
    if reward:
        figs["reward"] = _lines({"reward (batch mean)": h["reward"], "baseline r̄": h["r_bar"],
                                 "correct share": h["correct"]}, "reward per update", "update", "value", x=ups)
    return figs


LAB = LabSpec(
    rank=0,
    title="STDP",
    simulate=lambda p, pop, inp, ex: simulate_timing(p, pop, inp, ex, reward=False),
    figures=lambda res, ups: timing_figures(res, ups, reward=False),
    pop=PopSpec(n_pre=20, n_post=8, T=60, batch=2, updates=12),
    inp=InputSpec(kind="pattern", rate=0.02, jitter=1.0, period=20),
    controls=[("eta_plus", "log", 0.1), ("eta_minus", "log", 0.1), ("tau_pre", "slider", 1.0, 30.0, 0.5),
              ("tau_post", "slider", 1.0, 30.0, 0.5), ("bounds", "choice"), ("clip_additive", "check")],
    order=["window", "history", "pre", "post", "traces", "weights", "dweights"],
    equations=[
        r"x_i[t] = x_i[t-1]\,e^{-1/\tau_{pre}} + s_i[t], \qquad y_j[t] = y_j[t-1]\,e^{-1/\tau_{post}} + s_j[t]",
        r"\Delta W_{ji} = \eta_+ f_+(W_{ji}) \sum_{t,b} s_j[t]\,x_i[t] \;-\; \eta_- f_-(W_{ji}) \sum_{t,b} y_j[t]\,s_i[t]",
        r"W(\Delta t) = \eta_+ e^{-\Delta t/\tau_{pre}}\,[\Delta t \ge 0] - \eta_- e^{\Delta t/\tau_{post}}\,[\Delta t \le 0],"
        r"\quad \Delta t = t_{post} - t_{pre}",
        r"\text{additive: } f_\pm = 1; \quad \text{multiplicative: } f_+ = w_{max} - W,\; f_- = W - w_{min}",
    ],
    lessons={
        "what": "Changes each synapse by the timing of its pre and post spikes: a pre spike shortly before a "
                "post spike strengthens it (LTP), shortly after weakens it (LTD). The traces x and y carry "
                "the memory of recent spikes; the window plot is the change one spike pair causes.",
        "try": "Keep the repeated pattern (a sweep: input 0 fires first, input 19 last in each period) and "
               "raise η₊ and η₋ ten-fold, both to 1e-2. Then switch the input to Poisson, and then set η₋ to "
               "2e-2, twice η₊. Move τ_pre / τ_post and watch the window widen.",
        "expect": "With the pattern, inputs that fire early in the sweep (left columns of ΔW) are potentiated "
                  "and late ones depressed, because the post neurons fire part-way through the sweep. With "
                  "Poisson input there is no repeated timing, yet the weights still grow a little (mean ΔW > 0), "
                  "even at the default η₋ = 1.05e-3 just above η₊: each post spike follows the pre spikes "
                  "that caused it, so pre-before-post pairs outnumber the reverse. Only a clearly larger η₋ "
                  "(2e-2 against 1e-2) makes depression win, and the post rate falls. At the default "
                  "η ≈ 1e-3 the change after a dozen updates is small (mean |ΔW| ≈ 0.02).",
    },
)
