import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# the checkout under test, even where the venv's editable snncore points at another checkout (git
# worktrees sharing one venv); a `pytest` started outside the repo root would otherwise test that one
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PYTHONWARNINGS", "ignore")
ARTIFACTS = ROOT / "test-artifacts"
# the environment pytest started with, taken before any test module is imported
START_ENV = dict(os.environ)

# Property tests are reproducible by default (a fixed search, so CI is not a lottery); set
# HYPOTHESIS_PROFILE=explore to search with fresh random examples when working on a rule.
from hypothesis import settings as _hyp_settings  # noqa: E402

_hyp_settings.register_profile("ci", derandomize=True, print_blob=True)
_hyp_settings.register_profile("explore", derandomize=False, print_blob=True)
_hyp_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _environment_restored():
    """Every test starts from the environment pytest started with: the CLI, imported in-process (at
    collection, too), sets the run's thread budget into os.environ (snncore/threads.py), which would
    otherwise reach later tests' runs."""
    os.environ.clear()
    os.environ.update(START_ENV)
    yield


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    d = tmp_path / "runs"
    monkeypatch.setenv("SNNCORE_RUNS", str(d))
    return d


TINY = dict(dataset="digits", rule="bptt", epochs=1, timesteps=4, batch_size=64, hidden=[32],
            n_train=256, record_every=2)


@pytest.fixture
def tiny():
    return dict(TINY)
