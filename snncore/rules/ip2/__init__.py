"""ip2: bi-level intrinsic plasticity in a recurrent SNN (IP^2-RSNN), learning to learn.

Source: Yu, Jin, Hao, Xiao, Yan, Yu, Zheng, Pan, "IP^2-RSNN: bi-level intrinsic plasticity enables
learning-to-learn in recurrent spiking neural networks", arXiv 2501.14539 (v5, 2025); journal
version in Neural Networks (2026). It builds on the learning-to-learn protocol of Goudar et al.
(Nat. Neurosci. 2023) and the dendritic neuron of DH-SNN (Zheng et al., Nat. Commun. 2024).

Note: the paper's method section was not available; this is our reading of it. The specification is
/work/shared/docs/ALGORITHMS_IP2.md; every choice marked [ours] below is our reading, not the paper.

Symbols (shapes; time is the first axis)
    x [T,B,D]      input currents (stimulus, fixation, cue/context channels)
    s [B,N]        spikes of the N recurrent neurons, 0/1
    d [B,N,K]      dendritic current of K branches (K = 1 by default, then d [B,N])
    u [B,N]        somatic membrane potential
    y [B,O]        non-spiking read-out (O = response channels + 1 fixation channel)
    tau_d [N,K], tau_s [N] (ms), theta [N]: per-neuron heterogeneous intrinsic properties,
                   stored as rho_d = ln tau_d, rho_s = ln tau_s and theta
    beta = exp(-dt/tau_d), alpha = exp(-dt/tau_s), kappa = exp(-dt/tau_out) (tau_out = 100 ms)

Neuron [ours, DH-SNN form], state all zeros at trial onset, for t = 1..T:
    I[t] = x[t] W_in^T + s[t-1] W_rec^T + b              (viewed [B,N,K]; with K > 1 each branch
                                                          sees a fixed random 1/K of the inputs)
    d[t] = beta * d[t-1] + (1 - beta) * I[t]
    u[t] = alpha * u[t-1] + (1 - alpha) * sum_k d[t] - theta * s[t-1]   (soft reset, one step late)
    s[t] = H(u[t] - theta)        backward: SpikingJelly surrogate.ATan(alpha=2)
    y[t] = kappa * y[t-1] + (1 - kappa) * (s[t] W_out^T + b_out)        (never thresholded)
Point-neuron limit (neuron="point"): beta = 0, i.e. d = I, a plain LIF RSNN ("standard RSNN").

Loss [review names the terms; forms ours/base]:
    L = L_task + lambda_h |mean(u^2) - sigma_h| + lambda_I mean(W_in^2) + lambda_R mean(W_rec^2)
        + lambda_O mean(W_out^2)
    L_task = softmax cross-entropy of y[t] against the target channel, averaged over the (t, b)
    where loss_mask is true (every step except a grace window after fixation ends).
    sigma_h is unset (term off) during task 1, then set once to mean(u^2) over task 1's last 10
    updates [ours].

Two levels. A mask m in {0,1}^3 over the property TYPES (tau_d, tau_s, theta), shared by all
neurons.
  * Slow level, once per task family, then frozen [ours]: meta_mode="search" runs the protocol
    from the same initial network (same seed) for k_pilot tasks with each candidate mask (the
    three one-hot masks plus "none"; candidates="all": the 7 non-empty subsets plus "none");
    score = mean iterations-to-criterion over tasks 2..k_pilot + max_updates per failed task;
    lowest wins, ties go to fewer learnable types (then candidate order). A fresh network from
    the same seed then runs the main sequence with the chosen mask. meta_mode="fixed": mask given.
  * Fast level, every update: Adam with one parameter group per learnable property type (lr eta,
    on the log-tau and theta scales) beside the weights' group (lr lr_w). Properties with m_j = 0
    get requires_grad=False and are not given to the optimizer: they stay bit-identical.
    Learnable properties are clamped after each step: tau in [5, 2000] ms, theta in [0.05, 2].
  * Weights and intrinsics carry over from task to task; Adam moments are reset at each new task.

Protocol (section 3): a task = fresh random stimuli (10-d unit vectors, orthonormalised) under the
family's fixed rule; a task is learned when the mean L_task over the last `win` updates is below
`crit`; it fails after `max_updates`. The learning-to-learn (L2L) curve is iterations-to-criterion
per task, fitted by a*exp(-k/tau) + c over tasks k = 2..n (k = 1-based task number) [ours: k].
The task families are the l2l_tasks dataset (snncore.data.l2l_tasks; re-exported here).

[ours] readings, named:
  1. the DH-SNN neuron form above, soft reset by theta*s[t-1] one step late, K = 1 by default;
  2. log-tau storage, the clamps, init W_in ~ N(0,1/D), W_rec ~ N(0,0.25/N), W_out = 0,
     tau_d ~ U(50,300), tau_s ~ U(20,100), theta = 0.5;
  3. the mask is per property type (a per-neuron mask is not implemented);
  4. the slow-level score (mean over tasks 2..k_pilot, + max_updates per failure) and tie rule;
  5. sigma_h set from task 1's last 10 updates; all regularisers are means of squares (the full
     setting's "10 largest singular values of W_rec" is not implemented);
  6. the task generators: reduced timing (T=20, dt=100 ms) stimulus steps 0-4, fixation input and
     target steps 0-14, response steps 15-19, grace step 15 (epochs scale with T as fractions
     1/4, 3/4); input channels [0:10] stimulus, [10] fixation, [11] no-go cue (GNG-DR, on during
     the response epoch of no-go trials) or [11:13] context one-hot (CD-DMS, on during fixation);
     DMS shows the sample at steps 0-4 and the test at steps 10-14 (delay 5-9); output channel 0
     is fixation; GNG-DR image i -> channel 1+i; DMS channel 1 = match, 2 = non-match; CD-DMS
     context A answers channel 1 on match, context B answers channel 1 on non-match (channel 2
     otherwise);
  7. the L2L fit's abscissa k = task number, the fit's fallback a grid over tau with a, c by least
     squares.

Implementation notes: the input projection x W_in^T + b is formed for all T at once and the
read-out's linear recurrence is applied as one [T,T] matrix after the loop (same values as
readout_step to rounding); only the recurrent part loops over T. The protocol runs with one torch
thread by default (IP2Params.threads): the matrices are tiny and a 2-thread pool on a busy 2-core
box made each matmul ~1000x slower.
"""
from __future__ import annotations

