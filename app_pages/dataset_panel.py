"""Dataset widgets and the dataset card for the Train page.

dataset_fields(dataset) draws the dataset-specific inputs (data folder, encoding, augmentation,
frames) and returns their config values; render_dataset_info(cfg) shows shape, classes, samples and
encoding with a few samples (images or event frames) and one sample's spike encoding as a raster,
or one st.error naming the file and the fix (with a Download button when files are missing).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st
import torch

from app_pages import form_state as fs
from snncore import viz
from snncore.config import ENCODINGS, EVENT_DATASETS, RunConfig
from snncore.data import FILE_SETS, IMAGE_SETS, DatasetError, OfflineError, data_root, load_dataset
from snncore.data.encode import encode

N_PREVIEW = 4


def dataset_fields(dataset: str) -> dict:
    """Widgets for the dataset's own settings; returns {config field: value}. A data folder outside
    the data root gives {"_error": message}: the app reads and writes only inside that root."""
    values: dict = {}
    if dataset in FILE_SETS:
        root = data_root("").resolve()
        values["data_dir"] = fs.text(
            st, "data folder", "ds_data_dir", "", placeholder=str(root),
            help=f"a folder inside {root} (empty: that folder itself; set SNNCORE_DATA before starting the app "
                 "to move it); torchvision / Tonic layouts are reused, missing files can be downloaded")
        if values["data_dir"].strip():
            p = Path(values["data_dir"].strip())
            p = (p if p.is_absolute() else root / p).resolve()
            if p != root and root not in p.parents:
                values["_error"] = (f"data folder: {values['data_dir']!r} is outside the data folder {root}; "
                                    f"the app only reads and writes inside it (name a subfolder, or set "
                                    f"SNNCORE_DATA before starting the app)")
            else:
                values["data_dir"] = str(p)
    if dataset in IMAGE_SETS or dataset == "digits":
        values["encoding"] = fs.select(st, "encoding", ENCODINGS, "ds_encoding", "rate",
                                       help="rate: Bernoulli spikes; latency: one spike, brighter "
                                            "earlier; direct: normalised pixels as input current")
    if dataset in ("cifar10", "cifar100"):
        values["augment"] = fs.checkbox(st, "augment (random crop + flip)", "ds_augment", False)
    if dataset in EVENT_DATASETS:
        c1, c2 = st.columns(2)
        values["frames"] = int(fs.number(c1, "frames", "ds_frames", 16 if dataset != "shd" else 0, min_value=0,
                                         max_value=10_000, step=1, help="frames per sample (0: timesteps T)"))
        values["frame_mode"] = fs.select(c2, "frames by", ("time", "count"), "ds_frame_mode", "time",
                                         help="equal time bins or equal event counts per frame")
    return values


def missing_files(cfg) -> tuple[str, str] | None:
    """(short message, details with the fix) when files the config's dataset needs are not in its
    data folder, else None. A cheap existence check (no reading), so Start can be blocked up front
    instead of the run failing seconds after Start."""
    if cfg is None or cfg.dataset not in FILE_SETS:
        return None
    from snncore.data.download import how_to_get, missing
    root = data_root(cfg.data_dir)
    gone = missing(cfg.dataset, root)
    if not gone:
        return None
    return (f"{cfg.dataset} files are missing ({len(gone)} of them)",
            how_to_get(cfg.dataset, root, gone) + ". The dataset panel on the page has a Download button.")


_DATA_FIELDS = ("dataset", "data_dir", "augment", "frames", "frame_mode", "encoding", "timesteps",
                "syn_classes", "syn_channels", "syn_group", "syn_samples", "syn_sync", "syn_jitter",
                "syn_noise", "seed")


@st.cache_resource(max_entries=1, show_spinner="reading the dataset ...")
def _bundle(key: tuple):
    cfg = RunConfig.from_dict(dict(key))
    b = load_dataset(cfg, allow_download=False)
    return b


def _download(cfg: RunConfig) -> None:
    bar = st.progress(0.0, text="downloading ...")

    def progress(what, done, total):
        frac = min(done / total, 1.0) if total else 0.0
        bar.progress(frac, text=f"{what}: {done / 1e6:.1f} MB" + (f" of {total / 1e6:.1f} MB" if total else ""))
    load_dataset(cfg, allow_download=True, progress=progress)
    bar.empty()


def render_dataset_info(cfg) -> None:
    """Shape / classes / samples / encoding and a small preview of the dataset a config names."""
    if isinstance(cfg, dict):
        cfg = RunConfig.from_dict(cfg)
    if cfg.dataset == "l2l_tasks":
        st.caption("l2l_tasks: a generated family of tasks for learning-to-learn (made by the IP² rule).")
        return
    key = tuple((k, getattr(cfg, k)) for k in _DATA_FIELDS)
    try:
        b = _bundle(key)
    except OfflineError as e:
        st.error(str(e))
        if st.button(f"Download {cfg.dataset}", key="ds_download"):
            try:
                _download(cfg)
            except DatasetError as e2:
                st.error(str(e2))
                return
            _bundle.clear()
            st.rerun()
        return
    except DatasetError as e:
        st.error(str(e))
        return
    info = b.info()
    c = st.columns(5)
    c[0].metric("shape", " x ".join(map(str, b.shape)))
    c[1].metric("classes", b.n_classes)
    c[2].metric("train samples", f"{info['train_samples']:,}")
    c[3].metric("test samples", f"{info['test_samples']:,}")
    c[4].metric("encoding", f"{b.frames} frames" if b.kind == "spikes" else b.encoding)
    st.caption(b.description)
    _preview(b, cfg)


def _images(b, x: torch.Tensor) -> list[np.ndarray]:
    """Decoded samples -> images in [0, 1] (static: the picture; events: frames summed per polarity)."""
    out = []
    if b.kind == "static":
        C, H, W = b.shape if len(b.shape) == 3 else (1, 1, b.shape[0])
        for s in x:
            img = s.view(C, H, W).permute(1, 2, 0).numpy()
            out.append(img[..., 0] if C == 1 else img)
    elif len(b.shape) == 3:                        # event camera: red = ON, green = OFF
        P, H, W = b.shape
        for s in x:
            acc = s.float().view(-1, P, H, W).sum(0)
            acc = (acc / acc.max().clamp(min=1)).numpy()
            rgb = np.zeros((H, W, 3))
            rgb[..., 0] = acc[min(1, P - 1)]
            rgb[..., 1] = acc[0]
            out.append(rgb)
    else:                                          # flat spike trains (SHD, synthetic): channel x time
        for s in x:
            out.append(s.float().T.numpy())
    return out


def _sharp(img: np.ndarray, target: int = 128) -> np.ndarray:
    """Small images blown up by pixel repetition, so the browser's smooth scaling does not blur an
    8x8 digit into a smear (the pixels stay visible as squares)."""
    f = max(1, target // max(img.shape[:2]))
    return img.repeat(f, 0).repeat(f, 1) if f > 1 else img


def _preview(b, cfg: RunConfig) -> None:
    parts = _preview_parts(tuple((k, getattr(cfg, k)) for k in _DATA_FIELDS))
    if parts is None:
        return
    images, labels, fig = parts
    cols = st.columns(len(images))
    for col, img, y in zip(cols, images, labels):
        col.image(img, caption=f"class {y}", clamp=True, width="stretch")
    st.plotly_chart(fig, key="ds_raster")


@st.cache_resource(max_entries=4, show_spinner=False)
def _preview_parts(key: tuple):
    """The preview's images, labels and input raster for a dataset config: made once, not on each
    of the Train page's runs (the panel sits on it, collapsed, while runs are watched)."""
    b = _bundle(key)
    cfg = RunConfig.from_dict(dict(key))
    n = min(N_PREVIEW, int(b.test_y.numel()))
    if n == 0:
        return None
    xb = b.decode(b.test_x[:n].cpu())
    images = [_sharp(np.clip(img, 0, 1)) for img in _images(b, xb)]
    if b.kind == "spikes":
        spikes = xb[0].float()                                          # [T, D]
        how = f"event frames of sample 0 ({b.frames} frames)"
    else:
        enc = "rate" if b.encoding == "direct" else b.encoding
        spikes = encode(xb[:1], cfg.timesteps, enc, generator=torch.Generator().manual_seed(0))[:, 0]
        how = f"{enc} encoding of sample 0 over T = {cfg.timesteps}" + (
            " (direct current shown as rate spikes)" if b.encoding == "direct" else "")
    r = spikes.T.bool().numpy()                                         # [inputs, T]
    active = np.flatnonzero(r.any(1))
    keep = active[np.linspace(0, len(active) - 1, min(len(active), 200)).astype(int)] if len(active) else active
    fig = viz.raster_figure(r[keep] if len(keep) else r[:1], title=f"{how}: {len(keep)} active inputs")
    return images, b.test_y[:n].tolist(), fig
