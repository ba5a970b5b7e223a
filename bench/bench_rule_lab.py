"""Speed of the Rule Lab's answer to a slider move, per rule, against a plain LIF reference.

    python bench/bench_rule_lab.py [--repeats 7] [--json]

For each rule: one parameter is toggled between two values (so no cache can answer), and each
answer is timed as the page pays it: snncore.lab.simulate + lab.figures + what st.plotly_chart
does with every figure (validate as go.Figure, serialise to JSON). Prints the median ms against
the 200 ms target, and the ratio to a reference measured in the same run: a plain numpy LIF
population of the same size (N_pre -> N_post, same steps x trials, no plasticity, no figures).
Torch runs single-threaded, as in the lab. Medians are noisy when other work shares the cores.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np


TARGET_MS = 200.0
# the parameter each rule's slider move toggles (two values, alternated)
TOGGLE = {"stdp": ("eta_plus", 1e-3, 2e-3), "rstdp": ("eta", 1e-3, 2e-3), "ssdp": ("a_plus", 1e-4, 2e-4),
          "da_ssdp": ("a_plus", 1.5e-3, 3e-3), "mps": ("eta_h", 1e-2, 2e-2), "ip2": ("eta", 3e-2, 6e-2)}


def reference_ms(pop, repeats: int) -> float:
    """Plain LIF population: N_pre Poisson inputs -> N_post LIF, updates x T steps x batch trials."""
    rng = np.random.default_rng(0)
    n_pre = getattr(pop, "n_pre", 20)
    W = rng.uniform(0, 0.5, (pop.n_post, n_pre)).astype(np.float32)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(pop.updates):
            x = (rng.random((pop.T, pop.batch, n_pre)) < 0.05).astype(np.float32)
            I = x @ W.T
            v = np.zeros((pop.batch, pop.n_post), np.float32)
            for t in range(pop.T):
                v = v * (1 - 1 / pop.tau_m) + I[t]
                s = v >= pop.v_th
                v[s] = 0.0
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def answer_ms(rule: str, repeats: int) -> tuple[float, float, int]:
    """(median total ms, median simulate ms, figures) of one slider answer."""
    from snncore import lab
    name, a, b = TOGGLE[rule]
    lab.figures(lab.simulate(rule, {name: a}))          # warm-up: imports, first-call costs
    totals, sims = [], []
    n_figs = 0
    for i in range(repeats):
        t0 = time.perf_counter()
        res = lab.simulate(rule, {name: a if i % 2 else b})
        t1 = time.perf_counter()
        figs = lab.figures(res)
        for f in figs.values():
            lab.to_plotly_json(f)
        totals.append(time.perf_counter() - t0)
        sims.append(t1 - t0)
        n_figs = len(figs)
    return 1000 * statistics.median(totals), 1000 * statistics.median(sims), n_figs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--rules", default="all", help="comma-separated rule ids, or all")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    import os
    import torch
    from snncore import lab
    if args.repeats < 1:
        print("error: --repeats must be >= 1", file=sys.stderr)
        return 2
    rules = lab.RULES if args.rules == "all" else tuple(r.strip() for r in args.rules.split(","))
    bad = [r for r in rules if r not in lab.RULES]
    if bad:
        print(f"error: unknown rule {bad[0]!r} (choose from {', '.join(lab.RULES)})", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    rows = []
    for rule in rules:
        total, sim, n = answer_ms(rule, args.repeats)
        ref = reference_ms(lab.DEFAULT_POP[rule], args.repeats)
        rows.append({"rule": rule, "median_ms": round(total, 1), "simulate_ms": round(sim, 1),
                     "figures": n, "reference_ms": round(ref, 2), "ratio": round(total / ref, 1),
                     "within_target": total <= TARGET_MS})
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    if args.json:
        print(json.dumps({"target_ms": TARGET_MS, "load_1min": load, "rows": rows}, indent=1))
        return 0
    print(f"Rule Lab answer to a parameter change (median of {args.repeats}; target {TARGET_MS:.0f} ms; "
          f"1-min load {load:.1f})")
    print(f"{'rule':8} {'total ms':>9} {'sim ms':>7} {'figs':>4} {'ref LIF ms':>10} {'ratio':>6}  target")
    for r in rows:
        print(f"{r['rule']:8} {r['median_ms']:9.1f} {r['simulate_ms']:7.1f} {r['figures']:4d} "
              f"{r['reference_ms']:10.2f} {r['ratio']:6.1f}  {'ok' if r['within_target'] else 'OVER'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
