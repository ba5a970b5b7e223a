"""CIFAR10-DVS from genuine AEDAT4 files (tests/aedat4_writer.py lays them out as DV does: magic,
IOHeader, EventPacket flatbuffers, a trigger stream beside the events, the FileDataTable), read
through the code a user runs: load_dataset -> events.build_split -> tonic.io.read_aedat4 -> aedat.
Events and frames are compared with what was written; damaged files give one line naming the file.
No test touches the network: downloads point at a closed port on 127.0.0.1."""
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("aedat")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from aedat4_writer import MAGIC, read_file_data_table, write_aedat4  # noqa: E402

from snncore.config import RunConfig  # noqa: E402
from snncore.data import DatasetError, load_dataset  # noqa: E402
from snncore.data.events import read_cifar10dvs  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
T0 = 1_600_000_000_000_000          # DV timestamps are absolute microseconds since 1970


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    monkeypatch.setenv("SNNCORE_DATA_MIRROR", "http://127.0.0.1:9/")


def random_events(r, n=300, span=1_000_000):
    t = T0 + np.sort(r.integers(0, span, n))
    return t, r.integers(0, 128, n), r.integers(0, 128, n), r.integers(0, 2, n)


def make_cifar10dvs(root: Path, classes=("airplane", "ship"), per_class=5, seed=0) -> dict:
    """CIFAR10DVS/<class>/*.aedat4 as Tonic unpacks it (every class folder present, some empty).
    Returns {path: (t, x, y, p)} of what was written."""
    r = np.random.default_rng(seed)
    for c in CLASSES:
        (root / "CIFAR10DVS" / c).mkdir(parents=True, exist_ok=True)
    written = {}
    for c in classes:
        for k in range(per_class):
            path = root / "CIFAR10DVS" / c / f"cifar10_{c}_{k}.aedat4"
            ev = random_events(r)
            write_aedat4(path, *ev, packet_size=128, triggers=[(int(ev[0][0]), 0), (int(ev[0][9]), 6)])
            written[path] = ev
    return written


def cfg(**kw):
    return RunConfig.from_dict({"dataset": "cifar10_dvs", "hidden": [16], "timesteps": 4, **kw})


