"""The teaching notebooks (notebooks/*.ipynb): stored without outputs, each with its lesson's parts,
identical to what notebooks/make_notebooks.py writes, and executed top to bottom at small sizes
(SNNCORE_NB_SMALL=1) into a temporary runs folder, failing on any error (their asserts included)."""
import importlib.util
import json
import os
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NB_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("*.ipynb"))
CELL_TIMEOUT = 240          # seconds per cell: the slowest small cell takes a few seconds alone


def _generator():
    spec = importlib.util.spec_from_file_location("make_notebooks", NB_DIR / "make_notebooks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_at_least_five_lessons():
    names = [p.name for p in NOTEBOOKS]
    assert len(names) >= 5, names
    for topic in ("stdp_from_scratch", "reward_modulated_stdp", "ssdp", "da_ssdp", "ip2"):
        assert any(topic in n for n in names), (topic, names)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_clean_with_the_lessons_parts(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for c in nb.cells:
        if c.cell_type == "code":
            assert c.outputs == [] and c.execution_count is None, f"{path.name}: stored with outputs"
        assert "attachments" not in c or not c.attachments
    md = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    src = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert re.search(r"<details>.*<summary>.*</summary>.*</details>", md, re.S), "an exercise with a folded answer"
    assert "### Exercise" in md
    assert _answer_code(nb), "the folded answer shows its code (executed by test_notebook_executes)"
    assert re.search(r"\$\$.+?\$\$", md, re.S), "at least one displayed equation"
    assert "What to expect" in md or "what to expect" in md
    assert "sc.train(" in src or "sc.lab.simulate(" in src, "a real run"
    assert ".figure(" in src or ".figures[" in src, "the app's figures"
    assert re.search(r"^\s*assert ", src, re.M), "claims checked by the notebook"
    assert "SNNCORE_NB_SMALL" in src, "honours the small-size switch"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_what_the_generator_writes(path):
    gen = _generator()
    assert path.name in gen.NOTEBOOKS, f"{path.name} is not in notebooks/make_notebooks.py"
    want = gen.build(path.name, gen.NOTEBOOKS[path.name])
    assert json.loads(nbformat.writes(want)) == json.loads(path.read_text()), \
        f"{path.name} differs from make_notebooks.py: run it and commit the result"


def _answer_code(nb) -> list[str]:
    """The ```python blocks inside the <details> of the markdown cells."""
    out = []
    for c in nb.cells:
        if c.cell_type == "markdown":
            for folded in re.findall(r"<details>(.*?)</details>", c.source, re.S):
                out += re.findall(r"```python\n(.*?)```", folded, re.S)
    return out


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """A kernelspec for this interpreter in a private folder (the venv's python, whatever kernels
    the user has), and the environment the kernels start with."""
    d = tmp_path_factory.mktemp("jupyter")
    spec = d / "kernels" / "snncore-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "snncore test", "language": "python"}))
    return d


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path, kernel_env, tmp_path, monkeypatch):
    from nbclient import NotebookClient
    runs = tmp_path / "runs"
    # the kernel inherits this environment: small sizes, a private runs folder, this checkout's
    # snncore (the venv's editable install may point at another checkout), a private kernelspec
    monkeypatch.setenv("SNNCORE_NB_SMALL", "1")
    monkeypatch.setenv("SNNCORE_RUNS", str(runs))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_env))
    monkeypatch.setenv("SNNCORE_THREADS", "1")
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    nb = nbformat.read(path, as_version=4)
    # the exercises' folded answers run too, after the lesson (so an answer cannot go stale)
    answers = _answer_code(nb)
    nb.cells.extend(nbformat.v4.new_code_cell(a) for a in answers)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="snncore-test",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()                      # raises CellExecutionError on the first failing cell
    # the lesson's runs went to the folder it was given, and they finished
    import snncore as sc
    listed = sc.runs(runs_dir=runs)
    if "sc.train(" in "".join(c.source for c in nb.cells):
        assert len(listed) >= 1 and set(listed["status"]) == {"finished"}, listed
    # every cell that ends on a figure shows it as a plotly figure (the app's own, not a picture)
    fig_cells = [c for c in nb.cells if c.cell_type == "code"
                 and re.match(r"^(\w+(\[[^]]+\])?\.(figure\(|figures\[).*|fig)$", c.source.strip().splitlines()[-1])]
    assert fig_cells
    for c in fig_cells:
        assert any("application/vnd.plotly.v1+json" in o.get("data", {}) for o in c.outputs), c.source
    # the first code cell says which sizes it used
    first = next(c for c in nb.cells if c.cell_type == "code")
    text = "".join(o.get("text", "") for o in first.outputs)
    assert "small sizes" in text and str(runs) in text
