import torch

from snncore import rules
from snncore.config import RunConfig
from snncore.record import SpikeRecorder
from snncore.rules.base import Rule
from snncore.store import RunStore
from snncore.train import Trainer

CALLS = []


class Spy(Rule):
    name = "spy"

    def after_forward(self, ctx):
        assert all(p.grad is None for p in ctx.model.parameters())
        CALLS.append(("after_forward", ctx.step))

    def after_backward(self, ctx):
        assert ctx.model.out.weight.grad is not None
        self.before = ctx.model.out.bias.detach().clone()
        CALLS.append(("after_backward", ctx.step))

    def after_step(self, ctx):
        assert not torch.equal(self.before, ctx.model.out.bias)   # the optimizer already stepped
        assert set(ctx.layers) == {"fc1", "out"}
        assert ctx.layers["fc1"].post.shape == (4, ctx.y.numel(), 32)
        CALLS.append(("after_step", ctx.step))

    def on_epoch_end(self, epoch):
        CALLS.append(("epoch_end", epoch))

    def telemetry(self):
        return {"spy/value": 1.0}


def make(tmp_path, monkeypatch, tiny, **kw):
    store = RunStore(tmp_path / "runs")
    cfg = RunConfig.from_dict({**tiny, **kw})
    rid = store.create_run(cfg.to_dict())
    return store, rid, Trainer(cfg, store, rid)