import itertools
import math
import time
import warnings
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ...data.l2l_tasks import STIM_DIM, Task, TaskFamily, make_family  # noqa: F401 -- the spec's make_family
from ...models.rsnn import (PROPS, RSNN, TAU_MAX, TAU_MIN, THETA_MAX, THETA_MIN,  # noqa: F401
                            mask_key, normalize_mask, spike_fn)
from ...threads import torch_threads   # tiny matrices: the protocol runs single-threaded by default
from ..base import Rule, param

# ----------------------------------------------------------------------------- pure functions

def dh_step(x, s_prev, d_prev, u_prev, W_in, W_rec, b, tau_d, tau_s, theta, dt):
    """One DH-SNN step with K = 1 branch. Returns (d, u, s), each [B,N] (or [N] unbatched).

    x [B,D], s_prev/d_prev/u_prev [B,N], W_in [N,D], W_rec [N,N], b [N], tau_d [N] (or [N,1]),
    tau_s [N], theta [N], dt in ms. tau_d = 0 gives beta = 0 (the point neuron).
    """
    if tau_d.dim() == 2:
        tau_d = tau_d[:, 0]
    I = x @ W_in.T + s_prev @ W_rec.T + b
    beta = torch.exp(-dt / tau_d)
    alpha = torch.exp(-dt / tau_s)
    d = beta * d_prev + (1 - beta) * I
    u = alpha * u_prev + (1 - alpha) * d - theta * s_prev
    s = spike_fn(u - theta)
    return d, u, s


def readout_step(s, y_prev, W_out, b_out, tau_out, dt):
    """y = kappa y_prev + (1 - kappa)(s W_out^T + b_out), kappa = exp(-dt/tau_out). Not thresholded."""
    kappa = math.exp(-dt / tau_out) if not torch.is_tensor(tau_out) else torch.exp(-dt / tau_out)
    return kappa * y_prev + (1 - kappa) * (s @ W_out.T + b_out)


def homeostatic_term(u: torch.Tensor, sigma_h: float | None, lambda_h: float) -> torch.Tensor:
    """lambda_h |mean(u^2) - sigma_h|; zero while sigma_h is unset (task 1)."""
    if sigma_h is None:
        return u.new_zeros(())
    return lambda_h * (u.pow(2).mean() - sigma_h).abs()


