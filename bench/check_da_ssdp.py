"""Small-scale behaviour check of the DA-SSDP gate (ALGORITHMS_SSDP.md, section 7, check 2).

    nice -n 19 python bench/check_da_ssdp.py [--seeds 5] [--epochs 15] [--quick] [--json]
                                             [--conditions "LABEL,LABEL,..."]

Same task, model and optimizer as bench/check_ssdp.py (synthetic synchrony task, 4 classes,
64 channels, groups of 8, T = 16, noise 0.02; mlp 64-128-4; Adam 5e-3 cosine; batch 64; 1200
training samples = 19 steps per epoch). DA-SSDP runs with the code's defaults (A_plus 1.5e-3,
A_base 5e-4, sigma 1, warm-up 1/6 of the planned steps, per-sample gate clipped to [0, 2], targets
fc1 and out). Its SSDP reference ("ssdp matched") uses the same amplitudes and starts at the same
step (start_step = the warm-up length), so with g = 1 the two are the same rule.

Run length: 15 epochs (285 steps, warm-up 48 steps). At the SSDP check's 5 epochs the warm-up is
16 steps, and in pilot runs the hidden layer did not fire a single spike before step ~28, so every
warm-up sample has S = 0 and the fit returns k = 0 whatever the task: the condition
"std 5 ep: da" keeps that case in the table. 15 epochs was chosen (before any k was seen) so
that the warm-up reaches the steps where the network starts to fire.

Runs per seed (all through RunConfig + RunStore + Trainer; the interventions are small wrappers
installed on the trainer before run(), named here):

  std 5 ep: da          rule da_ssdp, standard task, 5 epochs (the degenerate warm-up above)
  std: ssdp matched     rule ssdp, A_plus 1.5e-3, A_base 5e-4, start_step = warm-up length
  std: da null shuffled L
                        rule da_ssdp; the warm-up's loss record is permuted (fixed generator)
                        just before the fit, so S and L are independent: k must be ~0 and the
                        result must equal "ssdp matched"
  std: da null random labels
                        rule da_ssdp; train and test labels permuted (fixed generator), so labels
                        have nothing to do with synchrony: which k does the engine fit?
  mixed: da batch loss  mixed-sync task (each sample's group joins with probability 0.25, 0.5,
                        0.75 or 1.0, a quarter of the samples each: weaker volleys are harder, so
                        synchrony should go with lower loss and the predicted k is positive);
                        rule da_ssdp as the engine runs it: every sample of a batch is recorded
                        with the batch's mean loss (the authors' code)
  mixed: da per-sample loss
                        the same, with each sample's own cross-entropy passed in
                        ctx.extras["per_sample_loss"] (the rule's documented option)
  mixed: ssdp matched   rule ssdp on the mixed-sync task, built exactly as "std: ssdp matched"
  mixed: bptt           no local rule on the mixed-sync task

All conditions of a seed see the same data and initial weights; during the warm-up no rule
touches the weights, so DA-SSDP, matched SSDP and bptt part only after it. --conditions runs
only the named ones (comma-separated labels), e.g. the accuracy comparison alone:
  --conditions "mixed: da batch loss,mixed: ssdp matched,mixed: bptt"

Reported per condition: k per plastic layer (fc1, out) as the engine fitted it; "k within-batch",
minus the mean over warm-up steps of the within-batch Pearson r(S_b, L_b) (defined only with
per-sample losses: the synchrony-loss relation without the drift that S and L share over
training); the share of warm-up samples with S = 0; the gate's spread over every training sample
after the warm-up (std of g, share clipped at 0 or 2, max |g - 1|); test accuracy; for the
shuffled null the paired difference to "ssdp matched" (accuracy, relative weight distance at the
end); on the mixed task the paired accuracy differences DA - SSDP, DA - bptt and SSDP - bptt
(columns "acc - ssdp matched" and "acc - bptt" of the DA and SSDP rows). Mean +- 95 % CI
(t-distribution) over seeds, and a pooled gate histogram.
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_ssdp import (cli_main, base_config, ci95, evaluate_spikes, fmt, print_table,  # noqa: E402
                        train_run)

DA = {"a_plus": 1.5e-3, "a_base": 5e-4}
MIXED_SYNC = (0.25, 0.5, 0.75, 1.0)
LAYERS = ("fc1", "out")
HIST_BINS = np.linspace(0.0, 2.0, 11)


# ----------------------------------------------------------------------------- interventions
def shuffle_loss_record(seed: int):
    def prepare(tr):
        rule = tr.rule
        orig = rule._fit

        def fit():
            if rule._rec_L is not None and rule._rec_n > 1:
                n = rule._rec_n
                perm = torch.randperm(n, generator=torch.Generator().manual_seed(5000 + seed))
                rule._rec_L[:n] = rule._rec_L[:n][perm.to(rule._rec_L.device)].clone()
            orig()
        rule._fit = fit
    return prepare


def random_labels(seed: int):
    def prepare(tr):
        g = torch.Generator().manual_seed(6000 + seed)
        d = tr.data
        d.train_y = d.train_y[torch.randperm(d.train_y.numel(), generator=g)].clone()
        d.test_y = d.test_y[torch.randperm(d.test_y.numel(), generator=g)].clone()
    return prepare


def mixed_sync(seed: int):
    """Replace the synthetic spikes by the same task with a per-sample sync level."""
    from snncore.data.synthetic import synth_spikes

    def make(labels, g, cfg):
        n = labels.numel()
        level = torch.randint(0, len(MIXED_SYNC), (n,), generator=g)
        out = torch.zeros(n, cfg.timesteps, cfg.syn_channels, dtype=torch.bool)
        for i, s in enumerate(MIXED_SYNC):
            idx = (level == i).nonzero(as_tuple=True)[0]
            if idx.numel():
                out[idx] = synth_spikes(labels[idx].cpu(), T=cfg.timesteps, channels=cfg.syn_channels,
                                        group=cfg.syn_group, sync=s, jitter=0.0, noise=cfg.syn_noise,
                                        generator=g)
        return out

    def prepare(tr):
        g = torch.Generator().manual_seed(7000 + seed)
        d, cfg = tr.data, tr.cfg
        d.train_x = make(d.train_y, g, cfg).to(d.train_y.device)
        d.test_x = make(d.test_y, g, cfg).to(d.test_y.device)
    return prepare


def per_sample_loss(tr):
    rule = tr.rule
    orig = rule.after_step

    def after_step(ctx):
        with torch.no_grad():
            ctx.extras["per_sample_loss"] = F.cross_entropy(ctx.out.mean(0), ctx.y, reduction="none")
        orig(ctx)
    rule.after_step = after_step


def capture_gates(tr, store: dict, warm: dict):
    """Record every gate value after the fit (store[layer]) and every warm-up (S, L) pair with its
    step (warm[layer]); read-only wrappers around the rule's own _gate and _observe."""
    rule = tr.rule
    orig_gate, orig_obs = rule._gate, rule._observe

    def gate(li, name, sync):
        g = orig_gate(li, name, sync)
        store.setdefault(name, []).append(g.detach().float().cpu())
        return g

    def observe(li, name, sync, ctx):
        if not rule._fitted and rule._loss_b is not None:
            warm.setdefault(name, []).append((sync.detach().float().cpu().clone(),
                                              rule._loss_b.detach().float().cpu().clone()))
        orig_obs(li, name, sync, ctx)
    rule._gate, rule._observe = gate, observe


