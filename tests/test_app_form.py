"""Train page form: lesson presets, config bound to the URL, exports, the data-folder fence."""
from streamlit.testing.v1 import AppTest

from snncore.config import RunConfig
from snncore.presets import list_presets


def page(query: dict | None = None) -> AppTest:
    at = AppTest.from_file("../app.py", default_timeout=120)
    at.run()
    at.switch_page("app_pages/train.py")
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, at.exception
    return at


def qp(at, k):
    v = at.query_params.get(k)
    return v[0] if isinstance(v, list) else v


def test_loading_a_preset_fills_the_whole_form(runs_dir):
    at = page()
    preset = next(p for p in list_presets() if p.id == "stdp_repeated_pattern")
    at.sidebar.selectbox(key="preset_pick").set_value(preset.id)
    at.run()
    next(b for b in at.sidebar.button if b.label == "Load this lesson").click()
    at.run()
    assert not at.exception
    assert any(preset.title in s.value for s in at.sidebar.success)
    assert at.sidebar.selectbox(key="rule").value == "stdp"
    assert at.sidebar.selectbox(key="dataset").value == "synthetic"
    assert at.sidebar.number_input(key="epochs").value == 4
    assert at.sidebar.number_input(key="rp_stdp_eta_plus").value == 2e-3
    assert at.sidebar.selectbox(key="rp_stdp_bounds").value == "multiplicative"
    assert at.sidebar.number_input(key="log_every").value == 2           # a field under "more settings"
    # the URL now carries the lesson's config: the same link gives the same form
    assert qp(at, "rule") == "stdp" and qp(at, "epochs") == "4" and qp(at, "rp.eta_plus") == "0.002"
    cfg_from_form = RunConfig.from_dict(preset.config)
    toml = next(d for d in at.get("download_button") if d.proto.label == "config as TOML")
    assert toml is not None
    assert cfg_from_form.rule == "stdp"


def test_a_link_reproduces_the_config(runs_dir):
    at = page({"rule": "da_ssdp", "dataset": "synthetic", "epochs": "3", "hidden": "64,32", "syn_jitter": "1.5",
               "rp.warmup_steps": "7"})
    assert at.sidebar.selectbox(key="rule").value == "da_ssdp"
    assert at.sidebar.number_input(key="epochs").value == 3
    assert at.sidebar.text_input(key="hidden").value == "64,32"
    assert at.sidebar.slider(key="syn_jitter").value == 1.5
    assert at.sidebar.number_input(key="rp_da_ssdp_warmup_steps").value == 7
    code = [c.value for c in at.sidebar.code]
    assert any("--epochs 3" in c and "--hidden 64,32" in c and "--warmup-steps 7" in c for c in code), code


def test_a_bad_link_is_refused_visibly_and_the_form_keeps_defaults(runs_dir):
    at = page({"rule": "ssdp", "epochs": "-4"})
    assert any("The link's settings were not applied" in w.value and "epochs" in w.value for w in at.sidebar.warning)
    assert at.sidebar.number_input(key="epochs").value == RunConfig().epochs


def test_data_folder_outside_the_data_root_is_refused(runs_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SNNCORE_DATA", str(tmp_path / "data"))
    at = page({"rule": "bptt", "dataset": "mnist"})
    at.sidebar.text_input(key="ds_data_dir").set_value("/etc")
    at.run()
    assert any("outside the data folder" in e.value for e in at.sidebar.error)
    next(b for b in at.sidebar.button if b.label == "Start").click()
    at.run()
    from snncore.store import RunStore
    assert RunStore(runs_dir).list_runs() == []
    at.sidebar.text_input(key="ds_data_dir").set_value("../escape")
    at.run()
    assert any("outside the data folder" in e.value for e in at.sidebar.error)


def test_your_own_rule_by_import_path(runs_dir):
    at = page()
    at.sidebar.text_input(key="rule_path").set_value("examples.nope:Rule")
    at.run()
    assert any("Your rule does not load" in e.value and "examples.nope" in e.value for e in at.sidebar.error)
    at.sidebar.text_input(key="rule_path").set_value("examples.triplet_stdp:TripletSTDP")
    at.run()
    assert not at.exception
    assert at.sidebar.number_input(key="rp_examples.triplet_stdp:TripletSTDP_tau_y").value == 114.0
    assert qp(at, "rule") == "examples.triplet_stdp:TripletSTDP"
    code = [c.value for c in at.sidebar.code]
    assert any("--rule examples.triplet_stdp:TripletSTDP" in c for c in code), code


def test_a_link_with_an_import_path_rule_fills_the_text_box(runs_dir):
    at = page({"rule": "examples.triplet_stdp:TripletSTDP", "rp.a3_plus": "0.01"})
    assert at.sidebar.text_input(key="rule_path").value == "examples.triplet_stdp:TripletSTDP"
    assert at.sidebar.number_input(key="rp_examples.triplet_stdp:TripletSTDP_a3_plus").value == 0.01
