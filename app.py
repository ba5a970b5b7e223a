"""Plasticity Lab: entry point. `streamlit run app.py` (or `make app`)."""
import streamlit as st

st.set_page_config(page_title="Plasticity Lab", page_icon="⚡", layout="wide")

pages = [
    st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("app_pages/train.py", title="Train", icon=":material/rocket_launch:", url_path="train"),
]
nav = st.navigation(pages)
nav.run()
