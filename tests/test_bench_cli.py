"""python -m snncore bench: the JSON schema (tiny sizes via SNNCORE_BENCH_TINY) and bad flags."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args, tiny=True):
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    if tiny:
        env["SNNCORE_BENCH_TINY"] = "1"
    return subprocess.run([sys.executable, "-m", "snncore", "bench", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def _busy_left() -> list[str]:
    from snncore.benchmarks import BUSY_CODE
    mark = BUSY_CODE.splitlines()[1][:20]
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [l for l in out.splitlines() if mark in l]


def test_quick_json_schema():
    p = _run("--quick", "--json")
    assert p.returncode == 0, p.stderr[-2000:]
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert res["device"] == "cpu" and res["quick"] is True and res["tiny"] is True
    assert res["peaks"] is None                   # roofline peaks are measured on a GPU only
    names = [c["name"] for c in res["cases"]]
    for want in ("lif_layer_N32", "lif_layer_N32_vs_step_loop", "mlp_epoch", "mlp_epoch_vs_step_loop",
                 "mlp_epoch_rate", "rule/ssdp", "rule/da_ssdp",
                 "recorder", "raster_figure", "contended/digits_run@busy1", "contended/mlp_epoch@busy1"):
        assert want in names
    assert res["thread_budget"]["budget"] == 1 and res["thread_budget"]["torch"] == 1   # OMP_NUM_THREADS=1
    run = next(c for c in res["cases"] if c["name"] == "contended/digits_run@busy1")
    assert run["busy"] == 1 and run["quiet_s"] > 0 and run["vs_quiet"] == round(run["ours_s"] / run["quiet_s"], 3)
    assert run["met"] is (run["ratio"] <= 1 and run["vs_quiet"] <= 2)
    assert not _busy_left()               # the busy processes were killed
    for c in res["cases"]:
        assert {"name", "ours", "reference", "ours_s", "reference_s", "ratio", "speedup", "target", "met"} <= set(c)
        if c.get("skipped"):
            assert c["ratio"] is None
            continue
        assert c["ours_s"] > 0 and c["reference_s"] > 0
        assert abs(c["ratio"] - c["ours_s"] / c["reference_s"]) < 1e-3 * c["ratio"] + 1e-4
        assert abs(c["speedup"] * c["ratio"] - 1) < 1e-2
        assert c["met"] in (True, False, None)
    epoch = {c["name"]: c for c in res["cases"] if c["name"].startswith("mlp_epoch")}
    assert epoch["mlp_epoch"]["encoding"] == "direct" and epoch["mlp_epoch_rate"]["encoding"] == "rate"
    for c in epoch.values():              # GEMM floor from the GEMM rate measured in the same run
        assert 0 < c["gemm_floor_s"] and c["gemm_flops_measured"] > 0
    # direct input runs fc1 once per sample, so its floor is far below the rate-encoded one
    assert epoch["mlp_epoch"]["gemm_floor_s"] < epoch["mlp_epoch_rate"]["gemm_floor_s"]
    rec = next(c for c in res["cases"] if c["name"] == "recorder")
    assert "every_step_overhead" in rec and "default schedule" in rec["ours"]
    assert rec["memory_flat"] is True
    ip2 = next(c for c in res["cases"] if c["name"] == "rule/ip2")     # vs the same RSNN, intrinsics frozen
    assert not ip2.get("skipped") and ip2["reference_mask"] == "none" and "overhead" in ip2


def test_bad_flag_one_line_exit_2():
    p = _run("--fast", tiny=False)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "--fast" in lines[0]


def test_cuda_without_gpu_is_refused():
    import torch
    if torch.cuda.is_available():
        return
    p = _run("--device", "cuda", tiny=False)
    assert p.returncode == 2 and p.stderr.strip().startswith("error: --device cuda")
    assert len(p.stderr.strip().splitlines()) == 1