def bin_by_hand(ev, frames: int, mode: str) -> np.ndarray:
    """[frames, 2, 32, 32] bool: downsample 4x (floor), bins by time (window = span // frames,
    half-open) or by count (n // frames events each), leftovers past the last bin dropped."""
    t, x, y, p = (np.asarray(a, dtype=np.int64) for a in ev)
    if mode == "time":
        w = (t[-1] - t[0]) // frames
        b = (t - t[0]) // w
    else:
        b = np.arange(len(t)) // (len(t) // frames)
    out = np.zeros((frames, 2, 32, 32), dtype=bool)
    keep = b < frames
    out[b[keep], p[keep], y[keep] // 4, x[keep] // 4] = True
    return out


# ---- the writer follows the format ------------------------------------------------------------
def test_file_bytes_follow_the_aedat4_layout(tmp_path):
    r = np.random.default_rng(1)
    t, x, y, p = random_events(r, n=300)
    raw = write_aedat4(tmp_path / "a.aedat4", t, x, y, p, packet_size=128, triggers=[(int(t[0]), 0)])
    assert raw == (tmp_path / "a.aedat4").read_bytes() and raw[:14] == MAGIC
    n = struct.unpack_from("<I", raw, 14)[0]
    assert raw[14 + 8:14 + 12] == b"IOHE" and b"<dv version" in raw[18:18 + n]
    pos, table = read_file_data_table(raw)
    # the table lists every packet: events 128 + trigger + 128 + 44, each header where it says
    assert [(sid, k) for _, sid, _, k, _, _ in table] == [(0, 128), (1, 1), (0, 128), (0, 44)]
    assert table[0][0] == 18 + n                                  # first packet right after the header
    for off, sid, size, k, t_first, t_last in table:
        assert struct.unpack_from("<ii", raw, off) == (sid, size)
        assert raw[off + 8 + 8:off + 8 + 12] == (b"EVTS" if sid == 0 else b"TRIG")   # size-prefixed
        assert struct.unpack_from("<I", raw, off + 8)[0] == size - 4
    assert table[-1][0] + 8 + table[-1][2] == pos and raw[pos + 8:pos + 12] == b"FTAB"
    ev_rows = [row for row in table if row[1] == 0]
    assert [(a, b) for *_, a, b in ev_rows] == [(int(t[0]), int(t[127])), (int(t[128]), int(t[255])),
                                                 (int(t[256]), int(t[299]))]
    import aedat
    streams = aedat.Decoder(str(tmp_path / "a.aedat4")).id_to_stream()
    assert streams == {0: {"type": "events", "width": 128, "height": 128}, 1: {"type": "triggers"}}
    trig = [pk["triggers"] for pk in aedat.Decoder(str(tmp_path / "a.aedat4")) if pk["stream_id"] == 1]
    assert len(trig) == 1 and trig[0]["t"].tolist() == [int(t[0])]


@pytest.mark.parametrize("data_table", [True, False])
def test_reader_returns_the_written_events(tmp_path, data_table):
    t, x, y, p = random_events(np.random.default_rng(2), n=1000)
    f = tmp_path / "rec.aedat4"
    write_aedat4(f, t, x, y, p, packet_size=300, triggers=[(int(t[3]), 1)], data_table=data_table)
    ev = read_cifar10dvs(f)
    assert ev.dtype.names == ("t", "x", "y", "p") and len(ev) == 1000
    for name, want in (("t", t), ("x", x), ("y", y), ("p", p)):
        assert np.array_equal(ev[name].astype(np.int64), want), name


# ---- through the dataset loader -------------------------------------------------------------------
def test_bundle_frames_equal_hand_binning(tmp_path):
    written = make_cifar10dvs(tmp_path)
    # one hand-made recording: known pixels at known times (bins of 100 ms over [0, 300 ms))
    hand = tmp_path / "CIFAR10DVS/airplane/cifar10_airplane_0.aedat4"
    ev = (np.array([0, 100_000, 150_000, 200_000, 300_000]) + T0, [5, 127, 64, 0, 9], [9, 0, 127, 127, 9],
          [0, 1, 1, 0, 1])
    write_aedat4(hand, *ev, packet_size=2)
    written[hand] = ev
    b = load_dataset(cfg(data_dir=str(tmp_path), frames=3), allow_download=False)
    assert b.kind == "spikes" and b.shape == (2, 32, 32) and b.input_size == 2048 and b.frames == 3
    # 5 files per class: the first 4 (by name) train, the last tests; class folders in Tonic's order
    assert b.train_y.tolist() == [0] * 4 + [8] * 4 and b.test_y.tolist() == [0, 8]
    fr = b.decode(b.train_x[:1])[0].view(3, 2, 32, 32)
    # (t, x//4, y//4, p): bin 0 (1, 2) off; bin 1 (31, 0) on and (16, 31) on; bin 2 (0, 31) off;
    # the event at the last timestamp falls past the last bin (Tonic's half-open bins)
    assert int(fr.sum()) == 4
    assert fr[0, 0, 2, 1] and fr[1, 1, 0, 31] and fr[1, 1, 31, 16] and fr[2, 0, 31, 0]
    order = sorted(p for p in written if "airplane" in p.name)[:4] + sorted(p for p in written if "ship" in p.name)[:4]
    got = b.decode(b.train_x).view(8, 3, 2, 32, 32).numpy()
    for i, path in enumerate(order):
        assert np.array_equal(got[i], bin_by_hand(written[path], 3, "time")), path.name
    test_paths = [sorted(p for p in written if c in p.name)[4] for c in ("airplane", "ship")]
    got = b.decode(b.test_x).view(2, 3, 2, 32, 32).numpy()
    for i, path in enumerate(test_paths):
        assert np.array_equal(got[i], bin_by_hand(written[path], 3, "time")), path.name
    xb, yb = next(b.batches("train", 4, 99, shuffle=False))
    assert xb.shape == (3, 4, 2048) and yb.tolist() == [0, 0, 0, 0]


def test_event_count_frames_and_cache(tmp_path):
    written = make_cifar10dvs(tmp_path, classes=("cat",), seed=3)
    c = cfg(data_dir=str(tmp_path), frames=4, frame_mode="count")
    b = load_dataset(c, allow_download=False)
    paths = sorted(written)
    got = b.decode(b.train_x).view(4, 4, 2, 32, 32).numpy()
    for i, path in enumerate(paths[:4]):
        assert np.array_equal(got[i], bin_by_hand(written[path], 4, "count")), path.name
    assert b.train_y.tolist() == [3] * 4
    # the second load comes from the frame cache, not the AEDAT4 files: damage one, same frames
    paths[0].write_bytes(b"gone")
    assert torch.equal(load_dataset(c, allow_download=False).train_x, b.train_x)


# ---- damaged files: one line naming the file, no cache written -----------------------------------
def _good(tmp_path) -> tuple[Path, bytes, list]:
    make_cifar10dvs(tmp_path, classes=("dog",))
    f = tmp_path / "CIFAR10DVS/dog/cifar10_dog_2.aedat4"
    raw = f.read_bytes()
    return f, raw, read_file_data_table(raw)[1]


def _expect(tmp_path, f, pattern):
    with pytest.raises(DatasetError, match=pattern) as e:
        load_dataset(cfg(data_dir=str(tmp_path)), allow_download=False)
    msg = str(e.value)
    assert str(f) in msg and "\n" not in msg and "fetch the dataset again" in msg
    assert not list((tmp_path / "CIFAR10DVS").rglob("*.npz")) and not list(tmp_path.rglob("*.part"))


def test_truncated_files(tmp_path):
    f, raw, table = _good(tmp_path)
    cuts = {"inside a packet": table[2][0] + 40, "at a packet boundary": table[2][0],
            "inside the IOHeader": 30, "inside the magic": 9, "empty": 0}
    for what, cut in cuts.items():
        f.write_bytes(raw[:cut])
        _expect(tmp_path, f, r"cifar10_dog_2\.aedat4 cannot be read as AEDAT4 \(")
    # cut right after the header of a file without a data table: no packets at all
    f2 = tmp_path / "CIFAR10DVS/dog/cifar10_dog_3.aedat4"
    f.write_bytes(raw)
    t = np.arange(10) + T0
    head = write_aedat4(f2, t, t % 128, t % 128, t % 2, data_table=False)
    f2.write_bytes(head[:18 + struct.unpack_from("<I", head, 14)[0]])
    _expect(tmp_path, f2, r"cifar10_dog_3\.aedat4 cannot be read as AEDAT4 \(no event packets")


def test_wrong_magic_and_bad_addresses(tmp_path):
    f, raw, _ = _good(tmp_path)
    f.write_bytes(b"#!AER-DAT3.1\r\n" + raw[14:])                 # an AEDAT 3.1 header
    _expect(tmp_path, f, r"cifar10_dog_2\.aedat4 cannot be read as AEDAT4 \(.*wrong magic number")
    f.write_bytes(raw)
    t = np.arange(10) + T0
    write_aedat4(f, t, [3] * 9 + [200], [1] * 10, [1] * 10)       # x = 200 on a 128-wide sensor
    _expect(tmp_path, f, r"cifar10_dog_2\.aedat4 is corrupt \(event address outside the 128x128 sensor")


def test_cli_reports_a_damaged_aedat4_in_one_line(tmp_path):
    f, raw, _ = _good(tmp_path / "data")
    f.write_bytes(raw[:len(raw) // 3])
    env = {**os.environ, "SNNCORE_DATA_MIRROR": "http://127.0.0.1:9/"}
    r = subprocess.run([sys.executable, "-m", "snncore", "train", "--dataset", "cifar10_dvs", "--data-dir",
                        str(tmp_path / "data"), "--runs-dir", str(tmp_path / "runs")],
                       cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0].startswith("error: ") and "cifar10_dog_2.aedat4 cannot be read as AEDAT4" in lines[0]
