import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PYTHONWARNINGS", "ignore")
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(autouse=True)
def _environment_restored():
    """Every test sees the environment pytest started with: the CLI, called in-process, sets the
    run's thread budget into os.environ (snncore/threads.py), which would reach later tests' runs."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


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
