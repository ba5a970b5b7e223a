"""Lesson presets: ready configs in assets/presets/*.toml, each with a [lesson] table.

A preset file is a full run config (the fields of RunConfig, rule hyperparameters under [rule_params])
plus
    [lesson]
    title = "..."        shown in the picker
    text = "..."         what the lesson shows and what to watch
    cpu_seconds = 20     rough CPU time of one run on a laptop core
    page = "train"       where its lesson link opens: "train" (default) or "rule_lab"
    controls = [...]     the controls the lesson uses (config fields, rule hyperparameters by name);
                         lesson mode hides every other one. Absent: all are shown
    steps = [...]        the lesson's steps, shown beside the page (markdown)
    [[lesson.think]]     "Think!" questions, each answer folded until clicked
    q = "..."
    a = "..."

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
    page: str = "train"
    controls: list | None = None  # None: the lesson hides nothing
    steps: list = field(default_factory=list)
    think: list = field(default_factory=list)     # [{"q": ..., "a": ...}]

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
    extra = sorted(set(lesson) - set(LESSON_KEYS))
    if extra:
        raise PresetError(f"{where}: unknown [lesson] key {extra[0]!r} (allowed: {', '.join(LESSON_KEYS)})")
    try:
        cfg = RunConfig.from_dict(data)
    except ConfigError as e:
        raise PresetError(f"{where}: {e}") from None
    page = lesson.get("page", "train")
    if page not in PAGES:
        raise PresetError(f"{where}: [lesson] page must be one of {', '.join(PAGES)}, got {page!r}")
    controls = lesson.get("controls")
    if controls is not None:
        controls = _str_list(controls, f"{where}: [lesson] controls")
        allowed = control_names(cfg, page)
        for c in controls:
            if c not in allowed:
                raise PresetError(f"{where}: [lesson] controls: {c!r} is not a control of the "
                                  f"{page} page for rule {cfg.rule} (allowed: {', '.join(sorted(allowed))})")
    steps = _str_list(lesson.get("steps", []), f"{where}: [lesson] steps")
    think = lesson.get("think", [])
    if not isinstance(think, list) or not all(
            isinstance(t, dict) and set(t) == {"q", "a"} and all(isinstance(v, str) and v.strip() for v in t.values())
            for t in think):
        raise PresetError(f"{where}: [lesson] think must be [[lesson.think]] tables, each with a "
                          f"non-empty q (the question) and a (its answer)")
    return Preset(path.stem, title.strip(), " ".join(text.split()), data,
                  None if cpu is None else float(cpu), path, page, controls,
                  [" ".join(x.split()) for x in steps],
                  [{"q": " ".join(t["q"].split()), "a": " ".join(t["a"].split())} for t in think])


LESSON_KEYS = ("title", "text", "cpu_seconds", "page", "controls", "steps", "think")
PAGES = ("train", "rule_lab")
# the Rule Lab page's own knobs a lesson can show (besides the rule's hyperparameters)
LAB_CONTROLS = ("rule", "updates", "input", "seed")


def control_names(cfg: RunConfig, page: str = "train") -> set[str]:
    """What a lesson's `controls` may name on a page: on Train every config field and the rule's
    hyperparameters; on Rule Lab the hyperparameters and LAB_CONTROLS."""
    import dataclasses

    from .rules import get_rule
    params = {f.name for f in dataclasses.fields(get_rule(cfg.rule).Params)}
    if page == "rule_lab":
        return params | set(LAB_CONTROLS)
    return (set(RunConfig.fields()) - {"rule_params"}) | params


def _str_list(v, where: str) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v):
        raise PresetError(f"{where} must be a list of non-empty strings")
    return list(v)


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
