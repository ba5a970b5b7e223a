"""Spike statistics of Inspect: hand-computed cases, and ours against Elephant where both exist."""
import math

import neo
import numpy as np
import pytest
import quantities as pq
import torch
from elephant import statistics as es

from snncore import inspect as A
from snncore import metrics as M
from snncore.config import RunConfig
from snncore.store import RunStore
from snncore.train import Trainer


def spikes_from(times: dict, T: int, B: int, N: int) -> np.ndarray:
    """{(sample, neuron): [times]} -> bool [T, B, N]."""
    s = np.zeros((T, B, N), bool)
    for (b, n), ts in times.items():
        s[ts, b, n] = True
    return s


@pytest.fixture
def random_spikes():
    return np.random.default_rng(3).random((20, 6, 12)) < 0.25


def test_rates_hand_case_and_elephant(random_spikes):
    s = spikes_from({(0, 0): [0, 2, 5], (1, 0): [1, 2], (1, 1): [3]}, T=6, B=2, N=3)
    assert M.firing_rates(s).tolist() == pytest.approx([5 / 12, 1 / 12, 0.0])
    r = M.firing_rates(random_spikes)
    T, B, N = random_spikes.shape
    for n in range(N):   # Elephant: mean rate of the trains laid back to back, 1 step = 1 ms
        flat = random_spikes[:, :, n].T.reshape(-1)
        st = neo.SpikeTrain(np.nonzero(flat)[0] * pq.ms, t_stop=T * B * pq.ms)
        assert es.mean_firing_rate(st).rescale(1 / pq.ms).magnitude == pytest.approx(r[n])


def test_isi_within_samples_matches_elephant(random_spikes):
    s = spikes_from({(0, 0): [0, 2, 5], (1, 0): [1, 2], (1, 1): [3]}, T=6, B=2, N=3)
    isi = M.isi_per_neuron(s)
    assert sorted(isi[0].tolist()) == [1, 2, 3] and isi[1].size == 0 and isi[2].size == 0
    trains = M.spike_times(random_spikes)
    for n, got in enumerate(M.isi_per_neuron(random_spikes)):
        ref = np.concatenate([es.isi(t) for t in trains[n]])
        np.testing.assert_array_equal(np.sort(got), np.sort(ref))


def test_cv_hand_case_and_nan_when_undefined():
    s = spikes_from({(0, 0): [0, 2, 5], (1, 0): [1, 2], (0, 1): [1, 4]}, T=6, B=2, N=3)
    cv = M.isi_cv(s)
    isi = np.array([2.0, 3.0, 1.0])
    assert cv[0] == pytest.approx(isi.std() / isi.mean())          # sqrt(2/3) / 2
    assert math.isnan(cv[1]) and math.isnan(cv[2])                 # one interval; none
    regular = np.zeros((20, 1, 1), bool)
    regular[::4] = True
    assert M.isi_cv(regular)[0] == 0.0


def test_fano_hand_case_and_against_counts(random_spikes):
    # neuron 0: counts over 4 samples 3, 2, 0, 1 -> var 1.25 / mean 1.5
    s = spikes_from({(0, 0): [0, 1, 2], (1, 0): [0, 3], (3, 0): [5]}, T=6, B=4, N=2)
    f = M.fano_factors(s)
    assert f[0] == pytest.approx(1.25 / 1.5) and math.isnan(f[1])
    counts = random_spikes.sum(0)
    np.testing.assert_allclose(M.fano_factors(random_spikes), counts.var(0) / counts.mean(0))


def test_correlation_against_numpy_and_extremes(random_spikes):
    c = M.correlation_matrix(random_spikes)
    T, B, N = random_spikes.shape
    flat = random_spikes.transpose(2, 1, 0).reshape(N, B * T).astype(float)
    np.testing.assert_allclose(c, np.corrcoef(flat), atol=1e-12)
    same = np.repeat(random_spikes[:, :, :1], 3, axis=2)
    assert M.mean_pairwise_correlation(same) == pytest.approx(1.0)
    anti = np.concatenate([random_spikes[:, :, :1], ~random_spikes[:, :, :1]], axis=2)
    assert M.mean_pairwise_correlation(anti) == pytest.approx(-1.0)
    silent = np.zeros((5, 2, 4), bool)
    assert math.isnan(M.mean_pairwise_correlation(silent))


def test_synchrony_measures_order_synchronous_above_random(random_spikes):
    sync = np.zeros((10, 3, 8), bool)
    sync[[1, 4, 7]] = True
    assert M.spike_contrast_sync(sync) == pytest.approx(1.0)
    assert M.chi(sync) == pytest.approx(1.0)
    assert M.spike_contrast_sync(random_spikes) < 0.5 and M.chi(random_spikes) < 0.5
    assert math.isnan(M.spike_contrast_sync(np.zeros((5, 2, 4), bool)))


def test_silent_saturated_sparsity():
    s = np.zeros((10, 2, 4), bool)
    s[:, :, 1] = True               # saturated
    s[:9, :, 2] = True              # 90 %: saturated at the 0.9 line
    s[:2, 0, 3] = True              # 10 %
    rates = M.firing_rates(s)
    assert M.silent_saturated(rates) == (1, 2)
    assert M.sparsity(s) == pytest.approx(1 - rates.mean())
    assert M.sparsity(np.array([0.0, 0.5, 0.0, 0.0])) == 0.75


