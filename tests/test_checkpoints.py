"""Checkpoints bounded on disk: full ones (with optimizer state) for the newest keep_checkpoints and
the best epoch, weights-only points (weight_history) spread over the run for Inspect; resume, the
fallback to an older checkpoint, crash safety, old stores, and the size of a 300-epoch ResNet-19 run."""
import os
import sqlite3
from pathlib import Path

import pytest
import torch

from snncore import inspect as A
from snncore import store as S
from snncore.__main__ import main
from snncore.config import RunConfig
from snncore.store import RunStore, history_stride, weights_only_state

TINY = ["--hidden", "8", "--timesteps", "2", "--n-train", "32", "--batch-size", "32", "--record-every", "1000"]


def files(store, rid) -> tuple[list[int], list[int]]:
    """(epochs with a full checkpoint file, epochs with a weights-only file) on disk."""
    d = store.run_dir(rid) / "checkpoints"
    names = sorted(p.name for p in d.iterdir())
    assert not [n for n in names if n.endswith(".tmp")]
    full = [int(n[5:10]) for n in names if n.endswith(".pt") and not n.endswith(".weights.pt")]
    weights = [int(n[5:10]) for n in names if n.endswith(".weights.pt")]
    assert len(full) + len(weights) == len(names), names
    return full, weights


def accuracies(store, rid) -> dict[int, float]:
    m = store.metrics_frame(rid)
    acc = m["test/accuracy"].dropna()
    return {int(e): float(a) for e, a in zip(m.loc[acc.index, "epoch"], acc)}


def best_epoch(acc: dict[int, float]) -> int:
    return min(e for e, a in acc.items() if a == max(acc.values()))


def expected(epochs: int, keep: int, history: int, acc: dict[int, float]) -> tuple[list[int], list[int]]:
    k = history_stride(epochs, history)
    full = sorted(set(range(epochs - keep + 1, epochs + 1)) | {best_epoch(acc)})
    return full, [e for e in range(1, epochs + 1) if k and e % k == 0]


def train(runs, *args) -> str:
    assert main(["train", "--runs-dir", str(runs), "--dataset", "digits", *TINY, *args]) == 0
    return RunStore(runs).list_runs()[0]["id"]


def test_history_stride_keeps_at_most_the_cap_evenly_spread_and_only_drops_points():
    before = set()
    for epoch in range(1, 1200):
        k = history_stride(epoch, 50)
        points = [e for e in range(1, epoch + 1) if e % k == 0]
        assert len(points) <= 50 and epoch - points[-1] < k            # spread to the newest epoch
        assert len(points) >= min(epoch, 25)                           # halving never leaves fewer than 25
        assert all(b - a == k for a, b in zip(points, points[1:]))     # even spacing
        assert set(points) - before <= {epoch}                         # a point dropped never comes back
        before = set(points)
    assert history_stride(300, 50) == 8 and history_stride(10, 0) == 0


def test_many_epoch_run_keeps_newest_best_and_thinned_history(tmp_path):
    """A 16-epoch digits run with the flags keeps exactly the newest 2 + best full checkpoints and
    the weights-only points at the multiples of 4 (16 // 2 = 8 > 5 points, 16 // 4 = 4)."""
    runs = tmp_path / "runs"
    rid = train(runs, "--epochs", "16", "--keep-checkpoints", "2", "--weight-history", "5")
    store = RunStore(runs)
    acc = accuracies(store, rid)
    assert len(acc) == 16
    want_full, want_weights = expected(16, 2, 5, acc)
    assert want_weights == [4, 8, 12, 16]
    assert files(store, rid) == (want_full, want_weights)
    assert [e for e, _, _ in store.checkpoints(rid, full=True)] == want_full
    assert [e for e, _, _ in store.checkpoints(rid)] == sorted(set(want_full) | set(want_weights))
    for e, step, path in store.checkpoints(rid):          # each point loads, weights-only ones lack the optimizer
        state = torch.load(path, weights_only=True)
        assert state["epochs_done"] == e and state["step"] == step and "model" in state
        assert ("optimizer" in state) == (e in want_full)


