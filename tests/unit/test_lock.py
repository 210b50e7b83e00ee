"""The cluster lock's node script (run here, as on a node) and the holder's fencing.

The script is the real one (``edgeclu.lock._PY``) run by this machine's python3 against a
temporary lock file; the clocks it would see after an NTP step or a reboot are faked by
wrapping ``time.time`` and the boot id. ``LocalNode`` is a test double for an SSH remote:
it runs the real lock command in a temporary directory instead of /var/lib/edgeclu, and can
be cut off the network."""

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edgeclu import lock
from edgeclu.errors import Unreachable
from edgeclu.lock import ClusterLock, LockLost, Owner, lease_problem
from edgeclu.transport import Result

BOOT_ID = "/proc/sys/kernel/random/boot_id"


def script(path, mode, owner, ttl=60.0, *, wall_shift=0.0, boot=None):
    """Run the node script; ``wall_shift``: the wall clock stepped by that much; ``boot``: another boot id."""
    pre = f"import time\n_t = time.time\ntime.time = lambda: _t() + {wall_shift}\n"
    if boot:
        pre += ("import builtins, io\n_open = builtins.open\n"
                f"builtins.open = lambda p, *a, **k: (io.StringIO({boot!r}) if p == {BOOT_ID!r}\n"
                "                                     else _open(p, *a, **k))\n")
    owner_json = json.dumps({"id": owner.id, "who": owner.who, "action": owner.action})
    r = subprocess.run([sys.executable, "-c", pre + lock._PY, str(path), mode, owner.id, owner_json, str(ttl)],
                       capture_output=True, text=True, timeout=30)
    return r.returncode, json.loads(r.stdout or "{}")


A, B = Owner("a" * 32, "alice@laptop pid 1", "up"), Owner("b" * 32, "bob@desk pid 2", "upgrade")


def test_a_wall_clock_step_does_not_expire_a_live_lease(tmp_path):
    path = tmp_path / "cluster.lock"
    assert script(path, "acquire", A)[0] == 0
    # a Pi without an RTC syncs NTP and its clock jumps a day ahead: the lease is still alive
    code, doc = script(path, "acquire", B, wall_shift=86400)
    assert code == 3 and doc["held"]["id"] == A.id
    assert script(path, "renew", A, wall_shift=86400)[0] == 0


def test_a_lease_from_another_boot_lasts_its_ttl_from_the_first_look_after_the_reboot(tmp_path):
    path = tmp_path / "cluster.lock"
    # written before the node rebooted; on that boot's clock it ran out long ago
    path.write_text(json.dumps({"id": A.id, "who": A.who, "action": "up", "since": 0, "expires": 5.0,
                                "boot": "an-earlier-boot", "ttl": 1.0}))
    code, doc = script(path, "acquire", B)
    assert code == 3 and doc["held"]["id"] == A.id
    assert json.loads(path.read_text())["boot"] == Path(BOOT_ID).read_text().strip()
    time.sleep(1.2)  # its ttl, counted in this boot
    code, doc = script(path, "acquire", B)
    assert code == 0 and doc["took_over"]["id"] == A.id


def test_the_holder_renews_across_a_reboot_and_a_stranger_cannot(tmp_path):
    path = tmp_path / "cluster.lock"
    assert script(path, "acquire", A)[0] == 0
    assert script(path, "renew", A, boot="rebooted")[0] == 0
    code, doc = script(path, "renew", B)
    assert code == 4 and doc["lost"]["id"] == A.id


class LocalNode:
    """Test double for an SSH remote: runs the lock commands here, in ``root`` for /var/lib/edgeclu."""

    name = "node1"

    def __init__(self, root):
        self.root, self.cut, self.hang = root, False, threading.Event()

    def run(self, command, *, sudo=False, check=True, timeout=None):
        if self.cut == "hang":  # like SSH opening a channel on a dead link: no timeout applies
            self.hang.wait()
            raise Unreachable(self.name, "connection closed")
        if self.cut:
            time.sleep(min(timeout or 1, 0.3))
            raise Unreachable(self.name, "timed out")
        r = subprocess.run(["sh", "-c", command.replace(lock.LOCK_DIR, str(self.root))], capture_output=True,
                           text=True, timeout=30)
        return Result(self.name, command, r.returncode, r.stdout, r.stderr)

    def close(self):
        self.hang.set()


