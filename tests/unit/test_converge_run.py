"""`edgeclu up` on fake nodes: when the converged stamp lets it skip the playbook, and which nodes it
stamps with what their roles asked (tests/fakes.py; the stamp's digests and drift: test_stamp.py)."""

import json

import pytest

from ansible_collections.edgeclu.cluster.plugins.module_utils import node_loader
from edgeclu import node, stamp
from edgeclu.converge import converge
from edgeclu.inventory import load_inventory
from tests.fakes import (
    FakePlaybooks,
    FakeRemote,
    answer_lock,
    failed,
    fake_cluster,
    inventory_file,
    kube_node,
    node_list,
    ok,
    probe_answer,
)

V = "v1.31.4+k3s1"
STAMP = node_loader.command(node_loader.DEFAULT_PYTHON)  # the loader; what the stamp does is on stdin
REQUEST = {"paths": ["/etc/rancher/k3s/config.yaml"], "services": ["k3s"]}  # what the roles asked
ANSWER = {"files": {"/etc/rancher/k3s/config.yaml": {"exists": True, "sha1": "ab", "mode": "0600"}},
          "services": {"k3s": {"active": "active", "enabled": "enabled"}}}


def _setup(tmp_path, *, stamped=("node1", "node2"), ready=("node1", "node2"), now=None, site=None):
    """Two nodes whose stamps hold ``ANSWER`` (``stamped`` ones), answering ``now`` (per node) today."""
    inv = load_inventory(inventory_file(tmp_path, ["node1"], ["node2"]))
    digest = stamp._cluster(inv)
    inputs = {h.name: stamp.inputs_digest(digest, inv, h) for h in inv.hosts}
    nodes = node_list(*(kube_node(n, V, ready="True" if n in ready else "False") for n in ("node1", "node2")))
    remotes = {}
    for h in inv.hosts:
        first = h.name == "node1"
        old = {"format": stamp.FORMAT, "inputs": inputs[h.name], "request": REQUEST, "answer": ANSWER}
        look = {"stamp": old if h.name in stamped else None, "now": (now or {}).get(h.name, ANSWER)}
        if first:
            look["nodes"] = nodes
        remotes[h.name] = FakeRemote(h.name).on(node.PROBE, probe_answer(h.name, k3s=V, role=h.role, running=True))
        remotes[h.name].on(STAMP, json.dumps(look), stdin=stamp.node_stdin({"nodes": first}))
        remotes[h.name].on(STAMP, '{"written": true}',
                           stdin=stamp.node_stdin({"inputs": inputs[h.name], "request": REQUEST}))
    answer_lock(remotes["node1"])
    playbooks = FakePlaybooks({"site.yml": site or (lambda limit, **_: ok("node1", "node2"))},
                              probes={"node1": REQUEST, "node2": REQUEST})
    reports: list[str] = []
    return remotes, playbooks, fake_cluster(inv, remotes, playbooks, reports), inputs, reports


def _stamped(remotes, inputs) -> list[str]:
    return [n for n, r in remotes.items()
            if r.ran(STAMP, stdin=stamp.node_stdin({"inputs": inputs[n], "request": REQUEST}))]


def test_every_node_as_the_last_run_left_it_and_ready_runs_no_playbook(tmp_path):
    remotes, playbooks, cluster, inputs, reports = _setup(tmp_path)
    outcome = converge(cluster, merge_kubeconfig=False, fast=True)
    assert outcome.result.ok and outcome.result.status == "unchanged" and playbooks.runs == []
    assert _stamped(remotes, inputs) == []
    assert any("nothing to change" in r for r in reports)
    # preflight, the lock and the stamps' look share one connection per node, closed at the end
    assert {n: (r.connections, r.closed) for n, r in remotes.items()} == {"node1": (1, 1), "node2": (1, 1)}
    assert len(remotes["node2"].calls) == 2  # the probe, then the stamp's look


STOPPED = {**ANSWER, "services": {"k3s": {"active": "inactive", "enabled": "enabled"}}}


@pytest.mark.parametrize(("change", "why"), [
    ({"stamped": ("node1",)}, "node2 has no stamp yet"),
    ({"ready": ("node1",)}, "node2 is not Ready"),
    ({"now": {"node2": STOPPED}}, "node2 is not as the last run left it: service k3s: active/enabled -> "
                                  "inactive/enabled"),
])
def test_a_node_without_its_stamp_drifted_or_not_ready_runs_the_playbook_and_stamps_again(tmp_path, change, why):
    remotes, playbooks, cluster, inputs, reports = _setup(tmp_path, **change)
    outcome = converge(cluster, preflight=False, merge_kubeconfig=False, fast=True)
    assert outcome.result.ok and [r["limit"] for r in playbooks.runs] == [None]
    assert f"running the playbook: {why}" in reports
    assert _stamped(remotes, inputs) == ["node1", "node2"]


def test_a_changed_input_runs_the_playbook(tmp_path):
    remotes, playbooks, cluster, inputs, reports = _setup(tmp_path)
    (tmp_path / "token").write_text("a new token\n")  # an input of every node's digest
    converge(cluster, preflight=False, merge_kubeconfig=False, fast=True)
    assert len(playbooks.runs) == 1
    assert any(r.startswith("running the playbook: node1: the inputs changed") for r in reports)


def test_only_the_nodes_that_converged_are_stamped(tmp_path):
    remotes, playbooks, cluster, inputs, _ = _setup(
        tmp_path, stamped=(), site=lambda limit, **_: {**ok("node1"), **failed("node2")})
    outcome = converge(cluster, preflight=False, merge_kubeconfig=False, fast=True)
    assert not outcome.result.ok and _stamped(remotes, inputs) == ["node1"]


def test_full_runs_the_playbook_without_looking_at_the_stamps(tmp_path):
    remotes, playbooks, cluster, inputs, _ = _setup(tmp_path)
    converge(cluster, merge_kubeconfig=False, fast=False)
    assert len(playbooks.runs) == 1
    # a node may reboot in the run: only the lock's connection (the first server's) outlives the playbook
    assert {n: r.connections for n, r in remotes.items()} == {"node1": 1, "node2": 2}
    assert not any(r.ran(STAMP, stdin=stamp.node_stdin({"nodes": n == "node1"})) for n, r in remotes.items())
    assert _stamped(remotes, inputs) == ["node1", "node2"]


def test_a_limited_run_neither_skips_nor_stamps(tmp_path):
    remotes, playbooks, cluster, inputs, _ = _setup(tmp_path)
    converge(cluster, preflight=False, merge_kubeconfig=False, fast=True, limit="node2")
    assert [r["limit"] for r in playbooks.runs] == ["node2"] and _stamped(remotes, inputs) == []
