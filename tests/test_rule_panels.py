"""Rule-specific panels of the Train page (app_pages/rule_panels.py): one tiny run per rule, then the
page opened on each run must draw that rule's panels without an exception."""
import json

import pytest
from streamlit.testing.v1 import AppTest

from snncore.__main__ import main
from snncore.store import RunStore

RULES = {   # rule -> (extra command-line flags, panel titles that must appear)
    "stdp": ([], ["weight histogram over time", "STDP learning window"]),
    "rstdp": ([], ["weight histogram over time", "STDP learning window"]),
    "ssdp": ([], ["SSDP kernel G(dt)", "first-spike latency", "raster with first-spike markers"]),
    "da_ssdp": (["--warmup-steps", "2"], ["SSDP kernel G(dt)", "first-spike latency", "synchrony vs loss",
                                          "dopamine gate g", "raster with first-spike markers"]),
    "mps": (["--model", "mps_mlp"], ["mechanism assignment", "layer-mean shares over time",
                                      "mechanism triangle", "component currents (one sample)"]),
}
NOTE = "The paper's method section was not available; this is our reading of it."


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One finished 4-step run per rule (in-process, so no interpreter start-up per run)."""
    d = tmp_path_factory.mktemp("rule_panels") / "runs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SNNCORE_RUNS", str(d))
        ids = {}
        for rule, (extra, _) in RULES.items():
            argv = ["train", "--rule", rule, "--epochs", "1", "--hidden", "32", "--timesteps", "8",
                    "--batch-size", "64", "--n-train", "256", "--record-every", "2", "--log-every", "1",
                    "--runs-dir", str(d), *extra]
            assert main(argv) == 0, rule
            ids[rule] = RunStore(d).list_runs()[0]["id"]
        yield d, ids


def open_train_page(run_id):
    at = AppTest.from_file("../app.py", default_timeout=60)
    at.run()
    at.query_params["run"] = run_id
    at.switch_page("app_pages/train.py")
    at.run()
    return at


def texts(at, kind):
    return [getattr(e, "value", "") or "" for e in at.get(kind)]


@pytest.mark.parametrize("rule", list(RULES))
def test_rule_panels_render(runs, rule, monkeypatch):
    d, ids = runs
    monkeypatch.setenv("SNNCORE_RUNS", str(d))
    at = open_train_page(ids[rule])
    assert not at.exception, at.exception
    assert at.selectbox(key="run_select").value == ids[rule]
    specs = " ".join(c.proto.spec for c in at.get("plotly_chart"))
    for title in RULES[rule][1]:
        assert title in specs, (rule, title)
    assert f"{rule} panels" in texts(at, "subheader")
    assert not any("could not be drawn" in w for w in texts(at, "warning"))
    assert any(NOTE in i for i in texts(at, "info")) == (rule == "mps")
    if rule == "da_ssdp":
        md = " ".join(texts(at, "markdown"))
        assert "gate fitted: k=" in md and "mu=" in md and "sd=" in md


def test_run_without_snapshot_waits(runs, monkeypatch):
    d, _ = runs
    monkeypatch.setenv("SNNCORE_RUNS", str(d))
    store = RunStore(d)
    rid = store.create_run({"rule": "stdp", "dataset": "digits", "epochs": 1, "timesteps": 8})
    store.log_metrics(rid, [(0, 0, "train/loss", 2.3)])
    store.end_run(rid, "stopped")
    at = open_train_page(rid)
    assert not at.exception, at.exception
    assert "waiting for the first snapshot" in texts(at, "caption")


def _panels_with_stub_store(rule, k, fitted, tel_rows):
    """Renders rule_panels.render for a stub store holding one snapshot (runs inside AppTest)."""
    import numpy as np
    import pandas as pd

    from app_pages import rule_panels

    class Stub:
        root = f"stub-{rule}-{k}-{fitted}"

        def snapshot_steps(self, run_id):
            return [3]

        def load_snapshot(self, run_id, step=None):
            rng = np.random.default_rng(0)
            snap = {"rule/kernel_dt": np.arange(9.0), "rule/kernel_g": np.exp(-np.arange(9.0) ** 2 / 2),
                    "rule/warm_S/out": rng.random(50).astype(np.float32),
                    "rule/warm_L": rng.random(50).astype(np.float32), "step": np.array(3)}
            if fitted:
                snap["rule/fit/out"] = np.array([k, 0.5, 0.1])
                snap["rule/gate/out"] = np.clip(1 + k * rng.normal(size=64), 0, 2).astype(np.float32)
            return snap

    tel = pd.DataFrame(tel_rows).set_index("step") if tel_rows else pd.DataFrame()
    rule_panels.render(rule, Stub(), "stub", {"rule": rule}, tel)


@pytest.mark.parametrize("k, fitted, tel_rows, badges", [
    (0.0, False, [{"step": 1, "phase": 0.0, "warmup_progress": 0.25}], ["warm-up 25 %"]),
    (0.01, True, [], ["gate fitted: k=0.010, mu=0.5, sd=0.1", "gate = 1: plain SSDP"]),
    (0.4, True, [], ["gate fitted: k=0.400"]),
])
def test_da_ssdp_badges(k, fitted, tel_rows, badges):
    at = AppTest.from_function(_panels_with_stub_store, args=("da_ssdp", k, fitted, tel_rows), default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    md = " ".join(texts(at, "markdown"))
    for b in badges:
        assert b in md, (b, md)
    assert ("plain SSDP" in md) == (abs(k) < 0.05 and fitted)
    specs = " ".join(c.proto.spec for c in at.get("plotly_chart"))
    assert "synchrony vs loss" in specs and ("dopamine gate g" in specs) == fitted


def test_ip2_shows_the_reconstruction_note():
    at = AppTest.from_function(_panels_with_stub_store, args=("ip2", 0.0, False, []), default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    assert any(NOTE in i for i in texts(at, "info"))


# ------------------------------------------------------------------------------- the live views' data
@pytest.mark.parametrize("rule", ["ssdp", "da_ssdp"])
def test_ssdp_raster_markers_are_the_rules_latencies(runs, rule):
    """The raster saved with a snapshot is the sample the rule read its latencies from: the drawn
    first-spike markers equal the saved latencies of that sample (silent neurons: latency T)."""
    import numpy as np

    from snncore.viz.rules import spike_markers
    d, ids = runs
    snap = RunStore(d).load_snapshot(ids[rule])
    layers = [k.split("/", 2)[2] for k in snap if k.startswith("rule/raster_pre/")]
    assert len(layers) == 2                                   # the default targets: the last two layers
    T = int(snap["rule/lat_T"])
    fired = 0
    for layer in layers:
        for side in ("pre", "post"):
            r, nid = snap[f"rule/raster_{side}/{layer}"], snap[f"rule/raster_{side}_ids/{layer}"]
            lat = snap[f"rule/lat_{side}/{layer}"][0]            # sample 0, all neurons (<= 256 here)
            assert r.dtype == bool and r.shape == (nid.size, T) and nid.size <= 64
            assert np.all(np.diff(nid) > 0) and nid[-1] < lat.size
            rows, t = spike_markers(r)
            expect = lat[nid]
            assert np.array_equal(t, expect[rows]), (layer, side)
            silent = np.setdiff1d(np.arange(nid.size), rows)
            assert np.all(expect[silent] == T)
            fired += int(rows.size)
    assert fired > 0                                           # something fired: the check is not vacuous


def test_mps_component_currents_drive_the_saved_membrane(runs):
    """The saved A_k C_k of each neuron, summed with the bias, is the input current that, through the
    soft-reset LIF U[t] = rho (U[t-1] - V_th S[t-1]) + I[t], gives the saved membrane and spikes."""
    import numpy as np
    d, ids = runs
    snap = RunStore(d).load_snapshot(ids["mps"])
    mech = [str(m) for m in snap["rule/mechanisms"]]
    layers = [k.split("/", 2)[2] for k in snap if k.startswith("rule/curr/")]
    assert layers == ["fc1", "out"]
    for layer in layers:
        C, b = snap[f"rule/curr/{layer}"], snap[f"rule/curr_b/{layer}"]
        U, S = snap[f"rule/curr_u/{layer}"], snap[f"rule/curr_s/{layer}"]
        K, T, n = C.shape
        assert K == len(mech) == 3 and T == 8 and 1 <= n <= 4 and U.shape == S.shape == (T, n)
        assert snap[f"rule/curr_ids/{layer}"].tolist() == sorted(set(snap[f"rule/curr_ids/{layer}"].tolist()))
        I = C.sum(0) + b
        u, s_prev = np.zeros(n), np.zeros(n)
        for t in range(T):
            u = 0.5 * (u - 1.0 * s_prev) + I[t]                  # rho 0.5, V_th 1 (the defaults)
            np.testing.assert_allclose(u, U[t], rtol=1e-5, atol=1e-5)
            s_prev = (u >= 1.0).astype(float)
            assert np.array_equal(s_prev.astype(bool), S[t])
        assert np.abs(C).sum() > 0
        A = snap[f"rule/assign/{layer}"]
        np.testing.assert_allclose(A.sum(0), 1.0, rtol=1e-5)     # each neuron's point in the triangle


@pytest.fixture(scope="module")
def ip2_run(tmp_path_factory):
    """One tiny IP2 run: 2 tasks of the reduced setting, 16 neurons."""
    from snncore.config import RunConfig
    from snncore.train import Trainer
    d = tmp_path_factory.mktemp("rule_panels_ip2") / "runs"
    store = RunStore(d)
    cfg = RunConfig.from_dict({"rule": "ip2", "rule_params": {"n_tasks": 2, "meta_mode": "fixed",
                                                              "max_updates": 10, "N": 16}})
    rid = store.create_run(cfg.to_dict())
    assert Trainer(cfg, store, rid).run()["status"] == "finished"
    return d, rid


def test_ip2_trial_traces_saved_and_drawn(ip2_run, monkeypatch):
    import numpy as np
    d, rid = ip2_run
    snap = RunStore(d).load_snapshot(rid)
    T = snap["raster/rsnn"].shape[1]
    u, dd, y = snap["rule/trial_u"], snap["rule/trial_d"], snap["rule/trial_y"]
    assert u.shape == dd.shape == (3, T) and snap["rule/trial_neurons"].tolist() == [0, 1, 2]
    assert y.shape[1] == T and y.shape[0] >= 2
    tgt, mask = snap["rule/trial_target"], snap["rule/trial_mask"]
    assert tgt.shape == mask.shape == (T,) and mask.dtype == bool and not mask.all()   # a grace window
    assert tgt[0] == 0 and 0 <= tgt.min() and tgt.max() < y.shape[0]   # channel 0 = fixation first
    monkeypatch.setenv("SNNCORE_RUNS", str(d))
    at = open_train_page(rid)
    assert not at.exception, at.exception
    assert not any("could not be drawn" in w for w in texts(at, "warning"))
    charts = {f["layout"]["title"]["text"]: [t.get("name") for t in f["data"]]
              for f in (json.loads(c.proto.spec) for c in at.get("plotly_chart"))}
    ud = charts["one trial: u (solid), d (dashed), theta (dotted)"]
    ro = charts["one trial: read-out softmax(y) (solid) vs target (dashed)"]
    assert {"u · neuron 2", "d · neuron 0", "theta · neuron 1"} <= set(ud)
    assert {"p(fixation)", "target fixation"} <= set(ro)
    assert any("Within a trial: one trial of task 2" in c for c in texts(at, "caption"))


def _panels_from_arrays(rule, arrays, rule_params):
    """rule_panels.render on a stub store whose one snapshot holds `arrays` under 'rule/'."""
    import numpy as np

    from app_pages import rule_panels

    class Stub:
        root = f"stub-arrays-{rule}-{sorted(arrays)}-{rule_params}"

        def snapshot_steps(self, run_id):
            return [7]

        def load_snapshot(self, run_id, step=None):
            return {**{f"rule/{k}": np.asarray(v) for k, v in arrays.items()}, "step": np.array(7)}

    rule_panels.render(rule, Stub(), "stub", {"rule": rule, "rule_params": rule_params}, None)


def _chart_titles(at):
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


def test_mps_four_mechanisms_get_the_heatmap_not_the_triangle():
    import numpy as np
    A = np.full((4, 5), 0.25, dtype=np.float32)
    arrays = {"mechanisms": np.array(["bp", "stdp", "hetero", "homeo"]), "assign/fc1": A}
    at = AppTest.from_function(_panels_from_arrays, args=("mps", arrays, {}), default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    titles = _chart_titles(at)
    assert "mechanism assignment · fc1" in titles and not any(t.startswith("mechanism triangle") for t in titles)
    caps = " ".join(texts(at, "caption"))
    assert "the mechanism triangle needs 2 or 3 mechanisms; this run has 4" in caps
    assert "component currents appear with the next snapshot" in caps    # e.g. right after a resume
    assert not any("could not be drawn" in w for w in texts(at, "warning"))


def test_ssdp_raster_follows_the_latency_option():
    import numpy as np
    pre = np.array([[0, 1, 1], [1, 0, 1]], dtype=bool)
    post = np.array([[1, 1, 0]], dtype=bool)
    arrays = {"kernel_dt": np.arange(4.0), "kernel_g": np.exp(-np.arange(4.0) ** 2 / 2),
              "raster_pre/out": pre, "raster_post/out": post, "raster_pre_ids/out": np.array([0, 4]),
              "raster_post_ids/out": np.array([2])}
    at = AppTest.from_function(_panels_from_arrays, args=("ssdp", arrays, {"latency": "last"}), default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    spec = next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
                if "raster with last-spike markers" in c.proto.spec)
    marks = [(x, y) for t in spec["data"] if t["name"] == "last spike"
             for x, y in zip(_values(t["x"]), _values(t["y"]))]
    assert sorted(marks) == [(1, 2), (2, 0), (2, 4)]


def _values(v):
    """A plotly JSON array: a list, or numpy's typed form {'dtype', 'bdata'} (base64)."""
    import base64

    import numpy as np
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
    return list(v)