def ip2_loss(y, u, target, loss_mask, model: "RSNN", *, lambda_h: float, lambda_I: float,
             lambda_R: float, lambda_O: float, sigma_h: float | None = None):
    """The section-2 loss. y [T,B,O], u [T,B,N], target [T,B] long, loss_mask [T,B] bool.

    Returns (L, L_task, mean_u2) as tensors (L_task and mean_u2 for logging, mean_u2 detached).
    """
    m = loss_mask.bool()
    l_task = F.cross_entropy(y[m], target[m])
    L = (l_task + homeostatic_term(u, sigma_h, lambda_h)
         + lambda_I * model.W_in.pow(2).mean() + lambda_R * model.W_rec.pow(2).mean()
         + lambda_O * model.W_out.pow(2).mean())
    return L, l_task, u.detach().pow(2).mean()


def l2l_fit(iterations: Sequence[float]) -> tuple[float, float, float]:
    """Fit iterations[k-1] ~ a exp(-k/tau) + c over tasks k = 2..n (k the 1-based task number).

    scipy.optimize.curve_fit started from the best point of a log grid over tau (a, c by linear
    least squares for each tau); the grid result is the fallback when curve_fit fails or is worse.
    Fewer than 3 usable points, or a flat curve: (0, nan, mean).
    """
    y_all = np.asarray(list(iterations), dtype=float)
    k = np.arange(1, len(y_all) + 1, dtype=float)[1:]
    y = y_all[1:]
    ok = np.isfinite(y)
    k, y = k[ok], y[ok]
    if len(y) == 0:
        return (float("nan"), float("nan"), float("nan"))
    if len(y) < 3 or np.ptp(y) == 0:
        return (0.0, float("nan"), float(y.mean()))

    def f(kk, a, tau, c):
        return a * np.exp(-kk / tau) + c

    span = max(k[-1] - k[0], 1.0)
    best = None
    for tau in np.geomspace(0.05, 100 * span, 400):
        A = np.stack([np.exp(-k / tau), np.ones_like(k)], 1)
        coef, *_ = np.linalg.lstsq(A, y, rcond=None)
        sse = float(np.sum((A @ coef - y) ** 2))
        if best is None or sse < best[0]:
            best = (sse, float(coef[0]), float(tau), float(coef[1]))
    sse0, a0, tau0, c0 = best
    try:
        from scipy.optimize import curve_fit
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p, _ = curve_fit(f, k, y, p0=(a0, tau0, c0),
                             bounds=([-np.inf, 1e-3, -np.inf], [np.inf, 1e6, np.inf]), maxfev=20000)
        sse = float(np.sum((f(k, *p) - y) ** 2))
        if np.all(np.isfinite(p)) and sse <= sse0 * (1 + 1e-9) + 1e-12:
            return (float(p[0]), float(p[1]), float(p[2]))
    except Exception:   # noqa: BLE001 -- any solver failure falls back to the grid
        pass
    return (a0, tau0, c0)


# ----------------------------------------------------------------------------- the network
# RSNN, its spike function and the mask helpers live in snncore.models.rsnn (the model registry builds
# the network without importing rules); they are re-exported here at their old paths.

def make_optimizer(model: RSNN, mask, lr_w: float, eta: float, *, kind: str = "adam",
                   beta1: float = 0.9) -> torch.optim.Optimizer:
    """Fresh optimizer: the weights' group (lr_w) + one group per learnable property (lr eta)."""
    groups = [{"params": model.weights(), "lr": lr_w, "name": "weights"}]
    for p in normalize_mask(mask):
        groups.append({"params": [model.prop_param(p)], "lr": eta, "name": p})
    if kind == "adam":
        return torch.optim.Adam(groups, betas=(beta1, 0.999))
    if kind == "sgd":
        return torch.optim.SGD(groups)
    raise ValueError(f"optimizer kind must be 'adam' or 'sgd', got {kind!r}")


# ----------------------------------------------------------------------------- hyperparameters

