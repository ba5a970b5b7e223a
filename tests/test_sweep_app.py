"""AppTest flows of the Sweep page: a real tiny sweep (4 digits trials over lr x tau, run once for the
module through the CLI) opened from the URL and from the list of sweeps, its table, plots, CSV and
"Open in Train"; a bad grid's error next to Launch (the CLI's own line) launching nothing; the empty
state; a stopped sweep with a failed trial offering Resume and showing the reason."""
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests import app_util

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--dataset", "digits", "--rule", "bptt", "--epochs", "1", "--n-train", "64", "--hidden", "16",
        "--timesteps", "4", "--batch-size", "32", "--device", "cpu"]


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    runs = tmp_path_factory.mktemp("sweep_app") / "runs"
    env = {**os.environ, "SNNCORE_RUNS": str(runs), "PYTHONWARNINGS": "ignore", "SNNCORE_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "snncore", "sweep", *TINY, "--grid", "lr=1e-3,2e-2",
                        "--grid", "tau=2.0,3.0", "--name", "app test", "--json"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return runs, json.loads(r.stdout.strip().splitlines()[-1])


def open_page(query: dict | None = None) -> AppTest:
    return app_util.open_page("app_pages/sweep.py", query, timeout=60)


def titles(at) -> str:
    return " | ".join(json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart"))


def cli_error(args) -> str:
    """The one line `python -m snncore sweep` prints for these arguments (without 'error: ')."""
    from snncore.__main__ import main
    import io
    from contextlib import redirect_stderr
    buf = io.StringIO()
    with redirect_stderr(buf), pytest.raises(SystemExit):
        main(["sweep", *TINY, *args])
    return buf.getvalue().strip().removeprefix("error: ")


def test_the_sweep_id_flag_is_checked_before_anything_starts(runs_dir, capsys):
    """The page's Launch passes its own id (--sweep-id): a taken or malformed one exits 2."""
    from snncore.__main__ import main
    (runs_dir / "sweeps" / "sw-taken").mkdir(parents=True)
    (runs_dir / "sweeps" / "sw-taken" / "sweep.json").write_text("{}")
    for sid, msg in (("sw-taken", "a sweep with this id exists"), ("../x", "is not valid")):
        with pytest.raises(SystemExit) as e:
            main(["sweep", *TINY, "--grid", "lr=1e-3,2e-3", "--sweep-id", sid])
        assert e.value.code == 2 and msg in capsys.readouterr().err
    assert sorted(p.name for p in (runs_dir / "sweeps").iterdir()) == ["sw-taken"]


def test_no_sweeps_yet(runs_dir):
    at = open_page()
    assert any("No sweeps yet" in i.value for i in at.info)
    assert at.sidebar.button(key="sw_launch")


@pytest.mark.parametrize("axis,values,search", [
    ("lr", "", "grid"),                    # an empty value list
    ("epochs", "0", "grid"),               # out of range
    ("lr", "1e-4:1e-2:log", "grid"),       # a range with grid search
    ("tau", "2,x", "grid"),                # not a number
])
def test_bad_grid_shows_the_cli_message_and_launches_nothing(runs_dir, monkeypatch, axis, values, search):
    at = open_page()
    at.sidebar.selectbox(key="sw_ax0").set_value(axis)
    at.sidebar.text_input(key="sw_val0").set_value(values)
    at.sidebar.number_input(key="sw_seeds").set_value(1)
    for k, v in {"sw_epochs": 1, "sw_n_train": 64, "sw_timesteps": 4, "sw_batch_size": 32}.items():
        at.sidebar.number_input(key=k).set_value(v)
    at.sidebar.text_input(key="sw_hidden").set_value("16")
    at.sidebar.selectbox(key="sw_rule").set_value("bptt")
    at.sidebar.selectbox(key="sw_device").set_value("cpu")
    at.run()
    at.sidebar.button(key="sw_launch").click()
    at.run()
    assert not at.exception, at.exception
    opt = "--range" if ":" in values else "--grid"
    expected = cli_error([opt, f"{axis}={values}"])
    errors = [e.value for e in at.sidebar.error]
    assert errors == [f"Cannot launch: {expected}"], (errors, expected)
    assert not (runs_dir / "sweeps").exists() and "sweep" not in at.query_params


@pytest.mark.parametrize("device,gpus,flags", [
    ("cpu", 1.0, ["--device", "cpu", "--gpus-per-trial", "1"]),      # GPUs held by CPU trials
    ("cuda", 0.0, ["--device", "cuda"]),                                # a CUDA trial shown no GPU
    ("auto", 0.5, ["--gpus-per-trial", "0.5"]),                         # more GPU than this machine has
])
def test_bad_resources_show_the_cli_message_and_launch_nothing(runs_dir, device, gpus, flags):
    import torch
    if device == "auto" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    at = open_page()
    at.sidebar.selectbox(key="sw_device").set_value(device)
    at.sidebar.number_input(key="sw_gpus").set_value(gpus)
    at.run()
    at.sidebar.button(key="sw_launch").click()
    at.run()
    assert not at.exception, at.exception
    from snncore.__main__ import main
    import io
    from contextlib import redirect_stderr
    buf = io.StringIO()
    with redirect_stderr(buf), pytest.raises(SystemExit):
        main(["sweep", "--rule", "bptt", "--grid", "lr=1e-3,5e-3", *flags])
    expected = buf.getvalue().strip().removeprefix("error: ")
    assert [e.value for e in at.sidebar.error] == [f"Cannot launch: {expected}"]
    assert not (runs_dir / "sweeps").exists() and "sweep" not in at.query_params


def test_url_opens_the_sweep_with_table_plots_and_csv(swept, monkeypatch):
    runs, out = swept
    monkeypatch.setenv("SNNCORE_RUNS", str(runs))
    at = open_page({"sweep": out["sweep_id"]})
    assert at.selectbox(key="sw_pick").value == out["sweep_id"]
    assert any(f"`{out['sweep_id']}` · **finished** · 4 of 4 finished, 0 failed" in m.value for m in at.markdown)
    table = at.dataframe[0].value
    assert len(table) == 4 and set(table["status"]) == {"finished"} and list(table["progress"]) == [1.0] * 4
    assert sorted(zip(table["lr"], table["tau"])) == [(1e-3, 2.0), (1e-3, 3.0), (2e-2, 2.0), (2e-2, 3.0)]
    assert all(r.startswith("train?run=") for r in table["run"])
    text = titles(at)
    for t in ("hyperparameters → test_accuracy (4 finished trials)", "mean test_accuracy over lr × tau",
              "effect of lr", "effect of tau"):
        assert t in text, text
    dl = [d for d in at.get("download_button") if "CSV" in d.proto.label]
    assert dl
    best = out["best"]
    assert any("best single trial" in c.value and best["run_id"] in c.value for c in at.caption)
    assert any("mean test_accuracy" in m.value and "lr = " in m.value for m in at.markdown)


def test_open_in_train_prefills_the_form(swept, monkeypatch):
    runs, out = swept
    monkeypatch.setenv("SNNCORE_RUNS", str(runs))
    at = open_page({"sweep": out["sweep_id"]})
    point = next(m.value for m in at.markdown if "mean test_accuracy **" in m.value)
    lr = float(point.split("lr = ")[1].split(",")[0])
    tau = float(point.split("tau = ")[1].split(":")[0])
    at.button(key=f"sw_open_train_{out['sweep_id']}").click()
    at.run()
    assert not at.exception, at.exception
    assert at.sidebar.number_input(key="lr").value == pytest.approx(lr)
    assert at.sidebar.number_input(key="tau").value == pytest.approx(tau)
    assert at.sidebar.number_input(key="epochs").value == 1
    assert at.sidebar.text_input(key="hidden").value == "16"
    assert at.query_params["n_train"] in ("64", ["64"])


def test_the_list_of_sweeps_opens_one(swept, monkeypatch):
    runs, out = swept
    monkeypatch.setenv("SNNCORE_RUNS", str(runs))
    at = open_page()
    listing = at.dataframe[0].value
    assert list(listing["sweep"]) == [out["sweep_id"]] and listing["name"][0] == "app test"
    at.selectbox(key="sw_pick").set_value(out["sweep_id"])
    at.run()
    assert not at.exception
    assert at.query_params["sweep"] in (out["sweep_id"], [out["sweep_id"]])
    assert len(at.dataframe[0].value) == 4


def hand_made_sweep(runs_dir, sid, pid, records):
    """A sweep's state on disk as the engine writes it (tiny digits, lr over three values)."""
    from snncore.config import RunConfig
    from snncore.sweeps import engine
    from snncore.sweeps.spec import parse_spec
    spec = parse_spec(RunConfig.from_dict({"dataset": "digits", "rule": "bptt", "epochs": 1, "n_train": 64,
                                           "hidden": [16], "timesteps": 4}), ["lr=1e-3,5e-3,1e-2"], [])
    d = runs_dir / "sweeps" / sid
    (d / "trials").mkdir(parents=True)
    (d / "sweep.json").write_text(json.dumps({
        "sweep_id": sid, "name": "", "spec": spec.to_dict(), "options": dataclasses.asdict(engine.Options()),
        "status": "running", "pid": pid, "created": time.time() - 60, "seconds": 0.0, "n_trials": 3}))
    for r in records:
        (d / "trials" / f"{r['key']}.json").write_text(json.dumps({
            "run_id": None, "metric": None, "error": None, "node": "here", "point": {"lr": r["lr"]},
            "config": spec.apply({"lr": r["lr"]}), **r}))


def test_a_stopped_sweep_offers_resume_and_shows_why_a_trial_failed(runs_dir):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()                      # its driver: a pid that is no longer alive
    hand_made_sweep(runs_dir, "sw-stopped", dead.pid, [
        {"key": "00000", "index": 0, "lr": 1e-3, "status": "failed", "error": "RuntimeError: the loss diverged (nan)"},
        {"key": "00001", "index": 1, "lr": 5e-3, "status": "finished", "metric": 0.4}])
    at = open_page({"sweep": "sw-stopped"})
    assert any("The sweep stopped" in w.value and "Resume" in w.value for w in at.warning)
    assert any("the loss diverged (nan)" in e.value for e in at.error)
    table = at.dataframe[0].value
    assert list(table["status"]) == ["failed", "finished", "pending"]
    assert any("mean test_accuracy **0.4 (n=1)**" in m.value for m in at.markdown)
    # Resume starts `sweep --resume ID` in the background (killed here once seen)
    at.button(key="sw_resume_sw-stopped").click()
    at.run()
    assert not at.exception, at.exception
    from snncore.sweeps.launch import launch_info
    info = launch_info(runs_dir, "sw-stopped")
    try:
        assert info and info["command"][3:6] == ["sweep", "--resume", "sw-stopped"]
        assert any("**starting**" in m.value for m in at.markdown) or not launch_info(runs_dir, "sw-stopped")["alive"]
    finally:
        if info and info["alive"]:
            os.killpg(info["pid"], signal.SIGKILL)


def test_stop_sends_the_driver_sigint(runs_dir, tmp_path):
    got = tmp_path / "got_sigint"
    driver = subprocess.Popen([sys.executable, "-c", "import signal, sys, time\n"
                               f"signal.signal(signal.SIGINT, lambda *a: (open({str(got)!r}, 'w').write('1'), "
                               "sys.exit(0)))\nprint('ready', flush=True)\ntime.sleep(60)"], stdout=subprocess.PIPE)
    try:
        driver.stdout.readline()
        hand_made_sweep(runs_dir, "sw-live", driver.pid, [
            {"key": "00000", "index": 0, "lr": 1e-3, "status": "running"}])
        at = open_page({"sweep": "sw-live"})
        assert any("**running**" in m.value for m in at.markdown)
        at.button(key="sw_stop_sw-live").click()
        at.run()
        assert not at.exception, at.exception
        driver.wait(timeout=20)
        assert got.read_text() == "1"
    finally:
        driver.kill()
        driver.wait()


def test_an_unknown_sweep_id_says_so(runs_dir):
    at = open_page({"sweep": "sw-nope"})
    assert any("No sweep sw-nope" in w.value for w in at.warning)


def test_a_configs_sweep_shows_each_config_and_its_mean(runs_dir):
    """A sweep over whole configs (Compare's "repeat with N seeds" over two seed groups): the table
    names each trial's config, the best point is a config with its mean over its seeds, the effect
    plot is over the configs, and Open in Train takes that config."""
    from snncore.config import RunConfig
    from snncore.sweeps import engine
    from snncore.sweeps.spec import configs_spec
    tiny = {"dataset": "digits", "epochs": 1, "n_train": 64, "hidden": [16], "timesteps": 4}
    groups = [{**tiny, "rule": "bptt"}, {**tiny, "rule": "ssdp"}]
    spec = configs_spec([{**g, "seed": s} for g in groups for s in (0, 1)])
    sid = "sw-configs"
    d = runs_dir / "sweeps" / sid
    (d / "trials").mkdir(parents=True)
    (d / "sweep.json").write_text(json.dumps({
        "sweep_id": sid, "name": "", "spec": spec.to_dict(), "options": dataclasses.asdict(engine.Options()),
        "status": "finished", "pid": None, "created": time.time() - 60, "seconds": 12.0, "n_trials": 4}))
    acc = [0.5, 0.6, 0.8, 0.9]
    for i in range(4):
        (d / "trials" / f"{i:05d}.json").write_text(json.dumps({
            "key": f"{i:05d}", "index": i, "point": {"config": i, "seed": i % 2}, "run_id": None, "status": "finished",
            "metric": acc[i], "error": None, "node": "here", "config": spec.configs[i]}))
    at = open_page({"sweep": sid})
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert list(table["config"]) == ["rule=bptt", "rule=bptt", "rule=ssdp", "rule=ssdp"]
    assert list(table["seed"]) == [0, 1, 0, 1]
    assert any("config = rule=ssdp: mean test_accuracy **0.85 ±" in m.value and "over 2 trials" in m.value
               for m in at.markdown), [m.value for m in at.markdown]
    assert "effect of config" in titles(at)
    assert "test_accuracy over the configs" in [h.value for h in at.main.subheader]
    at.button(key=f"sw_open_train_{sid}").click()
    at.run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="rule").value == "ssdp" != RunConfig().rule
    assert at.query_params["n_train"] in ("64", ["64"])


def test_a_gpu_machine_is_told_its_gpus_stay_idle_without_gpus_per_trial(runs_dir, monkeypatch):
    """Device auto and GPUs per trial 0 on a machine with GPUs: Ray hides them from the trials,
    which train on the CPU; the sidebar says so next to Launch (device cpu: nothing to say)."""
    import torch
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    at = open_page()
    assert [w.value for w in at.sidebar.warning] == [
        "This machine: its 2 GPU(s) stay unused (the trials train on the CPU): give GPUs per trial to use them."]
    at.sidebar.selectbox(key="sw_device").set_value("cpu")
    at.run()
    assert not at.sidebar.warning and not at.exception


def test_show_a_recorded_quantity_over_the_hyperparameters(swept, monkeypatch):
    """"show" swaps the figures' quantity for a final value the runs recorded (their last epoch's
    test loss here); the CSV carries every final value beside the table."""
    from snncore.store import RunStore
    runs, out = swept
    monkeypatch.setenv("SNNCORE_RUNS", str(runs))
    sid = out["sweep_id"]
    at = open_page({"sweep": sid})
    box = at.selectbox(key=f"sw_q_{sid}")
    assert box.value == "test_accuracy" and {"test/loss", "train/loss"} <= set(box.options)
    box.set_value("test/loss")
    at.run()
    assert not at.exception, at.exception
    text = titles(at)
    for t in ("hyperparameters → test/loss (4 finished trials)", "mean test/loss over lr × tau"):
        assert t in text, text
    assert any(s.value == "final test/loss over the hyperparameters" for s in at.subheader)
    heat = next(f for f in (json.loads(c.proto.spec) for c in at.get("plotly_chart"))
                if f["layout"]["title"]["text"] == "mean test/loss over lr × tau")
    store = RunStore(runs)
    table = at.dataframe[0].value
    want = {(lr, tau): store.final_values(run.removeprefix("train?run="))["test/loss"]
            for lr, tau, run in zip(table["lr"], table["tau"], table["run"])}
    z = heat["data"][0]["z"]
    if isinstance(z, dict):            # plotly's typed array: base64 of the numpy buffer
        import base64
        import numpy as np
        shape = [int(n) for n in str(z["shape"]).split(",")]
        z = np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"]).reshape(shape).tolist()
    xs, ys = heat["data"][0]["x"], heat["data"][0]["y"]
    got = {(float(x), float(y)): z[i][j] for i, y in enumerate(ys) for j, x in enumerate(xs)}
    assert got == pytest.approx(want)
    csv = next(d for d in at.get("download_button") if "CSV" in d.proto.label)
    assert csv.proto.help.startswith("the table, then each finished trial's final values")


def test_a_sweep_over_rules_is_picked_on_the_page(runs_dir):
    """"rule" and another rule's hyperparameters are in the pickers: bptt against ssdp at two
    a_plus, 2 seeds, is 6 trials (bptt once per seed), and the command line says the same."""
    at = open_page()
    at.sidebar.selectbox(key="sw_rule").set_value("bptt")
    at.run()
    assert {"rule", "ssdp.a_plus", "da_ssdp.a_plus"} <= set(at.sidebar.selectbox(key="sw_ax0").options)
    at.sidebar.selectbox(key="sw_ax0").set_value("rule")
    at.sidebar.text_input(key="sw_val0").set_value("bptt,ssdp")
    at.sidebar.selectbox(key="sw_ax1").set_value("ssdp.a_plus")
    at.run()                                   # its values box is enabled once a name is picked
    at.sidebar.text_input(key="sw_val1").set_value("1e-4,1e-2")
    at.sidebar.number_input(key="sw_seeds").set_value(2)
    at.run()
    assert not at.exception, at.exception
    assert not at.sidebar.error, [e.value for e in at.sidebar.error]
    assert "6 trials" in [c.value for c in at.sidebar.caption]
    cmd = at.sidebar.code[0].value
    assert "--grid rule=bptt,ssdp --grid ssdp.a_plus=1e-4,1e-2 --seeds 2 --search grid" in cmd, cmd


def test_a_sweep_over_rules_shows_n_a_where_a_rule_lacks_the_hyperparameter(runs_dir):
    """The trials table (pending grid points too) says n/a for bptt's ssdp.a_plus."""
    from snncore.config import RunConfig
    from snncore.sweeps import engine
    from snncore.sweeps.spec import parse_spec
    spec = parse_spec(RunConfig.from_dict({"rule": "bptt", "epochs": 1}), ["rule=bptt,ssdp", "ssdp.a_plus=1e-4,1e-2"], [])
    d = runs_dir / "sweeps" / "sw-rules"
    (d / "trials").mkdir(parents=True)
    (d / "sweep.json").write_text(json.dumps({
        "sweep_id": "sw-rules", "name": "", "spec": spec.to_dict(), "options": dataclasses.asdict(engine.Options()),
        "status": "stopped", "pid": None, "created": time.time() - 60, "seconds": 1.0, "n_trials": 3}))
    at = open_page({"sweep": "sw-rules"})
    table = at.dataframe[0].value
    assert list(zip(table["rule"], table["ssdp.a_plus"])) == [("bptt", "n/a"), ("ssdp", "0.0001"), ("ssdp", "0.01")]
    assert set(table["status"]) == {"pending"}


def test_the_metric_offers_what_this_rule_records(swept, monkeypatch):
    """Beside the summary keys, the metric picker lists what the newest finished run of the base
    rule recorded (bptt here: the losses, rates and synchrony), and the command line carries it."""
    runs, out = swept
    monkeypatch.setenv("SNNCORE_RUNS", str(runs))
    at = open_page()
    at.sidebar.selectbox(key="sw_rule").set_value("bptt")
    at.run()
    box = at.sidebar.selectbox(key="sw_metric")
    assert list(box.options[:4]) == ["test_accuracy", "best_test_accuracy", "seconds", "steps"]
    assert "train/loss" in box.options and "test/accuracy" not in box.options
    box.set_value("train/loss")
    at.sidebar.selectbox(key="sw_mode").set_value("min")
    at.run()
    assert not at.exception and not at.sidebar.error, [e.value for e in at.sidebar.error]
    assert "--metric train/loss --mode min" in at.sidebar.code[0].value