def test_stdp_lesson_shows_pattern_vs_noise_weights(tmp_path, monkeypatch):
    """The STDP lesson quotes the mean fc1 weight from pattern vs noise channels and how many
    hidden neurons prefer the pattern: the Train page shows both, from the run's own weights."""
    import numpy as np

    from snncore.rules.stdp.panels import pattern_channels
    from snncore.viz.rules import pattern_preference
    d = tmp_path / "runs"
    monkeypatch.setenv("SNNCORE_RUNS", str(d))
    assert main(["train", "--config", "assets/presets/stdp_repeated_pattern.toml", "--epochs", "1",
                 "--syn-samples", "96", "--runs-dir", str(d)]) == 0
    store = RunStore(d)
    rid = store.list_runs()[0]["id"]
    cfg = store.get_run(rid)["config"]
    last = store.load_snapshot(rid, store.snapshot_steps(rid)[-1])
    W = last["rule/w/fc1"]
    mask = pattern_channels(cfg, W)
    assert mask.sum() == 32 and mask[:32].all()                  # 2 classes x 16 channels: 0-31
    mp, mn, pref, n = pattern_preference(W, mask)
    at = open_train_page(rid)
    assert not at.exception, at.exception
    spec = next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
                if "pattern vs noise channels" in c.proto.spec)
    note = spec["layout"]["annotations"][0]["text"]
    assert f"mean w {mp:.3f} from pattern vs {mn:.3f} from noise channels" in note
    assert f"{pref} of {n} neurons prefer the pattern" in note and n == 32
    assert pattern_channels({"dataset": "digits"}, np.zeros((32, 64))) is None
    assert pattern_channels(cfg, np.zeros((2, 32))) is None       # a layer that does not read the channels