@dataclass
class IP2Params:
    """Reduced setting by default (2-core CPU); IP2Params.full() gives the full (GPU) setting."""
    family: str = param("gng_dr", choices=TaskFamily.NAMES, help="task family")
    n_img: int = param(2, 2, STIM_DIM, help="images per task (GNG-DR-n: n response channels)")
    p_nogo: float = param(0.5, 0.0, 1.0, help="GNG-DR: fraction of no-go trials (0 = Goudar's task)")
    neuron: str = param("dh", choices=("dh", "point"), help="dendritic (DH-SNN) or point LIF (beta=0)")
    K: int = param(1, 1, 8, help="dendritic branches per neuron")
    dt: float = param(100.0, 0.0, 1000.0, lo_open=True, help="time step (ms)")
    T: int = param(20, 4, 100000, help="time steps per trial")
    N: int = param(48, 1, 100000, help="recurrent neurons")
    batch: int = param(8, 1, 4096, help="trials per update")
    tau_out: float = param(100.0, 0.0, 100000.0, lo_open=True, help="read-out time constant (ms)")
    lr_w: float = param(3e-3, 0.0, 1.0, help="Adam lr of the weights")
    eta: float = param(3e-2, 0.0, 1.0, help="Adam lr of each learnable intrinsic property (log-tau, theta)")
    adam_beta1: float = param(0.9, 0.0, 0.999, help="Adam beta1 (full setting: 0.3)")
    clip: float = param(0.0, 0.0, 1e6, help="gradient-norm clip (0 = off; full setting: 1)")
    lambda_h: float = param(0.05, 0.0, 100.0, help="homeostatic weight on |mean(u^2) - sigma_h|")
    lambda_I: float = param(1e-4, 0.0, 100.0, help="L2 weight on W_in")
    lambda_R: float = param(1e-3, 0.0, 100.0, help="L2 weight on W_rec")
    lambda_O: float = param(1e-2, 0.0, 100.0, help="L2 weight on W_out")
    homeo_win: int = param(10, 1, 100000, help="task-1 updates averaged to set sigma_h")
    win: int = param(10, 1, 100000, help="criterion window (updates)")
    crit: float = param(0.05, 0.0, 100.0, lo_open=True, help="criterion on mean L_task over the window")
    max_updates: int = param(2000, 1, 10_000_000, help="updates before a task counts as failed")
    n_tasks: int = param(40, 1, 100000, help="tasks in the main sequence")
    meta_mode: str = param("search", choices=("search", "fixed"), help="slow level: pilot search or a given mask")
    mask: list = param(["tau_d"], choices=PROPS, help="learnable property types (meta_mode=fixed)")
    candidates: str = param("onehot", choices=("onehot", "all"),
                            help="slow-level candidates: one-hot masks or all 7 subsets (+ none)")
    k_pilot: int = param(15, 1, 100000, help="tasks per candidate in the slow-level pilot")
    eff_last: int = param(10, 1, 100000, help="tasks averaged for the final efficiency")
    threads: int = param(1, 0, 256, help="torch threads while the protocol runs (0 = leave as is)")

    @classmethod
    def full(cls, **over) -> "IP2Params":
        """The full setting of section 3 (GPU work)."""
        vals = dict(dt=1.0, T=2000, N=100, batch=1, win=50, crit=0.005, max_updates=20000,
                    n_tasks=1000, lr_w=1e-4, adam_beta1=0.3, clip=1.0, lambda_h=5e-4, lambda_I=1e-4,
                    lambda_R=1e-3, lambda_O=0.1, k_pilot=50, eff_last=100)
        vals.update(over)
        return cls(**vals)


def candidate_masks(kind: str = "onehot") -> list[list[str]]:
    """The slow level's candidates: one-hot masks (or all 7 non-empty subsets), then "none"."""
    if kind == "onehot":
        subs = [[p] for p in PROPS]
    elif kind == "all":
        subs = [list(c) for r in (1, 2, 3) for c in itertools.combinations(PROPS, r)]
    else:
        raise ValueError(f"candidates must be 'onehot' or 'all', got {kind!r}")
    return subs + [[]]


# ----------------------------------------------------------------------------- the protocol

def _prop_values(model: RSNN, name: str) -> torch.Tensor:
    with torch.no_grad():
        if name == "tau_d":
            return model.tau_d.mean(-1).detach().clone()
        if name == "tau_s":
            return model.tau_s.detach().clone()
        return model.theta.detach().clone()