def test_config_field_sets_the_counts_and_zero_history_keeps_no_weights(tmp_path):
    runs = tmp_path / "runs"
    cfg = tmp_path / "c.toml"
    cfg.write_text("keep_checkpoints = 3\nweight_history = 0\n")
    rid = train(runs, "--config", str(cfg), "--epochs", "7")
    store = RunStore(runs)
    full, weights = files(store, rid)
    assert weights == [] and full == sorted({5, 6, 7, best_epoch(accuracies(store, rid))})
    for bad in (["--keep-checkpoints", "0"], ["--weight-history", "-1"]):
        with pytest.raises(SystemExit) as e:
            main(["train", "--runs-dir", str(runs), *bad])
        assert e.value.code == 2


def _stopped_after(runs, epochs_done: int, total: int = 12) -> tuple[RunStore, str]:
    from snncore.train import Trainer
    store = RunStore(runs)
    cfg = RunConfig.from_dict({"epochs": total, "hidden": [8], "timesteps": 2, "n_train": 32, "batch_size": 32,
                               "record_every": 1000, "weight_history": 4})
    rid = store.create_run(cfg.to_dict())
    tr = Trainer(cfg, store, rid)
    tr.on_progress = lambda p: p.test_accuracy is not None and p.epoch >= epochs_done and store.request_stop(rid)
    assert tr.run()["status"] == "stopped"
    return store, rid


def _resume(runs, rid):
    assert main(["train", "--resume", rid, "--runs-dir", str(runs)]) == 0
    store = RunStore(runs)
    run = store.get_run(rid)
    assert run["status"] == "finished" and run["epoch"] == 12
    m = store.metrics_frame(rid)
    assert m["train/loss"].notna().sum() == 12 and len(m["test/accuracy"].dropna()) == 12   # no epoch twice
    return store


def test_resume_from_the_retained_newest_then_bounds_still_hold(tmp_path):
    runs = tmp_path / "runs"
    store, rid = _stopped_after(runs, 9)
    assert files(store, rid)[0] == sorted({8, 9, best_epoch(accuracies(store, rid))})
    store = _resume(runs, rid)
    want = expected(12, 2, 4, accuracies(store, rid))
    assert files(store, rid) == want and want[1] == [4, 8, 12]


def test_damaged_newest_falls_back_to_the_older_retained_one(tmp_path, capsys):
    runs = tmp_path / "runs"
    store, rid = _stopped_after(runs, 9)
    newest = store.checkpoints(rid, full=True)[-1][2]
    assert newest.name == "epoch00009.pt"
    newest.write_bytes(newest.read_bytes()[:1000])                      # truncated
    store = _resume(runs, rid)
    want = expected(12, 2, 4, accuracies(store, rid))
    assert files(store, rid) == want


def test_all_newest_damaged_falls_back_to_the_best(tmp_path):
    runs = tmp_path / "runs"
    store, rid = _stopped_after(runs, 9)
    best = best_epoch(accuracies(store, rid))
    if best >= 8:
        pytest.skip("the best epoch is one of the newest two in this run")   # deterministic seed: not the case
    for e, _, p in store.checkpoints(rid, full=True):
        if e >= 8:
            p.write_bytes(b"")
    from snncore.train import Trainer
    store.reopen(rid)
    tr = Trainer(RunConfig.from_dict(store.get_run(rid)["config"]), store, rid)
    assert tr.resume() == best
    assert [e for e, _, _ in store.checkpoints(rid, full=True)] == [best]      # the later ones forgotten


class Killed(BaseException):
    """Stands in for SIGKILL in the middle of retiring old checkpoints."""


