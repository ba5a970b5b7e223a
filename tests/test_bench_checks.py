"""The behaviour-check scripts in bench/ run end to end at a tiny size and return well-formed results.

Each script's main(argv) is imported and called with 1 seed, 1 epoch (or a task or two) and tiny
data, so the whole file stays well under a minute; the numbers are not checked for their values,
only for their structure (keys present, finite where they must be).
"""
from __future__ import annotations

import importlib
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _load(name: str):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name)


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _check_stat(s: dict, n: int = 1):
    assert set(s) == {"mean", "ci", "n"}
    assert s["n"] == n
    assert _finite(s["mean"])


@pytest.fixture(autouse=True)
def _threads_restored():
    before = torch.get_num_threads()
    yield
    assert torch.get_num_threads() == before


def test_ci95():
    m = _load("check_ssdp")
    s = m.ci95([1.0, 2.0, 3.0])
    assert s["mean"] == pytest.approx(2.0) and s["n"] == 3
    assert s["ci"] == pytest.approx(4.302653 * 1.0 / math.sqrt(3), rel=1e-5)   # t(0.975, 2) * sd / sqrt(n)
    assert math.isnan(m.ci95([1.0])["ci"]) and m.ci95([])["n"] == 0


def test_perturbations_keep_shape_and_counts():
    m = _load("check_ssdp")
    g = torch.Generator().manual_seed(0)
    x = torch.rand(20, 16, 64, generator=g) < 0.05
    assert torch.equal(m.jitter_spikes(x, 0, g), x) and torch.equal(m.insert_delete(x, 0.0, g), x)
    j = m.jitter_spikes(x, 2.0, torch.Generator().manual_seed(1))
    assert j.shape == x.shape and j.dtype == torch.bool and 0 < int(j.sum()) <= int(x.sum())
    assert torch.equal(j.sum(1) > 0, x.sum(1) > 0)          # spikes move in time, never across channels
    d = m.insert_delete(x, 0.2, torch.Generator().manual_seed(2))
    assert abs(int(d.sum()) - int(x.sum())) < 0.1 * int(x.sum())   # as many inserted as deleted, ~
    assert int((x & ~d).sum()) > 0 and int((d & ~x).sum()) > 0


def test_check_ssdp_tiny(capsys):
    m = _load("check_ssdp")
    res = m.main(["--seeds", "1", "--epochs", "1", "--samples", "128"])
    out = capsys.readouterr().out
    assert "ssdp - bptt" in out and "acc jitter 3" in out
    s = res["summary"]
    for key in ["acc jitter 0", "acc jitter 1", "acc jitter 2", "acc jitter 3", "acc ins/del 10%",
                "acc ins/del 20%", "roughness", "silent_all", "silent_per_sample"]:
        assert set(s[key]) == {"bptt", "ssdp", "ssdp - bptt"}
        for v in s[key].values():
            _check_stat(v)
    assert 0.0 <= s["acc jitter 0"]["bptt"]["mean"] <= 1.0
    assert len(res["per_seed"]["ssdp"]) == 1


def test_check_da_ssdp_tiny():
    m = _load("check_da_ssdp")
    res = m.main(["--seeds", "1", "--epochs", "1", "--samples", "128", "--json"])
    s = res["summary"]
    assert set(s) == {c[0] for c in m.CONDITIONS}
    for label, d in s.items():
        _check_stat(d["accuracy"])
        if "da" in label.split(":")[-1]:
            for n in m.LAYERS:
                _check_stat(d[f"k {n}"])
                assert -1.0 <= d[f"k {n}"]["mean"] <= 1.0
                _check_stat(d[f"gate std {n}"])
                assert len(d[f"hist {n}"]) == 10
    _check_stat(s["std: da null shuffled L"]["acc - ssdp matched"])
    _check_stat(s["std: da null shuffled L"]["rel weight dist to ssdp"])
    for label in ("mixed: da batch loss", "mixed: da per-sample loss"):
        _check_stat(s[label]["acc - ssdp matched"])
        _check_stat(s[label]["acc - bptt"])
    _check_stat(s["mixed: ssdp matched"]["acc - bptt"])
    assert "acc - ssdp matched" not in s["mixed: ssdp matched"] and "acc - bptt" not in s["mixed: bptt"]


