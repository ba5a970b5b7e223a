"""Home: what the lab is, and the runs in the store, each one click from Train and Inspect."""
import time

import pandas as pd
import streamlit as st

from app_pages.common import get_store
from snncore.health import at_chance

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


def _row(r: dict) -> None:
    c = r["config"]
    what = f"{c.get('rule')} on {c.get('dataset')}"
    cols = st.columns([5, 3, 1, 1], vertical_alignment="center")
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
    cols[2].page_link("app_pages/train.py", label="Train", icon=":material/rocket_launch:",
                      query_params={"run": r["id"]})
    cols[3].page_link("app_pages/inspect_run.py", label="Inspect", icon=":material/query_stats:",
                      query_params={"run": r["id"]})


store = get_store()
if store is not None:
    runs = store.list_runs(200)
    st.subheader(f"Runs ({len(runs)})")
    if runs:
        for r in runs[:SHOWN]:
            _row(r)
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
