"""DA-SSDP's Rule Lab part (LAB): SSDP's simulation (snncore.rules.ssdp.lab) with the dopamine
gate; the student sets the warm-up and how the sandbox's loss correlates with synchrony."""
from __future__ import annotations

from ...lab import InputSpec, LabResult, LabSpec, PopSpec
from ..ssdp.lab import simulate_sync, sync_figures


def _caption(res: LabResult) -> str:
    fit = res.extras.get("fit")
    return f" · fitted k = {fit[0]:.3f}" if fit else ""


LAB = LabSpec(
    rank=3,
    title="DA-SSDP (dopamine-gated SSDP)",
    simulate=lambda p, pop, inp, ex: simulate_sync(p, pop, inp, ex, gated=True),
    figures=lambda res, ups: sync_figures(res, ups, gated=True),
    caption=_caption,
    pop=PopSpec(n_pre=20, n_post=10, T=16, batch=8, updates=20, tau_m=5.0, w_init=0.15),
    inp=InputSpec(kind="poisson", rate=0.05, jitter=1.5, period=16, spread=0.6),
    controls=[("a_plus", "log", 0.1), ("a_base", "log", 0.1), ("sigma", "slider", 0.25, 10.0, 0.25),
              ("latency", "choice"), ("gate_mode", "choice"), ("depress_silent", "check")],
    min_updates=2,                       # at least one update after a one-update warm-up
    extra={"warmup": 8, "corr_SL": -0.8},
    extra_controls=[
        dict(name="warmup", key="warmup", kind="slider", section="population", lo=0, hi="updates-1",
             label="warm-up (updates recording S and L)"),
        dict(name="corr_SL", key="corr", kind="slider", section="population", lo=-1.0, hi=1.0, step=0.05,
             label="corr(S, L) imposed on the sandbox's loss",
             help="no task here: the per-trial loss L is made to correlate with synchrony S by this much"),
    ],
    order=["gate", "sync_loss", "window", "kernel", "pre", "post", "history", "latency", "weights",
           "dweights", "traces"],
    equations=[
        r"S_b = \operatorname{mean}_j a_{post,j}\cdot \operatorname{mean}_i a_{pre,i} \quad \text{(synchrony of trial } b)",
        r"\text{warm-up fit: } \mu = \overline{S},\; sd = \operatorname{std} S,\; k = -\operatorname{corr}(S, L)",
        r"g_b = \operatorname{clip}\!\left(1 + k\,\frac{S_b - \mu}{sd},\; 0,\; 2\right)",
        r"\Delta W = \operatorname{clip}\big(\operatorname{mean}_b\, g_b\, P_b,\; -1,\; 1\big), \quad P_b \text{ as in SSDP}",
    ],
    lessons={
        "what": "SSDP scaled per trial by a dopamine-like gate g. During a warm-up the rule records each "
                "trial's synchrony S and loss L (weights untouched), then fits k = −corr(S, L) once. "
                "Afterwards trials whose synchrony predicts low loss get g > 1, the others g < 1.",
        "try": "The sandbox has no task loss, so you set how loss relates to synchrony (corr(S, L)). Move it "
               "from −0.8 to +0.8 and to 0. Change the warm-up length. Switch gate_mode to batch.",
        "expect": "k comes out near −corr(S, L): with loss falling as synchrony rises (negative corr) the gate "
                  "rises with S; with positive corr it falls; near 0 the gate is ≈1 and DA-SSDP is plain "
                  "SSDP. The trial-to-trial spread of the input rate is what makes S vary; set it to 0 and "
                  "the fit has nothing to work with.",
    },
)
