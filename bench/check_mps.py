"""Small-scale behaviour check of MPS (ALGORITHMS_MPS.md, section 7): the ablation grid.

    nice -n 19 python bench/check_mps.py [--seeds 5] [--epochs 30] [--quick] [--json]
    python bench/check_mps.py --report saved.json     # re-render a saved --json result

sklearn digits (1437 train / 360 test, fixed split), rate-encoded, T = 8; MPS network 64-128-10
(model mps_mlp: soft-reset LIF, rho 0.5, V_th 1, rectangular surrogate a = 1, readout = mean output
rate, MSE loss against one-hot); Adam lr 1e-3 for W_bp and b, lr_z 1e-2 for the logits Z, cosine
schedule, batch 64; Hebbian eta_H 1e-2, gamma_H 0.95, c_H 4; SBP eta_S 0.05, c_S 4 (all the spec's
defaults). Conditions (the spec's grid):

  STBP only            mechanisms = bp
  SBP only             mechanisms = sbp (no gradient-trained tensor at all)
  fixed equal shares   mechanisms = bp, hebb, sbp, assign_mode = fixed (A = 1/3 each)
  adaptive MPS         mechanisms = bp, hebb, sbp, assign_mode = soft (the default)
  STBP + SBP           mechanisms = bp, sbp, assign_mode = soft

Training goes through RunConfig + RunStore + Trainer ("SBP only" has no tensor trained by gradient;
the Trainer then builds no optimizer and only the local rule learns; the results in docs/RESULTS.md
were produced with an earlier workaround, a dummy optimizer that never stepped, which is equivalent).
Evaluation runs the trained model directly on the test pixels
plus Gaussian noise (sigma 0, 0.2, 0.4, clamped to [0, 1]) rate-encoded with a fixed generator;
prediction = argmax of the mean output rate. Also the output layer's final Hebbian share
(mean over its 10 neurons of A_hebb). Mean +- 95 % CI (t-distribution) over seeds.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_ssdp import cli_main, ci95, fmt, print_table, train_run  # noqa: E402,F401

NOISE = (0.0, 0.2, 0.4)
CONDITIONS = {
    "STBP only": {"mechanisms": ["bp"]},
    "SBP only": {"mechanisms": ["sbp"]},
    "fixed equal shares": {"mechanisms": ["bp", "hebb", "sbp"], "assign_mode": "fixed"},
    "adaptive MPS": {"mechanisms": ["bp", "hebb", "sbp"], "assign_mode": "soft"},
    "STBP + SBP": {"mechanisms": ["bp", "sbp"], "assign_mode": "soft"},
}


def trainer_cls():
    from snncore.train import Trainer      # a model with nothing to train by gradient gets no optimizer
    return Trainer


@torch.no_grad()
def noisy_accuracy(model, x: torch.Tensor, y: torch.Tensor, sigma: float, T: int, seed: int) -> float:
    from snncore.data.encode import encode

    g = torch.Generator().manual_seed(9000 + 100 * seed + round(100 * sigma))
    xn = (x + sigma * torch.randn(x.shape, generator=g)).clamp(0.0, 1.0) if sigma > 0 else x
    model.eval()
    correct = 0
    for i in range(0, y.numel(), 256):
        out = model(encode(xn[i:i + 256], T, "rate", generator=g))
        correct += int((out.mean(0).argmax(-1) == y[i:i + 256]).sum())
    return correct / max(y.numel(), 1)


def summarize(per: dict[str, list[dict]]) -> dict:
    """Mean +- 95 % CI per condition, plus paired (same-seed) differences: accuracy and noise drop
    (acc at sigma 0 minus acc at sigma) against STBP only, and adaptive MPS against every other
    condition. Reporting only: computed from the per-seed records."""
    keys = sorted({k for recs in per.values() for r in recs for k in r if k != "seed"},
                  key=lambda k: (not k.startswith("acc"), k))
    summary = {label: {k: ci95([r[k] for r in recs if k in r]) for k in keys if any(k in r for r in recs)}
               for label, recs in per.items()}

    def drop(r, s):
        return r["acc sigma 0.0"] - r[f"acc sigma {s}"]

    def paired(recs, ref, into, name):
        for s in NOISE:
            k = f"acc sigma {s}"
            into[f"{k} - {name}"] = ci95([r[k] - q[k] for r, q in zip(recs, ref)])
        for s in NOISE[1:]:
            into[f"drop sigma {s} - {name}"] = ci95([drop(r, s) - drop(q, s) for r, q in zip(recs, ref)])

    for label, recs in per.items():
        for s in NOISE[1:]:
            summary[label][f"drop sigma {s}"] = ci95([drop(r, s) for r in recs])
        if label != "STBP only":
            paired(recs, per["STBP only"], summary[label], "STBP only")
    if "adaptive MPS" in per:
        for label, recs in per.items():
            if label not in ("adaptive MPS", "STBP only"):
                paired(per["adaptive MPS"], recs, summary["adaptive MPS"], label)
    return summary


def run(args) -> dict:
    t0 = time.perf_counter()
    T = 8
    per: dict[str, list[dict]] = {c: [] for c in CONDITIONS}
    for seed in range(args.seeds):
        for label, rp in CONDITIONS.items():
            cfg = dict(dataset="digits", model="mps_mlp", rule="mps", rule_params=dict(rp), epochs=args.epochs,
                       timesteps=T, hidden=[128], batch_size=64, lr=1e-3, seed=seed, encoding="rate",
                       record_every=1000, snapshots_kept=1, n_train=args.n_train)
            with tempfile.TemporaryDirectory() as tmp:
                tr, summary, losses = train_run(cfg, tmp, trainer_cls=trainer_cls())
            x, y = tr.data.test_x.cpu(), tr.data.test_y.cpu()
            net = tr.model
            rec = {"seed": seed, "engine_test_accuracy": summary["test_accuracy"],
                   "final_train_loss": float(losses[-5:].mean())}
            for s in NOISE:
                rec[f"acc sigma {s}"] = noisy_accuracy(net, x, y, s, T, seed)
            out_layer = net.layers[-1]
            with torch.no_grad():
                A = out_layer.A()
                for k, m in enumerate(out_layer.mechanisms):
                    rec[f"out share {m}"] = float(A[k].mean())
                hid = net.layers[0].A()
                for k, m in enumerate(net.layers[0].mechanisms):
                    rec[f"hidden share {m}"] = float(hid[k].mean())
            per[label].append(rec)
            if args.verbose:
                print(f"  seed {seed} {label:20s} acc {rec['acc sigma 0.0']:.3f} / {rec['acc sigma 0.2']:.3f} / "
                      f"{rec['acc sigma 0.4']:.3f}  hebb_out {rec.get('out share hebb', float('nan')):.3f}  "
                      f"({summary['seconds']:.1f} s)", file=sys.stderr)
    summary = summarize(per)
    return {"check": "mps", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "settings": {"seeds": args.seeds, "epochs": args.epochs, "T": T, "model": "mps_mlp 64-128-10",
                         "lr": 1e-3, "lr_z": 1e-2, "batch": 64, "encoding": "rate", "noise": list(NOISE),
                         "n_train": args.n_train or 1437, "threads": torch.get_num_threads()},
            "summary": summary, "per_seed": per, "wall_seconds": round(time.perf_counter() - t0, 1)}


def print_report(res: dict) -> None:
    s = res["settings"]
    print(f"MPS grid: {s['seeds']} seeds, {s['epochs']} epochs, T {s['T']}; test accuracy (%) under "
          f"Gaussian pixel noise; mean ± 95 % CI; wall {res['wall_seconds']} s")
    rows = []
    for label, d in res["summary"].items():
        rows.append([label] + [fmt(d[f"acc sigma {n}"], 100, 1) for n in NOISE]
                    + [fmt(d[f"out share hebb"], 1, 3) if "out share hebb" in d else "-",
                       fmt(d["final_train_loss"], 1, 4)])
    print_table(["condition"] + [f"sigma {n}" for n in NOISE] + ["out Hebbian share", "train loss"], rows)
    print("\npaired difference to STBP only (percentage points):")
    rows = [[label] + [fmt(d[f"acc sigma {n} - STBP only"], 100, 1) for n in NOISE]
            for label, d in res["summary"].items() if label != "STBP only"]
    print_table(["condition"] + [f"sigma {n}" for n in NOISE], rows)
    print("\nrobustness: accuracy drop from sigma 0 (points; smaller = more robust), and its paired "
          "difference to STBP only:")
    rows = [[label] + [fmt(d[f"drop sigma {n}"], 100, 1) for n in NOISE[1:]]
            + [fmt(d[f"drop sigma {n} - STBP only"], 100, 1) if label != "STBP only" else "-" for n in NOISE[1:]]
            for label, d in res["summary"].items()]
    print_table(["condition"] + [f"drop {n}" for n in NOISE[1:]] + [f"drop {n} - STBP" for n in NOISE[1:]], rows)
    a = res["summary"].get("adaptive MPS", {})
    others = [lb for lb in res["summary"] if f"acc sigma 0.0 - {lb}" in a]
    if others:
        print("\nadaptive MPS minus each other condition, paired by seed (percentage points):")
        rows = [[lb] + [fmt(a[f"acc sigma {n} - {lb}"], 100, 1) for n in NOISE]
                + [fmt(a[f"drop sigma {n} - {lb}"], 100, 1) for n in NOISE[1:]] for lb in others]
        print_table(["adaptive MPS minus"] + [f"acc {n}" for n in NOISE] + [f"drop {n}" for n in NOISE[1:]], rows)
    for label, d in res["summary"].items():
        for layer in ("hidden", "out"):
            ms = [m for m in ("bp", "hebb", "sbp") if f"{layer} share {m}" in d]
            if len(ms) > 1:
                print(f"{label}, {layer} layer final mean shares " + " / ".join(ms) + ": "
                      + " / ".join(fmt(d[f"{layer} share {m}"], 1, 3) for m in ms))


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--n-train", type=int, default=0, help="use at most this many training samples (0: all)")
    ap.add_argument("--quick", action="store_true", help="smoke size: 1 seed, 2 epochs")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--report", default=None, metavar="JSON",
                    help="no run: re-render a saved --json result (summary recomputed from its per-seed records)")
    a = ap.parse_args(argv)
    if a.quick:
        a.seeds, a.epochs = 1, 2
    return a


def rerender(path: str) -> dict:
    """A saved --json result with its summary recomputed by this version of the script."""
    import json
    try:
        res = json.loads(Path(path).read_text())
        res["summary"] = summarize(res["per_seed"])
        res["settings"]["seeds"], res["wall_seconds"]      # print_report needs them: fail here, in one line
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        print(f"error: --report {path}: not a readable check_mps --json result ({type(e).__name__}: {e})",
              file=sys.stderr)
        raise SystemExit(2)
    return res


def main(argv=None) -> dict:
    if parse_args(argv).report:
        return cli_main(parse_args, lambda a: rerender(a.report), print_report, argv, single_thread=False)
    return cli_main(parse_args, run, print_report, argv)


if __name__ == "__main__":
    main()
