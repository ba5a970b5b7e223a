"""Issue #15: list-valued fields sweep whole lists (`--grid hidden=[256,128],[512]`, IP2's mask);
malformed brackets are one line, exit 2, before Ray starts. `--configs FILE` sweeps whole configs."""
import sys

import pytest

from snncore.config import RunConfig
from snncore.sweeps import SweepError, parse_spec


def test_bracketed_lists_are_whole_values_and_bare_values_one_layer():
    base = RunConfig.from_dict({"dataset": "digits", "rule": "bptt", "seed": 3})
    spec = parse_spec(base, ["hidden=64,[256,128]", "lr=1e-3,5e-3"], [], seeds=2)
    assert spec.axes[0].values == [[64], [256, 128]]
    pts = spec.grid_points()
    assert len(pts) == 8 and pts[0] == {"hidden": [64], "lr": 1e-3, "seed": 3} and pts[-1]["seed"] == 4
    assert [RunConfig.from_dict(spec.apply(p)).hidden for p in pts[::4]] == [[64], [256, 128]]
    ip2 = parse_spec(RunConfig.from_dict({"rule": "ip2"}), ["mask=[],[tau_d],[ tau_d , tau_s ]"], [])
    assert ip2.axes[0].target == ("rule", "mask")
    assert ip2.axes[0].values == [[], ["tau_d"], ["tau_d", "tau_s"]]
    assert RunConfig.from_dict(ip2.apply({"mask": []})).rule_object_params().mask == []


BAD = [
    ("hidden=[256", "a '[' without its ']'"),
    ("hidden=256]", "a ']' without its '['"),
    ("hidden=[256]x", "text after a ']'"),
    ("hidden=[[256]]", "lists do not nest"),
    ("hidden=[0],[64]", "--grid hidden=[0]: hidden: layer size 0 is out of range"),
    ("hidden=[64,64,64,64]", "--grid hidden=[64,64,64,64]: hidden:"),
    ("lr=[1e-3]", "lr: expected float"),
]


@pytest.mark.parametrize("grid,message", BAD, ids=[g for g, _ in BAD])
def test_bad_bracketed_grids_are_one_line_exit_2(tmp_path, monkeypatch, capsys, grid, message):
    from snncore.__main__ import main
    monkeypatch.setenv("SNNCORE_RUNS", str(tmp_path))
    ray_loaded = "ray" in sys.modules
    with pytest.raises(SystemExit) as e:
        main(["sweep", "--rule", "bptt", "--grid", grid])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "sweeps").exists()
    assert ray_loaded or "ray" not in sys.modules
    with pytest.raises(SweepError):
        parse_spec(RunConfig.from_dict({"rule": "bptt"}), [grid], [])


def test_a_sweep_over_whole_configs():
    from snncore.sweeps.spec import SweepSpec, configs_spec
    spec = configs_spec([{"rule": "bptt", "seed": 4}, {"rule": "ssdp", "seed": 9, "rule_params": {"a_plus": 1e-3}}])
    assert spec.grid_points() == [{"config": 0, "seed": 4}, {"config": 1, "seed": 9}]
    again = SweepSpec.from_dict(spec.to_dict())                       # as the engine stores it
    c = RunConfig.from_dict(again.apply(again.grid_points()[1]))
    assert (c.rule, c.seed, c.rule_object_params().a_plus) == ("ssdp", 9, 1e-3)


@pytest.mark.parametrize("body,name,message", [
    ('[[run]]\nrule = "bptt"\n[[run]]\nrule = "nope"\n', "c.toml", "--configs: config 2: rule: unknown rule 'nope'"),
    ('[1, 2', "c.json", "not valid JSON"),
    ('{"rule": "bptt"}', "c.json", "expected a JSON list or TOML [[run]] tables"),
    ('[]', "c.json", "give a non-empty list of configs"),
])
def test_bad_configs_files_are_one_line_exit_2(tmp_path, monkeypatch, capsys, body, name, message):
    from snncore.__main__ import main
    monkeypatch.setenv("SNNCORE_RUNS", str(tmp_path / "runs"))
    (tmp_path / name).write_text(body)
    with pytest.raises(SystemExit) as e:
        main(["sweep", "--configs", str(tmp_path / name)])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and message in err, err
    with pytest.raises(SystemExit):
        main(["sweep", "--configs", str(tmp_path / name), "--seeds", "2"])
    assert "no train flags, --grid, --range, --seeds" in capsys.readouterr().err
