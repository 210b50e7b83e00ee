"""`edgeclu add` on fake nodes: the inventory gets the node only if it joined (tests/fakes.py)."""

import pytest

from edgeclu.errors import EdgecluError
from edgeclu.inventory import load_inventory
from edgeclu.lifecycle.nodes import add_node
from edgeclu.node import PROBE
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

PROBE_OK = probe_answer("node9")


def _cluster(tmp_path, site, *, probe=PROBE_OK, listed=("node1",)):
    path = inventory_file(tmp_path, ["node1"], ["node2"])
    first = answer_lock(FakeRemote("node1"))
    first.on("k3s kubectl get nodes -o json", node_list(*(kube_node(n, "v1.31.4+k3s1") for n in listed)))
    new = FakeRemote("node9").on(PROBE, probe)
    seen = []

    def run_site(limit, **_):
        seen.append(path.read_text())  # what ansible reads while it runs
        return site(limit)

    playbooks = FakePlaybooks({"site.yml": run_site})
    return load_inventory(path), fake_cluster(load_inventory(path), {"node1": first, "node9": new}, playbooks), \
        playbooks, seen


def test_a_node_that_joins_stays_in_the_inventory(tmp_path):
    inv, cluster, playbooks, seen = _cluster(tmp_path, lambda limit: ok(limit))
    outcome = add_node(cluster, "10.0.0.99", name="node9")
    assert outcome.ok and outcome.inventory_backup is not None
    assert [r["limit"] for r in playbooks.runs] == ["node9"]  # only the new node is converged
    assert "node9" in seen[0]  # the playbook saw it in the inventory
    after = load_inventory(inv.path)
    assert after.host("node9").address == "10.0.0.99" and after.host("node9").role == "agent"
    assert inv.path.read_text().startswith("# the user's comment")


def test_a_node_that_does_not_join_is_taken_out_of_the_inventory_again(tmp_path):
    inv, cluster, playbooks, seen = _cluster(tmp_path, lambda limit: failed(limit, "k3s-agent did not start"))
    before = inv.path.read_text()
    outcome = add_node(cluster, "10.0.0.99", name="node9")
    assert not outcome.ok and "node9" in seen[0]
    assert inv.path.read_text() == before  # byte for byte: comments and all


def test_an_interrupted_join_puts_the_inventory_back_too(tmp_path):
    def interrupted(limit):
        raise KeyboardInterrupt

    inv, cluster, _, seen = _cluster(tmp_path, interrupted)
    before = inv.path.read_text()
    with pytest.raises(KeyboardInterrupt):
        add_node(cluster, "10.0.0.99", name="node9")
    assert seen and inv.path.read_text() == before


def test_a_node_failing_preflight_changes_nothing(tmp_path):
    armv6 = PROBE_OK.replace("aarch64", "armv6l")  # no k3s release for it: an error
    inv, cluster, playbooks, _ = _cluster(tmp_path, lambda limit: ok(limit), probe=armv6)
    before = inv.path.read_text()
    with pytest.raises(EdgecluError, match="preflight failed on node9"):
        add_node(cluster, "10.0.0.99", name="node9", role="agent")
    assert inv.path.read_text() == before and playbooks.runs == []
