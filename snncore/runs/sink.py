"""The one writer of a run's results: the sink the Trainer's loop and own-loop rules report through.

Metric rows are buffered as (step, epoch, {key: value}); values may stay device tensors until a
flush (at most ~4 per second), so a GPU run syncs a few times per second, not every step. A flush
checks the training loss for divergence (a non-finite train/loss raises Diverged), writes the rows
and the telemetry to the RunStore and, when installed, to TensorBoard, then beats the heartbeat,
whose answer is the stop request.
"""
from __future__ import annotations

import math
import time
from typing import Callable

import torch

from ..config import RunConfig
from ..rules.base import LoopSink


class Diverged(RuntimeError):
    pass


class RunSink(LoopSink):
    """The one writer of a run's results, for the Trainer's loop and for rules that run their own
    (rule.run_loop(sink)): metric rows buffered (values may stay device tensors until a flush,
    ~4 per second) and checked for divergence, telemetry rows, TensorBoard (when installed),
    snapshots, checkpoints, the heartbeat and the stop request it answers.

    Own-loop rules use the LoopSink side (snncore.rules.base.LoopSink): `step` is the global update
    count rows are logged at, `units` the checkpoint units done (rule.checkpoint_unit), and a
    checkpoint stores the rule's loop state under "loop" beside the position and config."""

    LOOP_KEY = "loop"

    def __init__(self, store, run_id: str, cfg: RunConfig, progress: Callable[[], tuple[int, int]] | None = None,
                 unit: str = "epoch"):
        self.store, self.run_id, self.cfg = store, run_id, cfg
        self.pending: list[tuple[int, int, dict]] = []      # (step, epoch, {key: value})
        self.pending_tel: list[tuple[int, dict]] = []       # (step, {key: value})
        self._last_flush = 0.0
        self._tb = None
        self.stop = False
        self.step, self.units, self.unit = 0, 0, unit
        self.log_every = cfg.log_every
        # what the heartbeat reports as (epoch, step); an own loop reports its units as the step
        self.progress = progress or (lambda: (0, self.units))

    # ---- writing
    def tensorboard(self):
        if self._tb is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self._tb = SummaryWriter(str(self.store.run_dir(self.run_id) / "tb"))
            except Exception:  # noqa: BLE001 -- TensorBoard is optional; the store has everything
                self._tb = False
        return self._tb or None

    def write_metrics(self, rows: list[tuple[int, int, str, float]]) -> None:
        if not rows:
            return
        self.store.log_metrics(self.run_id, rows)
        tb = self.tensorboard()
        if tb:  # TensorBoard gets the newest value per key per flush (~4 points a second)
            for k, (s, v) in {k: (s, v) for s, _, k, v in rows}.items():
                tb.add_scalar(k, v, s)

    def write_telemetry(self, items: list[tuple[int, dict]]) -> None:
        trows = [(s, k, v) for s, d in items for k, v in d.items()
                 if isinstance(v, (int, float)) and math.isfinite(v)]
        self.store.log_telemetry(self.run_id, trows)
        tb = self.tensorboard()
        if tb:
            for k, (s, v) in {k: (s, v) for s, k, v in trows}.items():
                tb.add_scalar("rule/" + k, v, s)

    @staticmethod
    def check_finite(rows) -> None:
        for s, e, k, v in rows:
            if k == "train/loss" and not math.isfinite(v):
                raise Diverged(f"diverged at epoch {e + 1} step {s + 1}: loss is {v}")

    def heartbeat(self) -> bool:
        epoch, step = self.progress()
        self.stop = bool(self.store.heartbeat(self.run_id, epoch=epoch, step=step)) or self.stop
        return self.stop

    # control requests (snncore/runs/control.py): the heartbeat's query counts them
    controller = None

    def controls_pending(self) -> bool:
        return bool((getattr(self.store, "controls_waiting", None) or {}).get(self.run_id))

    def controls_seen(self) -> None:
        waiting = getattr(self.store, "controls_waiting", None)
        if isinstance(waiting, dict):
            waiting[self.run_id] = 0

    def flush(self, force: bool = False) -> bool:
        """One process: write the buffered rows (at most ~4 times a second unless force), then
        the heartbeat; returns True when a stop was requested."""
        now = time.monotonic()
        if not force and now - self._last_flush < 0.25:
            return False
        self._last_flush = now
        if self.pending:
            keys, vals = self.take_pending(torch.device("cpu"))
            self.write_rows([(s, e, k, v) for (s, e, k), v in zip(keys, torch.stack(vals).tolist())])
        self.write_pending_telemetry()
        return self.heartbeat()

    def take_pending(self, device: torch.device) -> tuple[list[tuple[int, int, str]], list[torch.Tensor]]:
        """Empty the metric buffer: its (step, epoch, key) list and the values as 0-d float tensors
        on `device` (several processes reduce them there before writing; see Trainer._flush_dist)."""
        keys = [(s, e, k) for s, e, d in self.pending for k in d]
        vals = [(v.detach().float().reshape(()) if isinstance(v, torch.Tensor)
                 else torch.tensor(float(v))).to(device) for _, _, d in self.pending for v in d.values()]
        self.pending.clear()
        return keys, vals

    def write_rows(self, rows: list[tuple[int, int, str, float]], check: bool = True) -> None:
        """Host rows: the divergence check (unless check=False), then the store and TensorBoard."""
        if check:
            self.check_finite(rows)
        self.write_metrics(rows)

    def write_pending_telemetry(self, write: bool = True) -> None:
        """Empty the telemetry buffer, writing it unless write=False (a rank that does not write)."""
        items, self.pending_tel = self.pending_tel, []
        if write and items:
            self.write_telemetry(items)

    def save_snapshot(self, step: int, epoch: int, arrays: dict) -> None:
        if arrays:
            self.store.save_snapshot(self.run_id, step, epoch, arrays, keep=self.cfg.snapshots_kept)

    def save_checkpoint(self, units: int, step: int, state: dict, *, score: float | None = None,
                        weights: dict | None = None) -> None:
        self.store.save_checkpoint(self.run_id, units, step, state, score=score, weights=weights,
                                   keep=self.cfg.keep_checkpoints, history=self.cfg.weight_history)

    def close(self) -> None:
        if self._tb:
            self._tb.close()

    # ---- the LoopSink side, for rules with their own loop
    def metrics(self, values: dict, step: int | None = None, epoch: int = 0) -> None:
        """Buffer metric rows at `step` (default: the current update) and `epoch`."""
        self.pending.append((self.step if step is None else step, epoch, dict(values)))

    def telemetry(self, values: dict, step: int | None = None) -> None:
        if values:
            self.pending_tel.append((self.step if step is None else step, dict(values)))

    def advance(self, steps: int = 0, units: int = 0) -> bool:
        """`steps` updates / `units` checkpoint units done; a (rate-limited) flush after updates.
        Returns True when a stop was requested."""
        self.step += int(steps)
        self.units += int(units)
        if steps:
            self.flush()
            if self.controller is not None and not self.stop and self.controller.boundary():
                self.stop = True        # a stop requested while paused
        return self.stop

    def should_stop(self) -> bool:
        return self.stop

    def snapshot(self, arrays: dict, step: int | None = None) -> None:
        self.save_snapshot(self.step if step is None else step, 0, arrays)

    def checkpoint(self, loop_state: dict) -> None:
        """Every buffered row first, then a checkpoint of this unit boundary (`--resume`
        continues from the newest); it is small (no optimizer), so its history point is all of it."""
        self.flush(force=True)
        state = {self.LOOP_KEY: loop_state, "step": self.step, f"{self.unit}s_done": self.units,
                 "config": self.cfg.to_dict()}
        self.save_checkpoint(self.units, self.step, state, weights=state)
        epoch, step = self.progress()      # progress only: a stop is seen at the next update's flush
        self.store.heartbeat(self.run_id, epoch=epoch, step=step)
