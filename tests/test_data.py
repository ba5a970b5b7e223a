import torch

from snncore.config import RunConfig
from snncore.data import load_dataset
from snncore.data.encode import encode


def test_encoders():
    x = torch.tensor([[0.0, 0.5, 1.0]])
    r = encode(x, 1000, "rate", generator=torch.Generator().manual_seed(0))
    assert r.shape == (1000, 1, 3) and set(r.unique().tolist()) <= {0.0, 1.0}
    assert r[:, 0, 0].sum() == 0 and r[:, 0, 2].sum() == 1000 and 400 < r[:, 0, 1].sum() < 600
    lat = encode(x, 5, "latency")
    assert lat[:, 0, 0].sum() == 0 and lat[0, 0, 2] == 1 and lat[2, 0, 1] == 1 and lat.sum() == 2
    d = encode(x, 3, "direct")
    assert torch.equal(d[2], x)


def test_digits_and_synthetic_bundles():
    b = load_dataset(RunConfig())
    assert b.input_size == 64 and b.n_classes == 10 and b.train_y.numel() + b.test_y.numel() == 1797
    x, y = next(b.batches("train", 32, 8, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert x.shape == (8, 32, 64) and y.shape == (32,)
    cfg = RunConfig.from_dict({"dataset": "synthetic", "syn_noise": 0.0, "syn_sync": 1.0, "timesteps": 10})
    s = load_dataset(cfg)
    assert s.kind == "spikes" and s.train_x.shape == (cfg.syn_samples, 10, cfg.syn_channels)
    # with no noise and full synchrony each sample is exactly its group firing once, at one time
    x0, y0 = s.train_x[0], int(s.train_y[0])
    t, ch = x0.nonzero(as_tuple=True)
    assert len(set(t.tolist())) == 1
    assert sorted(ch.tolist()) == [(y0 * cfg.syn_group + k) % cfg.syn_channels for k in range(cfg.syn_group)]


def test_chi_synchrony_extremes():
    from snncore.metrics import chi_synchrony
    g = torch.Generator().manual_seed(0)
    col = (torch.rand(200, 3, 1, generator=g) < 0.3).float()
    assert abs(float(chi_synchrony(col.expand(200, 3, 50))) - 1.0) < 1e-5        # identical trains
    indep = (torch.rand(2000, 2, 400, generator=g) < 0.2).float()
    assert float(chi_synchrony(indep)) < 0.1                                     # ~ 1/sqrt(N)
    assert float(chi_synchrony(torch.zeros(10, 2, 5))) == 0.0                    # nothing varies
    # hand case: two neurons, T=4: a = 1100, b = 1000 -> P = [1, .5, 0, 0]
    s = torch.tensor([[1., 1.], [1., 0.], [0., 0.], [0., 0.]]).view(4, 1, 2)
    var_p = torch.tensor([1., .5, 0., 0.]).var(unbiased=False)
    mean_var = (0.25 + 0.1875) / 2
    assert abs(float(chi_synchrony(s)) - float((var_p / mean_var).sqrt())) < 1e-6


def test_l2l_tasks_is_a_task_family_in_the_data_package():
    """The IP2 task family lives in snncore.data.l2l_tasks (re-exported at the rule's path); it has
    no fixed samples, so load_dataset names the generator instead of building a bundle."""
    import pytest

    import snncore.rules.ip2 as ip2
    from snncore.data import BUILTIN, TASK_SETS, l2l_tasks
    assert "l2l_tasks" in BUILTIN and "l2l_tasks" in TASK_SETS
    assert ip2.make_family is l2l_tasks.make_family and ip2.TaskFamily is l2l_tasks.TaskFamily
    cfg = RunConfig.from_dict({"rule": "ip2"})
    assert cfg.dataset == "l2l_tasks"
    with pytest.raises(ValueError, match="no fixed samples.*make_family"):
        load_dataset(cfg)
    x, target, mask = l2l_tasks.make_family("dms", seed=3).new_task().batch(4, torch.Generator().manual_seed(0))
    assert x.shape == (20, 4, l2l_tasks.STIM_DIM + 1) and target.shape == mask.shape == (20, 4)
    assert not mask[15].any() and mask[16:].all() and (target[:15] == 0).all()



def test_digits_split_cache(tmp_path, monkeypatch):
    """The digits split is cached in the user's cache folder after the first load: later loads
    give the same arrays as scikit-learn's split without importing it; a damaged cache is rebuilt;
    an unwritable folder only skips the cache; the data folder is never written."""
    import os
    import subprocess
    import sys

    import numpy as np

    from snncore.data import digits
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    built = digits._build()
    first = digits.split_arrays()
    cache = tmp_path / "cache" / "snncore" / digits.CACHE
    assert cache.is_file()
    for k in digits._KEYS:
        assert np.array_equal(first[k], built[k]) and first[k].dtype == built[k].dtype
    b = load_dataset(RunConfig.from_dict({"data_dir": str(tmp_path / "data")}))
    assert torch.equal(b.test_y, torch.from_numpy(built["yte"])) and b.train_x.shape == (1437, 64)
    assert not (tmp_path / "data").exists()
    # a fresh process loads it from the cache: scikit-learn is never imported
    code = ("import sys; from snncore.data.digits import load_digits; b = load_digits(); "
            "print(int(b.test_y.sum()), 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert out.stdout.split() == [str(int(built["yte"].sum())), "False"]
    cache.write_bytes(cache.read_bytes()[:100])                     # truncated: rebuilt, not trusted
    again = digits.split_arrays()
    assert np.array_equal(again["xte"], built["xte"]) and np.load(cache)["xte"].shape == (360, 64)
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o500)
    try:
        got = digits.split_arrays(ro / "snncore")
        assert np.array_equal(got["ytr"], built["ytr"])
        assert os.access(ro, os.W_OK) or not (ro / "snncore").exists()   # root ignores the mode
    finally:
        os.chmod(ro, 0o700)
