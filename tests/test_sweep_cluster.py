"""Sweeps on a Ray cluster without a shared filesystem (issue #15).

- export_run / import_run: a run moved between RunStores reads the same through RunStore's API.
- A two-node Ray cluster on 127.0.0.1 (a head and a worker, 1 CPU each, started here with
  `ray start`): a sweep with `--address` runs trials on both nodes (told apart by Ray node id); the
  worker's trials train into node-local scratch and ship their runs to the driver's store; then the
  worker is killed mid-trial and the sweep finishes with `--retries` (one run per point); then the
  driver is SIGKILLed and `sweep --resume` finishes the rest against the cluster.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from snncore.store import RunStore
from snncore.sweeps.transfer import drop_run, export_run, import_run

ROOT = Path(__file__).resolve().parent.parent
RAY = Path(sys.executable).with_name("ray")
TINY = ["--dataset", "digits", "--rule", "bptt", "--epochs", "1", "--n-train", "64", "--hidden", "16",
        "--timesteps", "4", "--batch-size", "32", "--device", "cpu"]
# trials of a few seconds, so a node or the driver can be killed while they run
SLOW = [*TINY, "--n-train", "600", "--epochs", "3"]
RAY_ENV = {"RAY_AUTH_MODE": "disabled",          # the same in every shell and driver (a stale token breaks joins)
           "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_health_check_period_ms": "500",   # a killed node is declared dead in seconds
           "RAY_health_check_timeout_ms": "1000",
           "RAY_health_check_failure_threshold": "3"}


# ---- one run between stores -------------------------------------------------------------------

def _read(store: RunStore, rid: str) -> dict:
    """Everything RunStore's read API gives of a run."""
    run = store.get_run(rid)
    snaps = {s: {k: v.tolist() for k, v in store.load_snapshot(rid, s).items()} for s in store.snapshot_steps(rid)}
    ckpts = [(e, s, p.name, p.read_bytes()) for e, s, p in store.checkpoints(rid)]
    full = [(e, s, p.name) for e, s, p in store.checkpoints(rid, full=True)]
    best = next(r["best_accuracy"] for r in store.list_runs() if r["id"] == rid)
    return {"run": run, "metrics": store.metrics(rid), "telemetry": store.telemetry(rid),
            "frame": store.metrics_frame(rid).to_json(), "tframe": store.metrics_frame(rid, "telemetry").to_json(),
            "snaps": snaps, "ckpts": ckpts, "full": full, "best": best, "elapsed": store.elapsed(rid)}


def _fill(store: RunStore) -> str:
    rid = store.create_run({"rule": "bptt", "dataset": "digits", "name": "moved"})
    store.start_run(rid, pid=os.getpid(), device="cpu", total_steps=4)
    store.log_metrics(rid, [(0, 0, "train/loss", 2.0), (1, 0, "train/loss", 1.0), (2, 0, "test/accuracy", 0.5)])
    store.log_telemetry(rid, [(1, "sync/out", 0.25), (2, "sync/out", 0.5)])
    for step in range(3):
        store.save_snapshot(rid, step, 0, {"raster/fc1": np.eye(3, dtype=bool) ^ (step % 2 == 1)}, keep=2)
    store.save_checkpoint(rid, 1, 2, {"model": {"w": 1.0}, "epochs_done": 1}, score=0.5,
                          weights={"model": {"w": 1.0}})
    (store.run_dir(rid) / "tb").mkdir()
    (store.run_dir(rid) / "tb" / "events.out").write_bytes(b"\x00tb")
    return rid


def test_export_import_reads_identically(tmp_path):
    a, b = RunStore(tmp_path / "a"), RunStore(tmp_path / "b")
    other = b.create_run({"name": "already there"})
    rid = _fill(a)
    a.end_run(rid, "finished", summary={"test_accuracy": 0.5})
    bundle = export_run(a, rid)
    assert import_run(b, bundle) == rid
    assert _read(b, rid) == _read(a, rid)
    assert (b.run_dir(rid) / "tb" / "events.out").read_bytes() == b"\x00tb"
    assert b.get_run(other)["name"] == "already there"           # the rest of the store is untouched
    import_run(b, bundle)                                        # again: replaced, not doubled
    assert _read(b, rid) == _read(a, rid)
    with pytest.raises(KeyError):
        export_run(a, "no-such-run")


