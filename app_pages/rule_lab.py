"""Rule Lab: one plasticity rule on a tiny in-process population; every slider reruns it.

The simulation is snncore.lab (the rules' own code on tens of neurons, no run store); this page
knows no rule: it draws the widgets of the rule's LabSpec (lab.control_specs, defaults = the
rule's Params, and the spec's extra_controls), calls lab.simulate and shows lab.figures in the
spec's order. Results are cached per setting, so moving a slider back is instant.
"""
from __future__ import annotations

import dataclasses
import json

import plotly.graph_objects as go
import streamlit as st
from streamlit.errors import StreamlitAPIException

from app_pages import form_state as fs
from app_pages import lesson
from snncore import lab

@st.cache_data(max_entries=128, show_spinner=False)
def run_lab(rule: str, values: dict, pop: lab.PopSpec, inp: lab.InputSpec, extra: dict):
    """(figures, seconds, summary) of one setting; ValueError for bad values."""
    res = lab.simulate(rule, values, pop, inp, extra)
    spec = lab.spec(rule)
    summary = {"dw": float(abs(res.dW).mean()), "updates": pop.updates,
               "more": spec.caption(res) if spec.caption else ""}
    return lab.figures(res), res.seconds, summary


def _figure(spec: dict):
    """A plotly Figure built without re-validating every property: st.plotly_chart validates a dict
    property by property (~10-25 ms a figure here), while lab.figures' output is checked by the
    tests (tests/test_rule_lab.py builds each with go.Figure)."""
    try:
        return go.Figure(spec, _validate=False)
    except TypeError:            # a plotly without the private switch: let Streamlit validate
        return spec


def _init(key: str, **default) -> dict:
    """A widget's default only when its key is unset (a link may have set it; Streamlit warns on both)."""
    return {} if key in st.session_state else default


def _url_value(v: str):
    try:
        return json.loads(v)
    except ValueError:
        return v


def load_from_url() -> None:
    """Once per session: the link's Rule Lab settings (lab_* parameters) fill the widgets."""
    if st.session_state.get("_lab_url_done"):
        return
    st.session_state["_lab_url_done"] = True
    got = {k: _url_value(v) for k, v in st.query_params.items() if k.startswith("lab_")}
    if got.get("lab_rule") not in (None, *lab.RULES):
        try:
            lab.spec(got["lab_rule"])               # a rule of one's own, by its import path
        except ValueError as e:                     # an import path says why it cannot open
            st.session_state["_lab_url_error"] = (str(e).removeprefix("rule: ") if ":" in str(got["lab_rule"])
                                                  else f"unknown rule {got['lab_rule']!r} in the link")
            return
        got["lab_rule_path"] = got.pop("lab_rule")
    for k, v in got.items():
        st.session_state[k] = v
    st.session_state["_lab_url_keys"] = list(got)


def load_lesson(preset) -> None:
    """A Rule Lab lesson's rule and hyperparameters into the widgets (a value a widget cannot
    show, e.g. between two steps of a log slider, goes to the nearest one it can)."""
    cfg = preset.run_config()
    rule = cfg.rule
    lab.spec(rule)                          # ValueError: the rule has no Rule Lab part
    ss = st.session_state
    if rule in lab.RULES:
        ss["lab_rule"], ss["lab_rule_path"] = rule, ""
    else:
        ss["lab_rule_path"] = rule
    given = cfg.rule_params or {}
    for c in lab.control_specs(rule):
        v = given.get(c["name"], c["default"])
        if c["kind"] == "log":
            v = min(c["options"], key=lambda o: abs(o - float(v)))
        elif c["kind"] == "slider":
            v = float(min(max(float(v), c["lo"]), c["hi"]))
        ss[f"lab_{rule}_{c['name']}"] = list(v) if c["kind"] == "multi" else v


def lesson_keys(preset) -> set[str]:
    """Rule Lab's widget keys of a lesson's controls."""
    rule = preset.run_config().rule
    named = {"rule": {"lab_rule", "lab_rule_path"}, "updates": {f"lab_{rule}_updates"},
             "seed": {f"lab_{rule}_seed"},
             "input": {f"lab_{rule}_in_{k}" for k in ("kind", "rate", "jitter", "period", "spread")}}
    keys = set()
    for c in preset.controls or ():
        keys |= named.get(c, {f"lab_{rule}_{c}"})
    return keys


