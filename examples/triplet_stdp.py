"""triplet_stdp: the minimal all-to-all triplet STDP of Pfister & Gerstner (2006), an outside rule.

Source: J.-P. Pfister & W. Gerstner, J. Neurosci. 26(38):9673-9682, 2006, Table 4: the minimal
all-to-all model fitted to the visual-cortex data: A2+ = 0, A3+ = 6.5e-3, A2- = 7.1e-3, A3- = 0,
tau_y = 114 ms; tau_plus = 16.8 ms, tau_minus = 33.7 ms. tau_x is unused there (A3- = 0); its
default is the full model's 101 ms. [Values as we read Table 4; only the full model's set
(tau_y = 125 ms) could be cross-checked here, in NEST's docs.] Our reading: one step = 1 ms.

Traces of synapse i -> j (time in steps, all start at 0 in every batch):
    r1_i[t] = r1_i[t-1] exp(-1/tau_plus)  + s_i[t]      r2_i[t] = r2_i[t-1] exp(-1/tau_x) + s_i[t]
    o1_j[t] = o1_j[t-1] exp(-1/tau_minus) + s_j[t]      o2_j[t] = o2_j[t-1] exp(-1/tau_y) + s_j[t]
    r2_prev = r2 - s_pre and o2_prev = o2 - s_post: the triplet traces just before this step's spike.
Update, summed over t and the batch:
    dW_ji = sum_t s_j[t] r1_i[t] (A2+ + A3+ o2_prev_j[t])  -  s_i[t] o1_j[t] (A2- + A3- r2_prev_i[t])
A pre and a post spike in the same step count as both LTP and LTD (as the built-in pair STDP);
with A3+ = A3- = 0 this is pair STDP with eta_plus = A2+, eta_minus = A2-.
The rule adds eta * dW / B (the batch mean) to its target layers after the optimizer step.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from snncore.rules.base import Rule, StepContext, param


@dataclass
class TripletParams:
    a2_plus: float = param(0.0, 0.0, 1.0, help="pair potentiation A2+")
    a3_plus: float = param(6.5e-3, 0.0, 1.0, help="triplet potentiation A3+ (reads o2 before the post spike)")
    a2_minus: float = param(7.1e-3, 0.0, 1.0, help="pair depression A2-")
    a3_minus: float = param(0.0, 0.0, 1.0, help="triplet depression A3- (reads r2 before the pre spike)")
    tau_plus: float = param(16.8, 1e-3, 1e5, help="pre trace r1 time constant (steps)")
    tau_x: float = param(101.0, 1e-3, 1e5, help="pre triplet trace r2 time constant (steps)")
    tau_minus: float = param(33.7, 1e-3, 1e5, help="post trace o1 time constant (steps)")
    tau_y: float = param(114.0, 1e-3, 1e5, help="post triplet trace o2 time constant (steps)")
    eta: float = param(1.0, 0.0, 100.0, help="scales all four amplitudes (1: the paper's)")
    targets: list[str] = param([], help="layer names to change; empty = the first weight layer")


def triplet_traces_step(state: dict, s_pre: torch.Tensor, s_post: torch.Tensor, p) -> dict:
    """One step of the four traces: decay, then add this step's spikes. state: r1, r2 [B, N_pre],
    o1, o2 [B, N_post] (a new dict; the old one is not changed)."""
    return {"r1": state["r1"] * math.exp(-1 / p.tau_plus) + s_pre,
            "r2": state["r2"] * math.exp(-1 / p.tau_x) + s_pre,
            "o1": state["o1"] * math.exp(-1 / p.tau_minus) + s_post,
            "o2": state["o2"] * math.exp(-1 / p.tau_y) + s_post}


def triplet_delta(pre: torch.Tensor, post: torch.Tensor, p, state: dict | None = None):
    """(dW [N_post, N_pre] summed over time and batch, final traces) for spikes pre [T, B, N_pre],
    post [T, B, N_post]. state: traces to start from (default zeros). Traces are stepped in a loop
    over T (elementwise, cheap); the two sums are one matrix product each over the T*B rows."""
    T, B = pre.shape[:2]
    dt = torch.float64 if torch.float64 in (pre.dtype, post.dtype) else torch.float32
    pre, post = pre.to(dt), post.to(dt)
    if state is None:
        z_pre, z_post = pre.new_zeros(pre.shape[1:]), post.new_zeros(post.shape[1:])
        state = {"r1": z_pre, "r2": z_pre, "o1": z_post, "o2": z_post}
    rows = {k: [] for k in state}
    for t in range(T):
        state = triplet_traces_step(state, pre[t], post[t], p)
        for k in rows:
            rows[k].append(state[k])
    r1, r2, o1, o2 = (torch.stack(rows[k]).reshape(T * B, -1) for k in ("r1", "r2", "o1", "o2"))
    s_pre, s_post = pre.reshape(T * B, -1), post.reshape(T * B, -1)
    ltp = (s_post * (p.a2_plus + p.a3_plus * (o2 - s_post))).T @ r1            # [N_post, N_pre]
    ltd = o1.T @ (s_pre * (p.a2_minus + p.a3_minus * (r2 - s_pre)))            # [N_post, N_pre]
    return ltp - ltd, state


def pairing_window(p, dts=range(-30, 31), pairs: int = 5, period: int = 50) -> np.ndarray:
    """dW of `pairs` pre/post pairings every `period` steps (20 Hz at 1 ms steps) for each
    dt = t_post - t_pre: the protocol of the paper's Fig. 1 (one synapse i -> i per dt)."""
    dts = list(dts)
    T = pairs * period + 2 * max(abs(d) for d in dts) + 1
    pre, post = torch.zeros(T, 1, len(dts), dtype=torch.float64), torch.zeros(T, 1, len(dts), dtype=torch.float64)
    for k, d in enumerate(dts):
        for n in range(pairs):
            t0 = n * period + max(0, -d)
            pre[t0, 0, k], post[t0 + d, 0, k] = 1.0, 1.0
    return torch.diagonal(triplet_delta(pre, post, p)[0]).numpy()