def test_shipping_again_sends_only_changed_files_and_drops_retired_ones(tmp_path):
    a, b = RunStore(tmp_path / "a"), RunStore(tmp_path / "b")
    rid = _fill(a)
    sent = {}
    first = export_run(a, rid, sent)
    import_run(b, first)
    assert _read(b, rid)["run"]["status"] == "running"           # an epoch's shipping: the run is live
    a.save_snapshot(rid, 3, 1, {"raster/fc1": np.ones((3, 3), dtype=bool)}, keep=2)   # step 1 retired
    a.log_metrics(rid, [(3, 1, "test/accuracy", 0.75)])
    a.end_run(rid, "finished", summary={"test_accuracy": 0.75})
    second = export_run(a, rid, sent)
    assert set(second["files"]) == {"snapshots/step000000003.npz"}, "unchanged files are not sent again"
    import_run(b, second)
    assert _read(b, rid) == _read(a, rid)
    assert sorted(p.name for p in (b.run_dir(rid) / "snapshots").iterdir()) == \
        ["step000000002.npz", "step000000003.npz"]
    drop_run(b, rid)
    assert b.get_run(rid) is None and not b.metrics(rid) and not b.run_dir(rid).exists()


def test_import_refuses_a_path_outside_the_run(tmp_path):
    a, b = RunStore(tmp_path / "a"), RunStore(tmp_path / "b")
    bundle = export_run(a, _fill(a))
    bundle["files"]["../evil"] = b"x"
    with pytest.raises(ValueError, match="outside its folder"):
        import_run(b, bundle)
    assert not (tmp_path / "b" / "evil").exists()


