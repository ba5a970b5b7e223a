"""Rule-specific panels of the Train page (app_pages/rule_panels.py): one tiny run per rule, then the
page opened on each run must draw that rule's panels without an exception."""
import pytest
from streamlit.testing.v1 import AppTest

from snncore.__main__ import main
from snncore.store import RunStore

RULES = {   # rule -> (extra command-line flags, panel titles that must appear)
    "stdp": ([], ["weight histogram over time", "STDP learning window"]),
    "rstdp": ([], ["weight histogram over time", "STDP learning window"]),
    "ssdp": ([], ["SSDP kernel G(dt)", "first-spike latency"]),
    "da_ssdp": (["--warmup-steps", "2"], ["SSDP kernel G(dt)", "first-spike latency", "synchrony vs loss",
                                          "dopamine gate g"]),
    "mps": (["--model", "mps_mlp"], ["mechanism assignment", "layer-mean shares over time"]),
}
NOTE = "The paper's method section was not available; this is our reading of it."


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One finished 4-step run per rule (in-process, so no interpreter start-up per run)."""
    d = tmp_path_factory.mktemp("rule_panels") / "runs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SNNCORE_RUNS", str(d))
        ids = {}
        for rule, (extra, _) in RULES.items():
            argv = ["train", "--rule", rule, "--epochs", "1", "--hidden", "32", "--timesteps", "8",
                    "--batch-size", "64", "--n-train", "256", "--record-every", "2", "--log-every", "1",
                    "--runs-dir", str(d), *extra]
            assert main(argv) == 0, rule
            ids[rule] = RunStore(d).list_runs()[0]["id"]
        yield d, ids


def open_train_page(run_id):
    at = AppTest.from_file("../app.py", default_timeout=60)
    at.run()
    at.query_params["run"] = run_id
    at.switch_page("app_pages/train.py")
    at.run()
    return at


def texts(at, kind):
    return [getattr(e, "value", "") or "" for e in at.get(kind)]


@pytest.mark.parametrize("rule", list(RULES))
def test_rule_panels_render(runs, rule, monkeypatch):
    d, ids = runs
    monkeypatch.setenv("SNNCORE_RUNS", str(d))
    at = open_train_page(ids[rule])
    assert not at.exception, at.exception
    assert at.selectbox(key="run_select").value == ids[rule]
    specs = " ".join(c.proto.spec for c in at.get("plotly_chart"))
    for title in RULES[rule][1]:
        assert title in specs, (rule, title)
    assert f"{rule} panels" in texts(at, "subheader")
    assert not any("could not be drawn" in w for w in texts(at, "warning"))
    assert any(NOTE in i for i in texts(at, "info")) == (rule == "mps")
    if rule == "da_ssdp":
        md = " ".join(texts(at, "markdown"))
        assert "gate fitted: k=" in md and "mu=" in md and "sd=" in md


def test_run_without_snapshot_waits(runs, monkeypatch):
    d, _ = runs
    monkeypatch.setenv("SNNCORE_RUNS", str(d))
    store = RunStore(d)
    rid = store.create_run({"rule": "stdp", "dataset": "digits", "epochs": 1, "timesteps": 8})
    store.log_metrics(rid, [(0, 0, "train/loss", 2.3)])
    store.end_run(rid, "stopped")
    at = open_train_page(rid)
    assert not at.exception, at.exception
    assert "waiting for the first snapshot" in texts(at, "caption")


def _panels_with_stub_store(rule, k, fitted, tel_rows):
    """Renders rule_panels.render for a stub store holding one snapshot (runs inside AppTest)."""
    import numpy as np
    import pandas as pd

    from app_pages import rule_panels

    class Stub:
        root = f"stub-{rule}-{k}-{fitted}"

        def snapshot_steps(self, run_id):
            return [3]

        def load_snapshot(self, run_id, step=None):
            rng = np.random.default_rng(0)
            snap = {"rule/kernel_dt": np.arange(9.0), "rule/kernel_g": np.exp(-np.arange(9.0) ** 2 / 2),
                    "rule/warm_S/out": rng.random(50).astype(np.float32),
                    "rule/warm_L": rng.random(50).astype(np.float32), "step": np.array(3)}
            if fitted:
                snap["rule/fit/out"] = np.array([k, 0.5, 0.1])
                snap["rule/gate/out"] = np.clip(1 + k * rng.normal(size=64), 0, 2).astype(np.float32)
            return snap

    tel = pd.DataFrame(tel_rows).set_index("step") if tel_rows else pd.DataFrame()
    rule_panels.render(rule, Stub(), "stub", {"rule": rule}, tel)


@pytest.mark.parametrize("k, fitted, tel_rows, badges", [
    (0.0, False, [{"step": 1, "phase": 0.0, "warmup_progress": 0.25}], ["warm-up 25 %"]),
    (0.01, True, [], ["gate fitted: k=0.010, mu=0.5, sd=0.1", "gate = 1: plain SSDP"]),
    (0.4, True, [], ["gate fitted: k=0.400"]),
])
def test_da_ssdp_badges(k, fitted, tel_rows, badges):
    at = AppTest.from_function(_panels_with_stub_store, args=("da_ssdp", k, fitted, tel_rows), default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    md = " ".join(texts(at, "markdown"))
    for b in badges:
        assert b in md, (b, md)
    assert ("plain SSDP" in md) == (abs(k) < 0.05 and fitted)
    specs = " ".join(c.proto.spec for c in at.get("plotly_chart"))
    assert "synchrony vs loss" in specs and ("dopamine gate g" in specs) == fitted


def test_ip2_shows_the_reconstruction_note():
    at = AppTest.from_function(_panels_with_stub_store, args=("ip2", 0.0, False, []), default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    assert any(NOTE in i for i in texts(at, "info"))
