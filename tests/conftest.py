import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PYTHONWARNINGS", "ignore")
ARTIFACTS = ROOT / "test-artifacts"


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
