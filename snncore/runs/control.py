"""Pause, step, continue and change a hyperparameter of a live run, through the store.

Requests are rows of the store's `controls` table (RunStore.request_control), written by the app or
the API. The run's heartbeat (about 4 per second, one query it already made for the stop request)
also counts the unanswered requests; only then does the trainer read them, at the next batch
boundary, so a run nobody touches pays nothing more. Requests are answered in order:

    pause       stop before the next batch; the row's status is "paused", the heartbeat goes on
                (every 0.1 s) so health checks see a live process; a stop request still ends it
    continue    train on
    step N      train N batches, then pause again (answered when they are done: the new step)
    step_epoch  train to the end of the current epoch (its evaluation and checkpoint included), then pause
    set         change a hyperparameter (lr or a rule hyperparameter) before the next batch; answered
                with the step it takes effect at, or refused (bad name / value: the message of
                config.check_change; nothing is applied)

Every applied change is stored (RunStore.record_change) with its step: the curves draw it, and
`--resume` and the exported config (RunConfig.changes) replay it at that step.
"""
from __future__ import annotations

import time
from typing import Callable

POLL_S = 0.1


class Controller:
    """Answers a run's control requests at batch boundaries (see the module docstring).

    apply_change(name, value) -> (the step it takes effect at, the typed value); raises ValueError
    to refuse;
    epoch_left() -> batches to the end of the current epoch; refuse: a reason every request is
    refused (e.g. several processes); refuse_change: a reason changes are (e.g. an own-loop rule)."""

    def __init__(self, store, run_id: str, sink, *, step: Callable[[], int],
                 apply_change: Callable[[str, object], int] | None = None,
                 epoch_left: Callable[[], int] | None = None,
                 refuse: str | None = None, refuse_change: str | None = None,
                 refuse_epoch: str | None = None):
        self.store, self.run_id, self.sink = store, run_id, sink
        self.step, self.apply_change, self.epoch_left = step, apply_change, epoch_left
        self.refuse, self.refuse_change, self.refuse_epoch = refuse, refuse_change, refuse_epoch
        self.paused = False
        self.allow = 0                    # batches still to train before pausing again
        self._stepping: int | None = None  # the step request answered when its batches are done

    def boundary(self) -> bool:
        """Before the next batch: answer requests, wait while paused. True when a stop was requested."""
        if self.paused and self.allow > 0:
            if self.sink.controls_pending():
                self._answer()
            if self.paused and self.allow > 0:
                self.allow -= 1
                return False
        if not self.paused and not self.sink.controls_pending():
            return False
        self._answer()
        if self.paused and self.allow == 0:
            if self._wait():
                return True
        if self.paused and self.allow > 0:
            self.allow -= 1
        return False

    def _wait(self) -> bool:
        """Paused: everything logged so far written, status 'paused', the heartbeat kept up until a
        continue or a step request (False) or a stop request (True)."""
        if self.sink.flush(force=True):
            return True
        self.store.set_status(self.run_id, "paused")
        if self._stepping is not None:
            self.store.finish_control(self._stepping, {"step": self.step()})
            self._stepping = None
        while self.paused and self.allow == 0:
            time.sleep(POLL_S)
            if self.sink.heartbeat():
                return True
            if self.sink.controls_pending():
                self._answer()
        if not self.paused:
            self.store.set_status(self.run_id, "running")
        return False

    def _answer(self) -> None:
        for cid, action, arg in self.store.pending_controls(self.run_id) or []:
            if cid == self._stepping:         # taken already, answered when its batches are done
                continue
            if self.refuse:
                self.store.finish_control(cid, error=self.refuse)
                continue
            if action == "pause":
                self.paused, self.allow = True, 0
                self._finish_stepping()
                self.store.set_status(self.run_id, "paused")
                self.store.finish_control(cid, {"step": self.step()})
            elif action == "continue":
                self.paused, self.allow = False, 0
                self._finish_stepping()
                self.store.set_status(self.run_id, "running")
                self.store.finish_control(cid, {"step": self.step()})
            elif action in ("step", "step_epoch"):
                if action == "step_epoch" and (self.epoch_left is None or self.refuse_epoch):
                    self.store.finish_control(cid, error=self.refuse_epoch or "this run has no epochs to step by")
                    continue
                n = int(arg or 1) if action == "step" else int(self.epoch_left())
                self._finish_stepping()
                self.paused, self.allow, self._stepping = True, max(1, n), cid
            elif action == "set":
                if self.refuse_change or self.apply_change is None:
                    self.store.finish_control(cid, error=self.refuse_change or "this run takes no changes")
                    continue
                name, value = arg.get("name"), arg.get("value")
                try:
                    at, value = self.apply_change(name, value)
                except ValueError as e:
                    self.store.finish_control(cid, error=str(e))
                    continue
                self.store.finish_control(cid, {"step": at, "name": name, "value": value})
            else:
                self.store.finish_control(cid, error=f"unknown request {action!r}")
        self.sink.controls_seen()

    def _finish_stepping(self) -> None:
        """A new pause / continue / step ends the step request in progress: answer it now."""
        if self._stepping is not None:
            self.store.finish_control(self._stepping, {"step": self.step()})
            self._stepping = None


# ---- what the app and the API read ------------------------------------------------------------
def run_changes(store, run_id: str, config: dict | None = None) -> list[tuple[int, str, object]]:
    """Every change of a run, in the order it takes effect: the config's planned ones
    (RunConfig.changes) and the ones applied live (the store), as (step, name, value)."""
    from ..config import parse_change
    if config is None:
        row = store.get_run(run_id)
        config = row["config"] if row else {}
    planned = []
    for c in config.get("changes") or []:
        try:
            planned.append(parse_change(c))
        except ValueError:
            continue
    return sorted(planned + list(store.changes(run_id)), key=lambda c: c[0])


def replay_config(store, run_id: str, config: dict | None = None):
    """The run's RunConfig with all its changes in `changes`: what the exported command line and
    TOML carry, so a fresh run from them trains the same weights."""
    from ..config import RunConfig, format_change
    if config is None:
        config = store.get_run(run_id)["config"]
    changes = [format_change(*c) for c in run_changes(store, run_id, config)]
    return RunConfig.from_dict({**config, "changes": changes})


def change_label(name: str, value) -> str:
    return f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}"


def mark_changes(fig, changes: list[tuple[int, str, object]]):
    """A dotted vertical line at each change's step, labelled NAME=VALUE, on a figure whose x axis
    is the optimizer step (its title starts so: the curves, the telemetry, the snapshot series);
    a raster's time steps or a kernel's dt are left alone. Returns the figure."""
    if not changes:
        return fig
    title = fig.layout.xaxis.title.text if fig.layout.xaxis and fig.layout.xaxis.title else None
    if not title or not title.lower().startswith("optimizer step"):
        return fig
    by_step: dict[int, list[str]] = {}
    for step, name, value in changes:
        by_step.setdefault(int(step), []).append(change_label(name, value))
    for step, labels in by_step.items():
        fig.add_vline(x=step, line_dash="dot", line_color="#7a3fb0", line_width=1.5,
                      annotation_text=", ".join(labels), annotation_position="top left",
                      annotation_font_size=10, annotation_font_color="#7a3fb0")
    return fig
