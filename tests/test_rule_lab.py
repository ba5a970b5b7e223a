"""Rule Lab: the in-process sandbox (snncore.lab) and the page's main flows (AppTest)."""
import dataclasses
import json
import math

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from snncore import lab
from snncore.lab import InputSpec, PopSpec
from snncore.rules.stdp import stdp_window


# ----------------------------------------------------------------------------- inputs and LIF
def test_inputs_shapes_determinism_and_structure():
    rng = lambda: np.random.default_rng(3)  # noqa: E731
    x = lab.make_input(InputSpec(kind="poisson", rate=0.2), 10, 500, 4, rng())
    assert x.shape == (500, 4, 10) and x.dtype == np.float32 and set(np.unique(x)) <= {0.0, 1.0}
    assert np.array_equal(x, lab.make_input(InputSpec(kind="poisson", rate=0.2), 10, 500, 4, rng()))
    assert abs(x.mean() - 0.2) < 0.02
    # bursts without jitter or background: every neuron fires at period//2 of each period, only then
    b = lab.make_input(InputSpec(kind="bursts", rate=0.0, jitter=0.0, period=10), 6, 30, 2, rng())
    assert np.array_equal(np.nonzero(b.sum((1, 2)))[0], [5, 15, 25]) and b.sum() == 3 * 2 * 6
    # the pattern is a sweep: neuron i at offset i * period / n in every repeat
    p = lab.make_input(InputSpec(kind="pattern", rate=0.0, jitter=0.0, period=8), 4, 16, 1, rng())
    assert [np.nonzero(p[:, 0, i])[0].tolist() for i in range(4)] == [[0, 8], [2, 10], [4, 12], [6, 14]]
    # with labels only the class's half carries the structure
    q = lab.make_input(InputSpec(kind="bursts", rate=0.0, jitter=0.0, period=10), 8, 20, 2, rng(),
                       labels=np.array([0, 1]))
    assert q[:, 0, :4].sum() == 8 and q[:, 0, 4:].sum() == 0 and q[:, 1, :4].sum() == 0


def test_lif_hand_computed():
    # tau 2 -> decay 0.5; constant 0.6: v = 0.6, 0.9, 1.05 (spike, reset), 0.6, 0.9, 1.05 ...
    s, v = lab.lif_run(np.full((6, 1, 1), 0.6, np.float32), tau_m=2.0, v_th=1.0)
    assert s[:, 0, 0].tolist() == [0, 0, 1, 0, 0, 1]
    np.testing.assert_allclose(v[:, 0, 0], [0.6, 0.9, 1.05, 0.6, 0.9, 1.05], rtol=1e-6)


def test_bad_values_are_one_line_errors():
    with pytest.raises(ValueError, match=r"rate: 2.0 is out of range"):
        lab.simulate("stdp", inp=InputSpec(kind="poisson", rate=2.0))
    with pytest.raises(ValueError, match=r"input: 'noise' is not allowed"):
        lab.simulate("ssdp", inp=InputSpec(kind="noise"))
    with pytest.raises(ValueError, match=r"eta_plus: 5.0 is out of range"):
        lab.simulate("stdp", {"eta_plus": 5.0})
    with pytest.raises(ValueError, match=r"mechanisms: at least one is needed"):
        lab.simulate("mps", {"mechanisms": []})
    with pytest.raises(ValueError, match=r"warm-up"):
        lab.simulate("da_ssdp", extra={"warmup": 99})
    with pytest.raises(ValueError, match=r"rule: 'hebb' is not allowed"):
        lab.simulate("hebb")


# ----------------------------------------------------------------------------- the rules in the lab
def test_deterministic_given_seed():
    a, b = lab.simulate("stdp"), lab.simulate("stdp")
    assert np.array_equal(a.W, b.W) and np.array_equal(a.post_raster, b.post_raster)
    c = lab.simulate("stdp", pop=dataclasses.replace(lab.DEFAULT_POP["stdp"], seed=1))
    assert not np.array_equal(a.W, c.W)


