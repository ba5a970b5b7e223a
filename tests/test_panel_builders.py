"""The rules' panel builders (snncore/rules/<id>/panels.py) and the default one are pure: a
PanelView of hand-made arrays and telemetry in, panel items out, no app needed."""
import numpy as np
import pandas as pd
import pytest

from snncore.rules import get_rule
from snncore.viz import panels as vp


def view(rule, arrays=None, tel=None, cfg=None, steps=(3,)):
    cls = get_rule(rule)
    snaps = [(s, dict(arrays)) for s in steps] if arrays is not None else []
    return vp.PanelView(rule=rule, cfg=cfg or {"rule": rule}, tel=tel if tel is not None else pd.DataFrame(),
                        run_id="r1", defaults=cls.Params(), snapshots=snaps)


def build(rule, v):
    return get_rule(rule).panel_builder()(v)


def fig_titles(items):
    return [f.fig.layout.title.text for f in vp.figures(items)]


def test_da_ssdp_builder_says_the_gates_are_saturated():
    """All gates at the clip 2 (the DA-SSDP lesson): the gate panel says so in words."""
    arrays = {"fit/out": np.array([-0.8, 0.5, 0.1]), "gate/out": np.full(64, 2.0, dtype=np.float32),
              "warm_S/out": np.linspace(0, 1, 20), "warm_L": np.linspace(2, 1, 20), "lat_pre/out": np.zeros((1, 4)),
              "lat_post/out": np.zeros((1, 2)), "lat_T": np.array(8)}
    items = build("da_ssdp", view("da_ssdp", arrays))
    gate = next(f for f in vp.figures(items) if f.key == "gate_out")
    notes = " ".join(a.text for a in gate.fig.layout.annotations)
    assert "saturated: 100% of the gates sit at the clip 2" in notes
    badges = vp.texts(items, "badge")
    assert badges == ["out · gate fitted: k=-0.800, mu=0.5, sd=0.1"]        # |k| >= 0.05: not plain SSDP
    assert "synchrony vs loss (warm-up) · out" in fig_titles(items)
    # SSDP's own panels follow (the latency of the layer; no kernel saved here, so none drawn)
    assert fig_titles(items)[-1].startswith("first-spike latency")


def test_da_ssdp_builder_shows_the_warm_up_from_telemetry_alone():
    tel = pd.DataFrame({"phase": [0.0, 0.0], "warmup_progress": [0.1, 0.4], "sync/out": [0.2, 0.3]},
                       index=[1, 2])
    items = build("da_ssdp", view("da_ssdp", None, tel=tel))
    assert vp.texts(items) == ["warm-up 40 %"] and not vp.figures(items)
    assert not get_rule("da_ssdp").panel_flag("NEEDS_SNAPSHOT")


def test_da_ssdp_plain_badge_when_k_is_small():
    items = build("da_ssdp", view("da_ssdp", {"fit/fc2": np.array([0.01, 0.2, 0.3]), "warm_S/fc2": np.ones(3),
                                              "warm_L": np.ones(3)}))
    assert any("gate = 1: plain SSDP (|k| < 0.05)" in t for t in vp.texts(items, "badge"))
    assert "The gate histogram appears once the gate is fitted" not in " ".join(vp.texts(items))


def test_default_builder_makes_one_chart_per_telemetry_group():
    """A rule with no panels module (bptt, or one from outside) shows its telemetry by key prefix."""
    assert get_rule("bptt").panel_builder() is None
    tel = pd.DataFrame({"sync/fc1": [0.1, 0.2], "sync/out": [0.3, 0.2], "dw/fc1": [1e-3, 2e-3],
                        "trace": [1.0, 2.0]}, index=[0, 1])
    items = vp.default_panels(view("bptt", tel=tel))
    figs = vp.figures(items)
    assert [f.key for f in figs] == ["tel_sync", "tel_trace", "tel_dw"]      # column by column, two per row
    assert len(items) == 1 and [len(c) for c in items[0].cells] == [2, 1]
    sync = next(f.fig for f in figs if f.key == "tel_sync")
    assert [t.name for t in sync.data] == ["sync/fc1", "sync/out"]
    assert vp.default_panels(view("bptt")) == []                              # no telemetry: no panels


