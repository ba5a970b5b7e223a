"""Corrupt or hostile files: truncated and malicious checkpoints, bad config files, path tricks."""
import io
import os
import pickle
import zipfile
from pathlib import Path

import pytest
import torch

from snncore.config import RunConfig
from snncore.store import RunStore
from snncore.train import Trainer

MARK = Path("/tmp/snncore-hostile-pickle-ran")


class Evil:
    """Unpickling this runs os.system: a checkpoint must never be loaded with full pickle."""
    def __reduce__(self):
        return (os.system, (f"touch {MARK}",))


def _stopped_run(runs, epochs=3):
    store = RunStore(runs)
    cfg = RunConfig.from_dict({"epochs": epochs, "hidden": [16], "timesteps": 4, "n_train": 128})
    rid = store.create_run(cfg.to_dict())
    tr = Trainer(cfg, store, rid)
    tr.on_progress = lambda p: p.test_accuracy is not None and p.epoch >= 2 and store.request_stop(rid)
    assert tr.run()["status"] == "stopped"
    return store, rid


def _resume(runs, rid, capsys):
    from snncore.__main__ import main
    with pytest.raises(SystemExit) as e:
        main(["train", "--resume", rid, "--runs-dir", str(runs)])
    return e.value.code, capsys.readouterr().err.strip().splitlines()[-1]


def _evil_checkpoint() -> bytes:
    buf = io.BytesIO()
    torch.save({"model": Evil()}, buf)          # torch's zip format with a code-running pickle inside
    return buf.getvalue()


def test_damaged_newest_checkpoint_falls_back_to_the_one_before(tmp_path, capsys):
    runs = tmp_path / "runs"
    store, rid = _stopped_run(runs)
    cks = store.checkpoints(rid)
    assert [e for e, _, _ in cks] == [1, 2]
    data = cks[-1][2].read_bytes()
    cks[-1][2].write_bytes(data[: len(data) // 2])           # truncated (e.g. copied half-way)
    from snncore.__main__ import main
    assert main(["train", "--resume", rid, "--runs-dir", str(runs)]) == 0
    run = RunStore(runs).get_run(rid)
    assert run["status"] == "finished" and run["epoch"] == 3
    m = RunStore(runs).metrics_frame(rid)
    assert m["train/loss"].notna().sum() == 3 * 2 and len(m["test/accuracy"].dropna()) == 3


def test_malicious_checkpoint_is_never_executed(tmp_path, capsys):
    MARK.unlink(missing_ok=True)
    runs = tmp_path / "runs"
    store, rid = _stopped_run(runs)
    for _, _, path in store.checkpoints(rid):
        path.write_bytes(_evil_checkpoint())
    code, err = _resume(runs, rid, capsys)
    assert code == 2 or code == 1
    assert "no checkpoint could be loaded" in err and "epoch00002.pt" in err, err
    assert not MARK.exists()                                  # the payload did not run
    assert RunStore(runs).get_run(rid)["status"] == "failed"
    # a raw pickle (not torch's zip format) is refused the same way
    for _, _, path in store.checkpoints(rid):
        path.write_bytes(pickle.dumps({"model": Evil()}))
    code, err = _resume(runs, rid, capsys)
    assert "no checkpoint could be loaded" in err and not MARK.exists()


def test_garbage_and_empty_checkpoints(tmp_path, capsys):
    runs = tmp_path / "runs"
    store, rid = _stopped_run(runs)
    a, b = [p for _, _, p in store.checkpoints(rid)]
    a.write_bytes(b"")
    with zipfile.ZipFile(b, "w") as z:                         # a zip that is not a torch file
        z.writestr("hello.txt", "x")
    code, err = _resume(runs, rid, capsys)
    assert "no checkpoint could be loaded" in err and "epoch00001.pt" in err and "epoch00002.pt" in err
    assert len(err) < 600


@pytest.mark.parametrize("text,words", [
    ("epochs = 'many'", ["epochs: expected int"]),
    ("epochs = 1e300", ["epochs"]),
    ("hidden = [10000000]", ["hidden", "out of range"]),
    ("timesteps = 99999999999999999999", ["timesteps"]),
    ("lr = inf", ["lr", "finite"]),
    ("rule = 'ssdp'\n[rule_params]\na_plus = 'x'", ["a_plus"]),
    ("rule_params = 3", ["rule_params"]),
    ("name = '../../etc'", ["name", "no path separators"]),
    ("name = 'a/b'", ["name"]),
    ("[[epochs]]\nx = 1", ["epochs"]),
    ("\x00\x01binary", ["not valid TOML"]),
])
def test_config_files_with_wrong_types_or_huge_values(tmp_path, capsys, text, words):
    from snncore.__main__ import main
    f = tmp_path / "c.toml"
    f.write_text(text)
    runs = tmp_path / "runs"
    with pytest.raises(SystemExit) as e:
        main(["train", "--config", str(f), "--runs-dir", str(runs)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1, err
    for w in words:
        assert w in err, err
    assert not runs.exists() or not [p for p in runs.iterdir() if p.is_dir()]


def test_no_file_is_written_outside_the_runs_folder(tmp_path, capsys):
    from snncore.__main__ import main
    runs = tmp_path / "box" / "runs"
    before = set(tmp_path.rglob("*"))
    for argv in (["--run-id", "../escape"], ["--run-id", "/tmp/abs"], ["--name", "../../escape"],
                 ["--resume", "../../x"], ["--resume", ".."]):
        with pytest.raises(SystemExit) as e:
            main(["train", *argv, "--runs-dir", str(runs), "--epochs", "1", "--n-train", "32"]
                 if "--resume" not in argv else ["train", *argv, "--runs-dir", str(runs)])
        assert e.value.code == 2, argv
        capsys.readouterr()
    after = set(tmp_path.rglob("*"))
    assert all(runs in p.parents or p == runs or p in (runs.parent,) for p in after - before), after - before


def test_cifar_batch_with_code_in_it_is_refused_not_run(tmp_path):
    from snncore.data import DatasetError, load_dataset
    from snncore.data.images import write_cifar_batch
    import numpy as np
    MARK.unlink(missing_ok=True)
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    x = np.zeros((4, 3072), np.uint8)
    for i in range(1, 6):
        write_cifar_batch(base / f"data_batch_{i}", x, [0, 1, 2, 3])
    write_cifar_batch(base / "test_batch", x, [0, 1, 2, 3])
    cfg = RunConfig.from_dict({"dataset": "cifar10", "data_dir": str(tmp_path), "epochs": 1})
    assert load_dataset(cfg, allow_download=False).train_y.numel() == 20    # a real batch reads fine
    (base / "data_batch_3").write_bytes(pickle.dumps({b"data": Evil(), b"labels": [0]}, protocol=2))
    with pytest.raises(DatasetError, match="data_batch_3 is not a CIFAR batch: it refers to posix.system"):
        load_dataset(cfg, allow_download=False)
    assert not MARK.exists()
