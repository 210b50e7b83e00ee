"""`edgeclu backup`, `reset` and `restore` on lab nodes with the k3s stand-in, through the real CLI.

- embedded etcd (3 servers, real etcd): backup (a real etcd snapshot), reset (after a refused
  confirmation), restore -> the nodes and objects etcd held at backup time come back (a marker made
  before the backup is there, one made after it is not), and the three servers are etcd members again.
- SQLite (1 server): backup, a change, restore on the running cluster -> the change is undone.
"""

import hashlib
import json
import stat

import pytest

from tests.integration import real_clients
from tests.integration.lifecycle_util import (
    ETCDCTL,
    edgeclu,
    etcd_members,
    kube_nodes,
    ok,
    standin_state,
    write_inventory,
)
from tests.k3s_standin.fixtures import V1, k3s_mirror, k3s_releases  # noqa: F401

pytestmark = pytest.mark.lab

MARKER = """apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {{name: {name}}}
spec: {{maxUnavailable: 1, selector: {{matchLabels: {{app: marker}}}}}}
"""
POD = """apiVersion: v1
kind: Pod
metadata: {name: keep-me, labels: {app: keep}, ownerReferences: [{kind: ReplicaSet, name: keep-1}]}
spec: {nodeName: node3}
"""
K3S_PATHS = ("/usr/local/bin/k3s /etc/rancher/k3s /etc/rancher/node /var/lib/rancher/k3s "
             "/etc/systemd/system/k3s.service /etc/systemd/system/k3s-agent.service /opt/edgeclu /etc/edgeclu")


def _mode(p):
    return stat.S_IMODE(p.stat().st_mode)


def _left(lab, node):
    return lab.exec(node, f"for f in {K3S_PATHS}; do [ -e $f ] && echo $f; done; true").split()


def _create(lab, doc):
    lab.exec("node1", f"printf '%s' '{doc}' > /root/o.yaml && k3s kubectl create --validate=false -f /root/o.yaml")


def _pdbs(lab):
    return lab.exec("node1", "k3s kubectl get pdb -o name").split()


