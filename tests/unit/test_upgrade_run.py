"""`edgeclu upgrade` on fake nodes: what is cordoned is uncordoned, however a step ends (tests/fakes.py)."""

from edgeclu.inventory import load_inventory
from edgeclu.lifecycle.upgrade import upgrade_cluster
from tests.fakes import FakeKube, FakePlaybooks, FakeRemote, answer_lock, failed, fake_cluster, inventory_file, ok

V1, V2 = "v1.31.4+k3s1", "v1.31.5+k3s1"


def _setup(tmp_path, *, broken=(), stuck=(), marked=None, record=None):
    """node1 (server), node2 and node3 (agents, one per batch) on V1; ``broken`` nodes fail their install."""
    inv = load_inventory(inventory_file(tmp_path, ["node1"], ["node2", "node3"], upgrade_batch_percent=50))
    server = answer_lock(FakeRemote("node1"), upgrade=record)
    nodes = {n: {"version": V1} for n in ("node1", "node2", "node3")}
    for n, action in (marked or {}).items():
        nodes[n].update(cordoned=True, mark=action)
    kube = FakeKube(server, nodes, stuck=stuck)

    def site(limit, extravars, **_):
        assert extravars == {"k3s_version": V2}
        names = limit.split(",")
        if any(n in broken for n in names):
            return failed(names[0], "k3s did not start")
        for n in names:
            nodes[n]["version"] = V2
        return ok(*names)

    playbooks = FakePlaybooks({"site.yml": site})
    reports: list[str] = []
    return inv, fake_cluster(inv, {"node1": server}, playbooks, reports), server, kube, playbooks, reports


def test_every_node_upgraded_in_order_uncordoned_and_the_inventory_set(tmp_path):
    inv, cluster, server, kube, playbooks, _ = _setup(tmp_path)
    outcome = upgrade_cluster(cluster, V2, ready_timeout=1)
    assert outcome.ok and outcome.upgraded == ["node1", "node2", "node3"]
    assert [r["limit"] for r in playbooks.runs] == ["node1", "node2", "node3"]
    assert not any(n.get("cordoned") or n.get("mark") for n in kube.nodes.values())
    assert load_inventory(inv.path).vars["k3s_version"] == V2
    assert server.calls[-2] == "rm -f /var/lib/edgeclu/upgrade.json"  # the record cleared, then the lock released


def test_a_node_that_fails_its_install_is_uncordoned_and_the_run_stops(tmp_path):
    inv, cluster, server, kube, playbooks, _ = _setup(tmp_path, broken=("node2",))
    outcome = upgrade_cluster(cluster, V2, ready_timeout=1)
    assert not outcome.ok and outcome.upgraded == ["node1"]
    assert list(outcome.failed) == ["node2"] and outcome.not_started == ["node3"]
    assert kube.nodes["node2"].get("cordoned") is False and kube.nodes["node2"].get("mark") is None
    assert [r["limit"] for r in playbooks.runs] == ["node1", "node2"]  # node3 never touched
    assert load_inventory(inv.path).vars["k3s_version"] == V1
    # the target stays recorded next to the lock, so `edgeclu up` will not run V1 over node1
    assert not server.ran("rm -f /var/lib/edgeclu/upgrade.json")


def test_a_drain_that_does_not_finish_uncordons_and_installs_nothing_there(tmp_path):
    _, cluster, _, kube, playbooks, reports = _setup(tmp_path, stuck=("node2",))
    outcome = upgrade_cluster(cluster, V2, ready_timeout=1)
    assert "drain did not finish" in outcome.failed["node2"]
    assert kube.nodes["node2"].get("cordoned") is False and kube.nodes["node2"].get("mark") is None
    assert [r["limit"] for r in playbooks.runs] == ["node1"]
    assert any("default/db-0: PodDisruptionBudget default/db allows 0 disruptions" in r for r in reports)


def test_a_resumed_run_first_uncordons_what_a_stopped_one_left_marked(tmp_path):
    # an earlier upgrade stopped after cordoning node3; node1 already runs V2
    _, cluster, server, kube, playbooks, reports = _setup(
        tmp_path, marked={"node3": "upgrade"}, record={"target": V2, "who": "pi@laptop pid 7"})
    kube.nodes["node1"]["version"] = V2
    outcome = upgrade_cluster(cluster, V2, ready_timeout=1)
    assert outcome.ok and outcome.skipped == ["node1"] and outcome.upgraded == ["node2", "node3"]
    assert any("resuming the upgrade to " + V2 in r for r in reports)
    uncordon = server.calls.index("k3s kubectl uncordon node3")
    assert uncordon < server.calls.index("k3s kubectl drain node2 --ignore-daemonsets --delete-emptydir-data "
                                         "--timeout=120s")
    assert not any(n.get("cordoned") or n.get("mark") for n in kube.nodes.values())


def test_a_node_the_user_cordoned_is_left_cordoned(tmp_path):
    _, cluster, server, kube, _, _ = _setup(tmp_path)
    kube.nodes["node3"]["cordoned"] = True  # by hand: no edgeclu mark
    kube.nodes["node3"]["version"] = V2  # and nothing to do there
    outcome = upgrade_cluster(cluster, V2, ready_timeout=1)
    assert outcome.ok and kube.nodes["node3"]["cordoned"] is True
    assert not server.ran("k3s kubectl uncordon node3")
