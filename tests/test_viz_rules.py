"""snncore.viz.rules: the rule-specific figures build from small hand-made inputs."""
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from snncore.viz import rules as vr


def titles(fig):
    return fig.layout.title.text, fig.layout.xaxis.title.text, fig.layout.yaxis.title.text


def test_rebin_keeps_totals_and_moves_to_common_grid():
    grid = np.linspace(-1, 1, 5)                   # bins [-1,-.5), [-.5,0), [0,.5), [.5,1]
    c = vr.rebin(np.array([3, 4]), np.array([-0.5, 0.0, 0.5]), grid)
    np.testing.assert_allclose(c, [0, 3, 4, 0])
    c = vr.rebin(np.array([2, 5]), np.array([0.9, 0.95, 1.0]), grid)   # at the top edge: last bin
    np.testing.assert_allclose(c, [0, 0, 0, 7])
    c = vr.rebin(np.array([4]), np.array([-0.25, 0.25]), grid)         # split by overlap
    np.testing.assert_allclose(c, [0, 2, 2, 0])
    c = vr.rebin(np.array([1, 1, 1]), np.array([-0.75, -0.25, 0.25, 0.75]), grid)
    np.testing.assert_allclose(c, [0.5, 1, 1, 0.5])
    c = vr.rebin(np.array([6]), np.array([0.3, 0.3]), grid)             # zero width: by its centre
    np.testing.assert_allclose(c, [0, 0, 6, 0])


def test_weight_hist_figure_over_time():
    steps = [0, 10, 20]
    edges = [np.linspace(-0.1, 0.1, 41), np.linspace(-0.2, 0.1, 41), np.linspace(-0.2, 0.3, 41)]
    counts = [np.full(40, 5), np.arange(40), np.ones(40)]
    fig = vr.weight_hist_figure(steps, counts, edges, layer="fc1")
    assert isinstance(fig, go.Figure) and len(fig.data) == 1 and fig.data[0].type == "heatmap"
    z = np.asarray(fig.data[0].z)
    assert z.shape == (40, 3)
    np.testing.assert_allclose(z.sum(0), 1.0)                  # shares per snapshot
    y = np.asarray(fig.data[0].y)
    assert y.min() > -0.2 and y.max() < 0.3
    assert titles(fig) == ("weight histogram over time · fc1", "optimizer step (snapshot)", "weight")
    one = vr.weight_hist_figure([5], [np.ones(4)], [np.zeros(5)])   # degenerate range, one snapshot
    assert np.asarray(one.data[0].z).shape == (40, 1)
    assert len(vr.weight_hist_figure([], [], []).data) == 0   # nothing yet: an empty, titled figure


def test_stdp_window_figure():
    dt = np.arange(-3, 4)
    dw = np.array([-0.1, -0.2, -0.4, 0.1, 0.5, 0.3, 0.1])
    fig = vr.stdp_window_figure(dt, dw)
    assert len(fig.data) == 2
    ltp, ltd = (np.asarray(t.y, dtype=float) for t in fig.data)
    assert np.isnan(ltp[:3]).all() and np.nansum(ltp) == pytest.approx(1.0)
    assert np.nansum(ltd) == pytest.approx(-0.7)
    t, x, y = titles(fig)
    assert t == "STDP learning window" and "t_post" in x and y


def test_ssdp_kernel_and_latency_figures():
    dt = np.arange(5.0)
    fig = vr.ssdp_kernel_figure(dt, np.exp(-dt ** 2 / 2), sigma=1.0)
    assert len(fig.data) == 1 and fig.data[0].y[0] == 1.0
    assert titles(fig)[0].startswith("SSDP kernel G(dt)") and titles(fig)[2] == "G(dt)"
    pre = np.array([[0, 1, 4], [4, 4, 2]])                     # T = 4: 4 is silent
    post = np.array([[1, 1], [3, 4]])
    fig = vr.latency_figure(pre, post, 4, layer="out")
    assert len(fig.data) == 2
    assert list(fig.data[0].x) == ["0", "1", "2", "3", "silent"]
    np.testing.assert_allclose(fig.data[0].y, [1 / 6, 1 / 6, 1 / 6, 0, 3 / 6])
    np.testing.assert_allclose(fig.data[1].y, [0, 2 / 4, 0, 1 / 4, 1 / 4])
    assert titles(fig)[0] == "first-spike latency · out" and "latency" in titles(fig)[1]
    # lat is [samples, neurons]: the legend says neurons x samples, not "pairs"
    assert fig.data[0].name == "pre (3 neurons × 2 samples)" and fig.data[1].name == "post (2 neurons × 2 samples)"


