"""No rule id is a string or a branch outside its own rule package (issue #16): the app and the
engine ask the rule class (its declarations), never compare its name."""
import io
import re
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IDS = ("bptt", "stdp", "rstdp", "ssdp", "da_ssdp", "mps", "ip2")
# strings equal to a rule id that name something else (file -> tokens)
HOMONYMS = {"snncore/models/mps_net.py": {'"stdp"'}}   # MPS's STDP *mechanism* (ALGORITHMS_MPS 3b)
STRING = re.compile(r"^[A-Za-z]*('''|\"\"\"|'|\")(.*)\1$", re.S)


def hits(source: str) -> list[tuple[int, str]]:
    """(line, token) of every string literal (f-strings included) that is exactly a rule id;
    comments and docstrings that merely mention a rule are not hits."""
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.STRING:
            m = STRING.match(tok.string)
            if m and m.group(2).strip() in IDS:
                out.append((tok.start[0], tok.string))
    return out


def exempt(rel: str) -> bool:
    if rel == "snncore/rules/__init__.py":              # the registry
        return True
    return any(rel.startswith(f"snncore/rules/{i}/") or rel == f"snncore/rules/{i}.py" for i in IDS)


def test_the_checker_finds_quoted_ids_and_comparisons():
    assert hits('x = "ssdp"\n') and hits("x = 'ssdp'\n") and hits('if r == "ip2": pass\n')
    assert hits('ok = rule != f"bptt"\n') and hits('d = {"da_ssdp": 1}\n') and hits("t = ('stdp', 'mps')\n")
    assert not hits('k = f"lab_{rule}"\n') and not hits('# the "ssdp" rule\n')
    assert not hits('"""ssdp: a docstring"""\n') and not hits('x = "ssdp_window"\n')


def test_no_rule_id_outside_its_package():
    files = sorted(ROOT.glob("snncore/**/*.py")) + sorted(ROOT.glob("app_pages/**/*.py")) + [ROOT / "app.py"]
    bad = []
    for f in files:
        rel = f.relative_to(ROOT).as_posix()
        if exempt(rel):
            continue
        bad += [f"{rel}:{line}: {tok}" for line, tok in hits(f.read_text())
                if tok not in HOMONYMS.get(rel, ())]
    assert not bad, "rule ids named outside their rule package:\n" + "\n".join(bad)
