"""The exported command line reproduces the run: `command` run with --dry-run --json gives the same
config, for every lesson preset and every rule with non-default values for all its hyperparameters."""
import contextlib
import dataclasses
import io
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from snncore.__main__ import main
from snncore.config import RunConfig, rule_param_clashes
from snncore.presets import list_presets
from snncore.rules import get_rule, rule_names

ROOT = Path(__file__).resolve().parent.parent


def dry_run(argv):
    """(exit code, stdout, stderr) of `python -m snncore ARGV` run in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


def replay(command, tmp_path):
    """Run an exported command (shell words) with --dry-run --json; its JSON object."""
    argv = shlex.split(command)
    assert argv[:4] == ["python", "-m", "snncore", "train"], command
    code, out, err = dry_run(argv[3:] + ["--dry-run", "--json", "--runs-dir", str(tmp_path / "runs")])
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 1, out                   # exactly one JSON object
    assert not (tmp_path / "runs").exists()       # nothing created
    return json.loads(lines[0])


def other_value(f, default, model_layers=("fc1", "out")):
    """A valid value other than the default, from the field's declaration (type, range, choices);
    floats with many digits and negatives like -1.25e-05 (argparse reads those as flags)."""
    m = f.metadata
    lo, hi, choices = m.get("lo"), m.get("hi"), m.get("choices")
    if isinstance(default, list):
        if choices:
            pick = [c for c in reversed(choices) if c not in default][:2]
            return pick or list(choices[:1])
        return list(model_layers)                 # targets: the weight layers of the model
    if choices:
        return next(c for c in choices if c != default)
    if isinstance(default, bool):
        return not default
    if isinstance(default, int):
        return default + 1 if hi is None or default + 1 <= hi else default - 1
    if isinstance(default, float):
        if lo is None:
            return -1.25e-05 if default <= 0 else default * 1.5 + 0.123456789
        top = hi if hi is not None else max(lo, default) * 3 + 1
        v = lo + (top - lo) * 0.3183098861837907   # 1/pi: many digits
        return v if v != default else lo + (top - lo) * 0.7
    if isinstance(default, str):
        return "x"
    raise AssertionError(f"no generator for {f.name}={default!r}")


def all_non_default_params(rule):
    P = get_rule(rule).Params
    return {f.name: other_value(f, getattr(P(), f.name)) for f in dataclasses.fields(P)}


@pytest.mark.parametrize("preset", list_presets(), ids=lambda p: p.id)
def test_every_preset_round_trips(preset, tmp_path):
    cfg = preset.run_config()
    got = replay(cfg.command_line(), tmp_path)
    assert got["config"] == cfg.to_dict()
    assert got["command"] == cfg.command_line()          # canonical: the command is a fixed point


@pytest.mark.parametrize("rule", rule_names())
def test_every_rule_with_every_hyperparameter_changed_round_trips(rule, tmp_path):
    params = all_non_default_params(rule)
    defaults = dataclasses.asdict(get_rule(rule).Params())
    assert all(params[k] != defaults[k] for k in params)
    cfg = RunConfig.from_dict({"rule": rule, "hidden": [32], "rule_params": params})
    assert set(cfg.rule_params) == set(defaults)
    cmd = cfg.command_line()
    got = replay(cmd, tmp_path)
    assert got["config"] == cfg.to_dict(), cmd
    for name in params:       # a name that is also a run setting is exported as --RULE.NAME only
        flag = name.replace("_", "-")
        assert (f"--{rule}.{flag}" in cmd) == rule_param_clashes(name)


@pytest.mark.parametrize("rule", rule_names())
def test_every_rule_with_its_defaults_written_out_round_trips(rule, tmp_path):
    # as the app's form stores a run: every hyperparameter given, empty lists ('targets') included
    defaults = dataclasses.asdict(get_rule(rule).Params())
    cfg = RunConfig.from_dict({"rule": rule, "rule_params": defaults})
    assert cfg.rule_params == defaults
    assert replay(cfg.command_line(), tmp_path)["config"] == cfg.to_dict()


@pytest.mark.parametrize("extra", [
    # run settings off their defaults, with values a shell would break: spaces, a quote, a negative
    # exponent, lists
    {"dataset": "cifar10", "model": "vgg11", "width": 0.125, "augment": True, "amp": "bf16", "rule": "ssdp",
     "rule_params": {"targets": ["fc1", "out"], "schedule": "cosine", "latency": "last"},
     "schedule": "constant", "hidden": [64, 32], "name": "my run - 2", "data_dir": "/tmp/my data/it's here",
     "v_reset": -1e-05, "device": "cpu", "optimizer": "sgd", "weight_decay": 3.5e-07, "record_layer": "fc1"},
    {"dataset": "dvs_gesture", "frames": 12, "frame_mode": "count", "encoding": "latency", "readout": "rate",
     "surrogate": "atan", "tau": 3.3, "v_threshold": 0.75, "max_steps": 7, "n_train": 99, "seed": 12345,
     "record_neurons": 17, "record_batches": 3, "record_every": 4, "snapshots_kept": 5, "log_every": 2},
])
def test_run_settings_round_trip(extra, tmp_path):
    cfg = RunConfig.from_dict(extra)
    got = replay(cfg.command_line(), tmp_path)
    assert got["config"] == cfg.to_dict()


def test_a_rule_setting_named_like_a_run_setting(tmp_path):
    # --schedule is the learning-rate schedule (with a note when the rule has its own);
    # --ssdp.schedule is SSDP's
    code, out, err = dry_run(["train", "--rule", "ssdp", "--schedule", "constant", "--dry-run", "--json"])
    assert code == 0
    got = json.loads(out)["config"]
    assert got["schedule"] == "constant" and got["rule_params"] == {}
    assert err.strip() == ("note: --schedule set the run's learning-rate schedule; "
                           "rule ssdp's own schedule is --ssdp.schedule")
    code, out, err = dry_run(["train", "--rule", "ssdp", "--ssdp.schedule", "cosine", "--dry-run", "--json"])
    got = json.loads(out)
    assert code == 0 and err == ""
    assert got["config"]["schedule"] == "cosine" and got["config"]["rule_params"] == {"schedule": "cosine"}
    assert "--ssdp.schedule cosine" in got["command"] and " --schedule " not in got["command"]
    code, out, err = dry_run(["train", "--rule", "bptt", "--schedule", "constant", "--dry-run", "--json"])
    assert code == 0 and err == ""                       # bptt has no schedule of its own: no note


def test_dry_run_in_a_real_shell_touches_nothing(tmp_path):
    # the exported command as a shell reads it (lists, quotes, '' for an empty list)
    cfg = next(p for p in list_presets() if p.id == "ip2_no_intrinsic").run_config()
    cmd = cfg.command_line()
    assert "--mask ''" in cmd
    env = dict(os.environ, PYTHONWARNINGS="ignore", SNNCORE_RUNS=str(tmp_path / "runs"))
    line = shlex.quote(sys.executable) + cmd[len("python"):] + " --dry-run --json"
    r = subprocess.run(["/bin/sh", "-c", line], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert set(got) == {"config", "command"}
    assert got["config"] == cfg.to_dict() and got["config"]["rule_params"]["mask"] == []
    assert not (tmp_path / "runs").exists()
    # without --json: the config as TOML and the command
    r = subprocess.run(["/bin/sh", "-c", line.replace(" --json", "")], capture_output=True, text=True,
                       cwd=ROOT, env=env, timeout=120)
    assert r.returncode == 0 and cfg.to_toml() in r.stdout and r.stdout.strip().endswith(cmd)


@pytest.mark.parametrize("args,words", [
    (["--timesteps", "0"], "timesteps: 0 is out of range"),
    (["--rule", "ssdp", "--mask", "tau_s"], "--mask is not a hyperparameter of rule 'ssdp'"),
    (["--rule", "bptt", "--ssdp.schedule", "constant"], "--ssdp.schedule given but the rule is 'bptt'"),
    (["--resume", "20260101-000000-abcdef"], "--dry-run checks the config of a new run"),
])
def test_dry_run_bad_input_exits_2_with_one_line(tmp_path, args, words):
    code, out, err = dry_run(["train", *args, "--dry-run", "--json", "--runs-dir", str(tmp_path / "runs")])
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and words in err, err
    assert not (tmp_path / "runs").exists()


def test_train_help_from_a_real_process():
    r = subprocess.run([sys.executable, "-m", "snncore", "train", "--help"], capture_output=True, text=True,
                       cwd=ROOT, timeout=120, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert r.returncode == 0, r.stderr
    for w in ("--dry-run", "--resume RUN_ID", "--ssdp.schedule", "--a-plus", "learning-rate schedule"):
        assert w in r.stdout


def test_the_train_page_exports_the_command_of_a_finished_run(runs_dir, tmp_path):
    """The page's "export" shows the command that gives the run's config back (an SSDP run as the
    form stores it: every hyperparameter, the empty targets list, its own schedule beside the
    learning-rate schedule: the cases that failed)."""
    from streamlit.testing.v1 import AppTest
    from snncore.store import RunStore
    rp = dataclasses.asdict(get_rule("ssdp").Params())            # targets [], schedule 'constant'
    cfg = RunConfig.from_dict({"rule": "ssdp", "dataset": "synthetic", "hidden": [32], "epochs": 1,
                               "schedule": "cosine", "name": "export check", "rule_params": rp})
    store = RunStore(runs_dir)
    rid = store.create_run(cfg.to_dict())
    store.log_metrics(rid, [(0, 0, "train/loss", 1.0), (1, 0, "test/accuracy", 0.5), (1, 0, "epoch", 1)])
    store.end_run(rid, "finished", summary={"test_accuracy": 0.5, "seconds": 1.0, "device": "cpu"})
    at = AppTest.from_file("../app.py", default_timeout=120)
    at.run()
    at.switch_page("app_pages/train.py")
    at.query_params["run"] = rid
    at.run()
    assert not at.exception
    shown = [c.value for c in at.code if c.value.startswith("python -m snncore train")]
    cmd = next(c for c in shown if "--rule ssdp" in c and "export check" in c)
    assert "--targets ''" in cmd and "--ssdp.schedule constant" in cmd and " --schedule " not in cmd
    (tmp_path / "replay").mkdir()
    assert replay(cmd, tmp_path / "replay")["config"] == cfg.to_dict()
