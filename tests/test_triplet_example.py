"""examples/triplet_stdp.py: hand-computed updates, the pair limit, and loading it as an outside rule
(import path on the command line, entry point of an installed distribution)."""
import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from examples.triplet_stdp import TripletParams, TripletSTDP, triplet_delta
from snncore.rules.stdp import stdp_delta

ROOT = Path(__file__).resolve().parent.parent
HALF = 1 / math.log(2)            # tau with exp(-1/tau) = 0.5: every trace halves per step


def test_five_steps_by_hand():
    # pre 1 0 0 1 0, post 0 1 1 0 0, every trace halves per step:
    #   r1 = r2: 1, .5, .25, 1.125, .5625        o1 = o2: 0, 1, 1.5, .75, .375
    #   post at t=1: r1 .5  * (A2+ + A3+ * o2_prev 0)  = .5 * 1        = 0.5
    #   post at t=2: r1 .25 * (A2+ + A3+ * o2_prev .5) = .25 * (1 + 5) = 1.5
    #   pre at t=0:  o1 0 -> 0;  pre at t=3: o1 .75 * (A2- + A3- * r2_prev .125) = .75 * 4.5 = 3.375
    #   dW = 0.5 + 1.5 - 3.375 = -1.375
    p = TripletParams(a2_plus=1.0, a3_plus=10.0, a2_minus=2.0, a3_minus=20.0,
                      tau_plus=HALF, tau_x=HALF, tau_minus=HALF, tau_y=HALF)
    pre = torch.tensor([1, 0, 0, 1, 0], dtype=torch.float64).reshape(5, 1, 1)
    post = torch.tensor([0, 1, 1, 0, 0], dtype=torch.float64).reshape(5, 1, 1)
    dW, state = triplet_delta(pre, post, p)
    assert dW.item() == pytest.approx(-1.375, abs=1e-12)
    assert state["r1"].item() == pytest.approx(0.5625) and state["o2"].item() == pytest.approx(0.375)
    # the triplet terms alone: only post at t=2 and pre at t=3 see a triplet trace
    p0 = dataclasses.replace(p, a2_plus=0.0, a2_minus=0.0)
    assert triplet_delta(pre, post, p0)[0].item() == pytest.approx(0.25 * 5 - 0.75 * 2.5, abs=1e-12)


def test_pair_limit_is_pair_stdp():
    g = torch.Generator().manual_seed(0)
    pre = (torch.rand(12, 3, 7, generator=g) < 0.3).double()
    post = (torch.rand(12, 3, 5, generator=g) < 0.3).double()
    p = TripletParams(a2_plus=4e-3, a3_plus=0.0, a2_minus=3e-3, a3_minus=0.0, tau_plus=6.0, tau_minus=9.0)
    dW = triplet_delta(pre, post, p)[0]
    ref = stdp_delta(pre, post, tau_pre=6.0, tau_post=9.0, eta_plus=4e-3, eta_minus=3e-3)
    torch.testing.assert_close(dW, ref)
    # and the triplet term changes it
    assert not torch.allclose(triplet_delta(pre, post, TripletParams(tau_plus=6.0, tau_minus=9.0))[0],
                              triplet_delta(pre, post, TripletParams(a3_plus=0.0, tau_plus=6.0, tau_minus=9.0))[0])


def test_minimal_model_potentiates_only_with_a_triplet():
    p = TripletParams()                       # A2+ = 0: a lone pre-post pair depresses at most
    pre = torch.zeros(10, 1, 1); post = torch.zeros(10, 1, 1)
    pre[2] = 1; post[5] = 1
    assert triplet_delta(pre, post, p)[0].item() == 0.0
    post[8] = 1                               # a second post spike reads o2 of the first: LTP
    assert triplet_delta(pre, post, p)[0].item() > 0


def cli(*args, runs_dir):
    env = dict(os.environ, PYTHONWARNINGS="ignore", SNNCORE_RUNS=str(runs_dir))
    return subprocess.run([sys.executable, "-m", "snncore", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=600)


def test_trains_by_import_path_from_the_command_line(tmp_path):
    rule = "examples.triplet_stdp:TripletSTDP"
    r = cli("train", "--rule", rule, "--dry-run", "--json", "--a3-plus", "0.01", runs_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.splitlines()[-1])
    assert out["config"]["rule"] == rule and out["config"]["rule_params"] == {"a3_plus": 0.01}
    assert "--a3-plus 0.01" in out["command"]
    r = cli("train", "--rule", rule, "--epochs", "1", "--n-train", "128", "--timesteps", "4", "--hidden", "32",
            "--device", "cpu", "--json", runs_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = json.loads(cli("runs", "--json", runs_dir=tmp_path).stdout)
    assert rows[0]["rule"] == rule and rows[0]["status"] == "finished"
    # ...and the app's Train page shows its panels (from its snapshots) and its telemetry, once each
    from streamlit.testing.v1 import AppTest
    os.environ["SNNCORE_RUNS"] = str(tmp_path)
    try:
        at = AppTest.from_file("../app.py", default_timeout=60)
        at.run()
        at.query_params["run"] = rows[0]["run_id"]
        at.switch_page("app_pages/train.py")
        at.run()
    finally:
        del os.environ["SNNCORE_RUNS"]
    assert not at.exception, at.exception
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert f"{rule} panels" in [e.value for e in at.get("subheader")]
    assert "weight histogram over time · fc1" in titles and "triplet STDP: 5 pairings at 20 Hz" in titles
    tel = [t for t in titles if t.startswith(("dw", "w_mean"))]
    assert tel and len(tel) == len(set(tel)), titles


@pytest.mark.parametrize("path,words", [
    ("examples.nope:X", ["module 'examples.nope' not found"]),
    ("examples.triplet_stdp:Nope", ["has no attribute 'Nope'"]),
    ("examples.triplet_stdp:TripletParams", ["is not a Rule subclass"]),
    ("os:path", ["standard library"]),
])
def test_a_bad_import_path_is_one_clear_line(path, words):
    from snncore.config import ConfigError, RunConfig
    with pytest.raises(ConfigError) as e:
        RunConfig.from_dict({"rule": path})
    msg = str(e.value)
    assert msg.startswith("rule: ") and "\n" not in msg and all(w in msg for w in words), msg


def test_an_installed_rule_is_found_by_its_entry_point(tmp_path, monkeypatch):
    from snncore import rules
    dist = tmp_path / "tripletrule-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tripletrule\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[snncore.rules]\ntriplet = examples.triplet_stdp:TripletSTDP\n")
    assert "triplet" not in rules.rule_names()
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "triplet" in rules.rule_names()
    assert rules.get_rule("triplet") is TripletSTDP
    from snncore.config import RunConfig
    assert RunConfig.from_dict({"rule": "triplet", "rule_params": {"tau_y": "100"}}).rule_params == {"tau_y": 100.0}
