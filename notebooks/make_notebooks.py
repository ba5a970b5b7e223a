"""Writes the teaching notebooks (notebooks/*.ipynb) from the cell texts below, without outputs.

    /path/to/venv/python notebooks/make_notebooks.py

Edit the lessons here, not in the .ipynb files (those are regenerated). tests/test_notebooks.py
executes every notebook at small sizes (SNNCORE_NB_SMALL=1) and checks they are stored clean."""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = '''\
import os
from pathlib import Path

import numpy as np
import torch
import snncore as sc

# SNNCORE_NB_SMALL=1 (set by the test suite) shrinks every run to seconds; unset: the lesson's sizes
SMALL = os.environ.get("SNNCORE_NB_SMALL") == "1"
ROOT = Path(sc.__file__).resolve().parents[1]           # the checkout: presets in assets/presets
PRESETS = ROOT / "assets" / "presets"
# the app's runs folder ($SNNCORE_RUNS or <checkout>/runs): runs made here appear in the app
RUNS_DIR = Path(os.environ.get("SNNCORE_RUNS") or ROOT / "runs")
TRAIN = dict(runs_dir=RUNS_DIR, progress=not SMALL)
print("small sizes" if SMALL else "lesson sizes", "· runs go to", RUNS_DIR)'''


def md(s: str):
    return new_markdown_cell(s.strip("\n"))


def code(s: str):
    return new_code_cell(s.strip("\n"))


def exercise(question: str, answer: str):
    return md(f"### Exercise\n\n{question.strip()}\n\n<details>\n<summary>Answer (click to open)</summary>\n\n"
              f"{answer.strip()}\n\n</details>")


