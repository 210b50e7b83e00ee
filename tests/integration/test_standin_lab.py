"""The k3s stand-in as real systemd services on lab nodes, driven over SSH (no Ansible).

What the provisioning and lifecycle code relies on: the token and kubeconfig at k3s's
paths, TLS and client certificates on 6443, agents that must present the right token (and the
right CA hash), Ready from heartbeats, real kubectl (``k3s kubectl``) node verbs, embedded-etcd
joins, snapshots and cluster-reset.
"""

import base64
import hashlib
import json
import os
import re
import shlex
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path

import jinja2
import pytest
import yaml

from ansible_collections.edgeclu.cluster.plugins.module_utils.k3s import nodes_not_ready, parse_version_output
from edgeclu.health.kube import parse_nodes
from edgeclu.inventory import DEFAULTS
from edgeclu.lifecycle.backup import snapshot_path
from edgeclu.lifecycle.kubectl import drain_command, eviction_errors
from edgeclu.resources import collection_dir
from edgeclu.transport import SSHRemote
from tests.integration.lifecycle_util import ETCDCTL, STATE_KEY, etcd_members
from tests.k3s_standin.release import build_release

pytestmark = pytest.mark.lab

VERSION = "v1.31.4+k3s1"
TOKEN = "lab-token-0123456789"
FAST = {"kubelet-arg": ["node-status-update-frequency=1s"],
        "kube-controller-manager-arg": ["node-monitor-grace-period=4s"]}


@pytest.fixture(scope="module")
def nodes(lab3, tmp_path_factory):
    """node1..node3 with the stand-in binary and both units installed (nothing started)."""
    rel = build_release(tmp_path_factory.mktemp("rel"), VERSION)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(collection_dir() / "roles/k3s_install/templates"),
                             undefined=jinja2.StrictUndefined)
    units = tmp_path_factory.mktemp("units")
    for unit in ("k3s.service", "k3s-agent.service"):
        # the role's inputs at their defaults (its meta/argument_specs.yml), as Ansible renders the unit
        (units / unit).write_text(env.get_template(f"{unit}.j2").render(**DEFAULTS))
    remotes = {}
    for name, node in lab3.nodes.items():
        r = SSHRemote(name, node.ip, user="root", key_file=str(lab3.key), known_hosts=lab3.known_hosts)
        r.put(rel / "k3s", "/usr/local/bin/k3s", mode=0o755)
        r.put(rel / "k3s-arm64", "/root/k3s-arm64", mode=0o755)
        for unit in ("k3s.service", "k3s-agent.service"):
            r.put(units / unit, f"/etc/systemd/system/{unit}")
        r.run("systemctl daemon-reload")
        remotes[name] = r
    yield remotes
    for r in remotes.values():
        r.close()


def _reset(nodes):
    for r in nodes.values():
        r.run("systemctl stop k3s k3s-agent; systemctl reset-failed k3s k3s-agent; "
              "rm -rf /var/lib/rancher /etc/rancher", check=False)


def _config(r, data):
    r.run("mkdir -p /etc/rancher/k3s && umask 077 && cat > /etc/rancher/k3s/config.yaml <<'EOF'\n"
          f"{yaml.safe_dump(data)}EOF")


def _nodes_json(r):
    return json.loads(r.run("k3s kubectl get nodes -o json").stdout)


