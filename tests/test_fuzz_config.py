"""Config fuzzing (hypothesis) through the one validation path the app and the command line use.

Every invalid config gives a ConfigError whose message starts with the field it is about; nothing
else escapes. Every valid one, shrunk to tiny size, trains for one step.
"""
import contextlib
import dataclasses
import io
import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snncore.config import ConfigError, RunConfig
from snncore.rules import get_rule, rule_names
from snncore.store import RunStore
from snncore.train import Trainer

FIELDS = RunConfig.fields()
BUILTIN = ("digits", "synthetic", "l2l_tasks")    # the others need files on disk (tested elsewhere)
JUNK = st.one_of(st.none(), st.text(max_size=8), st.integers(-10**12, 10**12),
                 st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                 st.lists(st.integers(-5, 10**6), max_size=5), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


def _valid_value(name: str, f: dataclasses.Field):
    """A strategy for values inside the field's declared range / choices."""
    m, default = f.metadata, (f.default if f.default is not dataclasses.MISSING else f.default_factory())
    if m.get("choices"):
        return st.sampled_from(list(m["choices"]))
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, (int, float)):
        lo = m.get("lo") if m.get("lo") is not None else -1e6
        hi = m.get("hi") if m.get("hi") is not None else 1e6
        if isinstance(default, int):
            return st.integers(int(math.ceil(lo)), int(min(hi, 10**9)))
        return st.floats(lo, hi, allow_nan=False, exclude_min=bool(m.get("lo_open")))
    if name == "hidden":
        return st.lists(st.integers(1, 100_000), min_size=1, max_size=3)
    if name == "rule":
        return st.sampled_from(rule_names())
    return st.just(default)


def _rule_params(rule: str):
    fields = dataclasses.fields(get_rule(rule).Params)
    if not fields:
        return st.just({})
    return st.dictionaries(st.sampled_from([f.name for f in fields]), JUNK, max_size=3)


@st.composite
def configs(draw):
    names = draw(st.lists(st.sampled_from(sorted(FIELDS)), max_size=8, unique=True))
    values = {}
    for n in names:
        if n == "rule_params":
            continue
        values[n] = draw(st.one_of(_valid_value(n, FIELDS[n]), JUNK) if draw(st.booleans()) else _valid_value(n, FIELDS[n]))
    if draw(st.booleans()):
        values["rule_params"] = draw(st.one_of(_rule_params(values.get("rule", "bptt")
                                                           if values.get("rule") in rule_names() else "ssdp"), JUNK))
    if draw(st.integers(0, 20)) == 0:
        values[draw(st.text(min_size=1, max_size=6))] = 1      # an unknown field now and then
    return values


def _names_a_field(msg: str) -> bool:
    if msg.startswith(("unknown config field", "config:")):
        return True
    head = msg.split(":", 1)[0]
    if head in FIELDS:
        return True
    rule, _, par = head.partition(".")
    if rule in rule_names() and par:
        return True
    return False


