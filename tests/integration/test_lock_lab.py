"""The cluster lock on a real node: exclusive, released, and stale-safe."""

import time

import pytest

from edgeclu.lock import ClusterLock, LockHeld
from edgeclu.transport import SSHRemote

pytestmark = pytest.mark.lab


def _remote(lab, name="node1"):
    n = lab.nodes[name]
    return SSHRemote(name, n.ip, user="edge", key_file=str(lab.key), known_hosts=lab.known_hosts)


def test_second_run_fails_fast_then_succeeds_after_release(lab3):
    first = ClusterLock(_remote(lab3), "up")
    first.acquire()
    try:
        t0 = time.monotonic()
        with pytest.raises(LockHeld) as exc:
            ClusterLock(_remote(lab3), "upgrade").acquire()
        assert time.monotonic() - t0 < 3
        msg = str(exc.value)
        assert "cluster is locked by" in msg and "running `up`" in msg and "node1:/var/lib/edgeclu/cluster.lock" in msg
        assert exc.value.exit_code == 4
    finally:
        first.release()
    with ClusterLock(_remote(lab3), "upgrade"):
        assert "upgrade" in lab3.exec("node1", "cat /var/lib/edgeclu/cluster.lock")
    assert lab3.exec("node1", "ls /var/lib/edgeclu") == ""


def test_lease_is_renewed_while_the_run_lasts(lab3):
    with ClusterLock(_remote(lab3), "up", ttl=2, renew_every=0.5):
        time.sleep(3)  # longer than the ttl: only renewal keeps it
        with pytest.raises(LockHeld):
            ClusterLock(_remote(lab3), "remove").acquire()


def test_a_dead_run_leaves_a_stale_lock_that_is_taken_over(lab3):
    crashed = ClusterLock(_remote(lab3), "up", ttl=2)
    crashed.acquire()
    crashed._stop.set()  # the process "dies": no more renewals, no release
    with pytest.raises(LockHeld):
        ClusterLock(_remote(lab3), "up").acquire()
    time.sleep(2.5)
    reports = []
    with ClusterLock(_remote(lab3), "up", report=reports.append):
        pass
    assert len(reports) == 1 and reports[0].startswith("took over a stale cluster lock left by")
