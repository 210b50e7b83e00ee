"""`edgeclu add` and `edgeclu remove` on lab nodes with the k3s stand-in, through the real CLI.

- add (a host found by mDNS discovery): the node joins and is Ready; the other nodes' services
  and files do not change.
- remove: a drain blocked by a PodDisruptionBudget is reported and rolled back; once the budget
  is gone the node is drained (its pods move), deleted, uninstalled and dropped from the inventory.
- three servers: removing one is refused (etcd would lose its failure tolerance); a powered-off
  server needs --force and then leaves kubectl, etcd and the inventory; a wiped machine is added
  back as a server by address.
"""

import json
import re
import time

import pytest

from tests.integration import real_clients
from tests.integration.lifecycle_util import (
    COMMENT,
    edgeclu,
    etcd_members,
    inventory_hosts,
    kube_nodes,
    ok,
    service_marks,
    standin_state,
    wait_for,
    write_inventory,
)
from tests.k3s_standin.fixtures import V1, k3s_mirror, k3s_releases  # noqa: F401

pytestmark = pytest.mark.lab

MANIFESTS = """
apiVersion: v1
kind: Pod
metadata: {name: web-a, labels: {app: web}, ownerReferences: [{kind: ReplicaSet, name: web-5d9c}]}
spec: {nodeName: node3}
---
apiVersion: v1
kind: Pod
metadata: {name: web-b, labels: {app: web}, ownerReferences: [{kind: ReplicaSet, name: web-5d9c}]}
spec: {nodeName: node2}
---
apiVersion: v1
kind: Pod
metadata: {name: db-0, labels: {app: db}, ownerReferences: [{kind: StatefulSet, name: db}]}
spec: {nodeName: node3}
---
apiVersion: v1
kind: Pod
metadata:
  {name: svclb-x, namespace: kube-system, labels: {app: svclb}, ownerReferences: [{kind: DaemonSet, name: svclb}]}
spec: {nodeName: node3}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web}
spec: {minAvailable: 1, selector: {matchLabels: {app: web}}}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: db}
spec: {maxUnavailable: 0, selector: {matchLabels: {app: db}}}
"""

K3S_FILES = ("/usr/local/bin/k3s", "/usr/local/bin/k3s-killall.sh", "/usr/local/bin/k3s-agent-uninstall.sh",
             "/usr/local/bin/k3s-uninstall.sh", "/etc/rancher/k3s", "/etc/rancher/node",  # k3s leaves /etc/rancher
             "/var/lib/rancher/k3s",
             "/etc/systemd/system/k3s-agent.service", "/etc/systemd/system/k3s.service",
             "/etc/systemd/system/edgeclu-agent.service", "/etc/sysusers.d/edgeclu-agent.conf", "/opt/edgeclu",
             "/etc/edgeclu")


def _pods(lab):
    state = standin_state(lab)
    return {k: p["node"] for k, p in state.get("pods", {}).items()}


def _present(lab, node):
    return lab.exec(node, "for f in " + " ".join(K3S_FILES) + "; do [ -e $f ] && echo $f; done; true").split()