def snapshot(model: RSNN, n_single: int = 5) -> dict:
    """Mean, quartiles, a few single neurons and all values of tau_d, tau_s, theta."""
    N = model.N
    idx = sorted(set(np.linspace(0, N - 1, min(n_single, N)).round().astype(int).tolist()))
    out = {"neurons": idx}
    for p in PROPS:
        v = _prop_values(model, p).double()
        q = torch.quantile(v, torch.tensor([0.25, 0.5, 0.75], dtype=v.dtype, device=v.device))
        out[p] = {"mean": float(v.mean()), "q25": float(q[0]), "median": float(q[1]),
                  "q75": float(q[2]), "single": v[idx].tolist(), "values": v.tolist()}
    return out


class L2LRunner:
    """State of one learning-to-learn sequence: network, family, sigma_h, the current task.

    start_task() draws the next task and makes a fresh optimizer (moments reset); update() does one
    masked gradient step; weights and intrinsics carry over between tasks.
    """

    def __init__(self, params: IP2Params, mask, seed: int = 0, device: str | torch.device = "cpu"):
        self.p = params
        self.device = torch.device(device)
        self.mask = normalize_mask(mask)
        self.seed = int(seed)
        self.family = make_family(params.family, n_img=params.n_img, p_nogo=params.p_nogo,
                                  seed=self.seed, T=params.T)
        self.model = RSNN(self.family.D, params.N, self.family.O, K=params.K, dt=params.dt,
                          tau_out=params.tau_out, neuron=params.neuron, mask=self.mask,
                          seed=self.seed).to(self.device)
        self.gen = torch.Generator().manual_seed(self.seed + 7919)   # trial sampling
        self.sigma_h: float | None = None
        self.task: Task | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.task_index = 0
        self.n_updates = 0
        self._l_task = deque(maxlen=params.win)
        self._u2 = deque(maxlen=params.homeo_win)
        self.last_batch = None

    def start_task(self) -> Task:
        self.task = self.family.new_task()
        self.task_index += 1
        self.n_updates = 0
        self._l_task.clear()
        self._u2.clear()
        self.optimizer = make_optimizer(self.model, self.mask, self.p.lr_w, self.p.eta,
                                        beta1=self.p.adam_beta1)
        return self.task

    def update(self, batch=None) -> dict:
        with torch_threads(self.p.threads):
            return self._update(batch)

    def _update(self, batch) -> dict:
        p = self.p
        x, target, lmask = batch if batch is not None else self.task.batch(p.batch, self.gen)
        x, target, lmask = x.to(self.device), target.to(self.device), lmask.to(self.device)
        self.last_batch = (x, target, lmask)
        y, rec = self.model(x)
        L, l_task, mu2 = ip2_loss(y, rec["u"], target, lmask, self.model, lambda_h=p.lambda_h,
                                  lambda_I=p.lambda_I, lambda_R=p.lambda_R, lambda_O=p.lambda_O,
                                  sigma_h=self.sigma_h)
        self.optimizer.zero_grad(set_to_none=True)
        L.backward()
        if p.clip > 0:
            torch.nn.utils.clip_grad_norm_([q for g in self.optimizer.param_groups for q in g["params"]], p.clip)
        self.optimizer.step()
        self.model.clamp_()
        self.n_updates += 1
        lt, m2 = float(l_task.detach()), float(mu2)
        self._l_task.append(lt)
        self._u2.append(m2)
        return {"task": self.task_index, "update": self.n_updates, "loss": float(L.detach()), "l_task": lt,
                "mean_u2": m2, "sigma_h": float("nan") if self.sigma_h is None else self.sigma_h}

    def state_dict(self) -> dict:
        """What a resume at a task boundary needs (weights, intrinsics, RNG streams, sigma_h);
        the optimizer is rebuilt per task anyway. Plain tensors only (weights_only loading)."""
        return {"model": self.model.state_dict(), "family_rng": self.family._g.get_state(),
                "family_count": self.family._count, "trial_rng": self.gen.get_state(),
                "sigma_h": self.sigma_h, "task_index": self.task_index}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.family._g.set_state(state["family_rng"].cpu())
        self.family._count = int(state["family_count"])
        self.gen.set_state(state["trial_rng"].cpu())
        self.sigma_h = state["sigma_h"]
        self.task_index = int(state["task_index"])

    def criterion_met(self) -> bool:
        return len(self._l_task) == self.p.win and sum(self._l_task) / self.p.win < self.p.crit

    def end_task(self) -> None:
        if self.sigma_h is None and self._u2:       # set once, at the end of task 1
            self.sigma_h = float(sum(self._u2) / len(self._u2))

    @torch.no_grad()
    def trial_trace(self, n_trace: int = 3) -> dict:
        """One trial of the current task (sample 0 of a fresh batch): raster, u/d traces, y, target."""
        x, target, lmask = self.task.batch(1, torch.Generator().manual_seed(self.seed + self.task_index))
        y, rec = self.model(x.to(self.device), record=True)
        idx = list(range(min(n_trace, self.model.N)))
        return {"s": rec["s"][:, 0].bool().tolist(), "u": rec["u"][:, 0, idx].T.tolist(),
                "d": rec["d"][:, 0, idx].T.tolist(), "y": y[:, 0].T.tolist(),
                "target": target[:, 0].tolist(), "loss_mask": lmask[:, 0].tolist(), "neurons": idx}


