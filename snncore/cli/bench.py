"""python -m snncore bench [--quick] [--json] [--device cpu|cuda]: speed as ratios to a reference
timed in the same run (snncore/benchmarks.py lists the cases). Bad flags exit 2 with one line."""
from __future__ import annotations

import json
import sys


from .common import Parser

NAME = "bench"


def add_parser(sub, argv):
    """Listed in the top-level help only: `main` parses its own arguments."""
    return sub.add_parser(NAME, help="speed benchmarks as ratios to a reference timed in the same run "
                                     "([--quick] [--json])", add_help=False)


def _fmt(v, unit="s"):
    if v is None:
        return "-"
    return f"{v * 1e3:9.1f} ms" if v < 10 else f"{v:9.2f} s "


def main(argv=None) -> int:
    p = Parser(prog="python -m snncore bench",
                description="Speed benchmarks: ours vs a reference measured in the same run "
                            "(ratio = ours / reference time; speedup = reference / ours).")
    p.add_argument("--quick", action="store_true", help="the smallest size of each case (about 90 s on 2 cores)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda if available")
    a = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    import torch
    if a.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda: no CUDA GPU is available (use cpu or leave it out)", file=sys.stderr)
        return 2
    from ..benchmarks import run_all
    progress = lambda s: print(f"... {s}", file=sys.stderr, flush=True)   # noqa: E731 (stdout: the result)
    res = run_all(quick=a.quick, device=a.device, progress=progress)
    if a.json:
        print(json.dumps(res))
        return 0
    print(f"device {res['device']}, {res['threads']} threads, torch {res['torch']}, {res['seconds']} s")
    print(f"{'case':28} {'ours':>12} {'reference':>12} {'ratio':>7} {'speedup':>8}  target (met)")
    for c in res["cases"]:
        if c.get("skipped"):
            print(f"{c['name']:28} skipped: {c['skipped']}")
            continue
        met = {True: "yes", False: "NO", None: "-"}[c["met"]]
        line = (f"{c['name']:28} {_fmt(c['ours_s'])} {_fmt(c['reference_s'])} {c['ratio']:7.3f} "
                f"{c['speedup']:7.2f}x  {c['target']} ({met})")
        if "ratio_ci95" in c:
            lo, hi = c["ratio_ci95"]
            line += f"  ratio 95% CI [{lo:.3f}, {hi:.3f}] ({c['pairs']} pairs)"
        if "vs_quiet" in c:
            line += f"  {c['vs_quiet']:.2f}x its quiet time"
        if "startup_s" in c:
            line += (f"  Ray start-up {c['startup_s']:.2f} s, per-trial overhead {c['per_trial_overhead_s']:.2f} s, "
                     f"{c['ratio_vs_serial_1thread']:.3f}x the serial runs at 1 thread")
        if "roofline_fraction" in c:
            line += f"  roofline: ours {c['roofline_fraction']['ours']:.0%}, ref {c['roofline_fraction']['reference']:.0%}"
        print(line)
    for c in res["cases"]:
        if not c.get("skipped"):
            print(f"  {c['name']}: ours = {c['ours']}; reference = {c['reference']}")
    return 0

