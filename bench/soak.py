"""Soak: many short runs, SIGKILLed at random points and resumed; reports runs lost (must be 0).

    python bench/soak.py --runs 200 [--parallel 2] [--kill-prob 0.7] [--json]

Each run trains a tiny digits MLP for a few epochs through `python -m snncore train`. With
probability --kill-prob a process is killed at a random point (a random step, 0 = while starting
up, plus up to 0.3 s), then continued with
`--resume RUN_ID` (which may be killed again) until it finishes. A run is lost when, after
--max-attempts, it has not finished; when the store fails its integrity check; or when its
metrics are not exactly one loss row per step and one test row per epoch.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from snncore.store import RunStore  # noqa: E402

EPOCHS, STEPS_PER_EPOCH = 3, 16
ARGS = ["--epochs", str(EPOCHS), "--n-train", "256", "--hidden", "128", "--timesteps", "8", "--batch-size", "16",
        "--record-every", "2", "--log-every", "1"]


class Job:
    def __init__(self, idx: int, runs: Path, rng: random.Random, kill_prob: float):
        self.idx, self.runs, self.rng, self.kill_prob = idx, runs, rng, kill_prob
        self.run_id = f"soak-{idx:05d}"
        self.attempts, self.kills, self.proc, self.kill_at = 0, 0, None, None
        self.done = False
        self.fresh_starts = 0

    def start(self):
        env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
        has_ck = RunStore(self.runs).get_run(self.run_id) is not None and RunStore(self.runs).checkpoints(self.run_id)
        if self.attempts and has_ck:
            argv = ["--resume", self.run_id]
        else:
            if self.attempts:               # killed before its first checkpoint: begin again under a new id
                self.fresh_starts += 1
                self.run_id = f"soak-{self.idx:05d}-{self.fresh_starts}"
            argv = [*ARGS, "--run-id", self.run_id, "--seed", str(self.idx)]
        self.proc = subprocess.Popen([sys.executable, "-m", "snncore", "train", "--runs-dir", str(self.runs), *argv],
                                     cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.attempts += 1
        # kill once the run reports a random step (0: while it starts up), plus up to 0.3 s
        self.kill_step = self.rng.randint(0, EPOCHS * STEPS_PER_EPOCH - 1) if self.rng.random() < self.kill_prob else None
        self.kill_at = None

    def poll(self) -> bool:
        """True while the job needs more work."""
        if self.proc.poll() is None:
            if self.kill_step is not None and self.kill_at is None:
                run = RunStore(self.runs).get_run(self.run_id)
                if run is not None and run["status"] == "running" and (run["step"] or 0) >= self.kill_step:
                    self.kill_at = time.monotonic() + self.rng.uniform(0, 0.3)
            if self.kill_at is not None and time.monotonic() >= self.kill_at:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait()
                self.kills += 1
            else:
                return True
        self.proc.stderr.close()
        run = RunStore(self.runs).get_run(self.run_id)
        if run is not None and run["status"] == "finished":
            self.done = True
            return False
        return True


def check(runs: Path, job: Job) -> str | None:
    """None when the job's run is complete and consistent, else what is wrong."""
    store = RunStore(runs)
    if store._query("PRAGMA integrity_check")[0][0] != "ok":
        return "store integrity check failed"
    run = store.get_run(job.run_id)
    if run is None or run["status"] != "finished":
        return f"not finished after {job.attempts} attempts ({run and run['status']}: {run and run['error']})"
    m = store.metrics_frame(job.run_id)
    steps = EPOCHS * STEPS_PER_EPOCH
    if m["train/loss"].notna().sum() != steps or list(m["train/loss"].dropna().index) != list(range(steps)):
        return f"loss rows {m['train/loss'].notna().sum()} != {steps} steps"
    if len(m["test/accuracy"].dropna()) != EPOCHS:
        return "test rows per epoch wrong"
    if [e for e, _, _ in store.checkpoints(job.run_id)] != list(range(1, EPOCHS + 1)):
        return "checkpoints missing"
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--kill-prob", type=float, default=0.7)
    ap.add_argument("--max-attempts", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs-dir", help="default: a fresh temporary folder")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    runs = Path(a.runs_dir or tempfile.mkdtemp(prefix="snncore-soak-")) / "runs"
    RunStore(runs)
    rng = random.Random(a.seed)
    pending = [Job(i, runs, random.Random(rng.random()), a.kill_prob) for i in range(a.runs)]
    active, finished = [], []
    t0 = time.monotonic()
    while pending or active:
        while pending and len(active) < a.parallel:
            job = pending.pop(0)
            job.start()
            active.append(job)
        for job in list(active):
            if not job.poll():
                active.remove(job)
                finished.append(job)
            elif job.proc.poll() is not None:          # killed or ended without finishing: go again
                if job.attempts >= a.max_attempts:
                    active.remove(job)
                    finished.append(job)
                else:
                    job.start()
        time.sleep(0.05)
    problems = {j.run_id: p for j in finished if (p := check(runs, j))}
    res = {"runs": len(finished), "lost": len(problems), "kills": sum(j.kills for j in finished),
           "restarts_before_first_checkpoint": sum(j.fresh_starts for j in finished),
           "attempts": sum(j.attempts for j in finished), "seconds": round(time.monotonic() - t0, 1),
           "problems": problems, "runs_dir": str(runs)}
    if a.json:
        print(json.dumps(res))
    else:
        print(f"{res['runs']} runs, {res['kills']} SIGKILLs, {res['attempts']} processes, "
              f"{res['restarts_before_first_checkpoint']} killed before their first checkpoint, "
              f"{res['seconds']} s: runs lost {res['lost']}")
        for rid, p in problems.items():
            print(f"  {rid}: {p}")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
