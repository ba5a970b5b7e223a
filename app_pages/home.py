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

store = get_store()
if store is not None:
    runs = store.list_runs(200)
    st.subheader(f"Runs ({len(runs)})")
    if runs:
        st.dataframe(pd.DataFrame([{
            "run": r["id"], "status": r["status"], "rule": r["config"].get("rule"),
            "dataset": r["config"].get("dataset"), "best test acc": r.get("best_accuracy"),
            "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["created"] or 0)),
            "error": r["error"] or ""} for r in runs]), hide_index=True, width="stretch")
    else:
        st.info("No runs yet. Start one on the Train page.")
    st.caption(f"Runs folder: {store.root.resolve()}")
