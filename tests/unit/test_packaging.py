"""The wheel ships the edgeclu.cluster collection where Ansible finds it, and `python -m edgeclu` works."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_contains_the_collection(tmp_path):
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path),
                    str(ROOT)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("edgeclu-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    # site-packages/ansible_collections/edgeclu/cluster: ansible-playbook finds it on sys.path
    tree = ROOT / "ansible_collections"
    expected = {p.relative_to(ROOT).as_posix() for p in tree.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert "ansible_collections/edgeclu/cluster/galaxy.yml" in expected
    assert "ansible_collections/edgeclu/cluster/roles/k3s_install/templates/k3s.service.j2" in expected
    missing = expected - names
    assert not missing, f"not in wheel: {sorted(missing)}"
    assert "edgeclu/cli/__init__.py" in names
    assert not any(n.startswith("tests/") for n in names)


def test_python_dash_m():
    r = subprocess.run([sys.executable, "-m", "edgeclu", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("edgeclu ")
