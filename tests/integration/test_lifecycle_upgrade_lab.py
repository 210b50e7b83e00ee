"""`edgeclu upgrade` from one k3s stand-in version to the next on lab nodes, through the real CLI.

2 servers + 3 agents, upgrade_batch_percent 50 (batches of 2): the plan, a run that stops at an
agent whose service will not start (the rest of its batch finishes, the next batch is not
touched), then a re-run that resumes and finishes with every node on the new version.
"""

import json
import re

import pytest

from tests.integration import real_clients
from tests.integration.lifecycle_util import COMMENT, edgeclu, kube_nodes, ok, wait_for, write_inventory
from tests.k3s_standin.fixtures import V1, V2, k3s_mirror, k3s_releases  # noqa: F401

pytestmark = pytest.mark.lab

SERVERS, AGENTS = ["node1", "node2"], ["node3", "node4", "node5"]
BROKEN = "/etc/systemd/system/k3s-agent.service.d/broken.conf"


def _upgraded(stderr):
    """Nodes in the order the log says they were upgraded."""
    return re.findall(rf"\] (node\d): upgraded {re.escape(V1)} -> {re.escape(V2)}, uncordoned, Ready", stderr)


def _starts(lab, node, unit):
    """Unix times at which systemd reported ``unit`` started on ``node``."""
    out = lab.exec(node, f"journalctl -u {unit} -o short-unix --no-pager")
    return [float(line.split()[0]) for line in out.splitlines() if f"Started {unit}.service" in line]


def _binary(lab, node):
    return lab.exec(node, "/usr/local/bin/k3s --version").split()[2]