def save_to_url(rule: str) -> None:
    """The current rule's settings into the URL, so a link reproduces this view."""
    want = {"lab_rule": rule}
    if lesson.PARAM in st.query_params and st.session_state.get(lesson.ACTIVE):
        want[lesson.PARAM] = st.query_params[lesson.PARAM]
    for k, v in st.session_state.items():
        if isinstance(k, str) and k.startswith(f"lab_{rule}_"):
            want[k] = v if isinstance(v, str) else json.dumps(v)
    if dict(st.query_params) != want:
        st.query_params.from_dict(want)


def param_widget(rule: str, spec: dict):
    name, kind, d = spec["name"], spec["kind"], spec["default"]
    key, help_ = f"lab_{rule}_{name}", spec["help"] or None
    if fs.hidden(key):                      # lesson mode: the lesson does not use it
        return fs.kept(key, list(d) if kind == "multi" else d)
    if kind == "slider":
        return st.slider(name, min_value=float(spec["lo"]), max_value=float(spec["hi"]),
                         step=float(spec["step"]), key=key, help=help_,
                         **_init(key, value=float(min(max(d, spec["lo"]), spec["hi"]))))
    if kind == "log":
        return st.select_slider(name, options=spec["options"], key=key, help=help_,
                                format_func=lambda v: f"{v:g}", **_init(key, value=float(d)))
    if kind == "choice":
        opts = spec["options"]
        return st.radio(name, opts, key=key, help=help_, horizontal=True, **_init(key, index=opts.index(d)))
    if kind == "check":
        return st.checkbox(name, key=key, help=help_, **_init(key, value=bool(d)))
    if kind == "multi":
        return st.multiselect(name, spec["options"], key=key, help=help_, **_init(key, default=list(d)))
    raise ValueError(kind)


def knob(key: str, default, draw):
    """draw(key) the widget; in lesson mode, when the lesson does not use it, keep its value unseen."""
    if fs.hidden(key):
        return fs.kept(key, default)
    return draw(key)


def extra_widget(rule: str, c: dict, updates: int):
    """One of the sandbox's own knobs (LabSpec.extra_controls) at its spec default."""
    key, d = f"lab_{rule}_{c['key']}", lab.spec(rule).extra[c["name"]]
    if fs.hidden(key):
        return fs.kept(key, d)
    if c["kind"] == "radio":
        opts = tuple(c["options"])
        fmt = c.get("format", "{}")
        return st.radio(c["label"], opts, key=key, format_func=lambda v: fmt.format(v), horizontal=True,
                        help=c.get("help"), **_init(key, index=opts.index(d)))
    if c["kind"] == "slider":
        lo, hi = c["lo"], c["hi"]
        if hi == "updates-1":            # bounded by the updates slider above it
            hi = updates - 1
            if st.session_state.get(key, lo) > hi:
                st.session_state[key] = hi
            d = min(d, hi)
        step = {"step": c["step"]} if "step" in c else {}
        return st.slider(c["label"], lo, hi, key=key, help=c.get("help"), **step, **_init(key, value=d))
    raise ValueError(c["kind"])


st.title("Rule Lab")
st.caption("One plasticity rule on a tiny population, simulated here and now with the training "
           "engine's own update code. Move a slider: everything below is recomputed.")

load_from_url()
the_lesson = lesson.open_from_url("rule_lab", load_lesson)
if the_lesson is not None:
    lesson.panel(the_lesson, lesson_keys(the_lesson))
if st.session_state.get("_lab_url_error"):
    st.warning(f"The link's Rule Lab settings were not applied: {st.session_state.pop('_lab_url_error')}")