@settings(max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_every_config_is_accepted_or_refused_with_the_field_named(values):
    try:
        RunConfig.from_dict(values)
    except ConfigError as e:
        msg = str(e)
        assert "\n" not in msg and _names_a_field(msg), msg


def _tiny(cfg: RunConfig) -> dict:
    d = cfg.to_dict()
    d.update(epochs=1, max_steps=1, timesteps=min(cfg.timesteps, 4), batch_size=min(cfg.batch_size, 16),
             hidden=[min(h, 16) for h in cfg.hidden], n_train=32, record_neurons=min(cfg.record_neurons, 16),
             syn_samples=40, syn_channels=min(cfg.syn_channels, 32), device="cpu", record_layer="")
    d["syn_group"] = min(cfg.syn_group, d["syn_channels"])
    if cfg.rule == "ip2":
        d["rule_params"] = dict(d["rule_params"], n_tasks=1, max_updates=2, N=8, meta_mode="fixed", batch=4)
    if cfg.model in ("vgg11", "resnet19"):
        d["width"] = 0.125
    return d


@st.composite
def valid_configs(draw):
    """Configs built from in-range values only, on the built-in datasets (most pass validation)."""
    rule = draw(st.sampled_from(rule_names()))
    cls = get_rule(rule)
    values = {"rule": rule}
    if not cls.requires_dataset:
        values["dataset"] = draw(st.sampled_from(["digits", "synthetic"]))
    if not cls.requires_model:
        conv = values["dataset"] == "digits" and rule in ("bptt", "ssdp", "stdp")
        values["model"] = draw(st.sampled_from(["mlp", "vgg11", "resnet19"] if conv else ["mlp"]))
    skip = {"rule", "dataset", "model", "rule_params", "name", "record_layer", "augment", "frames", "data_dir",
            "device", "width", "amp"}
    for n in draw(st.lists(st.sampled_from(sorted(set(FIELDS) - skip)), max_size=6, unique=True)):
        values[n] = draw(_valid_value(n, FIELDS[n]))
    pf = {f.name: f for f in dataclasses.fields(cls.Params)}
    if pf:
        chosen = draw(st.lists(st.sampled_from(sorted(pf)), max_size=3, unique=True))
        values["rule_params"] = {n: draw(_valid_value(n, pf[n])) for n in chosen
                                 if not isinstance(getattr(cls.Params(), n), (list, str))}
    return values


def test_every_valid_config_trains_one_step_at_tiny_size(tmp_path):
    trained, refused = [], []

    @settings(max_examples=30, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(valid_configs())
    def check(values):
        try:
            cfg = RunConfig.from_dict(values)
            tiny = RunConfig.from_dict(_tiny(cfg))
        except ConfigError as e:      # a cross-field rule (e.g. syn_group > syn_channels): a named field
            assert _names_a_field(str(e)), e
            refused.append(str(e))
            return
        store = RunStore(tmp_path / f"runs{len(trained)}")
        rid = store.create_run(tiny.to_dict())
        with contextlib.redirect_stdout(io.StringIO()):
            s = Trainer(tiny, store, rid).run()
        # a tiny run finishes, or fails with a stored, readable reason (diverged), never raises
        assert s["status"] in ("finished", "failed"), s
        if s["status"] == "failed":
            assert "diverged" in s.get("error", ""), s
        assert store.get_run(rid)["status"] == s["status"]
        trained.append(tiny.rule)

    check()
    assert len(trained) >= 15, (len(trained), refused[:5])


BLOCKER = Path(tempfile.mkdtemp()) / "a-file"
BLOCKER.write_text("")


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(st.lists(st.sampled_from([f"--{n.replace('_', '-')}" for n in FIELDS if n not in ("rule_params", "epochs")]),
                min_size=1, max_size=3, unique=True),
       st.lists(st.one_of(st.text(max_size=6), st.integers(-10**9, 10**9).map(str),
                          st.sampled_from(["nan", "inf", "-1", "1e99", "", "0x10", "../x"])), min_size=3, max_size=3))
def test_command_line_flags_fuzzed_give_one_line_and_exit_2(flags, vals):
    from snncore.__main__ import main
    # epochs 0 is invalid and the runs folder lies under a file: whatever the flags, nothing trains
    argv = ["train", "--runs-dir", str(BLOCKER / "runs"), "--epochs", "0"]
    for f, v in zip(flags, vals):
        argv += [f, v] if not v.startswith("-") else [f"{f}={v}"]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    out = err.getvalue()
    assert out.startswith("error: ") and out.count("\n") == 1 and "Traceback" not in out, out


def test_found_by_fuzzing_a_denormal_time_constant_is_refused():
    # 5e-324 is > 0 but rounds to 0 in float32, where the traces are computed: the run went NaN and
    # the weight histogram crashed; time constants now start at 1e-3 steps
    with pytest.raises(ConfigError, match=r"rstdp.tau_e: 5e-324 is out of range \(allowed: >= 0.001\)"):
        RunConfig.from_dict({"rule": "rstdp", "rule_params": {"tau_e": 5e-324}})


def test_found_by_fuzzing_crossed_weight_bounds_are_refused_by_validation():
    for rule in ("stdp", "rstdp"):
        with pytest.raises(ConfigError, match=rf"{rule}.w_min: 1.0 must be below w_max \(1.0\)"):
            RunConfig.from_dict({"rule": rule, "rule_params": {"w_min": 1.0}})