def test_a_holder_that_cannot_renew_stops_before_the_node_calls_its_lease_stale(tmp_path):
    node = LocalNode(tmp_path)
    reports = []
    held = ClusterLock(node, "up", ttl=2, renew_every=0.25, report=reports.append)
    held.acquire()
    try:
        assert lease_problem() is None
        held.check("the playbook")
        node.cut = True  # the first server's link goes down
        cut_at = time.monotonic()
        while lease_problem() is None:
            assert time.monotonic() - cut_at < 2, "the lease was trusted for its whole ttl"
            time.sleep(0.05)
        assert "could not be renewed for 2s; another run may have taken it over" in lease_problem()
        with pytest.raises(LockLost, match="stopped before the playbook"):
            held.check("the playbook")
        with pytest.raises(LockLost):
            held.confirm("draining node2")
        # the node calls it stale only after its ttl: then another run takes over
        time.sleep(max(0.0, cut_at + 2.1 - time.monotonic()))
        other = ClusterLock(LocalNode(tmp_path), "up", ttl=60, report=reports.append)
        other.acquire()
        other.release()
    finally:
        held.release()
    assert any(r.startswith("took over a stale cluster lock left by") for r in reports)
    assert lease_problem() is None  # released: this process holds no lease


def test_a_lease_taken_over_is_seen_at_the_next_renewal(tmp_path):
    held = ClusterLock(LocalNode(tmp_path), "up", ttl=60, renew_every=0.2, report=lambda m: None)
    held.acquire()
    try:
        doc = json.loads((tmp_path / "cluster.lock").read_text())
        doc["id"] = B.id  # someone else wrote the lock
        (tmp_path / "cluster.lock").write_text(json.dumps(doc))
        deadline = time.monotonic() + 5
        while lease_problem() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "was taken over by" in (lease_problem() or "")
        with pytest.raises(LockLost):
            held.confirm("deleting the Node node3")
    finally:
        held.release()
    assert (tmp_path / "cluster.lock").exists()  # not ours: release leaves it alone


def test_the_upgrade_record_is_read_when_the_lock_is_taken(tmp_path):
    node = LocalNode(tmp_path)
    with ClusterLock(node, "upgrade", ttl=60) as lk:
        assert lk.upgrade is None
        lk.set_upgrade({"target": "v1.31.5+k3s1", "who": "me"})
    assert oct((tmp_path / "upgrade.json").stat().st_mode & 0o777) == "0o600"
    with ClusterLock(node, "up", ttl=60) as lk:
        assert lk.upgrade == {"target": "v1.31.5+k3s1", "who": "me"}
        lk.set_upgrade(None)
    with ClusterLock(node, "up", ttl=60) as lk:
        assert lk.upgrade is None


def test_a_run_record_next_to_the_lock_is_written_read_and_cleared(tmp_path):
    from edgeclu.lifecycle.certs import ROTATE_FILE

    node = LocalNode(tmp_path)
    with ClusterLock(node, "certs rotate", ttl=60) as lk:
        assert lk.read_record(ROTATE_FILE) is None
        lk.write_record(ROTATE_FILE, {"started": 1.5, "done": ["node1"]})
    assert oct((tmp_path / "certs-rotate.json").stat().st_mode & 0o777) == "0o600"
    with ClusterLock(node, "certs rotate", ttl=60) as lk:
        assert lk.read_record(ROTATE_FILE) == {"started": 1.5, "done": ["node1"]}
        (tmp_path / "certs-rotate.json").write_text("[not, an, object")
        assert lk.read_record(ROTATE_FILE) is None
        lk.write_record(ROTATE_FILE, None)
    assert not (tmp_path / "certs-rotate.json").exists()


@pytest.mark.parametrize(("value", "ok"), [("", True), ("5", True), ("1", False), ("soon", False)])
def test_lock_ttl_from_the_environment(monkeypatch, value, ok):
    monkeypatch.setenv(lock.TTL_ENV, value)
    if ok:
        assert lock.lock_ttl() == (float(value) if value else lock.DEFAULT_TTL)
    else:
        with pytest.raises(lock.EdgecluError, match=lock.TTL_ENV):
            lock.lock_ttl()


def test_a_lock_command_that_never_answers_does_not_hang_the_run(tmp_path):
    node = LocalNode(tmp_path)
    held = ClusterLock(node, "up", ttl=2, renew_every=0.25, report=lambda m: None)
    held.acquire()
    node.cut = "hang"
    t0 = time.monotonic()
    while lease_problem() is None:
        assert time.monotonic() - t0 < 2
        time.sleep(0.05)
    held.release()  # its renewal hangs; the release gives up instead of waiting for it
    assert time.monotonic() - t0 < 10
    assert lease_problem() is None


def test_a_lease_abandoned_without_release_does_not_stop_later_runs_of_this_process(tmp_path):
    # a test (or library user) that simulates a dead run stops the renewer and never releases: the
    # lease it leaves behind must not make every later playbook run of the process stop as "lost"
    crashed = ClusterLock(LocalNode(tmp_path), "up", ttl=2, renew_every=0.25, report=lambda _: None)
    crashed.acquire()
    crashed._stop.set()  # the run "dies": no more renewals, no release
    time.sleep(1.8)  # past SAFETY * ttl: that lease is surely not good any more
    assert crashed.problem() is not None
    assert lease_problem() is None