def test_stdp_and_rstdp_share_the_builder_with_their_own_window_title():
    arrays = {"whist/fc1": np.array([1, 2, 3]), "wedges/fc1": np.linspace(-1, 1, 4),
              "window_dt": np.arange(-5.0, 6.0), "window_dw": np.tanh(np.arange(-5.0, 6.0))}
    s = build("stdp", view("stdp", arrays, steps=(0, 5)))
    r = build("rstdp", view("rstdp", arrays))
    assert fig_titles(s) == ["weight histogram over time · fc1", "STDP learning window"]
    assert fig_titles(r)[1] == "STDP learning window (R-STDP term)"
    assert s[0].spec == [3, 2]
    assert vp.texts(build("stdp", view("stdp", {}, steps=(1,)))) == ["no weight histogram in the snapshots yet"]


def test_ssdp_kernel_uses_the_runs_sigma_else_the_default():
    arrays = {"kernel_dt": np.arange(5.0), "kernel_g": np.exp(-np.arange(5.0) ** 2 / 2)}
    v = view("ssdp", arrays, cfg={"rule": "ssdp", "rule_params": {"sigma": 3.0}})
    assert v.param("sigma") == 3.0
    assert view("ssdp", arrays).param("sigma") == get_rule("ssdp").Params().sigma
    assert view("ssdp", arrays).param("no_such", 7) == 7
    items = build("ssdp", v)
    assert [f.key for f in vp.figures(items)] == ["kernel"]


def test_mps_and_ip2_are_marked_reconstructed():
    flags = {r: get_rule(r).panel_flag("RECONSTRUCTED") for r in ("stdp", "rstdp", "ssdp", "da_ssdp", "mps", "ip2")}
    assert flags == {"stdp": False, "rstdp": False, "ssdp": False, "da_ssdp": False, "mps": True, "ip2": True}


def test_mps_four_mechanisms_get_a_caption_instead_of_the_triangle():
    A = np.full((4, 5), 0.25, dtype=np.float32)
    items = build("mps", view("mps", {"mechanisms": np.array(["a", "b", "c", "d"]), "assign/fc1": A}))
    assert fig_titles(items) == ["mechanism assignment · fc1"]
    caps = " ".join(vp.texts(items, "caption"))
    assert "needs 2 or 3 mechanisms; this run has 4" in caps and "layer-mean shares appear" in caps


def test_ip2_rows_hold_two_figures_and_no_snapshot_gives_nothing():
    rng = np.random.default_rng(0)
    arrays = {"mask": np.array(["tau_s"]), "phase": np.array("pilot:theta"), "task": np.array(2),
              "tau_d": rng.uniform(5, 50, 8), "tau_s": rng.uniform(5, 50, 8), "theta": rng.uniform(0.5, 1.5, 8)}
    items = build("ip2", view("ip2", arrays))
    assert vp.texts(items, "info") == ["Slow level running: pilot of candidate mask theta"]
    rows = [it for it in items if isinstance(it, vp.Row)]
    assert [[len(c) for c in r.cells] for r in rows] == [[1, 1], [1, 0]]
    assert build("ip2", view("ip2", None)) == []


def test_snapshots_are_read_on_first_use_only():
    calls = []

    def load():
        calls.append(1)
        return [(4, {"x": np.zeros(2)})]

    v = vp.PanelView(rule="any", snapshots=load)
    assert not calls
    assert v.latest["x"].shape == (2,) and v.snaps[0][0] == 4 and len(calls) == 1


def test_text_kind_is_checked():
    with pytest.raises(ValueError, match="text kind"):
        vp.Text("x", "toast")