def _means(model: RSNN) -> dict:
    return {f"{p}_mean": float(_prop_values(model, p).mean()) for p in PROPS}


def run_sequence(params: IP2Params, mask, seed: int = 0, n_tasks: int | None = None,
                 on_update: Callable[[dict], Any] | None = None,
                 on_task: Callable[[dict], Any] | None = None, *,
                 should_stop: Callable[[], bool] | None = None, phase: str = "main",
                 device: str | torch.device = "cpu", resume: dict | None = None) -> dict:
    """Run the L2L protocol for n_tasks tasks of params.family with a frozen mask.

    Returns {"mask", "iterations" (per task; max_updates for a failure), "failed" (bools),
    "failures", "failed_tasks" (1-based), "snapshots" (initial + one per task), "sigma_h", "fit"
    (a, tau, c) over tasks 2..n, "final_efficiency" (mean of the last eff_last tasks),
    "ms_per_update", "stopped"}. on_update(dict) after each update, on_task(dict) after each task;
    on_task's info["resume_state"]() returns the sequence state at that task boundary, and
    `resume=` that state continues the sequence from there (same result as running through).
    """
    with torch_threads(params.threads):
        return _run_sequence(params, mask, seed, n_tasks, on_update, on_task, should_stop, phase, device,
                             resume)


def _run_sequence(params, mask, seed, n_tasks, on_update, on_task, should_stop, phase, device,
                  resume=None) -> dict:
    n_tasks = params.n_tasks if n_tasks is None else int(n_tasks)
    r = L2LRunner(params, mask, seed, device)
    iters, failed, snaps = [], [], [snapshot(r.model)]
    stopped = False
    t_total, n_total = 0.0, 0
    if resume is not None:
        r.load_state_dict(resume["runner"])
        iters, failed, snaps = list(resume["iters"]), list(resume["failed"]), list(resume["snaps"])
        t_total, n_total = float(resume["t_total"]), int(resume["n_total"])

    def state():
        return {"runner": r.state_dict(), "iters": list(iters), "failed": list(failed), "snaps": list(snaps),
                "t_total": t_total, "n_total": n_total}

    for _ in range(n_tasks - len(iters)):
        r.start_task()
        done = False
        t0 = time.perf_counter()
        while r.n_updates < params.max_updates:
            if should_stop is not None and should_stop():
                stopped = True
                break
            info = r.update()
            if on_update is not None:
                info.update(_means(r.model))
                info["phase"] = phase
                on_update(info)
            if r.criterion_met():
                done = True
                break
        t_total += time.perf_counter() - t0
        n_total += r.n_updates
        if stopped:
            break
        r.end_task()
        iters.append(r.n_updates)
        failed.append(not done)
        snaps.append(snapshot(r.model))
        if on_task is not None:
            on_task({"phase": phase, "mask": list(r.mask), "task": r.task_index,
                     "iterations": r.n_updates, "failed": not done, "snapshot": snaps[-1],
                     "iterations_so_far": list(iters), "sigma_h": r.sigma_h,
                     "trial": r.trial_trace(), "resume_state": state})
    eff = iters[-params.eff_last:]
    return {"mask": list(r.mask), "iterations": iters, "failed": failed, "failures": int(sum(failed)),
            "failed_tasks": [i + 1 for i, f in enumerate(failed) if f], "snapshots": snaps,
            "sigma_h": r.sigma_h, "fit": l2l_fit(iters) if len(iters) >= 2 else None,
            "final_efficiency": float(np.mean(eff)) if eff else float("nan"),
            "ms_per_update": 1000.0 * t_total / max(n_total, 1), "stopped": stopped,
            "seed": int(seed), "family": params.family}


