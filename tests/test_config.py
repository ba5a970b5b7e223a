import math

import pytest

from snncore.config import ConfigError, RunConfig


@pytest.mark.parametrize("field,value,words", [
    ("timesteps", 0, ["timesteps", "1 <= value <= 10000"]),
    ("tau", -2.0, ["tau", "1.0 < value"]),
    ("tau", 1.0, ["tau", "1.0 < value"]),          # SpikingJelly's LIF asserts tau > 1
    ("lr", float("nan"), ["lr", "finite"]),
    ("lr", 0.0, ["lr", "0.0 < value"]),
    ("rule", "hebbo", ["rule", "unknown rule 'hebbo'", "bptt"]),
    ("dataset", "imagenet", ["dataset", "'imagenet'", "digits, synthetic"]),
    ("hidden", [0], ["hidden", "1 <= size <= 100000"]),
    ("hidden", [8, 8, 8, 8], ["hidden", "1 to 3"]),
    ("epochs", "three", ["epochs", "expected int", "'three'"]),
    ("batch_size", 2.5, ["batch_size", "expected int"]),
    ("surrogate", "relu", ["surrogate", "sigmoid, atan, piecewise"]),
    ("name", "../evil", ["name", "path separators"]),
    ("v_threshold", 0.0, ["v_threshold"]),
])
def test_invalid_values_name_field_and_range(field, value, words):
    with pytest.raises(ConfigError) as e:
        RunConfig.from_dict({field: value})
    msg = str(e.value)
    for w in words:
        assert w in msg, msg
    assert "\n" not in msg


def test_unknown_field_and_rule_param():
    with pytest.raises(ConfigError, match="unknown config field 'epoch'"):
        RunConfig.from_dict({"epoch": 3})
    with pytest.raises(ConfigError, match="ssdp.*unknown hyperparameter 'a_plsu'"):
        RunConfig.from_dict({"rule": "ssdp", "rule_params": {"a_plsu": 1}})
    with pytest.raises(ConfigError, match="ssdp.sigma"):
        RunConfig.from_dict({"rule": "ssdp", "rule_params": {"sigma": -1.0}})


def test_strings_from_command_line_are_coerced():
    cfg = RunConfig.from_dict({"epochs": "3", "lr": "1e-3", "hidden": "128,64", "rule": "ssdp",
                               "rule_params": {"a_plus": "0.01", "depress_silent": "false"}})
    assert cfg.epochs == 3 and math.isclose(cfg.lr, 1e-3) and cfg.hidden == [128, 64]
    p = cfg.rule_object_params()
    assert p.a_plus == 0.01 and p.depress_silent is False


def test_toml_round_trip(tmp_path):
    cfg = RunConfig.from_dict({"rule": "ssdp", "hidden": [64, 32], "rule_params": {"a_plus": 0.002}, "name": "a b"})
    f = tmp_path / "c.toml"
    f.write_text(cfg.to_toml())
    assert RunConfig.from_dict(RunConfig.load(f)) == cfg


def test_bad_files(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("epochs = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        RunConfig.load(f)
    with pytest.raises(ConfigError, match="cannot be read"):
        RunConfig.load(tmp_path / "missing.toml")
    f.write_text("epochs = 'many'")
    with pytest.raises(ConfigError, match="epochs: expected int"):
        RunConfig.from_dict(RunConfig.load(f))


def test_command_line_mentions_changed_fields():
    cfg = RunConfig.from_dict({"rule": "ssdp", "epochs": 2, "rule_params": {"a_plus": 0.001}})
    cmd = cfg.command_line()
    assert cmd.startswith("python -m snncore train")
    assert "--rule ssdp" in cmd and "--epochs 2" in cmd and "--a-plus 0.001" in cmd