def test_hook_order(tmp_path, monkeypatch, tiny):
    monkeypatch.setitem(rules.REGISTRY, "spy", "test_train:Spy")
    CALLS.clear()
    store, rid, tr = make(tmp_path, monkeypatch, tiny, rule="spy", epochs=2, n_train=128, log_every=1)
    summary = tr.run()
    assert summary["status"] == "finished"
    steps = 2 * 2                                           # 128 samples / 64 per batch, 2 epochs
    expected = []
    for s in range(steps):
        expected += [("after_forward", s), ("after_backward", s), ("after_step", s)]
        if s % 2 == 1:
            expected.append(("epoch_end", s // 2))
    assert CALLS == expected
    tel = store.metrics_frame(rid, "telemetry")
    assert list(tel.index) == list(range(steps)) and (tel["spy/value"] == 1.0).all()


def test_run_writes_store(tmp_path, monkeypatch, tiny):
    store, rid, tr = make(tmp_path, monkeypatch, tiny)
    s = tr.run()
    assert s["status"] == "finished" and 0 <= s["test_accuracy"] <= 1
    run = store.get_run(rid)
    assert run["status"] == "finished" and run["step"] == 4
    m = store.metrics_frame(rid)
    for key in ("train/loss", "train/accuracy", "test/accuracy", "rate/fc1", "sync/chi", "lr"):
        assert key in m
    snap = store.load_snapshot(rid)
    assert snap["raster/fc1"].dtype == bool and snap["raster/fc1"].shape[1] == 4 * 4
    assert snap["raster/input"].shape[0] == 64
    assert len(store.checkpoints(rid)) == 1
    assert list((store.run_dir(rid) / "tb").glob("events.out.tfevents.*"))


def test_ssdp_changes_only_deep_layers(tmp_path, monkeypatch, tiny):
    store, rid, tr = make(tmp_path, monkeypatch, tiny, rule="ssdp", hidden=[16, 16], max_steps=1, log_every=1,
                          rule_params={"a_plus": 0.01})
    # with lr tiny the optimizer barely moves weights; SSDP's change dominates on its targets
    tr.optimizer.param_groups[0]["lr"] = 0.0
    before = {n: p.detach().clone() for n, p in tr.model.named_parameters()}
    tr.run()
    after = dict(tr.model.named_parameters())
    assert torch.equal(before["fcs.0.weight"], after["fcs.0.weight"])
    assert not torch.equal(before["fcs.1.weight"], after["fcs.1.weight"])
    assert not torch.equal(before["out.weight"], after["out.weight"])
    tel = store.metrics_frame(rid, "telemetry")
    assert {"sync/fc2", "sync/out", "dw/fc2", "dw/out"} <= set(tel.columns)


def test_stop_request_ends_cleanly(tmp_path, monkeypatch, tiny):
    store, rid, tr = make(tmp_path, monkeypatch, tiny, epochs=50)
    store.request_stop(rid)
    s = tr.run()
    assert s["status"] == "stopped" and store.get_run(rid)["status"] == "stopped"
    assert tr.step < 50 * 4


def test_divergence_fails_with_message(tmp_path, monkeypatch, tiny):
    store, rid, tr = make(tmp_path, monkeypatch, tiny, epochs=3)
    with torch.no_grad():
        tr.model.out.weight.fill_(float("nan"))
    s = tr.run()
    run = store.get_run(rid)
    assert s["status"] == "failed" and run["status"] == "failed"
    assert "diverged at epoch 1 step" in run["error"] and "lower learning rate" in run["error"]


def test_recorder_memory_is_flat():
    rec = SpikeRecorder(["a"], max_neurons=50, ring=3)
    sizes = []
    for i in range(200):
        rec.observe({"a": (torch.rand(8, 4, 300) < 0.1).float()})
        sizes.append(rec.nbytes())
    assert len(set(sizes[3:])) == 1                          # constant once the ring is full
    snap = rec.snapshot()
    assert snap["raster/a"].shape == (50, 24) and snap["raster/a"].dtype == bool
    assert snap["rate/a"].shape == (24,)


def test_long_run_recording_stays_bounded(tmp_path, monkeypatch, tiny):
    sizes = []
    for epochs in (1, 4):
        store, rid, tr = make(tmp_path / str(epochs), monkeypatch, tiny, epochs=epochs, record_batches=2,
                              snapshots_kept=3)
        tr.run()
        sizes.append((tr.recorder.nbytes(), len(store.snapshot_steps(rid))))
    assert sizes[0] == sizes[1] == (sizes[0][0], 3)


def test_ip2_runs_its_task_sequence_through_the_store(tmp_path, monkeypatch):
    store = RunStore(tmp_path / "runs")
    cfg = RunConfig.from_dict({"rule": "ip2", "rule_params": {"n_tasks": 2, "meta_mode": "fixed",
                                                              "max_updates": 30, "N": 16}})
    assert cfg.model == "rsnn" and cfg.dataset == "l2l_tasks"      # set by the rule
    rid = store.create_run(cfg.to_dict())
    s = Trainer(cfg, store, rid).run()
    assert s["status"] == "finished" and s["tasks"] == 2 and s["mask"] == ["tau_d"]
    run = store.get_run(rid)
    assert run["step"] == 2 and run["total_steps"] == 2               # progress counts tasks
    m = store.metrics_frame(rid)
    its = m["l2l/iterations"].dropna().tolist()
    assert len(its) == 2 and all(1 <= i <= 30 for i in its)
    assert len(m["train/loss"].dropna()) == s["steps"] == sum(its)
    snap = store.load_snapshot(rid)
    assert snap["raster/rsnn"].shape[0] == 16 and snap["rule/tau_d"].shape == (16,)
    tel = store.metrics_frame(rid, "telemetry")
    assert {"tau_d_mean", "tau_s_mean", "theta_mean", "tau_d/q25", "theta/median"} <= set(tel.columns)
    # theta is not learnable here: its quartiles stay exactly where they started
    assert tel["theta/median"].dropna().nunique() == 1


def test_owned_models_and_datasets_are_checked():
    import pytest
    from snncore.config import ConfigError
    with pytest.raises(ConfigError, match="model: rule 'mps' needs model 'mps_mlp'"):
        RunConfig.from_dict({"rule": "mps", "model": "mlp"})
    with pytest.raises(ConfigError, match="dataset: 'l2l_tasks' works with rule 'ip2' only"):
        RunConfig.from_dict({"rule": "bptt", "dataset": "l2l_tasks"})
    assert RunConfig.from_dict({"rule": "mps"}).model == "mps_mlp"


def test_mps_sbp_only_trains_without_an_optimizer(tmp_path, monkeypatch, tiny):
    store, rid, tr = make(tmp_path, monkeypatch, tiny, rule="mps", model="mps_mlp", max_steps=2,
                          rule_params={"mechanisms": ["sbp"]})
    assert tr.optimizer is None
    w = tr.model.layers[-1].W_sbp.clone()
    s = tr.run()
    assert s["status"] == "finished" and not torch.equal(w, tr.model.layers[-1].W_sbp)


def test_resume_continues_from_the_last_checkpoint(tmp_path, monkeypatch, tiny):
    # reference: 3 uninterrupted epochs
    _, _, ref = make(tmp_path / "ref", monkeypatch, tiny, epochs=3, log_every=1)
    ref_summary = ref.run()
    # the same run stopped after epoch 1 (a stop request is honoured at the epoch's end), then resumed
    store, rid, tr = make(tmp_path / "cut", monkeypatch, tiny, epochs=3, log_every=1)
    tr.on_progress = lambda p: p.test_accuracy is not None and store.request_stop(rid)
    assert tr.run()["status"] == "stopped" and tr.epochs_done == 1
    store.reopen(rid)
    tr2 = Trainer(RunConfig.from_dict(store.get_run(rid)["config"]), store, rid)
    assert tr2.resume() == 1 and tr2.step == 4
    s = tr2.run()
    assert s["status"] == "finished" and s["epochs"] == 3 and s["steps"] == ref_summary["steps"]
    # same weights as the uninterrupted run: the RNG streams were restored with the checkpoint
    for (n, a), b in zip(ref.model.state_dict().items(), tr2.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), n
    m = store.metrics_frame(rid)
    assert m["train/loss"].notna().sum() == ref_summary["steps"]           # no step logged twice
    assert list(m["test/accuracy"].dropna().round(6)) == [round(x, 6) for x in
                                                           ref.store.metrics_frame(ref.run_id)["test/accuracy"].dropna()]
    assert [e for e, _, _ in store.checkpoints(rid)] == [1, 2, 3]
