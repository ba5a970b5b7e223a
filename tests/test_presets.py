"""Lesson presets: every file validates, has its lesson text, and trains at a tiny size; broken files
give a clear message."""
import pytest

from snncore.config import ConfigError, RunConfig
from snncore.presets import (PRESETS_DIR, PresetError, get_preset, list_presets, load_preset,
                             scan_presets)
from snncore.rules import get_rule
from snncore.store import RunStore
from snncore.train import Trainer

PRESETS = list_presets()
IDS = [p.id for p in PRESETS]


def test_at_least_five_lessons_with_text():
    assert len(PRESETS) >= 5
    assert len({p.title for p in PRESETS}) == len(PRESETS)
    for p in PRESETS:
        assert len(p.text) > 80 and p.cpu_seconds and p.cpu_seconds > 0, p.id
        assert "lesson" not in p.config


def tiny(cfg: dict) -> dict:
    """The preset shrunk to one optimizer step (IP2: one task of at most 2 updates)."""
    cfg = dict(cfg)
    if get_rule(cfg["rule"]).runs_own_loop:
        cfg["rule_params"] = dict(cfg.get("rule_params") or {}, n_tasks=1, max_updates=2, T=6, N=8)
        return cfg
    cfg.update(epochs=1, max_steps=1, n_train=32, syn_samples=40, batch_size=16, record_every=1)
    cfg["hidden"] = [16]
    return cfg


@pytest.mark.parametrize("preset_id", IDS)
def test_preset_validates_and_trains_one_step(preset_id, tmp_path):
    cfg = load_preset(preset_id)
    assert isinstance(cfg, RunConfig)
    assert RunConfig.from_dict(cfg.to_dict()) == cfg                  # round-trips through the config
    small = RunConfig.from_dict(tiny(get_preset(preset_id).config))
    store = RunStore(tmp_path / "runs")
    rid = store.create_run(small.to_dict())
    summary = Trainer(small, store, rid).run()
    assert summary["status"] == "finished", summary
    assert summary["steps"] >= 1
    assert not store.metrics_frame(rid).empty


def test_preset_loads_from_the_command_line_file_format(tmp_path):
    # the config part of a preset, written as TOML, is what `python -m snncore train --config` reads
    cfg = load_preset(IDS[0])
    f = tmp_path / "c.toml"
    f.write_text(cfg.to_toml())
    assert RunConfig.from_dict(RunConfig.load(f)) == cfg


def write(tmp_path, name, text):
    (tmp_path / f"{name}.toml").write_text(text)
    return tmp_path


LESSON = '\n[lesson]\ntitle = "t"\ntext = "what to watch"\ncpu_seconds = 3\n'


def test_broken_presets_give_clear_messages(tmp_path):
    d = write(tmp_path, "bad_toml", 'rule = "bptt\n')
    with pytest.raises(ConfigError, match=r"bad_toml\.toml.*not valid TOML"):
        load_preset("bad_toml", d)
    d = write(tmp_path, "no_lesson", 'rule = "bptt"\n')
    with pytest.raises(PresetError, match=r"no_lesson\.toml.*\[lesson\] table"):
        load_preset("no_lesson", d)
    d = write(tmp_path, "bad_field", 'rule = "bptt"\nepochs = -3\n' + LESSON)
    with pytest.raises(PresetError, match=r"bad_field\.toml.*epochs"):
        load_preset("bad_field", d)
    d = write(tmp_path, "bad_rule", 'rule = "nope"\n' + LESSON)
    with pytest.raises(PresetError, match=r"bad_rule\.toml.*unknown rule 'nope'"):
        load_preset("bad_rule", d)
    d = write(tmp_path, "after", '[lesson]\ntitle = "t"\ntext = "x"\nepochs = 3\n')
    with pytest.raises(PresetError, match=r"unknown \[lesson\] key 'epochs'"):
        load_preset("after", d)
    with pytest.raises(PresetError, match="unknown preset 'missing'.*available"):
        load_preset("missing", d)
    with pytest.raises(PresetError, match="not valid"):
        load_preset("../etc/passwd", d)
    # list_presets names the broken file too
    with pytest.raises(ConfigError, match=r"preset '\w+\.toml'"):
        list_presets(tmp_path)
    # scan_presets keeps the good ones and one message per broken file
    write(tmp_path, "good", 'rule = "bptt"\nepochs = 2\n' + LESSON)
    good, errors = scan_presets(tmp_path)
    assert [p.id for p in good] == ["good"] and len(errors) == 5
    assert all(e.startswith(("preset '", "config file")) for e in errors)


def test_presets_folder_is_the_repo_assets():
    assert PRESETS_DIR.name == "presets" and PRESETS_DIR.parent.name == "assets"
    assert sorted(p.stem for p in PRESETS_DIR.glob("*.toml")) == sorted(IDS)
