"""Small-scale behaviour check of IP2 (ALGORITHMS_IP2.md, section 7): learning to learn on GNG-DR-2.

    nice -n 19 python bench/check_ip2.py [--seeds 3] [--tasks 6] [--k-pilot 3] [--last 10] [--quick]
                                         [--json] [--verbose] [--partial runs.jsonl]
    spec size (5 seeds x 40 tasks, 15 pilot tasks): --seeds 5 --tasks 40 --k-pilot 15

Reduced setting of the spec, unchanged (snncore.rules.ip2.IP2Params defaults): GNG-DR-2 (2 images,
no-go on half the trials), dt 100 ms, T 20, N 48 dendritic (DH) neurons, batch 8, Adam lr_w 3e-3,
eta 3e-2 for the intrinsic properties, lambda_h 0.05, lambda_I 1e-4, lambda_R 1e-3, lambda_O 1e-2,
criterion: mean task loss over the last 10 updates < 0.05, failure after 2000 updates.

Three configurations, each a fresh network per seed running the same task sequence (same seed:
same initial network, same stimuli, same trials):

  IP2 (slow level)   the slow level's mask, frozen: engine's slow_level_search over the one-hot
                     masks + "none" (k_pilot tasks each), then run_sequence with the winner.
                     By default the search runs once, on the first seed, and its mask is used as a
                     fixed mask for every seed ("fixed mask from a search"; --search each: per seed)
  no IP (mask none)  the same dendritic network with all intrinsic properties frozen
  uniform (all 3)    tau_d, tau_s and theta all learnable, no slow level

Reported per configuration: iterations-to-criterion per task (a failed task counts as 2000), the
ratio task-1 iterations / mean of the last `--last` tasks (the L2L speed-up; spec: last 10, cut to
min(10, tasks - 1) for shorter sequences and printed), that mean itself, failures (count and which
tasks, per seed), the mask, and the L2L curve fit iterations ~ a exp(-k/tau) + c over tasks
k = 2..end (snncore.rules.ip2.l2l_fit: scipy curve_fit from a log-grid start), per seed and on the
seed-mean curve, each with R^2 and a status that flags degenerate fits. Mean +- 95 % CI
(t-distribution) over seeds. The spec's check has 40 tasks
and 5 seeds; this 2-core shared box runs ~20 ms per update, so the default here is smaller (see
--tasks, --k-pilot, --seeds) and says so in its output.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_ssdp import ci95, cli_main, fmt, print_table  # noqa: E402,F401


def fit_report(iterations) -> dict:
    """The spec's L2L fit a exp(-k/tau) + c over tasks k = 2..n, with R^2 and a plain status.

    status: "ok"; "too few tasks" (< 3 points after task 1); "flat (no decay)" (tasks 2..n equal);
    "no decay (a <= 0)" (the curve does not fall); "tau at grid edge" (tau not identified: the
    fit is effectively a line or a step); "tau < 1 task" (the exponential is spent within one task:
    it fits the drop after task 2 alone, a and tau then mean little); "failed" (non-finite result).
    """
    import math

    from snncore.rules.ip2 import l2l_fit
    it = np.asarray(iterations, dtype=float)
    a, tau, c = l2l_fit(it)
    k = np.arange(2, len(it) + 1, dtype=float)
    y = it[1:]
    out = {"a": a, "tau": tau, "c": c, "r2": float("nan")}
    if len(y) < 3:
        out["status"] = "too few tasks"
        return out
    if np.ptp(y) == 0:
        out["status"] = "flat (no decay)"
        return out
    if not math.isfinite(tau):
        out["status"] = "failed"
        return out
    if not all(math.isfinite(v) for v in (a, tau, c)):
        out["status"] = "failed"
        return out
    pred = a * np.exp(-k / tau) + c
    ss = float(np.sum((y - y.mean()) ** 2))
    out["r2"] = float(1 - np.sum((y - pred) ** 2) / ss) if ss > 0 else float("nan")
    span = max(k[-1] - k[0], 1.0)
    if a <= 0:
        out["status"] = "no decay (a <= 0)"
    elif tau <= 0.05 * 1.0001 or tau >= 100 * span * 0.9999:   # l2l_fit's grid bounds
        out["status"] = "tau at grid edge"
    elif tau < 1.0:
        out["status"] = "tau < 1 task"
    else:
        out["status"] = "ok"
    return out


def summarize(per: dict[str, list[dict]]) -> dict:
    """Mean +- 95 % CI over seeds per configuration, failures, masks and L2L fits from the per-run records."""
    keys = ["task1", "last_mean", "ratio", "failures", "ms_per_update"]
    summary = {}
    for label, recs in per.items():
        summary[label] = {k: ci95([r[k] for r in recs]) for k in keys}
        summary[label]["masks"] = sorted({r["mask"] for r in recs})
        summary[label]["total_failures"] = int(sum(r["failures"] for r in recs))
        summary[label]["iterations_mean_per_task"] = np.mean([r["iterations"] for r in recs], 0).tolist()
        summary[label]["failed_tasks_per_seed"] = {r["seed"]: r["failed_tasks"] for r in recs}
        ok = [r["fit"] for r in recs if r["fit"]["status"] == "ok"]
        summary[label]["fit_per_seed"] = {r["seed"]: r["fit"] for r in recs}
        summary[label]["fit_ok"] = f"{len(ok)}/{len(recs)}"
        for k in ("a", "tau", "c"):      # over the seeds whose fit is "ok" only
            summary[label][f"fit {k}"] = ci95([f[k] for f in ok])
        summary[label]["fit of mean curve"] = fit_report(summary[label]["iterations_mean_per_task"])
    ref = per["no IP (mask none)"]
    for label in ("IP2 (slow level)", "uniform (all 3)"):
        summary[label]["last_mean - no IP"] = ci95([r["last_mean"] - q["last_mean"] for r, q in zip(per[label], ref)])
    summary["IP2 (slow level)"]["last_mean - uniform"] = ci95(
        [r["last_mean"] - q["last_mean"] for r, q in zip(per["IP2 (slow level)"], per["uniform (all 3)"])])
    return summary


def run(args) -> dict:
    import json

    from snncore.rules.ip2 import IP2Params, PROPS, mask_key, run_sequence, slow_level_search

    t0 = time.perf_counter()
    p = IP2Params(family="gng_dr", n_img=2, n_tasks=args.tasks, k_pilot=args.k_pilot,
                  max_updates=args.max_updates, eff_last=args.last, meta_mode="search", candidates="onehot")
    searches = {}

    def search(seed):
        t = time.perf_counter()
        mask, scores = slow_level_search(p, seed=seed, candidates="onehot", k_pilot=args.k_pilot)
        searches[seed] = {"mask": mask_key(mask), "scores": scores, "seconds": round(time.perf_counter() - t, 1)}
        if args.verbose:
            print(f"  slow level (seed {seed}, {args.k_pilot} pilot tasks): {scores} -> {mask_key(mask)}",
                  file=sys.stderr)
        return mask

    seeds = list(range(args.seeds))
    fixed_mask = search(seeds[0]) if args.search == "once" else None
    per: dict[str, list[dict]] = {"IP2 (slow level)": [], "no IP (mask none)": [], "uniform (all 3)": []}
    for seed in seeds:
        m_star = fixed_mask if fixed_mask is not None else search(seed)
        for label, mask in (("IP2 (slow level)", m_star), ("no IP (mask none)", []),
                            ("uniform (all 3)", list(PROPS))):
            t = time.perf_counter()
            r = run_sequence(p, mask, seed=seed, n_tasks=args.tasks)
            it = [int(v) for v in r["iterations"]]
            last = it[-args.last:] if len(it) > 1 else it
            rec = {"config": label, "seed": seed, "mask": mask_key(r["mask"]), "iterations": it,
                   "failures": r["failures"],
                   "failed_tasks": r["failed_tasks"], "task1": it[0],
                   "last_mean": float(np.mean(last)), "ratio": it[0] / float(np.mean(last)),
                   "ms_per_update": r["ms_per_update"], "seconds": round(time.perf_counter() - t, 1)}
            snap = r["snapshots"][-1]
            for prop in PROPS:
                rec[f"{prop} mean end"] = snap[prop]["mean"]
            rec["fit"] = fit_report(it)
            per[label].append(rec)
            if args.partial:                      # one line per finished run: partial results survive a kill
                with open(args.partial, "a") as fh:
                    fh.write(json.dumps(rec) + "\n")
            if args.verbose:
                f = rec["fit"]
                print(f"  seed {seed} {label:18s} mask {rec['mask']:18s} it {it} fail {r['failures']} "
                      f"ratio {rec['ratio']:.1f} fit a {f['a']:.0f} tau {f['tau']:.2f} c {f['c']:.0f} "
                      f"({f['status']}) ({rec['seconds']} s, {r['ms_per_update']:.1f} ms/upd)",
                      file=sys.stderr, flush=True)
    summary = summarize(per)
    return {"check": "ip2", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "settings": {"family": "gng_dr (GNG-DR-2, p_nogo 0.5)", "seeds": args.seeds, "tasks": args.tasks,
                         "k_pilot": args.k_pilot, "search": args.search, "last": args.last,
                         "max_updates": args.max_updates, "N": p.N, "T": p.T, "dt": p.dt, "batch": p.batch,
                         "crit": p.crit, "win": p.win, "threads": p.threads},
            "slow_level": searches, "summary": summary, "per_seed": per,
            "wall_seconds": round(time.perf_counter() - t0, 1)}


def print_report(res: dict) -> None:
    s = res["settings"]
    print(f"IP2 L2L check, {s['family']}: {s['seeds']} seeds x {s['tasks']} tasks (spec: 5 x 40), slow level "
          f"over {s['k_pilot']} pilot tasks ({'first seed, then fixed' if s['search'] == 'once' else 'per seed'}), "
          f"max {s['max_updates']} updates; mean ± 95 % CI; wall {res['wall_seconds']} s")
    for seed, d in res["slow_level"].items():
        print(f"slow level, seed {seed}: scores {', '.join(f'{k} {v:.0f}' for k, v in d['scores'].items())} "
              f"-> {d['mask']}")
    rows = []
    for label, d in res["summary"].items():
        rows.append([label, "/".join(d["masks"]), fmt(d["task1"], 1, 0), fmt(d["last_mean"], 1, 0),
                     fmt(d["ratio"], 1, 1), str(d["total_failures"]),
                     fmt(d["last_mean - no IP"], 1, 0) if "last_mean - no IP" in d else "-"])
    n = s["tasks"]
    print(f"(last {s['last']} = tasks {n - s['last'] + 1}-{n}; a failed task counts as {s['max_updates']})")
    print_table(["configuration", "mask", "task-1 iters", f"mean last {s['last']}", "ratio",
                 "failures (all seeds)", "last - no IP (paired)"], rows)
    d = res["summary"]["IP2 (slow level)"]
    print(f"IP2 minus uniform, mean of the last {s['last']} (paired): {fmt(d['last_mean - uniform'], 1, 0)}")
    print("\nfailed tasks (1-based) per seed:")
    for label, d in res["summary"].items():
        print(f"  {label:18s} " + "; ".join(f"seed {k}: {v or '-'}" for k, v in d["failed_tasks_per_seed"].items()))
    print("\nL2L fit a exp(-k/tau) + c over tasks 2..end:")
    rows = []
    for label, d in res["summary"].items():
        m = d["fit of mean curve"]
        rows.append([label, f"{m['tau']:.2f}", f"{m['a']:.0f}", f"{m['c']:.1f}", f"{m['r2']:.2f}", m["status"],
                     d["fit_ok"], fmt(d["fit tau"], 1, 2), fmt(d["fit c"], 1, 1)])
    print_table(["configuration", "tau (mean curve)", "a", "c", "R^2", "status", "per-seed ok",
                 "tau (ok seeds)", "c (ok seeds)"], rows)
    for label, d in res["summary"].items():
        print(f"  {label:18s} per seed: " + "; ".join(
            f"{k}: tau {f['tau']:.2f} a {f['a']:.0f} c {f['c']:.1f} R2 {f['r2']:.2f} {f['status']}"
            for k, f in d["fit_per_seed"].items()))
    print("\nmean iterations per task:")
    for label, d in res["summary"].items():
        print(f"  {label:18s} " + " ".join(f"{v:.0f}" for v in d["iterations_mean_per_task"]))


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--tasks", type=int, default=6, help="tasks in each main sequence (spec: 40)")
    ap.add_argument("--k-pilot", type=int, default=3, help="tasks per candidate in the slow level (spec: 15)")
    ap.add_argument("--search", choices=("once", "each"), default="once",
                    help="slow level on the first seed only (its mask fixed for all), or per seed")
    ap.add_argument("--last", type=int, default=10,
                    help="tasks averaged at the end (spec: 10); cut to tasks - 1 for shorter sequences")
    ap.add_argument("--max-updates", type=int, default=2000, help="updates before a task fails (spec: 2000)")
    ap.add_argument("--quick", action="store_true", help="smoke size: 1 seed, 2 tasks, 1 pilot task, 100 updates max")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--report", default=None, metavar="JSON",
                    help="no run: re-render a saved --json result (fits and summary recomputed from its per-run iterations)")
    ap.add_argument("--partial", default=None, metavar="PATH",
                    help="append each finished run (one seed, one configuration) as a JSON line")
    a = ap.parse_args(argv)
    if a.quick:
        a.seeds, a.tasks, a.k_pilot, a.last, a.max_updates = 1, 2, 1, 1, 100
    a.last = max(1, min(a.last, a.tasks - 1)) if a.tasks > 1 else 1
    return a


def rerender(path: str) -> dict:
    """A saved --json result with fits and summary recomputed by this version of the script."""
    import json
    try:
        res = json.loads(Path(path).read_text())
        per = res["per_seed"]
        for recs in per.values():
            for r in recs:
                r["fit"] = fit_report(r["iterations"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        print(f"error: --report {path}: not a readable check_ip2 --json result ({type(e).__name__}: {e})",
              file=sys.stderr)
        raise SystemExit(2)
    res["summary"] = summarize(per)
    return res


def main(argv=None) -> dict:
    if parse_args(argv).report:
        return cli_main(parse_args, lambda a: rerender(a.report), print_report, argv, single_thread=False)
    return cli_main(parse_args, run, print_report, argv, single_thread=False)   # ip2 sets its own threads


if __name__ == "__main__":
    main()
