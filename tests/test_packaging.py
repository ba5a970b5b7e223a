"""Packaging: the console script, the lock against the venv it built, no PYTHONPATH in the run process.

The venv checks apply to the venv `make` builds from requirements.lock (the repo's .venv, what CI
runs); another interpreter (a shared venv of several git worktrees) skips them with the reason.
"""
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
# installed by TORCH_INSTALL before the lock (CPU or CUDA build), or the installer and the package itself
NOT_LOCKED = {"torch", "torchvision", "torchaudio", "pip", "snncore"}
MAKE_VENV = (ROOT / ".venv").resolve()


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_pins(text: str) -> dict[str, str]:
    """name -> version of every `name==version` line of a pip requirements lock."""
    pins = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)", line)
        if m:
            pins[_norm(m.group(1))] = m.group(2)
    return pins


def unlocked(installed: dict[str, str], pins: dict[str, str], torch_deps: frozenset = frozenset()) -> list[str]:
    """Installed distributions the lock does not pin at their installed version. torch_deps: what the
    torch trio needs (a CUDA build brings nvidia-*, triton...); exempt where the lock leaves it out."""
    return sorted(f"{n}=={v} (lock: {pins.get(n, 'absent')})" for n, v in installed.items()
                  if n not in NOT_LOCKED and not n.startswith("nvidia-") and pins.get(n) != v
                  and not (n in torch_deps and n not in pins))


def torch_trio_deps() -> frozenset:
    """Every distribution the installed torch, torchvision, torchaudio need, transitively."""
    from packaging.requirements import Requirement
    seen, todo = set(), ["torch", "torchvision", "torchaudio"]
    while todo:
        name = todo.pop()
        try:
            reqs = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for r in map(Requirement, reqs):
            if (r.marker is None or r.marker.evaluate({"extra": ""})) and _norm(r.name) not in seen:
                seen.add(_norm(r.name))
                todo.append(r.name)
    return frozenset(seen)


def test_lock_pins_exact_versions_and_no_cuda_packages():
    text = LOCK.read_text()
    pins = lock_pins(text)
    assert len(pins) > 50, "requirements.lock pins the transitive closure, not only the top level"
    reqs = [ln.split("#")[0].strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert all("==" in r for r in reqs), [r for r in reqs if "==" not in r]
    assert not [n for n in pins if n.startswith("nvidia-") or n in {"torch", "torchvision", "torchaudio"}]
    top = {_norm(m.group(0)) for f in ("requirements.in", "requirements-dev.in")
           for ln in (ROOT / f).read_text().splitlines()
           if (m := re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", ln.strip()))}
    missing = sorted(n for n in top if n not in pins and n not in NOT_LOCKED and not n.startswith("-r"))
    assert not missing, f"top-level requirements absent from requirements.lock: {missing}"


def test_unlocked_finds_a_drifted_or_extra_distribution():
    pins = {"numpy": "2.4.6", "scipy": "1.17.1"}
    assert unlocked({"numpy": "2.4.6", "torch": "2.13.0+cpu", "nvidia-cublas-cu12": "1"}, pins) == []
    assert unlocked({"numpy": "2.4.7", "extra-pkg": "1.0"}, pins) == [
        "extra-pkg==1.0 (lock: absent)", "numpy==2.4.7 (lock: 2.4.6)"]
    # what the torch build needs and the lock leaves out is TORCH_INSTALL's; locked ones must match
    assert unlocked({"triton": "3.0", "numpy": "2.4.7"}, pins, frozenset({"triton", "numpy"})) == [
        "numpy==2.4.7 (lock: 2.4.6)"]


@pytest.fixture
def make_venv():
    if Path(sys.prefix).resolve() != MAKE_VENV:
        pytest.skip(f"not the venv `make` builds from requirements.lock ({MAKE_VENV}); running in {sys.prefix}")
    return MAKE_VENV


def test_venv_holds_exactly_the_lock(make_venv):
    installed = {_norm(d.metadata["Name"]): d.version for d in metadata.distributions()}
    assert not unlocked(installed, lock_pins(LOCK.read_text()), torch_trio_deps())


def test_console_script_prints_help_outside_the_repo(make_venv, tmp_path):
    exe = make_venv / "bin" / "snncore"
    assert exe.exists(), "pip install -e . makes the snncore console script"
    p = subprocess.run([str(exe), "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    for cmd in ("train", "runs"):
        assert cmd in p.stdout
    # the installed package is this checkout (editable), not a copy
    p = subprocess.run([str(make_venv / "bin" / "python"), "-c", "import snncore; print(snncore.__file__)"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert Path(p.stdout.strip()).resolve().parent == ROOT / "snncore", p.stderr


def test_console_entry_point_is_the_cli_main():
    from snncore.__main__ import main
    eps = [ep for ep in metadata.entry_points(group="console_scripts") if ep.name == "snncore"]
    if not eps:  # this interpreter has no installed snncore: check what pyproject declares
        import tomllib
        value = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["snncore"]
        mod, attr = value.split(":")
    else:
        mod, attr = eps[0].module, eps[0].attr
    assert (mod, attr) == ("snncore.__main__", "main") and callable(main)


def test_run_process_gets_no_pythonpath_and_the_callers_directory(tmp_path, monkeypatch):
    from snncore.runs import launch
    from snncore.config import RunConfig
    from snncore.store import RunStore
    seen = {}

    class FakePopen:
        pid = os.getpid()

        def __init__(self, cmd, **kw):
            seen.update(kw)

    monkeypatch.setattr(launch.subprocess, "Popen", FakePopen)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    launch.launch_run(RunConfig.from_dict({"dataset": "digits"}), RunStore(tmp_path / "runs"))
    assert "PYTHONPATH" not in seen["env"]
    assert Path(seen["cwd"]).resolve() == work.resolve()   # a user's module here imports in the run


def test_no_pythonpath_set_in_code_or_build_files():
    files = [*ROOT.glob("snncore/**/*.py"), *ROOT.glob("bench/*.py"), ROOT / "Makefile", *ROOT.glob(".ci/*"),
             *ROOT.glob("tests/*.py")]
    sets = re.compile(r"""PYTHONPATH["']?\s*[:=]|\[\s*["']PYTHONPATH""")   # PYTHONPATH=..., "PYTHONPATH": ..., env["PYTHONPATH"]
    assert sets.search('env = dict(os.environ, PYTHONPATH=p)') and sets.search('{"PYTHONPATH": p}')
    hits = [f"{f.relative_to(ROOT)}" for f in files
            if f.is_file() and f.name != "test_packaging.py" and sets.search(f.read_text(errors="replace"))]
    assert not hits, hits


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_lock_and_inputs_are_tracked():
    p = subprocess.run(["git", "ls-files", "--error-unmatch", "requirements.lock", "requirements.in",
                        "requirements-dev.in", "pyproject.toml"], cwd=ROOT, capture_output=True, text=True)
    if p.returncode != 0 and "not a git repository" in p.stderr:
        pytest.skip("not a git checkout")
    assert p.returncode == 0, p.stderr