# ============================================================================ 01 STDP
NB01 = [
    md(r"""
# 01 · STDP from scratch

**Idea.** Spike-timing-dependent plasticity changes a synapse by the *order* of its two neurons'
spikes: a presynaptic spike shortly **before** a postsynaptic one strengthens the synapse (LTP), shortly
**after** weakens it (LTD) (Bi & Poo 1998). The engine keeps one exponentially decaying *trace* per neuron,
so the rule needs no list of spike pairs.

In this lesson (about 20 minutes) you compute the rule by hand for one spike pair, watch it shape the
weights of a tiny population in Rule Lab, and then run it in the real training engine on a task where
two groups of input channels fire repeated volleys.
"""),
    md(r"""
## The equations

Traces, for pre neuron $i$ and post neuron $j$ (time in steps):

$$x_i[t] = x_i[t-1]\,e^{-1/\tau_{pre}} + s_i[t], \qquad y_j[t] = y_j[t-1]\,e^{-1/\tau_{post}} + s_j[t]$$

Update, summed over the window and the batch:

$$\Delta W_{ji} = \eta_+ f_+(W_{ji}) \sum_{t,b} s_j[t]\,x_i[t] \;-\; \eta_- f_-(W_{ji}) \sum_{t,b} y_j[t]\,s_i[t]$$

For a single pair with $\Delta t = t_{post} - t_{pre}$ this is the learning window

$$W(\Delta t) = \eta_+ e^{-\Delta t/\tau_{pre}}\,[\Delta t \ge 0] \;-\; \eta_- e^{\Delta t/\tau_{post}}\,[\Delta t \le 0].$$

Additive bounds: $f_\pm = 1$; multiplicative (soft) bounds: $f_+ = w_{max} - W$, $f_- = W - w_{min}$.
"""),
    code(SETUP),
    md(r"""
## By hand: one spike pair

`snncore.rules.stdp.stdp_delta` is the function the trainer calls after every optimizer step.
Spikes have shape `[T, B, N]` (time, batch, neurons). One pre spike at $t=2$, one post spike at $t=5$:
$\Delta t = 3$, so with $\eta_+ = 10^{-3}$, $\tau_{pre} = 5$ we expect $\Delta W = 10^{-3} e^{-3/5} \approx 5.49\cdot10^{-4}$.
"""),
    code(r'''
from snncore.rules.stdp import stdp_delta, stdp_window, traces

T = 10
pre = torch.zeros(T, 1, 1); post = torch.zeros(T, 1, 1)
pre[2] = 1; post[5] = 1
kw = dict(tau_pre=5.0, tau_post=5.0, eta_plus=1e-3, eta_minus=1.05e-3)
dw_ltp = stdp_delta(pre, post, **kw).item()
dw_ltd = stdp_delta(post, pre, **kw).item()          # the same pair, order swapped: post 3 steps before pre
print(f"pre before post: dW = {dw_ltp:.3e}   expected {1e-3 * np.exp(-3 / 5):.3e}")
print(f"post before pre: dW = {dw_ltd:.3e}   expected {-1.05e-3 * np.exp(-3 / 5):.3e}")
assert np.isclose(dw_ltp, 1e-3 * np.exp(-3 / 5), rtol=1e-5)
assert np.isclose(dw_ltd, -1.05e-3 * np.exp(-3 / 5), rtol=1e-5)
print("pre trace x[t]:", np.round(traces(pre, 5.0)[:, 0, 0].numpy(), 3))
'''),
    md(r"""
The trace `x` jumps to 1 at the pre spike and decays by $e^{-1/5}\approx 0.82$ per step; the post spike
at $t=5$ reads it. The whole window, from the same function the app's Rule Lab draws:
"""),
    code(r'''
import plotly.graph_objects as go

dt = np.arange(-20, 21)
w = stdp_window(dt, **kw).numpy()
fig = go.Figure(go.Scatter(x=dt, y=w, mode="lines+markers"))
fig.update_layout(title="STDP learning window W(Δt)", xaxis_title="Δt = t_post − t_pre (steps)",
                  yaxis_title="ΔW of one pair", height=320)
fig
'''),
    md(r"""
## Rule Lab: a tiny population

`sc.lab.simulate` runs the same sandbox as the app's **Rule Lab** page: 20 inputs drive 8 LIF neurons
through $W$; each update draws a window of input, runs the neurons and lets the rule change $W$ once.
The default input is a *repeated sweep*: input 0 fires first, input 19 last, in every period of 20 steps.

**What to expect** (the Rule Lab's own text): with $\eta_\pm = 10^{-2}$ the inputs early in the sweep
are potentiated and the late ones depressed, because the post neurons fire part-way through the sweep.
In numbers: the mean $\Delta W$ of inputs 0-4 is positive (about +0.19) and that of inputs 15-19 negative
(about −0.12).
"""),
    code(r'''
lab = sc.lab.simulate("stdp", eta_plus=1e-2, eta_minus=1e-2)
per_input = lab.dW.mean(axis=0)                      # mean over the post neurons, one value per input
early, late = per_input[:5].mean(), per_input[-5:].mean()
print(f"mean dW of inputs 0-4: {early:+.3f}   inputs 15-19: {late:+.3f}")
assert early > 0 > late
lab.figures["dweights"]
'''),
    code(r'''
lab.figures["traces"]
'''),
    md(r"""
### No timing structure: Poisson input

Replace the sweep by independent Poisson spikes. **What to expect** (the Rule Lab's text): the weights still
grow a little at the default $\eta_- = 1.05\cdot10^{-3}$ just above $\eta_+ = 10^{-3}$ (our run: mean
$\Delta W = +0.0008$), because each post spike follows the pre spikes that caused it, so pre-before-post
pairs outnumber the reverse. Only a clearly larger $\eta_-$ ($2\cdot10^{-2}$ against $10^{-2}$) makes
depression win (mean $\Delta W \approx -0.07$), and the post rate falls (from about 0.07 to 0.025).
"""),
    code(r'''
import dataclasses
from snncore.lab import spec

poisson = dataclasses.replace(spec("stdp").inp, kind="poisson")
mild = sc.lab.simulate("stdp", inp=poisson)                                   # the defaults
strong_ltd = sc.lab.simulate("stdp", inp=poisson, eta_plus=1e-2, eta_minus=2e-2)
r = strong_ltd.history["rate"]
print(f"defaults: mean dW {mild.dW.mean():+.4f}   eta- = 2 eta+: mean dW {strong_ltd.dW.mean():+.4f}, "
      f"post rate {r[0]:.3f} -> {r[-1]:.3f}")
assert mild.dW.mean() > 0 > strong_ltd.dW.mean() and r[-1] < r[0]
strong_ltd.figures["history"]
'''),
    md(r"""
## A real run: STDP learns a repeated pattern

The preset *STDP learns a repeated pattern* (the same file the app's preset menu loads): two classes,
each a group of 16 of 64 channels firing one synchronous volley per sample; channels 32-63 carry only
background noise. The learning rate is almost zero, so STDP alone shapes the input layer `fc1`.

**What to expect**: the mean `fc1` weight from the pattern channels (0-31) ends above the one from the
noise channels (32-63) (in our seed-0 run 0.33 against 0.30), and most hidden neurons (31 of 32) have a
larger mean weight from pattern channels than from noise channels. Test accuracy stays near chance:
the read-out is not trained.
"""),
    code(r'''
small = dict(epochs=1, syn_samples=160) if SMALL else {}
run = sc.train(config=PRESETS / "stdp_repeated_pattern.toml", **small, **TRAIN)
print(run, "· figures:", run.figures())
'''),
    code(r'''
from snncore import inspect as A

_, _, ckpt = A.run_checkpoint(run.store, run.id)
W1 = A.load_checkpoint(ckpt)["model"]["fcs.0.weight"].numpy()        # fc1: [32 hidden, 64 inputs]
pattern, noise = W1[:, :32].mean(), W1[:, 32:].mean()
prefer = int((W1[:, :32].mean(1) > W1[:, 32:].mean(1)).sum())
print(f"mean fc1 weight from pattern channels {pattern:.3f}, from noise channels {noise:.3f}")
print(f"{prefer} of 32 hidden neurons prefer the pattern channels")
assert pattern > noise and prefer > 16
'''),
    code(r'''
run.figure("pattern_fc1")
'''),
    code(r'''
run.figure("whist_fc1")
'''),
    exercise(r"""
In the hand-made example a pre and a post spike in the **same** step ($\Delta t = 0$) count both as LTP
and as LTD. With the defaults $\eta_+ = 10^{-3}$, $\eta_- = 1.05\cdot10^{-3}$, what is $\Delta W$ for
such a pair? Check it with `stdp_delta`. Why does the preset set $\eta_+ = 2\cdot10^{-3}$ above
$\eta_- = 10^{-3}$?""", r"""
$\Delta W(0) = \eta_+ - \eta_- = -5\cdot10^{-5}$: a slight net depression.

```python
pre = torch.zeros(10, 1, 1); post = torch.zeros(10, 1, 1); pre[4] = post[4] = 1
stdp_delta(pre, post, **kw)   # tensor([[-5.0000e-05]])
```

In the preset the inputs fire synchronous volleys, so the hidden neurons often spike in the same step as
their inputs. With $\eta_+ < \eta_-$ those same-step pairs would depress exactly the synapses that made the
neuron fire; with $\eta_+ > \eta_-$ pre spikes at or before a post spike win, and the pattern channels grow."""),
]

