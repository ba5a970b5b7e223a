"""Plasticity Lab: entry point. `streamlit run app.py` (or `make app`)."""
import streamlit as st

st.set_page_config(page_title="Plasticity Lab", page_icon="⚡", layout="wide")

pages = [
    st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("app_pages/train.py", title="Train", icon=":material/rocket_launch:", url_path="train"),
    st.Page("app_pages/rule_lab.py", title="Rule Lab", icon=":material/science:", url_path="rule_lab"),
    st.Page("app_pages/inspect_run.py", title="Inspect", icon=":material/query_stats:", url_path="inspect"),
    st.Page("app_pages/compare.py", title="Compare", icon=":material/compare_arrows:", url_path="compare"),
]
nav = st.navigation(pages)
nav.run()