def _ip2_arrays(pilot: bool):
    import numpy as np
    rng = np.random.default_rng(0)
    a = {"mask": np.array(["tau_s"]), "phase": np.array("task"), "task": np.array(3),
         "tau_d": rng.uniform(5, 50, 16), "tau_s": rng.uniform(5, 50, 16), "theta": rng.uniform(0.5, 1.5, 16)}
    if pilot:
        a.update(pilot_masks=np.array(["tau_d", "tau_s", "theta"]), pilot_scores=np.array([40.0, 30.0, 50.0]))
    return a


@pytest.mark.parametrize("pilot", [False, True])
def test_ip2_panels_leave_no_empty_slot(pilot):
    """meta_mode 'fixed' has no pilot scores: the property histograms move up instead of leaving
    the pilot's column empty."""
    at = AppTest.from_function(_panels_from_arrays, args=("ip2", _ip2_arrays(pilot), {}), default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    titles = _chart_titles(at)
    assert ("slow level: pilot score per candidate mask" in titles) == pilot
    assert {"tau_d across neurons", "tau_s across neurons", "theta across neurons"} <= set(titles)
    cols = list(at.columns)
    filled = [len(c.children) > 0 for c in cols]
    n = 3 + pilot
    assert sum(filled) == n and all(filled[:n]) and len(cols) == n + (n % 2)   # only the last row's second slot may be empty


def test_ip2_train_page_has_one_loss_chart_and_the_homeostasis(ip2_run, monkeypatch):
    """L and L_task of IP2 differ by the small regularisers: one chart with both, not two of the
    same curve; beside it what the homeostatic term tracks."""
    d, rid = ip2_run
    monkeypatch.setenv("SNNCORE_RUNS", str(d))
    at = open_train_page(rid)
    assert not at.exception, at.exception
    charts = {f["layout"]["title"]["text"]: [t.get("name") for t in f["data"]]
              for f in (json.loads(c.proto.spec) for c in at.get("plotly_chart"))}
    assert "task loss per update" not in charts
    assert set(charts["loss (total and its terms)"]) >= {"train/loss", "train/l_task"}
    assert charts["homeostasis: mean u² vs its target sigma_h"] == ["ip2/mean_u2", "ip2/sigma_h"]


def _panels_of_rule_without_builder(rule, with_tel):
    import pandas as pd

    from app_pages import rule_panels

    class Stub:
        root = "stub-default"

        def snapshot_steps(self, run_id):
            raise AssertionError("the default panels read no snapshot")

    tel = pd.DataFrame({"sync/fc1": [0.1, 0.2], "dw/fc1": [1e-3, 2e-3]}, index=[0, 1]) if with_tel else None
    rule_panels.render(rule, Stub(), "stub", {"rule": rule}, tel)


@pytest.mark.parametrize("with_tel", [False, True])
def test_rule_without_panels_module_shows_its_telemetry(with_tel):
    """bptt (like a rule from outside with only telemetry()) has no panels.py: its panels are its
    telemetry charts by key prefix, and nothing at all (not even the heading) without telemetry."""
    at = AppTest.from_function(_panels_of_rule_without_builder, args=("bptt", with_tel), default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    assert texts(at, "subheader") == (["bptt panels"] if with_tel else [])
    titles = _chart_titles(at)
    assert titles == (["synchrony S per plastic layer", "|dW| of the local update"] if with_tel else [])