def test_sync_loss_scatter_fitted_and_running():
    S = np.array([0.1, 0.2, 0.3, 0.4])
    L = np.array([2.0, 1.8, 1.5, 1.1])
    k, mu, sd = 0.989071, 0.25, 0.111803                         # fit_gate of these (ALGORITHMS_SSDP.md)
    fig = vr.sync_loss_figure(S, L, k=k, mu=mu, sd=sd, layer="out")
    assert len(fig.data) == 2                                   # points + fitted line
    xs, ys = vr.fit_line(S, L, k, mu, sd)
    ls_x, ls_y = vr.fit_line(S, L)                              # least squares: same line (k = -r)
    np.testing.assert_allclose(ys, ls_y, rtol=1e-5)
    assert ys[1] < ys[0]                                        # loss falls with synchrony
    note = fig.layout.annotations[0].text
    assert "k = 0.989" in note and "mu = 0.25" in note and "sd = 0.112" in note
    t, x, y = titles(fig)
    assert t == "synchrony vs loss (warm-up) · out" and x.startswith("synchrony S") and y == "training loss L"
    running = vr.sync_loss_figure(S, L)
    assert len(running.data) == 2 and "running r(S, L) = -0.989" in running.layout.annotations[0].text
    empty = vr.sync_loss_figure(np.zeros(0), np.zeros(0))
    assert len(empty.data) == 1


def test_gate_hist_shows_clipped_share():
    g = np.array([0.0, 0.5, 1.0, 1.0, 2.0, 1.5, 2.0, 0.9])
    fig = vr.gate_hist_figure(g, layer="fc2")
    assert len(fig.data) == 1 and fig.data[0].type == "bar"
    assert sum(fig.data[0].y) == g.size                          # every gate in a bar, 0 and 2 included
    t, x, y = titles(fig)
    assert "clipped at 0 or 2: 38%" in t and t.startswith("dopamine gate g · fc2") and x.startswith("gate g")
    assert not fig.layout.annotations or "saturated" not in str(fig.layout.annotations)
    assert "0%" in titles(vr.gate_hist_figure(np.ones(3)))[0]


def test_gate_hist_all_at_clip_two_is_drawn_inside_the_axis_and_said_in_words():
    """The DA-SSDP lesson: every gate sits at 2. The bar must lie inside the axis (it used to fall
    into a bin past the range and the panel was empty), and the panel says it is saturated."""
    fig = vr.gate_hist_figure(np.full(64, 2.0), layer="fc1")
    bar = fig.data[0]
    lo, hi = fig.layout.xaxis.range
    assert lo <= 0 and hi >= 2                                   # the full clip range [0, 2]
    full = [(x, y) for x, y in zip(bar.x, bar.y) if y]
    assert len(full) == 1 and full[0][1] == 64
    x, w = full[0][0], bar.width
    assert lo <= x - w / 2 and x + w / 2 <= hi and x + w / 2 == pytest.approx(2.0)
    notes = " ".join(a.text for a in fig.layout.annotations)
    assert "saturated: 100% of the gates sit at the clip 2" in notes
    assert "clipped at 0 or 2: 100%" in fig.layout.title.text
    low = vr.gate_hist_figure(np.zeros(10))
    assert low.data[0].y[0] == 10 and "clip 0" in " ".join(a.text for a in low.layout.annotations)


def test_assignment_heatmap_sorted_by_dominant_mechanism():
    A = np.array([[0.2, 0.7, 0.1, 0.5],
                  [0.7, 0.2, 0.1, 0.3],
                  [0.1, 0.1, 0.8, 0.2]])
    fig = vr.assignment_figure(A, ["bp", "hebb", "sbp"], layer="fc1")
    assert len(fig.data) == 1 and list(fig.data[0].y) == ["bp", "hebb", "sbp"]
    z = np.asarray(fig.data[0].z)
    np.testing.assert_allclose(z[:, 0], A[:, 1])                # bp-dominant, largest share first
    np.testing.assert_allclose(z[:, 1], A[:, 3])
    np.testing.assert_allclose(z[:, 2], A[:, 0])                # then hebb
    np.testing.assert_allclose(z[:, 3], A[:, 2])                # then sbp
    t, x, y = titles(fig)
    assert (t, y) == ("mechanism assignment · fc1", "mechanism")
    assert x == "neuron, sorted by dominant mechanism (bp 2, hebb 1, sbp 1)"


