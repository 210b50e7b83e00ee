"""The cluster lock through the real CLI: two `edgeclu up` at once, and every lifecycle command
refusing to start while another run holds the cluster."""

import time

import pytest

from edgeclu.lock import ClusterLock
from edgeclu.transport import SSHRemote
from tests.integration.lifecycle_util import edgeclu, kube_nodes, start, write_inventory
from tests.k3s_standin.fixtures import V2, k3s_mirror, k3s_releases  # noqa: F401

pytestmark = pytest.mark.lab


def test_two_concurrent_ups_one_fails_fast_with_the_lock_message(fresh_lab, k3s_mirror, tmp_path):  # noqa: F811
    lab = fresh_lab(1)
    inv = write_inventory(tmp_path, lab, k3s_mirror(lab), ["node1"], [])
    t0 = time.monotonic()
    procs = [start(tmp_path, "up", "-i", str(inv)) for _ in range(2)]
    took, results = {}, {}
    while len(results) < 2:
        for i, p in enumerate(procs):
            if i not in results and p.poll() is not None:
                took[i] = time.monotonic() - t0
                results[i] = (p.returncode, *p.communicate())
        time.sleep(0.05)
    codes = sorted(r[0] for r in results.values())
    assert codes == [0, 4], {i: (r[0], r[2][-3000:]) for i, r in results.items()}
    loser = next(i for i, r in results.items() if r[0] == 4)
    winner = 1 - loser
    err = results[loser][2]
    assert "error: cluster is locked by" in err and "running `up`" in err
    assert "node1:/var/lib/edgeclu/cluster.lock" in err and "Wait for it to finish" in err
    # fails fast: before the winner is even half done, and never touched k3s
    assert took[loser] < 15 and took[loser] < took[winner] / 2, took
    assert "k3s" not in results[loser][1]
    assert kube_nodes(lab)["node1"]["ready"]
    # released by the winner (which stamped the node: see edgeclu/stamp.py)
    assert lab.exec("node1", "ls /var/lib/edgeclu") == "converged\n"


def test_lifecycle_commands_wait_for_nobody(fresh_lab, k3s_mirror, tmp_path):  # noqa: F811
    lab = fresh_lab(2)
    inv = write_inventory(tmp_path, lab, k3s_mirror(lab), ["node1"], ["node2"])
    assert edgeclu(tmp_path, "up", "-i", str(inv)).returncode == 0
    n = lab.nodes["node1"]
    held = ClusterLock(SSHRemote("node1", n.ip, user="edge", key_file=str(lab.key), known_hosts=lab.known_hosts),
                       "upgrade")
    held.acquire()
    try:
        for args in (["up"], ["upgrade", "--k3s-version", V2], ["remove", "node2"], ["reset", "--yes"]):
            t0 = time.monotonic()
            r = edgeclu(tmp_path, *args, "-i", str(inv))
            assert r.returncode == 4, (args, r.stderr[-3000:])
            assert "cluster is locked by" in r.stderr and "running `upgrade`" in r.stderr, args
            assert time.monotonic() - t0 < 20, args
    finally:
        held.release()
    nodes = kube_nodes(lab)
    assert set(nodes) == {"node1", "node2"} and all(v["ready"] and not v["cordoned"] for v in nodes.values())
    assert lab.exec("node2", "systemctl is-active k3s-agent").strip() == "active"
