"""Issue #18 part 3: lesson mode. A preset's [lesson] table (steps, Think! questions, the controls
it uses, the page it opens) becomes a lesson: `?lesson=<id>` opens Train or Rule Lab with the
lesson beside the page and every other control hidden until the teacher shows them."""
import pytest

from tests.app_util import open_page

from snncore.presets import PresetError, get_preset, list_presets

LESSON = '\n[lesson]\ntitle = "t"\ntext = "what to watch"\n'
WIDGETS = ("slider", "select_slider", "selectbox", "radio", "number_input", "text_input", "checkbox",
           "multiselect")


def write(tmp_path, name, body):
    (tmp_path / f"{name}.toml").write_text(body)
    return tmp_path


@pytest.mark.parametrize("extra,match", [
    ('page = "home"', r"page must be one of train, rule_lab, got 'home'"),
    ('controls = ["epochs", "nope"]', r"controls: 'nope' is not a control of the train page for rule ssdp "
                                      r"\(allowed: .*a_plus.*epochs"),
    ('controls = "epochs"', r"controls must be a list of non-empty strings"),
    ('steps = ["ok", ""]', r"steps must be a list of non-empty strings"),
    ('think = [{q = "why?"}]', r"think must be \[\[lesson.think\]\] tables, each with a non-empty q"),
    ('page = "rule_lab"\ncontrols = ["epochs"]', r"'epochs' is not a control of the rule_lab page"),
])
def test_bad_lesson_tables_name_the_problem(tmp_path, extra, match):
    d = write(tmp_path, "bad", 'rule = "ssdp"' + LESSON + extra + "\n")
    with pytest.raises(PresetError, match=r"bad\.toml.*" + match):
        get_preset("bad", d)


def test_every_preset_is_a_lesson_with_steps_questions_and_its_controls():
    presets = list_presets()
    assert {p.page for p in presets} == {"train", "rule_lab"}
    for p in presets:
        assert len(p.steps) >= 3 and p.think and p.controls, p.id
        assert all(t["q"].endswith("?") and len(t["a"]) > 40 for t in p.think), p.id




def _keys(at) -> set:
    return {w.key for kind in WIDGETS for w in at.sidebar.get(kind)}


def _query(at) -> dict:
    return {k: (v[0] if isinstance(v, list) else v) for k, v in at.query_params.items()}


def test_train_lesson_hides_unused_controls_and_the_teacher_shows_them(runs_dir):
    at = open_page("app_pages/train.py", {"lesson": "ssdp_synchrony_task"})
    assert _keys(at) == {"epochs", "seed", "syn_jitter", "rp_ssdp_a_plus", "rp_ssdp_sigma"}
    md = " ".join(m.value for m in at.markdown)
    assert "Lesson: SSDP on the synchrony task" in md and "**1.**" in md and "**4.**" in md
    assert [e.label for e in at.expander if e.label.startswith("Think!")]
    loaded = _query(at)
    assert loaded["lesson"] == "ssdp_synchrony_task" and loaded["rp.a_plus"] == "0.001"
    assert loaded["dataset"] == "synthetic" and loaded["hidden"] == "128"      # the hidden fields hold the preset
    at.toggle(key="lesson_show_all").set_value(True).run()
    assert len(_keys(at)) > 25 and "dataset" in _keys(at) and "preset_pick" in _keys(at)
    at.toggle(key="lesson_show_all").set_value(False).run()
    assert not at.exception and len(_keys(at)) == 5
    assert _query(at) == loaded                     # showing and hiding again kept every value
    at.number_input(key="rp_ssdp_a_plus").set_value(2e-3).run()
    assert _query(at)["rp.a_plus"] == "0.002" and _query(at)["lesson"] == "ssdp_synchrony_task"
    cmd = [c.value for c in at.code if "snncore train" in c.value][0]
    assert "--a-plus 0.002" in cmd and "--dataset synthetic" in cmd
    at.button(key="lesson_leave").click().run()
    assert "lesson" not in at.query_params and len(_keys(at)) > 25 and not at.exception


def test_bad_lesson_links_say_why(runs_dir):
    at = open_page("app_pages/train.py", {"lesson": "no_such_lesson"})
    assert any("lesson link was not opened" in w.value and "unknown preset 'no_such_lesson'" in w.value
               for w in at.warning)
    assert len(_keys(at)) > 25                       # no lesson: the whole form
    at = open_page("app_pages/train.py", {"lesson": "stdp_learning_window"})
    assert any("opens on the rule lab page" in w.value for w in at.warning)


def test_every_preset_offers_its_lesson_link(runs_dir):
    at = open_page("app_pages/train.py")
    at.selectbox(key="preset_pick").set_value("stdp_learning_window").run()
    assert any(c.value.endswith("/rule_lab?lesson=stdp_learning_window") for c in at.code)
    at.selectbox(key="preset_pick").set_value("bptt_synchrony_task").run()
    assert any(c.value.endswith("/train?lesson=bptt_synchrony_task") for c in at.code)


def test_rule_lab_lesson(runs_dir):
    at = open_page("app_pages/rule_lab.py", {"lesson": "stdp_learning_window"})
    assert _keys(at) == {f"lab_stdp_{k}" for k in ("tau_pre", "tau_post", "eta_plus", "eta_minus", "updates")}
    assert any(m.value.startswith("#### Lesson: The STDP learning window") for m in at.markdown)
    assert len(at.get("plotly_chart")) >= 4 and _query(at)["lesson"] == "stdp_learning_window"
    at.sidebar.slider(key="lab_stdp_tau_pre").set_value(12.0).run()
    assert not at.exception and _query(at)["lab_stdp_tau_pre"] == "12.0" and _query(at)["lesson"]
    at.toggle(key="lesson_show_all").set_value(True).run()
    assert "lab_rule" in _keys(at) and "lab_stdp_in_rate" in _keys(at)
    assert at.sidebar.slider(key="lab_stdp_tau_pre").value == 12.0
