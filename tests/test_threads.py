"""One thread budget per run (snncore/threads.py): chosen once, given to torch, Numba, OpenMP and
BLAS before they load, recorded in the run; and the bench's paired statistics on fixed numbers."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from snncore import threads

ROOT = Path(__file__).resolve().parent.parent
OURS = ("SNNCORE_THREADS", "SNNCORE_THREADS_SOURCE", "SNNCORE_THREADS_LATE", *threads.COUNT_VARS, *threads.WAIT_VARS)


def _env(**kw):
    env = {k: v for k, v in os.environ.items() if k not in OURS}
    env.update(PYTHONWARNINGS="ignore", **kw)
    return env


def test_budget_sources():
    assert threads.budget({"SNNCORE_THREADS": "3", "OMP_NUM_THREADS": "5"}) == (3, "SNNCORE_THREADS")
    assert threads.budget({"OMP_NUM_THREADS": "5"}) == (5, "OMP_NUM_THREADS")
    assert threads.budget({"OMP_NUM_THREADS": "4,2"}) == (4, "OMP_NUM_THREADS")   # OpenMP's nested list
    assert threads.budget({"OMP_NUM_THREADS": "lots"}) == (threads.cores(), "cores")
    assert threads.budget({}) == (threads.cores(), "cores")
    for bad in ("0", "-1", "two", "1.5"):
        with pytest.raises(threads.ThreadsError, match="SNNCORE_THREADS"):
            threads.budget({"SNNCORE_THREADS": bad})


def test_env_for_sets_every_library_and_sleeping_workers(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    env = threads.env_for(3)
    assert all(env[k] == "3" for k in ("SNNCORE_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                        "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"))
    assert env["OMP_WAIT_POLICY"] == "PASSIVE" and env["KMP_BLOCKTIME"] == "0"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")      # a user's own choice stays
    assert threads.env_for(3)["OMP_WAIT_POLICY"] == "ACTIVE"


def test_started_run_applies_and_records_the_budget(tmp_path):
    """A CLI run with SNNCORE_THREADS=1 (on any machine, not the 'all cores' default): torch, Numba's
    pool and BLAS/OpenMP all at 1, OpenMP workers passive; the budget stored with the run."""
    runs = str(tmp_path / "runs")
    p = subprocess.run([sys.executable, "-m", "snncore", "train", "--dataset", "digits", "--epochs", "1",
                        "--hidden", "16", "--json", "--runs-dir", runs], cwd=ROOT, capture_output=True,
                       text=True, timeout=300, env=_env(SNNCORE_THREADS="1"))
    assert p.returncode == 0, p.stderr[-2000:]
    t = json.loads(p.stdout.strip().splitlines()[-1])["threads"]
    assert t["budget"] == 1 and t["source"] == "SNNCORE_THREADS"
    assert t["torch"] == 1 and t["numba"] == 1 and t["numba_pool"] == 1   # the pool sized before Numba loaded
    assert t["blas_openmp"] == [1] and t["wait_policy"] == "PASSIVE" and "set_after_load" not in t
    from snncore.store import RunStore
    (run,) = RunStore(runs).list_runs()
    assert run["threads"] == 1 and run["summary"]["threads"]["budget"] == 1
    p = subprocess.run([sys.executable, "-m", "snncore", "runs", "--json", "--runs-dir", runs], cwd=ROOT,
                       capture_output=True, text=True, timeout=120, env=_env())
    assert json.loads(p.stdout)[0]["threads"] == 1


def test_bad_budget_is_refused_in_one_line():
    p = subprocess.run([sys.executable, "-m", "snncore", "runs"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120, env=_env(SNNCORE_THREADS="many"))
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == ["error: SNNCORE_THREADS='many': expected a whole number of threads >= 1"]


def test_app_launch_passes_the_budget(monkeypatch, tmp_path):
    """A run started from the app gets the whole budget in its environment (set before its libraries
    load), one core left to the app; SNNCORE_THREADS given to the app wins."""
    from snncore.runs import launch
    from snncore.config import RunConfig
    from snncore.store import RunStore
    seen = {}

    class FakePopen:
        pid = 12345

        def __init__(self, cmd, **kw):
            seen.update(kw["env"])
    monkeypatch.setattr(launch.subprocess, "Popen", FakePopen)
    for k in OURS:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setattr(launch, "cores", lambda: 4)
    launch.launch_run(RunConfig.from_dict({"dataset": "digits"}), RunStore(tmp_path))
    for k in ("SNNCORE_THREADS", *threads.COUNT_VARS):
        assert seen[k] == "3", k
    assert seen["OMP_WAIT_POLICY"] == "PASSIVE" and seen["SNNCORE_THREADS_SOURCE"] == "app"
    monkeypatch.setenv("SNNCORE_THREADS", "2")
    launch.launch_run(RunConfig.from_dict({"dataset": "digits"}), RunStore(tmp_path))
    assert seen["SNNCORE_THREADS"] == seen["NUMBA_NUM_THREADS"] == "2"


def test_ip2_threads_never_above_the_budget(monkeypatch):
    import torch
    from snncore.rules.ip2 import torch_threads
    monkeypatch.setenv("SNNCORE_THREADS", "1")
    old = torch.get_num_threads()
    with torch_threads(4):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == old


# ---- the bench's paired statistics (fixed numbers, nothing timed) -------------------------------
def test_median_ratio_and_its_interval():
    from snncore.benchmarks import median_ratio
    # 10 pairs: the 95 % interval of a median is (r_(2), r_(9)), coverage 1 - 2 * 11/1024
    ours = [2.0, 1.0, 3.0, 9.0, 5.0, 4.0, 10.0, 6.0, 8.0, 7.0]
    st = median_ratio(ours, [1.0] * 10)
    assert st["ratio"] == 5.5 and st["ci"] == [2.0, 9.0] and st["pairs"] == 10
    assert st["coverage"] == pytest.approx(1 - 22 / 1024)
    # a ratio per pair, not a ratio of medians: a load burst that slows both sides of pair 1 cancels
    st = median_ratio([10.0, 1.0, 1.0], [20.0, 2.0, 2.0])
    assert st["ratio"] == 0.5 and st["ci"] == [0.5, 0.5]
    # 6 pairs: [min, max] reaches 95 % (1 - 2/64); 5 pairs cannot (1 - 2/32), said so
    assert median_ratio([1, 2, 3, 4, 5, 6], [1] * 6)["coverage"] == pytest.approx(1 - 2 / 64)
    st = median_ratio([1, 2, 3, 4, 5], [1] * 5)
    assert st["ci"] == [1, 5] and st["coverage"] == pytest.approx(1 - 2 / 32) and st["ratio"] == 3
    # 20 pairs: (r_(6), r_(15)), coverage 1 - 2 P(Binom(20, .5) <= 5) = 0.9586
    st = median_ratio(list(range(1, 21)), [1] * 20)
    assert st["ci"] == [6, 15] and st["coverage"] == pytest.approx(0.958610, abs=1e-6)
    with pytest.raises(ValueError):
        median_ratio([1.0], [1.0, 2.0])


def test_paired_case_fields():
    from snncore.benchmarks import _paired_case
    c = _paired_case("x", [2.0, 4.0, 3.0], [1.0, 4.0, 2.0], "a", "b", "t", lambda st: st["ratio"] <= 1)
    assert c["ours_s"] == 3.0 and c["reference_s"] == 2.0           # medians of each side
    assert c["ratio"] == 1.5 and c["speedup"] == round(1 / 1.5, 3)   # median of 2, 1, 1.5
    assert c["ratio_ci95"] == [1.0, 2.0] and c["pairs"] == 3 and c["met"] is False


def test_busy_processes_are_killed_on_error():
    from snncore.benchmarks import busy
    with pytest.raises(RuntimeError):
        with busy(2, max_s=60) as procs:
            assert all(p.poll() is None for p in procs)
            raise RuntimeError("stop")
    assert all(p.poll() is not None for p in procs)