def test_shares_area_from_telemetry_columns():
    tel = pd.DataFrame({"share_bp/fc1": [0.4, 0.5], "share_hebb/fc1": [0.3, 0.3],
                        "share_sbp/fc1": [0.3, 0.2], "share_bp/out": [0.9, 0.9], "dw/fc1": [1, 2]},
                       index=pd.Index([0, 5], name="step"))
    assert vr.share_columns(tel, "fc1") == {"bp": "share_bp/fc1", "hebb": "share_hebb/fc1",
                                             "sbp": "share_sbp/fc1"}
    fig = vr.shares_area_figure(tel, "fc1", ["sbp", "bp", "hebb"])
    assert [t.name for t in fig.data] == ["sbp", "bp", "hebb"]
    assert all(t.stackgroup == "shares" for t in fig.data)
    assert titles(fig) == ("layer-mean shares over time · fc1", "optimizer step", "layer-mean share")
    # the first and last share of each mechanism in words (the MPS lesson quotes them)
    assert fig.layout.annotations[0].text == "step 0: sbp 0.30 · bp 0.40 · hebb 0.30<br>step 5: sbp 0.20 · bp 0.50 · hebb 0.30"
    assert len(vr.shares_area_figure(pd.DataFrame(), "fc1").data) == 0


def test_ip2_figures():
    import numpy as np
    from snncore.viz import rules as vr
    f = vr.intrinsic_hist_figure([(1, np.ones(8)), (5, np.arange(8.0))], "tau_d")
    assert len(f.data) == 2 and f.layout.xaxis.title.text == "tau_d (ms)"
    f = vr.pilot_scores_figure(["tau_d", "tau_s", "theta"], [30.0, 20.0, 40.0], "tau_s")
    assert list(f.data[0].marker.color)[1] == "#2ca02c" and f.data[0].text[1] == "chosen, frozen"


# ------------------------------------------------------------------------------- live views added
def test_spike_markers_first_and_last_by_hand():
    r = np.array([[0, 1, 1, 0, 1],      # first 1, last 4
                  [0, 0, 0, 0, 0],      # silent: no marker
                  [1, 0, 0, 0, 0],      # first = last = 0
                  [0, 0, 0, 1, 1]], dtype=bool)
    rows, t = vr.spike_markers(r)
    assert rows.tolist() == [0, 2, 3] and t.tolist() == [1, 0, 3]
    rows, t = vr.spike_markers(r, "last")
    assert rows.tolist() == [0, 2, 3] and t.tolist() == [4, 0, 4]
    with pytest.raises(ValueError, match="latency 'mid' is not allowed"):
        vr.spike_markers(r, "mid")
    with pytest.raises(ValueError, match=r"raster must be \[neurons, T\]"):
        vr.spike_markers(np.zeros(4, dtype=bool))


def test_ssdp_raster_figure_marks_first_spikes():
    pre = np.array([[0, 0, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0]], dtype=bool)     # 3 pre neurons, T = 4
    post = np.array([[0, 1, 0, 1], [0, 0, 0, 1]], dtype=bool)
    fig = vr.ssdp_raster_figure(pre, post, pre_ids=np.array([5, 9, 12]), post_ids=np.array([0, 3]), layer="out")
    by = {(t.name, t.yaxis): t for t in fig.data}
    spikes_pre, first_pre = by[("spikes", "y")], by[("first spike", "y")]
    spikes_post, first_post = by[("spikes", "y2")], by[("first spike", "y2")]
    assert spikes_pre.showlegend and not spikes_post.showlegend
    assert sorted(zip(spikes_pre.x, spikes_pre.y)) == [(0, 9), (1, 9), (2, 5), (3, 5)]
    assert sorted(zip(first_pre.x, first_pre.y)) == [(0, 9), (2, 5)]           # neuron 12 silent
    assert sorted(zip(spikes_post.x, spikes_post.y)) == [(1, 0), (3, 0), (3, 3)]
    assert sorted(zip(first_post.x, first_post.y)) == [(1, 0), (3, 3)]
    assert fig.layout.title.text == "raster with first-spike markers (one sample) · out"
    assert [a.text for a in fig.layout.annotations] == ["pre (input to W): 2 of 3 shown fired",
                                                        "post (driven by W): 2 of 2 shown fired"]
    assert list(fig.layout.yaxis.range) == pytest.approx([5 - 0.5 - 0.14, 12 + 0.5 + 0.14])
    last = vr.ssdp_raster_figure(pre, post, latency="last")                     # ids default 0..n-1
    lp = [t for t in last.data if t.name == "last spike" and t.yaxis == "y"][0]
    assert sorted(zip(lp.x, lp.y)) == [(1, 1), (3, 0)]
    silent_pre = vr.ssdp_raster_figure(np.zeros((3, 4), dtype=bool), post)     # legend moves to a row with spikes
    assert [t.showlegend for t in silent_pre.data] == [False, False, True, True]


