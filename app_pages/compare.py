"""Compare: pick runs -> overlaid curves, final metrics, seed groups with mean ± 95 % CI, CSV, repeats.

The selection lives in the URL (?runs=ID1,ID2&x=epoch), so a link reopens the same view.
"""
from __future__ import annotations

import time

import streamlit as st

from app_pages.common import get_store, who
from snncore import classroom, compare
from snncore.config import ConfigError
from snncore.runs.queue import QUEUED
from snncore.store import LIVE
from snncore.sweeps import engine as sweeps
from snncore.sweeps.launch import launch_configs, launch_info
from snncore.sweeps.spec import configs_spec

PLOT_CONFIG = {"displaylogo": False}    # the modebar keeps its "download as PNG" button

st.title("Compare")
store = get_store()
if store is None:
    st.stop()

runs = store.list_runs(500)
if not runs:
    st.info("No runs yet. Start some on the Train page (or load a lesson preset), then compare them here.")
    st.stop()
by_id = {r["id"]: r for r in runs}


def label(rid: str) -> str:
    r = by_id[rid]
    c = r["config"]
    extra = f" · {r['name']}" if r["name"] else ""
    return f"{rid} · {c.get('rule')} on {c.get('dataset')} · seed {c.get('seed')} · {r['status']}{extra}"


# ---- selection, bound to the URL ------------------------------------------------------------------
if "cmp_runs" not in st.session_state:
    raw = st.query_params.get("runs", "")
    wanted = [s for s in raw.split(",") if s]
    missing = [s for s in wanted if s not in by_id]
    if missing:
        st.warning(f"Not in this runs folder, left out: {', '.join(missing[:5])}"
                   + (" …" if len(missing) > 5 else ""))
    st.session_state["cmp_runs"] = [s for s in wanted if s in by_id]
    st.session_state["cmp_x"] = st.query_params.get("x", "step") if st.query_params.get("x") in ("step", "epoch") \
        else "step"


def repeat_sweeps() -> tuple[list[str], bool]:
    """Run ids of the trials of this session's "repeat" sweeps, and whether one still runs."""
    ids, going = [], False
    for sid in st.session_state.get("cmp_sweeps", []):
        state = sweeps.load_state(store.root, sid)
        info = launch_info(store.root, sid)
        if (state is None and info and info["alive"]) or (state and state["status"] == "running"):
            going = True
        ids += [r["run_id"] for r in sweeps.trial_records(store.root, sid).values() if r.get("run_id")]
    return ids, going


# runs of a "repeat" sweep join the selection as its trials create them
for rid in repeat_sweeps()[0]:
    if rid in by_id and rid not in st.session_state["cmp_runs"]:
        st.session_state["cmp_runs"] = st.session_state["cmp_runs"] + [rid]
st.session_state["cmp_runs"] = [s for s in st.session_state["cmp_runs"] if s in by_id]

c1, c2 = st.columns([5, 1])
selected = c1.multiselect("runs", list(by_id), key="cmp_runs", format_func=label,
                          placeholder="choose two or more runs",
                          help="runs whose configs differ only by the seed form a seed group")
x = c2.radio("x axis", ("step", "epoch"), key="cmp_x", horizontal=True)
qp = {"runs": ",".join(selected)} if selected else {}
if x != "step":
    qp["x"] = x
if dict(st.query_params) != qp:
    st.query_params.from_dict(qp)

if not selected:
    st.info("Pick runs above: their curves are overlaid, their final metrics tabulated, and runs that "
            "differ only by seed are pooled into a mean with a 95 % confidence interval.")
    st.stop()

sel_runs = [by_id[r] for r in selected]
pending = [r for r in sel_runs if r["status"] in LIVE or r["status"] == QUEUED]