def test_stdp_is_the_engines_update_and_learns_the_sweep():
    # one update: the lab's change equals the rule's pure stdp_delta on the same spikes
    pop = dataclasses.replace(lab.DEFAULT_POP["stdp"], updates=1)
    res = lab.simulate("stdp", pop=pop)
    rng = np.random.default_rng(pop.seed)
    W0 = lab._init_weight(pop, rng)
    pre = lab.make_input(lab.DEFAULT_INPUT["stdp"], pop.n_pre, pop.T, pop.batch, rng)
    post, _ = lab.lif_run(pre @ W0.numpy().T, pop.tau_m, pop.v_th)
    from snncore.rules.stdp import stdp_delta
    expect = W0 + stdp_delta(torch.from_numpy(pre), torch.from_numpy(post))
    np.testing.assert_allclose(res.W, expect.numpy(), atol=1e-7)
    np.testing.assert_allclose(res.extras["window_dw"], stdp_window(res.extras["window_dt"]).numpy())
    # lesson: with the sweep, early inputs are potentiated and late ones depressed; eta 0: no change
    r = lab.simulate("stdp", {"eta_plus": 1e-2, "eta_minus": 1.05e-2})
    cols = r.dW.mean(0)
    assert cols[:4].mean() > 0.05 and cols[-8:].mean() < -0.05
    assert np.array_equal(lab.simulate("stdp", {"eta_plus": 0.0, "eta_minus": 0.0}).dW, np.zeros_like(r.dW))


def test_rstdp_reward_and_baseline():
    res = lab.simulate("rstdp")
    h = res.history
    assert set(np.unique(h["reward"] * 8)) <= set(range(-8, 9, 2))       # mean of +-1 over 8 trials
    # r_bar follows the rule's EMA with r_decay 0.9 from 0
    r_bar, expect = 0.0, []
    for r in h["reward"]:
        r_bar = 0.9 * r_bar + 0.1 * r
        expect.append(r_bar)
    np.testing.assert_allclose(h["r_bar"], expect, atol=1e-6)
    assert np.array_equal(lab.simulate("rstdp", {"eta": 0.0}).dW, np.zeros_like(res.dW))


