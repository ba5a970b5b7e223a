"""Shared app helpers (the store handle); pages stay thin."""
from __future__ import annotations

import os

import streamlit as st

from snncore.store import RunStore, StoreError


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