def test_check_da_ssdp_conditions_flag(capsys):
    m = _load("check_da_ssdp")
    chosen = ["mixed: bptt", "mixed: da batch loss", "mixed: ssdp matched"]
    res = m.main(["--seeds", "2", "--epochs", "1", "--samples", "128",
                  "--conditions", " mixed: bptt,mixed: da batch loss , mixed: ssdp matched"])
    out = capsys.readouterr().out
    s = res["summary"]
    assert list(s) == ["mixed: da batch loss", "mixed: ssdp matched", "mixed: bptt"]   # table order
    assert res["settings"]["conditions"] == list(s) and set(chosen) == set(s)
    assert "acc - bptt (%)" in out and "mixed: ssdp matched" in out and "std: ssdp matched" not in out
    per = res["per_seed"]
    for label in chosen:
        assert [r["seed"] for r in per[label]] == [0, 1]
        _check_stat(s[label]["accuracy"], 2)
    # the paired differences are the per-seed differences, averaged
    for label, short, ref in [("mixed: da batch loss", "ssdp matched", "mixed: ssdp matched"),
                              ("mixed: da batch loss", "bptt", "mixed: bptt"),
                              ("mixed: ssdp matched", "bptt", "mixed: bptt")]:
        d = [a["accuracy"] - b["accuracy"] for a, b in zip(per[label], per[ref])]
        assert s[label][f"acc - {short}"]["mean"] == pytest.approx(sum(d) / 2)
        assert s[label][f"acc - {short}"]["n"] == 2
    assert math.isfinite(s["mixed: da batch loss"]["rel weight dist to ssdp"]["mean"])


@pytest.mark.parametrize("flag", ["mixed: nope", " , "])
def test_check_da_ssdp_bad_conditions(flag, capsys):
    m = _load("check_da_ssdp")
    with pytest.raises(SystemExit) as e:
        m.main(["--seeds", "1", "--epochs", "1", "--conditions", flag])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "mixed: bptt" in err[0]


def test_check_mps_tiny():
    m = _load("check_mps")
    res = m.main(["--seeds", "1", "--epochs", "1", "--n-train", "128", "--json"])
    s = res["summary"]
    assert set(s) == set(m.CONDITIONS)
    for label, d in s.items():
        for sigma in m.NOISE:
            _check_stat(d[f"acc sigma {sigma}"])
    assert s["fixed equal shares"]["out share hebb"]["mean"] == pytest.approx(1 / 3, abs=1e-6)
    _check_stat(s["adaptive MPS"]["out share hebb"])
    assert "out share hebb" not in s["STBP only"]
    for sigma in m.NOISE[1:]:
        for d in s.values():
            _check_stat(d[f"drop sigma {sigma}"])
        for other in ("SBP only", "fixed equal shares", "STBP + SBP"):
            _check_stat(s["adaptive MPS"][f"drop sigma {sigma} - {other}"])
            _check_stat(s["adaptive MPS"][f"acc sigma {sigma} - {other}"])


def test_check_mps_summary_paired_and_rerender(tmp_path, capsys):
    m = _load("check_mps")
    labels = list(m.CONDITIONS)
    # hand-made records: condition i, seed j has acc 0.5 + 0.1 i + 0.01 j at sigma 0 and drops 0.02 (i + 1) per sigma
    per = {lb: [{"seed": j, "final_train_loss": 0.1, **{f"acc sigma {sg}": 0.5 + 0.1 * i + 0.01 * j
                                                       - 0.02 * (i + 1) * k for k, sg in enumerate(m.NOISE)}}
                for j in range(3)] for i, lb in enumerate(labels)}
    s = m.summarize(per)
    ia, ib = labels.index("adaptive MPS"), labels.index("SBP only")
    assert s["STBP only"]["drop sigma 0.4"]["mean"] == pytest.approx(0.04)
    assert s["adaptive MPS"]["acc sigma 0.0 - SBP only"]["mean"] == pytest.approx(0.1 * (ia - ib))
    assert s["adaptive MPS"]["acc sigma 0.0 - SBP only"]["ci"] == pytest.approx(0.0, abs=1e-12)   # same-seed pairing
    assert s["adaptive MPS"]["drop sigma 0.4 - SBP only"]["mean"] == pytest.approx(0.04 * (ia - ib))
    assert s["STBP + SBP"]["drop sigma 0.2 - STBP only"]["mean"] == pytest.approx(0.02 * labels.index("STBP + SBP"))
    path = tmp_path / "res.json"
    path.write_text(json.dumps({"settings": {"seeds": 3, "epochs": 1, "T": 8}, "per_seed": per, "wall_seconds": 1.0}))
    again = m.main(["--report", str(path)])
    assert json.loads(json.dumps(again["summary"])) == json.loads(json.dumps(s))
    out = capsys.readouterr().out
    assert "adaptive MPS minus" in out and "robustness" in out
    with pytest.raises(SystemExit) as e:
        m.main(["--report", str(tmp_path / "missing.json")])
    assert e.value.code == 2
    assert capsys.readouterr().err.startswith("error: --report")


