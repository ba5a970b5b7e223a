"""Plasticity Lab: entry point. `streamlit run app.py` (or `make app`)."""
import time

import streamlit as st

st.set_page_config(page_title="Plasticity Lab", page_icon="⚡", layout="wide")


@st.cache_resource(show_spinner=False)
def _warm_kernels():
    """Compile the CPU LIF kernels once per server, in the background (a no-op when cached)."""
    import threading

    from snncore.models import lif_fused
    t = threading.Thread(target=lif_fused.warm_up, name="warm-lif-kernels", daemon=True)
    t.start()
    return t


_warm_kernels()

pages = [
    st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("app_pages/train.py", title="Train", icon=":material/rocket_launch:", url_path="train"),
    st.Page("app_pages/rule_lab.py", title="Rule Lab", icon=":material/science:", url_path="rule_lab"),
    st.Page("app_pages/inspect_run.py", title="Inspect", icon=":material/query_stats:", url_path="inspect"),
    st.Page("app_pages/compare.py", title="Compare", icon=":material/compare_arrows:", url_path="compare"),
    st.Page("app_pages/sweep.py", title="Sweep", icon=":material/grid_view:", url_path="sweep"),
]
nav = st.navigation(pages)
from snncore.rules import LIST_ENV, listed_rules  # noqa: E402 -- after set_page_config

from app_pages.common import log_run, session_box  # noqa: E402

session_box()
for _path, _why in listed_rules()[1].items():       # a rule the lab listed that does not load: say why
    st.warning(f"{LIST_ENV} names {_path!r}, which is left out of the rule lists: {_why}")
_t0, _c0 = time.perf_counter(), time.thread_time()
try:
    nav.run()
finally:                          # bench/classroom_load.py reads each page run's seconds
    log_run(nav.url_path or "home", time.perf_counter() - _t0, time.thread_time() - _c0)
