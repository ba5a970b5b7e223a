"""Inspect on an IP2 run: its samples are trials of the next task (labels are per scored step, not
per sample), its trials have their own length (not cfg.timesteps), and its checkpoints count tasks."""
import json

import pytest
from streamlit.testing.v1 import AppTest

from snncore import inspect as A
from snncore.cli.inspect import inspect_target, print_text
from snncore.config import RunConfig
from snncore.store import RunStore
from snncore.train import Trainer


@pytest.fixture(scope="module")
def ip2_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("inspect_ip2") / "runs"
    store = RunStore(root)
    cfg = RunConfig.from_dict({"rule": "ip2", "rule_params": {"n_tasks": 3, "N": 12, "max_updates": 10,
                                                              "meta_mode": "fixed"}})
    rid = store.create_run(cfg.to_dict())
    assert Trainer(cfg, store, rid).run()["status"] == "finished"
    return root, rid, store


def trial_length(store, rid):
    _, _, path = A.run_checkpoint(store, rid)
    return A.record_network(A.load_checkpoint(path), 4).layers["rsnn"].post.shape[0]


def test_report_counts_trials_and_their_steps(ip2_run, capsys):
    root, rid, store = ip2_run
    T = trial_length(store, rid)
    assert T != RunConfig().timesteps                           # the bug showed cfg.timesteps (16)
    rep = inspect_target(rid, str(root), 8)
    assert rep["samples"] == 8 and rep["timesteps"] == T       # not 8 x scored steps
    assert rep["checkpoint_unit"] == "task" and "checkpoint of task 3" in rep["source"]
    print_text(rep)
    first = capsys.readouterr().out.splitlines()[0]
    assert f"task 3, 8 test samples x {T} steps" in first and "epoch" not in first


def test_page_says_trials_steps_and_tasks(ip2_run, monkeypatch):
    root, rid, store = ip2_run
    T = trial_length(store, rid)
    monkeypatch.setenv("SNNCORE_RUNS", str(root))
    at = AppTest.from_file("../app.py", default_timeout=180)
    at.query_params["run"] = rid
    at.run()
    at.switch_page("app_pages/inspect_run.py")
    at.run()
    assert not at.exception, at.exception
    md = " ".join(m.value for m in at.markdown)
    assert f"run {rid}, task 3" in md and f"64 test samples × {T} steps" in md
    assert any("trials of the next task" in c.value for c in at.caption)
    labels = [s.label for s in at.select_slider]
    assert "checkpoint (task)" in labels and not any("epoch" in lab for lab in labels)
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert "weight distribution at task 3" in titles, titles      # was "No weights found in the checkpoints"
    assert not any("No weights found" in c.value for c in at.caption)


def test_weights_of_every_task_checkpoint(ip2_run):
    root, rid, store = ip2_run
    hists = A.checkpoint_weight_histograms([(e, s, str(p)) for e, s, p in store.checkpoints(rid)])
    assert set(hists) == {"in", "rec", "out"}
    assert hists["rec"]["epochs"] == [1, 2, 3]                 # one point per task


def test_loop_key_and_old_ip2_key_read_alike(ip2_run):
    """Own-loop checkpoints keep the loop state under "loop"; runs from before under "ip2"."""
    _, rid, store = ip2_run
    state = A.load_checkpoint(A.run_checkpoint(store, rid)[2])
    point = state.get("loop") if isinstance(state.get("loop"), dict) else state["ip2"]
    rest = {k: v for k, v in state.items() if k not in ("loop", "ip2")}
    new, old = dict(rest, loop=point), dict(rest, ip2=point)
    a, b = A.record_network(new, 4), A.record_network(old, 4)
    assert (a.layers["rsnn"].post == b.layers["rsnn"].post).all() and a.unit == b.unit == "task"
    wa, wb = A.model_weights(new), A.model_weights(old)
    assert set(wa) == {"in", "rec", "out"} and all((wa[k] == wb[k]).all() for k in wa)
    with pytest.raises(A.InspectError, match="nothing to re-run"):
        A.record_network(rest, 4)
