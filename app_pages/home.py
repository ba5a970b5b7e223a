"""Home: what the lab is, and the runs in the store, each one click from Train and Inspect."""
import time

import pandas as pd
import streamlit as st

from app_pages.common import get_store, who
from snncore import classroom
from snncore.health import at_chance
from snncore.store import LIVE

st.title("Plasticity Lab")
st.markdown(
    "See how plasticity rules shape spiking neural networks. Pick a dataset, a model and a rule on "
    "the **Train** page, press Start, and watch spikes, synchrony and the rule's own telemetry live.")
st.page_link("app_pages/train.py", label="Open the Train page", icon=":material/rocket_launch:")

SHOWN = 30          # newest runs listed with their links; the table below has them all
STATUS_COLOUR = {"finished": "green", "running": "blue", "starting": "blue", "paused": "violet", "queued": "gray", "stopped": "orange",
                 "failed": "red"}


def _result(run: dict) -> str:
    """Best test accuracy, or for a learning-to-learn run its tasks and failures; '' while unknown."""
    if run.get("best_accuracy") is not None:
        return f"best test accuracy {run['best_accuracy']:.1%}"
    s = run.get("summary") or {}
    if s.get("tasks") is not None:
        return f"{s['tasks']} tasks, {s.get('failures', 0)} failed"
    return ""


def _when(run: dict) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(run["created"] or 0))


def _row(r: dict, store, me) -> None:
    c = r["config"]
    what = f"{c.get('rule')} on {c.get('dataset')}"
    cols = st.columns([4, 3, 3], vertical_alignment="center")
    # the links and Delete in one row that wraps: in fixed narrow columns they were cut ("Insp", "D...")
    acts = cols[2].container(horizontal=True, vertical_alignment="center", gap="small")
    # the name first: lesson runs (all "ssdp on synthetic" otherwise) are told apart by it
    cols[0].markdown(f"**{r['name'] or what}**  \n"
                     f"<small>`{r['id']}` · {what + ' · ' if r['name'] else ''}seed {c.get('seed')} · "
                     f"{_when(r)}</small>", unsafe_allow_html=True)
    result = _result(r)
    chance = at_chance(r)
    if chance:
        result += f" · :orange[at chance ({chance[1]:.0%})]"
    cols[1].markdown(f":{STATUS_COLOUR.get(r['status'], 'gray')}[**{r['status']}**]" + (f"  \n{result}" if result else "")
                     + (f"  \n:red[{r['error'][:80]}]" if r["error"] else ""))
    acts.page_link("app_pages/train.py", label="Train", icon=":material/rocket_launch:",
                      query_params={"run": r["id"]})
    acts.page_link("app_pages/inspect_run.py", label="Inspect", icon=":material/query_stats:",
                      query_params={"run": r["id"]})
    whose = classroom.owner(store, r["id"]) if classroom.enabled() else None
    if whose and whose != me.session:
        cols[0].caption(f"started by {whose}")
    # an ended run can go (in a classroom: one's own, or any for the teacher)
    if r["status"] not in (*LIVE, "queued") and classroom.may_control(store, r["id"], me):
        if acts.button("Delete", key=f"del_{r['id']}", help="remove the run, its metrics and its files"):
            try:
                classroom.delete(store, r["id"], me)
            except (classroom.NotAllowed, ValueError) as e:
                st.error(str(e))
            else:
                st.rerun()


def teacher_caps(store, me) -> None:
    """The teacher sets the caps: runs per session, runs live at once on this server."""
    pol = classroom.load_policy(store)
    with st.expander("classroom caps (teacher)", expanded=False):
        c1, c2 = st.columns(2)
        s_cap = c1.number_input("runs per session (queued or running)", 1, classroom.MAX_CAP, pol.session_cap)
        v_cap = c2.number_input("runs at once on this server (0: the cores less one)", 0, classroom.MAX_CAP,
                                pol.server_cap)
        if st.button("Save caps", key="save_caps"):
            classroom.save_policy(store, classroom.Policy(int(s_cap), int(v_cap)), me)
            st.success(f"Saved: {int(s_cap)} per session, {pol.__class__(int(s_cap), int(v_cap)).live_cap()} at once.")


store = get_store()
if store is not None:
    me = who()
    runs = classroom.sort_for(store.list_runs(200), store, me)        # classroom: own runs first
    if classroom.enabled() and me.teacher:
        teacher_caps(store, me)
    st.subheader(f"Runs ({len(runs)})")
    if runs:
        for r in runs[:SHOWN]:
            _row(r, store, me)
        if len(runs) > SHOWN:
            st.caption(f"The {SHOWN} newest runs; all of them in the table below.")
        with st.expander("all runs as a table"):
            st.dataframe(pd.DataFrame([{
                "run": r["id"], "name": r["name"], "status": r["status"], "rule": r["config"].get("rule"),
                "dataset": r["config"].get("dataset"), "result": _result(r),
                "at chance": bool(at_chance(r)), "started": _when(r),
                "error": r["error"] or ""} for r in runs]), hide_index=True, width="stretch")
    else:
        st.info("No runs yet. Start one on the Train page.")
    st.caption(f"Runs folder: {store.root.resolve()}")