def pilot_score(iterations: Sequence[int], failed: Sequence[bool], max_updates: int) -> float:
    """Mean iterations over tasks 2..K (task 1 alone if K = 1) + max_updates per failed task."""
    its = list(iterations[1:]) or list(iterations[:1])
    if not its:
        return float("inf")
    return float(np.mean(its)) + max_updates * float(sum(failed))


def slow_level_search(params: IP2Params, seed: int = 0, candidates=None, k_pilot: int | None = None, *,
                      on_update=None, on_task=None, should_stop=None, details: dict | None = None,
                      device: str | torch.device = "cpu", resume: dict | None = None):
    """The slow level: each candidate mask runs k_pilot tasks from the same initial network (same
    seed); the lowest pilot score wins (ties: fewer learnable types, then candidate order).

    Returns (best_mask, scores) with scores {mask_key: score}. If `details` is a dict it receives
    each candidate's pilot result. `resume` = {"scores", "details", "current": mask_key,
    "sequence": run_sequence state} continues an interrupted search: finished candidates keep their
    scores, the current one continues its sequence.
    """
    if candidates is None or isinstance(candidates, str):
        candidates = candidate_masks(candidates or params.candidates)
    candidates = [normalize_mask(c) for c in candidates]
    k_pilot = params.k_pilot if k_pilot is None else int(k_pilot)
    scores: dict[str, float] = {}
    ranked = []
    done = dict(resume["scores"]) if resume else {}
    for order, cand in enumerate(candidates):
        key = mask_key(cand)
        if key in done:                                   # finished before the interruption
            scores[key] = done[key]
            if details is not None and key in resume.get("details", {}):
                details[key] = resume["details"][key]
            ranked.append((done[key], len(cand), order, cand))
            continue
        seq = resume["sequence"] if resume and resume.get("current") == key else None
        res = run_sequence(params, cand, seed, k_pilot, on_update, on_task, should_stop=should_stop,
                           phase=f"pilot:{key}", device=device, resume=seq)
        sc = pilot_score(res["iterations"], res["failed"], params.max_updates)
        scores[mask_key(cand)] = sc
        if details is not None:
            details[mask_key(cand)] = res
        ranked.append((sc, len(cand), order, cand))
        if res["stopped"]:
            break
    best = min(ranked)[3] if ranked else []
    return list(best), scores


# ----------------------------------------------------------------------------- the rule object

