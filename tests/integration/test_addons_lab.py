"""The addons role on real lab nodes, through ansible-runner: manifests land on the first server only,
byte-identical to module_utils/addons.py, a re-run changes nothing, and add-ons no longer selected are
uninstalled (``k3s kubectl delete``) before their manifest is removed.

k3s itself cannot run here, and the lab's k3s stand-in has no ``kubectl delete``: the uninstall path
is checked against FAKE_K3S below, a test double that only records how it was called.
"""

import os
import shlex
import sys
from pathlib import Path

import pytest
import yaml

from ansible_collections.edgeclu.cluster.plugins.module_utils import addons
from edgeclu.inventory import DEFAULTS, parse_inventory
from edgeclu.resources import collections_path

pytestmark = pytest.mark.lab

MANIFESTS = DEFAULTS["addons_manifests_dir"]  # the addons role's default (its meta/argument_specs.yml)
CALLS = "/var/log/fake-k3s.calls"
FAKE_K3S = f"""#!/bin/sh
# TEST DOUBLE for k3s (edgeclu tests/integration/test_addons_lab.py): records its arguments only.
echo "$*" >> {CALLS}
if [ -e /etc/fake-k3s.fail ]; then
  echo "error: the server is currently unable to handle the request" >&2
  exit 1
fi
echo 'fake.k3s "x" deleted'
"""
METALLB = {"loadbalancer": "metallb", "metallb_pool": ["10.77.0.200 - 10.77.0.210"]}


