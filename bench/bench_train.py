"""Speed of our Trainer against a plain SpikingJelly loop on the same model, in the same run.

    python bench/bench_train.py [--epochs 10] [--repeats 2] [--json]

Model 64-256-10 LIF MLP (multi-step LIFNode, sigmoid surrogate), T=16, batch 64, Adam 5e-3,
cosine schedule, sklearn digits rate-encoded. Both loops encode, train and evaluate the same way;
ours also writes metrics, telemetry, snapshots and checkpoints to a RunStore. Prints the time per
epoch of each, their ratio (ours / plain; target <= 1.10), and when each first reached 90 % and
95 % test accuracy.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time

from snncore import threads  # noqa: E402

threads.set_env()                # the run's thread budget, before torch and Numba load
import torch  # noqa: E402


def plain_loop(epochs: int, seed: int = 0) -> dict:
    from snncore.benchmarks import plain_digits_loop
    hist = []
    seconds = plain_digits_loop(epochs, seed, on_epoch=lambda t, acc: hist.append((t, acc)))
    return {"seconds": seconds, "history": hist}


def ours(epochs: int, seed: int = 0) -> dict:
    from snncore.config import RunConfig
    from snncore.store import RunStore
    from snncore.train import Trainer

    hist = []
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(tmp)
        cfg = RunConfig.from_dict({"dataset": "digits", "rule": "bptt", "epochs": epochs, "seed": seed,
                                   "hidden": [256], "timesteps": 16, "batch_size": 64, "lr": 5e-3})
        rid = store.create_run(cfg.to_dict())
        t0 = time.perf_counter()
        tr = Trainer(cfg, store, rid, on_progress=lambda p: p.test_accuracy is not None and hist.append(
            (time.perf_counter() - t0, p.test_accuracy)))
        t0 = time.perf_counter()   # data loading excluded for both loops
        tr.run()
        return {"seconds": time.perf_counter() - t0, "history": hist}


def first_reach(hist, target):
    return next((round(t, 2) for t, a in hist if a >= target), None)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=10, help=">= 2")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    res = {"plain": [], "ours": []}
    for r in range(a.repeats):       # interleaved, so drift in machine load hits both
        res["plain"].append(plain_loop(a.epochs, seed=r))
        res["ours"].append(ours(a.epochs, seed=r))
    # steady state: the median epoch (this VM's neighbours add noise spikes of tens of %), best repeat;
    # start-up costs (imports, first epoch's warm-up) are reported apart
    import statistics

    def epochs_of(x):
        t = [h[0] for h in x["history"]]
        return [b - a for a, b in zip(t, t[1:])]
    per_epoch = {k: min(statistics.median(epochs_of(x)) for x in v) for k, v in res.items()}
    startup = {k: round(min(x["history"][0][0] for x in v) - per_epoch[k], 3) for k, v in res.items()}
    out = {"epochs": a.epochs, "threads": torch.get_num_threads(),
           "plain_s_per_epoch": round(per_epoch["plain"], 4), "ours_s_per_epoch": round(per_epoch["ours"], 4),
           "ratio": round(per_epoch["ours"] / per_epoch["plain"], 3),
           "startup_s": startup,
           "final_acc": {k: [round(x["history"][-1][1], 4) for x in v] for k, v in res.items()},
           "s_to_90": {k: [first_reach(x["history"], 0.90) for x in v] for k, v in res.items()},
           "s_to_95": {k: [first_reach(x["history"], 0.95) for x in v] for k, v in res.items()}}
    if a.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:18} {v}")


if __name__ == "__main__":
    main()
