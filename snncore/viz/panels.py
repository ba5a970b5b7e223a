"""Rule panels as data: what a rule shows on the Train page, declared by the rule, drawn by the app.

A rule package declares its panels in ``snncore/rules/<id>/panels.py``:

    NEEDS_SNAPSHOT = True     # nothing to draw before the first spike snapshot (the page says it waits)
    RECONSTRUCTED = True      # the paper's method section was not available: the page says so

    def panels(view: PanelView) -> list[Item]:
        ...                   # figures from view.snaps / view.tel, texts, rows of columns

``Rule.panel_builder()`` finds ``panels`` and ``Rule.panel_flag(name)`` the flags. The builder is
pure (no streamlit, no store): it reads the arrays the rule saved with each snapshot
(``rule.arrays()`` -> 'rule/<name>', prefix stripped here) and the telemetry frame, and returns
items in page order:

    Figure(fig, key, caption)     a plotly figure; key unique within the run (the page prefixes it)
    Text(text, kind, icon, color) kind: caption | info | success | warning | badge
    Row(cells, spec)              st.columns(spec) with each cell's items drawn into its column

A rule without a panels module gets :func:`default_panels`: its telemetry, one chart per group of
keys (the part before '/'), as the Train page draws telemetry.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Union

import pandas as pd

RECONSTRUCTED_NOTE = "The paper's method section was not available; this is our reading of it."
TEXT_KINDS = ("caption", "info", "success", "warning", "badge")


@dataclass
class Figure:
    fig: Any                       # a plotly Figure
    key: str                       # unique among the run's panels
    caption: str | None = None     # a line under the figure


@dataclass
class Text:
    text: str
    kind: str = "caption"          # one of TEXT_KINDS
    icon: str | None = None        # a streamlit icon (":material/lock:"), for all kinds but caption
    color: str | None = None       # badges only

    def __post_init__(self):
        if self.kind not in TEXT_KINDS:
            raise ValueError(f"text kind {self.kind!r} (choose from {', '.join(TEXT_KINDS)})")


@dataclass
class Row:
    cells: list                    # one list of items per column (a cell may be empty)
    spec: Union[int, list, None] = None    # st.columns' spec: relative widths; None: equal widths

    @property
    def columns(self):
        return self.spec if self.spec is not None else len(self.cells)


Item = Union[Figure, Text, Row]


@dataclass
class PanelView:
    """What a panel builder sees of one run.

    rule:     the run's rule id (for titles; a builder never branches on it)
    cfg:      the run's config dict (cfg['rule_params']: the hyperparameters the run set)
    tel:      telemetry frame, step-indexed, one column per telemetry key (may be empty)
    metrics:  the run's metrics frame (step-indexed, one column per metric key; may be empty)
    run_id:   the run's id
    defaults: the rule's Params() (hyperparameters the run left at their defaults)
    snapshots: [(step, arrays)] of up to ten snapshots evenly spaced over the run, the newest last,
              or a function returning them (read on first use of ``snaps``)
    """
    rule: str
    cfg: dict = field(default_factory=dict)
    tel: pd.DataFrame = field(default_factory=pd.DataFrame)
    run_id: str = ""
    defaults: Any = None
    snapshots: Union[list, Callable[[], list]] = field(default_factory=list)
    metrics: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def snaps(self) -> list:
        if callable(self.snapshots):
            self.snapshots = list(self.snapshots())
        return self.snapshots

    @property
    def latest(self) -> dict:
        """The newest snapshot's arrays ({} before the first)."""
        return self.snaps[-1][1] if self.snaps else {}

    @property
    def params(self) -> dict:
        return self.cfg.get("rule_params") or {}

    def param(self, name: str, default=None):
        """A hyperparameter as the run set it, else the rule's default, else ``default``."""
        v = self.params.get(name)
        if v is not None:
            return v
        return getattr(self.defaults, name, default)

    def last(self, column: str) -> float | None:
        return last_value(self.tel, column)


def layers_of(arrays: dict, prefix: str) -> list[str]:
    """Layer names of the keys '<prefix>/<layer>', in saved order."""
    p = prefix + "/"
    return [k[len(p):] for k in arrays if k.startswith(p)]


def last_value(tel, column: str) -> float | None:
    """The newest non-NaN value of a telemetry column, or None."""
    if not isinstance(tel, pd.DataFrame) or column not in tel.columns:
        return None
    s = tel[column].dropna()
    return float(s.iloc[-1]) if len(s) else None


def default_panels(view: PanelView) -> list[Item]:
    """The panels of a rule that declares none: one telemetry chart per group, two per row (empty
    when the rule reports no telemetry)."""
    from . import telemetry_figure, telemetry_groups

    if not isinstance(view.tel, pd.DataFrame) or view.tel.empty:
        return []
    cells: list[list] = [[], []]
    for i, (g, columns) in enumerate(telemetry_groups(view.tel).items()):
        cells[i % 2].append(Figure(telemetry_figure(view.tel, g, columns), f"tel_{g}"))
    return [Row(cells)]


def figures(items: list) -> list[Figure]:
    """Every Figure among items, rows included, in drawing order (column by column)."""
    out = []
    for it in items:
        if isinstance(it, Figure):
            out.append(it)
        elif isinstance(it, Row):
            for cell in it.cells:
                out += figures(cell)
    return out


def texts(items: list, kind: str | None = None) -> list[str]:
    """Every Text (of one kind, or all) and figure caption among items, rows included."""
    out = []
    for it in items:
        if isinstance(it, Text) and kind in (None, it.kind):
            out.append(it.text)
        elif isinstance(it, Figure) and it.caption and kind in (None, "caption"):
            out.append(it.caption)
        elif isinstance(it, Row):
            for cell in it.cells:
                out += texts(cell, kind)
    return out
