"""rstdp: reward-modulated STDP (an eligibility trace gated by a reward prediction error).

Sources: Izhikevich, "Solving the distal reward problem through linkage of STDP and dopamine
signaling", Cereb. Cortex 2007 (eligibility trace of the STDP term, read out by a reward);
Florian, "Reinforcement learning through modulation of STDP", Neural Comput. 2007; Fremaux &
Gerstner, "Neuromodulated STDP and theory of three-factor learning rules", Front. Neural Circuits
2016 (the reward prediction error r - r_bar with a running-mean baseline); the STDP term itself is
the trace form of :mod:`snncore.rules.stdp` (Bi & Poo 1998; Song et al. 2000; Morrison et al. 2008).

Symbols (one plastic weight W [N_post, N_pre], synapse i -> j, steps t = 0..T-1, sample b):
    s_i[t], s_j[t]   pre / post spikes;  x_i[t], y_j[t] their traces (tau_pre, tau_post) as in stdp
    STDP term at t:  L_ji[t] = eta_plus f_plus(W_ji) s_j[t] x_i[t] - eta_minus f_minus(W_ji) y_j[t] s_i[t]
    eligibility:     e_ji[t] = e_ji[t-1] * exp(-1/tau_e) + L_ji[t],   e_ji[-1] = 0
    reward:          r_b = reward_correct (+1) if argmax_c mean_t out[t, b, c] == y_b, else reward_wrong (-1)
    baseline:        r_bar, running mean of the batch-mean reward (EMA with r_decay)
    update:          dW_ji = eta * sum_b (r_b - r_bar) * e_ji,b[T-1]

Since e[T-1] = sum_t exp(-(T-1-t)/tau_e) L[t], the whole update is a weighted STDP sum with the
row weights c[t, b] = exp(-(T-1-t)/tau_e) (r_b - r_bar) folded into the post-side rows:
    dW = eta * ( eta_plus f_plus(W) * (c * post)^T @ x  -  eta_minus f_minus(W) * (c * y)^T @ pre ),
two matrix products over the M = T*B rows, memory O(weights + activations); the per-sample
eligibility [B, N_post, N_pre] is never built.

Our readings (ALGORITHMS.md "rstdp"):
- The eligibility is integrated over the sample's window of T steps and read at its end (t = T-1),
  when the reward for that sample is known; it starts at zero for every batch (states are reset),
  so no eligibility carries over from one batch to the next.
- The reward is per sample (correct / wrong from the output's mean over T); r_bar is one scalar
  for the layer(s), the prediction made *before* this batch: dW uses the old r_bar, then
  r_bar <- r_decay * r_bar + (1 - r_decay) * mean_b r_b. It starts at 0; r_decay = 1 freezes it at
  0 (plain reward, no baseline). Saved in ``state_dict``.
- eta is the learning rate; eta_plus / eta_minus are the relative amplitudes of the STDP term
  (defaults 1 and 1.05, Song et al.'s ratio), so the effective amplitude is eta * eta_plus.
- Timing, targets, bounds and clamping as in stdp: in ``after_step`` (after ``optimizer.step()``),
  in place under ``no_grad``, ``.grad`` untouched, ``uses_gradient = True`` (added to a
  gradient-trained layer); ``targets`` empty = the first weight layer; soft bounds evaluated at
  the current weight, then a clamp to [w_min, w_max] when multiplicative (or ``clip_additive``).
- Under torch.distributed the update and the reward mean are summed / averaged across ranks.
- Telemetry: "reward" (batch-mean reward), "reward_mean" (r_bar after the update), and per target
  layer "dw/<layer>" (Frobenius norm of the update) and "w_mean/<layer>".
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..base import Rule, StepContext, param
from ..stdp import (WINDOW_DT, _all_reduce_sum, _bound_factors, _weighted_stdp_sums, _work_dtype, check_weight_bounds,
                   apply_delta, histogram, resolve_targets, stdp_window, weight_hist_arrays)

__all__ = ["eligibility_weights", "rstdp_delta", "reward_from_output", "RSTDPParams", "RSTDP"]


def eligibility_weights(T: int, tau_e: float, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """w[t] = exp(-(T-1-t)/tau_e), shape [T]: how much the STDP term at t counts at the read-out t = T-1."""
    if not tau_e > 0:
        raise ValueError(f"tau_e must be > 0, got {tau_e}")
    t = torch.arange(T, dtype=dtype, device=device)
    return torch.exp(-(T - 1 - t) / tau_e)


def rstdp_delta(pre: torch.Tensor, post: torch.Tensor, reward: torch.Tensor, r_bar=0.0, *,
                weight: torch.Tensor | None = None, tau_pre: float = 5.0, tau_post: float = 5.0,
                tau_e: float = 20.0, eta: float = 1e-3, eta_plus: float = 1.0,
                eta_minus: float = 1.05, bounds: str = "additive", w_min: float = -1.0,
                w_max: float = 1.0) -> torch.Tensor:
    """The R-STDP update dW [N_post, N_pre] = eta * sum_b (r_b - r_bar) e_b[T-1].

    pre [T, B, N_pre], post [T, B, N_post] spikes; reward [B] per sample; r_bar a number or a
    0-d tensor. ``weight`` is needed only for multiplicative bounds. Float64 if any input is.
    """
    dtype = _work_dtype(pre, post, weight)
    T, B = pre.shape[0], pre.shape[1]
    reward = torch.as_tensor(reward, device=pre.device).to(dtype).reshape(-1)
    if reward.numel() != B:
        raise ValueError(f"reward has {reward.numel()} entries for a batch of {B}")
    rpe = reward - torch.as_tensor(r_bar, device=pre.device).to(dtype)                  # [B]
    c = eligibility_weights(T, tau_e, dtype=dtype, device=pre.device)[:, None] * rpe[None, :]  # [T, B]
    f_plus, f_minus = _bound_factors(weight, bounds, w_min, w_max, dtype)
    ltp, ltd = _weighted_stdp_sums(pre, post, c, tau_pre=tau_pre, tau_post=tau_post, dtype=dtype)
    return eta * (eta_plus * f_plus * ltp - eta_minus * f_minus * ltd)


def reward_from_output(out: torch.Tensor, y: torch.Tensor, correct: float = 1.0,
                       wrong: float = -1.0) -> torch.Tensor:
    """Per-sample reward [B]: ``correct`` where argmax_c mean_t out[t, b, c] == y_b, else ``wrong``.

    out: [T, B, C] (or [B, C], already reduced over time).
    """
    scores = out.detach().float()
    if scores.dim() == 3:
        scores = scores.mean(0)
    hit = scores.argmax(-1) == y.to(scores.device)
    return torch.where(hit, torch.tensor(correct, device=scores.device), torch.tensor(wrong, device=scores.device))


@dataclass
class RSTDPParams:
    tau_pre: float = param(5.0, lo=1e-3, help="presynaptic trace time constant (steps)")
    tau_post: float = param(5.0, lo=1e-3, help="postsynaptic trace time constant (steps)")
    tau_e: float = param(20.0, lo=1e-3, help="eligibility trace time constant (steps)")
    eta: float = param(1e-3, lo=0.0, hi=1.0, help="learning rate of the reward-gated update")
    eta_plus: float = param(1.0, lo=0.0, help="relative potentiation amplitude of the STDP term")
    eta_minus: float = param(1.05, lo=0.0, help="relative depression amplitude of the STDP term")
    r_decay: float = param(0.9, lo=0.0, hi=1.0, help="EMA decay of the reward baseline r_bar (1 = no baseline)")
    reward_correct: float = param(1.0, help="reward of a correctly classified sample")
    reward_wrong: float = param(-1.0, help="reward of a misclassified sample")
    bounds: str = param("additive", choices=("additive", "multiplicative"),
                        help="weight dependence: additive f=1, or multiplicative soft bounds")
    w_min: float = param(-1.0, help="lower weight bound (soft bound; clamp when multiplicative)")
    w_max: float = param(1.0, help="upper weight bound (soft bound; clamp when multiplicative)")
    clip_additive: bool = param(False, help="also clamp to [w_min, w_max] in additive mode (hard bounds)")
    targets: list[str] = param([], help="layer names to change; empty = the first weight layer")

    def __post_init__(self):
        check_weight_bounds(self)


class RSTDP(Rule):
    name = "rstdp"
    conv_targets = "first"        # on conv models the first weight layer (the conv stem): targets must name Linear ones
    Params = RSTDPParams
    summary = "Reward-modulated STDP: eligibility trace x (reward - running mean reward)."
    uses_gradient = True

    def __init__(self, params=None, model=None, *, total_steps=1, device="cpu"):
        super().__init__(params, model, total_steps=total_steps, device=device)
        self.r_bar = torch.zeros((), device=self.device)      # reward baseline, kept on the device
        self._reward = None                                   # last batch-mean reward (tensor)
        self._weights: dict[str, torch.Tensor] = {}
        self._stats: dict[str, torch.Tensor] = {}

    def _kw(self) -> dict:
        p = self.params
        return dict(tau_pre=p.tau_pre, tau_post=p.tau_post, tau_e=p.tau_e, eta=p.eta,
                    eta_plus=p.eta_plus, eta_minus=p.eta_minus, bounds=p.bounds,
                    w_min=p.w_min, w_max=p.w_max)

    def after_step(self, ctx: StepContext) -> None:
        p = self.params
        clamp = (p.w_min, p.w_max) if (p.bounds == "multiplicative" or p.clip_additive) else None
        with torch.no_grad():
            reward = reward_from_output(ctx.out, ctx.y, p.reward_correct, p.reward_wrong)   # [B]
            r_bar = self.r_bar.to(reward.device)
            for name in resolve_targets(p.targets, ctx.layers):
                lt = ctx.layers[name]
                dW = rstdp_delta(lt.pre.detach(), lt.post.detach(), reward, r_bar,
                                 weight=lt.weight, **self._kw())
                dW = _all_reduce_sum(dW)
                apply_delta(lt.weight, dW, clamp=clamp)
                self._weights[name] = lt.weight
                self._stats[name] = torch.stack([dW.float().norm(), lt.weight.detach().float().mean()])
            tot = _all_reduce_sum(torch.stack([reward.sum(), torch.tensor(float(reward.numel()), device=reward.device)]))
            mean_r = tot[0] / tot[1]
            self._reward = mean_r
            self.r_bar = p.r_decay * r_bar + (1.0 - p.r_decay) * mean_r

    def telemetry(self) -> dict[str, float]:
        if self._reward is None:
            return {}
        out = {"reward": float(self._reward), "reward_mean": float(self.r_bar)}
        for name, s in self._stats.items():
            dw, mean = s.tolist()
            out[f"dw/{name}"] = float(dw)
            out[f"w_mean/{name}"] = float(mean)
        return out

    def arrays(self) -> dict:
        """For the app, at each snapshot: per target layer ``whist/<layer>`` / ``wedges/<layer>``
        (40-bin weight histogram, as in stdp) and the window of the STDP term per unit of reward
        prediction error, ``window_dt`` (-20..20 steps) / ``window_dw`` = eta * W(dt) (the eligibility
        read at the end of the window, before the (r - r_bar) factor)."""
        p = self.params
        bounded = p.bounds == "multiplicative" or p.clip_additive
        out = weight_hist_arrays(self._weights, (p.w_min, p.w_max) if bounded else None)
        out["window_dt"] = WINDOW_DT.astype(np.float64)
        out["window_dw"] = p.eta * stdp_window(WINDOW_DT, p.tau_pre, p.tau_post, p.eta_plus,
                                               p.eta_minus).numpy()
        return out

    def weight_histogram(self, layer: str, bins: int = 20):
        """(edges [bins+1], counts [bins]) of a target layer's weight as last updated (CPU tensors)."""
        w = self._weights.get(layer)
        if w is None and self.model is not None:
            w = getattr(dict(self.model.named_modules()).get(layer), "weight", None)
        if w is None:
            raise KeyError(f"no weight seen for layer {layer!r} (seen: {', '.join(self._weights) or 'none'})")
        p = self.params
        return histogram(w, bins, (p.w_min, p.w_max) if p.bounds == "multiplicative" else None)

    def state_dict(self) -> dict:
        return {"r_bar": float(self.r_bar)}

    def load_state_dict(self, state: dict) -> None:
        if "r_bar" in state:
            self.r_bar = torch.tensor(float(state["r_bar"]), device=self.device)