class TripletSTDP(Rule):
    name = "triplet_stdp"
    Params = TripletParams
    summary = "Triplet STDP (Pfister & Gerstner 2006, minimal all-to-all) added to a gradient-trained layer."
    uses_gradient = True

    def __init__(self, params=None, model=None, *, total_steps=1, device="cpu"):
        super().__init__(params, model, total_steps=total_steps, device=device)
        self._stats: dict[str, torch.Tensor] = {}
        self._weights: dict[str, torch.Tensor] = {}

    def after_step(self, ctx: StepContext) -> None:
        names = self.params.targets or list(ctx.layers)[:1]
        with torch.no_grad():
            for name in names:
                if name not in ctx.layers:
                    raise ValueError(f"targets: layer {name!r} not found (layers: {', '.join(ctx.layers)})")
                lt = ctx.layers[name]
                dW = triplet_delta(lt.pre.detach(), lt.post.detach(), self.params)[0]
                dW = self.params.eta * dW / lt.pre.shape[1]
                if torch.distributed.is_available() and torch.distributed.is_initialized():
                    torch.distributed.all_reduce(dW)
                    dW /= torch.distributed.get_world_size()
                lt.weight.add_(dW.reshape(lt.weight.shape).to(lt.weight.dtype))
                self._weights[name] = lt.weight
                self._stats[name] = torch.stack([dW.float().norm(), lt.weight.detach().float().mean()])

    @classmethod
    def panel_builder(cls):           # a one-module rule names its Train panels here
        return triplet_panels

    def telemetry(self) -> dict[str, float]:
        out = {}
        for name, s in self._stats.items():
            out[f"dw/{name}"], out[f"w_mean/{name}"] = (float(v) for v in s.tolist())
        return out

    def arrays(self) -> dict:
        """Per target layer a 40-bin weight histogram (whist/, wedges/), and the 20 Hz pairing
        window (window_dt, window_dw) of the current parameters."""
        out = {}
        for name, w in self._weights.items():
            counts, edges = np.histogram(w.detach().float().cpu().numpy(), bins=40)
            out[f"whist/{name}"], out[f"wedges/{name}"] = counts.astype(np.int64), edges.astype(np.float64)
        out["window_dt"] = np.arange(-30, 31, dtype=np.float64)
        out["window_dw"] = pairing_window(self.params)
        return out


def triplet_panels(view) -> list:
    """Train panels from the snapshots: weight histograms over time, the pairing window (arrays())."""
    from snncore.viz import rules as vr
    from snncore.viz.panels import Figure, layers_of
    items = []
    for layer in layers_of(view.latest, "whist"):
        h = [(s, a[f"whist/{layer}"], a[f"wedges/{layer}"]) for s, a in view.snaps if f"wedges/{layer}" in a]
        items.append(Figure(vr.weight_hist_figure(*zip(*h), layer=layer), f"whist_{layer}"))
    if "window_dw" in view.latest:
        items.append(Figure(vr.stdp_window_figure(view.latest["window_dt"], view.latest["window_dw"],
                                                  title="triplet STDP: 5 pairings at 20 Hz",
                                                  ytitle="dW of 5 pairings"), "window"))
    return items