def test_backup_reset_restore_brings_the_cluster_back(fresh_lab, k3s_mirror, tmp_path):  # noqa: F811
    lab = fresh_lab(3)
    servers = ["node1", "node2", "node3"]
    inv = write_inventory(tmp_path, lab, k3s_mirror(lab), servers, [])
    ok(edgeclu(tmp_path, "up", "-i", str(inv)))
    members = lambda: etcd_members(lambda c: lab.exec("node1", c))  # noqa: E731 - `etcdctl member list`
    assert members() == servers
    lab.exec("node1", "k3s kubectl cordon node3")
    _create(lab, POD)
    _create(lab, MARKER.format(name="before-backup"))
    before = standin_state(lab)

    taken = ok(edgeclu(tmp_path, "backup", "-i", str(inv)))
    name = taken.stdout.strip()
    root = tmp_path / "backups"
    folder = root / name
    assert _mode(root) == 0o700 and _mode(folder) == 0o700
    files = sorted(p.name for p in folder.iterdir())
    snapshot = next(f for f in files if f.startswith("edgeclu-node1-"))
    assert files == sorted([snapshot, "meta.json", "node-passwords.json", "token"])
    assert {_mode(folder / f) for f in files} == {0o600}
    token = lab.exec("node1", "cat /var/lib/rancher/k3s/server/token").strip()
    assert (folder / "token").read_text().strip() == token and token not in taken.stdout + taken.stderr
    assert sorted(json.loads((folder / "node-passwords.json").read_text())) == ["node1", "node2", "node3"]
    assert lab.exec("node1", "k3s etcd-snapshot ls").count("\nedgeclu-node1-") == 1  # k3s keeps its copy too
    # what edgeclu fetched is k3s's copy, a real etcd snapshot (etcdctl reads it)
    kept = f"/var/lib/rancher/k3s/server/db/snapshots/{snapshot}"
    assert lab.exec("node1", f"sha256sum {kept}").split()[0] == hashlib.sha256((folder / snapshot).read_bytes()
                                                                               ).hexdigest()
    status = json.loads(lab.exec("node1", f"ETCDCTL_API=3 etcdctl snapshot status {kept} -w json"))
    assert status["totalKey"] >= 1 and status["revision"] > 1
    listed = ok(edgeclu(tmp_path, "backup", "--list"))
    assert listed.stdout.split()[:4] == [name, json.loads((folder / "meta.json").read_text())["created"], "etcd",
                                         before["nodes"]["node1"]["version"]]

    lab.exec("node1", "k3s kubectl uncordon node3")  # changes after the backup
    _create(lab, MARKER.format(name="after-backup"))
    assert _pdbs(lab) == ["poddisruptionbudget.policy/after-backup", "poddisruptionbudget.policy/before-backup"]

    no = edgeclu(tmp_path, "reset", "-i", str(inv), input="n\n")
    assert no.returncode == 1 and "nothing was changed" in no.stderr
    assert lab.exec("node2", "systemctl is-active k3s").strip() == "active"

    reset = ok(edgeclu(tmp_path, "reset", "--yes", "-i", str(inv)))
    assert "backup: " in reset.stderr and "edgeclu restore" in reset.stderr
    for node in ("node1", "node2", "node3"):  # the summary in words, per node
        assert f"  {node}: k3s uninstalled; node agent removed" in reset.stderr, reset.stderr[-3000:]
    assert len(ok(edgeclu(tmp_path, "backup", "--list")).stdout.splitlines()) == 2
    for node in ("node1", "node2", "node3"):
        assert _left(lab, node) == [], node
        assert lab.exec(node, "ls /var/lib/edgeclu 2>/dev/null; true").strip() in ("", "cluster.lock"), node
        assert lab.exec(node, "systemctl list-units --all --no-legend 'k3s*' 'edgeclu*'").strip() == "", node

    restored = ok(edgeclu(tmp_path, "restore", name, "--yes", "-i", str(inv)))
    assert "--cluster-reset --cluster-reset-restore-path=/var/lib/edgeclu/restore/" + snapshot in restored.stderr
    assert f"datastore restored from {name}" in restored.stderr and "node(s) Ready" in restored.stderr
    after = standin_state(lab)
    assert sorted(after["nodes"]) == sorted(before["nodes"]) == ["node1", "node2", "node3"]
    assert after["cluster"]["created"] == before["cluster"]["created"]  # the same cluster, not a new one
    assert after["pods"] == before["pods"]
    # the snapshot's objects: the marker made before the backup is back, the one made after it is not
    assert _pdbs(lab) == ["poddisruptionbudget.policy/before-backup"]
    # node1 restored a one-member etcd; node2 and node3 rejoined it as new members
    assert members() == servers
    assert lab.exec("node2", f"{ETCDCTL} endpoint health 2>&1").count("is healthy") == 1  # on stderr
    nodes = kube_nodes(lab)
    assert all(v["ready"] for v in nodes.values()), nodes
    assert nodes["node3"]["cordoned"]  # as it was when the backup was taken
    # the user's own kubectl, with the kubeconfig up merged before the reset: the restored cluster's CA
    assert real_clients.wait_ready_nodes(tmp_path / "kubeconfig", "lab", V1, {"node1", "node2", "node3"}) == \
        dict.fromkeys(("node1", "node2", "node3"), True)
    # staging cleaned, lock released; the restore's converge stamped the node (edgeclu/stamp.py)
    assert lab.exec("node1", "ls /var/lib/edgeclu") == "converged\n"


def test_sqlite_backup_restore_on_a_running_cluster(fresh_lab, k3s_mirror, tmp_path):  # noqa: F811
    lab = fresh_lab(1)
    inv = write_inventory(tmp_path, lab, k3s_mirror(lab), ["node1"], [])
    ok(edgeclu(tmp_path, "up", "-i", str(inv)))
    before = standin_state(lab)
    assert before["cluster"]["datastore"] == "sqlite"
    name = ok(edgeclu(tmp_path, "backup", "-i", str(inv), "--json"))
    doc = json.loads(name.stdout)
    assert doc["datastore"] == "sqlite" and doc["nodes"] == ["node1"]
    folder = tmp_path / "backups" / doc["name"]
    assert sorted(p.name for p in folder.iterdir()) == ["db.tar.gz", "meta.json", "node-passwords.json", "token"]
    assert lab.exec("node1", "ls /tmp | grep edgeclu-db || true") == ""  # the node-side copy is gone

    lab.exec("node1", "k3s kubectl cordon node1")
    assert kube_nodes(lab)["node1"]["cordoned"]
    ok(edgeclu(tmp_path, "restore", doc["name"], "--yes", "-i", str(inv)))
    nodes = kube_nodes(lab)
    assert nodes["node1"]["ready"] and not nodes["node1"]["cordoned"]
    assert standin_state(lab)["cluster"]["created"] == before["cluster"]["created"]
    assert json.loads(lab.exec("node1", "cat /var/lib/rancher/k3s/server/db.before-restore/standin-state.json")
                      )["nodes"]["node1"]["unschedulable"] is True  # the replaced datastore is kept