def test_synops_counts_events_times_fan_out():
    pre = np.zeros((2, 2, 3))
    pre[0, 0, 0] = pre[1, 0, 0] = 1         # sample 0: neuron 0 fires twice, neuron 2 once
    pre[1, 0, 2] = 1
    pre[0, 1, 1] = 1                        # sample 1: neuron 1 once
    w = np.array([[1.0, 0.0, 2.0], [0.5, 0.0, 0.0], [1.0, 3.0, 0.0], [0.2, 0.0, 0.0]])
    # fan-outs: 4, 1, 1 -> sample 0: 2*4 + 1 = 9; sample 1: 1 -> mean 5
    assert M.synops(pre, w) == 5.0
    with pytest.raises(ValueError, match="3 inputs"):
        M.synops(np.zeros((2, 2, 4)), w)


def test_pre_reset_membrane_reproduces_the_lif_spikes():
    from snncore.models.mlp import make_lif
    for v_reset in (0.0, -0.2):
        lif = make_lif(2.0, 1.0, v_reset, "sigmoid", 4.0)
        lif.store_v_seq = True
        x = torch.rand(12, 3, 5) * 1.5
        with torch.no_grad():
            s = lif(x)
        h = A.lif_pre_reset(x, lif.v_seq, lif)
        assert torch.equal(h >= 1.0, s.bool())
        # first step by hand: H = v_reset + (x - (v_reset - v_reset)) / tau
        torch.testing.assert_close(h[0], v_reset + x[0] / 2.0)


def test_weight_histograms_share_edges_and_sum_to_one():
    w = {1: {"fc1": np.array([[0.0, 1.0], [2.0, 3.0]])}, 2: {"fc1": np.array([[4.0, 4.0], [4.0, 4.0]])}}
    h = A.weight_histograms(w, bins=4)["fc1"]
    assert h["epochs"] == [1, 2] and h["edges"][0] == 0.0 and h["edges"][-1] == 4.0
    np.testing.assert_allclose(h["share"].sum(1), 1.0)
    assert h["share"][1, -1] == 1.0


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("an") / "runs")
    out = {}
    for name, kw in (("mlp", dict(epochs=2, timesteps=8, v_threshold=0.5, lr=0.02)),
                     ("mps", dict(rule="mps", model="mps_mlp", epochs=1, max_steps=2, timesteps=4))):
        cfg = RunConfig.from_dict(dict(dataset="digits", batch_size=64, hidden=[32], n_train=256,
                                       record_every=2, device="cpu") | kw)
        rid = store.create_run(cfg.to_dict())
        Trainer(cfg, store, rid).run()
        out[name] = (store, rid)
    return out


def test_record_network_matches_the_trained_model(trained):
    store, rid = trained["mlp"]
    state = A.load_checkpoint(A.run_checkpoint(store, rid)[2])
    rec = A.record_network(state, n_samples=20)
    fc1, out = rec.layers["fc1"], rec.layers["out"]
    assert fc1.post.shape == (8, 20, 32) and fc1.pre.shape == (8, 20, 64) and fc1.spiking
    assert not out.spiking and out.v.shape == (8, 20, 10)
    assert np.array_equal(fc1.v >= fc1.v_threshold, fc1.post)       # membrane before reset explains spikes
    assert np.array_equal(out.pre, fc1.post)
    np.testing.assert_array_equal(fc1.weight, state["model"]["fcs.0.weight"].numpy())
    assert rec.predictions.tolist() == out.v.mean(0).argmax(-1).tolist()
    stats = A.analyse(rec)
    assert stats["fc1"].synops == pytest.approx(fc1.pre.sum() / 20 * 32)   # dense: fan-out 32
    rep = A.report(rec, stats, "x")
    assert rep["layers"]["fc1"]["rate_mean"] == pytest.approx(fc1.post.mean())
    h = A.run_weight_histograms(store, rid)
    assert set(h) == {"fc1", "out"} and h["fc1"]["epochs"] == [1, 2]


def test_mps_runs_are_inspected_with_their_effective_weights(trained):
    store, rid = trained["mps"]
    state = A.load_checkpoint(A.run_checkpoint(store, rid)[2])
    rec = A.record_network(state, n_samples=10)
    assert set(rec.layers) == {"fc1", "out"} and all(l.spiking for l in rec.layers.values())
    assert np.array_equal(rec.layers["fc1"].v >= rec.layers["fc1"].v_threshold, rec.layers["fc1"].post)
    w = A.model_weights(state)
    assert w["fc1"].shape == (32, 64) and w["out"].shape == (10, 32)
    stats = A.analyse(rec)
    assert stats["out"].n_neurons == 10 and stats["fc1"].synops >= 0


def test_bad_checkpoints_raise_inspect_error(tmp_path):
    with pytest.raises(A.InspectError, match="does not exist"):
        A.load_checkpoint(tmp_path / "none.pt")
    with pytest.raises(A.InspectError, match="not a readable checkpoint"):
        A.load_checkpoint(b"garbage")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(A.InspectError, match="expected a dict"):
        A.load_checkpoint(tmp_path / "list.pt")
    with pytest.raises(A.InspectError, match="no run config"):
        A.record_network({"model": {}})
    cfg = RunConfig.from_dict(dict(dataset="digits", hidden=[8], timesteps=2)).to_dict()
    with pytest.raises(A.InspectError, match="do not fit"):
        A.record_network({"model": {"fcs.0.weight": torch.zeros(3, 3)}, "config": cfg})