# ============================================================================ 02 R-STDP
NB02 = [
    md(r"""
# 02 · Reward-modulated STDP

**Idea.** Plain STDP strengthens whatever fires in the right order, useful or not. A *three-factor*
rule (Izhikevich 2007; Frémaux & Gerstner 2016) keeps the STDP term in an **eligibility trace** and
applies it only when a reward arrives, scaled by the **reward prediction error** $r - \bar r$: better than
expected reinforces what just happened, worse than expected reverses it.
"""),
    md(r"""
## The equations

STDP term and eligibility ($x$, $y$ the traces of lesson 01):

$$L_{ji}[t] = \eta_+ f_+\, s_j[t]\,x_i[t] - \eta_- f_-\, y_j[t]\,s_i[t], \qquad e_{ji}[t] = e_{ji}[t-1]\,e^{-1/\tau_e} + L_{ji}[t]$$

Reward per sample $b$ ($+1$ when the output's most active class is the label, else $-1$), a running
baseline, and the update read at the end of the window:

$$\bar r \leftarrow r_{decay}\,\bar r + (1-r_{decay})\,\langle r_b\rangle_b, \qquad
\Delta W_{ji} = \eta \sum_b (r_b - \bar r)\; e_{ji,b}[T-1]$$
"""),
    code(SETUP),
    md(r"""
## By hand

Since $e[T-1] = \sum_t e^{-(T-1-t)/\tau_e} L[t]$, each time step counts with the weight
`eligibility_weights(T, tau_e)`: 1 at the last step, $e^{-(T-1)/\tau_e}$ at the first.

**What to expect**: a reward equal to the baseline changes nothing ($\Delta W = 0$ exactly); rewards $+1$ and
$-1$ (baseline 0) give updates of equal size and opposite sign.
"""),
    code(r'''
from snncore.rules.rstdp import eligibility_weights, rstdp_delta, reward_from_output

ew = eligibility_weights(10, tau_e=20.0)
print("eligibility weights:", np.round(ew.numpy(), 3))
assert np.isclose(ew[0].item(), np.exp(-9 / 20)) and ew[-1].item() == 1.0

g = torch.Generator().manual_seed(0)
pre = (torch.rand(10, 1, 4, generator=g) < 0.3).float()
post = (torch.rand(10, 1, 3, generator=g) < 0.3).float()
dw_good = rstdp_delta(pre, post, reward=torch.tensor([1.0]), r_bar=0.0, eta=1e-2)
dw_bad = rstdp_delta(pre, post, reward=torch.tensor([-1.0]), r_bar=0.0, eta=1e-2)
dw_expected = rstdp_delta(pre, post, reward=torch.tensor([0.4]), r_bar=0.4, eta=1e-2)
print("reward +1:\n", dw_good.numpy().round(4))
assert torch.allclose(dw_good, -dw_bad) and dw_good.abs().sum() > 0
assert dw_expected.abs().max().item() == 0.0        # reward exactly as predicted: no change
'''),
    md(r"""
The reward comes from the network's output, by `reward_from_output` (mean over time, argmax per sample):
"""),
    code(r'''
out = torch.tensor([[[0.9, 0.1], [0.2, 0.6], [0.5, 0.4]]])          # [T=1, B=3, classes=2]
y = torch.tensor([0, 0, 0])
print(reward_from_output(out, y))                                 # right, wrong, right
assert reward_from_output(out, y).tolist() == [1.0, -1.0, 1.0]
'''),
    md(r"""
## Rule Lab: reward on a tiny population

Eight post neurons form two groups; group $c$ should fire most for input class $c$. The figures are the
app's Rule Lab figures.

**What to expect** (stated in the app, and honest): in 15 updates of 8 trials the task is **not** learned;
the share of correct trials stays near 50 % (in our run 45 %). What you can see is the mechanism, above.
"""),
    code(r'''
lab = sc.lab.simulate("rstdp", eta=1e-2)
share = lab.history["correct"].mean()
print(f"correct share over {len(lab.history['correct'])} updates: {share:.0%}")
assert 0.2 <= share <= 0.8
lab.figures["reward"]
'''),
    code(r'''
lab.figures["window"]
'''),
    md(r"""
## A real run on handwritten digits

R-STDP changes the first layer of a gradient-trained network after every optimizer step. The reward
of a batch is its mean over samples of $\pm 1$, so it is tied to the batch's training accuracy:

$$\langle r_b\rangle_b = (+1)\,\text{acc} + (-1)(1-\text{acc}) = 2\,\text{acc} - 1.$$

**What to expect**: the logged reward equals $2\cdot$`train/accuracy`$-1$ at every step (to float
precision). And, honestly, on this task the rule does not help: in our seed-0 runs (3 epochs, 1024 digits)
BPTT alone reaches 74 % test accuracy, BPTT + R-STDP at the default $\eta = 10^{-3}$ 62 %, and at
$\eta = 10^{-2}$ the local update swamps the gradient and the network ends at chance (10 %). The notebook
checks that order: BPTT above R-STDP at $10^{-3}$, which is more than 20 points above R-STDP at
$10^{-2}$, itself under 20 %. At the small test
sizes (4 steps) only the reward identity is checked.
"""),
    code(r'''
size = dict(epochs=1, n_train=256, timesteps=4) if SMALL else dict(epochs=3, n_train=1024, timesteps=8)
net = dict(dataset="digits", hidden=[64], lr=5e-3, seed=0, log_every=1, **size, **TRAIN)
run = sc.train(rule="rstdp", **net)                     # eta = 1e-3, the rule's default
m, tel = run.metrics.set_index("step"), run.telemetry.set_index("step")
both = tel[["reward"]].join(m["train/accuracy"], how="inner").dropna()
print(both.head())
assert len(both) > 0 and np.allclose(both["reward"], 2 * both["train/accuracy"] - 1, atol=1e-5)
'''),
    code(r'''
if SMALL:                                               # seconds only: R-STDP at 1e-3 alone
    runs = {"rstdp eta 1e-3": run}
else:
    runs = {"bptt": sc.train(rule="bptt", **net), "rstdp eta 1e-3": run,
            "rstdp eta 1e-2": sc.train(rule="rstdp", eta=1e-2, **net)}
acc = {k: r.metrics["test/accuracy"].dropna().iloc[-1] for k, r in runs.items()}
print({k: f"{v:.1%}" for k, v in acc.items()}, "(chance 10 %)")
if not SMALL:
    assert acc["bptt"] > acc["rstdp eta 1e-3"] > acc["rstdp eta 1e-2"] + 0.2
    assert acc["rstdp eta 1e-2"] < 0.2
'''),
    code(r'''
print(run.figures())
run.figure("accuracy")
'''),
    exercise(r"""
Run R-STDP again with `r_decay=1.0` (no baseline: $\bar r$ stays 0). Early in training the network is
mostly wrong, so most rewards are $-1$. What does that do to the sign of the update, compared with a
baseline that tracks the mean reward? Predict, run, and compare the accuracy curves.""", r"""
```python
nobase = sc.train(rule="rstdp", r_decay=1.0, **net)
nobase.figure("accuracy")
```
Without a baseline a mostly-wrong network gets a negative mean reward on almost every batch, so every STDP
term is *reversed*, useful or not; a mostly-right network would reinforce every term. With $\bar r$ tracking
the mean reward only batches better (or worse) than usual push along (or against) their STDP term, so the
update carries information about what changed the reward, not about its average level. Whether that helps
the accuracy here is what your run shows; the rule's effect is small next to the gradient's at $\eta = 10^{-3}$."""),
]

