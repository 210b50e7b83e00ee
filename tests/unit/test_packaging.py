"""The wheel ships playbooks/ and templates/, and `python -m edgeclu` works."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_contains_playbooks_and_templates(tmp_path):
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path),
                    str(ROOT)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("edgeclu-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for tree in ("playbooks", "templates"):
        expected = {f"edgeclu/_data/{p.relative_to(ROOT).as_posix()}"
                    for p in (ROOT / tree).rglob("*") if p.is_file() and "__pycache__" not in p.parts}
        assert expected, tree
        missing = expected - names
        assert not missing, f"not in wheel: {sorted(missing)}"
    assert "edgeclu/cli/__init__.py" in names
    assert not any(n.startswith("tests/") for n in names)


def test_python_dash_m():
    r = subprocess.run([sys.executable, "-m", "edgeclu", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("edgeclu ")
