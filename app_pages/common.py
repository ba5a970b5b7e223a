"""Shared app helpers (the store handle, the classroom session); pages stay thin."""
from __future__ import annotations

import functools
import os
import secrets
import time

import streamlit as st

from snncore import classroom
from snncore.store import RunStore, StoreError

SESSION_KEY = "class_session"      # the session's name (classroom mode)
TEACHER_KEY = "class_teacher"      # True once the teacher's token was entered in this session


def log_run(what: str, seconds: float, cpu: float) -> None:
    """One line per page run or fragment tick when SNNCORE_RERUN_LOG names a file (the classroom
    load bench reads it): time, what ran, its seconds, and its thread's CPU seconds (the rest of
    the wall time it waited for the server's other sessions: one process, one GIL)."""
    path = os.environ.get("SNNCORE_RERUN_LOG")
    if path:
        with open(path, "a") as f:
            f.write(f"{time.time():.3f} {what} {seconds:.4f} {cpu:.4f}\n")


def timed(what: str):
    """Log each call's seconds with log_run (under @st.fragment: each tick a user waits for)."""
    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                log_run(what, time.perf_counter() - t0, time.thread_time() - c0)
        return wrapper if os.environ.get("SNNCORE_RERUN_LOG") else fn
    return deco


@st.cache_resource
def _store(root: str) -> RunStore:
    return RunStore(root)


def get_store() -> RunStore | None:
    root = os.environ.get("SNNCORE_RUNS", "runs")
    try:
        return _store(root)
    except StoreError as e:
        st.error(f"{e}. Set SNNCORE_RUNS to a writable folder and reload.")
        return None


def who() -> classroom.Who:
    """The session acting on runs (its name; the teacher once the token was entered)."""
    ss = st.session_state
    if SESSION_KEY not in ss:
        ss[SESSION_KEY] = "student-" + secrets.token_hex(2)
    return classroom.Who(str(ss[SESSION_KEY]), bool(ss.get(TEACHER_KEY)))


def session_box() -> None:
    """In classroom mode, in the sidebar of every page: the session's name (a link's ?who= sets
    it; own runs are found by it) and the teacher's token, entered once."""
    if not classroom.enabled():
        return
    ss = st.session_state
    name = st.query_params.get("who")
    if name and ss.get("_who_url") != name:       # a link's name, applied once (the box may change it)
        ss["_who_url"] = name
        try:
            ss[SESSION_KEY] = ss["_class_name_box"] = classroom.check_session_name(name)
        except ValueError as e:
            st.sidebar.warning(f"The link's ?who= was not used: {e}")
    me = who()
    with st.sidebar.expander(f"session: {me.session}" + (" · teacher" if me.teacher else ""),
                             expanded=False):
        if "_class_name_box" not in ss:
            ss["_class_name_box"] = me.session
        new = st.text_input("your name", key="_class_name_box",
                            help="your runs are found by this name; use the same one after a reload")
        if new.strip() != me.session:
            try:
                ss[SESSION_KEY] = classroom.check_session_name(new)
                st.rerun()
            except ValueError as e:
                st.error(str(e))
        if os.environ.get(classroom.TOKEN_ENV, "").strip() and not me.teacher:
            token = st.text_input("teacher token", type="password", key="_class_token_box")
            if token:
                if classroom.teacher_token_ok(token):
                    ss[TEACHER_KEY] = True
                    st.rerun()
                else:
                    st.error("That is not the teacher token.")
