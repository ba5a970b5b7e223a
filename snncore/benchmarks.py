"""Speed benchmarks: each case times ours and a reference in the same run (interleaved, medians).

Every case returns a JSON-able dict with ``ours_s``, ``reference_s`` (seconds, medians),
``ratio`` = ours / reference (time: < 1 means ours is faster), ``speedup`` = reference / ours,
what each side is, the target and whether it was met. On a GPU the layer cases also give the
fraction of roofline (PERFORMANCE.md: bound = max(F / peak_flops, Q / peak_bandwidth), with the
achievable peaks measured in the same run by a large GEMM and a large copy).

Cases (PERFORMANCE.md, issue 6):
  lif_layer      Linear(N->N) + multi-step LIF, B=16, T=500, forward + backward, N=512..4096:
                 ours (FastLIFNode) vs SpikingJelly's fastest path on the device (LIFNode);
                 on N=512 also vs a per-step Python loop (target >= 4x on CPU)
  mlp_epoch      784-1000-10 LIF MLP, T=25, B=128, 60k MNIST-sized samples: one epoch estimated
                 from timed optimizer steps; ours vs the same net on SpikingJelly's LIF path, with
                 direct (static-current) input as in the anchor; _vs_step_loop: vs a tutorial-style
                 per-step loop; _rate: rate-encoded spikes (fc1 on all T*B rows, GEMM-bound on CPU)
  rule/<name>    the whole Trainer step with the rule (traces, hooks, telemetry) vs the same step with
                 bptt, ABAB pairs: the median paired ratio and its 95 % interval (overhead target 3 %)
  rule/mps_vs_fixed_shares  MPS step (adaptive shares) vs the same mps_mlp with fixed equal shares
  rule/ip2       one IP2 update with learnable intrinsics vs the same RSNN with them frozen
  recorder       Trainer steps recording at the default schedule (observe + snapshot) vs recording
                 off (target 5 %, memory flat); the observe-every-step worst case beside it
  contended/<digits_run|mlp_epoch>@busy<k>  the default digits run and the MNIST-size epoch beside k
                 busy processes: ours (the run's thread budget) vs the plain SpikingJelly loop
                 (library thread defaults), each side one worker process, ABAB pairs, median ratio
                 and 95 % interval; the digits run also vs its own time without the busy processes
  raster_figure  the live raster (1000 neurons x 1000 steps) as one image vs a scattergl figure
  sweep          8 trials of the default digits run through the sweep engine (a local Ray) vs the
                 same 8 one after another in one process (target <= 0.65x on 2 cores); Ray's
                 start-up and the per-trial overhead beside it (snncore/sweeps/bench.py; --quick: 4)

SNNCORE_BENCH_TINY=1 shrinks every size (for tests only: the numbers then mean nothing).
"""
from __future__ import annotations

import gc
import json
import math
import os
import select
import subprocess
import sys
import statistics
import tempfile
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

warnings.filterwarnings("ignore", message=".*[Tt]riton.*")


def tiny() -> bool:
    return os.environ.get("SNNCORE_BENCH_TINY", "") not in ("", "0")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def compare_samples(ours: Callable[[], None], reference: Callable[[], None], repeats: int, *,
                    device: torch.device = torch.device("cpu"), warmup: int = 1) -> tuple[list[float], list[float]]:
    """Seconds of each run of ours and reference, interleaved ABAB... (pair i ran back to back)."""
    for _ in range(warmup):
        ours()
        reference()
    _sync(device)
    a, b = [], []
    for _ in range(repeats):
        for fn, acc in ((ours, a), (reference, b)):
            gc.collect()
            _sync(device)
            t = time.perf_counter()
            fn()
            _sync(device)
            acc.append(time.perf_counter() - t)
    return a, b


def compare(ours: Callable[[], None], reference: Callable[[], None], repeats: int, *,
            device: torch.device = torch.device("cpu"), warmup: int = 1) -> tuple[float, float]:
    """Median seconds of ours and reference, run alternately (machine-load drift hits both)."""
    a, b = compare_samples(ours, reference, repeats, device=device, warmup=warmup)
    return statistics.median(a), statistics.median(b)


def median_ratio(ours: list[float], reference: list[float], level: float = 0.95) -> dict:
    """Paired timings (pair i ran back to back) -> the median of ours_i / reference_i and a
    distribution-free interval for that median: order statistics [r_(j), r_(n+1-j)] of the sorted
    ratios, j the largest with coverage 1 - 2 P(Binom(n, 1/2) <= j - 1) >= level. A shared machine's
    load comes in bursts, so no normal model; below 6 pairs no such j exists and the interval is
    [min, max] with its lower coverage given. A ratio per pair, not a ratio of medians: load that
    drifts between pairs cancels within each pair."""
    if not ours or len(ours) != len(reference):
        raise ValueError("median_ratio: need the same number (>= 1) of timings on each side")
    r = sorted(a / b for a, b in zip(ours, reference))
    n = len(r)

    def coverage(j):                      # P(r_(j) <= true median <= r_(n+1-j))
        return 1 - 2 * sum(math.comb(n, i) for i in range(j)) / 2**n
    j = 1
    while j + 1 <= (n + 1) // 2 and coverage(j + 1) >= level:
        j += 1
    return {"ratio": statistics.median(r), "ci": [r[j - 1], r[n - j]], "coverage": coverage(j), "pairs": n}


