"""The Trainer: one loop, hook order visible top to bottom.

    for each batch:
        zero grads; reset states; out = model(x)            # [T, B, C]; model keeps per-layer spikes
        loss = loss_fn(out, y)
        rule.after_forward(ctx)
        loss.backward();  rule.after_backward(ctx)
        optimizer.step(); rule.after_step(ctx)  # local (e.g. SSDP) updates land here
        metrics + rule.telemetry() -> RunSink (snncore/runs/sink.py) -> RunStore
    evaluate; checkpoint (bounded on disk: see RunStore.save_checkpoint); rule.on_epoch_end(epoch)

Metric values stay tensors on the device until a flush, so a GPU run syncs a few times per second,
not every step. A rule that runs its own loop (Rule.runs_own_loop, e.g. a task sequence) gets the
same RunSink and reports through it (Rule.run_loop); the Trainer knows no rule by name.

Several processes (torchrun, see snncore/distributed.py): the forward goes through a
DistributedDataParallel wrapper (self.net; self.model stays the inner module the rules see), each
rank trains on its share of every batch order, and the ranks meet at "sync points" (about 4 per
second, the interval chosen by rank 0 and broadcast): pending metrics are averaged over the ranks
and rank 0's stop request travels with them, so a stop or a divergence ends every rank at the same
step. Only rank 0 writes to the RunStore (the others hold a NullStore).
"""
from __future__ import annotations

import dataclasses
import math
import os
import random
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional

from . import distributed as D
from . import threads
from .config import RunConfig
from .data import load_dataset
from .metrics import chi_synchrony
from .models import build_model
from .record import SpikeRecorder
from .rules import get_rule
from .rules.base import StepContext
from .runs.control import Controller
from .runs.sink import Diverged, RunSink  # noqa: F401  (Diverged: the loop's error, raised by the sink)
from .store import RunStore, weights_only_state


class StopRequested(Exception):
    pass


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: 'cuda' was asked for but no CUDA GPU is available (use auto or cpu)")
    return torch.device(name)


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def loss_fn(out: torch.Tensor, y: torch.Tensor, readout: str) -> torch.Tensor:
    """out [T, B, C]: 'mem' -> cross-entropy on the mean logit over T; 'rate' -> MSE of the mean
    firing rate against the one-hot label (SpikingJelly's tutorial convention)."""
    if readout == "rate":
        return F.mse_loss(out.mean(0), F.one_hot(y, out.shape[-1]).float())
    return F.cross_entropy(out.mean(0), y)


@dataclass
class Progress:
    epoch: int
    epochs: int
    step: int
    total_steps: int
    elapsed: float
    loss: float | None = None
    test_accuracy: float | None = None


