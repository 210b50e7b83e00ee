"""Upgrade order and batches, and the etcd quorum rule for removing a server (pure)."""

import pytest

from edgeclu.lifecycle.plan import Step, batch_size, check_member_removal, tolerance, upgrade_steps

V1, V2 = "v1.31.4+k3s1", "v1.31.5+k3s1"


@pytest.mark.parametrize(("count", "percent", "size"), [
    (0, 25, 0), (1, 25, 1), (2, 25, 1), (3, 25, 1), (4, 25, 1), (5, 25, 2), (8, 25, 2), (9, 25, 3),
    (3, 50, 2), (10, 10, 1), (10, 11, 2), (7, 100, 7), (1, 1, 1), (99, 1, 1), (101, 1, 2),
])
def test_batch_size_rounds_up_and_is_never_zero(count, percent, size):
    assert batch_size(count, percent) == size


def test_servers_one_at_a_time_then_agent_batches_in_inventory_order():
    versions = dict.fromkeys(["s1", "s2", "a1", "a2", "a3", "a4", "a5"], V1)
    assert upgrade_steps(["s1", "s2"], ["a1", "a2", "a3", "a4", "a5"], 40, versions, V2) == [
        Step("server", ("s1",)), Step("server", ("s2",)),
        Step("agent", ("a1", "a2")), Step("agent", ("a3", "a4")), Step("agent", ("a5",))]


def test_nodes_already_on_the_target_are_skipped_and_batches_keep_their_size():
    versions = {"s1": V2, "s2": V1, "a1": V2, "a2": V1, "a3": V1, "a4": None}
    assert upgrade_steps(["s1", "s2"], ["a1", "a2", "a3", "a4"], 50, versions, V2) == [
        Step("server", ("s2",)), Step("agent", ("a2", "a3")), Step("agent", ("a4",))]
    done = dict.fromkeys(versions, V2)
    assert upgrade_steps(["s1", "s2"], ["a1", "a2", "a3", "a4"], 50, done, V2) == []


@pytest.mark.parametrize(("members", "healthy", "tol"), [(1, 1, 0), (2, 2, 0), (3, 3, 1), (3, 2, 0),
                                                          (3, 1, -1), (4, 4, 1), (5, 5, 2), (5, 3, 0)])
def test_tolerance(members, healthy, tol):
    assert tolerance(members, healthy) == tol


@pytest.mark.parametrize(("target", "members", "ok", "message"), [
    ("s3", {"s1": True, "s2": True, "s3": True}, False,
     "removing s3 would leave etcd unable to survive losing another server: 2 healthy of 2 etcd member(s) left, "
     "quorum needs 2 (now 3 members survive 1 failure(s))"),
    ("s3", {"s1": True, "s2": True, "s3": False}, True,
     "etcd keeps quorum: 2 healthy of 2 etcd member(s) left, quorum needs 2"),
    ("s1", {"s1": True, "s2": True, "s3": False}, False,
     "removing s1 would break etcd quorum: 1 healthy of 2 etcd member(s) left, quorum needs 2"),
    ("s5", dict.fromkeys(["s1", "s2", "s3", "s4", "s5"], True), True,
     "etcd keeps quorum: 4 healthy of 4 etcd member(s) left, quorum needs 3"),
    ("s4", dict.fromkeys(["s1", "s2", "s3", "s4"], True), True,
     "etcd keeps quorum: 3 healthy of 3 etcd member(s) left, quorum needs 2"),
    ("s2", {"s1": True, "s2": True}, True,
     "etcd keeps quorum: 1 healthy of 1 etcd member(s) left, quorum needs 1"),
    ("s1", {"s1": True}, False,
     "s1 is the only etcd member: removing it removes the cluster (use `edgeclu reset` for that)"),
    ("a1", {"s1": True, "s2": True, "s3": True}, True, "a1 is not an etcd member"),
])
def test_member_removal(target, members, ok, message):
    check = check_member_removal(target, members)
    assert (check.ok, check.message) == (ok, message)


# -- add: a Node object left with the new host's name --------------------------------------
def _node(ready, addresses=("10.0.0.3",)):
    from edgeclu.health.kube import KubeNode
    return KubeNode("n3", ready, False, "v1.31.4+k3s1", ("control-plane",), tuple(addresses))


@pytest.mark.parametrize(("node", "running", "action", "words"), [
    (None, False, "join", ""),
    ("ready", True, "keep", "already runs k3s and is in the cluster (Ready at 10.0.0.3)"),
    ("unknown", True, "keep", "(Unknown at 10.0.0.3)"),
    ("ready", False, "delete", "from an earlier install (Ready at 10.0.0.3) but k3s is not running on 10.0.0.3"),
    ("unknown", False, "delete", "from an earlier install (Unknown at 10.0.0.3)"),
    ("other-unknown", False, "delete", "(Unknown at 10.0.0.9)"),
    ("other-ready", False, "refuse", "Ready (Ready at 10.0.0.9), and it is not 10.0.0.3: another machine"),
])
def test_leftover_node_with_the_new_hosts_name(node, running, action, words):
    from edgeclu.lifecycle.plan import check_leftover_node
    obj = {None: None, "ready": _node(True), "unknown": _node(None),
           "other-unknown": _node(None, ["10.0.0.9"]), "other-ready": _node(True, ["10.0.0.9"])}[node]
    check = check_leftover_node("n3", "10.0.0.3", obj, running)
    assert check.action == action
    assert words in check.message
