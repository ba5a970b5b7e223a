"""The `bench` sweep case: n trials of the default digits run (seeds 0..n-1) through the sweep
engine (a local Ray started for it, one core per trial, as many at once as cores) against the same n
configs trained one after another in one process (the whole thread budget each), on the same box
in the same bench run. Each side runs in a fresh process (`python -m snncore.sweeps.bench SIDE`),
so neither inherits the other's imports, threads or Ray.

ratio = sweep_s / serial_s (target <= 0.65 on 2 cores). Beside it the same serial runs at one
thread each (ratio_vs_serial_1thread): on a loaded box a two-thread run slows down far more than
two one-thread runs do, and that ratio shows how much of the gain is that. Where the time goes:
- startup_s: Ray's start-up (ray.init of the local Ray);
- first_trial_s: from then to the first trial's start (Tune's set-up, the workers' start and imports);
- between_trials_s: a slot's mean idle time from one trial's end to its next trial's start;
- in_trial_s: a trial's bookkeeping beyond its run (record ended - started - run seconds);
- per_trial_overhead_s: slot seconds each trial held beyond its own training,
  ((sweep_s - startup_s) * slots / n) - mean(run seconds): all of the above but Ray's start, shared out;
- ratio_floor: the ratio with no overhead at all, n one-thread runs (their measured seconds) shared
  over the slots against the serial time: what two runs at once can win on these cores at best.
busy=k runs every side beside k processes spinning on a core each (benchmarks.busy), as a sweep
runs beside other work.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TINY = dict(n_train=64, hidden=[16], timesteps=4, batch_size=32, epochs=1)


def _configs(n: int, tiny: bool) -> list[dict]:
    from ..config import RunConfig
    base = RunConfig.from_dict({"dataset": "digits", **(TINY if tiny else {})}).to_dict()
    return [{**base, "seed": s} for s in range(n)]


def _serial(n: int, tiny: bool, root: str) -> dict:
    from ..config import RunConfig
    from ..data import prepare_dataset
    from ..store import RunStore
    from ..train import Trainer
    cfgs = [RunConfig.from_dict(c) for c in _configs(n, tiny)]
    prepare_dataset(cfgs[0])
    store = RunStore(root)
    t0, secs = time.perf_counter(), []
    for cfg in cfgs:
        rid = store.create_run(cfg.to_dict())
        s = Trainer(cfg, store, rid).run()
        assert s["status"] == "finished", s
        secs.append(s["seconds"])
    return {"s": time.perf_counter() - t0, "run_s": secs}


def _sweep(n: int, tiny: bool, root: str) -> dict:
    from ..config import RunConfig
    from ..data import prepare_dataset
    from ..store import RunStore
    from . import engine
    from .spec import parse_spec
    from .. import threads
    base = RunConfig.from_dict(_configs(1, tiny)[0])
    prepare_dataset(base)
    spec = parse_spec(base, [], [], seeds=n)
    opts = engine.Options(cpus_per_trial=1.0)
    t0 = time.perf_counter()
    engine._init_ray(opts, 1)
    startup = time.perf_counter() - t0
    t_init = time.time()
    out = engine.start(spec, opts, Path(root))
    total = time.perf_counter() - t0
    assert out["finished"] == n, out
    recs = list(engine.trial_records(Path(root), out["sweep_id"]).values())
    store = RunStore(root)
    runs = [store.get_run(r["run_id"]) for r in recs]
    secs = [run["summary"]["seconds"] for run in runs]
    inside = [r["ended"] - r["started"] - s for r, s in zip(recs, secs)]
    slots: dict = {}                          # a slot is a reused worker process: the run's pid
    for r, run in zip(recs, runs):
        slots.setdefault(run.get("pid"), []).append(r)
    order = [sorted(rs, key=lambda r: r["started"]) for rs in slots.values()]
    gaps = [b["started"] - a["ended"] for rs in order for a, b in zip(rs, rs[1:])]
    return {"s": total, "startup_s": startup, "run_s": secs, "in_trial_s": inside,
            "first_trial_s": min(r["started"] for r in recs) - t_init,
            "between_trials_s": statistics.mean(gaps) if gaps else 0.0, "slots": min(n, threads.cores())}


def _side(side: str, n: int, tiny: bool, timeout_s: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="snncore-bench-sweep-") as root:
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONWARNINGS": "ignore"}
        env.pop("SNNCORE_THREADS", None)          # each side its own budget: all cores, or 1 per trial
        env.pop("OMP_NUM_THREADS", None)
        if side == "serial1":
            env["SNNCORE_THREADS"] = "1"
        p = subprocess.run([sys.executable, "-m", "snncore.sweeps.bench", side, str(n), "1" if tiny else "0", root],
                           env=env, capture_output=True, text=True, timeout=timeout_s)
        lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
        if p.returncode != 0 or not lines:
            raise RuntimeError(f"bench sweep ({side}) failed: {p.stderr[-1500:]}")
        return json.loads(lines[-1])


def bench_sweep(n: int = 8, tiny: bool = False, timeout_s: float = 900.0, busy: int = 0) -> dict:
    """The case dict (benchmarks._case's keys) plus the overheads (module docstring)."""
    from ..benchmarks import _case
    from ..benchmarks import busy as busy_procs
    target = "sweep <= 0.65x the serial time on 2 cores"
    name = f"sweep@busy{busy}" if busy else "sweep"
    try:
        with busy_procs(busy, max_s=timeout_s * 3):
            serial = _side("serial", n, tiny, timeout_s)
            sweep = _side("sweep", n, tiny, timeout_s)
            # the serial runs at one thread each as well: tells the sweep's parallelism apart from
            # what a two-thread run loses on a loaded box
            serial1 = _side("serial1", n, tiny, timeout_s)
    except (RuntimeError, subprocess.TimeoutExpired) as e:   # e.g. no Ray here: the case says why
        return {"name": name, "ours": "the sweep engine", "reference": "the same configs one after another",
                "ours_s": None, "reference_s": None, "ratio": None, "speedup": None, "target": target,
                "met": None, "skipped": str(e).strip().splitlines()[-1][:300]}
    slot = (sweep["s"] - sweep["startup_s"]) * sweep["slots"] / n - statistics.mean(sweep["run_s"])
    what = "the tiny digits run" if tiny else "the default digits run"
    beside = f", beside {busy} busy process(es)" if busy else ""
    return _case(name, sweep["s"], serial["s"],
                 f"{n} trials of {what} (seeds 0..{n - 1}) through the sweep engine: a local Ray started "
                 f"for it, {sweep['slots']} at once, 1 thread each{beside}",
                 f"the same {n} configs one after another in one process, all cores' threads each{beside}",
                 target, sweep["s"] <= 0.65 * serial["s"], busy=busy,
                 trials=n, slots=sweep["slots"], startup_s=round(sweep["startup_s"], 3),
                 first_trial_s=round(sweep["first_trial_s"], 3),
                 between_trials_s=round(sweep["between_trials_s"], 3),
                 per_trial_overhead_s=round(slot, 3), in_trial_s=round(statistics.mean(sweep["in_trial_s"]), 3),
                 ratio_floor=round(sum(sweep["run_s"]) / sweep["slots"] / serial["s"], 4),
                 run_s_sweep=round(statistics.mean(sweep["run_s"]), 3),
                 run_s_serial=round(statistics.mean(serial["run_s"]), 3),
                 serial_1thread_s=round(serial1["s"], 3), ratio_vs_serial_1thread=round(sweep["s"] / serial1["s"], 4))


if __name__ == "__main__":
    side, n, tiny, root = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
    if side in ("serial", "serial1"):
        from .. import threads
        threads.set_env()                         # before torch loads: the run's whole budget
    res = (_sweep if side == "sweep" else _serial)(n, tiny, root)
    print(json.dumps(res), flush=True)