def test_simplex_points_sum_to_one_and_groups_by_dominant_mechanism():
    A = np.array([[0.6, 0.2, 0.1, 1 / 3],
                  [0.3, 0.7, 0.1, 1 / 3],
                  [0.1, 0.1, 0.8, 1 / 3]])
    P = vr.simplex_points(A)
    np.testing.assert_allclose(P.sum(0), 1.0)
    old = np.full((3, 4), 1 / 3)
    fig = vr.simplex_figure(A, ["bp", "hebb", "sbp"], layer="fc1", history=[(0, old), (10, A)], trails=2)
    assert all(t.type == "scatterternary" for t in fig.data)
    pts = {t.name: t for t in fig.data if t.mode == "markers"}
    assert set(pts) == {"bp-dominant (2)", "hebb-dominant (1)", "sbp-dominant (1)"}
    for t in pts.values():
        abc = np.stack([t.a, t.b, t.c])
        np.testing.assert_allclose(abc.sum(0), 1.0)
        np.testing.assert_allclose(abc, A[:, list(t.customdata)])               # each point is its neuron
    assert list(pts["bp-dominant (2)"].customdata) == [0, 3]                     # a tie goes to the first
    mean = [t for t in fig.data if t.name == "layer mean over time"][0]
    np.testing.assert_allclose(mean.a, [1 / 3, A[0].mean()])
    np.testing.assert_allclose(mean.c, [1 / 3, A[2].mean()])
    assert list(mean.customdata) == [0, 10]
    assert len([t for t in fig.data if t.name == "neuron paths"]) == 2
    tern = fig.layout.ternary
    assert (tern.aaxis.title.text, tern.baxis.title.text, tern.caxis.title.text) == ("bp", "hebb", "sbp")
    assert fig.layout.title.text == "mechanism triangle · fc1"
    two = vr.simplex_figure(np.array([[0.25, 0.9], [0.75, 0.1]]), ["bp", "sbp"])   # two mechanisms: an edge
    c = np.concatenate([t.c for t in two.data])
    assert c.tolist() == [0.0, 0.0]
    assert len([t for t in vr.simplex_figure(A, ["bp", "hebb", "sbp"]).data if t.mode != "markers"]) == 0
    with pytest.raises(ValueError, match="needs 2 or 3 mechanisms, got 4"):
        vr.simplex_figure(np.full((4, 2), 0.25), list("abcd"))


def test_currents_figure_components_total_and_membrane():
    curr = np.zeros((3, 4, 2))
    curr[0, :, 0] = [1.0, 0.5, 0.0, 0.2]            # bp into neuron 0
    curr[1, :, 0] = [0.1, 0.1, 0.1, 0.1]
    curr[2, :, 1] = [0.3, 0.3, 0.3, 0.3]
    u = np.array([[1.1, 0.3], [0.6, 0.45], [0.1, 0.525], [0.35, 0.5625]])
    s = u >= 1.0
    fig = vr.currents_figure(curr, ["bp", "hebb", "sbp"], u=u, spikes=s, bias=[0.5, -0.1], neurons=[4, 9],
                             v_th=1.0, layer="fc1")
    rows = {}
    for t in fig.data:
        rows.setdefault(t.yaxis, {})[t.name] = t
    assert set(rows) == {"y", "y2"}
    r0, r1 = rows["y"], rows["y2"]
    assert {"bp: A·C", "hebb: A·C", "sbp: A·C", "total I", "membrane U", "spike", "V_th"} <= set(r0)
    np.testing.assert_allclose(r0["bp: A·C"].y, curr[0, :, 0])
    np.testing.assert_allclose(r0["total I"].y, [1.6, 1.1, 0.6, 0.8])         # sum of components + bias
    np.testing.assert_allclose(r1["total I"].y, [0.2] * 4)
    np.testing.assert_allclose(r0["membrane U"].y, u[:, 0])
    assert list(r0["spike"].x) == [0] and len(r1["spike"].x) == 0
    assert (fig.layout.yaxis.title.text, fig.layout.yaxis2.title.text) == ("neuron 4", "neuron 9")
    assert fig.layout.title.text == "component currents (one sample) · fc1"
    with pytest.raises(ValueError, match=r"curr must be \[K, T, neurons\]"):
        vr.currents_figure(np.zeros((3, 4)), ["bp"])