def test_killed_while_retiring_leaves_loadable_checkpoints_and_reopen_sweeps_orphans(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    rid = store.create_run({})
    for e in range(1, 4):
        store.save_checkpoint(rid, e, e, {"epochs_done": e, "step": e, "model": {}}, score=e / 10, history=0)
    real_unlink = Path.unlink

    def unlink(self, *a, **k):
        if self.name.startswith("epoch"):
            raise Killed
        return real_unlink(self, *a, **k)
    monkeypatch.setattr(Path, "unlink", unlink)
    with pytest.raises(Killed):
        store.save_checkpoint(rid, 4, 4, {"epochs_done": 4, "step": 4, "model": {}}, score=0.4, history=0)
    monkeypatch.undo()
    store = RunStore(tmp_path)                              # a fresh process
    rows = store.checkpoints(rid, full=True)
    assert [e for e, _, _ in rows] == [3, 4]                 # the newest two; every row names a loadable file
    for e, _, p in rows:
        assert torch.load(p, weights_only=True)["epochs_done"] == e
    assert (store.run_dir(rid) / "checkpoints" / "epoch00002.pt").exists()       # the orphan
    store.reopen(rid)
    assert files(store, rid) == ([3, 4], [])


def test_new_checkpoint_is_durable_before_an_old_one_goes(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    rid = store.create_run({})
    events = []
    real_write = S.atomic_write_bytes
    monkeypatch.setattr(S, "atomic_write_bytes", lambda p, d, durable=True: (events.append(("write", p.name, durable)),
                                                                            real_write(p, d, durable))[1])
    real_unlink = Path.unlink
    monkeypatch.setattr(Path, "unlink", lambda self, *a, **k: (events.append(("delete", self.name)),
                                                               real_unlink(self, *a, **k))[1])
    for e in range(1, 5):
        store.save_checkpoint(rid, e, e, {"epochs_done": e, "step": e, "model": {}}, score=0.0, history=0)
    assert events[-2:] == [("write", "epoch00004.pt", True), ("delete", "epoch00002.pt")]


def test_old_store_gains_the_columns_and_its_checkpoints_are_thinned(tmp_path):
    """A runs.sqlite from before (no kind / score columns, a full checkpoint per epoch): it opens,
    and the next checkpoint keeps full ones only for the newest two, weights-only history points."""
    rid = "old-run"
    d = tmp_path / rid / "checkpoints"
    d.mkdir(parents=True)
    db = sqlite3.connect(tmp_path / "runs.sqlite")
    db.executescript(S.SCHEMA)
    w = {"fcs.0.weight": torch.ones(2, 2)}
    for e in range(1, 9):
        torch.save({"epochs_done": e, "step": e, "model": w, "optimizer": {"state": {}}}, d / f"epoch{e:05d}.pt")
        db.execute("INSERT INTO checkpoints (run_id, epoch, step, path, created) VALUES (?,?,?,?,0)",
                   (rid, e, e, f"epoch{e:05d}.pt"))
    db.commit()
    db.close()
    store = RunStore(tmp_path)
    assert [e for e, _, _ in store.checkpoints(rid, full=True)] == list(range(1, 9))    # old rows are full
    store.save_checkpoint(rid, 9, 9, {"epochs_done": 9, "step": 9, "model": w, "optimizer": {}},
                          weights={"epochs_done": 9, "step": 9, "model": w}, history=3)
    assert history_stride(9, 3) == 4
    assert files(store, rid) == ([8, 9], [4])       # epoch 8's point is its full checkpoint for now
    store.save_checkpoint(rid, 10, 10, {"epochs_done": 10, "step": 10, "model": w, "optimizer": {}}, history=3)
    assert files(store, rid) == ([9, 10], [4, 8])   # ... converted when it retires
    assert [e for e, _, _ in store.checkpoints(rid)] == [4, 8, 9, 10]
    state = torch.load(d / "epoch00004.weights.pt", weights_only=True)
    assert "optimizer" not in state and torch.equal(state["model"]["fcs.0.weight"], w["fcs.0.weight"])


def test_inspect_weight_history_shows_the_thinned_points(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    rid = train(runs, "--epochs", "20", "--weight-history", "4")
    store = RunStore(runs)
    full, weights = expected(20, 2, 4, accuracies(store, rid))
    assert weights == [8, 16]
    points = sorted(set(full) | set(weights))
    hists = A.run_weight_histograms(store, rid)
    assert set(hists) == {"fc1", "out"} and all(h["epochs"] == points for h in hists.values())
    # the page: the checkpoint and weight sliders offer exactly these epochs, a weights-only one inspects
    from tests.test_inspect_app import inspect_page_opener
    at = inspect_page_opener(runs, monkeypatch)(rid)
    assert not at.error, [e.value for e in at.error]
    assert list(map(int, at.select_slider(key=f"ck_{rid}").options)) == points
    assert list(map(int, at.select_slider(key="weight_epoch").options)) == points
    at.select_slider(key=f"ck_{rid}").set_value(8).run()
    assert not at.exception and not at.error
    assert any(f"run {rid}, epoch 8" in m.value for m in at.markdown)


RESNET_EPOCHS, BUDGET = 300, 3.5e9


def test_300_epoch_resnet19_run_stays_under_3_5_gb(tmp_path, monkeypatch):
    """Sizes measured from a width-1 ResNet-19 (CIFAR-10) with Adam's state; the number of files on
    disk at every moment of a 300-epoch run (just after each write, before anything is retired)
    taken from the real store driven with tiny states."""
    from snncore.models import build_model
    from snncore.train import make_optimizer
    cfg = RunConfig.from_dict({"dataset": "cifar10", "model": "resnet19"})
    model = build_model(cfg, 3 * 32 * 32, 10, (3, 32, 32))
    opt = make_optimizer("adam", [p for p in model.parameters() if p.requires_grad], 1e-3)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()                                               # Adam's two moment buffers per weight

    class Count:
        n = 0

        def write(self, b):
            self.n += len(b)
            return len(b)

        def flush(self):
            pass
    state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "config": cfg.to_dict(),
             "epochs_done": 1, "step": 1, "rng": {"torch": torch.get_rng_state()}}
    sizes = {}
    for kind, s in (("full", state), ("weights", weights_only_state(state))):
        c = Count()
        torch.save(s, c)
        sizes[kind] = c.n
    assert 140e6 < sizes["full"] < 165e6 and 45e6 < sizes["weights"] < 55e6      # ~150 MB and ~50 MB
    del model, opt, state

    monkeypatch.setattr(os, "fsync", lambda fd: None)        # tiny files; only the counts matter here
    store = RunStore(tmp_path)
    rid = store.create_run({})
    d = store.run_dir(rid) / "checkpoints"
    peak = {"bytes": 0}
    real_write = S.atomic_write_bytes

    def write(path, data, durable=True):
        real_write(path, data, durable)
        names = [p.name for p in d.iterdir()]
        n_w = sum(n.endswith(".weights.pt") for n in names)
        peak["bytes"] = max(peak["bytes"], n_w * sizes["weights"] + (len(names) - n_w) * sizes["full"])
    monkeypatch.setattr(S, "atomic_write_bytes", write)
    small = {"epochs_done": 0, "model": {}}
    for e in range(1, RESNET_EPOCHS + 1):
        score = 0.99 if e == 5 else e / 1000                  # the best far back: three full checkpoints kept
        store.save_checkpoint(rid, e, e, small, score=score, weights=small)
    full, weights = files(store, rid)
    assert full == [5, 299, 300] and len(weights) == 37 and weights[-1] == 296       # stride 8
    steady = len(full) * sizes["full"] + len(weights) * sizes["weights"]
    # the bound of the scheme: 50 weights-only points and, while a new full checkpoint is written
    # before an old one goes, 4 full ones (newest two, best, the new one)
    bound = 4 * sizes["full"] + 50 * sizes["weights"]
    assert steady < peak["bytes"] <= bound < BUDGET, (peak, sizes)
    print(f"ResNet-19: full {sizes['full'] / 1e6:.1f} MB, weights-only {sizes['weights'] / 1e6:.1f} MB; "
          f"300 epochs: at the end {steady / 1e9:.2f} GB, peak {peak['bytes'] / 1e9:.2f} GB (budget 3.5 GB)")


def test_inspect_page_survives_its_epoch_being_retired_by_the_live_run(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    rid = train(runs, "--epochs", "6", "--weight-history", "2")
    store = RunStore(runs)
    from tests.test_inspect_app import inspect_page_opener
    at = inspect_page_opener(runs, monkeypatch)(rid)
    at.select_slider(key=f"ck_{rid}").set_value(5).run()
    assert not at.exception
    state = torch.load(store.checkpoints(rid, full=True)[-1][2], weights_only=True)
    state["epochs_done"] = 7                       # the run goes on: epoch 7 retires epoch 5's checkpoint
    store.save_checkpoint(rid, 7, 7, state, score=0.0, weights=weights_only_state(state), history=2)
    at.run()
    assert not at.exception and not at.error
    ck = at.select_slider(key=f"ck_{rid}")
    want = sorted({best_epoch(accuracies(store, rid)), 4, 6, 7})       # history point 4, newest 6 and 7, best
    assert list(map(int, ck.options)) == want and int(ck.value) == 7