def make_optimizer(name: str, params, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """SGD (momentum 0.9), Adam or AdamW. Adam/AdamW use torch's fused kernel where every parameter
    allows it (float, CPU or CUDA): one pass per tensor instead of ~10 ops (2.6 -> 0.35 ms per step
    on the MNIST-size MLP, 2 CPU cores; same update up to float rounding)."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    cls = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
    groups = [dict(g, params=list(g["params"])) if isinstance(g, dict) else g for g in params]
    tensors = [p for g in groups for p in (g["params"] if isinstance(g, dict) else [g])]
    fused = bool(tensors) and all(p.dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16)
                                  and p.device.type in ("cpu", "cuda") for p in tensors)
    return cls(groups, lr=lr, weight_decay=weight_decay, fused=fused or None)


class Trainer:
    def __init__(self, cfg: RunConfig, store: RunStore, run_id: str,
                 on_progress: Callable[[Progress], None] | None = None):
        self.cfg, self.store, self.run_id = cfg, store, run_id
        self.on_progress = on_progress
        self.device = resolve_device(cfg.device)
        # several processes (torchrun): rank 0 alone writes to the store; CUDA ranks use cuda:LOCAL_RANK
        self.dist, self.rank, self.world = D.is_distributed(), D.rank(), D.world()
        self.is_main = self.rank == 0
        if self.dist and self.device.type == "cuda":
            self.device = torch.device("cuda", D.local_rank())
        self._sync_every, self._next_sync, self._sync_clock = 1, 1, None
        # mixed precision (cfg.amp): forward + loss under torch.autocast; fp16 also scales the loss
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(getattr(cfg, "amp", "off"))
        if self.amp_dtype is torch.float16 and self.device.type != "cuda":
            raise ValueError("amp: 'fp16' needs a CUDA GPU and this run is on the CPU; use amp=bf16 or off")
        self.scaler = None
        self.gen = seed_everything(cfg.seed)
        self.step = 0
        self.epoch = 0
        self.epochs_done = 0
        self._own_resume = None        # own-loop rules: the loop state of the checkpoint being continued
        self._best = 0.0
        rule_cls = get_rule(cfg.rule)
        self.own_loop = bool(rule_cls.runs_own_loop)    # e.g. a task sequence, not a dataset
        self.sink = RunSink(store, run_id, cfg, unit=rule_cls.checkpoint_unit,
                            progress=None if self.own_loop else lambda: (self.epochs_done, self.step))
        if self.own_loop:
            if self.dist:
                raise ValueError(f"rule {cfg.rule!r} runs its own loop in one process; "
                                 "start it without torchrun")
            self.rule = rule_cls(cfg.rule_object_params(), None, total_steps=1, device=self.device)
            self.sink.controller = Controller(
                store, run_id, self.sink, step=lambda: self.sink.step,
                refuse_change=f"rule {cfg.rule!r} runs its own loop: its hyperparameters cannot be changed "
                              f"while it runs (pause, step and continue work)",
                refuse_epoch=f"rule {cfg.rule!r} runs its own loop, not epochs: step it by updates")
            return
        self.data = load_dataset(cfg).to(self.device)
        self.model = build_model(cfg, self.data.input_size, self.data.n_classes, self.data.input_shape).to(self.device)
        self.steps_per_epoch = self.data.steps_per_epoch(cfg.batch_size, self.world)
        self.total_steps = cfg.epochs * self.steps_per_epoch
        if cfg.max_steps:
            self.total_steps = min(self.total_steps, cfg.max_steps)
        # a model with nothing to train by gradient (e.g. MPS with SBP alone) gets no optimizer
        self.optimizer = self._make_optimizer() if any(p.requires_grad for p in self.model.parameters()) else None
        self.scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=self.total_steps)
                          if cfg.schedule == "cosine" and self.optimizer is not None else None)
        if self.amp_dtype is torch.float16 and self.optimizer is not None:
            self.scaler = torch.amp.GradScaler("cuda")
        self.rule = rule_cls(cfg.rule_object_params(), self.model, total_steps=self.total_steps,
                             device=self.device)
        self.net = self.model     # what the training forward calls: the DDP wrapper with several processes
        if self.dist:
            if self.optimizer is not None and self.rule.uses_gradient:
                from torch.nn.parallel import DistributedDataParallel
                self.net = DistributedDataParallel(
                    self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
            else:   # nothing for DDP to average: local rules reduce their own updates
                D.sync_module(self.model)
        names = self.model.names
        self.record_layer = cfg.record_layer or names[0]
        if self.record_layer not in names:
            raise ValueError(f"record_layer: {self.record_layer!r} is not a layer of this model "
                             f"(choose from {', '.join(names)})")
        self.recorder = SpikeRecorder(["input", self.record_layer], cfg.record_neurons,
                                      cfg.record_batches, seed=cfg.seed)
        # hyperparameter changes during the run (snncore/runs/control.py): the learning rate they set
        # scales the optimizer groups that started at cfg.lr (not, e.g., MPS's own lr_z group)
        self._lr_base = cfg.lr
        self._lr_groups = ([i for i, g in enumerate(self.optimizer.param_groups) if math.isclose(g["lr"], cfg.lr)]
                           if self.optimizer is not None else [])
        self._batch_in_epoch = 0
        self._schedule = self._planned_changes(after=-1)      # (step, name, value) still to apply
        self.controller = Controller(
            store, run_id, self.sink, step=lambda: self.step, apply_change=self._live_change,
            epoch_left=lambda: self.steps_per_epoch - self._batch_in_epoch,
            refuse="pause, step and hyperparameter changes are not available for a run on several "
                   "processes" if self.dist else None)

    # ---- hyperparameter changes during the run ---------------------------------------------
    def _planned_changes(self, after: int) -> list[tuple[int, str, object]]:
        """The run's changes at steps > after, in the order they take effect: the config's planned
        ones (RunConfig.changes, e.g. from an exported config), then the ones applied live and stored
        (a resumed run replays them)."""
        from .config import parse_change
        planned = [parse_change(c) for c in self.cfg.changes]
        stored = list(self.store.changes(self.run_id) or []) if self.is_main else []
        if self.dist:        # every rank applies the same list: rank 0's, broadcast
            stored = D.broadcast_object(stored)
        both = sorted(planned + stored, key=lambda c: c[0])          # stable: planned first on a tie
        return [c for c in both if c[0] > after]

    def _apply_change(self, name: str, value, restore: bool = False):
        """Set `name` (lr or a rule hyperparameter) to `value` (checked as RunConfig checks it; a
        ValueError names what is allowed); returns the typed value. restore=True: the change is
        already in the checkpoint's optimizer state (a resumed run's change before its checkpoint),
        only the rule's parameters and the lr bookkeeping are set."""
        from .config import LIVE_RUN_FIELDS, check_change
        value = check_change(self.cfg, name, value)
        if name in LIVE_RUN_FIELDS:            # the learning rate: the schedule scaled by new / old
            if self.optimizer is None:
                raise ValueError("lr: this run has no optimizer (nothing in it is trained by gradient)")
            ratio, self._lr_base = value / self._lr_base, value
            if not restore:
                for i in self._lr_groups:
                    self.optimizer.param_groups[i]["lr"] *= ratio
                    if self.scheduler is not None:
                        self.scheduler.base_lrs[i] *= ratio
                if self.scheduler is not None:
                    self.scheduler._last_lr = [g["lr"] for g in self.optimizer.param_groups]
        else:
            self.rule.params = dataclasses.replace(self.rule.params, **{name: value})
        return value

    def _live_change(self, name: str, value) -> tuple[int, object]:
        """A change asked for while the run is live: applied before the next batch and stored."""
        value = self._apply_change(name, value)
        self.store.record_change(self.run_id, self.step, name, value)
        return self.step, value

    def _apply_due_changes(self) -> None:
        while self._schedule and self._schedule[0][0] <= self.step:
            _, name, value = self._schedule.pop(0)
            self._apply_change(name, value)

    def _make_optimizer(self) -> torch.optim.Optimizer:
        c = self.cfg
        if hasattr(self.model, "param_groups"):      # e.g. MPS: assignment logits in their own group
            params = self.model.param_groups(c.lr, getattr(c.rule_object_params(), "lr_z", c.lr))
        else:
            params = [p for p in self.model.parameters() if p.requires_grad]
        return make_optimizer(c.optimizer, params, c.lr, c.weight_decay)

    # ---- logging ---------------------------------------------------------------------------
    def _flush(self, force: bool = False) -> bool:
        """Write buffered metrics; returns True when a stop was requested."""
        if self.dist:
            return self._flush_dist(force)
        return self.sink.flush(force)

    def _flush_dist(self, force: bool = False, collective: bool = True) -> bool:
        """Several processes: at a sync point (a step count every rank agrees on, or force) the
        pending metrics are averaged over the ranks in one all-reduce that also carries rank 0's
        stop request and the next sync interval; rank 0 writes them. Every rank sees the same
        averaged loss, so a divergence raises on all of them. collective=False (cleanup after an
        error): rank 0 writes what it has, unreduced, and nobody waits for the others."""
        if not force and self.step < self._next_sync:
            return False
        comm = torch.device("cuda" if self.device.type == "cuda" else "cpu")   # nccl: CUDA tensors
        keys, vals = self.sink.take_pending(comm)
        stop = False
        if self.is_main:
            now = time.monotonic()
            stop = self.sink.heartbeat()
            # next interval: about 0.25 s of steps, from the time per step since the last sync point
            if self._sync_clock is not None and self.step > self._sync_clock[1]:
                per_step = (now - self._sync_clock[0]) / (self.step - self._sync_clock[1])
                self._sync_every = int(min(1000, max(1, 0.25 / max(per_step, 1e-6))))
            self._sync_clock = (now, self.step)
        if collective:
            ctrl = torch.tensor([float(stop), float(self._sync_every)] if self.is_main else [0.0, 0.0],
                                device=comm)
            buf = torch.cat([torch.stack(vals), ctrl]) if vals else ctrl
            D.all_reduce_sum_(buf)
            host = buf.tolist()
            stop, self._sync_every = bool(host[-2]), int(host[-1])
            values = [v / self.world for v in host[:-2]]
        else:
            values = torch.stack(vals).tolist() if vals else []
        self._next_sync = self.step + self._sync_every
        rows = [(s, e, k, v) for (s, e, k), v in zip(keys, values)]
        if collective:
            RunSink.check_finite(rows)      # every rank: a divergence ends all of them
        if self.is_main:
            self.sink.write_rows(rows, check=False)
        self.sink.write_pending_telemetry(write=self.is_main)
        return stop

    def _snapshot(self) -> None:
        if not self.is_main:
            return
        arrays = self.recorder.snapshot()
        arrays.update({f"rule/{k}": v for k, v in self.rule.arrays().items()})
        self.sink.save_snapshot(self.step, self.epoch, arrays)

    # ---- the loop -------------------------------------------------------------------------
    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        cfg, model, rule = self.cfg, self.model, self.rule
        self.net.train()
        if self.optimizer is not None:
            self.optimizer.zero_grad(set_to_none=True)
        functional.reset_net(model)
        with self.autocast():
            out = self.net(x)                                   # [T, B, C]
            loss = self.loss(out, y)
        ctx = StepContext(step=self.step, epoch=self.epoch, total_steps=self.total_steps, model=model,
                          x=x, y=y, out=out, loss=loss, layers=model.layer_traces(),
                          optimizer=self.optimizer)
        rule.after_forward(ctx)
        if rule.uses_gradient and self.optimizer is not None:
            if self.scaler is None:
                loss.backward()
                rule.after_backward(ctx)
                self.optimizer.step()
            else:   # fp16: scaled backward; gradients unscaled before the rule sees them
                self.scaler.scale(loss).backward()
                self.scaler.unscale_(self.optimizer)
                rule.after_backward(ctx)
                self.scaler.step(self.optimizer)
                self.scaler.update()
        rule.after_step(ctx)
        if self.scheduler is not None:
            self.scheduler.step()
        m = {"train/loss": loss.detach()}                     # every step: free (stays a tensor)
        log, rec = self.step % cfg.log_every == 0, self.is_main and self._recording_soon()
        if log or rec:
            with torch.no_grad():
                spikes = {"input": x, **{n: t.post for n, t in ctx.layers.items() if t.spiking}}
                if log:  # the rest every log_every steps: they cost ~15 % of a small step
                    m["train/accuracy"] = (out.mean(0).argmax(-1) == y).float().mean()
                    m["lr"] = self.optimizer.param_groups[0]["lr"] if self.optimizer is not None else 0.0
                    for name in spikes:
                        if name != "input":
                            m[f"rate/{name}"] = spikes[name].mean()
                    # chi on the first 16 samples: an estimate of the batch mean at a quarter of the cost
                    m["sync/chi"] = chi_synchrony(spikes.get(self.record_layer, x)[:, :16])
                if rec:
                    self.recorder.observe(spikes)
        return m

    def autocast(self):
        """torch.autocast for cfg.amp (bf16 / fp16); a disabled one when amp is off."""
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                              enabled=self.amp_dtype is not None)

    def _recording_soon(self) -> bool:
        """True for the last `record_batches` steps before a snapshot (all the ring buffer keeps)."""
        c = self.cfg
        ahead = (-self.step) % c.record_every
        return ahead < c.record_batches or self.step >= self.total_steps - c.record_batches

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        self.model.eval()
        correct, total, loss_sum = 0, 0, 0.0
        g = torch.Generator().manual_seed(12345 + self.rank)    # the same test encoding every epoch
        # several processes: each rank evaluates its share (no padding), the counts are summed below
        for x, y in self.data.batches("test", max(self.cfg.batch_size, 256), self.cfg.timesteps,
                                      shuffle=False, generator=g, rank=self.rank, world=self.world,
                                      pad=False):
            functional.reset_net(self.model)
            with self.autocast():
                out = self.model(x)
                loss_sum += float(self.loss(out, y)) * y.numel()
            correct += int((out.mean(0).argmax(-1) == y).sum())
            total += y.numel()
        functional.reset_net(self.model)
        if self.dist:
            t = torch.tensor([correct, total, loss_sum], dtype=torch.float64,
                             device="cuda" if self.device.type == "cuda" else "cpu")
            correct, total, loss_sum = D.all_reduce_sum_(t).tolist()
        return {"test/accuracy": correct / max(total, 1), "test/loss": loss_sum / max(total, 1)}

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if hasattr(self.model, "loss"):              # a model with its own readout loss (MPS)
            return self.model.loss(out, y)
        return loss_fn(out, y, self.cfg.readout)

    def checkpoint_state(self) -> dict:
        """Everything a resume needs: weights, optimizer and schedule, rule state, position, RNGs.
        Plain tensors and containers only, so it loads with torch.load(weights_only=True)."""
        return {"model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict() if self.optimizer is not None else None,
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "rule": self.rule.state_dict(), "epochs_done": self.epochs_done, "step": self.step,
                "rng": {"torch": torch.get_rng_state(), "data": self.gen.get_state()},
                "best": self._best, "config": self.cfg.to_dict(), "world": self.world}

    def _load_newest_checkpoint(self) -> tuple[int, dict]:
        """The newest checkpoint that loads (a damaged newest one falls back to the one before).
        Several processes: rank 0 reads it (on the CPU) and sends it to the others."""
        if self.dist:
            got = None
            if self.is_main:
                try:
                    got = self._read_newest_checkpoint(torch.device("cpu"))
                except ValueError as e:
                    got = str(e)
            got = D.broadcast_object(got)
            if isinstance(got, str):
                raise ValueError(got)
            return got
        return self._read_newest_checkpoint(self.device)

    def _read_newest_checkpoint(self, map_location) -> tuple[int, dict]:
        cks = self.store.checkpoints(self.run_id, full=True)
        if not cks:
            raise ValueError(f"run {self.run_id} has no checkpoint to resume from")
        problems = []
        for epoch, step, path in reversed(cks):
            try:
                state = torch.load(path, map_location=map_location, weights_only=True)
                if not isinstance(state, dict):
                    raise ValueError("not a checkpoint dictionary")
                return epoch, state
            except Exception as e:  # noqa: BLE001 -- truncated, corrupt or hostile: never executed
                first = (str(e).strip().splitlines() or ["empty or truncated file"])[0][:120]
                problems.append(f"{path.name}: {type(e).__name__}: {first}")
        raise ValueError(f"run {self.run_id}: no checkpoint could be loaded ({'; '.join(problems)})")

    def resume(self) -> int:
        """Restore the newest loadable checkpoint; drop what was logged after it. Returns its epoch."""
        epoch, state = self._load_newest_checkpoint()
        if self.own_loop:
            unit = self.rule.checkpoint_unit
            key = next((k for k in (RunSink.LOOP_KEY, *self.rule.legacy_loop_keys) if k in state), None)
            if key is None:
                raise ValueError(f"run {self.run_id}: its checkpoint predates resumable {unit} sequences")
            self._own_resume = state[key]
            self.sink.step, self.sink.units = int(state["step"]), int(state[f"{unit}s_done"])
            self.step = self.sink.step
            self.store.truncate_after(self.run_id, self.step, epoch)
            return epoch
        self.model.load_state_dict(state["model"])
        if self.optimizer is not None and state.get("optimizer") is not None:
            self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.rule.load_state_dict(state.get("rule") or {})
        self.epochs_done, self.step = int(state["epochs_done"]), int(state["step"])
        torch.set_rng_state(state["rng"]["torch"].cpu())
        self.gen.set_state(state["rng"]["data"].cpu())
        self._best = float(state.get("best", 0.0))
        if int(state.get("world", 1)) != self.world:
            # resumed with another number of processes: the remaining epochs take this run's steps
            self.total_steps = self.step + max(0, self.cfg.epochs - self.epochs_done) * self.steps_per_epoch
            if self.cfg.max_steps:
                self.total_steps = min(self.total_steps, self.cfg.max_steps)
        if self.scheduler is not None and self.scheduler.T_max != max(1, self.total_steps):
            self._replan_schedule()      # the run got longer or shorter (--epochs N, other processes)
        # changes before the checkpoint's step are in its state (the optimizer's rates) but not in the
        # rule's parameters: set them; the later ones are applied when their step comes
        for _, name, value in [c for c in self._planned_changes(after=-1) if c[0] < self.step]:
            self._apply_change(name, value, restore=True)
        self._schedule = self._planned_changes(after=self.step - 1)
        self.store.truncate_after(self.run_id, self.step, self.epochs_done)
        return epoch

    def _replan_schedule(self) -> None:
        """The cosine schedule stretched over the new total steps, the rate set to its value at this
        step: the scheduler's own update is a ratio to the current rate, which would keep a finished
        run's (zero) rate at zero."""
        s = self.scheduler
        s.T_max = max(1, self.total_steps)
        at = min(s.last_epoch, s.T_max)
        lrs = [s.eta_min + (base - s.eta_min) * (1 + math.cos(math.pi * at / s.T_max)) / 2 for base in s.base_lrs]
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        s._last_lr = lrs

    def run(self) -> dict:
        # the run's one thread budget given to torch, Numba and BLAS, recorded (snncore/threads.py)
        self.threads = threads.apply()
        self.store.log_metrics(self.run_id, [(self.step, self.epochs_done, "info/threads", self.threads["budget"])])
        if self.own_loop:
            return self.run_own_loop()
        cfg = self.cfg
        t0 = time.monotonic()
        self.store.start_run(self.run_id, pid=os.getpid(), device=self._device_label(), total_steps=self.total_steps)
        t0 -= self.store.elapsed(self.run_id) or 0.0   # earlier sessions of a resumed run (NullStore on other ranks: None)
        if self.step == 0:
            self.store.log_metrics(self.run_id, [(0, 0, "info/steps_per_epoch", self.steps_per_epoch)])
        status, error, last_eval = "finished", None, {}
        try:
            for self.epoch in range(self.epochs_done, cfg.epochs):
                for self._batch_in_epoch, (x, y) in enumerate(self.data.batches(
                        "train", cfg.batch_size, cfg.timesteps, shuffle=True, generator=self.gen, rank=self.rank,
                        world=self.world, sample_generator=self._sample_generator())):
                    if self.step >= self.total_steps:
                        break
                    # the batch boundary: planned / replayed changes due now, then requests (pause,
                    # step, a live change); both before this batch, so a change at step S is never in
                    # a checkpoint taken at step S (a resume applies it again at S)
                    self._apply_due_changes()
                    if self.is_main and self.controller.boundary():
                        raise StopRequested
                    m = self.train_step(x, y)
                    self.sink.metrics(m, step=self.step, epoch=self.epoch)
                    if self.step % cfg.log_every == 0 and self.is_main:
                        self.sink.telemetry(self.rule.telemetry(), step=self.step)
                    if self.step % cfg.record_every == 0:
                        self._snapshot()
                    self.step += 1
                    if self._flush():
                        raise StopRequested
                    if self.on_progress:
                        self.on_progress(Progress(self.epoch, cfg.epochs, self.step, self.total_steps,
                                                  time.monotonic() - t0))
                if self._flush(force=True) and self.dist:
                    raise StopRequested     # several processes: stop at this sync point, every rank
                if self.net is not self.model:
                    D.sync_buffers(self.model)   # DDP's rule: rank 0's buffers (e.g. BN running stats)
                last_eval = self.evaluate()
                self._best = max(self._best, last_eval["test/accuracy"])
                self.store.log_metrics(self.run_id, [(self.step, self.epoch, k, v) for k, v in last_eval.items()]
                                       + [(self.step, self.epoch, "epoch", self.epoch + 1)])
                self._checkpoint_weights_finite()
                self.rule.on_epoch_end(self.epoch)
                self.epochs_done = self.epoch + 1
                if self.is_main:
                    state = self.checkpoint_state()
                    self.sink.save_checkpoint(self.epochs_done, self.step, state, score=last_eval["test/accuracy"],
                                              weights=weights_only_state(state))
                if self.on_progress:
                    self.on_progress(Progress(self.epoch + 1, cfg.epochs, self.step, self.total_steps,
                                              time.monotonic() - t0, test_accuracy=last_eval["test/accuracy"]))
                if D.broadcast_flag(self.sink.heartbeat()):
                    raise StopRequested
                if self.step >= self.total_steps:
                    break
            self._snapshot()
        except StopRequested:
            status = "stopped"
            self._snapshot()
        except Diverged as e:
            status, error = "failed", f"{e}; the last good checkpoint is kept. Try a lower learning rate."
        finally:
            try:
                if self.dist:    # no collective here: this rank may be leaving after its own error
                    self._flush_dist(force=True, collective=False)
                else:
                    self._flush(force=True)
            except Diverged as e:
                status, error = "failed", f"{e}; the last good checkpoint is kept. Try a lower learning rate."
            self.sink.close()
        digests = None
        if self.dist:   # every rank reached here together: check that the replicas stayed identical
            if self.net is not self.model:
                D.sync_buffers(self.model)
            digests = D.all_gather_object(D.state_digest(self.model))
        summary = {"run_id": self.run_id, "status": status, "epochs": self.epochs_done,
                   "steps": self.step, "test_accuracy": last_eval.get("test/accuracy"),
                   "best_test_accuracy": self._best if last_eval else None,
                   "seconds": round(time.monotonic() - t0, 3), "device": str(self.device),
                   "rule": cfg.rule, "dataset": cfg.dataset, "threads": self.threads}
        if self.dist:
            summary.update(processes=self.world, replica_digests=digests,
                           replicas_identical=len(set(digests)) == 1)
            if len(set(digests)) != 1 and self.is_main:
                error = (error + "; " if error else "") + "the processes' weights differ at the end"
        self.store.end_run(self.run_id, status, error=error, summary=summary)
        if error:
            summary["error"] = error
        return summary

    def _device_label(self) -> str:
        return f"{self.device} x{self.world} processes" if self.dist else str(self.device)

    def _sample_generator(self) -> torch.Generator | None:
        """Several processes: this rank's own encoding / augmentation noise, seeded per (seed, rank,
        epoch) so a resume from an epoch's checkpoint draws the same; self.gen then only draws the
        batch order and stays identical on every rank. One process: None (self.gen does both)."""
        if not self.dist:
            return None
        return torch.Generator().manual_seed((self.cfg.seed * 1_000_003 + 7919 * (self.rank + 1)
                                              + self.epoch) % (2 ** 63))

    def _checkpoint_weights_finite(self) -> None:
        for n, p in self.model.named_parameters():
            if not torch.isfinite(p).all():
                raise Diverged(f"diverged at epoch {self.epoch + 1} step {self.step}: weights of {n} are not finite")

    # ---- rules with their own loop (e.g. learning to learn over a task family) ---------------
    def run_own_loop(self) -> dict:
        """The rule runs the whole run (rule.run_loop) and reports through the same sink as the
        dataset loop: metrics per update (step = global update count), its checkpoints per unit
        (rule.checkpoint_unit), snapshots; progress counts units."""
        t0 = time.monotonic()
        self.store.start_run(self.run_id, pid=os.getpid(), device=str(self.device),
                             total_steps=self.rule.planned_units())
        t0 -= self.store.elapsed(self.run_id) or 0.0   # earlier sessions of a resumed run
        status, error, result = "finished", None, None
        try:
            result = self.rule.run_loop(self.sink, self.cfg.seed, resume=self._own_resume)
            if result.get("stopped"):
                status = "stopped"
        finally:
            self.sink.flush(force=True)
            self.sink.close()
            self.step = self.sink.step
        res = dict(result or {})
        res.pop("stopped", None)
        summary = {"run_id": self.run_id, "status": status, "epochs": 1 if status == "finished" else 0,
                   "steps": self.step, "test_accuracy": None, **res,
                   "seconds": round(time.monotonic() - t0, 3), "device": str(self.device),
                   "rule": self.cfg.rule, "dataset": self.cfg.dataset, "threads": self.threads}
        self.store.end_run(self.run_id, status, error=error, summary=summary)
        return summary