# ============================================================================ 03 SSDP
NB03 = [
    md(r"""
# 03 · SSDP: learning from synchrony

**Idea.** Spike-synchrony-dependent plasticity (Tian et al., arXiv 2505.14841) looks only at **whether**
each neuron fired in the window and **when it first fired**. A pair that both fired is strengthened, more
the closer their first spikes are; every other pair decays a little. Unlike STDP the rule is symmetric in
time. The equations here follow the authors' public code line by line (docs/ALGORITHMS_SSDP.md).
"""),
    md(r"""
## The equations

$a_n = \text{any}_t\, s_n[t]$ (fired), $\tau_n$ its first-spike latency ($T$ when silent),
$G_{ji} = \exp\!\big(-(\tau_j - \tau_i)^2 / 2\sigma^2\big)$, $C_{ji} = a_j a_i$ (co-fired). Per sample $b$:

$$P_b = A_+\, C_b \odot G_b \;-\; A_{base}\,(1 - C_b) \odot G_b, \qquad \Delta W = \operatorname{clip}\big(\operatorname{mean}_b P_b,\,-1,\,1\big)$$

Synchrony of a sample: $S_b = \operatorname{mean}_j a_{post,j}\cdot\operatorname{mean}_i a_{pre,i}$.
"""),
    code(SETUP),
    md(r"""
## By hand: the specification's worked example

Two pre neurons $i_0, i_1$, two post neurons $j_0, j_1$, $T=4$, two samples (spike trains over $t=0..3$):

| sample | $i_0$ | $i_1$ | $j_0$ | $j_1$ |
|---|---|---|---|---|
| 0 | 1000 | 0011 | 0100 | 0000 |
| 1 | 0000 | 0101 | 1010 | 0000 |

**What to expect** (docs/ALGORITHMS_SSDP.md §5): with $A_+ = 1$, $A_{base} = 0.5$, $\sigma = 1$:
$S = [0.5, 0.25]$ and $\Delta W = [[0.303181, 0.606531], [-0.250084, -0.036611]]$.
"""),
    code(r'''
from snncore.rules.ssdp import first_spike_latency, ssdp_delta, synchrony

def trains(*rows):                                  # "1000" strings -> [T, 1, N]
    return torch.tensor([[int(c) for c in r] for r in rows], dtype=torch.float32).T[:, None, :]

pre = torch.cat([trains("1000", "0011"), trains("0000", "0101")], dim=1)     # [T=4, B=2, 2]
post = torch.cat([trains("0100", "0000"), trains("1010", "0000")], dim=1)
print("first-spike latency pre:", first_spike_latency(pre).tolist(), " post:", first_spike_latency(post).tolist())
S = synchrony(pre, post)
dW = ssdp_delta(pre, post, a_plus=1.0, a_base=0.5, sigma=1.0)
print("S =", S.numpy(), "\ndW =\n", dW.numpy().round(6))
assert np.allclose(S.numpy(), [0.5, 0.25])
assert np.allclose(dW.numpy(), [[0.303181, 0.606531], [-0.250084, -0.036611]], atol=1e-6)
'''),
    md(r"""
$j_1$ never fires, so its whole row is depressed; $j_0$ co-fires with both inputs and gains, most with
$i_1$ whose latency is close to its own in both samples.

## Rule Lab: bursts against Poisson input

**What to expect** (with $A_+ = 10^{-2}$, $A_{base} = 5\cdot10^{-3}$): with synchronous bursts every neuron
fires in every window, so $S = 1$ and the mean weight grows (from 0.108 to about 0.21 in our run). With sparse
Poisson input almost no window has all neurons firing (mean $S$ near 0), depression wins and the mean weight
shrinks (to about 0.04).
"""),
    code(r'''
import dataclasses
from snncore.lab import spec

base_input = spec("ssdp").inp                       # the Rule Lab's default input (synchronous bursts)
res = {}
for kind in ("bursts", "poisson"):
    res[kind] = sc.lab.simulate("ssdp", inp=dataclasses.replace(base_input, kind=kind), a_plus=1e-2, a_base=5e-3)
    h = res[kind].history
    print(f"{kind:8s} mean S {h['sync'].mean():.2f}   mean W {res[kind].W0.mean():.3f} -> {h['w_mean'][-1]:.3f}")
assert res["bursts"].history["w_mean"][-1] > res["bursts"].W0.mean()
assert res["poisson"].history["w_mean"][-1] < res["poisson"].W0.mean()
res["bursts"].figures["window"]
'''),
    code(r'''
res["poisson"].figures["history"]
'''),
    md(r"""
## A real run: the synchrony task, against the BPTT baseline

Preset *SSDP on the synchrony task*: four classes, each a group of 8 of 64 channels firing together; SSDP
($A_+ = 10^{-3}$, ten times the code's default so a short run shows anything) is added after every step of
surrogate-gradient training. The preset *BPTT baseline* is the same run without the rule.

**What to expect** (honest): the paper claims better stability and robustness; on this clean task at this
size both reach about 99 % test accuracy (seed 0: 99.3 % SSDP, 99.0 % BPTT), and over three seeds the 95 %
intervals overlap (ours: SSDP 99.7 ± 0.8 %, BPTT 99.6 ± 1.3 %), so these runs show no difference between the
rules. (Small test sizes: two seeds of runs far too short to learn; the notebook only prints the numbers.)
"""),
    code(r'''
small = dict(epochs=1, syn_samples=256) if SMALL else {}
seeds = (0, 1) if SMALL else (0, 1, 2)
runs = {rule: [sc.train(config=PRESETS / f"{rule}_synchrony_task.toml", seed=s, **small, **TRAIN) for s in seeds]
        for rule in ("ssdp", "bptt")}
ssdp = runs["ssdp"][0]
for rule, rs in runs.items():
    print(rule, "final test accuracy per seed:", [f"{r.metrics['test/accuracy'].dropna().iloc[-1]:.1%}" for r in rs])
tel = ssdp.telemetry
print("SSDP |dW| / |optimizer step| on fc1, last 3 logs:", tel["dw_ratio/fc1"].dropna().tail(3).round(3).tolist())
'''),
    md(r"""
`sc.compare` groups runs equal but for the seed and gives each group's mean with a 95 % interval
(Student's $t$: $\pm\, t_{0.975,\,n-1}\, s/\sqrt{n}$), as the app's Compare page does. A rule beats the
baseline only when the intervals separate.
"""),
    code(r'''
cmp = sc.compare([r.id for rs in runs.values() for r in rs], runs_dir=RUNS_DIR)
acc = cmp[cmp["metric"] == "final_test_accuracy"].set_index("group")
print(acc[["n", "mean", "lo", "hi", "seeds"]])
overlap = acc.loc["ssdp", "lo"] <= acc.loc["bptt", "hi"] and acc.loc["bptt", "lo"] <= acc.loc["ssdp", "hi"]
print("intervals overlap:", overlap)
if not SMALL:
    assert (acc["mean"] > 0.95).all() and overlap
'''),
    code(r'''
print(ssdp.figures())
ssdp.figure("chi")
'''),
    code(r'''
ssdp.figure("kernel")
'''),
    exercise(r"""
In the worked example, what is $\Delta W$ for a window in which **no** neuron fires at all (all four
trains `0000` in both samples)? What changes with `depress_silent=False`? Predict, then check with
`ssdp_delta`.""", r"""
Every pair is "not co-fired" and both latencies are the sentinel $T$, so $G = 1$ and
$\Delta W = -A_{base} = -0.5$ everywhere. With `depress_silent=False` pairs where both neurons are silent
get no update: $\Delta W = 0$.

```python
z = torch.zeros(4, 2, 2)
ssdp_delta(z, z, a_plus=1.0, a_base=0.5)                          # all -0.5
ssdp_delta(z, z, a_plus=1.0, a_base=0.5, depress_silent=False)    # all 0
```"""),
]

