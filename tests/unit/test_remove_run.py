"""`edgeclu remove` on fake nodes: the refusals change nothing (tests/fakes.py)."""

import pytest

from edgeclu.errors import Unreachable
from edgeclu.inventory import load_inventory
from edgeclu.lifecycle.nodes import Refused, remove_node, stop_k3s_command
from tests.fakes import FakeKube, FakePlaybooks, FakeRemote, answer_lock, fake_cluster, inventory_file, ok

V = "v1.31.4+k3s1"


def _three_servers(tmp_path, ready: dict[str, str]):
    inv = load_inventory(inventory_file(tmp_path, ["node1", "node2", "node3"], ["node4"]))
    first = answer_lock(FakeRemote("node1"))
    kube = FakeKube(first, {n: {"version": V, "roles": ("control-plane", "etcd"), "ready": ready.get(n, "True")}
                            for n in ("node1", "node2", "node3")} | {"node4": {"version": V}})
    remotes = {"node1": first, **{n: FakeRemote(n).on("true") for n in ("node2", "node3", "node4")}}
    return inv, remotes, kube


@pytest.mark.parametrize(("down", "target", "why"), [
    ("node2", "node3", "would break etcd quorum: 1 healthy of 2"),  # 2 of 3 Ready: node3 is needed
    (None, "node3", "unable to survive losing another server"),  # 3 of 3: 2 left could lose none
])
def test_removing_a_server_etcd_needs_is_refused_before_anything_changes(tmp_path, down, target, why):
    inv, remotes, kube = _three_servers(tmp_path, {down: "False"} if down else {})
    before = inv.path.read_text()
    with pytest.raises(Refused, match=why):
        remove_node(fake_cluster(inv, remotes), target)
    assert inv.path.read_text() == before and target in kube.nodes
    assert not any("drain" in c or "annotate" in c for c in remotes["node1"].calls)
    assert remotes[target].calls == ["true"]  # reached, never stopped


def test_removing_a_server_etcd_can_spare_goes_ahead(tmp_path):
    inv, remotes, kube = _three_servers(tmp_path, {})
    inv = load_inventory(inventory_file(tmp_path, ["node1", "node2", "node3", "node5", "node6"], ["node4"]))
    for n in ("node5", "node6"):
        kube.nodes[n] = {"version": V, "roles": ("etcd",)}
    FakeKube(remotes["node1"], kube.nodes)  # knows node5 and node6's commands too
    remotes["node3"].on(stop_k3s_command("server"))
    playbooks = FakePlaybooks({"reset.yml": lambda limit, **_: ok(limit)})
    outcome = remove_node(fake_cluster(inv, remotes, playbooks), "node3")
    assert outcome.ok and "node3" not in kube.nodes and "etcd keeps quorum" in outcome.quorum.message
    assert [r["limit"] for r in playbooks.runs] == ["node3"]
    assert [h.name for h in load_inventory(inv.path).hosts] == ["node1", "node2", "node5", "node6", "node4"]


def test_a_drain_that_does_not_finish_is_refused_and_the_node_uncordoned(tmp_path):
    inv = load_inventory(inventory_file(tmp_path, ["node1"], ["node2"]))
    first = answer_lock(FakeRemote("node1"))
    kube = FakeKube(first, {"node1": {"version": V}, "node2": {"version": V}}, stuck=("node2",))
    node2 = FakeRemote("node2").on("true")
    before = inv.path.read_text()
    with pytest.raises(Refused, match="node2 could not be drained .1 pod.s. would not move"):
        remove_node(fake_cluster(inv, {"node1": first, "node2": node2}), "node2")
    assert kube.nodes["node2"]["cordoned"] is False and kube.nodes["node2"]["mark"] is None
    assert inv.path.read_text() == before and node2.calls == ["true"]  # k3s not stopped


def test_an_unreachable_node_is_refused_without_force(tmp_path):
    inv = load_inventory(inventory_file(tmp_path, ["node1"], ["node2"]))
    node2 = FakeRemote("node2").on("true", Unreachable("node2", "10.0.0.11:22 timed out after 5s"))
    before = inv.path.read_text()
    with pytest.raises(Refused, match="timed out.*--force"):
        remove_node(fake_cluster(inv, {"node2": node2}), "node2")  # node1 is never even contacted
    assert inv.path.read_text() == before
