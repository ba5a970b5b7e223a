"""R-STDP's Rule Lab part (LAB): STDP's simulation (snncore.rules.stdp.lab) with a two-group
read-out, labels and the rule's reward; the student picks which group should answer class 0."""
from __future__ import annotations

from ...lab import InputSpec, LabSpec, PopSpec
from ..stdp.lab import simulate_timing, timing_figures

LAB = LabSpec(
    rank=1,
    title="R-STDP (reward-modulated STDP)",
    simulate=lambda p, pop, inp, ex: simulate_timing(p, pop, inp, ex, reward=True),
    figures=lambda res, ups: timing_figures(res, ups, reward=True),
    pop=PopSpec(n_pre=20, n_post=8, T=40, batch=8, updates=15, w_init=0.2),
    inp=InputSpec(kind="poisson", rate=0.08, jitter=1.0, period=20),
    controls=[("eta", "log", 1.0), ("tau_e", "slider", 1.0, 100.0, 1.0), ("r_decay", "slider", 0.0, 1.0, 0.01),
              ("tau_pre", "slider", 1.0, 30.0, 0.5), ("tau_post", "slider", 1.0, 30.0, 0.5),
              ("eta_plus", "slider", 0.0, 3.0, 0.05), ("eta_minus", "slider", 0.0, 3.0, 0.05)],
    extra={"target_group": 0},
    extra_controls=[dict(name="target_group", key="target", kind="radio", section="rule",
                         label="which group should answer class 0", options=(0, 1), format="group {}",
                         help="group 0 (natural mapping) or group 1 (swapped)")],
    order=["window", "reward", "pre", "post", "traces", "history", "weights", "dweights"],
    equations=[
        r"L_{ji}[t] = \eta_+ f_+ \, s_j[t]\,x_i[t] - \eta_- f_- \, y_j[t]\,s_i[t], \qquad "
        r"e_{ji}[t] = e_{ji}[t-1]\,e^{-1/\tau_e} + L_{ji}[t]",
        r"r_b = \begin{cases} r_{correct} & \arg\max_c \langle out_{b,c} \rangle_t = y_b \\ r_{wrong} & \text{otherwise}\end{cases}"
        r"\qquad \bar r \leftarrow r_{decay}\,\bar r + (1-r_{decay})\,\langle r_b \rangle_b",
        r"\Delta W_{ji} = \eta \sum_b (r_b - \bar r)\; e_{ji,b}[T-1]",
    ],
    lessons={
        "what": "The STDP term is not applied directly: it accumulates in an eligibility trace (decay τ_e) "
                "and is applied at the end of the trial times the reward prediction error r − r̄. Here the "
                "post neurons form two groups; group c should fire most for input class c (class c drives "
                "input half c). Reward +1 if it does, −1 if not.",
        "try": "Raise η to 1e-2 and watch ΔW's sign follow the reward. Set the baseline decay r_decay to 1 "
               "(no baseline) and compare. Shorten τ_e: only spike pairs near the end of the window count.",
        "expect": "The reward curve is noisy: with 15 updates of 8 trials the correct share hovers near 50 % "
                  "and the task is not learned here. What you can see is the mechanism: trials rewarded "
                  "above the baseline r̄ push weights along their STDP term, trials below it push them "
                  "the opposite way, and a reward equal to r̄ changes nothing.",
    },
)
