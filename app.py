"""Plasticity Lab: entry point. `streamlit run app.py` (or `make app`)."""
import streamlit as st

st.set_page_config(page_title="Plasticity Lab", page_icon="⚡", layout="wide")

pages = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
    st.Page("pages/train.py", title="Train", icon="🚀", url_path="train"),
]
nav = st.navigation(pages)
nav.run()
