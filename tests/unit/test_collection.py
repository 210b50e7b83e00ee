"""The edgeclu.cluster collection as users get it: `edgeclu collection build`, then `ansible-galaxy collection
install` somewhere else, and its playbooks found by their FQCN from there alone."""

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml
from typer.testing import CliRunner

import edgeclu
from edgeclu.cli import app
from edgeclu.resources import collection_dir

BIN = Path(sys.executable).parent


def test_galaxy_version_is_edgeclus_version():
    assert yaml.safe_load((collection_dir() / "galaxy.yml").read_text())["version"] == edgeclu.__version__


def test_build_then_install_then_run_from_the_installed_copy(tmp_path):
    r = CliRunner().invoke(app, ["collection", "build", "--output-path", str(tmp_path / "dist")])
    assert r.exit_code == 0, r.output
    tarball = tmp_path / "dist" / f"edgeclu-cluster-{edgeclu.__version__}.tar.gz"
    assert f"built {tarball}" in " ".join(r.output.split())
    with tarfile.open(tarball) as tf:
        names = set(tf.getnames())
    assert {"MANIFEST.json", "meta/runtime.yml", "playbooks/site.yml", "plugins/module_utils/k3s.py",
            "roles/k3s_install/templates/k3s.service.j2"} <= names
    assert not [n for n in names if "__pycache__" in n]

    env = {**os.environ, "ANSIBLE_HOME": str(tmp_path / "ah"), "ANSIBLE_COLLECTIONS_PATH": str(tmp_path / "colls"),
           "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "False", "ANSIBLE_NOCOLOR": "1"}
    inst = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", str(tarball), "-p",
                           str(tmp_path / "colls")], capture_output=True, text=True, env=env, timeout=120)
    assert inst.returncode == 0, inst.stdout + inst.stderr
    listed = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "list", "edgeclu.cluster", "--format", "yaml"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert yaml.safe_load(listed.stdout) == {str(tmp_path / "colls/ansible_collections"): {
        "edgeclu.cluster": {"version": edgeclu.__version__}}}
    inv = tmp_path / "inventory.yml"
    inv.write_text(yaml.safe_dump({"k3s_cluster": {"children": {"server": {"hosts": {"s1": None}},
                                                                "agent": {"hosts": {"a1": None}}}}}))
    for playbook in ("site", "reset", "agent", "addons"):
        check = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inv), f"edgeclu.cluster.{playbook}",
                                "--syntax-check"], capture_output=True, text=True, env=env, timeout=120)
        assert check.returncode == 0, check.stdout + check.stderr


def test_build_into_a_file_is_one_line_error(tmp_path):
    (tmp_path / "f").write_text("")
    r = CliRunner().invoke(app, ["collection", "build", "-o", str(tmp_path / "f")])
    assert r.exit_code == 1
    assert r.output.strip().splitlines() == [f"error: {tmp_path / 'f'}: cannot create: File exists"]
