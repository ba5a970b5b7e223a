"""IP2's benchmark case: it runs its own task loop, so its overhead is one fast-level update with
learnable intrinsics against the same update with them frozen."""
from __future__ import annotations

import torch

from ...benchmarks import BenchCase, _paired_case, compare, compare_samples, tiny


def bench_ip2_overhead(repeats: int, steps: int, device, mask=None) -> dict:
    """One IP2 fast-level update (L2LRunner.update) with learnable intrinsics vs the same RSNN (same
    seed, weights, task, batch) with every intrinsic property frozen ("no IP", as bench/check_ip2.py),
    ``steps`` updates each. mask: the learnable types (default IP2Params' meta_mode=fixed mask); the
    all-three mask (the slow level's most expensive choice) is timed too, reported as ``all_props``.
    Reduced setting of IP2Params (tiny(): N 8, T 4, batch 2); sigma_h set on both (as after task 1)."""
    from . import IP2Params, L2LRunner, PROPS, mask_key
    p = IP2Params(N=8, T=4, batch=2) if tiny() else IP2Params()
    mask = list(p.mask) if mask is None else list(mask)

    def runner(m):
        r = L2LRunner(p, m, seed=0, device=device)
        r.start_task()
        return r
    frozen = runner([])
    batch = tuple(t.to(device) for t in frozen.task.batch(p.batch, torch.Generator().manual_seed(0)))
    with torch.no_grad():
        sigma_h = float(frozen.model(batch[0])[1]["u"].pow(2).mean())

    def run(r):
        r.sigma_h = sigma_h

        def go():
            for _ in range(steps):
                r.update(batch)
        return go
    ours = runner(mask)
    a, b = compare_samples(run(ours), run(frozen), repeats, device=device)
    all_s, ref2_s = compare(run(runner(list(PROPS))), run(runner([])), repeats, device=device)
    c = _paired_case("rule/ip2", a, b,
                 f"IP2 update (forward, loss, backward, Adam, clamp) with intrinsics {mask_key(mask)} learnable",
                 f"the same RSNN update with all intrinsics frozen (no IP; same weights, task, batch; "
                 f"N={p.N}, T={p.T}, batch={p.batch}, {p.threads} thread(s))", "overhead <= 3 % (median paired ratio)",
                 lambda st: st["ratio"] <= 1.03, mask=mask_key(ours.mask),
                 reference_mask=mask_key(frozen.mask), updates=steps, N=p.N, T=p.T, batch=p.batch,
                 all_props={"mask": mask_key(PROPS), "ours_s": round(all_s, 6), "reference_s": round(ref2_s, 6),
                            "ratio": round(all_s / ref2_s, 4), "overhead": round(all_s / ref2_s - 1, 4),
                            "met": all_s / ref2_s <= 1.03})
    c["overhead"] = round(c["ratio"] - 1, 4)
    return c


# an update is ~10 ms: 5x the Trainer-step count
CASES = [BenchCase(run=lambda c: bench_ip2_overhead(c["repeats"], 5 * c["steps"], c["device"]), quick=True)]
