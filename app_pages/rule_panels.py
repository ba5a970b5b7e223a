"""Rule-specific live panels of the Train page (called from its live fragment).

Each rule saves its non-scalar state with every spike snapshot (``rule.arrays()`` -> 'rule/<name>'
in the .npz) and declares its panels in its package's panels.py (:mod:`snncore.viz.panels`): a pure
builder from the newest snapshot and a handful of earlier ones, plus the telemetry frame, to
figures and texts. This module reads the snapshots and draws what the builder returns; a rule
without a builder gets its telemetry charts. It never raises on missing data: a run that has no
snapshot yet gets a caption.
"""
from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import pandas as pd
import streamlit as st

from snncore.viz.panels import (RECONSTRUCTED_NOTE, Figure, PanelView, Row, Text,  # noqa: F401
                                default_panels)

N_SNAPSHOTS = 10                # snapshots read for the over-time views (evenly spaced, newest last)

_CACHE: "OrderedDict[tuple, dict]" = OrderedDict()   # (root, run, step) -> the rule arrays
_CACHE_MAX = 256
_LOCK = threading.Lock()


# ------------------------------------------------------------------------------- data access
def _rule_arrays(store, run_id: str, step: int) -> dict | None:
    """The 'rule/<name>' arrays of one snapshot (prefix stripped), cached: a snapshot never changes."""
    key = (str(getattr(store, "root", "")), run_id, int(step))
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    snap = store.load_snapshot(run_id, int(step))
    if snap is None:
        return None
    arrays = {k[len("rule/"):]: v for k, v in snap.items() if k.startswith("rule/")}
    with _LOCK:
        _CACHE[key] = arrays
        while len(_CACHE) > _CACHE_MAX:
            _CACHE.popitem(last=False)
    return arrays


def snapshots(store, run_id: str, n: int = N_SNAPSHOTS) -> list[tuple[int, dict]]:
    """[(step, rule arrays)] of up to n snapshots, evenly spaced over the run, the newest last."""
    steps = store.snapshot_steps(run_id)
    if not steps:
        return []
    idx = sorted({int(i) for i in np.linspace(0, len(steps) - 1, min(n, len(steps))).round()})
    out = []
    for i in idx:
        a = _rule_arrays(store, run_id, steps[i])
        if a is not None:
            out.append((int(steps[i]), a))
    return out


# ------------------------------------------------------------------------------- drawing
def _rule_class(rule: str):
    """The rule's class, or None for an id no longer known (an old run of a removed plugin)."""
    try:
        from snncore.rules import get_rule
        return get_rule(rule)
    except Exception:  # noqa: BLE001 -- an unknown rule: its telemetry alone
        return None


def draw(container, items: list, run_id: str, mark=None) -> None:
    """Draw panel items into a streamlit container; figure keys get the run's prefix. mark:
    fig -> fig applied to each figure first (the Train page's hyperparameter-change markers)."""
    for it in items:
        if isinstance(it, Figure):
            container.plotly_chart(mark(it.fig) if mark else it.fig, width="stretch", key=f"rp_{run_id}_{it.key}")
            if it.caption:
                container.caption(it.caption)
        elif isinstance(it, Row):
            for col, cell in zip(container.columns(it.columns), it.cells):
                draw(col, cell, run_id, mark)
        elif isinstance(it, Text):
            if it.kind == "caption":
                container.caption(it.text)
            elif it.kind == "badge":
                container.badge(it.text, icon=it.icon, **({"color": it.color} if it.color else {}))
            else:
                getattr(container, it.kind)(it.text, icon=it.icon)
        else:
            raise TypeError(f"not a panel item: {type(it).__name__}")


def render(rule: str, store, run_id: str, cfg: dict, tel, metrics=None, mark=None) -> bool:
    """Draw the rule-specific panels of one run (nothing for a rule without a builder or
    telemetry); never raises on missing data. True when what was drawn is default_panels (the
    telemetry charts: the page then does not draw them a second time)."""
    cls = _rule_class(rule)
    builder = cls.panel_builder() if cls is not None else None
    tel = tel if isinstance(tel, pd.DataFrame) else pd.DataFrame()
    cfg = cfg if isinstance(cfg, dict) else {}
    try:
        defaults = cls.Params() if cls is not None else None
    except Exception:  # noqa: BLE001 -- a rule's defaults that fail: each builder's own fallbacks
        defaults = None
    view = PanelView(rule=rule, cfg=cfg, tel=tel, run_id=run_id, defaults=defaults,
                     metrics=metrics if isinstance(metrics, pd.DataFrame) else pd.DataFrame())
    if builder is None:
        try:
            items = default_panels(view)
        except Exception as e:  # noqa: BLE001 -- a live view: say what failed, keep the page alive
            st.warning(f"{rule} panels could not be drawn: {type(e).__name__}: {e}")
            return False
        if items:
            st.subheader(f"{rule} panels")
            draw(st, items, run_id, mark)
        return bool(items)
    st.subheader(f"{rule} panels")
    if cls.panel_flag("RECONSTRUCTED"):
        st.info(RECONSTRUCTED_NOTE, icon=":material/info:")
    try:
        view.snapshots = snapshots(store, run_id)
        if not view.snapshots:
            st.caption("waiting for the first snapshot")
            if cls.panel_flag("NEEDS_SNAPSHOT"):
                return False
        draw(st, builder(view), run_id, mark)
    except Exception as e:  # noqa: BLE001 -- a live view: say what failed, keep the page alive
        st.warning(f"{rule} panels could not be drawn: {type(e).__name__}: {e}")
    return False
