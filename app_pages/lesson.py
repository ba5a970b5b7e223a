"""Lesson mode: a preset opened by its link (`/train?lesson=<id>` or `/rule_lab?lesson=<id>`).

The lesson's config fills the page once per session; its steps and "Think!" questions stand
beside the page; every control the lesson does not name is hidden (form_state.hidden) until the
teacher shows them all. The presets' [lesson] tables (snncore.presets) are the lessons.
"""
from __future__ import annotations

import dataclasses
from urllib.parse import urlsplit

import streamlit as st

from app_pages import form_state as fs
from snncore.config import ConfigError, RunConfig
from snncore.presets import PresetError, Preset, get_preset
from snncore.rules import get_rule

PARAM = "lesson"
ACTIVE = "_lesson_id"          # session key: the lesson on view
SHOW_ALL = "lesson_show_all"   # the teacher's toggle


def link(preset: Preset) -> str:
    """The lesson's full link on this server (the page it opens, then ?lesson=<id>)."""
    base = ""
    try:
        u = urlsplit(st.context.url or "")
        if u.scheme and u.netloc:
            base = f"{u.scheme}://{u.netloc}"
    except Exception:  # noqa: BLE001 -- no browser context (AppTest): a relative link
        base = ""
    return f"{base}/{preset.page}?{PARAM}={preset.id}"


def train_keys(preset: Preset) -> set[str]:
    """The Train form's widget keys of the lesson's controls."""
    cfg = preset.run_config()
    params = {f.name for f in dataclasses.fields(get_rule(cfg.rule).Params)}
    fields = set(RunConfig.fields())
    keys = set()
    for c in preset.controls or ():
        if c in fields:
            keys.add(fs.key_of(c))
            if c == "rule":
                keys.add("rule_path")
        if c in params:
            keys.add(fs.rp_key(cfg.rule, c))
    return keys


def open_from_url(page: str, load) -> Preset | None:
    """The lesson on view. A ?lesson= link is read once per session: `load(preset)` fills the
    page's widgets. A bad link is a visible warning and no lesson."""
    ss = st.session_state
    want = st.query_params.get(PARAM)
    if want and ss.get("_lesson_url_done") != (page, want):
        ss["_lesson_url_done"] = (page, want)
        try:
            preset = get_preset(want)
            if preset.page != page:
                raise PresetError(f"lesson {want!r} opens on the {preset.page.replace('_', ' ')} page")
            load(preset)
        except (PresetError, ConfigError, ValueError) as e:
            ss["_lesson_error"] = f"The lesson link was not opened: {e}"
            ss.pop(ACTIVE, None)
        else:
            ss[ACTIVE] = preset.id
            ss[SHOW_ALL] = False
    if ss.get("_lesson_error"):
        st.warning(ss.pop("_lesson_error"))
    if not want:
        ss.pop(ACTIVE, None)        # the lesson left the URL: leave lesson mode
    lid = ss.get(ACTIVE)
    if not lid:
        ss.pop(fs.SHOWN, None)
        return None
    try:
        return get_preset(lid)
    except PresetError:
        ss.pop(ACTIVE, None)
        return None


def panel(preset: Preset, keys: set[str]) -> None:
    """The lesson beside the page: its text, steps, Think! questions, the teacher's switch."""
    ss = st.session_state
    with st.container(border=True, key="lesson_panel"):
        st.markdown(f"#### Lesson: {preset.title}")
        st.markdown(preset.text)
        for i, step in enumerate(preset.steps, 1):
            st.markdown(f"**{i}.** {step}")
        for i, t in enumerate(preset.think):
            with st.expander(f"Think! {t['q']}", expanded=False):
                st.markdown(t["a"])
        c1, c2 = st.columns([2, 1])
        show_all = c1.toggle("show every control (teacher)", key=SHOW_ALL,
                             help="lesson mode hides the controls this lesson does not use")
        if c2.button("leave the lesson", key="lesson_leave"):
            ss.pop(ACTIVE, None)
            ss.pop(fs.SHOWN, None)
            del st.query_params[PARAM]
            st.rerun()
    if preset.controls is None or show_all:
        ss.pop(fs.SHOWN, None)
    else:
        ss[fs.SHOWN] = keys


def link_box(preset: Preset) -> None:
    """'Copy lesson link': the link in a code box (its copy button copies it)."""
    st.caption("lesson link (copy it for your class):")
    st.code(link(preset), language=None)