def converge(lab, tmp_path, **cluster):
    """Run edgeclu.cluster.addons with ansible-runner; returns (runner, rendered manifests)."""
    import ansible_runner

    text = lab.inventory_yaml(servers=["node1"], agents=["node2", "node3"], user="edge",
                              extra_vars={"k3s_version": "v1.31.4+k3s1", **cluster})
    inv = tmp_path / "inventory.yml"
    inv.write_text(text)
    ssh = (f"-o UserKnownHostsFile={shlex.quote(str(lab.known_hosts))} -o StrictHostKeyChecking=yes "
           "-o BatchMode=yes -o ControlMaster=auto -o ControlPersist=30s")
    (tmp_path / "runner").mkdir(exist_ok=True)
    r = ansible_runner.run(
        private_data_dir=str(tmp_path / "runner"),
        playbook="edgeclu.cluster.addons", inventory=str(inv), quiet=True, suppress_env_files=True,
        envvars={"ANSIBLE_SSH_ARGS": ssh, "ANSIBLE_COLLECTIONS_PATH": str(collections_path()),
                 "ANSIBLE_INTERPRETER_PYTHON": "auto_silent",
                 "ANSIBLE_PIPELINING": "True", "ANSIBLE_SSH_CONTROL_PATH_DIR": str(tmp_path / "cp"),
                 "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])})
    return r, addons.render_manifests(parse_inventory(text).vars, node_count=3)


def changed(r) -> dict:
    return {h: n for h, n in (r.stats.get("changed") or {}).items() if n}


def on_disk(lab, node="node1") -> dict[str, str]:
    """``{file: 'mode content'}`` in the node's manifests directory (read without SSH)."""
    out = lab.exec(node, f"cd {MANIFESTS} 2>/dev/null || exit 0; "
                         "for f in *; do [ -e \"$f\" ] && printf '%s %s\\0' \"$f\" $(stat -c %a \"$f\"); done")
    files = {}
    for entry in filter(None, out.split("\0")):
        name, mode = entry.rsplit(" ", 1)
        files[name] = (mode, lab.exec(node, f"cat {MANIFESTS}/{name}"))
    return files


@pytest.fixture
def clean(lab3):
    for node in lab3.nodes:
        lab3.exec(node, f"rm -rf {MANIFESTS} /usr/local/bin/k3s {CALLS} /etc/fake-k3s.fail")
    return lab3


def test_manifests_on_the_first_server_only_then_nothing_changes(clean, tmp_path):
    lab = clean
    r, rendered = converge(lab, tmp_path, **METALLB, addons=["cert-manager"])
    assert r.rc == 0, r.stdout.read()[-3000:]
    assert sorted(rendered) == ["edgeclu-cert-manager.yaml", "edgeclu-metallb-pool.yaml", "edgeclu-metallb.yaml",
                                "edgeclu-traefik-config.yaml"]
    assert on_disk(lab) == {name: ("600", text) for name, text in rendered.items()}
    # an add-on named in `addons` reaches the role (its HelmChart: the chart's repository and version)
    (cert_manager,) = yaml.safe_load_all(on_disk(lab)["edgeclu-cert-manager.yaml"][1])
    spec = cert_manager["spec"]
    assert (spec["repo"], spec["chart"]) == ("https://charts.jetstack.io", "cert-manager")
    assert yaml.safe_load(spec["valuesContent"]) == {"crds": {"enabled": True}}
    assert lab.exec("node1", f"stat -c '%a %U' {MANIFESTS}").strip() == "700 root"
    assert on_disk(lab, "node2") == {} and on_disk(lab, "node3") == {}
    assert set(changed(r)) == {"node1"}

    again, _ = converge(lab, tmp_path, **METALLB, addons=["cert-manager"])
    assert again.rc == 0
    assert changed(again) == {}


def test_add_ons_no_longer_selected_are_uninstalled_then_removed(clean, tmp_path):
    lab = clean
    lab.exec("node1", f"cat > /usr/local/bin/k3s <<'EOF'\n{FAKE_K3S}EOF\nchmod 755 /usr/local/bin/k3s")
    r, _ = converge(lab, tmp_path, **METALLB)
    assert r.rc == 0
    lab.exec("node1", f"echo 'kind: ConfigMap' > {MANIFESTS}/my-app.yaml")  # the user's own manifest
    assert lab.exec("node1", f"cat {CALLS} 2>/dev/null || true") == ""  # nothing was stale

    r, rendered = converge(lab, tmp_path, ingress="nginx")
    assert r.rc == 0, r.stdout.read()[-3000:]
    assert on_disk(lab) == {"edgeclu-ingress-nginx.yaml": ("600", rendered["edgeclu-ingress-nginx.yaml"]),
                            "my-app.yaml": ("644", "kind: ConfigMap\n")}
    stale = ["edgeclu-metallb-pool.yaml", "edgeclu-metallb.yaml", "edgeclu-traefik-config.yaml"]
    assert lab.exec("node1", f"cat {CALLS}").splitlines() == [
        *(f"kubectl delete --ignore-not-found --wait=false -f {MANIFESTS}/{f}" for f in stale),
        *(f"kubectl -n kube-system delete addon --ignore-not-found {f.removesuffix('.yaml')}" for f in stale),
    ]

    again, _ = converge(lab, tmp_path, ingress="nginx")
    assert again.rc == 0 and changed(again) == {}
    assert len(lab.exec("node1", f"cat {CALLS}").splitlines()) == 6


def test_a_failed_uninstall_keeps_the_manifest_for_the_next_run(clean, tmp_path):
    lab = clean
    lab.exec("node1", f"cat > /usr/local/bin/k3s <<'EOF'\n{FAKE_K3S}EOF\nchmod 755 /usr/local/bin/k3s")
    r, _ = converge(lab, tmp_path, **METALLB)
    assert r.rc == 0
    lab.exec("node1", "touch /etc/fake-k3s.fail")

    r, _ = converge(lab, tmp_path)
    assert r.rc != 0
    assert r.stats["failures"] == {"node1": 1}
    assert "unable to handle the request" in r.stdout.read()
    assert {"edgeclu-metallb.yaml", "edgeclu-metallb-pool.yaml"} <= set(on_disk(lab))

    lab.exec("node1", "rm /etc/fake-k3s.fail")
    r, _ = converge(lab, tmp_path)
    assert r.rc == 0
    assert sorted(on_disk(lab)) == ["edgeclu-traefik-config.yaml"]
