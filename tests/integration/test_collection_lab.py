"""The collection path a user without the edgeclu CLI takes: `edgeclu collection build`, `ansible-galaxy
collection install` into a directory of its own, plain `ansible-playbook -i inventory.yml edgeclu.cluster.site`
with ANSIBLE_COLLECTIONS_PATH naming only that directory, on lab nodes (1 server, 1 agent, k3s = the stand-in
from the lab mirror with its pins); then `edgeclu up` on the same nodes finds nothing to change.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.k3s_standin.ansible_run import run_playbook
from tests.k3s_standin.fixtures import V1, k3s_mirror, k3s_releases  # noqa: F401

pytestmark = pytest.mark.lab


def test_installed_collection_converges_and_edgeclu_up_then_changes_nothing(fresh_lab, k3s_mirror, tmp_path):  # noqa: F811
    lab = fresh_lab(2)
    mirror = k3s_mirror(lab)
    inv = tmp_path / "inventory.yml"
    inv.write_text(lab.inventory_yaml(["node1"], ["node2"], user="edge", extra_vars={
        "k3s_version": V1, "token_file": str(tmp_path / "secrets" / "token"), **mirror.vars}))

    built = subprocess.run([sys.executable, "-m", "edgeclu", "collection", "build", "-o", str(tmp_path / "dist")],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    (tarball,) = (tmp_path / "dist").glob("edgeclu-cluster-*.tar.gz")
    colls = tmp_path / "colls"
    bindir = Path(sys.executable).parent
    inst = subprocess.run([str(bindir / "ansible-galaxy"), "collection", "install", str(tarball), "-p", str(colls)],
                          capture_output=True, text=True, timeout=300,
                          # not "already installed": the source tree's copy, on sys.path, does not count
                          env={**os.environ, "ANSIBLE_HOME": str(tmp_path / "ah"),
                               "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "False"})
    assert inst.returncode == 0, inst.stdout + inst.stderr

    # the harness runs the installed copy alone (ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=False: not the source tree's)
    first = run_playbook(inv, lab.known_hosts, collections=colls)
    assert first.rc == 0, first.output[-6000:]
    assert all(n > 0 for n in first.changed().values()), first.changed()
    assert lab.exec("node1", "systemctl is-active k3s edgeclu-agent").split() == ["active", "active"]
    assert lab.exec("node2", "systemctl is-active k3s-agent edgeclu-agent").split() == ["active", "active"]

    # edgeclu's own copy of the collection, through ansible-runner: the same result, so nothing to do
    env = dict(os.environ, KUBECONFIG=str(tmp_path / "kubeconfig"), COLUMNS="200")
    up = subprocess.run([sys.executable, "-m", "edgeclu", "up", "--full", "--json", "-i", str(inv)], env=env,
                        capture_output=True, text=True, timeout=600)
    assert up.returncode == 0, up.stderr[-6000:]
    doc = json.loads(up.stdout)
    assert doc["changed"] == 0, {h: v for h, v in doc["hosts"].items() if v["changed"]}
    assert "0 change(s)" in up.stderr
