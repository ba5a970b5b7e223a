"""Linear(N->N) + multi-step LIF, forward + backward: ours (FastLIFNode) vs SpikingJelly's fastest
path on the device and vs a per-step Python loop, timed alternately in the same run (medians).

    python bench/bench_lif.py [--sizes 512,1024,2048,4096] [--T 500] [--B 16] [--repeats 5] [--json]

On a GPU it also prints the fraction of roofline (PERFORMANCE.md) with peaks measured in this run.
"""
from __future__ import annotations

import argparse
import json
import sys



def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="512,1024,2048,4096")
    ap.add_argument("--T", type=int, default=500)
    ap.add_argument("--B", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--loop-sizes", default="512", help="sizes also timed against a per-step loop ('' = none)")
    ap.add_argument("--device", default=None)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    import torch
    from snncore.benchmarks import bench_lif_layers, measure_peaks
    dev = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    sizes = [int(s) for s in a.sizes.split(",") if s]
    loops = [int(s) for s in a.loop_sizes.split(",") if s]
    peaks = measure_peaks(dev) if dev.type == "cuda" else None
    cases = bench_lif_layers(sizes, a.T, a.B, a.repeats, dev, peaks, loop_sizes=loops)
    if a.json:
        print(json.dumps({"device": str(dev), "threads": torch.get_num_threads(), "peaks": peaks, "cases": cases}))
        return 0
    print(f"device {dev}, {torch.get_num_threads()} threads, T={a.T} B={a.B}")
    for c in cases:
        roof = (f"  roofline ours {c['roofline_fraction']['ours']:.0%} ref {c['roofline_fraction']['reference']:.0%}"
                if "roofline_fraction" in c else "")
        print(f"{c['name']:28} ours {c['ours_s'] * 1e3:8.1f} ms  ref {c['reference_s'] * 1e3:8.1f} ms  "
              f"ratio {c['ratio']:.3f}  speedup {c['speedup']:.2f}x  [{c['target']}: {c['met']}]{roof}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
