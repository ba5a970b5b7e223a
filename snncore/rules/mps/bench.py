"""MPS's benchmark cases: its Trainer step against the baseline's (a different network, mps_mlp),
then against the same net with fixed equal shares (like for like)."""
from __future__ import annotations

from ...benchmarks import BenchCase, STEP_CASE, _paired_case, _steps, _trainer, compare_samples


def bench_mps_overhead(tr, x, y, repeats: int, steps: int, device, hidden, T: int, B: int, tmp: str) -> dict:
    """MPS's Trainer step ``tr`` (adaptive shares) vs the same mps_mlp (same seed, mechanisms, sizes,
    batch) with assign_mode 'fixed' (equal shares, Z frozen): the spec's "fixed equal shares"
    ablation. Both run the forward over all mechanisms and the local Hebbian/SBP updates, so the
    difference is the assignment's own cost (gradient into Z through the softmax, Z's Adam group)."""
    p = tr.rule.params
    fixed = _trainer(tr.cfg.rule, hidden, T, B, device, tmp,
                     rule_params={"mechanisms": list(p.mechanisms), "assign_mode": "fixed"})

    a, b = compare_samples(_steps(tr, x, y, steps), _steps(fixed, x, y, steps), repeats, device=device)
    mechs = "+".join(p.mechanisms)
    c = _paired_case("rule/mps_vs_fixed_shares", a, b,
                 f"Trainer step with mps ({mechs}, assign_mode {p.assign_mode}: shares learned)",
                 f"the same mps_mlp step with assign_mode fixed (equal shares, Z frozen; same mechanisms, "
                 f"local updates still run; T={T}, B={B})", "overhead <= 3 % (median paired ratio)",
                 lambda st: st["ratio"] <= 1.03, model=tr.cfg.model, hidden=list(hidden),
                 mechanisms=list(p.mechanisms), assign_mode=p.assign_mode,
                 reference_assign_mode=fixed.rule.params.assign_mode)
    c["overhead"] = round(c["ratio"] - 1, 4)
    return c


CASES = [STEP_CASE,
         BenchCase(run=lambda c: bench_mps_overhead(c["tr"], c["x"], c["y"], c["repeats"], c["steps"],
                                                    c["device"], c["hidden"], c["T"], c["B"], c["tmp"]))]
