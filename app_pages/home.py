"""Home: what the lab is, and the runs in the store."""
import time

import pandas as pd
import streamlit as st

from app_pages.common import get_store

st.title("Plasticity Lab")
st.markdown(
    "See how plasticity rules shape spiking neural networks. Pick a dataset, a model and a rule on "
    "the **Train** page, press Start, and watch spikes, synchrony and the rule's own telemetry live.")
st.page_link("app_pages/train.py", label="Open the Train page", icon=":material/rocket_launch:")



def _result(run: dict) -> str:
    """Best test accuracy, or for a learning-to-learn run its tasks and failures; '' while unknown."""
    if run.get("best_accuracy") is not None:
        return f"best test accuracy {run['best_accuracy']:.1%}"
    s = run.get("summary") or {}
    if s.get("tasks") is not None:
        return f"{s['tasks']} tasks, {s.get('failures', 0)} failed"
    return ""


store = get_store()
if store is not None:
    runs = store.list_runs(200)
    st.subheader(f"Runs ({len(runs)})")
    if runs:
        st.dataframe(pd.DataFrame([{
            "run": r["id"], "status": r["status"], "rule": r["config"].get("rule"),
            "dataset": r["config"].get("dataset"), "result": _result(r),
            "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["created"] or 0)),
            "error": r["error"] or ""} for r in runs]), hide_index=True, width="stretch")
    else:
        st.info("No runs yet. Start one on the Train page.")
    st.caption(f"Runs folder: {store.root.resolve()}")
