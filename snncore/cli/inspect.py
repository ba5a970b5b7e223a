"""python -m snncore inspect RUN_ID|CHECKPOINT_FILE [--runs-dir DIR] [--json] [--samples N]

Rebuilds the network from a run's newest checkpoint (or a checkpoint file, read with
weights_only=True so it can never run code), runs it on N test samples and prints the spike
statistics of every layer (snncore.inspect). Conv models (vgg11, resnet19): a neuron is one channel
at one position; the per-neuron statistics use a random sample of up to inspect.CONV_NEURONS per
layer (column "recorded"), the counts and SynOps every neuron. Time grows with N x T x the network's
size (a ResNet-19 at width 1 on 32x32: use a few samples). Bad input: exit 2, one line "error: ..." on stderr.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from .common import Parser, print_json

NAME = "inspect"


def _samples(v: str) -> int:
    try:
        n = int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {v!r}") from None
    if not 1 <= n <= 10_000:
        raise argparse.ArgumentTypeError(f"{n} is out of range (allowed: 1 to 10000)")
    return n


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m snncore inspect",
                description="spike statistics per layer of a run's newest checkpoint or a checkpoint file")
    p.add_argument("target", metavar="RUN_ID|CHECKPOINT_FILE")
    p.add_argument("--runs-dir", help="runs folder (default: $SNNCORE_RUNS or ./runs)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--samples", type=_samples, default=64, metavar="N", help="test samples to run (default 64)")
    return p


def _looks_like_file(target: str) -> bool:
    return os.sep in target or "/" in target or target.endswith((".pt", ".pth", ".ckpt")) or Path(target).is_file()


def inspect_target(target: str, runs_dir: str | None, samples: int) -> dict:
    """The report dict for a run id or a checkpoint path; raises InspectError / StoreError."""
    from .. import inspect as A
    if _looks_like_file(target):
        state = A.load_checkpoint(target)
        source = str(Path(target))
    else:
        from ..store import RunStore
        store = RunStore(runs_dir)
        epoch, step, path = A.run_checkpoint(store, target)
        state = A.load_checkpoint(path)
        source = f"run {target}, checkpoint of {A.checkpoint_unit(state.get('config') or {})} {epoch}"
    rec = A.record_network(state, samples)
    return A.report(rec, A.analyse(rec), source)


def _fmt(v, spec=".3f") -> str:
    return "-" if v is None else format(v, spec) if isinstance(v, float) else str(v)


def print_text(r: dict) -> None:
    acc = _fmt(r["accuracy"])
    print(f"{r['source']}: rule {r['rule']}, model {r['model']}, dataset {r['dataset']}, "
          f"{r.get('checkpoint_unit', 'epoch')} {r['epoch']}, "
          f"{r['samples']} test samples x {r['timesteps']} steps, accuracy on them {acc}")
    wide = max([6] + [len(n) for n in r["layers"]])         # resnet19: layer3.1.conv2
    cols = [("layer", wide), ("neurons", 7), ("recorded", 8), ("rate", 6), ("CV ISI", 6), ("Fano", 6), ("corr", 6),
            ("chi", 5), ("contrast", 8), ("silent", 6), ("satur.", 6), ("sparsity", 8), ("SynOps/sample", 13)]
    print("  ".join(f"{c:>{w}}" for c, w in cols))
    for name, s in r["layers"].items():
        vals = [name, s["neurons"], s.get("neurons_recorded", s["neurons"]), _fmt(s["rate_mean"]),
                _fmt(s["cv_isi_mean"]), _fmt(s["fano_mean"]),
                _fmt(s["corr_mean"]), _fmt(s["chi"], ".2f"), _fmt(s["spike_contrast"]),
                s["silent"] if s["spiking"] else "-", s["saturated"] if s["spiking"] else "-",
                _fmt(s["sparsity"]), _fmt(s["synops_per_sample"], ".0f")]
        print("  ".join(f"{str(v):>{w}}" for v, (_, w) in zip(vals, cols)))
    ratio = r["synops_per_sample"] / r["dense_macs_per_sample"] if r["dense_macs_per_sample"] else float("nan")
    print(f"SynOps per sample {r['synops_per_sample']:.0f} ({ratio:.1%} of a dense network's "
          f"{r['dense_macs_per_sample']:.0f} MACs); activation sparsity {_fmt(r['activation_sparsity'])}")
    if any(s.get("map") for s in r["layers"].values()):
        from ..inspect import CONV_NEURONS
        print(f"conv layers: a neuron is one channel at one position (neurons = C x H x W); CV ISI, Fano, corr, "
              f"chi and contrast describe a random sample of up to {CONV_NEURONS} of them (recorded); rate, "
              f"silent, saturated, sparsity and SynOps cover every neuron and input")


def add_parser(sub, argv):
    """Listed in the top-level help only: `main` parses its own arguments (build_parser)."""
    return sub.add_parser(NAME, help="spike statistics of a run or a checkpoint file (RUN_ID|FILE [--json])",
                          add_help=False)


def main(argv: list[str]) -> int:
    warnings.filterwarnings("ignore")                 # Triton's CPU notice, Elephant's NaN notices
    args = build_parser().parse_args(argv)
    from ..inspect import InspectError
    from ..store import StoreError
    try:
        r = inspect_target(args.target, args.runs_dir, args.samples)
    except (InspectError, StoreError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print_json(r)
    else:
        print_text(r)
    return 0
