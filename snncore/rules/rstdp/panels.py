"""R-STDP's Train panels: STDP's, with the window labelled as the reward-modulated term."""
from __future__ import annotations

from snncore.rules.stdp.panels import stdp_panels
from snncore.viz.panels import PanelView

NEEDS_SNAPSHOT = True
WINDOW = dict(title="STDP learning window (R-STDP term)", ytitle="dW per pair per unit of (r − r_bar)")


def panels(view: PanelView) -> list:
    return stdp_panels(view, window=WINDOW)
