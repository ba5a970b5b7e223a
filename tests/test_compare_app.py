"""AppTest flows of the Compare page: pick runs (and from the URL), curves, final table, seed-group CI,
CSV download, and "repeat with N seeds" running the N runs as one sweep."""
import json
import time

import pytest
from streamlit.testing.v1 import AppTest

from snncore.config import RunConfig
from snncore.store import RunStore

TINY = dict(dataset="digits", rule="bptt", epochs=1, timesteps=4, batch_size=32, hidden=[16], n_train=64,
            record_every=1000)


def fake_run(store, seed, accs, rule="bptt"):
    """A finished run with hand-set metrics (no training: the page only reads the store)."""
    cfg = RunConfig.from_dict(dict(TINY, rule=rule, seed=seed, epochs=len(accs))).to_dict()
    rid = store.create_run(cfg)
    store.log_metrics(rid, [(0, 0, "info/steps_per_epoch", 2)])
    store.log_metrics(rid, [(i, i // 2, "train/loss", 1.0 - 0.1 * i) for i in range(2 * len(accs))])
    store.log_metrics(rid, [(2 * (e + 1), e, "test/accuracy", a) for e, a in enumerate(accs)])
    store.end_run(rid, "finished", summary={"seconds": 1.0})
    time.sleep(0.002)
    return rid


@pytest.fixture
def runs(runs_dir):
    store = RunStore(runs_dir)
    bptt = [fake_run(store, s, [0.5, a]) for s, a in enumerate([0.80, 0.90, 0.85])]
    ssdp = [fake_run(store, s, [0.6, a], rule="ssdp") for s, a in enumerate([0.95, 0.93])]
    return store, bptt, ssdp


def open_page(query: dict | None = None) -> AppTest:
    at = AppTest.from_file("../app.py", default_timeout=60)
    at.run()
    at.switch_page("app_pages/compare.py")
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, at.exception
    return at


def titles(at) -> str:
    return " | ".join(json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart"))


def test_no_runs_message(runs_dir):
    at = open_page()
    assert "No runs yet" in at.info[0].value


def test_pick_runs_curves_table_and_ci(runs):
    store, bptt, ssdp = runs
    at = open_page()
    assert any("Pick runs" in i.value for i in at.info)
    at.multiselect(key="cmp_runs").set_value(bptt + ssdp)
    at.run()
    assert not at.exception
    # selection is in the URL
    assert at.query_params["runs"] in (",".join(bptt + ssdp), [",".join(bptt + ssdp)])
    text = titles(at)
    for t in ("training loss", "test accuracy", "mean ± 95 % CI", "mean and 95 % CI per group"):
        assert t in text, t
    final = at.dataframe[0].value
    assert len(final) == 5 and sorted(final["final_test_accuracy"]) == pytest.approx([0.80, 0.85, 0.90, 0.93, 0.95])
    # the seed-group table of the chosen metric: bptt 0.85 ± t(0.975,2)*0.05/sqrt(3) = 0.124
    ci = [d.value for d in at.dataframe if "mean ± 95 % CI" in d.value.columns][0]
    rows = dict(zip(ci["group"], ci["mean ± 95 % CI"]))
    assert rows[[g for g in rows if g.startswith("bptt")][0]] == "0.85 ± 0.12"
    assert rows[[g for g in rows if g.startswith("ssdp")][0]] == "0.94 ± 0.13"
    # CSV download offered
    dl = at.get("download_button")
    assert dl and "CSV" in dl[0].proto.label


def test_url_selects_runs_and_x_axis(runs):
    store, bptt, ssdp = runs
    at = open_page({"runs": f"{bptt[0]},{ssdp[0]},nope-123", "x": "epoch"})
    assert at.multiselect(key="cmp_runs").value == [bptt[0], ssdp[0]]
    assert at.radio(key="cmp_x").value == "epoch"
    assert any("nope-123" in w.value for w in at.warning)
    assert "test accuracy" in titles(at)


def test_repeat_button_runs_n_seeds_as_a_sweep(runs):
    """Issue #15: "repeat with N seeds" is a sweep over the new seeds (our own queue retired here);
    its runs join the selection as its trials create them, and the seed group grows to 3."""
    from snncore.sweeps import engine
    store, bptt, ssdp = runs
    at = open_page({"runs": ssdp[0]})
    at.number_input(key="cmp_rep_n").set_value(2)
    at.button(key="cmp_repeat").click()
    at.run()
    assert not at.exception, at.exception
    msg = [s.value for s in at.success if s.value.startswith("Started sweep")]
    assert msg and "2 runs (seeds 1, 2)" in msg[0]                     # seed 0 is taken by the group
    sid = msg[0].split()[2].rstrip(":")
    deadline = time.time() + 300
    while time.time() < deadline:
        st_ = engine.load_state(store.root, sid)
        if st_ and st_["status"] != "running":
            break
        time.sleep(1)
    summary = engine.summarize(store.root, engine.load_state(store.root, sid))
    assert summary["status"] == "finished" and summary["finished"] == 2, summary
    new = [r for r in store.list_runs() if r["id"] not in bptt + ssdp]
    assert sorted(r["config"]["seed"] for r in new) == [1, 2]
    assert all(r["config"]["rule"] == "ssdp" and r["status"] == "finished" for r in new)
    at.run()
    assert not at.exception
    assert set(r["id"] for r in new) <= set(at.multiselect(key="cmp_runs").value)   # joined the selection
    ci = [d.value for d in at.dataframe if "mean ± 95 % CI" in d.value.columns][0]
    assert list(ci["n"]) == [3]


def test_a_recorded_quantity_is_a_seed_group_metric(runs):
    """A rule's telemetry (here a gate, logged per step) is offered beside the final metrics: its
    seed-group mean is over the runs' last-epoch means; the final table stays the final metrics."""
    store, bptt, ssdp = runs
    for rid, (g1, g2) in zip(ssdp, [(0.4, 0.6), (0.8, 1.0)]):
        store.log_metrics(rid, [(2, 0, "epoch", 1), (4, 1, "epoch", 2)])
        store.log_telemetry(rid, [(1, "gate/fc1", 5.0), (3, "gate/fc1", g1), (4, "gate/fc1", g2)])
    at = open_page({"runs": ",".join(ssdp)})
    assert "gate/fc1" not in at.dataframe[0].value.columns
    box = at.selectbox(key="cmp_metric")
    assert box.options[-1] == "gate/fc1 (mean over the last epoch)"
    box.set_value("gate/fc1")
    at.run()
    assert not at.exception, at.exception
    ci = [d.value for d in at.dataframe if "mean ± 95 % CI" in d.value.columns][0]
    assert list(ci["mean ± 95 % CI"]) == ["0.7 ± 2.5"]       # means 0.5, 0.9: 12.706 · 0.283 / √2 = 2.54
    assert "gate/fc1: mean ± 95 % CI" in titles(at)