def test_ip2_trial_figures():
    u = np.array([[0.1, 0.4, 0.7], [0.0, 0.2, 0.1]])
    d = np.array([[0.5, 0.6, 0.7], [0.2, 0.2, 0.2]])
    fig = vr.trial_traces_figure(u, d, dt=100.0, theta=np.array([0.5, 0.6]), neurons=[3, 7])
    names = [t.name for t in fig.data]
    assert names == ["u · neuron 3", "d · neuron 3", "theta · neuron 3", "u · neuron 7", "d · neuron 7",
                     "theta · neuron 7"]
    assert list(fig.data[0].x) == [100.0, 200.0, 300.0]
    np.testing.assert_allclose(fig.data[4].y, d[1])
    assert list(fig.data[5].y) == [0.6, 0.6] and fig.data[1].line.dash == "dash"
    y = np.array([[2.0, 2.0, 0.0, 0.0, 0.0],        # fixation
                  [0.0, 0.0, 0.0, 3.0, 3.0],        # response 1
                  [0.0, 0.0, 0.0, 0.0, 0.0]])
    target = np.array([0, 0, 1, 1, 1])
    mask = np.array([1, 1, 0, 1, 1], dtype=bool)    # the grace step is not scored
    fig = vr.trial_readout_figure(y, target, mask, dt=10.0)
    tr = {t.name: t for t in fig.data}
    assert set(tr) == {"p(fixation)", "p(response 1)", "p(response 2)", "target fixation", "target response 1"}
    p = np.stack([tr[f"p({n})"].y for n in ("fixation", "response 1", "response 2")])
    np.testing.assert_allclose(p.sum(0), 1.0)
    e = np.exp(y - y.max(0))
    np.testing.assert_allclose(p, e / e.sum(0))
    assert list(tr["target fixation"].y) == [1, 1, 0, 0, 0] and list(tr["target response 1"].y) == [0, 0, 1, 1, 1]
    (rect,) = fig.layout.shapes
    assert (rect.x0, rect.x1) == (25.0, 35.0)        # step 3 (t = 30 ms) shaded
    assert fig.layout.title.text.startswith("one trial: read-out softmax(y) (solid) vs target (dashed)")
    assert [t.name for t in fig.data if t.showlegend is not False] == ["p(fixation)", "p(response 1)",
                                                                       "p(response 2)"]


# ------------------------------------------------------------------------------- ip2 learning-to-learn fit
def _legend_and_notes(fig):
    names = " ".join(str(t.name) for t in fig.data)
    notes = " ".join(a.text for a in (fig.layout.annotations or ()))
    return names, notes


@pytest.mark.parametrize("its, why", [
    ([647, 81, 117, 11, 56, 11], "beyond the 6 tasks seen"),       # the lesson's run: tau 5501.7, c -110528
    ([742, 160, 78, 66, 25, 10], "negative asymptote"),
    ([100, 10, 20, 30, 40, 50], "does not fall"),                    # slower and slower
    ([100, 20, 30, 20, 30, 20, 30, 20], "does not fall"),             # noise, no decay
    ([100, 50], "no fit"),
])
def test_l2l_fit_not_meaningful_is_labelled_not_printed(its, why):
    from snncore.rules.ip2 import l2l_fit
    from snncore.viz import l2l_figure, l2l_fit_verdict
    fit = l2l_fit(its) if len(its) >= 3 else (0.0, float("nan"), 50.0)
    _check_labelled(its, fit, why)


def test_l2l_fit_with_low_r2_is_labelled():
    its = [100, 60, 20, 50, 30, 55, 25, 45]          # a decaying curve explains little of this
    _check_labelled(its, (60.0, 2.0, 30.0), "poor fit (R²")


def _check_labelled(its, fit, why):
    from snncore.viz import l2l_figure, l2l_fit_verdict
    assert why in l2l_fit_verdict(its, fit)
    names, notes = _legend_and_notes(l2l_figure(its, fit=fit))
    assert "tau" not in names and "fit:" not in names               # no numbers of a bad fit
    assert "exponential fit not meaningful" in notes and why in notes
    assert len(l2l_figure(its, fit=fit).data) == 2                   # dots and moving mean, no fit line


