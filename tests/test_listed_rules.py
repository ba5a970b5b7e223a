"""Issue #16: outside rules in the app's lists (SNNCORE_RULES) and on Compare.

An import-path rule listed in SNNCORE_RULES is in every rule list (Train, Rule Lab when it has a
Rule Lab part); a listed path that does not load is left out and the app says why; runs of an
outside rule compare like any others (seed groups with their intervals)."""
import json

import pytest

from tests.app_util import open_page

from snncore.config import RunConfig
from snncore.rules import LIST_ENV, listed_rules, rule_names
from snncore.store import RunStore
from snncore.train import Trainer

TRIPLET = "examples.triplet_stdp:TripletSTDP"
LABBED = "tests.outside_lab_rule:LabbedSTDP"
BAD = "no_such_pkg.rules:Nope"


@pytest.fixture
def listed(monkeypatch):
    monkeypatch.setenv(LIST_ENV, f"{TRIPLET}, {LABBED}  {BAD},{TRIPLET}")


def test_listed_paths_join_the_rule_names_and_bad_ones_say_why(listed):
    from snncore import lab
    names = rule_names()
    assert names[-2:] == [TRIPLET, LABBED] and BAD not in names     # once each, in the given order
    ok, bad = listed_rules()
    assert ok == [TRIPLET, LABBED] and list(bad) == [BAD] and "module 'no_such_pkg' not found" in bad[BAD]
    assert LABBED in lab.RULES and TRIPLET not in lab.RULES           # Rule Lab: only rules with a lab part
    assert lab.spec(LABBED).title == "outside STDP (a test rule)"


def test_nothing_listed_by_default(monkeypatch):
    monkeypatch.delenv(LIST_ENV, raising=False)
    assert not any(":" in n for n in rule_names()) and listed_rules() == ([], {})


def test_train_and_rule_lab_list_them(listed, runs_dir):
    at = open_page("app_pages/train.py")
    assert TRIPLET in at.selectbox(key="rule").options
    assert any(BAD in w.value and "left out of the rule lists" in w.value for w in at.warning)
    at.selectbox(key="rule").set_value(TRIPLET).run()
    assert not at.exception and not at.error
    keys = {w.key for kind in ("number_input", "slider", "select_slider", "text_input", "selectbox")
            for w in at.get(kind)}
    assert f"rp_{TRIPLET}_a3_plus" in keys                           # its own hyperparameters in the form

    lab_at = open_page("app_pages/rule_lab.py")
    box = lab_at.sidebar.selectbox(key="lab_rule")
    assert "outside STDP (a test rule)" in box.options and len(box.options) == 7   # + the built-in six
    box.set_value(LABBED).run()
    assert not lab_at.exception
    assert [h.value for h in lab_at.subheader if h.value.startswith("outside STDP")]
    assert lab_at.query_params["lab_rule"] in (LABBED, [LABBED])
    linked = open_page("app_pages/rule_lab.py", {"lab_rule": LABBED})     # a link selects it in the list
    assert linked.sidebar.selectbox(key="lab_rule").value == LABBED
    assert not [w for w in linked.warning if "link" in w.value]


def _train(store: RunStore, seed: int, a3_plus: float) -> str:
    cfg = RunConfig.from_dict(dict(rule=TRIPLET, dataset="digits", epochs=1, n_train=128, timesteps=4,
                                   hidden=[32], batch_size=32, seed=seed, record_every=1000,
                                   rule_params={"a3_plus": a3_plus}))
    rid = store.create_run(cfg.to_dict())
    assert Trainer(cfg, store, rid).run()["status"] == "finished"
    return rid


def test_compare_groups_runs_of_an_outside_rule(runs_dir):
    import snncore as sc
    store = RunStore(runs_dir)
    a = [_train(store, s, 6.5e-3) for s in (0, 1)]
    b = [_train(store, 0, 2e-2)]
    table = sc.compare(a + b, runs_dir=runs_dir)
    acc = table[table["metric"] == "final_test_accuracy"] if "metric" in table else table
    assert sorted(acc["n"].tolist()) == [1, 2]                       # two groups: by a3_plus, over seeds
    assert sorted(acc["group"]) == [f"{TRIPLET} · a3_plus=0.0065", f"{TRIPLET} · a3_plus=0.02"]

    at = open_page("app_pages/compare.py", {"runs": ",".join(a + b)})
    assert at.multiselect(key="cmp_runs").value == a + b
    titles = " | ".join(json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart"))
    assert "test accuracy" in titles and "training loss" in titles
    final = at.dataframe[0].value
    assert len(final) == 3 and set(final["rule"]) == {TRIPLET}
    assert sorted(set(final["group"])) == sorted(acc["group"])


def test_the_sweep_page_takes_an_outside_rule_and_its_hyperparameters(runs_dir):
    at = open_page("app_pages/sweep.py")
    at.sidebar.text_input(key="sw_rule_path").set_value(TRIPLET).run()
    assert not at.exception and not at.sidebar.error
    assert "a3_plus (rule)" in at.sidebar.selectbox(key="sw_ax0").options
    at.sidebar.text_input(key="sw_rule_path").set_value("nope.mod:X").run()
    assert any("Your rule does not load" in e.value for e in at.sidebar.error)