def test_add_a_discovered_host_then_remove_it_past_a_disruption_budget(fresh_lab, k3s_mirror, tmp_path):  # noqa: F811
    lab = fresh_lab(3)
    inv = write_inventory(tmp_path, lab, k3s_mirror(lab), ["node1"], ["node2"])
    ok(edgeclu(tmp_path, "up", "-i", str(inv)))
    before = {n: service_marks(lab, n) for n in ("node1", "node2")}
    text = inv.read_text()

    # a machine that does not answer is refused by preflight, before anything is written
    ghost = edgeclu(tmp_path, "add", "10.77.0.99", "--name", "ghost", "-i", str(inv))
    assert ghost.returncode == 1 and "preflight failed on ghost; nothing was changed" in ghost.stderr
    assert inv.read_text() == text and not list(tmp_path.glob("inventory.yml.bak-*"))

    # node3: a fresh machine that announces itself the way Raspberry Pi OS does (avahi, _ssh._tcp)
    lab.exec("node3", "cp /usr/share/doc/avahi-daemon/examples/ssh.service /etc/avahi/services/ && "
                      "systemctl restart avahi-daemon")
    time.sleep(2)  # avahi probes its names again after a restart
    add = ok(edgeclu(tmp_path, "add", "node3", "-i", str(inv), "--json"))
    assert f"found node3 at {lab.nodes['node3'].ip}" in add.stderr
    assert "joined and is Ready" in add.stderr
    # the summary in words: only the new node, as a user would say it, and what to run next
    assert re.search(r"node3\s+.*installed k3s v\S+; joined as agent; node agent installed", add.stderr), add.stderr
    assert json.loads(add.stdout)["node"]["status"] == "changed"
    assert "kubectl --context " in add.stderr.split("next")[-1]
    assert inventory_hosts(inv) == {"server": ["node1"], "agent": ["node2", "node3"]}
    assert list(tmp_path.glob("inventory.yml.bak-*")) and inv.read_text().startswith(COMMENT)
    nodes = kube_nodes(lab)
    assert set(nodes) == {"node1", "node2", "node3"} and nodes["node3"]["ready"]
    assert lab.exec("node3", "systemctl is-active k3s-agent edgeclu-agent").split() == ["active", "active"]
    # ... and so says the user's own kubectl, with the kubeconfig up merged (TLS verified)
    assert real_clients.ready_nodes(tmp_path / "kubeconfig", "lab", V1) == dict.fromkeys(("node1", "node2", "node3"),
                                                                                         True)
    # only node3 was touched: same unit start times, PIDs and restart counts, same file mtimes
    assert {n: service_marks(lab, n) for n in ("node1", "node2")} == before

    # workloads on node3: web (budget allows 1 disruption), db (budget allows none), a DaemonSet pod
    # (--validate=false: the stand-in serves no OpenAPI schema for kubectl to validate against)
    lab.exec("node1", f"cat > /root/w.yaml <<'EOF'\n{MANIFESTS}\nEOF\n"
                      "k3s kubectl create --validate=false -f /root/w.yaml")
    t0 = time.monotonic()
    blocked = edgeclu(tmp_path, "remove", "node3", "-i", str(inv), "--drain-timeout", "6")
    assert blocked.returncode == 5, blocked.stderr[-4000:]
    assert time.monotonic() - t0 < 60
    assert ("would not move: default/db-0: PodDisruptionBudget default/db allows 0 disruptions "
            "(maxUnavailable 0; 1 healthy of 1)") in blocked.stderr
    assert "node3 could not be drained (1 pod(s) would not move); it is uncordoned again" in blocked.stderr
    assert "web-a" not in blocked.stderr.split("would not move")[-1]
    assert "  node3: cordon and drain: failed: 1 pod(s) would not move; uncordoned" in blocked.stderr  # its steps
    pods = _pods(lab)
    assert pods["default/db-0"] == "node3" and "default/web-a" not in pods  # web-a was evicted (moved)
    assert sorted(v for k, v in pods.items() if k.startswith("default/web-")) == ["node1", "node2"]
    nodes = kube_nodes(lab)
    assert set(nodes) == {"node1", "node2", "node3"} and not nodes["node3"]["cordoned"]
    assert inventory_hosts(inv)["agent"] == ["node2", "node3"]
    assert lab.exec("node3", "systemctl is-active k3s-agent").strip() == "active"

    # the budget is lifted: now the drain moves db-0 and node3 goes for good
    lab.exec("node1", "k3s kubectl delete pdb db")
    gone = ok(edgeclu(tmp_path, "remove", "node3", "-i", str(inv), "--json"))
    steps = [line for line in gone.stderr.splitlines() if line.startswith("  node3: ")]
    assert steps == ["  node3: cordon and drain: changed", "  node3: disable and stop k3s: changed",
                     "  node3: delete the Node object: changed", "  node3: uninstall k3s and the node agent: changed",
                     "  node3: drop it from the inventory: changed"], gone.stderr
    assert "would not move" not in gone.stderr
    assert set(kube_nodes(lab)) == {"node1", "node2"}
    assert real_clients.ready_nodes(tmp_path / "kubeconfig", "lab", V1) == {"node1": True, "node2": True}
    pods = _pods(lab)
    assert "node3" not in pods.values() and pods["default/db-0"] in ("node1", "node2")
    assert "kube-system/svclb-x" not in pods  # the DaemonSet pod went with node3
    assert inventory_hosts(inv) == {"server": ["node1"], "agent": ["node2"]}
    assert inv.read_text().startswith(COMMENT)
    assert _present(lab, "node3") == []
    assert lab.exec("node3", "systemctl list-units --all --no-legend 'k3s*' 'edgeclu*'").strip() == ""
    assert {n: service_marks(lab, n)["files"] for n in ("node1", "node2")} == {
        n: before[n]["files"] for n in ("node1", "node2")}