try:
    with st.sidebar:
        st.header("Rule Lab")
        if fs.hidden("lab_rule"):           # lesson mode: the lesson's rule
            rule, own = fs.kept("lab_rule", lab.RULES[0]), fs.kept("lab_rule_path", "").strip()
        else:
            rule = st.selectbox("rule", lab.RULES, format_func=lambda r: lab.spec(r).title, key="lab_rule")
            own = st.text_input("or your own rule: package.module:Class", key="lab_rule_path",
                                help="a Rule subclass with a Rule Lab part (docs/NEW_RULE.md), importable "
                                     "from the Python path or the app's folder; empty: the rule above").strip()
        if own:
            try:
                lab.spec(own)
                rule = own
            except ValueError as e:
                st.error(f"Your rule cannot open here: {e}")
        spec = lab.spec(rule)
        st.subheader("rule parameters")
        st.caption("Defaults are the rule's paper defaults.")
        values = {c["name"]: param_widget(rule, c) for c in lab.control_specs(rule)}
        pop = dataclasses.replace(spec.pop)
        inp = dataclasses.replace(spec.inp)
        extra: dict = {}
        for c in spec.extra_controls:
            if c["section"] == "rule":
                extra[c["name"]] = extra_widget(rule, c, pop.updates)
        st.subheader("input & population")
        pop.updates = knob(f"lab_{rule}_updates", pop.updates, lambda k: st.slider(
            "updates", spec.min_updates, 40, key=k, **_init(k, value=pop.updates)))
        for c in spec.extra_controls:
            if c["section"] == "population":
                extra[c["name"]] = extra_widget(rule, c, pop.updates)
        if spec.uses_input:
            inp.kind = knob(f"lab_{rule}_in_kind", inp.kind, lambda k: st.radio(
                "input", lab.INPUTS, key=k, **_init(k, index=lab.INPUTS.index(inp.kind)),
                format_func=lambda i: lab.INPUT_TITLES[i], horizontal=True))
            inp.rate = knob(f"lab_{rule}_in_rate", float(inp.rate), lambda k: st.slider(
                "rate (spikes/step; background for bursts & pattern)", 0.0, 0.5, step=0.005, key=k,
                format="%.3f", **_init(k, value=float(inp.rate))))
            inp.jitter = knob(f"lab_{rule}_in_jitter", float(inp.jitter), lambda k: st.slider(
                "jitter (steps)", 0.0, 5.0, step=0.25, key=k, **_init(k, value=float(inp.jitter))))
            inp.period = knob(f"lab_{rule}_in_period", int(inp.period), lambda k: st.slider(
                "period of bursts / pattern (steps)", 2, 40, key=k, **_init(k, value=int(inp.period))))
            inp.spread = knob(f"lab_{rule}_in_spread", float(inp.spread), lambda k: st.slider(
                "trial-to-trial spread", 0.0, 1.0, step=0.05, key=k, **_init(k, value=float(inp.spread))))
        else:
            st.caption(spec.input_note)
        pop.seed = int(knob(f"lab_{rule}_seed", 0, lambda k: st.number_input(
            "seed", 0, 100_000, key=k, **_init(k, value=0))))
except StreamlitAPIException as e:          # a linked value a widget cannot take
    bad = st.session_state.pop("_lab_url_keys", None)
    if not bad:
        raise
    for k in bad:
        st.session_state.pop(k, None)
    st.session_state["_lab_url_error"] = str(e).splitlines()[0]
    st.rerun()
st.session_state.pop("_lab_url_keys", None)
save_to_url(rule)

st.subheader(spec.title)
text = spec.lessons
c1, c2, c3 = st.columns(3)
c1.markdown(f"**What it does.** {text['what']}")
c2.markdown(f"**What to try.** {text['try']}")
c3.markdown(f"**What to expect.** {text['expect']}")
with st.expander("equations", expanded=True):
    for eq in spec.equations:
        st.latex(eq)

try:
    figs, seconds, summary = run_lab(rule, values, pop, inp, extra)
except ValueError as e:
    st.error(f"{e}")
    st.stop()

line = f"{summary['updates']} updates simulated in {1000 * seconds:.0f} ms · mean |ΔW| {summary['dw']:.3g}"
line += summary["more"]
st.caption(line)
names = [n for n in spec.order if n in figs] + [n for n in figs if n not in spec.order]
for i in range(0, len(names), 2):
    cols = st.columns(2)
    for col, name in zip(cols, names[i:i + 2]):
        col.plotly_chart(_figure(figs[name]), key=f"lab_fig_{name}", width="stretch")
