"""Elapsed time of a resumed run counts its earlier session (it dropped to the new session's time)."""
import time

from snncore.config import RunConfig
from snncore.store import RunStore
from snncore.train import Trainer


def test_resumed_run_keeps_the_time_of_its_first_session(tmp_path, tiny):
    store = RunStore(tmp_path / "runs")
    cfg = RunConfig.from_dict({**tiny, "epochs": 2})
    rid = store.create_run(cfg.to_dict())
    tr = Trainer(cfg, store, rid)
    tr.on_progress = lambda p: p.test_accuracy is not None and store.request_stop(rid)
    first = tr.run()
    assert first["status"] == "stopped"
    first_s = store.elapsed(rid)
    assert abs(first_s - first["seconds"]) < 0.5
    time.sleep(1.5)                                    # a pause between the sessions: not running time
    store.reopen(rid)
    assert store.elapsed(rid) >= first_s - 0.05        # the page's elapsed does not drop at the resume
    tr2 = Trainer(RunConfig.from_dict(store.get_run(rid)["config"]), store, rid)
    tr2.resume()
    t = time.monotonic()
    s = tr2.run()
    second = time.monotonic() - t
    assert s["status"] == "finished"
    total = store.elapsed(rid)
    assert first_s + second - 0.3 <= total <= first_s + second + 1.0, (first_s, second, total)
    assert abs(s["seconds"] - total) < 0.5            # the summary (Compare's "seconds") agrees
