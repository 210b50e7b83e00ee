"""`molecule test` (scenario molecule/default: driver "default", managed: false, no Docker) converges the
addons role on real lab nodes, then runs its idempotence and verify steps."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ansible_collections.edgeclu.cluster.plugins.module_utils import addons
from edgeclu.inventory import DEFAULTS, parse_inventory

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = DEFAULTS["addons_manifests_dir"]  # the addons role's default (its meta/argument_specs.yml)


def test_molecule_converges_the_addons_role_idempotently(lab3, tmp_path):
    cluster = {"k3s_version": "v1.31.4+k3s1", "ingress": "nginx", "loadbalancer": "metallb",
               "metallb_pool": ["10.77.0.200-10.77.0.210"]}
    # molecule runs plain Ansible, so the host-key policy goes in its inventory; edgeclu's own inventory may
    # not carry it (edgeclu passes it as extra-vars), so edgeclu reads the same inventory without it
    text = lab3.inventory_yaml(
        servers=["node1"], agents=["node2", "node3"], user="edge",
        extra_vars={**cluster, "ansible_ssh_common_args": f"-o UserKnownHostsFile={lab3.known_hosts} "
                                                          "-o StrictHostKeyChecking=yes -o BatchMode=yes"})
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(text)
    env = {**os.environ,
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
           "EDGECLU_MOLECULE_INVENTORY": str(inventory),
           "MOLECULE_EPHEMERAL_DIRECTORY": str(tmp_path / "molecule"),
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
           "NO_COLOR": "1", "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}
    run = subprocess.run(["molecule", "test"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=600)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    for step in ("syntax", "converge", "idempotence", "verify"):
        assert re.search(rf"default (➜|>) {step}: Executed: Successful", out), f"{step} missing:\n{out[-3000:]}"
    assert re.search(r"default\s+: actions=4\s+successful=4\s.*failed=0", out), out[-3000:]

    # independently of molecule's own verify: what is on node1 is what edgeclu renders
    edgeclu_text = lab3.inventory_yaml(servers=["node1"], agents=["node2", "node3"], user="edge", extra_vars=cluster)
    expected = addons.render_manifests(parse_inventory(edgeclu_text).vars, node_count=3)
    assert sorted(expected) == ["edgeclu-ingress-nginx.yaml", "edgeclu-metallb-pool.yaml", "edgeclu-metallb.yaml"]
    for name, content in expected.items():
        assert lab3.exec("node1", f"cat {MANIFESTS}/{name}") == content
    assert lab3.exec("node2", f"ls {MANIFESTS} 2>/dev/null || true") == ""
    assert yaml.safe_load(expected["edgeclu-metallb-pool.yaml"].split("---")[0])["spec"]["addresses"] == [
        "10.77.0.200-10.77.0.210"]