# ============================================================================ 04 DA-SSDP
NB04 = [
    md(r"""
# 04 · DA-SSDP: a dopamine-like gate on synchrony

**Idea.** DA-SSDP (Tian et al., arXiv 2512.07194) scales the SSDP update of each sample by a gate $g$.
During a warm-up it records each sample's synchrony $S$ and loss $L$ without touching the weights, then
fits once how synchrony relates to the loss. After that, samples whose synchrony predicts a **low** loss
get $g > 1$, the others $g < 1$. If synchrony says nothing about the loss, $g = 1$ and the rule is plain
SSDP.
"""),
    md(r"""
## The equations

Fit at the end of the warm-up (then frozen):

$$\mu = \overline{S}, \quad sd = \operatorname{std} S, \quad k = -\operatorname{corr}(S, L) = -\operatorname{mean}\Big(\tfrac{S-\mu}{sd}\cdot\tfrac{L-\bar L}{\operatorname{std} L}\Big)$$

Gate and update:

$$g_b = \operatorname{clip}\Big(1 + k\,\frac{S_b - \mu}{sd},\; 0,\; 2\Big), \qquad \Delta W = \operatorname{clip}\big(\operatorname{mean}_b\, g_b P_b,\,-1,\,1\big)$$
"""),
    code(SETUP),
    md(r"""
## By hand

**What to expect** (docs/ALGORITHMS_SSDP.md §5): `fit_gate(S=[.1,.2,.3,.4], L=[2.0,1.8,1.5,1.1])` gives
$k = 0.989071$, $\mu = 0.25$, $sd = 0.111803$; a loss unrelated to synchrony gives $k = 0$; with
$k=0.4, \mu=0.3, sd=0.1$ the samples with $S = [0.5, 0.25]$ get $g = [1.8, 0.8]$.
"""),
    code(r'''
from snncore.rules.da_ssdp import dopamine_gate, fit_gate

k, mu, sd = fit_gate(torch.tensor([.1, .2, .3, .4], dtype=torch.float64), torch.tensor([2.0, 1.8, 1.5, 1.1], dtype=torch.float64))
print(f"k = {k:.6f}, mu = {mu:.6f}, sd = {sd:.6f}")
assert np.allclose([k, mu, sd], [0.989071, 0.25, 0.111803], atol=1e-6)
k0, _, _ = fit_gate(torch.tensor([.1, .3, .1, .3]), torch.tensor([1., 1., 2., 2.]))
print("unrelated loss: k =", float(k0))
assert abs(float(k0)) < 1e-6
g = dopamine_gate(torch.tensor([0.5, 0.25]), 0.4, 0.3, 0.1)
print("gate:", g.numpy())
assert np.allclose(g.numpy(), [1.8, 0.8])
assert dopamine_gate(torch.tensor([0.0, 1.0]), 1.0, 0.3, 0.1).tolist() == [0.0, 2.0]    # clipped
'''),
    md(r"""
## Rule Lab: you choose how loss relates to synchrony

The sandbox has no task, so its per-trial loss is *made* to correlate with synchrony by `corr_SL`. The
fit should recover $k \approx -\text{corr}(S, L)$, up to the noise of 8 warm-up updates × 8 trials.

**What to expect**: `corr_SL = -0.8` gives $k$ near $+0.8$ (our run: 0.70), `0` gives $k$ near 0 (−0.09),
`+0.8` gives $k$ near $-0.8$ (−0.72); each within 0.3 of $-$`corr_SL`.
"""),
    code(r'''
fits = {}
for c in (-0.8, 0.0, 0.8):
    r = sc.lab.simulate("da_ssdp", extra={"corr_SL": c})
    fits[c] = r
    print(f"corr(S, L) = {c:+.1f}  ->  fitted k = {r.extras['fit'][0]:+.3f}")
    assert abs(r.extras["fit"][0] - (-c)) < 0.3
fits[-0.8].figures["gate"]
'''),
    code(r'''
fits[-0.8].figures["sync_loss"]
'''),
    md(r"""
## A real run: a gate on a task where synchrony does not matter

Preset *A synchrony gate on a task where synchrony does not matter*: handwritten digits, rate-coded, so the
class is in how **often** pixels fire, not in which fire together. A careful reader would expect $k \approx 0$.

**What to expect** (what our runs show, and why): the fit still finds a large $k$ (about 0.9): early in
training synchrony rises while the loss falls, and that shared drift looks like a relation. The gates then
sit at the clip (our run: mean gate 2.00 on `fc1` at the end), the local update runs at double
strength, and late in the run it undoes what the
gradient learned: seed 0 reaches about 91 % at its best epoch and ends near 65 %. (At the small test sizes
the run is too short for this; the notebook prints what it gets.)
"""),
    code(r'''
small = dict(epochs=2, n_train=512) if SMALL else {}
run = sc.train(config=PRESETS / "da_ssdp_sync_irrelevant.toml", **small, **TRAIN)
tel = run.telemetry.set_index("step")
k_fc1 = tel["k/fc1"].dropna()
acc = run.metrics["test/accuracy"].dropna()
print(f"fitted k/fc1 = {k_fc1.iloc[-1]:.3f};  test accuracy per epoch: {[round(a, 3) for a in acc]}")
gate = tel["gate_mean/fc1"].dropna() if "gate_mean/fc1" in tel else tel.iloc[:0]
print(f"mean gate on fc1 at the end: {gate.iloc[-1]:.2f}" if len(gate) else "no gate yet (the run ended in its warm-up)")
assert -1.0 <= k_fc1.iloc[-1] <= 1.0 and ((gate >= 0) & (gate <= 2)).all()
if not SMALL:
    assert k_fc1.iloc[-1] > 0.5                       # the spurious relation
    assert gate.iloc[-1] > 1.9                        # gates at the clip
    assert acc.max() - acc.iloc[-1] > 0.1             # the late collapse
print(run.figures())
'''),
    code(r'''
run.figure("gate_fc1")
'''),
    code(r'''
run.figure("syncloss_fc1")
'''),
    exercise(r"""
Shuffling the warm-up's loss record breaks any relation between $S$ and $L$. What $k$ would you expect
then, what does the gate become, and what does that make DA-SSDP? Check with `fit_gate` on a shuffled
record of the Rule Lab run with `corr_SL = -0.8` (its warm-up is in `extras["warm_S"]`, `extras["warm_L"]`).""",
             r"""
$k$ near 0 (within the sampling noise, about $1/\sqrt{n}$ for $n$ pairs), so $g \approx 1$ for every sample
and DA-SSDP is plain SSDP with the same amplitudes.

```python
r = fits[-0.8]
S, L = torch.tensor(r.extras["warm_S"]), torch.tensor(r.extras["warm_L"])
print(fit_gate(S, L)[0], fit_gate(S, L[torch.randperm(len(L))])[0])   # ~0.7 vs ~0
```"""),
]