class IP2(Rule):
    """IP^2-RSNN. Runs its own task-sequence loop: the Trainer calls run_loop(sink) (loop.py)
    instead of the dataset loop; the hooks are empty. One checkpoint per task."""

    name = "ip2"
    Params = IP2Params
    summary = ("Bi-level intrinsic plasticity in a recurrent SNN: a slow level picks which intrinsic "
               "properties (tau_d, tau_s, theta) may adapt, a fast level adapts them with the weights; "
               "learning to learn over a task family. Note: the paper's method section was not "
               "available; this is our reading of it.")
    uses_gradient = True
    runs_own_loop = True
    checkpoint_unit = "task"             # one checkpoint per task of its sequence
    requires_model = "rsnn"
    requires_dataset = "l2l_tasks"
    legacy_loop_keys = ("ip2",)      # checkpoints written before the loop state's key was "loop"

    def __init__(self, params=None, model=None, *, total_steps: int = 1, device="cpu"):
        super().__init__(params, model, total_steps=total_steps, device=device)
        self._tel: dict[str, float] = {}
        self.result: dict | None = None
        self.chosen_mask: list[str] | None = None
        self.scores: dict[str, float] | None = None
        self.pilot: dict = {}
        self.n_searches = 0

    def run(self, params: IP2Params | None = None, seed: int = 0, on_update=None, on_task=None,
            should_stop=None, resume: dict | None = None) -> dict:
        """The slow level (if meta_mode is "search") then the main sequence. After each task,
        on_task's info["checkpoint"]() gives a plain-data resume point; `resume=` that point
        continues from the task boundary it was taken at."""
        p = params if params is not None else self.params
        self.params = p
        self._tel = {"task": 0.0, "iters_last": float("nan"), "failures": 0.0}
        n_fail = {"n": 0}
        main_resume = resume if resume and resume["phase"] == "main" else None
        if main_resume:
            n_fail["n"] = int(sum(main_resume["sequence"]["failed"]))

        def _upd(info):
            self._tel.update({k: float(v) for k, v in info.items()
                              if isinstance(v, (int, float)) and not isinstance(v, bool)})
            if on_update is not None:
                on_update(info)

        def _task(info):
            if info["phase"] == "main":
                n_fail["n"] += int(info["failed"])
                self._tel["failures"] = float(n_fail["n"])
            self._tel["task"] = float(info["task"])
            self._tel["iters_last"] = float(info["iterations"])
            self._tel.update(_means_from_snapshot(info["snapshot"]))
            info["checkpoint"] = lambda: self._resume_point(info)
            if on_task is not None:
                on_task(info)

        if main_resume:
            mask, self.scores = normalize_mask(main_resume["mask"]), main_resume["scores"]
            self.pilot = dict(main_resume.get("pilot") or {})
        elif p.meta_mode == "search":
            self.n_searches += 1
            self.pilot = {}
            mask, self.scores = slow_level_search(p, seed, p.candidates, p.k_pilot, on_update=_upd,
                                                  on_task=_task, should_stop=should_stop, details=self.pilot,
                                                  device=self.device, resume=resume)
            if should_stop is not None and should_stop():   # stopped inside the search: no main sequence
                self.chosen_mask = None
                self.result = {"stopped": True, "iterations": [], "failures": 0, "mask": None, "fit": None,
                               "final_efficiency": float("nan"), "scores": self.scores, "meta_mode": p.meta_mode}
                return self.result
        else:
            mask, self.scores = normalize_mask(p.mask), None
        self.chosen_mask = list(mask)   # frozen from here on
        if not main_resume:
            self._tel["failures"] = 0.0
            n_fail["n"] = 0
        res = run_sequence(p, mask, seed, p.n_tasks, _upd, _task, should_stop=should_stop, device=self.device,
                           resume=main_resume["sequence"] if main_resume else None)
        res["scores"] = self.scores
        res["meta_mode"] = p.meta_mode
        self.result = res
        self._tel["ms_per_update"] = res["ms_per_update"]
        return res

    def planned_units(self) -> int:
        p = self.params
        n_pilot = len(candidate_masks(p.candidates)) * p.k_pilot if p.meta_mode == "search" else 0
        return n_pilot + p.n_tasks

    def run_loop(self, sink, seed: int, resume: dict | None = None) -> dict:
        """The task sequence, reported through the Trainer's sink (see loop.py)."""
        from .loop import run_loop
        return run_loop(self, sink, seed, resume)

    def _resume_point(self, info: dict) -> dict:
        """Plain data to continue from the task boundary `info` describes (see run(resume=))."""
        seq = info["resume_state"]()
        if info["phase"] == "main":
            return {"phase": "main", "mask": list(info["mask"]), "scores": self.scores,
                    "pilot": self.pilot, "sequence": seq}
        p = self.params
        done = {k: pilot_score(r["iterations"], r["failed"], p.max_updates) for k, r in (self.pilot or {}).items()}
        return {"phase": "pilot", "scores": done, "details": dict(self.pilot or {}),
                "current": info["phase"].split(":", 1)[-1], "sequence": seq}

    def telemetry(self) -> dict[str, float]:
        return dict(self._tel)

    def state_dict(self) -> dict:
        return {"chosen_mask": self.chosen_mask, "scores": self.scores}

    def load_state_dict(self, state: dict) -> None:
        self.chosen_mask = state.get("chosen_mask")
        self.scores = state.get("scores")


def _means_from_snapshot(snap: dict) -> dict:
    return {f"{p}_mean": snap[p]["mean"] for p in PROPS}


__all__ = ["dh_step", "readout_step", "l2l_fit", "make_family", "RSNN", "ip2_loss", "homeostatic_term",
           "IP2Params", "run_sequence", "slow_level_search", "IP2", "make_optimizer", "normalize_mask",
           "mask_key", "candidate_masks", "L2LRunner", "TaskFamily", "Task", "snapshot", "pilot_score",
           "spike_fn", "PROPS"]
