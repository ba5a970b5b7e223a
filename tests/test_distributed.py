"""Several processes: `python -m torch.distributed.run --nproc_per_node=2 -m snncore train ...` on the
CPU (gloo), checked against the store, the checkpoints and a one-process run of the same global batch."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from snncore import distributed as D
from snncore.config import RunConfig
from snncore.data import load_dataset
from snncore.store import RunStore
from snncore.train import Trainer

ROOT = Path(__file__).resolve().parent.parent

# active enough that spikes, SSDP and the gradient all move the weights (direct input, low threshold)
CFG = dict(device="cpu", dataset="digits", encoding="direct", v_threshold=0.2, lr=0.02, timesteps=4, hidden=[32],
           n_train=256, epochs=2, log_every=1, record_every=2, rule="ssdp", rule_params={"a_plus": 0.01})
PER_RANK = 32                      # batch_size is per process: 2 x 32 = one global batch of 64


def flags(cfg: dict) -> list[str]:
    out = []
    for k, v in cfg.items():
        if k == "rule_params":
            out += [f"--{cfg['rule']}.{n.replace('_', '-')}={x}" for n, x in v.items()]
        else:
            out.append(f"--{k.replace('_', '-')}={','.join(map(str, v)) if isinstance(v, list) else v}")
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(args: list[str], timeout: float = 80) -> subprocess.CompletedProcess:
    # cwd=ROOT: `-m snncore` in each worker imports this tree's snncore (first on sys.path)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SNNCORE_DIST_TIMEOUT": "60",
           "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
           "--master-addr=127.0.0.1", f"--master-port={free_port()}", "-m", "snncore", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def summary_of(p: subprocess.CompletedProcess) -> dict:
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def one_process_run(tmp_path, **kw):
    store = RunStore(tmp_path / "single")
    cfg = RunConfig.from_dict({**CFG, "batch_size": 2 * PER_RANK, **kw})
    rid = store.create_run(cfg.to_dict())
    return store, rid, Trainer(cfg, store, rid)


def test_sharding_covers_the_data_once_in_equal_batches():
    b = load_dataset(RunConfig.from_dict({**CFG, "n_train": 101}))
    seen = []
    for r in range(3):
        ys = [y for _, y in b.batches("train", 16, 2, shuffle=True, generator=torch.Generator().manual_seed(5),
                                      rank=r, world=3)]
        assert [len(y) for y in ys] == [16, 16, 2]         # ceil(101 / 3) = 34 per rank, padded
        seen.append(torch.cat(ys))
    order = torch.randperm(101, generator=torch.Generator().manual_seed(5))
    assert torch.equal(torch.stack(seen, 1).flatten()[:101], b.train_y[order])   # rank-strided, same order
    assert b.steps_per_epoch(16, 3) == 3 and b.steps_per_epoch(16) == 7


def test_state_digest_sees_one_changed_weight():
    net = torch.nn.Linear(3, 2)
    d = D.state_digest(net)
    assert d == D.state_digest(net.state_dict()) and len(d) == 16
    with torch.no_grad():
        net.weight[1, 2] += 1e-6
    assert D.state_digest(net) != d


def test_two_processes_train_one_run_with_identical_replicas(tmp_path):
    runs = tmp_path / "runs"
    p = torchrun(["train", f"--runs-dir={runs}", *flags({**CFG, "batch_size": PER_RANK}), "--json"])
    s = summary_of(p)
    steps = 2 * 4                                  # 256 samples / (2 x 32) per step, 2 epochs
    assert s["status"] == "finished" and s["processes"] == 2 and s["steps"] == steps
    d0, d1 = s["replica_digests"]
    assert d0 == d1 and s["replicas_identical"]
    store = RunStore(runs)
    (run,) = store.list_runs()                     # only rank 0 wrote: one run
    assert run["status"] == "finished" and run["device"] == "cpu x2 processes" and run["error"] is None
    rows = store.metrics(run["id"])
    loss_steps = [st for st, _, k, _ in rows if k == "train/loss"]
    assert loss_steps == list(range(steps))        # logged once per step, by one process
    assert [v for _, _, k, v in rows if k == "info/steps_per_epoch"] == [4]
    assert len([1 for _, _, k, _ in rows if k == "test/accuracy"]) == 2
    tel = store.telemetry(run["id"])
    assert sorted({st for st, k, _ in tel if k == "dw/out"}) == list(range(steps))
    assert all(v > 0 for _, k, v in tel if k == "dw/out")          # SSDP changed the read-out every step
    # the saved weights (rank 0's) are the weights every rank ended with
    ck = store.checkpoints(run["id"])
    assert [e for e, _, _ in ck] == [1, 2]
    state = torch.load(ck[-1][2], map_location="cpu", weights_only=True)
    assert D.state_digest(state["model"]) == d0 and state["world"] == 2

    # one process with the global batch (64) sees the same samples in each step: same losses, and
    # after one step (gradient averaged by DDP, SSDP's update averaged over the ranks) the same weights
    store1, rid1, tr = one_process_run(tmp_path)
    assert tr.run()["status"] == "finished"
    loss1 = store1.metrics_frame(rid1)["train/loss"]
    lossN = store.metrics_frame(run["id"])["train/loss"]
    assert lossN.iloc[0] == pytest.approx(loss1.iloc[0], rel=1e-5)
    assert lossN.iloc[1] == pytest.approx(loss1.iloc[1], rel=1e-4)
    assert abs(lossN.iloc[1] - lossN.iloc[0]) > 1e-3               # and the step changed something


def test_stop_request_seen_by_rank0_stops_every_rank(tmp_path):
    runs = tmp_path / "runs"
    store = RunStore(runs)
    cfg = RunConfig.from_dict({**CFG, "batch_size": PER_RANK, "epochs": 50})
    rid = store.create_run(cfg.to_dict(), "stopme-1")
    store.request_stop(rid)                         # seen by rank 0 only, at its first heartbeat
    p = torchrun(["train", f"--runs-dir={runs}", f"--run-id={rid}", *flags({**CFG, "batch_size": PER_RANK,
                                                                            "epochs": 50}), "--json"])
    s = summary_of(p)                               # both processes ended (no hang), exit 0
    assert s["status"] == "stopped" and s["steps"] == 1 and s["replicas_identical"]
    assert store.get_run(rid)["status"] == "stopped"
    assert [st for st, _, k, _ in store.metrics(rid) if k == "train/loss"] == [0]


def test_resume_on_two_processes_what_one_process_began(tmp_path):
    store, rid, tr = one_process_run(tmp_path, epochs=3)
    tr.on_progress = lambda pr: pr.test_accuracy is not None and store.request_stop(rid)   # after epoch 1
    s1 = tr.run()
    assert s1["status"] == "stopped" and s1["epochs"] == 1 and s1["steps"] == 4
    p = torchrun(["train", f"--runs-dir={tmp_path / 'single'}", f"--resume={rid}", "--json"])
    s = summary_of(p)
    # epochs 2 and 3 on two processes: 256 / (2 x 64) = 2 steps each
    assert s["status"] == "finished" and s["epochs"] == 3 and s["steps"] == 4 + 2 * 2
    assert s["replicas_identical"] and s["processes"] == 2
    rows = store.metrics(rid)
    assert [st for st, _, k, _ in rows if k == "train/loss"] == list(range(8))
    assert [v for _, _, k, v in rows if k == "epoch"] == [1, 2, 3]


def test_bad_flag_exits_2_without_a_run(tmp_path):
    runs = tmp_path / "runs"
    p = torchrun(["train", f"--runs-dir={runs}", "--hidden=abc"], timeout=60)
    assert p.returncode != 0
    # one line per process that got to say it: torchrun may stop the other once the first exits 2
    assert 1 <= p.stderr.count("error: hidden: expected sizes like 256 or 256,128, got 'abc'") <= 2, p.stderr
    assert not runs.exists()                                      # refused before any store was made
