"""AppTest flows of the Inspect page: a run from the URL, scrubbing checkpoints and weights, picking a
neuron (with the picker and with a click on the raster), uploading a checkpoint (and a malicious one),
unsupported and checkpoint-less runs."""
import json
import os
import pickle

import numpy as np
import pytest
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest

from snncore.viz import inspect as vi
from tests.test_inspect_cli import make_runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("inspect_app") / "runs"
    return root, make_runs(root)


def inspect_page_opener(root, monkeypatch):
    """open_page(run_id=None) -> the app switched to the Inspect page, reading the runs in `root`."""
    monkeypatch.setenv("SNNCORE_RUNS", str(root))

    def open_page(run_id=None):
        at = AppTest.from_file("../app.py", default_timeout=180)
        if run_id:
            at.query_params["run"] = run_id
        at.run()
        at.switch_page("app_pages/inspect_run.py")
        at.run()
        assert not at.exception, at.exception
        return at
    return open_page


@pytest.fixture
def page(runs, monkeypatch):
    return inspect_page_opener(runs[0], monkeypatch)


def titles(at) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


def test_run_from_url_shows_statistics_and_figures(page, runs):
    _, r = runs
    at = page(r["mlp"])
    assert at.selectbox(key="inspect_run").value == r["mlp"]
    assert not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert {"accuracy on these samples", "SynOps per sample", "vs a dense network", "activation sparsity"} <= set(metrics)
    table = at.dataframe[0].value
    assert table["layer"].tolist() == ["fc1"] and table.loc[0, "neurons"] == 32      # the read-out: a note
    t = " | ".join(titles(at))
    for want in ("fc1: firing rate", "fc1: CV of ISI", "fc1: Fano factor", "fc1 raster", "membrane and spikes",
                 "weight distribution at epoch 2", "fc1: weight histogram over training"):
        assert want in t, t


def test_pick_neuron_and_scrub_epochs(page, runs):
    _, r = runs
    at = page(r["mlp"])
    at.number_input(key="neuron_fc1").set_value(5).run()
    assert not at.exception
    assert any(x.startswith("fc1 neuron 5: membrane") for x in titles(at))
    stats = at.dataframe[1].value
    assert stats["statistic"].tolist()[0] == "rate (spk/step)"
    # the weights of epoch 1 and the checkpoint of epoch 1
    at.select_slider(key="weight_epoch").set_value(1).run()
    assert "weight distribution at epoch 1" in titles(at)
    at.select_slider(key=f"ck_{r['mlp']}").set_value(1).run()
    assert not at.exception
    assert any(f"run {r['mlp']}, epoch 1" in m.value for m in at.markdown)


def test_fewer_samples_changes_the_report(page, runs):
    _, r = runs
    at = page(r["mlp"])
    at.number_input(key="samples").set_value(8).run()
    assert not at.exception
    assert any("8 test samples" in m.value for m in at.markdown)


def test_unsupported_and_checkpointless_runs_say_why(page, runs):
    _, r = runs
    at = page(r["ip2"])
    assert at.error and "written before task checkpoints carried the recurrent network" in at.error[0].value
    at = page(r["empty"])
    assert at.error and "has no checkpoint yet" in at.error[0].value


def test_upload_checkpoint_and_refuse_a_malicious_one(page, runs, tmp_path):
    _, r = runs
    at = page()
    at.radio(key="source").set_value("a checkpoint file").run()
    assert at.info and "Upload a checkpoint" in at.info[0].value
    data = r["store"].checkpoints(r["mlp"])[-1][2].read_bytes()
    at.file_uploader(key="upload").upload("epoch00002.pt", data).run()
    assert not at.exception and not at.error
    assert any("uploaded epoch00002.pt" in m.value for m in at.markdown)
    assert "fc1 raster (click a spike to pick its neuron)" in titles(at)

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))
    at.file_uploader(key="upload").upload("evil.pt", pickle.dumps({"config": Evil()})).run()
    assert at.error and "is not a readable checkpoint" in at.error[0].value
    assert not marker.exists()


def click_raster(at, point: dict) -> AppTest:
    """Rerun as the browser does after a click on a raster spike: the chart's widget value becomes a
    points selection (AppTest has no plotly widget, so the state goes in beside the other widgets')."""
    chart = next(c for c in at.get("plotly_chart") if "raster" in json.loads(c.proto.spec)["layout"]["title"]["text"])
    ws = at._tree.get_widget_states()
    ws.widgets.append(WidgetState(id=chart.proto.id, string_value=json.dumps(
        {"selection": {"points": [point], "point_indices": [point["point_index"]], "box": [], "lasso": []}})))
    return at._run(widget_state=ws)


def test_click_on_a_raster_spike_picks_its_neuron(page, runs):
    _, r = runs
    at = page(r["mlp"])
    picker = at.number_input(key="neuron_fc1")
    first = picker.value
    other = 7 if first != 7 else 8
    at = click_raster(at, {"curve_number": 0, "point_number": 0, "point_index": 0, "x": 3, "y": other,
                           "customdata": other})
    assert not at.exception, at.exception
    assert at.number_input(key="neuron_fc1").value == other
    assert f"fc1 neuron {other}: membrane and spikes" in titles(at)
    # the picker moves away, then a click on the neuron clicked before wins again
    at.number_input(key="neuron_fc1").set_value(first).run()
    assert f"fc1 neuron {first}: membrane and spikes" in titles(at)
    at = click_raster(at, {"curve_number": 0, "point_number": 1, "point_index": 1, "x": 5, "y": other,
                           "customdata": other})
    assert at.number_input(key="neuron_fc1").value == other
    assert f"fc1 neuron {other}: membrane and spikes" in titles(at)


def test_raster_click_is_a_point_selection_in_streamlit():
    """Streamlit's chart forces clickmode "event" when dragmode is select/lasso, and then a click sends
    nothing: the raster must drag-zoom and click-select, with the neuron in customdata."""
    s = np.zeros((4, 2, 5), dtype=bool)
    s[1, 0, 2] = s[3, 1, 4] = s[0, 0, 4] = True
    fig = vi.raster_scatter(s, samples=2, selected=4)
    assert fig.layout.dragmode not in ("select", "lasso")
    assert "select" in fig.layout.clickmode.split("+")
    tr = fig.data[0]
    assert list(tr.customdata) == list(tr.y) and sorted(tr.y) == [2, 4, 4]
    assert sorted(zip(tr.x, tr.y)) == [(0, 4), (1, 2), (7, 4)]       # sample 1 starts at T=4
    assert sorted(fig.data[1].customdata) == [4, 4]                    # the selected neuron drawn in red


@pytest.mark.parametrize("event,want", [
    ({"selection": {"points": [{"customdata": 7, "y": 7}]}}, 7),
    ({"selection": {"points": [{"customdata": [3], "y": 3}]}}, 3),
    ({"selection": {"points": [{"y": 5.0}]}}, 5),
    ({"selection": {"points": [], "box": [], "lasso": []}}, None),
    (None, None),
    ({"selection": {"points": [{"customdata": "x"}]}}, None),
])
def test_neuron_from_selection(event, want):
    assert vi.neuron_from_selection(event) == want