def _paired_case(name: str, a: list[float], b: list[float], ours: str, reference: str, target: str,
                 met_fn: Callable[[dict], bool | None], **extra) -> dict:
    """A case from paired samples: ours_s / reference_s are the medians, ratio the median paired
    ratio with its 95 % interval (ratio_ci95, ci_coverage, pairs)."""
    st = median_ratio(a, b)
    c = _case(name, statistics.median(a), statistics.median(b), ours, reference, target, met_fn(st), **extra)
    c.update(ratio=round(st["ratio"], 4), speedup=round(1 / st["ratio"], 3),
             ratio_ci95=[round(v, 4) for v in st["ci"]], ci_coverage=round(st["coverage"], 4), pairs=st["pairs"])
    return c


def _case(name: str, ours_s: float, ref_s: float, ours: str, reference: str, target: str,
          met: bool | None, **extra) -> dict:
    return {"name": name, "ours": ours, "reference": reference, "ours_s": round(ours_s, 6),
            "reference_s": round(ref_s, 6), "ratio": round(ours_s / ref_s, 4),
            "speedup": round(ref_s / ours_s, 3), "target": target, "met": met, **extra}


# ---- roofline (GPU only) ------------------------------------------------------------------------
def measure_peaks(device: torch.device) -> dict:
    """Achievable fp32 GEMM FLOP/s and copy bandwidth on this device, measured now."""
    n = 8192
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    t_mm = min(_timed(lambda: a @ b, device) for _ in range(5))
    x = torch.empty(256 * 2**20, device=device)          # 1 GiB
    y = torch.empty_like(x)
    t_cp = min(_timed(lambda: y.copy_(x), device) for _ in range(5))
    return {"flops": 2 * n**3 / t_mm, "bytes_per_s": 2 * x.numel() * 4 / t_cp,
            "tf32": bool(torch.backends.cuda.matmul.allow_tf32)}


def _timed(fn, device) -> float:
    _sync(device)
    t = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t


def layer_roofline(M: int, n_in: int, n_out: int, peaks: dict, b: int = 4) -> float:
    """Lower bound (s) of Linear + fused LIF forward + backward, weight gradient only."""
    flops = 4 * M * n_in * n_out
    q = b * M * (2.5 * n_in + 9 * n_out) + 3 * b * n_in * n_out
    return max(flops / peaks["flops"], q / peaks["bytes_per_s"])


# ---- the cases ---------------------------------------------------------------------------------
def _lif_layer(n: int, fast: bool, device, step_loop: bool = False):
    from spikingjelly.activation_based import neuron, surrogate
    from .models.lif import FastLIFNode
    fc = torch.nn.Linear(n, n).to(device)
    if step_loop:
        lif = neuron.LIFNode(tau=2.0, surrogate_function=surrogate.Sigmoid(), step_mode="s")
    else:
        lif = FastLIFNode(tau=2.0, surrogate_function=surrogate.Sigmoid(), step_mode="m", use_fast=fast)
    return fc, lif


def _layer_step(fc, lif, x, step_loop: bool):
    def run():
        lif.reset()
        fc.zero_grad(set_to_none=True)
        h = fc(x)
        s = torch.stack([lif(h[t]) for t in range(h.shape[0])]) if step_loop else lif(h)
        s.sum().backward()
    return run