@st.fragment(run_every=2.0 if pending or repeat_sweeps()[1] else None)
def results() -> None:
    rows = [store.get_run(r) for r in selected]
    rows = [r for r in rows if r is not None]
    if any(r["id"] in by_id and r["status"] != by_id[r["id"]]["status"] for r in rows):
        st.rerun()   # a run changed status: the whole page, so the selection chips stop saying "queued"
    if any(rid not in selected for rid in repeat_sweeps()[0]):
        st.rerun()   # a repeat sweep's trial created its run: into the selection
    n_live = sum(r["status"] in LIVE for r in rows)
    n_q = sum(r["status"] == QUEUED for r in rows)
    if n_live or n_q:
        st.caption(f"{n_live} running, {n_q} queued: the page refreshes as they finish.")
    labels = {r["id"]: label(r["id"]) if r["id"] in by_id else r["id"] for r in rows}
    groups = compare.seed_groups(rows)
    group_of = {rid: g.label for g in groups for rid in g.run_ids}
    short = {rid: f"{group_of[rid]} · seed {by_id.get(rid, {}).get('config', {}).get('seed')} · {rid[-6:]}"
             for rid in labels}

    # ---- curves
    frame = compare.overlay_frame(store, [r["id"] for r in rows])
    keys = [k for k in compare.CURVES if k in set(frame["key"])]
    st.subheader("Curves")
    if not keys:
        st.info("The chosen runs have no metrics yet.")
    else:
        smooth = st.slider("smoothing of the training loss (steps)", 0, 50, 0, key="cmp_smooth")
        cols = st.columns(2)
        for i, k in enumerate(keys):
            fig = compare.overlay_figure(frame, k, labels=short, x=x, smooth=smooth if k == "train/loss" else 0,
                                         groups=group_of)
            cols[i % 2].plotly_chart(fig, config=PLOT_CONFIG, key=f"cmp_curve_{k}")

    # ---- final metrics
    table = compare.final_metrics_table(store, rows, recorded=True)
    recorded = table.attrs["recorded"]
    shown = table.drop(columns=recorded).dropna(axis=1, how="all")
    st.subheader("Final metrics")
    st.dataframe(shown, hide_index=True, width="stretch",
                 column_config={m: st.column_config.NumberColumn(m, help=d, format="%.4g")
                                for m, d in compare.FINAL_METRICS.items() if m in shown})

    # ---- seed groups
    summary = compare.group_summary(table)
    st.subheader("Seed groups: mean ± 95 % confidence interval")
    st.caption("Runs whose configs differ only by the seed. The interval uses the Student t distribution "
               "with n − 1 degrees of freedom over the finished runs; with one run it is undefined, and with two "
               "(t = 12.7) it is wide: add seeds below. Accuracy intervals are drawn clipped to 0–1; the "
               "tables and the CSV keep their bounds as computed.")
    gtable = [{"group": g.label, "runs": len(g.run_ids), "seeds": ", ".join(map(str, g.seeds)),
               "finished": int((table[table["group"] == g.label]["status"] == "finished").sum())}
              for g in groups]
    st.dataframe(gtable, hide_index=True, width="stretch")
    metrics = [m for m in [*compare.FINAL_METRICS, *recorded] if m in set(summary["metric"])]
    if metrics:
        c1, c2 = st.columns([2, 3])
        m = c1.selectbox("metric", metrics, key="cmp_metric",
                         format_func=lambda m: f"{m} ({compare.FINAL_METRICS.get(m, 'mean over the last epoch')})",
                         help="the final metrics above, or any quantity the runs recorded ("
                              + compare.RECORDED_HELP + ")")
        sub = summary[summary["metric"] == m].copy()
        sub["mean ± 95 % CI"] = [f"{a:.4g} ± {h:.2g}" if h == h else f"{a:.4g} (n=1)"
                                 for a, h in zip(sub["mean"], sub["half"])]
        c1.dataframe(sub[["group", "n", "mean ± 95 % CI", "lo", "hi", "seeds"]], hide_index=True, width="stretch")
        c2.plotly_chart(compare.ci_figure(summary, m), config=PLOT_CONFIG, key="cmp_ci")
        curve_key = "test/accuracy" if "test/accuracy" in keys else ("l2l/iterations" if "l2l/iterations" in keys
                                                                     else None)
        multi = [g for g in groups if len(g.run_ids) > 1]
        if curve_key and multi:
            xx = "step" if curve_key == "l2l/iterations" else x
            curves = {g.label: compare.group_curve(frame, g.run_ids, curve_key, x=xx) for g in groups}
            st.plotly_chart(compare.group_curve_figure(curves, curve_key, x=xx), config=PLOT_CONFIG,
                            key="cmp_group_curve")
    else:
        st.info("No finished run among the chosen ones yet.")

    st.download_button("Download metrics (CSV)", compare.metrics_csv(table, summary),
                       file_name="compare_metrics.csv", mime="text/csv", key="cmp_csv",
                       help="one row per run (its final metrics, then every quantity it recorded, as its "
                            "mean over the last epoch), then one row per seed group and metric")


results()

# ---- repeat with N seeds -------------------------------------------------------------------------
groups = compare.seed_groups([by_id[r] for r in selected])
st.subheader("Repeat with more seeds")
st.caption("Runs the chosen configurations again, each with a seed the group has not used, as one sweep "
           "(Ray: as many at once as the cores allow, each on its own thread budget). The new runs join "
           "the selection as they start; the Sweep page shows the sweep.")
c1, c2, c3 = st.columns([3, 1, 1])
names = {g.label: g for g in groups}
chosen = c1.multiselect("configurations", list(names), default=list(names), key="cmp_rep_groups")
n = c2.number_input("N seeds", min_value=1, max_value=20, value=3, step=1, key="cmp_rep_n")
c3.write("")
if c3.button(f"Repeat with {int(n)} seeds", type="primary", key="cmp_repeat", disabled=not chosen):
    try:
        cfgs = [c for g in chosen for c in compare.repeat_configs(names[g], int(n))]
        configs_spec(cfgs)                       # every config checked before anything starts
        classroom.check_sweeps(who())
    except (ConfigError, ValueError, classroom.NotAllowed) as e:
        st.error(f"Cannot start: {e}")
    else:
        sid = launch_configs(store.root, cfgs, name="repeat")
        st.session_state["cmp_sweeps"] = st.session_state.get("cmp_sweeps", []) + [sid]
        st.session_state["cmp_repeat_msg"] = (f"Started sweep {sid}: {len(cfgs)} runs (seeds "
                                             f"{', '.join(str(c['seed']) for c in cfgs)}).", sid)
        time.sleep(0.1)
        st.rerun()
if msg := st.session_state.pop("cmp_repeat_msg", None):
    st.success(msg[0])
    st.page_link("app_pages/sweep.py", label="Open the sweep", icon=":material/grid_view:",
                 query_params={"sweep": msg[1]})