def test_check_ip2_tiny(tmp_path):
    m = _load("check_ip2")
    part = tmp_path / "runs.jsonl"
    res = m.main(["--seeds", "1", "--tasks", "2", "--k-pilot", "1", "--max-updates", "15", "--json",
                  "--partial", str(part)])
    assert res["settings"]["last"] == 1                      # min(10, tasks - 1)
    lines = [json.loads(x) for x in part.read_text().splitlines()]
    assert [r["config"] for r in lines] == list(res["summary"])
    s = res["summary"]
    assert set(s) == {"IP2 (slow level)", "no IP (mask none)", "uniform (all 3)"}
    assert s["no IP (mask none)"]["masks"] == ["none"]
    assert s["uniform (all 3)"]["masks"] == ["tau_d+tau_s+theta"]
    assert len(res["slow_level"]) == 1 and set(res["slow_level"][0]["scores"]) == {"tau_d", "tau_s", "theta", "none"}
    for d in s.values():
        for k in ("task1", "last_mean", "ratio", "failures"):
            _check_stat(d[k])
        assert len(d["iterations_mean_per_task"]) == 2
        assert d["fit of mean curve"]["status"] == "too few tasks"     # 1 point after task 1
        assert d["fit_ok"] == "0/1" and d["fit tau"]["n"] == 0
        assert list(d["failed_tasks_per_seed"]) == [0]
    for recs in res["per_seed"].values():
        r = recs[0]
        assert r["ratio"] == pytest.approx(r["iterations"][0] / r["iterations"][-1])
        assert r["failures"] == len(r["failed_tasks"])
        assert all(r["iterations"][t - 1] == 15 for t in r["failed_tasks"])


def test_check_ip2_fit_report():
    m = _load("check_ip2")
    k = np.arange(2, 41)
    it = [1500.0] + list(400 * np.exp(-k / 4.0) + 30)           # exact curve over tasks 2..40
    f = m.fit_report(it)
    assert f["status"] == "ok" and f["r2"] > 0.999
    assert f["tau"] == pytest.approx(4.0, rel=1e-3) and f["a"] == pytest.approx(400, rel=1e-3)
    assert f["c"] == pytest.approx(30, rel=1e-3)
    assert m.fit_report([900, 50, 50, 50, 50])["status"] == "flat (no decay)"
    assert m.fit_report([900, 10, 20, 40, 80, 160])["status"] == "no decay (a <= 0)"
    assert m.fit_report([900, 10, 20])["status"] == "too few tasks"
    assert m.fit_report([900, 1500] + [30.0, 25.0] * 10)["status"] == "tau < 1 task"   # one-task drop


def test_check_ip2_report_rerenders(tmp_path, capsys):
    m = _load("check_ip2")
    res = m.main(["--seeds", "2", "--tasks", "4", "--k-pilot", "1", "--max-updates", "12", "--json"])
    path = tmp_path / "res.json"
    path.write_text(capsys.readouterr().out)
    again = m.main(["--report", str(path), "--json"])
    assert json.loads(json.dumps(again["summary"])) == json.loads(json.dumps(res["summary"]))
    _check_stat(again["summary"]["IP2 (slow level)"]["last_mean - uniform"], 2)
    with pytest.raises(SystemExit) as e:
        m.main(["--report", str(tmp_path / "missing.json")])
    assert e.value.code == 2
    assert capsys.readouterr().err.startswith("error: --report")