# ---- the two-node cluster ---------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A head (resource `headnode`) and a worker (resource `worker`) on 127.0.0.1, 1 CPU each.
    Each `ray start --block` leads its own process group (its raylet and agents); the raylet's
    Ray workers lead groups of their own, so a node is killed as that group plus every process
    below its `ray start`: other Rays on the box are left alone (no `ray stop`)."""

    def __init__(self):
        # short: Ray's unix socket paths live under it
        self.tmp = tempfile.mkdtemp(prefix="rc", dir="/tmp")
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = {**os.environ, **RAY_ENV}
        self.procs = {}

    def start_head(self) -> str:
        self.head = self._start("head", ["--head", f"--port={self.port}", "--resources={\"headnode\": 1}",
                                         f"--temp-dir={self.tmp}", "--include-dashboard=false"], "headnode")
        return self.head

    def _start(self, name: str, args: list[str], resource: str) -> str:
        log = open(Path(self.tmp) / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen(
            [str(RAY), "start", *args, "--node-ip-address=127.0.0.1", "--num-cpus=1", "--object-store-memory=80000000",
             "--disable-usage-stats", "--block"], env=self.env, stdout=log, stderr=log, start_new_session=True)
        return self._node_id(resource)

    def start_worker(self) -> str:
        # one (declared) GPU: Ray schedules it as a resource whether or not CUDA is there
        self.worker = self._start("worker", [f"--address={self.address}", "--resources={\"worker\": 1}",
                                             "--num-gpus=1"], "worker")
        return self.worker

    def _node_id(self, resource: str, timeout: float = 90) -> str:
        """The alive node holding `resource` (asked of the GCS by a short driver)."""
        code = ("import ray, json, time\n"
                f"ray.init(address='{self.address}', include_dashboard=False, log_to_driver=False, configure_logging=False)\n"
                "t = time.time()\n"
                "while time.time() - t < 60:\n"
                f"    ids = [n['NodeID'] for n in ray.nodes() if n['Alive'] and '{resource}' in n['Resources']]\n"
                "    if ids: print(ids[0]); break\n"
                "    time.sleep(0.2)\n")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = subprocess.run([sys.executable, "-c", code], env=self.env, capture_output=True, text=True, timeout=90)
            if r.returncode == 0 and r.stdout.strip():
                return r.stdout.strip().splitlines()[-1]
            time.sleep(1)
        raise RuntimeError(f"the {resource} node did not come up: {r.stderr[-2000:]}")

    def kill(self, name: str) -> None:
        """The node at once: its `ray start`, raylet and agents (its process group) and every
        process below them (the raylet's Ray workers, which would otherwise finish their task)."""
        import psutil
        p = self.procs.pop(name, None)
        if p is None:
            return
        try:
            below = psutil.Process(p.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            below = []
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for q in below:
            try:
                q.kill()
            except psutil.NoSuchProcess:
                pass
        p.wait()

    def close(self) -> None:
        for name in ("worker", "head"):
            self.kill(name)
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    if not RAY.exists() or shutil.which(str(RAY)) is None:
        pytest.skip(f"`ray start` is not available ({RAY} missing)")
    c = Cluster()
    try:
        try:
            c.start_head()
        except (OSError, RuntimeError) as e:     # no cluster on this box: say why
            pytest.skip(f"a Ray head could not be started here: {e}")
        c.start_worker()
        yield c
    finally:
        c.close()


@pytest.fixture
def runs(tmp_path):
    """The driver's runs folder; afterwards the scratch a killed trial left on its node (here /tmp
    of the one box) goes too."""
    runs = tmp_path / "runs"
    yield runs
    for d in runs.glob("sweeps/*"):
        for s in Path(tempfile.gettempdir()).glob(f"snncore-{d.name}"):
            shutil.rmtree(s, ignore_errors=True)


def _env(runs, **extra):
    return {**os.environ, **RAY_ENV, "SNNCORE_RUNS": str(runs), "PYTHONWARNINGS": "ignore",
            "SNNCORE_THREADS": "1", **extra}


def _sweep(runs, cluster, *args, timeout=300):
    return subprocess.run([sys.executable, "-m", "snncore", "sweep", "--address", cluster.address, *args, "--json"],
                          cwd=ROOT, env=_env(runs), capture_output=True, text=True, timeout=timeout)


def _records(runs) -> list[dict]:
    out = []
    for f in runs.glob("sweeps/*/trials/*.json"):
        try:
            out.append(json.loads(f.read_text()))
        except (OSError, ValueError):
            pass
    return out


def _one_run_per_point(runs, n: int) -> list[dict]:
    """The driver's store holds exactly one run per point, finished, with its metrics and last
    checkpoint; returns its rows."""
    store = RunStore(runs)
    try:
        rows = store.list_runs()
        assert len(rows) == n, [(r["id"], r["status"]) for r in rows]
        for r in rows:
            assert r["status"] == "finished", (r["id"], r["status"], r["error"])
            assert store.metrics(r["id"]) and store.metrics_frame(r["id"])["test/accuracy"].notna().any()
            full = store.checkpoints(r["id"], full=True)
            assert full and full[-1][0] == r["config"]["epochs"] and full[-1][2].is_file()
            assert (store.run_dir(r["id"]) / "sweep.json").is_file()
        return rows
    finally:
        store.close()


def test_trials_run_on_both_nodes_and_land_in_the_driver_store(cluster, runs):
    # no --max-concurrent: the cluster's two CPUs make two trials at once
    r = _sweep(runs, cluster, *TINY, "--grid", "lr=1e-3,2e-3,3e-3,4e-3")
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert (out["status"], out["trials"], out["finished"]) == ("finished", 4, 4)
    recs = _records(runs)
    nodes = {x["node"] for x in recs}
    assert nodes == {cluster.head, cluster.worker}, "each node's single CPU takes one of two concurrent trials"
    for x in recs:
        # the worker's trials went through scratch and the collector; the head's wrote directly
        assert x["shipped"] is (x["node"] == cluster.worker) and x["host"] == socket.gethostname()
        assert x["attempt"] == 1
    rows = _one_run_per_point(runs, 4)
    assert {x["run_id"] for x in recs} == {r["id"] for r in rows}
    assert not list(Path(tempfile.gettempdir()).glob(f"snncore-{out['sweep_id']}*")), "scratch is removed"


def test_gpu_trials_go_to_the_gpu_node_and_share_its_gpu(cluster, runs):
    """--gpus-per-trial 0.5: the trials run only on the node with a GPU, two at once on its one
    GPU (Ray gives each the same GPU id); a trial asking more GPU than any node has is refused."""
    r = _sweep(runs, cluster, *TINY[:-2], "--grid", "lr=1e-3,2e-3", "--gpus-per-trial", "0.5",
               "--cpus-per-trial", "0.5")
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert (out["status"], out["finished"]) == ("finished", 2)
    recs = _records(runs)
    assert [x["node"] for x in recs] == [cluster.worker] * 2 and [x["gpus"] for x in recs] == [["0"], ["0"]]
    a, b = sorted(recs, key=lambda x: x["started"])
    assert b["started"] < a["ended"], "two half-GPU trials share the one GPU at once"
    _one_run_per_point(runs, 2)
    r = _sweep(runs, cluster, *TINY[:-2], "--grid", "lr=1e-3,2e-3", "--gpus-per-trial", "2", timeout=120)
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1] == (
        f"error: --gpus-per-trial 2: the Ray cluster at {cluster.address} has at most 1 GPU(s) on a node")


def test_a_lost_node_s_trial_is_retried_elsewhere(cluster, runs):
    p = subprocess.Popen([sys.executable, "-m", "snncore", "sweep", "--address", cluster.address, *SLOW,
                          "--epochs", "8", "--grid", "lr=1e-3,2e-3", "--max-concurrent", "2", "--retries", "2",
                          "--json"],
                         cwd=ROOT, env=_env(runs), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    victim = None
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and p.poll() is None and victim is None:
            on_worker = [x for x in _records(runs) if x["node"] == cluster.worker and x["status"] == "running"]
            if on_worker:
                store = RunStore(runs)
                # an epoch or more shipped (the lost attempt leaves a partial run in the driver's
                # store), five or more to go: killed well before it could finish
                epochs = [k for _, _, k, _ in store.metrics(on_worker[0]["run_id"]) if k == "test/accuracy"]
                if 1 <= len(epochs) <= 3:
                    victim = on_worker[0]
                store.close()
            time.sleep(0.1)
        assert victim, "no trial ran on the worker node"
        cluster.kill("worker")
        stdout, stderr = p.communicate(timeout=240)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, stderr[-3000:]
    out = json.loads(stdout.strip().splitlines()[-1])
    assert (out["status"], out["trials"], out["finished"]) == ("finished", 2, 2)
    recs = {x["key"]: x for x in _records(runs)}
    again = recs[victim["key"]]
    assert again["attempt"] == 2 and again["node"] == cluster.head, "retried on the node that was left"
    assert again["run_id"] == victim["run_id"], "the retry took over the lost attempt's run"
    rows = _one_run_per_point(runs, 2)                       # the lost attempt is not a second run
    assert sorted(r["config"]["lr"] for r in rows) == [1e-3, 2e-3]


def test_resume_after_the_driver_is_killed_against_the_cluster(cluster, runs):
    if "worker" not in cluster.procs:
        cluster.start_worker()                               # the node lost above comes back
    p = subprocess.Popen([sys.executable, "-m", "snncore", "sweep", "--address", cluster.address, *SLOW,
                          "--grid", "lr=1e-3,2e-3,3e-3", "--max-concurrent", "2", "--json"],
                         cwd=ROOT, env=_env(runs), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = []
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and p.poll() is None and not done:
            done = [x for x in _records(runs) if x["status"] == "finished"]
            time.sleep(0.05)
        assert p.poll() is None, "the sweep ended before its driver could be killed"
    finally:
        killed_at = time.time()
        os.kill(p.pid, signal.SIGKILL)        # the driver only: its trials live on the nodes' workers
        p.wait()
    assert done, "no trial finished before the deadline"
    sweep_id = next(runs.glob("sweeps/*")).name
    # the switch that ships every trial, those on the driver's node too (the path a real second
    # machine takes, whichever node Ray picks)
    r = subprocess.run([sys.executable, "-m", "snncore", "sweep", "--address", cluster.address, "--resume", sweep_id,
                        "--json"], cwd=ROOT, env=_env(runs, SNNCORE_SWEEP_SHIP="always"), capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert (out["status"], out["trials"], out["finished"]) == ("finished", 3, 3)
    recs = {x["key"]: x for x in _records(runs)}
    assert sorted(x["index"] for x in recs.values()) == [0, 1, 2]
    for d in done:                                           # a finished trial was not run again
        assert recs[d["key"]]["run_id"] == d["run_id"] and recs[d["key"]]["attempt"] == 1
    resumed = [x for x in recs.values() if x["started"] > killed_at]
    assert resumed and all(x["shipped"] for x in resumed)
    rows = _one_run_per_point(runs, 3)
    assert sorted(r["config"]["lr"] for r in rows) == [1e-3, 2e-3, 3e-3]


def test_bench_sweep_case_runs_tiny():
    """The bench case's schema at a tiny size (the numbers mean nothing here; no timing is checked)."""
    from snncore.sweeps.bench import bench_sweep
    c = bench_sweep(2, tiny=True)
    assert not c.get("skipped"), c.get("skipped")
    assert c["name"] == "sweep" and c["trials"] == 2 and c["slots"] >= 1
    assert c["ours_s"] > c["startup_s"] > 0 and c["reference_s"] > 0
    assert abs(c["ratio"] - c["ours_s"] / c["reference_s"]) < 1e-3 * c["ratio"] + 1e-4
    assert c["met"] is (c["ours_s"] <= 0.65 * c["reference_s"])
    assert c["run_s_sweep"] > 0 and c["run_s_serial"] > 0 and c["in_trial_s"] >= 0
    assert c["ratio_vs_serial_1thread"] == pytest.approx(c["ours_s"] / c["serial_1thread_s"], rel=1e-2)