def test_three_servers_quorum_refusal_dead_server_and_replacement(fresh_lab, k3s_mirror, tmp_path):  # noqa: F811
    lab = fresh_lab(3)
    inv = write_inventory(tmp_path, lab, k3s_mirror(lab), ["node1", "node2", "node3"], [])
    ok(edgeclu(tmp_path, "up", "-i", str(inv)))
    members = lambda: etcd_members(lambda c: lab.exec("node1", c))  # noqa: E731 - `etcdctl member list`, real etcd
    assert members() == ["node1", "node2", "node3"]

    refused = edgeclu(tmp_path, "remove", "node3", "-i", str(inv))
    assert refused.returncode == 5, refused.stderr[-4000:]
    assert ("removing node3 would leave etcd unable to survive losing another server: 2 healthy of 2 etcd "
            "member(s) left, quorum needs 2 (now 3 members survive 1 failure(s)). Nothing was changed; "
            "--force removes it anyway") in " ".join(refused.stderr.split())
    assert members() == ["node1", "node2", "node3"]
    assert all(not v["cordoned"] for v in kube_nodes(lab).values())
    assert lab.exec("node3", "systemctl is-active k3s").strip() == "active"
    assert inventory_hosts(inv)["server"] == ["node1", "node2", "node3"]

    # k3s (and its etcd) stopped on two of the three servers: etcd has no quorum, the API refuses writes
    # with etcd's words, and edgeclu refuses to remove a server (its nodes read NotReady: no heartbeat
    # can be written)
    lab.exec("node2", "systemctl stop k3s")
    lab.exec("node3", "systemctl stop k3s")
    wait_for(lambda: not any(v["ready"] for v in kube_nodes(lab).values()), timeout=30, what="all NotReady")
    no_quorum = edgeclu(tmp_path, "remove", "node2", "-i", str(inv))
    assert no_quorum.returncode == 5, no_quorum.stderr[-3000:]
    assert ("removing node2 would break etcd quorum: 0 healthy of 2 etcd member(s) left, quorum needs 2. Nothing "
            "was changed") in " ".join(no_quorum.stderr.split())
    with pytest.raises(RuntimeError) as write:
        lab.exec("node1", "k3s kubectl label node node1 x=y")
    assert "Error from server (ServiceUnavailable): etcd" in str(write.value)
    lab.exec("node2", "systemctl start k3s")
    lab.exec("node3", "systemctl start k3s")
    wait_for(lambda: all(v["ready"] for v in kube_nodes(lab).values()), timeout=60, what="all Ready again")
    assert members() == ["node1", "node2", "node3"] and inventory_hosts(inv)["server"] == ["node1", "node2", "node3"]

    # node3 dies
    lab.stop("node3", hard=True)
    wait_for(lambda: not kube_nodes(lab)["node3"]["ready"], timeout=30, what="node3 NotReady")
    down = edgeclu(tmp_path, "remove", "node3", "-i", str(inv))
    assert down.returncode == 5 and "Use --force to remove it anyway" in down.stderr, down.stderr[-3000:]
    forced = ok(edgeclu(tmp_path, "remove", "node3", "--force", "-i", str(inv)))
    assert "node3 is unreachable" in forced.stderr and "skipping its drain and uninstall" in forced.stderr
    assert "etcd keeps quorum: 2 healthy of 2 etcd member(s) left, quorum needs 2" in forced.stderr
    assert "k3s is still installed on it" in forced.stderr
    assert set(kube_nodes(lab)) == {"node1", "node2"}
    assert members() == ["node1", "node2"]  # k3s removed node3's etcd member with its Node object
    assert inventory_hosts(inv) == {"server": ["node1", "node2"]}

    # the machine is repaired, wiped, and added back as a server by its address
    # (k3s is still enabled on it: on boot its etcd learns it was removed, k3s leaves a tombstone and,
    # restarted, rejoins with a fresh etcd data dir and registers node3 again before the wipe, so a Node
    # object named node3 is left whose node password the wiped machine no longer has)
    lab.start("node3")
    lab.wait_ssh([lab.nodes["node3"]])
    wait_for(lambda: "node3" in kube_nodes(lab), timeout=120, what="the old k3s on node3 registering again")
    # k3s's words (pkg/daemons/executor/embed.go: (*Embedded).ETCD writes the tombstone; pkg/etcd/etcd.go:
    # Register finds it on the next start)
    journal = lab.exec("node3", "journalctl -u k3s -o cat --no-pager")
    assert "This node has been removed from the cluster - please restart k3s to rejoin the cluster" in journal
    assert "tombstone file has been detected, removing data dir to rejoin the cluster" in journal
    lab.exec("node3", "/usr/local/bin/k3s-uninstall.sh >/dev/null 2>&1; true")
    back = ok(edgeclu(tmp_path, "add", lab.nodes["node3"].ip, "--role", "server", "-i", str(inv)))
    assert "node3 (server" in back.stderr
    assert ("node3 is in the cluster's node list from an earlier install" in back.stderr
            and "deleting that Node object" in back.stderr), back.stderr[-3000:]
    assert inventory_hosts(inv) == {"server": ["node1", "node2", "node3"]}
    nodes = kube_nodes(lab)
    assert set(nodes) == {"node1", "node2", "node3"} and nodes["node3"]["ready"] and "etcd" in nodes["node3"]["roles"]
    assert members() == ["node1", "node2", "node3"]