# ============================================================================ 05 IP2
NB05 = [
    md(r"""
# 05 · Learning to learn with intrinsic plasticity (IP²)

**Idea.** Not only synapses adapt: neurons change their own time constants and thresholds (*intrinsic
plasticity*). IP²-RSNN (Yu et al., arXiv 2501.14539) lets a recurrent spiking network meet a long sequence
of tasks of one family. A slow level picks **which** neuron properties may adapt, once; a fast level adapts
those, with the weights, inside every task. Learning to learn shows as **fewer updates per new task**.

*The paper's method section was not available; this engine implements our reading of it*
(docs/ALGORITHMS_IP2.md).
"""),
    md(r"""
## The equations

A dendritic (DH-SNN) neuron with dendritic and somatic time constants $\tau_d, \tau_s$ and threshold $\theta$:

$$I[t] = x[t] W_{in}^\top + s[t-1] W_{rec}^\top + b, \quad d[t] = \beta\, d[t-1] + (1-\beta)\, I[t]$$

$$u[t] = \alpha\, u[t-1] + (1-\alpha)\, d[t] - \theta\, s[t-1], \quad s[t] = H(u[t] - \theta), \quad
\beta = e^{-dt/\tau_d},\ \alpha = e^{-dt/\tau_s}$$

Fast level: $(\ln\tau_d, \ln\tau_s, \theta)$ of the types with mask $m = 1$ follow Adam on the loss; types with
$m = 0$ never change.
"""),
    code(SETUP),
    md(r"""
## By hand: one step of the neuron

**What to expect** (the specification's worked example, docs/ALGORITHMS_IP2.md §5): $dt = 5$ ms,
two neurons; $d = [0.376959, -0.011750]$, $u = [0.151587, 0.231041]$, and only neuron 1 crosses its
threshold: $s = [0, 1]$.
"""),
    code(r'''
from snncore.rules.ip2 import dh_step

t = lambda *v: torch.tensor(v, dtype=torch.float64)
W_in = t([1.0, 0.5], [-0.5, 1.0]); W_rec = t([0.0, 0.8], [0.4, 0.0]); b = t(0.0, 0.0)
d, u, s = dh_step(t([1.0, 0.0]), t([1.0, 0.0]), t([0.2, 0.0]), t([0.5, 0.3]), W_in, W_rec, b,
                  tau_d=t(20.0, 40.0), tau_s=t(10.0, 20.0), theta=t(0.3, 0.2), dt=5.0)
print("d =", d.numpy().round(6), " u =", u.numpy().round(6), " s =", s.numpy())
assert np.allclose(d.numpy(), [0.376959, -0.011750], atol=1e-6)
assert np.allclose(u.numpy(), [0.151587, 0.231041], atol=1e-6) and s.flatten().tolist() == [0.0, 1.0]
'''),
    md(r"""
Neuron 0 spiked at $t-1$, so its $u$ was lowered by exactly $\theta_0 = 0.3$ (the soft reset).

## Rule Lab: which properties move

A 16-neuron network learns one go/no-go task for 12 updates; here only the threshold $\theta$ is learnable.

**What to expect**: $\tau_d$ and $\tau_s$ stay **exactly** constant (change 0.0); $\theta$ moves (with
$\eta = 0.1$, by up to about 1 in our run).
"""),
    code(r'''
lab = sc.lab.simulate("ip2", mask=["theta"], eta=0.1)
change = {q: float(np.abs(v - v[0]).max()) for q, v in lab.extras["traj"].items()}
print("largest change over the updates:", change)
assert change["tau_d"] == 0.0 and change["tau_s"] == 0.0 and change["theta"] > 0.0
lab.figures["traj_theta"]
'''),
    md(r"""
## A real run: a sequence of tasks

Preset *Intrinsic plasticity: each new task is learned faster*: go/no-go tasks of one family, one after
another; the somatic time constant $\tau_s$ is learnable. The control preset is the same with no learnable
property.

**What to expect** (our seed-0 runs, 6 tasks): updates to criterion 647, 81, 117, 11, 56, 11 with $\tau_s$
learnable; the control speeds up about as much (742, 160, 78, 66, 25, 10), so at this size **most of the
effect is the weights carrying over**, not the intrinsic plasticity. The notebook checks that the last task
needs fewer updates than the first, in both runs. (Small test sizes: 2 short tasks that may not reach the
criterion; only printed.)
"""),
    code(r'''
small = dict(rule_params=dict(n_tasks=2, N=12, max_updates=30)) if SMALL else {}
ip = sc.train(config=PRESETS / "ip2_next_task_faster.toml", **small, **TRAIN)
ctrl = sc.train(config=PRESETS / "ip2_no_intrinsic.toml", **small, **TRAIN)
iters = {}
for name, r in (("tau_s learnable", ip), ("control", ctrl)):
    it = r.metrics["l2l/iterations"].dropna().astype(int).tolist()
    iters[name] = it
    print(f"{name:16s} updates per task: {it}")
if not SMALL:
    assert all(it[-1] < it[0] for it in iters.values())
print(ip.figures())
ip.figure("l2l")
'''),
    code(r'''
ip.figure("hist_tau_s")
'''),
    code(r'''
ctrl.figure("hist_tau_s")                          # frozen: the distribution never moves
'''),
    exercise(r"""
Use `dh_step` with the same numbers but $\tau_d$ so small that $\beta = e^{-dt/\tau_d} \approx 0$ (say
$\tau_d = 10^{-3}$ ms). What is $d$ then, and what kind of neuron is this (the *point-neuron limit*)?
Compare $u$ with the specification's value $[0.396735, 0.211520]$.""", r"""
With $\beta \to 0$, $d[t] = I[t] = [1.0, -0.1]$: the dendrite has no memory and the neuron is a plain
leaky integrate-and-fire point neuron.

```python
d, u, s = dh_step(t([1.0, 0.0]), t([1.0, 0.0]), t([0.2, 0.0]), t([0.5, 0.3]), W_in, W_rec, b,
                  tau_d=t(1e-3, 1e-3), tau_s=t(10.0, 20.0), theta=t(0.3, 0.2), dt=5.0)
d, u      # d = [1.0, -0.1], u = [0.396735, 0.211520]
```"""),
]

