"""Lesson presets: ready configs in assets/presets/*.toml, each with a [lesson] table.

A preset file is a full run config (the fields of RunConfig, rule hyperparameters under [rule_params])
plus
    [lesson]
    title = "..."        shown in the picker
    text = "..."         what the lesson shows and what to watch
    cpu_seconds = 20     rough CPU time of one run on a laptop core

    from snncore.presets import list_presets, load_preset
    for p in list_presets(): print(p.id, p.title)
    cfg = load_preset("stdp_repeated_pattern")        # a validated RunConfig
    presets, errors = scan_presets()                  # for a picker: broken files as messages
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .config import ConfigError, RunConfig

PRESETS_DIR = Path(__file__).resolve().parent.parent / "assets" / "presets"
PRESET_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")


class PresetError(ConfigError):
    """A preset is missing or its file is broken; the message names the file and the problem."""


@dataclass
class Preset:
    id: str                      # the file name without .toml
    title: str
    text: str                    # what to watch
    config: dict                 # the config fields as in the file (validated; without [lesson])
    cpu_seconds: float | None = None
    path: Path | None = field(default=None, repr=False)

    def run_config(self) -> RunConfig:
        return RunConfig.from_dict(self.config)


def _read(path: Path) -> Preset:
    data = RunConfig.load(path)                       # ConfigError names the file on bad TOML
    lesson = data.pop("lesson", None)
    where = f"preset {path.name!r}"
    if not isinstance(lesson, dict):
        raise PresetError(f"{where}: needs a [lesson] table with title and text")
    title, text = lesson.get("title"), lesson.get("text")
    if not isinstance(title, str) or not title.strip():
        raise PresetError(f"{where}: [lesson] title must be a non-empty string")
    if not isinstance(text, str) or not text.strip():
        raise PresetError(f"{where}: [lesson] text must be a non-empty string")
    cpu = lesson.get("cpu_seconds")
    if cpu is not None and (isinstance(cpu, bool) or not isinstance(cpu, (int, float)) or cpu < 0):
        raise PresetError(f"{where}: [lesson] cpu_seconds must be a number >= 0, got {cpu!r}")
    extra = sorted(set(lesson) - {"title", "text", "cpu_seconds"})
    if extra:
        raise PresetError(f"{where}: unknown [lesson] key {extra[0]!r} (allowed: title, text, cpu_seconds)")
    try:
        RunConfig.from_dict(data)
    except ConfigError as e:
        raise PresetError(f"{where}: {e}") from None
    return Preset(path.stem, title.strip(), " ".join(text.split()), data,
                  None if cpu is None else float(cpu), path)


def list_presets(directory: str | Path | None = None) -> list[Preset]:
    """Every preset in the folder, sorted by title. A broken file raises PresetError naming it."""
    d = Path(directory) if directory is not None else PRESETS_DIR
    return sorted((_read(p) for p in sorted(d.glob("*.toml"))), key=lambda p: p.title.lower())


def scan_presets(directory: str | Path | None = None) -> tuple[list[Preset], list[str]]:
    """(the valid presets sorted by title, one message per broken file): a picker shows both."""
    d = Path(directory) if directory is not None else PRESETS_DIR
    good, errors = [], []
    for path in sorted(d.glob("*.toml")):
        try:
            good.append(_read(path))
        except ConfigError as e:
            errors.append(str(e))
    return sorted(good, key=lambda p: p.title.lower()), errors


def load_preset(preset_id: str, directory: str | Path | None = None) -> RunConfig:
    """The validated RunConfig of one preset (PresetError: unknown id or broken file)."""
    return get_preset(preset_id, directory).run_config()


def get_preset(preset_id: str, directory: str | Path | None = None) -> Preset:
    d = Path(directory) if directory is not None else PRESETS_DIR
    if not isinstance(preset_id, str) or not PRESET_ID_RE.match(preset_id):
        raise PresetError(f"preset id {preset_id!r} is not valid (letters, digits, '-' and '_')")
    path = d / f"{preset_id}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in d.glob("*.toml"))) or "none"
        raise PresetError(f"unknown preset {preset_id!r} (available: {known})")
    return _read(path)
