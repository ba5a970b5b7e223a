"""The chance-level warning of snncore.health, and `python -m snncore runs` showing it."""
import json
import subprocess
import sys

import pytest

from snncore import health
from snncore.config import RunConfig
from snncore.store import RunStore


@pytest.mark.parametrize("classes,best,warned", [
    (10, 0.10, True), (10, 0.124, True), (10, 0.13, False), (10, 0.65, False),
    (2, 0.54, True), (2, 0.56, False), (100, 0.012, True), (100, 0.02, False)])
def test_chance_level_by_classes(classes, best, warned):
    run = {"config": {"dataset": "synthetic", "syn_classes": classes, "rule": "ssdp"}, "best_accuracy": best,
           "epoch": 1}
    assert (health.chance_warning(run) is not None) == warned


def test_no_warning_before_the_first_evaluation_or_without_classes():
    assert health.chance_warning({"config": {"dataset": "digits"}, "best_accuracy": None}) is None
    assert health.chance_warning({"config": {"dataset": "l2l_tasks"}, "best_accuracy": 0.0}) is None


def _run(store, accs, **cfg):
    rid = store.create_run(RunConfig.from_dict({"dataset": "digits", "rule": "ssdp", **cfg}).to_dict())
    store.log_metrics(rid, [(2 * (e + 1), e, "test/accuracy", a) for e, a in enumerate(accs)])
    store.end_run(rid, "finished")
    return rid


def test_runs_cli_names_the_run_at_chance(tmp_path):
    store = RunStore(tmp_path / "runs")
    bad = _run(store, [0.1, 0.1], rule_params={"a_plus": 1.0})
    good = _run(store, [0.3, 0.7])
    r = subprocess.run([sys.executable, "-m", "snncore", "runs", "--json", "--runs-dir", str(tmp_path / "runs")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = {x["run_id"]: x for x in json.loads(r.stdout)}
    assert "chance level" in rows[bad]["warning"] and "10.0%" in rows[bad]["warning"]
    assert rows[good]["warning"] is None
    r = subprocess.run([sys.executable, "-m", "snncore", "runs", "--runs-dir", str(tmp_path / "runs")],
                       capture_output=True, text=True, timeout=120)
    line = {ln.split()[0]: ln for ln in r.stdout.splitlines() if ln.startswith("2")}
    assert "accuracy at chance level" in line[bad] and "chance" not in line[good]