# ============================================================================ 06 MPS
NB06 = [
    md(r"""
# 06 · MPS: the network chooses its own plasticity mix

**Idea.** Multi-plasticity synergy (Liu, Deng, Yu, arXiv 2508.13673): every synapse carries one weight per
learning mechanism — surrogate-gradient STBP (`bp`), Hebbian (`hebb`) and self-backpropagation (`sbp`) — and
each neuron mixes them with learnable **shares**. Training decides which mechanism each neuron listens to.

*The paper's method section was not available; this engine implements our reading of it*
(docs/ALGORITHMS_MPS.md).
"""),
    md(r"""
## The equations

Shares per neuron $n$ from logits $Z$ and the current into layer $l$:

$$A_{k,n} = \frac{e^{Z_{k,n}/\tau_a}}{\sum_{k'} e^{Z_{k',n}/\tau_a}}, \qquad I = \sum_k A_k \odot (S_{in} W_k^\top) + b$$

Hebbian mechanism: $\Delta W_{hebb} = \frac{\eta}{TB}\sum_{t,b} \varphi[t,b]\, s_{in}[t,b]^\top$
(`hebbian_delta`); STBP follows the surrogate gradient, SBP a feedback-aligned error.
"""),
    code(SETUP),
    md(r"""
## By hand

**What to expect**: logits $Z = [\ln 2, 0, 0]$ give shares $[0.5, 0.25, 0.25]$ (each neuron's shares sum
to 1); `hebbian_delta` of one input spike and post activity $\varphi = 1$ over $T=2$ steps, $\eta = 0.1$, is
$0.1 \cdot 1 / 2 = 0.05$ on that synapse.
"""),
    code(r'''
from snncore.rules.mps import hebbian_delta

Z = torch.tensor([[np.log(2.0)], [0.0], [0.0]])       # [K mechanisms, 1 neuron]
A = torch.softmax(Z, dim=0)
print("shares (bp, hebb, sbp):", A[:, 0].numpy().round(4))
assert np.allclose(A[:, 0].numpy(), [0.5, 0.25, 0.25])
s_in = torch.zeros(2, 1, 3); s_in[0, 0, 1] = 1        # input 1 spikes once
phi = torch.ones(2, 1, 1)
dW = hebbian_delta(s_in, phi, eta=0.1)
print("Hebbian dW:", dW.numpy())
assert np.allclose(dW.numpy(), [[0.0, 0.05, 0.0]])
'''),
    md(r"""
## Rule Lab

20 inputs → 16 hidden → 2 outputs, 10 updates. **What to expect**: $W_{hebb}$ starts at zero, so the
Hebbian contribution to the current starts at exactly 0 and grows; the shares stay within 0.02 of 1/3 in
so few updates.
"""),
    code(r'''
lab = sc.lab.simulate("mps")
h = lab.history
print("Hebbian contribution to fc1, first and last update:", h["contrib_hebb/fc1"][[0, -1]].round(4))
print("shares fc1 at the end:", {k: round(float(h[f"share_{k}/fc1"][-1]), 3) for k in ("bp", "hebb", "sbp")})
assert h["contrib_hebb/fc1"][0] == 0.0 and h["contrib_hebb/fc1"][-1] > 0.0
assert all(abs(h[f"share_{k}/fc1"][-1] - 1 / 3) < 0.02 for k in ("bp", "hebb", "sbp"))
lab.figures["contrib"]
'''),
    md(r"""
## A real run on digits

Preset *MPS: the network chooses its own plasticity mix* (10 epochs).

**What to expect** (our seed-0 run): the output layer moves away from Hebbian learning: its Hebbian share
falls from 0.33 to 0.26 while SBP rises to 0.39 and STBP to 0.36; test accuracy about 86 %. (Small test
sizes: a few steps only, the shares barely move; only printed.)
"""),
    code(r'''
small = dict(epochs=1, n_train=256) if SMALL else {}
run = sc.train(config=PRESETS / "mps_mechanism_shares.toml", **small, **TRAIN)
tel = run.telemetry
shares = {k: float(tel[f"share_{k}/out"].dropna().iloc[-1]) for k in ("bp", "hebb", "sbp")}
acc = run.metrics["test/accuracy"].dropna().iloc[-1]
print("output-layer shares at the end:", {k: round(v, 3) for k, v in shares.items()}, f"· test accuracy {acc:.1%}")
assert abs(sum(shares.values()) - 1.0) < 1e-4
if not SMALL:
    assert shares["hebb"] < 0.3 and acc > 0.75
print(run.figures())
run.figure("shares_out")
'''),
    code(r'''
run.figure("assign_out")
'''),
    exercise(r"""
Set `mechanisms=["bp", "hebb"]` in `sc.lab.simulate("mps", ...)`. What are the shares at the start now,
and what happens to the `sbp` entries of the history?""", r"""
Two mechanisms start at 1/2 each (equal logits); there is no `sbp` weight, so no `share_sbp/...` series.

```python
r = sc.lab.simulate("mps", mechanisms=["bp", "hebb"])
[k for k in r.history if k.startswith("share")]
```"""),
]

NOTEBOOKS = {
    "01_stdp_from_scratch.ipynb": NB01,
    "02_reward_modulated_stdp.ipynb": NB02,
    "03_ssdp_and_synchrony.ipynb": NB03,
    "04_da_ssdp_gate.ipynb": NB04,
    "05_ip2_learning_to_learn.ipynb": NB05,
    "06_mps_plasticity_mix.ipynb": NB06,
}


def build(name: str, cells: list) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, c in enumerate(nb.cells):            # stable ids: regenerating gives the same file
        c["id"] = f"{Path(name).stem[:2]}-{i:02d}"
    return nb


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        nb = build(name, cells)
        nbformat.validate(nb)
        nbformat.write(nb, HERE / name)
        print("wrote", HERE / name)


if __name__ == "__main__":
    main()
