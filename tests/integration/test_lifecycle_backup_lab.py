"""`edgeclu backup`, `reset` and `restore` on lab nodes with the k3s stand-in, through the real CLI.

- embedded etcd (2 servers + 1 agent): backup, reset (after a refused confirmation), restore ->
  the nodes the stand-in's store knew come back, with the state they had at backup time.
- SQLite (1 server): backup, a change, restore on the running cluster -> the change is undone.
"""

import json
import stat

import pytest

from tests.integration import real_clients
from tests.integration.lifecycle_util import edgeclu, kube_nodes, ok, standin_state, write_inventory
from tests.k3s_standin.fixtures import V1, k3s_mirror, k3s_releases  # noqa: F401

pytestmark = pytest.mark.lab

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


def test_backup_reset_restore_brings_the_cluster_back(fresh_lab, k3s_mirror, tmp_path):  # noqa: F811
    lab = fresh_lab(3)
    inv = write_inventory(tmp_path, lab, k3s_mirror(lab), ["node1", "node2"], ["node3"])
    ok(edgeclu(tmp_path, "up", "-i", str(inv)))
    lab.exec("node1", f"k3s kubectl cordon node3 && printf '%s' '{POD}' > /root/p.yaml && "
                      "k3s kubectl create --validate=false -f /root/p.yaml")
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
    assert sorted(json.loads((folder / snapshot).read_text())["nodes"]) == ["node1", "node2", "node3"]
    assert sorted(json.loads((folder / "node-passwords.json").read_text())) == ["node1", "node2", "node3"]
    assert lab.exec("node1", "k3s etcd-snapshot ls").count("\nedgeclu-node1-") == 1  # k3s keeps its copy too
    listed = ok(edgeclu(tmp_path, "backup", "--list"))
    assert listed.stdout.split()[:4] == [name, json.loads((folder / "meta.json").read_text())["created"], "etcd",
                                         before["nodes"]["node1"]["version"]]

    lab.exec("node1", "k3s kubectl uncordon node3")  # a change after the backup

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
    assert sorted(after["etcd_members"]) == ["node1", "node2"]
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