def _wait(predicate, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


def _tls_get(url, ca, certs=None):
    """GET over TLS: ``ca`` None fetches without verification (as a joining node first does)."""
    if ca is None:
        ctx = ssl._create_unverified_context()
    else:
        ctx = ssl.create_default_context(cadata=ca)
        if certs:
            ctx.load_cert_chain(certs / "crt", certs / "key")
    return urllib.request.urlopen(url, timeout=5, context=ctx).read().decode()


def test_server_agents_tokens_and_node_verbs(nodes, lab3, tmp_path):
    _reset(nodes)
    s, a, bad = nodes["node1"], nodes["node2"], nodes["node3"]
    assert parse_version_output(s.run("k3s --version").stdout) == VERSION

    _config(s, {"token": TOKEN, "node-name": "node1", "tls-san": ["edge.example"], **FAST})
    s.run("systemctl start k3s")  # Type=notify: returns once the stand-in is up
    # the token at k3s's path, root-only, in k3s's full format
    assert s.run("stat -c '%a %U' /var/lib/rancher/k3s/server/token").stdout.split() == ["600", "root"]
    full_token = s.run("cat /var/lib/rancher/k3s/server/token").stdout.strip()
    assert full_token.startswith("K10") and full_token.endswith(f"::server:{TOKEN}")
    # the kubeconfig at k3s's path, 0600, the real shape
    assert s.run("stat -c %a /etc/rancher/k3s/k3s.yaml").stdout.strip() == "600"
    kubeconfig = yaml.safe_load(s.run("cat /etc/rancher/k3s/k3s.yaml").stdout)
    assert kubeconfig["clusters"][0]["name"] == "default"
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(kubeconfig["clusters"][0]["cluster"]["certificate-authority-data"])
    assert kubeconfig["contexts"] == [{"name": "default", "context": {"cluster": "default", "user": "default"}}]
    assert kubeconfig["current-context"] == "default" and kubeconfig["users"][0]["name"] == "default"
    user = kubeconfig["users"][0]["user"]
    assert set(user) == {"client-certificate-data", "client-key-data"}
    # TLS on 6443 on the LAN: the CA at /cacerts is the one in the token and in k3s.yaml, kept in server/tls
    ip1 = lab3.nodes["node1"].ip
    ca = _tls_get(f"https://{ip1}:6443/cacerts", None)
    assert full_token[3:].split("::")[0] == hashlib.sha256(ca.encode()).hexdigest()
    assert base64.b64decode(kubeconfig["clusters"][0]["cluster"]["certificate-authority-data"]).decode() == ca
    assert s.run("cat /var/lib/rancher/k3s/server/tls/server-ca.crt").stdout == ca
    # the serving certificate verifies against it, for the node IP (a SAN), and the API wants a client cert
    assert _tls_get(f"https://{ip1}:6443/ping", ca) == "pong"
    with pytest.raises(urllib.error.HTTPError) as e:
        _tls_get(f"https://{ip1}:6443/api/v1/nodes", ca)
    assert e.value.code == 401
    with pytest.raises(urllib.error.HTTPError) as e:
        _tls_get(f"https://{ip1}:6443/v1-standin/state", ca)
    assert e.value.code == 401
    sans = s.run("python3 -c \"import sys; from cryptography import x509; c = x509.load_pem_x509_certificate("
                 "open('/var/lib/rancher/k3s/server/tls/serving-kube-apiserver.crt','rb').read()); "
                 "print(*[str(n.value) for n in c.extensions.get_extension_for_class("
                 "x509.SubjectAlternativeName).value])\"").stdout.split()
    assert {ip1, "127.0.0.1", "node1", "edge.example"} <= set(sans)
    certs = tmp_path / "admin"
    certs.mkdir()
    (certs / "crt").write_bytes(base64.b64decode(user["client-certificate-data"]))
    (certs / "key").write_bytes(base64.b64decode(user["client-key-data"]))
    assert json.loads(_tls_get(f"https://{ip1}:6443/api/v1/nodes", ca, certs))["kind"] == "NodeList"

    # an agent with the full token joins
    _config(a, {"server": f"https://{ip1}:6443", "token": full_token, **FAST})
    a.run("systemctl start k3s-agent")
    # an agent with a wrong token fails: non-zero, a clear fatal line in its journal
    _config(bad, {"server": f"https://{ip1}:6443", "token": "not-the-token"})
    started = bad.run("systemctl start k3s-agent", check=False)
    assert started.exit_code != 0
    journal = bad.run("journalctl -u k3s-agent -o cat --no-pager").stdout
    assert "level=fatal" in journal and "rejected the token (401 Unauthorized)" in journal
    # a K10 token whose CA hash is not this cluster's is refused before the password is sent
    _config(bad, {"server": f"https://{ip1}:6443", "token": "K10" + "0" * 64 + f"::server:{TOKEN}"})
    bad.run("systemctl reset-failed k3s-agent")
    assert bad.run("systemctl start k3s-agent", check=False).exit_code != 0
    assert "token CA hash does not match the Cluster CA certificate hash" in \
        bad.run("journalctl -u k3s-agent -o cat --no-pager -n 5").stdout
    bad.run("systemctl stop k3s-agent")

    doc = _nodes_json(s)
    assert [i["metadata"]["name"] for i in doc["items"]] == ["node1", "node2"]
    assert nodes_not_ready(doc, ["node1", "node2"]) == {}
    n2 = doc["items"][1]
    assert n2["status"]["nodeInfo"]["kubeletVersion"] == VERSION
    assert n2["status"]["addresses"][0] == {"type": "InternalIP", "address": lab3.nodes["node2"].ip}
    assert "node-role.kubernetes.io/control-plane" in doc["items"][0]["metadata"]["labels"]
    table = s.run("k3s kubectl get nodes").stdout.splitlines()
    assert table[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert table[2].split()[:3] == ["node2", "Ready", "<none>"]
    assert s.run("kubectl get nodes -o name", check=False).exit_code != 0  # no kubectl link: we made none

    # a fresh cluster has no pods and no PDBs: empty lists, in kubectl's shape
    assert json.loads(s.run("k3s kubectl get pods -A --field-selector spec.nodeName=node2 -o json").stdout)[
        "items"] == []
    assert json.loads(s.run("k3s kubectl get pdb -A -o json").stdout)["kind"] == "List"

    # cordon / uncordon
    assert s.run("k3s kubectl cordon node2").stdout == "node/node2 cordoned\n"
    node2 = json.loads(s.run("k3s kubectl get node node2 -o json").stdout)
    assert node2["kind"] == "Node" and node2["spec"]["unschedulable"] is True
    assert "Ready,SchedulingDisabled" in s.run("k3s kubectl get nodes").stdout
    assert s.run("k3s kubectl uncordon node2").stdout == "node/node2 uncordoned\n"
    assert "unschedulable" not in json.loads(s.run("k3s kubectl get node node2 -o json").stdout)["spec"]
    # labels and annotations (merge patches), and label selectors
    assert s.run("k3s kubectl annotate node node2 edgeclu.example/why=test").stdout == "node/node2 annotated\n"
    s.run("k3s kubectl label node node2 zone=a")
    assert s.run("k3s kubectl get nodes -l zone=a -o name").stdout == "node/node2\n"
    assert s.run("k3s kubectl get nodes -l '!zone' -o name").stdout == "node/node1\n"
    s.run("systemctl restart k3s")  # the server's restart keeps them
    meta = json.loads(s.run("k3s kubectl get node node2 -o json").stdout)["metadata"]
    assert meta["annotations"]["edgeclu.example/why"] == "test" and meta["labels"]["zone"] == "a"

    # Ready follows the heartbeat: the agent stops -> NotReady after the grace period -> back
    a.run("systemctl stop k3s-agent")
    _wait(lambda: "node2" in nodes_not_ready(_nodes_json(s), ["node2"]), what="node2 NotReady")
    assert nodes_not_ready(_nodes_json(s), ["node2"])["node2"].startswith("Ready=Unknown")
    a.run("systemctl start k3s-agent")
    _wait(lambda: not nodes_not_ready(_nodes_json(s), ["node2"]), what="node2 Ready again")

    # delete: gone from the list; the still-running agent cannot re-register by heartbeat
    assert s.run("k3s kubectl delete node node2").stdout == 'node "node2" deleted\n'
    missing = s.run("k3s kubectl get node node2", check=False)
    assert missing.exit_code == 1 and missing.stderr == 'Error from server (NotFound): nodes "node2" not found\n'
    _wait(lambda: "not found" in a.run("journalctl -u k3s-agent -o cat -n 3 --no-pager").stdout,
          what="the agent's heartbeat to be refused")
    assert [i["metadata"]["name"] for i in _nodes_json(s)["items"]] == ["node1"]
    # a single server (SQLite) has no etcd to snapshot
    snap = s.run("k3s etcd-snapshot save", check=False)
    assert snap.exit_code == 1 and "etcd datastore disabled" in snap.stderr


def test_wrong_arch_binary_and_kubectl_without_a_server(nodes):
    _reset(nodes)
    r = nodes["node3"]
    wrong = r.run("/root/k3s-arm64 --version", check=False)
    assert wrong.exit_code == 126
    assert "Exec format error (stand-in built for arm64, this machine is x86_64)" in wrong.stderr
    _config(r, {"token": TOKEN})
    r.run("systemctl start k3s && systemctl stop k3s")
    refused = r.run("k3s kubectl get nodes", check=False)
    assert refused.exit_code == 1
    # real kubectl's words (it logs discovery errors first)
    assert refused.stderr.splitlines()[-1] == ("The connection to the server 127.0.0.1:6443 was refused - did you "
                                               "specify the right host or port?")


def test_embedded_etcd_join_snapshot_and_cluster_reset(nodes, lab3):
    _reset(nodes)
    s1, s2 = nodes["node1"], nodes["node2"]
    ip1 = lab3.nodes["node1"].ip
    _config(s1, {"token": TOKEN, "cluster-init": True, **FAST})
    s1.run("systemctl start k3s")
    _config(s2, {"token": TOKEN, "server": f"https://{ip1}:6443", **FAST})
    s2.run("systemctl start k3s")
    # each server answers kubectl from its own etcd member
    for r in (s1, s2):
        doc = _nodes_json(r)
        assert [i["metadata"]["name"] for i in doc["items"]] == ["node1", "node2"]
        assert all(i["metadata"]["labels"].get("node-role.kubernetes.io/etcd") == "true" for i in doc["items"])
    # a real two-member etcd cluster (etcdctl, with k3s's certificate paths), holding the state
    for r in (s1, s2):
        assert etcd_members(lambda c, r=r: r.run(c).stdout) == ["node1", "node2"]
    state = json.loads(s2.run(f"{ETCDCTL} get {STATE_KEY} --print-value-only").stdout)
    assert sorted(state["nodes"]) == ["node1", "node2"] and state["cluster"]["datastore"] == "etcd"
    # the joining server's journal: k3s's words (pkg/etcd/etcd.go: join)
    log2 = s2.run("journalctl -u k3s -o cat --no-pager").stdout
    assert "Adding member node2-" in log2 and f"=https://{lab3.nodes['node2'].ip}:2380 to etcd cluster [" in log2
    assert "Adding member node2-" in log2 and "Starting etcd to join cluster with members [node1-" in log2
    # a joining server with the wrong token is refused
    _config(nodes["node3"], {"token": "wrong", "server": f"https://{ip1}:6443"})
    assert nodes["node3"].run("systemctl start k3s", check=False).exit_code != 0
    assert "the server rejected the token (401 Unauthorized)" in \
        nodes["node3"].run("journalctl -u k3s -o cat -n 5 --no-pager").stdout
    nodes["node3"].run("systemctl stop k3s")

    # k3s's CLI asks the server (POST /db/snapshot) and logs "Snapshot <name> saved." per file created
    # (pkg/cli/etcdsnapshot/etcd_snapshot.go: save; delete logs "Snapshot <name> deleted." / "... not found.")
    saved = s1.run("k3s etcd-snapshot save --name pre-remove")
    assert saved.stdout == ""  # like k3s: it only logs, on stderr
    name = saved.stderr.split("Snapshot ", 1)[1].split(" saved.")[0]
    assert name.startswith("pre-remove-node1-")
    path = f"/var/lib/rancher/k3s/server/db/snapshots/{name}"
    assert snapshot_path(saved.stderr) == path  # what edgeclu backup reads
    # the server logged where it saved it (k3s pkg/etcd/snapshot.go: Snapshot), and it is a real etcd snapshot
    assert f"Saving etcd snapshot to {path}" in s1.run("journalctl -u k3s -o cat --no-pager").stdout
    status = json.loads(s1.run(f"ETCDCTL_API=3 etcdctl snapshot status {path} -w json").stdout)
    assert status["totalKey"] >= 1 and status["revision"] > 1
    assert name in s1.run("k3s etcd-snapshot ls").stdout
    # the node written after the snapshot is not in it
    s1.run("k3s kubectl label node node1 after-snapshot=yes")

    # restore, as k3s documents it: k3s stopped on every server, cluster-reset from the snapshot on one
    s2.run("systemctl stop k3s")
    s1.run("systemctl stop k3s")
    reset = s1.run(f"k3s server --cluster-reset --cluster-reset-restore-path={shlex.quote(path)}")  # exit 0
    # k3s's words, pkg/etcd/etcd.go, func (e *ETCD) Reset (then os.Exit(0)); Restore logs the "Pre-restore" line
    assert ("Managed etcd cluster membership has been reset, restart without --cluster-reset flag now. Backup "
            "and delete ${datadir}/server/db on each peer etcd server and rejoin the nodes") in reset.stderr
    assert "Pre-restore etcd database moved to /var/lib/rancher/k3s/server/db/etcd-old-" in reset.stderr
    s1.run("systemctl start k3s")
    assert etcd_members(lambda c: s1.run(c).stdout) == ["node1"]  # a one-member cluster ...
    doc = _nodes_json(s1)
    assert [i["metadata"]["name"] for i in doc["items"]] == ["node1", "node2"]  # ... with the snapshot's objects
    assert "after-snapshot" not in doc["items"][0]["metadata"]["labels"]
    # node2 rejoins with a fresh etcd data dir (what k3s's message asks for)
    s2.run("rm -rf /var/lib/rancher/k3s/server/db && systemctl start k3s")
    assert etcd_members(lambda c: s1.run(c).stdout) == ["node1", "node2"]
    _wait(lambda: not nodes_not_ready(_nodes_json(s1), ["node1", "node2"]), what="both Ready")
    gone = s1.run(f"k3s etcd-snapshot delete {name} no-such-snapshot")
    assert f'level=info msg="Snapshot {name} deleted."' in gone.stderr
    assert 'level=warning msg="Snapshot no-such-snapshot not found."' in gone.stderr
    assert name not in s1.run("k3s etcd-snapshot ls").stdout and s1.run(f"test -e {path}", check=False).exit_code


def test_three_etcd_members_without_quorum_refuse_writes_and_say_so(nodes, lab3):
    _reset(nodes)
    ip1 = lab3.nodes["node1"].ip
    _config(nodes["node1"], {"token": TOKEN, "cluster-init": True, **FAST})
    nodes["node1"].run("systemctl start k3s")
    for n in ("node2", "node3"):
        _config(nodes[n], {"token": TOKEN, "server": f"https://{ip1}:6443", **FAST})
        nodes[n].run("systemctl start k3s")
    s1 = nodes["node1"]
    assert etcd_members(lambda c: s1.run(c).stdout) == ["node1", "node2", "node3"]
    # two of three members down: reads still answer (from the local member), writes need etcd's quorum
    nodes["node2"].run("systemctl stop k3s")
    nodes["node3"].run("systemctl stop k3s")
    assert not nodes["node2"].run("pgrep -x etcd", check=False).stdout  # k3s took its etcd down with it
    assert [i["metadata"]["name"] for i in _nodes_json(s1)["items"]] == ["node1", "node2", "node3"]
    t0 = time.monotonic()
    refused = s1.run("k3s kubectl label node node1 quorum=lost", check=False)
    print(f"write without quorum refused after {time.monotonic() - t0:.1f}s")
    assert refused.exit_code == 1 and time.monotonic() - t0 < 30
    # kubectl's words for a Status 503 whose message is etcd's (its gateway's: "context deadline exceeded",
    # or etcd server's "etcdserver: request timed out")
    assert re.fullmatch(r"Error from server \(ServiceUnavailable\): (etcdserver: request timed out|etcd: context "
                        r"deadline exceeded)\n", refused.stderr), refused.stderr
    # a member back: quorum again, writes go through
    nodes["node2"].run("systemctl start k3s")
    s1.run("k3s kubectl label node node1 quorum=back")
    assert _nodes_json(s1)["items"][0]["metadata"]["labels"]["quorum"] == "back"
    # deleting a (stopped) server's node removes its etcd member, as k3s's member controller does
    s1.run("k3s kubectl delete node node3")
    _wait(lambda: etcd_members(lambda c: s1.run(c).stdout) == ["node1", "node2"], what="node3's member removed")
    assert "Removing etcd member node3 from cluster" in s1.run("journalctl -u k3s -o cat --no-pager").stdout


GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden" / "kubectl"
WORKLOAD = """
apiVersion: v1
kind: Pod
metadata: {name: web-a, labels: {app: web}, ownerReferences: [{kind: ReplicaSet, name: web-5d9c}]}
spec: {nodeName: node2}
---
apiVersion: v1
kind: Pod
metadata: {name: db-0, labels: {app: db}, ownerReferences: [{kind: StatefulSet, name: db}]}
spec: {nodeName: node2}
---
apiVersion: v1
kind: Pod
metadata: {name: loner, labels: {app: loner}}
spec: {nodeName: node2}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: db}
spec: {maxUnavailable: 0, selector: {matchLabels: {app: db}}}
"""


def _golden(name: str, live: str) -> str:
    """The committed sample (written from this run with EDGECLU_UPDATE_GOLDEN=1)."""
    path = GOLDEN / name
    if os.environ.get("EDGECLU_UPDATE_GOLDEN") == "1":
        path.write_text(live)
    return path.read_text()


def test_real_kubectl_output_is_what_edgeclu_parses(nodes, lab3):
    """Golden samples from real kubectl (the one k3s kubectl runs): edgeclu reads the live output and the
    committed sample the same way (tests/unit/test_golden.py parses the samples without a lab)."""
    _reset(nodes)
    s, a = nodes["node1"], nodes["node2"]
    ip1 = lab3.nodes["node1"].ip
    _config(s, {"token": TOKEN, "node-name": "node1", **FAST})
    s.run("systemctl start k3s")
    _config(a, {"server": f"https://{ip1}:6443", "token": s.run("cat /var/lib/rancher/k3s/server/token").stdout.strip(),
                **FAST})
    a.run("systemctl start k3s-agent")
    _wait(lambda: not nodes_not_ready(_nodes_json(s), ["node1", "node2"]), what="both nodes Ready")

    nodes_out = s.run("k3s kubectl get nodes -o json").stdout
    for text in (nodes_out, _golden("get-nodes.json", nodes_out)):
        assert {n: (k.ready, k.roles) for n, k in parse_nodes(text).items()} == {
            "node1": (True, ("control-plane", "master")), "node2": (True, ())}

    s.run(f"cat > /root/w.yaml <<'EOF'\n{WORKLOAD}\nEOF\nk3s kubectl create --validate=false -f /root/w.yaml")
    # a pod without a controller: drain refuses before evicting anything
    loner = s.run(drain_command("node2", 5), check=False)
    assert loner.exit_code == 1
    out = loner.stdout + loner.stderr
    assert "cannot delete Pods that declare no controller (use --force to override): default/loner" in out
    assert "cannot delete Pods that declare no controller" in _golden("drain-unmanaged.txt", out)
    s.run("k3s kubectl uncordon node2 && k3s kubectl delete pod loner")
    # a PodDisruptionBudget that allows no disruption: refused (429) until --timeout
    blocked = s.run(drain_command("node2", 6), check=False)
    assert blocked.exit_code == 1
    out = blocked.stdout + blocked.stderr
    for text in (out, _golden("drain-pdb-timeout.txt", out)):
        assert eviction_errors(text) == ["default/db-0"]
        assert "Cannot evict pod as it would violate the pod's disruption budget." in text
        assert 'error when evicting pods/"db-0" -n "default": global timeout reached: 6s' in text
        assert "evicting pod default/web-a" in text