def test_ssdp_pair_window_kernel_and_synchrony_lesson():
    res = lab.simulate("ssdp", {"a_plus": 0.5, "a_base": 0.25, "sigma": 2.0})
    T, d = res.T, res.extras["pair_dt"]
    np.testing.assert_allclose(res.extras["pair_cofired"], 0.5 * np.exp(-d ** 2 / 8.0), rtol=1e-5)
    np.testing.assert_allclose(res.extras["pair_post_silent"], -0.25 * np.exp(-(T - d) ** 2 / 8.0), rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(res.extras["kernel_g"], np.exp(-np.arange(T + 1) ** 2 / 8.0), rtol=1e-6)
    # lesson: bursts grow the weights, sparse Poisson shrinks them
    amp = {"a_plus": 1e-2, "a_base": 5e-3}
    bursts = lab.simulate("ssdp", amp)
    poisson = lab.simulate("ssdp", amp, inp=InputSpec(kind="poisson", rate=0.05))
    assert bursts.history["sync"].min() == 1.0 and bursts.dW.mean() > 0.05
    assert poisson.history["sync"].mean() < 0.5 and poisson.dW.mean() < -0.01


def test_da_ssdp_gate_follows_imposed_relation_and_warmup_leaves_weights():
    neg = lab.simulate("da_ssdp", extra={"corr_SL": -0.8})
    pos = lab.simulate("da_ssdp", extra={"corr_SL": 0.8})
    assert neg.extras["fit"][0] > 0.4 and pos.extras["fit"][0] < -0.4
    warm = lab.LAB_EXTRA["da_ssdp"]["warmup"]
    assert np.all(neg.history["dw"][:warm] == 0.0) and np.all(neg.history["dw"][warm:] > 0)
    k, mu, sd = neg.extras["fit"]
    S = neg.extras["gate_S"]
    np.testing.assert_allclose(neg.extras["gate_g"], np.clip(1 + k * (S - mu) / sd, 0, 2), rtol=1e-5, atol=1e-6)
    assert neg.extras["warm_S"].size == warm * lab.DEFAULT_POP["da_ssdp"].batch


def test_mps_assignment_and_contributions():
    res = lab.simulate("mps")
    A = res.extras["assign"]["fc1"]
    assert A.shape == (3, lab.DEFAULT_POP["mps"].n_post)
    np.testing.assert_allclose(A.sum(0), 1.0, rtol=1e-5)
    h = res.history
    assert h["contrib_hebb/fc1"][0] == 0.0 and h["contrib_hebb/fc1"][-1] > 0   # W_hebb starts at zero
    assert h["contrib_bp/fc1"][0] > 0 and h["contrib_sbp/fc1"][0] > 0
    fast = lab.simulate("mps", {"lr_z": 1.0})
    assert np.abs(fast.extras["assign"]["fc1"] - 1 / 3).max() > 0.1 > np.abs(A - 1 / 3).max()


def test_ip2_only_learnable_properties_move():
    res = lab.simulate("ip2", {"mask": ["theta"], "eta": 0.1})
    tr = res.extras["traj"]
    assert tr["theta"].shape == (lab.DEFAULT_POP["ip2"].updates + 1, len(res.extras["neurons"]))
    assert np.abs(tr["theta"][-1] - tr["theta"][0]).max() > 0.05
    assert np.array_equal(tr["tau_s"][0], tr["tau_s"][-1]) and np.array_equal(tr["tau_d"][0], tr["tau_d"][-1])
    none = lab.simulate("ip2", {"mask": []})
    assert all(np.array_equal(v[0], v[-1]) for v in none.extras["traj"].values())


@pytest.mark.parametrize("rule", lab.RULES)
def test_figures_are_valid_plotly(rule):
    res = lab.simulate(rule)
    figs = lab.figures(res)
    assert {"pre", "post", "traces", "weights", "dweights", "history"} <= set(figs)
    for name, f in figs.items():
        spec = json.loads(lab.to_plotly_json(f))
        assert spec["data"], name
    assert len(lab.EQUATIONS[rule]) >= 3 and all(lab.LESSONS[rule][k] for k in ("what", "try", "expect"))


def test_control_defaults_are_the_rules_params():
    for rule in lab.RULES:
        d = lab.default_params(rule)
        for spec in lab.control_specs(rule):
            assert spec["default"] == getattr(d, spec["name"])
            if spec["kind"] == "log":
                assert spec["default"] in spec["options"]
            if spec["kind"] == "slider":
                assert spec["lo"] <= spec["default"] <= spec["hi"]


# ----------------------------------------------------------------------------- the page (AppTest)
def _page():
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file("../app.py", default_timeout=120)
    at.run()
    at.switch_page("app_pages/rule_lab.py")
    at.run()
    assert not at.exception
    return at


def _arr(v) -> np.ndarray:
    """A plotly JSON array: a list, or a typed array {"dtype", "bdata"} (base64)."""
    if isinstance(v, dict) and "bdata" in v:
        import base64
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
    return np.asarray(v, dtype=float)


def _specs(at) -> dict:
    return {json.loads(c.proto.spec)["layout"]["title"]["text"]: c.proto.spec for c in at.get("plotly_chart")}


def test_page_default_stdp_and_slider_changes_figures(runs_dir):
    at = _page()
    assert at.sidebar.selectbox(key="lab_rule").value == "stdp"
    assert len(at.latex) == len(lab.EQUATIONS["stdp"])
    md = " ".join(m.value for m in at.markdown)
    assert "What it does" in md and "What to try" in md and "What to expect" in md
    before = _specs(at)
    assert any("learning window" in t for t in before) and any(t.startswith("change of W") for t in before)
    at.sidebar.select_slider(key="lab_stdp_eta_plus").set_value(1e-2)
    at.run()
    assert not at.exception and not at.error
    after = _specs(at)
    win_b = next(v for t, v in before.items() if "learning window" in t)
    win_a = next(v for t, v in after.items() if "learning window" in t)
    assert win_a != win_b
    dw_b = next(t for t in before if t.startswith("change of W"))
    dw_a = next(t for t in after if t.startswith("change of W"))
    assert dw_a != dw_b                      # mean |dW| in the title moved


def test_page_every_rule_renders_and_input_switch(runs_dir):
    at = _page()
    for rule in ("rstdp", "ssdp", "da_ssdp", "mps", "ip2"):
        at.sidebar.selectbox(key="lab_rule").set_value(rule)
        at.run()
        assert not at.exception and not at.error, rule
        titles = " | ".join(_specs(at))
        assert len(at.latex) == len(lab.EQUATIONS[rule]), rule
        want = {"rstdp": "reward per update", "ssdp": "synchrony kernel", "da_ssdp": "dopamine gate",
                "mps": "mechanism assignment", "ip2": "theta of"}[rule]
        assert want in titles, (rule, titles)
    at.sidebar.selectbox(key="lab_rule").set_value("ssdp")
    at.run()
    sync = lambda: next(json.loads(v) for t, v in _specs(at).items() if t == "per update")  # noqa: E731
    s_b = next(d["y"] for d in sync()["data"] if d["name"] == "synchrony S")
    at.sidebar.radio(key="lab_ssdp_in_kind").set_value("poisson")
    at.run()
    s_p = next(d["y"] for d in sync()["data"] if d["name"] == "synchrony S")
    assert _arr(s_p).mean() < _arr(s_b).mean()


def test_page_bad_input_shows_error(runs_dir):
    at = _page()
    at.sidebar.selectbox(key="lab_rule").set_value("mps")
    at.run()
    at.sidebar.multiselect(key="lab_mps_mechanisms").set_value([])
    at.run()
    assert not at.exception
    assert at.error and "mechanisms" in at.error[0].value and "at least one" in at.error[0].value
    assert not at.get("plotly_chart")


def _lab_page(query):
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file("../app.py", default_timeout=120)
    at.run()
    at.switch_page("app_pages/rule_lab.py")
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, at.exception
    return at


def test_rule_lab_link_reproduces_the_view():
    at = _lab_page({"lab_rule": "ssdp", "lab_ssdp_updates": "7", "lab_ssdp_in_jitter": "1.5",
                    "lab_ssdp_in_kind": '"poisson"'})
    assert at.sidebar.selectbox(key="lab_rule").value == "ssdp"
    assert at.sidebar.slider(key="lab_ssdp_updates").value == 7
    assert at.sidebar.slider(key="lab_ssdp_in_jitter").value == 1.5
    assert at.sidebar.radio(key="lab_ssdp_in_kind").value == "poisson"
    assert not at.warning
    # moving a slider writes the view back into the URL
    at.sidebar.slider(key="lab_ssdp_updates").set_value(9)
    at.run()
    v = at.query_params["lab_ssdp_updates"]
    assert (v[0] if isinstance(v, list) else v) == "9"


def test_rule_lab_bad_link_falls_back_visibly():
    at = _lab_page({"lab_rule": "stdp", "lab_stdp_updates": "999"})
    assert any("were not applied" in w.value for w in at.warning)
    assert at.sidebar.selectbox(key="lab_rule").value == "stdp"
    at = _lab_page({"lab_rule": "nope"})
    assert any("unknown rule 'nope'" in w.value for w in at.warning)


def _stdp_dw(params, kind, seeds=(0, 1, 2)):
    out = []
    for seed in seeds:
        pop = dataclasses.replace(lab.DEFAULT_POP["stdp"], seed=seed)
        inp = dataclasses.replace(lab.DEFAULT_INPUT["stdp"], kind=kind)
        r = lab.simulate("stdp", params, pop, inp)
        out.append((r.dW, r.history["rate"].mean()))
    return out


def test_stdp_lesson_texts_say_what_the_sandbox_shows():
    """'What to try' and 'what to expect' agree with each other and with the simulation: equal
    eta on the sweep learns early-vs-late; Poisson input gives net potentiation (causal pairs),
    even at the default eta_minus slightly above eta_plus; eta_minus = 2 eta_plus depresses."""
    text = lab.LESSONS["stdp"]
    assert "both to 1e-2" in text["try"] and "2e-2" in text["try"]
    assert "net depression" not in text["expect"] and "mean ΔW > 0" in text["expect"]
    for dW, _ in _stdp_dw({"eta_plus": 1e-2, "eta_minus": 1e-2}, "pattern"):
        assert dW[:, :7].mean() > 0 > dW[:, 13:].mean()              # early inputs up, late ones down
    for params in (None, {"eta_plus": 1e-2, "eta_minus": 1e-2}):
        for dW, _ in _stdp_dw(params, "poisson"):
            assert dW.mean() > 0                                     # Poisson: potentiation wins
    base = [rate for _, rate in _stdp_dw({"eta_plus": 1e-2, "eta_minus": 1e-2}, "poisson")]
    for (dW, rate), r0 in zip(_stdp_dw({"eta_plus": 1e-2, "eta_minus": 2e-2}, "poisson"), base):
        assert dW.mean() < 0 and rate < r0                           # depression wins, post rate falls
    for dW, _ in _stdp_dw(None, "pattern"):
        assert 0.01 < np.abs(dW).mean() < 0.03                       # "≈ 0.02" at the default eta
    opts = {s["name"]: s.get("options", []) for s in lab.control_specs("stdp")}
    assert 1e-2 in opts["eta_plus"] and 1e-2 in opts["eta_minus"] and 2e-2 in opts["eta_minus"]


def test_rstdp_equation_names_the_sliders_parameter():
    eqs = " ".join(lab.EQUATIONS["rstdp"])
    assert "r_{decay}" in eqs and "gamma" not in eqs
    assert "r_decay" in [s["name"] for s in lab.control_specs("rstdp")]


def test_mps_assignment_colours_match_the_train_page():
    """Same share, same shade: light at 0, dark at 1, on both pages (a bare 'Blues' reached
    plotly.js unvalidated in the Rule Lab, where it runs dark to light)."""
    import plotly.graph_objects as go

    from snncore.viz import rules as vr
    lab_scale = lab.figures(lab.simulate("mps"))["assign"]["data"][0]["colorscale"]
    assert not isinstance(lab_scale, str)
    spec = json.loads(lab.to_plotly_json(lab.figures(lab.simulate("mps"))["assign"]))
    sent = [tuple(x) for x in spec["data"][0]["colorscale"]]
    train = [tuple(x) for x in json.loads(go.Figure(vr.assignment_figure(np.eye(3), ["bp", "hebb", "sbp"])).to_json())["data"][0]["colorscale"]]
    assert sent == train
    assert sent[0][1] == "rgb(247,251,255)" and sent[-1][1] == "rgb(8,48,107)"   # light -> dark


# ----------------------------------------------------------------------------- the plugin interface
def test_a_new_rule_package_joins_the_lab_without_touching_it(tmp_path, monkeypatch):
    """A registered rule package with a lab.py LAB is a Rule Lab rule: listed last (default rank),
    simulated and drawn through the generic code; here STDP's part under another id."""
    from snncore import rules
    pkg = tmp_path / "labplugin"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from snncore.rules.stdp import STDP\n\n\nclass Plug(STDP):\n    pass\n")
    (pkg / "lab.py").write_text("import dataclasses\nfrom snncore.rules.stdp.lab import LAB as S\n"
                                "LAB = dataclasses.replace(S, title='plug-in', rank=1000)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(rules.REGISTRY, "plug", "labplugin:Plug")
    assert lab.RULES[-1] == "plug" and "plug" in lab.TITLES and lab.TITLES["plug"] == "plug-in"
    a, b = lab.simulate("plug", {"eta_plus": 1e-2}), lab.simulate("stdp", {"eta_plus": 1e-2})
    assert a.rule == "plug" and np.array_equal(a.W, b.W) and not np.array_equal(a.W, a.W0)
    assert set(lab.figures(a)) == set(lab.figures(b))
    assert [s["name"] for s in lab.control_specs("plug")] == [s["name"] for s in lab.control_specs("stdp")]


def test_generic_lab_code_names_no_rule():
    import pathlib
    import re
    from snncore.rules import rule_names
    root = pathlib.Path(__file__).resolve().parents[1]
    files = [*sorted((root / "snncore" / "lab").glob("*.py")), root / "app_pages" / "rule_lab.py"]
    ids = "|".join(map(re.escape, rule_names()))
    pat = re.compile(rf"""["'](?:lab_)?(?:{ids})(?:_\w*)?["']|\brules\.(?:{ids})\b""")
    for f in files:
        hits = [ln for ln in f.read_text().splitlines() if pat.search(ln)]
        assert not hits, (f.name, hits)


def test_a_rule_of_ones_own_opens_in_the_rule_lab_by_its_import_path():
    """Issue #16: an outside rule with a Rule Lab part opens by its import path (page, link and
    lab.simulate); one without a part, or a path that does not load, is one visible line."""
    from snncore import lab
    path = "tests.outside_lab_rule:LabbedSTDP"
    assert lab.spec(path).title == "outside STDP (a test rule)"
    res = lab.simulate(path, {"eta_plus": 1e-2})
    assert res.dW.shape == (lab.spec(path).pop.n_post, lab.spec(path).pop.n_pre) and abs(res.dW).sum() > 0
    with pytest.raises(ValueError, match="has no Rule Lab part"):
        lab.spec("examples.triplet_stdp:TripletSTDP")
    at = _lab_page({})
    at.sidebar.text_input(key="lab_rule_path").set_value(path).run()
    assert not at.exception, at.exception
    assert [h.value for h in at.subheader if h.value.startswith("outside STDP")]
    assert at.query_params["lab_rule"] == [path] or at.query_params["lab_rule"] == path
    assert len(at.get("plotly_chart")) >= 4
    at.sidebar.text_input(key="lab_rule_path").set_value("examples.triplet_stdp:TripletSTDP").run()
    assert not at.exception
    assert any("has no Rule Lab part" in e.value for e in at.error)
    linked = _lab_page({"lab_rule": path})                        # the link reproduces the view
    assert linked.sidebar.text_input(key="lab_rule_path").value == path
    assert [h.value for h in linked.subheader if h.value.startswith("outside STDP")]


def test_a_link_to_a_rule_without_a_rule_lab_part_says_so():
    at = _lab_page({"lab_rule": "examples.triplet_stdp:TripletSTDP"})
    msgs = [w.value for w in at.warning]
    assert any("has no Rule Lab part" in m for m in msgs), msgs
