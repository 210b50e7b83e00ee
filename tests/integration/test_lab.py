"""The lab itself: real, isolated nodes, and a teardown that leaves nothing behind."""

import socket

import paramiko
import pytest

from tests.lab.fixtures import new_prefix
from tests.lab.nodelab import Lab, leftovers

pytestmark = pytest.mark.lab


def _ssh(lab, node, user="root"):
    c = paramiko.SSHClient()
    c.load_host_keys(str(lab.known_hosts))  # strict: unknown keys are rejected
    c.connect(node.ip, username=user, key_filename=str(lab.key), look_for_keys=False, allow_agent=False,
              timeout=5)
    return c


def _run(c, cmd):
    _, o, e = c.exec_command(cmd)
    assert o.channel.recv_exit_status() == 0, e.read().decode()
    return o.read().decode()


def test_nodes_are_separate_machines(lab3):
    ids = set()
    for node in lab3.nodes.values():
        c = _ssh(lab3, node, user="edge")
        assert _run(c, "hostname").strip() == node.name
        assert node.ip in _run(c, "ip -4 -o addr show eth0")
        assert _run(c, "systemctl is-active ssh avahi-daemon").split() == ["active", "active"]
        assert _run(c, "sudo -n id -u").strip() == "0"
        ids.add(_run(c, "cat /etc/machine-id").strip())
        c.close()
    assert len(ids) == 3
    # filesystems are isolated: a file written on node1 exists only there
    c = _ssh(lab3, lab3.nodes["node1"])
    _run(c, "touch /usr/local/bin/only-on-node1")
    c.close()
    assert (lab3.nodes["node1"].upper / "usr/local/bin/only-on-node1").exists()
    c = _ssh(lab3, lab3.nodes["node2"])
    assert "only-on-node1" not in _run(c, "ls /usr/local/bin")
    c.close()


def test_stop_makes_node_unreachable_and_start_brings_it_back(fresh_lab):
    lab = fresh_lab(1)
    node = lab.nodes["node1"]
    c = _ssh(lab, node)
    _run(c, "echo kept > /root/state")
    c.close()
    lab.stop("node1", hard=True)
    with pytest.raises(OSError):
        socket.create_connection((node.ip, 22), timeout=1).close()
    lab.start("node1")
    lab.wait_ssh([node])
    c = _ssh(lab, node)
    assert _run(c, "cat /root/state").strip() == "kept"  # the disk survives a power cycle
    c.close()


def test_teardown_leaves_nothing():
    lab = Lab(prefix=new_prefix())
    try:
        lab.up(2)
        assert leftovers(lab.prefix)  # the check can see a running lab
    finally:
        lab.down()
    assert leftovers(lab.prefix) == []


def test_labctl_down_sweeps_a_lab_whose_process_was_killed():
    """A test run killed with SIGKILL cannot tear its lab down: `labctl.py down PREFIX` does."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from tests.lab.nodelab import sweep

    prefix = new_prefix()
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, str(root / "tests/lab/labctl.py"), "up", "1", prefix], cwd=root,
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        first = proc.stdout.readline()
        assert first.startswith(f"lab {prefix}: 1 nodes"), first
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        left = leftovers(prefix)
        assert any(x.startswith("netns") for x in left) and any(x.startswith("process") for x in left), left
        r = subprocess.run([sys.executable, str(root / "tests/lab/labctl.py"), "down", prefix], cwd=root,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and r.stdout.strip() == "none left", r.stdout + r.stderr
        assert leftovers(prefix) == []
    finally:
        if proc.poll() is None:
            proc.kill()
        sweep(prefix)