def bench_lif_layers(sizes, T: int, B: int, repeats: int, device, peaks=None, loop_sizes=(),
                     loop_repeats: int | None = None) -> list[dict]:
    out = []
    for n in sizes:
        torch.manual_seed(0)
        x = torch.randn(T, B, n, device=device) * 2 + 0.5
        fc_o, lif_o = _lif_layer(n, True, device)
        fc_r, lif_r = _lif_layer(n, False, device)
        fc_r.load_state_dict(fc_o.state_dict())
        ours, ref = compare(_layer_step(fc_o, lif_o, x, False), _layer_step(fc_r, lif_r, x, False),
                            repeats, device=device)
        extra = {"N": n, "T": T, "B": B}
        if peaks:
            bound = layer_roofline(T * B, n, n, peaks)
            extra["roofline_s"] = bound
            extra["roofline_fraction"] = {"ours": round(bound / ours, 4), "reference": round(bound / ref, 4)}
        out.append(_case(f"lif_layer_N{n}", ours, ref, "Linear + FastLIFNode (whole-sequence Function on CPU)",
                         f"Linear + SpikingJelly LIFNode multi-step ({device.type} fastest path)",
                         "speedup >= 1.0", ref / ours >= 1.0, **extra))
        if n in loop_sizes:
            fc_l, lif_l = _lif_layer(n, False, device, step_loop=True)
            fc_l.load_state_dict(fc_o.state_dict())
            ours2, loop = compare(_layer_step(fc_o, lif_o, x, False), _layer_step(fc_l, lif_l, x, True),
                                  loop_repeats or max(1, repeats // 2 + 1), device=device,
                                  warmup=0 if loop_repeats == 1 else 1)   # the loop is the slow one
            target, met = ("speedup >= 4 (CPU)", loop / ours2 >= 4) if device.type == "cpu" else ("-", None)
            out.append(_case(f"lif_layer_N{n}_vs_step_loop", ours2, loop, "Linear + FastLIFNode",
                             "Linear + LIFNode single-step, a Python loop over T", target, met, **extra))
    return out


def mnist_like(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n MNIST-sized samples [n, 784] in [0, 1]: sklearn's 8x8 digits scaled x3 into a 28x28 frame
    with 2-pixel margins (mean intensity ~0.15, MNIST's is 0.13), drawn with repetition."""
    from .data.digits import load_digits
    d = load_digits()
    x8 = torch.cat([d.train_x, d.test_x]).reshape(-1, 8, 8)
    y = torch.cat([d.train_y, d.test_y])
    img = torch.zeros(len(y), 28, 28)
    img[:, 2:26, 2:26] = x8.repeat_interleave(3, 1).repeat_interleave(3, 2)
    idx = torch.randint(len(y), (n,), generator=torch.Generator().manual_seed(seed))
    return img.reshape(-1, 784)[idx], y[idx]


def measure_cpu_gemm(n: int = 1024, repeats: int = 5) -> float:
    """Achievable fp32 GEMM FLOP/s on this CPU now (best of a few n x n products)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    return 2 * n**3 / min(_timed(lambda: a @ b, torch.device("cpu")) for _ in range(repeats))


class TutorialMLP(torch.nn.Module):
    """The snnTorch-tutorial-style reference: the same 784-1000-10 net run one time step at a time
    in Python (single-step SpikingJelly LIF, fc1 applied to the input at every step)."""

    def __init__(self, n_in, hidden, n_out):
        super().__init__()
        from spikingjelly.activation_based import neuron, surrogate
        self.fc1, self.fc2 = torch.nn.Linear(n_in, hidden), torch.nn.Linear(hidden, n_out)
        self.lif = neuron.LIFNode(tau=2.0, surrogate_function=surrogate.Sigmoid(), step_mode="s")
        self.lifs = [self.lif]

    def forward(self, x):
        return torch.stack([self.fc2(self.lif(self.fc1(x[t]))) for t in range(x.shape[0])])


def mlp_epoch_flops(T: int, B: int, n_in: int, hidden: int, n_out: int, encoding: str) -> float:
    """GEMM FLOPs of one optimizer step (forward + weight gradients; fc1 needs no input gradient).
    Direct (time-invariant) input: fc1 runs once per sample (SpikingMLP applies it once over T)."""
    rows1 = B if encoding == "direct" else T * B
    return 2 * 2 * rows1 * n_in * hidden + 3 * 2 * T * B * hidden * n_out


def bench_mlp_epoch(steps: int, repeats: int, device, *, n_samples=60_000, T=25, B=128,
                    hidden=1000, n_in=784, encoding: str = "direct", reference: str = "sj",
                    gemm_flops: float | None = None) -> dict:
    """One epoch of the MNIST-size MLP, estimated from ``steps`` timed optimizer steps.

    encoding 'direct' is the PERFORMANCE.md anchor's setting (the snnTorch tutorial feeds the static
    image as a current at every step); 'rate' draws Bernoulli spikes, so fc1 must run on all T*B
    rows (GEMM-bound on a CPU). reference 'sj': the same net on SpikingJelly's LIF path; 'loop':
    :class:`TutorialMLP`, a per-step Python loop. On a CPU the case also gives the GEMM floor
    (FLOPs / the GEMM rate measured in this run)."""
    from .data.encode import encode
    from .models.mlp import SpikingMLP
    from .train import make_optimizer
    torch.manual_seed(0)
    X, Y = mnist_like(steps * B + B)
    nets = {}
    for side in ("ours", "ref"):
        torch.manual_seed(0)
        if side == "ours" or reference == "sj":
            net = SpikingMLP(n_in, [hidden], 10, fast_lif=side == "ours").to(device)
        else:
            net = TutorialMLP(n_in, hidden, 10).to(device)
        nets[side] = (net, make_optimizer("adam", net.parameters(), 1e-3))   # the trainer's Adam on both sides
    g = torch.Generator(device=device).manual_seed(0)
    Xd, Yd = X.to(device), Y.to(device)

    def run(side):
        def go():
            net, opt = nets[side]
            for i in range(steps):
                x = encode(Xd[i * B:(i + 1) * B], T, encoding, generator=g)
                y = Yd[i * B:(i + 1) * B]
                for m in net.lifs:
                    m.reset()
                opt.zero_grad(set_to_none=True)
                loss = torch.nn.functional.cross_entropy(net(x).mean(0), y)
                loss.backward()
                opt.step()
        return go

    ours, ref = compare(run("ours"), run("ref"), repeats, device=device)
    per_epoch = -(-n_samples // B)
    ours_epoch, ref_epoch = ours / steps * per_epoch, ref / steps * per_epoch
    target_s = 16.0
    name = "mlp_epoch" + ("" if encoding == "direct" else f"_{encoding}") + ("_vs_step_loop" if reference == "loop" else "")
    ref_what = ("the same net with SpikingJelly's LIFNode path" if reference == "sj"
                else "tutorial-style loop over T (fc1 and single-step LIFNode at every step)")
    extra = {}
    if gemm_flops and device.type == "cpu":
        floor = mlp_epoch_flops(T, B, n_in, hidden, 10, encoding) * per_epoch / gemm_flops
        extra = {"gemm_floor_s": float(f"{floor:.4g}"), "gemm_flops_measured": float(f"{gemm_flops / 1e9:.4g}"),
                 "floor_fraction": round(floor / ours_epoch, 3)}
    met = (ours_epoch <= target_s) if device.type == "cpu" and encoding == "direct" and reference == "sj" else None
    return _case(name, ours_epoch, ref_epoch,
                 f"SpikingMLP {n_in}-{hidden}-10 (FastLIFNode: fused kernels on CPU), the trainer's Adam (fused on "
                 f"both sides), {encoding}-encoded", ref_what,
                 f"epoch <= {target_s:g} s on 2 CPU cores (direct input, as the anchor)" if met is not None else "-",
                 met, epoch_estimated_from_steps=steps, steps_per_epoch=per_epoch, samples=n_samples, T=T, B=B,
                 encoding=encoding, threads=torch.get_num_threads(), **extra)


def _trainer(rule: str, hidden, T: int, B: int, device, tmp: str, model: str | None = None, **extra):
    from .config import RunConfig
    from .store import RunStore
    from .train import Trainer
    values = {"dataset": "digits", "rule": rule, "hidden": list(hidden), "timesteps": T, "batch_size": B,
              "epochs": 1, "log_every": 10**6, "record_every": 10**6, "device": device.type, **extra}
    if model:
        values["model"] = model
    cfg = RunConfig.from_dict(values)
    store = RunStore(tmp)
    tr = Trainer(cfg, store, store.create_run(cfg.to_dict()))
    tr.total_steps = max(tr.total_steps, 10**6)     # never inside the end-of-run recording window
    return tr


def write_random_cifar(folder: str, n: int = 64, seed: int = 0) -> str:
    """CIFAR-10 python batches of random images in ``folder`` (a data_dir for dataset cifar10)."""
    import numpy as np
    from pathlib import Path
    from .data.images import write_cifar_batch
    base = Path(folder) / "cifar-10-batches-py"
    base.mkdir(parents=True, exist_ok=True)
    r = np.random.default_rng(seed)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        write_cifar_batch(base / name, r.integers(0, 256, (n, 3072), dtype=np.uint8), r.integers(0, 10, n))
    return folder


@dataclass
class BenchCase:
    """A benchmark case a rule declares in its package's bench.py (``CASES``).

    run:   None -- the generic case: the rule's Trainer step against the baseline rule's step on the
           same model size and batch (rule/<id>, and rule/<id>@<model> on a conv model); else
           run(ctx) -> a case dict, with ctx the dict of RuleBenchContext fields (tr: the rule's
           Trainer, or None for a rule that runs its own loop; x, y, repeats, steps, device,
           hidden, T, B, tmp). Own cases run on the MLP setting only.
    quick: the case is part of ``bench --quick``.
    """
    run: Callable[[dict], dict] | None = None
    quick: bool = False


STEP_CASE = BenchCase()          # what a rule without a bench.py gets


def rule_cases(rule: str) -> list[BenchCase]:
    """The cases rule ``rule`` declares; the generic step case when it declares none."""
    from .rules import get_rule
    return get_rule(rule).bench_cases() or [STEP_CASE]


def baseline_rule() -> str:
    """The registry's gradient-only baseline: the rule every overhead case is a ratio against."""
    from .rules import get_rule, rule_names
    for n in rule_names():
        if getattr(get_rule(n), "baseline", False):
            return n
    raise RuntimeError("no rule in the registry declares baseline = True")


def bench_rules(rules, repeats: int, steps: int, device, *, hidden=(256,), T=16, B=64,
                conv: dict | None = None) -> list[dict]:
    """Each rule's declared cases (see BenchCase); the generic one: its Trainer step against the
    baseline rule's step on the same model size and batch.

    Default: the digits MLP, where the rule's layers are the whole net (the worst case for a rule
    acting on the last two layers). ``conv`` (e.g. {"model": "resnet19", "width": 0.25, "T": 4,
    "B": 16}): the papers' setting, a spiking ResNet on CIFAR-10-size images (random files in the
    same format), the rule on the last two layers (its default); cases named rule/<name>@<model>.
    """
    from .rules import get_rule
    out = []
    ref = baseline_rule()
    with tempfile.TemporaryDirectory() as tmp:
        suffix, extra = "", {}
        if conv:
            conv = dict(conv)
            suffix = "@" + conv["model"]
            T, B = conv.pop("T", T), conv.pop("B", B)
            extra = dict(conv, dataset="cifar10", data_dir=write_random_cifar(tmp + "/data", n=max(B, 16)),
                         encoding="direct")
        base = _trainer(ref, hidden, T, B, device, tmp, **extra)
        x, y = next(base.data.batches("train", B, T, shuffle=False))
        for rule in rules:
            cls = get_rule(rule)
            name = f"rule/{rule}{suffix}"
            cases = rule_cases(rule)
            ctx = dict(tr=None, x=x, y=y, repeats=repeats, steps=steps, device=device, hidden=hidden,
                       T=T, B=B, tmp=tmp)
            if cls.runs_own_loop:
                own = [c for c in cases if c.run is not None]
                if not conv:          # its own model (e.g. a recurrent one): no conv variant
                    out.extend(c.run(ctx) for c in own)
                if not own:
                    out.append({"name": name, "ours": rule, "reference": ref, "ours_s": None,
                                "reference_s": None, "ratio": None, "speedup": None,
                                "target": "overhead <= 3 %", "met": None,
                                "skipped": "runs its own task loop (no per-batch step to compare)"})
                continue
            if conv and cls.requires_model:
                continue                  # the rule brings its own network: no conv variant
            tr = _trainer(rule, hidden, T, B, device, tmp, **extra)   # or the rule's own network
            ctx["tr"] = tr
            for case in cases:
                if case.run is not None:
                    if not conv:
                        out.append(case.run(ctx))
                    continue
                out.append(_step_case(name, rule, tr, base, x, y, repeats, steps, device, T, B))
    return out


def _step_case(name, rule, tr, ref_tr, x, y, repeats, steps, device, T, B) -> dict:
    """The rule's whole Trainer step (forward with its traces, its hooks, its telemetry at the
    default log_every) vs the baseline's, in ABAB pairs: on a shared box the ratio of two
    separately timed medians swung 0.6x..5.4x between runs; a ratio per pair does not."""
    hooks = _time_hooks(tr.rule, device)
    a, b = compare_samples(_steps(tr, x, y, steps), _steps(ref_tr, x, y, steps), repeats, device=device)
    runs = repeats + 1                 # the warm-up run included in the hook clock
    frac = hooks["s"] / (runs * steps) / (statistics.median(b) / steps)
    same = ref_tr.cfg.model == tr.cfg.model
    ref = ref_tr.cfg.rule
    c = _paired_case(name, a, b, f"Trainer step with {rule} (its traces, hooks and telemetry)",
                     f"Trainer step with {ref} (model {ref_tr.cfg.model}, T={T}, B={B})"
                     + ("" if same else f"; not like for like: {rule} runs its own {tr.cfg.model}"),
                     "overhead <= 3 % (median paired step-time ratio, whole step)",
                     lambda st: st["ratio"] <= 1.03, model=tr.cfg.model, targets=_rule_targets(tr),
                     # the hooks alone, clocked inside the rule's steps: where the time goes
                     hook_s_per_step=float(f"{hooks['s'] / (runs * steps):.4g}"),
                     hook_fraction=round(frac, 4))
    c["overhead"] = round(c["ratio"] - 1, 4)
    return c


def _time_hooks(rule, device) -> dict:
    """Wrap the rule's after_forward / after_backward / after_step to add their time to a clock."""
    clock = {"s": 0.0}
    for hook in ("after_forward", "after_backward", "after_step"):
        fn = getattr(rule, hook)

        def timed(ctx, fn=fn):
            _sync(device)
            t = time.perf_counter()
            r = fn(ctx)
            _sync(device)
            clock["s"] += time.perf_counter() - t
            return r
        setattr(rule, hook, timed)
    return clock


def _train_step(tr, x, y) -> None:
    """A plain Trainer step: the counter pinned at 1, where the bench's trainers (log_every and
    record_every 10**6, see _trainer) neither log metrics nor record spikes. At 0, where it stayed
    before, both ran on every timed step: a heavier reference step that hid part of each overhead."""
    tr.step = 1
    tr.train_step(x, y)


def _steps(tr, x, y, n: int) -> Callable[[], None]:
    """A timing body: n plain Trainer steps on one batch, the rule's telemetry read every
    log_every-th step (the RunConfig default), as Trainer.run does."""
    from .config import RunConfig
    every = RunConfig().log_every

    def go():
        for i in range(n):
            _train_step(tr, x, y)
            if i % every == 0:
                tr.rule.telemetry()
    return go


def _rule_targets(tr) -> list[str]:
    t = getattr(tr.rule, "_targets", None)
    return list(t) if t else []


def bench_recorder(repeats: int, steps: int, device, *, hidden=(256,), T=16, B=64) -> dict:
    """The recorder's cost as a run pays it: Trainer steps at the default schedule (observe on
    record_batches of every record_every steps, a snapshot to the store every record_every steps, as
    Trainer.fit does) vs the same steps with recording off. Also the worst case, observe on every
    step, as ``every_step_overhead``. Memory: the ring buffer's size stays flat."""
    from .config import RunConfig
    from .record import SpikeRecorder
    d = RunConfig()
    every, kept = d.record_every, d.record_batches
    n = max(steps, every)                     # at least one whole recording period per timing
    with tempfile.TemporaryDirectory() as tmp:
        tr = _trainer(baseline_rule(), hidden, T, B, device, tmp, record_every=every, record_batches=kept)
        x, y = next(tr.data.batches("train", B, T, shuffle=False))

        def scheduled():
            for i in range(1, n + 1):
                tr.step = i                   # records on the last `kept` steps before each multiple of `every`
                tr.train_step(x, y)
                if i % every == 0:
                    tr._snapshot()

        plain = _steps(tr, x, y, n)
        ours, refs = compare(scheduled, plain, repeats, device=device)

        rec = SpikeRecorder(["input", "fc1"], d.record_neurons, kept)

        def every_step():
            for _ in range(n):
                _train_step(tr, x, y)
                with torch.no_grad():
                    rec.observe({"input": x, "fc1": tr.model.layer_traces()["fc1"].post})
        worst, refs2 = compare(every_step, plain, repeats, device=device)
        size_before = rec.nbytes()
        every_step()
        flat = rec.nbytes() == size_before
    return _case("recorder", ours, refs,
                 f"{n} Trainer steps recording at the default schedule (observe on {kept} of every {every} steps, "
                 f"a snapshot to the store every {every})", f"the same {n} steps, recording off",
                 "overhead <= 5 %, memory flat", ours / refs <= 1.05 and flat,
                 overhead=round(ours / refs - 1, 4), memory_flat=flat, recorder_bytes=size_before,
                 every_step_overhead=round(worst / refs2 - 1, 4))


def bench_raster(repeats: int, neurons=1000, steps=1000) -> dict:
    import numpy as np
    import plotly.graph_objects as go
    from .viz import raster_figure
    r = np.random.default_rng(0).random((neurons, steps)) < 0.05

    def ours():
        raster_figure(r, T=steps // 4).to_dict()

    def scatter():
        n, t = np.nonzero(r)
        fig = go.Figure(go.Scattergl(x=t, y=n, mode="markers", marker=dict(size=2, color="black")))
        fig.update_layout(height=320, title="spike raster")
        fig.to_dict()
    ours_s, ref_s = compare(ours, scatter, repeats)
    # no pass/fail: the image costs more to build here but redraws ~5x faster in the browser
    # (PERFORMANCE.md, Live views), which is what a live page pays every refresh
    return _case("raster_figure", ours_s, ref_s, f"raster_figure (image) {neurons}x{steps}",
                 "plotly scattergl of the same spikes", "build time (browser redraw: image ~5x faster)",
                 None, neurons=neurons, steps=steps)


# ---- under contention: beside busy processes ----------------------------------------------------
BUSY_CODE = "import time\nend = time.time() + {s}\nwhile time.time() < end:\n    pass\n"


@contextmanager
def busy(n: int, max_s: float = 600.0):
    """n processes spinning on a core each (``python3 -c "while True: pass"``), each ending by itself
    after max_s, and killed on leaving whatever happens."""
    procs = []
    try:
        for _ in range(n):
            procs.append(subprocess.Popen([sys.executable, "-c", BUSY_CODE.format(s=float(max_s))],
                                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
        yield procs
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait(timeout=30)


def plain_digits_loop(epochs: int = 10, seed: int = 0, on_epoch=None) -> float:
    """The plain SpikingJelly loop a user would write for the default digits run (64-256-10,
    multi-step LIFNode, sigmoid surrogate, T=16, batch 64, Adam 5e-3, cosine schedule, rate-encoded,
    a test pass per epoch); seconds, data loading excluded. on_epoch(seconds, accuracy)."""
    import torch.nn.functional as F
    from spikingjelly.activation_based import functional, neuron, surrogate
    from .data.digits import load_digits
    from .data.encode import encode
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    d = load_digits()
    net = torch.nn.Sequential(torch.nn.Linear(64, 256),
                              neuron.LIFNode(tau=2.0, surrogate_function=surrogate.Sigmoid(), step_mode="m"),
                              torch.nn.Linear(256, 10))
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * -(-len(d.train_y) // 64))
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(len(d.train_y), generator=g)
        for i in range(0, len(perm), 64):
            idx = perm[i:i + 64]
            x = encode(d.train_x[idx], 16, "rate", generator=g)
            functional.reset_net(net)
            loss = F.cross_entropy(net(x).mean(0), d.train_y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        with torch.no_grad():
            x = encode(d.test_x, 16, "rate", generator=torch.Generator().manual_seed(12345))
            functional.reset_net(net)
            acc = (net(x).mean(0).argmax(-1) == d.test_y).float().mean().item()
        if on_epoch:
            on_epoch(time.perf_counter() - t0, acc)
    return time.perf_counter() - t0


def _digits_run(epochs: int | None) -> float:
    """Ours: the default digits run (RunConfig defaults) as Trainer.run does it; its own seconds."""
    from .config import RunConfig
    from .store import RunStore
    from .train import Trainer
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(tmp)
        cfg = RunConfig.from_dict({"dataset": "digits", **({"epochs": epochs} if epochs else {})})
        return float(Trainer(cfg, store, store.create_run(cfg.to_dict())).run()["seconds"])


_MLP = {}


def _mlp_epoch(fast: bool, steps: int, mkw: dict) -> float:
    """One MNIST-size epoch estimated from ``steps`` optimizer steps of the 784-1000-10 MLP (direct
    input), fused LIF (fast) or SpikingJelly's path; the net is built once per process."""
    from .data.encode import encode
    from .models.mlp import SpikingMLP
    from .train import make_optimizer
    kw = dict(dict(n_samples=60_000, T=25, B=128, hidden=1000), **mkw)
    key = (fast, json.dumps(kw, sort_keys=True))
    if key not in _MLP:
        torch.manual_seed(0)
        X, Y = mnist_like(4 * kw["B"])
        net = SpikingMLP(784, [kw["hidden"]], 10, fast_lif=fast)
        _MLP[key] = (net, make_optimizer("adam", net.parameters(), 1e-3), X, Y)
    net, opt, X, Y = _MLP[key]
    T, B = kw["T"], kw["B"]
    t = time.perf_counter()
    for i in range(steps):
        j = (i % 4) * B
        for m in net.lifs:
            m.reset()
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(encode(X[j:j + B], T, "direct")).mean(0), Y[j:j + B]).backward()
        opt.step()
    return (time.perf_counter() - t) / steps * -(-kw["n_samples"] // B)


def worker_main(side: str) -> None:
    """A timing worker (one per side, so each keeps its own thread settings): reads one JSON job per
    line from stdin, answers {"s": seconds} or {"error": text} per line on stdout."""
    for line in sys.stdin:
        try:
            job = json.loads(line)
            if job["case"] == "digits":
                s = _digits_run(job.get("epochs")) if side == "ours" else plain_digits_loop(job.get("epochs") or 10)
            else:
                s = _mlp_epoch(side == "ours", job["steps"], job.get("mkw") or {})
            out = {"s": s}
        except Exception as e:  # noqa: BLE001 -- reported to the parent, which fails the case
            out = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(out), flush=True)


PLAIN_DROP = ("SNNCORE_THREADS", "SNNCORE_THREADS_SOURCE", "SNNCORE_THREADS_LATE", "OMP_NUM_THREADS",
              "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS", "OMP_WAIT_POLICY", "KMP_BLOCKTIME")


class _Worker:
    """A worker process: 'ours' starts as a run does (snncore.threads.set_env first: the thread
    budget before torch and Numba load); 'plain' with none of our thread settings (library defaults)."""

    def __init__(self, side: str, timeout_s: float):
        env = dict(os.environ, PYTHONWARNINGS="ignore")
        if side == "plain":                  # as this process started: before threads.set_env
            from .threads import ORIGINAL_ENV
            for k in PLAIN_DROP:
                env.pop(k, None)
                if ORIGINAL_ENV.get(k) is not None:
                    env[k] = ORIGINAL_ENV[k]
        code = (("from snncore import threads; threads.set_env()\n" if side == "ours" else "")
                + f"from snncore.benchmarks import worker_main; worker_main({side!r})")
        self.side, self.timeout_s = side, timeout_s
        self.p = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True, env=env)

    def ask(self, job: dict) -> float:
        self.p.stdin.write(json.dumps(job) + "\n")
        self.p.stdin.flush()
        ready, _, _ = select.select([self.p.stdout], [], [], self.timeout_s)
        line = self.p.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError(f"bench worker ({self.side}) gave no answer within {self.timeout_s:g} s")
        out = json.loads(line)
        if "error" in out:
            raise RuntimeError(f"bench worker ({self.side}): {out['error']}")
        return float(out["s"])

    def close(self) -> None:
        self.p.kill()
        self.p.wait(timeout=30)


def bench_contended(levels=(1, 2), repeats: int = 3, *, quiet_repeats: int = 2, mlp_steps: int = 20,
                    digits_epochs: int | None = None, mkw: dict | None = None, timeout_s: float = 300.0) -> list[dict]:
    """The default digits run and the MNIST-size epoch, ours (the run's thread budget, sleeping
    OpenMP workers) vs the plain SpikingJelly loop (library defaults), beside ``levels`` busy
    processes; ABAB pairs, the median paired ratio with its 95 % interval. Ours alone on the quiet
    box too, for the digits run's "within 2x its quiet time" target. Each side is one long-lived
    process (imports paid once), so the pairs time the work, not start-up."""
    jobs = {"digits_run": {"case": "digits", "epochs": digits_epochs},
            "mlp_epoch": {"case": "mlp", "steps": mlp_steps, "mkw": mkw or {}}}
    out = []
    workers = {}
    try:
        workers = {side: _Worker(side, timeout_s) for side in ("ours", "plain")}
        for job in jobs.values():              # warm-up: compile caches, first allocations
            for w in workers.values():
                w.ask(dict(job, steps=2) if job["case"] == "mlp" else job)
        quiet = [workers["ours"].ask(jobs["digits_run"]) for _ in range(quiet_repeats)]
        quiet_s = statistics.median(quiet)
        for k in levels:
            with busy(k, max_s=timeout_s * 4 * repeats):
                for name, job in jobs.items():
                    a, b = [], []
                    for _ in range(repeats):
                        a.append(workers["ours"].ask(job))
                        b.append(workers["plain"].ask(job))
                    extra = {"busy": k, "repeats": repeats, "threads": _budget()}
                    if name == "digits_run":
                        extra.update(quiet_s=round(quiet_s, 4), vs_quiet=round(statistics.median(a) / quiet_s, 3))
                        target = "ours never slower than the plain loop (ratio <= 1) and <= 2x ours on a quiet box"
                        met = lambda st, e=extra: st["ratio"] <= 1.0 and e["vs_quiet"] <= 2.0   # noqa: E731
                        what = ("the default digits run (Trainer.run, RunConfig defaults"
                                + (f", {digits_epochs} epochs" if digits_epochs else "") + ": its seconds)")
                        ref = "the plain SpikingJelly loop on the same net and data (bench/bench_train.py)"
                    else:
                        target, met = "ours never slower than the plain loop (ratio <= 1)", lambda st: st["ratio"] <= 1.0  # noqa: E731
                        what = f"MNIST-size epoch (784-1000-10, direct input) from {mlp_steps} steps, fused LIF"
                        ref = "the same net on SpikingJelly's LIF path"
                    out.append(_paired_case(f"contended/{name}@busy{k}", a, b, what + ", with the thread budget",
                                            ref + ", library thread defaults", target, met, **extra))
    finally:
        for w in workers.values():
            w.close()
    return out


def _budget() -> int:
    from .threads import budget
    return budget()[0]


def run_all(quick: bool = False, device: str | None = None, progress: Callable[[str], None] | None = None) -> dict:
    """All cases; quick: the smallest of each (well under a minute on 2 cores)."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    say = progress or (lambda s: None)
    small = tiny()
    cases, t0 = [], time.perf_counter()
    peaks = measure_peaks(dev) if dev.type == "cuda" and not small else None
    if small:
        sizes, T, B, reps, loop = [32], 20, 4, 2, [32]
    elif quick:
        sizes, T, B, reps, loop = [512], 500, 16, 3, [512]
    else:
        sizes, T, B, reps, loop = [512, 1024, 2048, 4096], 500, 16, 5, [512]

    def add(new) -> None:
        new = new if isinstance(new, list) else [new]
        cases.extend(new)
        for c in new:
            say(f"  {c['name']}: " + (f"skipped ({c['skipped']})" if c.get("skipped") else
                                      f"ours {c['ours_s']:.4g} s, reference {c['reference_s']:.4g} s, "
                                      f"ratio {c['ratio']:.3f}, met {c['met']}"))

    say(f"lif_layer N={sizes} T={T} B={B}")
    add(bench_lif_layers(sizes, T, B, reps, dev, peaks, loop_sizes=loop, loop_repeats=1 if quick else None))
    say("mlp_epoch")
    gemm = measure_cpu_gemm(256 if small else 1024) if dev.type == "cpu" else None
    mkw = dict(n_samples=256, T=4, B=16, hidden=32) if small else {}
    steps, reps = (2, 1) if small or quick else (10, 3)
    for enc, ref in (("direct", "sj"), ("direct", "loop"), ("rate", "sj")):
        add(bench_mlp_epoch(steps if ref == "sj" else max(1, steps // 2), reps, dev, encoding=enc,
                            reference=ref, gemm_flops=gemm, **mkw))
    from .rules import rule_names
    base = baseline_rule()            # every rule but the baseline; --quick: those with a quick case
    rules = [r for r in rule_names() if r != base and (not quick or any(c.quick for c in rule_cases(r)))]
    say(f"rules {rules}")
    rkw = dict(hidden=(16,), T=4, B=16) if small else {}
    r_reps, r_steps = (1, 2) if small else (2, 4) if quick else (3, 10)
    add(bench_rules(rules, r_reps, r_steps, dev, **rkw))
    conv = (dict(model="resnet19", width=1 / 32, T=2, B=4) if small
            else dict(model="resnet19", width=0.25, T=4, B=16))
    from .config import CONV_RULES
    conv_rules = [r for r in rules if CONV_RULES.get(r) == "last two"]   # the papers' "deeper layers"
    say(f"rules {conv_rules} on {conv['model']} (the papers' setting)")
    # a 3 % target on ~0.7 s steps: more repeats than the MLP cases (the median of 7 pairs)
    add(bench_rules(conv_rules, r_reps if small or quick else 7, max(2, r_steps // 3), dev,
                    hidden=(16,) if small else (256,), conv=conv))
    say("contended: beside 1 and 2 busy processes")
    ckw = (dict(levels=(1,), repeats=1, quiet_repeats=1, mlp_steps=2, digits_epochs=1,
                mkw=dict(n_samples=256, T=4, B=16, hidden=32)) if small
           # quick: the default run cut to 2 epochs (the plain loop beside busy processes can take
           # minutes for all 10), 2 pairs; the full bench: the whole default run, 5 pairs
           else dict(repeats=2, quiet_repeats=1, mlp_steps=4, digits_epochs=2) if quick
           else dict(repeats=5, quiet_repeats=3, mlp_steps=20))
    add(bench_contended(**ckw))
    say("recorder")
    add(bench_recorder(r_reps, r_steps, dev, **rkw))
    say("raster_figure")
    add(bench_raster(1 if small else 3, *((50, 40) if small else (1000, 1000))))
    say("sweep")
    from .sweeps.bench import bench_sweep
    add(bench_sweep(2 if small else 4 if quick else 8, tiny=small))
    from .threads import record
    return {"device": str(dev), "threads": torch.get_num_threads(), "thread_budget": record(), "quick": quick, "tiny": small,
            "torch": torch.__version__, "peaks": peaks, "seconds": round(time.perf_counter() - t0, 2),
            "cases": cases}
