"""The Cluster context (edgeclu/cluster.py) on fake nodes: the lock is released and its connection
closed however the locked block ends; playbooks run with the cluster's SSH policy."""

import shlex

import pytest

from edgeclu.cluster import Cluster
from edgeclu.inventory import load_inventory
from edgeclu.lock import LockHeld
from tests.fakes import FakePlaybooks, FakeRemote, answer_lock, fake_cluster, inventory_file, ok


def _modes(remote: FakeRemote) -> list[str]:
    return [shlex.split(c)[-4] for c in remote.calls if "flock" in c]


def test_the_lock_is_released_and_closed_when_the_block_fails(tmp_path):
    inv = load_inventory(inventory_file(tmp_path, ["node1"], ["node2"]))
    first = answer_lock(FakeRemote("node1"))
    with pytest.raises(RuntimeError, match="boom"), fake_cluster(inv, {"node1": first}).locked("upgrade"):
        raise RuntimeError("boom")
    assert _modes(first) == ["acquire", "release"] and first.closed == 1


def test_a_held_lock_stops_the_run_before_the_block(tmp_path):
    inv = load_inventory(inventory_file(tmp_path, ["node1"], ["node2"]))
    first = answer_lock(FakeRemote("node1"), held_by="pi@laptop pid 7")
    ran = []
    cluster = fake_cluster(inv, {"node1": first})
    with pytest.raises(LockHeld, match="locked by pi@laptop pid 7 running `up`"), cluster.locked("remove"):
        ran.append(True)
    assert ran == [] and first.closed == 1


def test_a_connection_the_caller_keeps_is_not_closed_by_the_lock(tmp_path):
    inv = load_inventory(inventory_file(tmp_path, ["node1"], ["node2"]))
    first = answer_lock(FakeRemote("node1"))
    with fake_cluster(inv, {"node1": first}).locked("restore", remote=first):
        pass
    assert _modes(first) == ["acquire", "release"] and first.closed == 0


def test_playbooks_get_the_ssh_policy_and_enough_forks(tmp_path):
    inv = load_inventory(inventory_file(tmp_path, ["node1"], [f"a{i}" for i in range(12)]))
    seen = {}

    def runner(inventory, playbook, **kw):
        seen.update(kw, inventory=inventory, playbook=playbook)
        return FakePlaybooks({"site.yml": lambda limit, **_: ok("a1", "a2")})(inventory, playbook, **kw)

    cluster = Cluster(inv, tmp_path / "kh", accept_new=True, runner=runner)
    assert cluster.playbook("site.yml", limit=("a1", "a2")).ok
    assert (seen["inventory"], seen["playbook"], seen["limit"]) == (inv.path, "site.yml", "a1,a2")
    assert (seen["known_hosts"], seen["accept_new"], seen["forks"]) == (tmp_path / "kh", True, 13)