def within_batch_k(pairs) -> float:
    """-mean over warm-up steps of the within-batch Pearson r(S_b, L_b) (steps where both vary):
    the part of the synchrony-loss relation that is not the shared drift over training."""
    rs = []
    for S, L in pairs:
        if S.numel() > 2 and float(S.std()) > 0 and float(L.std()) > 0:
            rs.append(float(torch.corrcoef(torch.stack([S.double(), L.double()]))[0, 1]))
    return -float(np.mean(rs)) if rs else float("nan")


def chain(*fns):
    def prepare(tr):
        for f in fns:
            if f is not None:
                f(tr)
    return prepare


# ----------------------------------------------------------------------------- the check
def warmup_steps(args) -> int:
    total = args.epochs * -(-args.samples // 64)
    return int(round(total / 6))


def one_run(args, seed, rule, task, extra=None, label="", epochs=None):
    if epochs is not None:
        args = argparse.Namespace(**dict(vars(args), epochs=epochs))
    rp = dict(DA) if rule != "bptt" else {}
    if rule == "ssdp":
        rp["start_step"] = warmup_steps(args)
    cfg = dict(base_config(args, seed), rule=rule, rule_params=rp)
    gates: dict[str, list] = {}
    warm: dict[str, list] = {}
    prep = [mixed_sync(seed) if task == "mixed" else None, extra]
    if rule == "da_ssdp":
        prep.append(lambda tr: capture_gates(tr, gates, warm))
    with tempfile.TemporaryDirectory() as tmp:
        tr, summary, losses = train_run(cfg, tmp, chain(*prep))
    if rule == "ssdp":
        assert tr.rule.params.start_step == int(round(tr.total_steps / 6)), "warm-up length mismatch"
    x, y = tr.data.test_x.cpu().bool(), tr.data.test_y.cpu()
    rec = {"seed": seed, "accuracy": evaluate_spikes(tr.model, x, y)["accuracy"],
           "seconds": summary["seconds"],
           "weights": {n: w.weight.detach().clone() for n, w in tr.model.weight_layers().items()}}
    if rule == "da_ssdp":
        gp = tr.rule.gate_params() or {}
        rec["fit_n"] = tr.rule._fit_n
        for n in LAYERS:
            rec[f"k {n}"] = gp[n][0] if n in gp else float("nan")
            ws = torch.cat([S for S, _ in warm.get(n, [])]) if warm.get(n) else torch.zeros(0)
            rec[f"warm-up S=0 {n}"] = float((ws == 0).float().mean()) if ws.numel() else float("nan")
            rec[f"k within-batch {n}"] = within_batch_k(warm.get(n, []))
            g = torch.cat(gates[n]) if gates.get(n) else torch.zeros(0)
            rec[f"gate std {n}"] = float(g.std(unbiased=False)) if g.numel() else float("nan")
            rec[f"gate clipped {n}"] = float(((g <= 0) | (g >= 2)).float().mean()) if g.numel() else float("nan")
            rec[f"max |g-1| {n}"] = float((g - 1).abs().max()) if g.numel() else float("nan")
            rec[f"hist {n}"] = np.histogram(g.numpy(), bins=HIST_BINS)[0].tolist() if g.numel() else [0] * 10
    if args.verbose:
        ks = "  ".join(f"k {n} {rec.get(f'k {n}', float('nan')):+.3f}" for n in LAYERS) if rule == "da_ssdp" else ""
        print(f"  seed {seed} {label:22s} acc {rec['accuracy']:.3f}  {ks}  ({summary['seconds']:.1f} s)",
              file=sys.stderr)
    return rec


CONDITIONS = [  # (label, rule, task, intervention factory or None, epochs override)
    ("std 5 ep: da", "da_ssdp", "standard", None, 5),
    ("std: ssdp matched", "ssdp", "standard", None, None),
    ("std: da null shuffled L", "da_ssdp", "standard", shuffle_loss_record, None),
    ("std: da null random labels", "da_ssdp", "standard", random_labels, None),
    ("mixed: da batch loss", "da_ssdp", "mixed", None, None),
    ("mixed: da per-sample loss", "da_ssdp", "mixed", lambda seed: per_sample_loss, None),
    ("mixed: ssdp matched", "ssdp", "mixed", None, None),
    ("mixed: bptt", "bptt", "mixed", None, None),
]

# paired comparisons: condition -> {summary key prefix: reference condition of the same task}
PAIRS = {
    "std: da null shuffled L": {"ssdp matched": "std: ssdp matched"},
    "mixed: da batch loss": {"ssdp matched": "mixed: ssdp matched", "bptt": "mixed: bptt"},
    "mixed: da per-sample loss": {"ssdp matched": "mixed: ssdp matched", "bptt": "mixed: bptt"},
    "mixed: ssdp matched": {"bptt": "mixed: bptt"},
}


def rel_dist(wa: dict, wb: dict) -> float:
    num = sum(float((wa[n] - wb[n]).pow(2).sum()) for n in wa)
    den = sum(float(wa[n].pow(2).sum()) for n in wa)
    return math.sqrt(num / max(den, 1e-30))


def run(args) -> dict:
    t0 = time.perf_counter()
    conds = [c for c in CONDITIONS if c[0] in args.conditions]
    per: dict[str, list[dict]] = {c[0]: [] for c in conds}
    for seed in range(args.seeds):
        for label, rule, task, factory, epochs in conds:
            per[label].append(one_run(args, seed, rule, task, factory(seed) if factory else None, label, epochs))
    summary: dict[str, dict] = {}
    for label in per:
        recs = per[label]
        keys = [k for k in recs[0] if k not in ("seed", "weights") and not k.startswith("hist")]
        summary[label] = {k: ci95([r[k] for r in recs]) for k in keys}
        # paired over seeds (same data and initial weights), where the reference was run too
        for short, other in PAIRS.get(label, {}).items():
            if other not in per:
                continue
            ref = per[other]
            assert [r["seed"] for r in recs] == [q["seed"] for q in ref]
            summary[label][f"acc - {short}"] = ci95([r["accuracy"] - q["accuracy"] for r, q in zip(recs, ref)])
            if short == "ssdp matched":
                summary[label]["rel weight dist to ssdp"] = ci95([rel_dist(q["weights"], r["weights"])
                                                                  for r, q in zip(recs, ref)])
        for n in LAYERS:
            if recs[0].get(f"hist {n}") is not None:
                summary[label][f"hist {n}"] = np.sum([r[f"hist {n}"] for r in recs], 0).tolist()
    for label in per:
        for r in per[label]:
            r.pop("weights", None)
    return {"check": "da_ssdp", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "settings": {"seeds": args.seeds, "epochs": args.epochs, "train_samples": args.samples,
                         "warmup_steps": warmup_steps(args), "da_ssdp": dict(DA, sigma=1.0, warmup_frac=1 / 6,
                                                                             gate_mode="per_sample"),
                         "mixed_sync_levels": list(MIXED_SYNC), "threads": torch.get_num_threads(),
                         "conditions": [c[0] for c in conds]},
            "summary": summary, "per_seed": per, "hist_bins": HIST_BINS.tolist(),
            "wall_seconds": round(time.perf_counter() - t0, 1)}


def print_report(res: dict) -> None:
    s = res["settings"]
    print(f"DA-SSDP gate check: {s['seeds']} seeds, {s['epochs']} epochs, warm-up {s['warmup_steps']} steps; "
          f"mean ± 95 % CI; wall {res['wall_seconds']} s")
    cols = ["k fc1", "k out", "k within-batch fc1", "k within-batch out", "warm-up S=0 fc1",
            "gate std fc1", "gate std out", "gate clipped out", "max |g-1| out",
            "accuracy", "acc - ssdp matched", "acc - bptt", "rel weight dist to ssdp"]
    rows = []
    for label, d in res["summary"].items():
        row = [label]
        for c in cols:
            if c not in d:
                row.append("")
                continue
            pct = c.startswith("acc") or c.startswith("gate clipped") or c.startswith("warm-up")
            row.append(fmt(d[c], 100.0 if pct else 1.0, 1 if pct else 3))
        rows.append(row)
    pct = ("acc", "gate clipped", "warm-up")
    print_table(["condition"] + [c + (" (%)" if c.startswith(pct) else "") for c in cols], rows)
    print("\npooled gate histogram (bins of 0.2 over [0, 2]; every training sample after the warm-up):")
    for label, d in res["summary"].items():
        for n in LAYERS:
            h = d.get(f"hist {n}")
            if h is not None and sum(h):
                tot = sum(h)
                print(f"  {label:28s} {n:4s} " + " ".join(f"{100 * v / tot:5.1f}" for v in h))


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--samples", type=int, default=1200)
    ap.add_argument("--quick", action="store_true", help="smoke size: 1 seed, 3 epochs, 600 samples, "
                    "without the 5-epoch condition (unless --conditions names it)")
    ap.add_argument("--conditions", default=None,
                    help="comma-separated condition labels to run (default: all); "
                    "choose from: " + "; ".join(c[0] for c in CONDITIONS))
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args(argv)
    labels = [c[0] for c in CONDITIONS]
    if a.conditions is None:
        a.conditions = [c[0] for c in CONDITIONS if not (a.quick and c[4] is not None)]
    else:
        chosen = [x.strip() for x in a.conditions.split(",") if x.strip()]
        bad = [x for x in chosen if x not in labels]
        if bad or not chosen:
            what = f"unknown condition {bad[0]!r}" if bad else "--conditions names no condition"
            print(f"error: {what} (choose from: {'; '.join(labels)})", file=sys.stderr)
            raise SystemExit(2)
        a.conditions = [x for x in labels if x in chosen]       # the table's usual order
    if a.seeds < 1 or a.epochs < 1:
        print("error: --seeds and --epochs must be >= 1", file=sys.stderr)
        raise SystemExit(2)
    if a.quick:
        a.seeds, a.epochs, a.samples = 1, 3, 600
    return a


def main(argv=None) -> dict:
    return cli_main(parse_args, run, print_report, argv)


if __name__ == "__main__":
    main()