def test_l2l_good_fit_is_drawn_with_its_numbers():
    from snncore.rules.ip2 import l2l_fit
    from snncore.viz import l2l_figure, l2l_fit_verdict
    its = [500, 400, 300, 200, 100, 50, 40, 35, 33, 32]
    fit = l2l_fit(its)
    assert l2l_fit_verdict(its, fit) is None
    fig = l2l_figure(its, fit=fit)
    names, notes = _legend_and_notes(fig)
    assert f"fit: tau {fit[1]:.1f} tasks" in names and "not meaningful" not in notes
    line = fig.data[-1]
    assert line.x[0] == 2 and line.x[-1] == len(its)
    assert list(fig.data[0].text) == [str(v) for v in its]        # each task's count at its dot
    assert fig.layout.yaxis.range[1] >= 1.1 * max(its)               # ... with room above the top one


def test_log_axis_of_dw_telemetry_has_full_labels():
    """A narrow log range used to be labelled by plotly '2, 0.001, 5 ...' (bare mantissas)."""
    from snncore.viz import log_ticks, telemetry_figure
    df = pd.DataFrame({"dw/fc1": [0.0021, 0.004, 0.0093], "dw/out": [np.nan, 0.003, 0.005]})
    fig = telemetry_figure(df, "dw", ["dw/fc1", "dw/out"])
    ax = fig.layout.yaxis
    assert ax.type == "log" and ax.tickmode == "array"
    vals, text = list(ax.tickvals), list(ax.ticktext)
    assert [float(t) for t in text] == pytest.approx(vals)           # each label is its own value
    assert "2e-3" in text and "5e-3" in text and "2" not in text and "5" not in text
    assert log_ticks([1e-6, 0.5])[1] == ["1e-6", "1e-5", "1e-4", "1e-3", "0.01", "0.1", "1"]
    assert log_ticks([0.0, np.nan]) == ([], [])


def test_pattern_weights_figure_shows_the_lessons_numbers():
    """STDP lesson: mean weight from pattern vs noise channels and neurons preferring the pattern."""
    pattern = np.array([True, True, False, False])
    W0 = np.zeros((3, 4))
    W1 = np.array([[0.4, 0.2, 0.1, 0.1],       # prefers the pattern (0.3 > 0.1)
                   [0.3, 0.3, 0.2, 0.2],       # prefers (0.3 > 0.2)
                   [0.3, 0.3, 0.5, 0.5]])      # prefers noise
    assert vr.pattern_preference(W1, pattern) == pytest.approx((0.3, 1.6 / 6, 2, 3))
    fig = vr.pattern_weights_figure([0, 10], [W0, W1], pattern, layer="fc1")
    p, n, pref = fig.data
    assert list(p.x) == [0, 10] and p.y[-1] == pytest.approx(0.3) and n.y[-1] == pytest.approx(1.6 / 6)
    assert list(pref.y) == [0, 2] and pref.yaxis == "y2"
    note = fig.layout.annotations[0].text
    assert "mean w 0.300 from pattern vs 0.267 from noise channels" in note and "2 of 3 neurons prefer" in note
    assert list(fig.layout.yaxis2.tickvals) == [0, 1, 2, 3]           # whole neurons, not 0.8, 1.5 ...
    assert fig.layout.title.text == "pattern vs noise channels · fc1"
    assert fig.layout.yaxis.title.text == "mean weight" and fig.layout.yaxis2.title.text == "neurons preferring"
    with pytest.raises(ValueError, match="both groups"):
        vr.pattern_preference(W1, np.ones(4, dtype=bool))


def test_ip2_telemetry_joins_task_loss_with_loss_and_target_with_mean_u2():
    from snncore.viz import telemetry_figure, telemetry_groups
    tel = pd.DataFrame({"loss": [1.0, 0.5], "l_task": [0.99, 0.49], "mean_u2": [0.2, 0.9], "sigma_h": [1.0, 1.0],
                        "sync/fc1": [0.1, 0.2]})
    g = telemetry_groups(tel)
    assert g == {"loss": ["loss", "l_task"], "mean_u2": ["mean_u2", "sigma_h"], "sync": ["sync/fc1"]}
    fig = telemetry_figure(tel, "loss", g["loss"])
    assert [t.name for t in fig.data] == ["loss", "l_task"] and "task loss" in fig.layout.title.text
    assert telemetry_groups(tel[["l_task"]]) == {"l_task": ["l_task"]}     # alone: its own chart
