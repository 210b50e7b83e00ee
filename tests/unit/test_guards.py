"""What a run refuses before it changes anything: downgrades, an upgrade in progress, and which
unreachable nodes `up --skip-unreachable` may leave out (edgeclu/guards.py)."""

import pytest

from edgeclu.guards import downgrade_refusal, newer_nodes, pending_upgrade_refusal, skip_plan

V1, V2, V3 = "v1.31.4+k3s1", "v1.31.5+k3s1", "v1.32.0+k3s1"


@pytest.mark.parametrize(("installed", "wanted", "newer"), [
    ({"a": V1, "b": V1}, V1, {}),
    ({"a": V2, "b": V1}, V1, {"a": V2}),  # an upgrade stopped after a
    ({"a": V1}, V2, {}),  # older: an upgrade, not a downgrade
    ({"a": None, "b": "", "c": "garbage"}, V1, {}),  # no k3s, or a version we cannot read
    ({"a": "v1.31.4-rc1+k3s1"}, V1, {}),  # an rc sorts before its release
    ({"a": "v1.31.4+k3s2"}, V1, {"a": "v1.31.4+k3s2"}),  # a newer k3s revision counts
])
def test_newer_nodes(installed, wanted, newer):
    assert newer_nodes(installed, wanted) == newer


def test_downgrade_refusal_names_each_node_both_versions_and_the_way_out():
    msg = downgrade_refusal({"n1": V2, "n2": V1, "n3": V3}, V1)
    assert msg == (f"n1 runs k3s {V2}, n3 runs k3s {V3}, newer than the inventory's k3s_version {V1}; k3s cannot "
                   f"be downgraded, so nothing was changed. To finish the upgrade: "
                   f"`edgeclu upgrade --k3s-version {V3}`")
    # the recorded upgrade target is the way out when there is one
    assert downgrade_refusal({"n1": V2}, V1, {"target": V3}).endswith(f"--k3s-version {V3}`")
    assert downgrade_refusal({"n1": V1, "n2": None}, V1) is None


@pytest.mark.parametrize(("record", "wanted", "refused"), [
    (None, V1, False),
    ({}, V1, False),
    ({"target": V2, "who": "me@laptop pid 1"}, V1, True),  # upgrade to V2 stopped; inventory still V1
    ({"target": V2}, V2, False),  # the inventory caught up: up installs V2 where it is missing
    ({"target": V2}, V3, False),  # the user moved on past it
    ({"target": "nonsense"}, V1, False),
])
def test_pending_upgrade_refusal(record, wanted, refused):
    msg = pending_upgrade_refusal(record, wanted)
    assert (msg is not None) == refused
    if refused:
        assert msg == (f"an upgrade to k3s {V2} was started by {record['who']} and has not finished (the inventory "
                       f"still says {V1}); nothing was changed. To finish it: `edgeclu upgrade --k3s-version {V2}`")


@pytest.mark.parametrize(("servers", "agents", "down", "nodes", "why"), [
    (["s1"], ["a1", "a2"], {"a2"}, ["s1", "a1"], None),
    (["s1", "s2", "s3"], ["a1"], {"s3", "a1"}, ["s1", "s2"], None),  # 2 of 3 keep quorum
    (["s1"], ["a1"], {"s1"}, [], "the first server s1 is unreachable"),
    (["s1", "s2", "s3"], [], {"s2", "s3"}, [], "1 of 3 servers are reachable, and etcd needs 2"),
    (["s1", "s2"], [], {"s2"}, [], "1 of 2 servers are reachable, and etcd needs 2"),
    (["s1"], ["a1"], set(), ["s1", "a1"], None),
])
def test_skip_plan(servers, agents, down, nodes, why):
    got_nodes, got_why = skip_plan(servers, agents, down)
    assert got_nodes == nodes
    assert (got_why is None) if why is None else got_why.startswith(why)