def test_rolling_upgrade_order_stop_at_a_broken_node_and_resume(fresh_lab, k3s_mirror, tmp_path):  # noqa: F811
    lab = fresh_lab(5)
    inv = write_inventory(tmp_path, lab, k3s_mirror(lab), SERVERS, AGENTS, upgrade_batch_percent=50)
    ok(edgeclu(tmp_path, "up", "-i", str(inv)))
    assert {n: v["version"] for n, v in kube_nodes(lab).items()} == dict.fromkeys(SERVERS + AGENTS, V1)

    dry = ok(edgeclu(tmp_path, "upgrade", "--k3s-version", V2, "--dry-run", "-i", str(inv)))
    assert dry.stdout == "1. server: node1\n2. server: node2\n3. agent: node3, node4\n4. agent: node5\n"
    assert {n: v["version"] for n, v in kube_nodes(lab).items()} == dict.fromkeys(SERVERS + AGENTS, V1)

    # node3's k3s-agent will not start again (a broken drop-in)
    lab.exec("node3", f"mkdir -p {BROKEN.rsplit('/', 1)[0]} && printf '[Service]\\nExecStartPre=/bin/false\\n' "
                      f"> {BROKEN} && systemctl daemon-reload")
    t_start = float(lab.exec("node1", "date +%s.%N"))
    first = edgeclu(tmp_path, "upgrade", "--k3s-version", V2, "-i", str(inv))
    assert first.returncode == 1, first.stderr[-6000:]
    err = first.stderr
    assert f"upgrade to {V2}: node1 (server) -> node2 (server) -> [node3, node4] (agents) -> [node5] (agents)" in err
    assert _upgraded(err) == ["node1", "node2", "node4"]
    assert err.index("[1/4] node1: draining") < err.index("[1/4] node1: upgraded") < err.index("[2/4] node2: draining")
    failed_line = next(line for line in err.splitlines() if line.startswith("[3/4] node3: FAILED: "))
    assert "k3s-agent on node3 did not start" in failed_line
    assert "stopped: not upgraded: node5" in err
    assert "✗ node3" in err
    # its steps, phase by phase (off a terminal: a line per node and step that changed or failed)
    assert f"edgeclu upgrade to {V2}: 5 node(s)" in err
    assert err.index("  node1: cordon and drain: changed") < err.index("  node1: install the new k3s: changed") \
        < err.index("  node1: uncordon: changed") < err.index("  node2: cordon and drain: changed")
    assert any(line.startswith("  node3: install the new k3s: failed: ") and "did not start" in line
               for line in err.splitlines())
    assert "  node5: " not in err  # never started
    # the summary in words: per node, in upgrade order, what was done, what failed and what is left
    summary = err[err.rindex("summary"):]
    assert f"✓ node1  upgraded {V1} → {V2} (step 1/4, server: drained, upgraded, uncordoned, Ready)" in summary
    assert "✗ node3  FAILED (step 3/4, agents): " in summary and "did not start" in summary
    assert "· node5  left: not upgraded yet (step 4/4, agents)" in summary
    assert "stopped at node3; left: node5" in summary and "it resumes" in summary
    nodes = kube_nodes(lab)
    assert {n: nodes[n]["version"] for n in ("node1", "node2", "node4", "node5")} == {
        "node1": V2, "node2": V2, "node4": V2, "node5": V1}
    assert _binary(lab, "node5") == V1 and not nodes["node5"]["cordoned"]  # the next batch was not touched
    assert f"k3s_version: {V1}" in inv.read_text()  # not every node runs V2 yet

    # one at a time: each server restarted on V2 only after the previous one was back
    s1, s2 = (_starts(lab, n, "k3s")[-1] for n in ("node1", "node2"))
    s4 = _starts(lab, "node4", "k3s-agent")[-1]
    assert t_start < s1 < s2 < s4
    assert not _starts(lab, "node5", "k3s-agent")[-1] > t_start

    assert not nodes["node3"]["cordoned"]  # not left cordoned for whoever repairs it

    # repaired: systemd restarts the agent (on the new binary); a re-run skips what is done and finishes
    lab.exec("node3", f"rm {BROKEN} && systemctl daemon-reload")
    wait_for(lambda: kube_nodes(lab)["node3"]["version"] == V2 and kube_nodes(lab)["node3"]["ready"], timeout=90,
             what="node3 back on V2")
    second = ok(edgeclu(tmp_path, "upgrade", "--k3s-version", V2, "-i", str(inv), "--json"))
    assert f"upgrade to {V2}: [node5] (agents)" in second.stderr
    assert f"already on {V2}: node1, node2, node3, node4" in second.stderr
    assert _upgraded(second.stderr) == ["node5"]
    nodes = kube_nodes(lab)
    assert {n: v["version"] for n, v in nodes.items()} == dict.fromkeys(SERVERS + AGENTS, V2)
    assert all(v["ready"] and not v["cordoned"] for v in nodes.values())
    assert {n: _binary(lab, n) for n in SERVERS + AGENTS} == dict.fromkeys(SERVERS + AGENTS, V2)
    # the user's own kubectl (V2's minor), with the kubeconfig up merged, sees the same upgraded cluster
    doc = json.loads(real_clients.kubectl(tmp_path / "kubeconfig", "lab", V2, "get", "nodes", "-o", "json").stdout)
    assert {i["metadata"]["name"]: i["status"]["nodeInfo"]["kubeletVersion"] for i in doc["items"]} == \
        dict.fromkeys(SERVERS + AGENTS, V2)
    assert real_clients.ready_nodes(tmp_path / "kubeconfig", "lab", V2) == dict.fromkeys(SERVERS + AGENTS, True)
    assert f"k3s_version: {V2}" in inv.read_text()
    (backup,) = tmp_path.glob("inventory.yml.bak-*")  # timestamped, one per edit
    assert f"k3s_version: {V1}" in backup.read_text() and inv.read_text().startswith(COMMENT)
    assert json.loads(second.stdout)["upgraded"] == ["node5"]

    # nothing left to do
    again = ok(edgeclu(tmp_path, "upgrade", "--k3s-version", V2, "-i", str(inv)))
    assert "nothing to do" in again.stderr and _upgraded(again.stderr) == []
