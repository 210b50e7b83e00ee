"""`edgeclu exec` over real SSH on lab nodes: parallel, per-node results, a dead node reported."""

import json
import time

import pytest
from typer.testing import CliRunner

from edgeclu.cli import app

pytestmark = pytest.mark.lab


@pytest.fixture
def inventory(tmp_path):
    def write(lab, user="edge", names=None):
        names = names or list(lab.nodes)
        path = tmp_path / "inventory.yml"
        path.write_text(lab.inventory_yaml(servers=names[:1], agents=names[1:], user=user,
                                           extra_vars={"k3s_version": "v1.31.4+k3s1"}))
        return path
    return write


def _exec(*args):
    return CliRunner().invoke(app, ["exec", *args])


def test_exec_parallel_with_a_node_stopped_mid_test(fresh_lab, inventory):
    lab = fresh_lab(3)
    inv = inventory(lab)

    # all three answer, in parallel: three 1-second sleeps take well under 3 s
    t0 = time.monotonic()
    r = _exec("-i", str(inv), "--json", "--sudo", "--", "sleep 1; hostname; id -u")
    wall = time.monotonic() - t0
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert {n: d["stdout"].split() for n, d in doc.items()} == {
        "node1": ["node1", "0"], "node2": ["node2", "0"], "node3": ["node3", "0"]}
    assert wall < 2.5, f"not parallel: {wall:.2f}s"

    # node2 loses power mid-test: it is reported unreachable, the others still succeed
    lab.stop("node2", hard=True)
    r = _exec("-i", str(inv), "--json", "--", "hostname")
    assert r.exit_code == 3, r.output
    doc = json.loads(r.stdout)
    assert doc["node1"] == {"ok": True, "unreachable": False, "exit_code": 0,
                            "stdout": "node1\n", "stderr": ""}
    assert doc["node3"]["stdout"] == "node3\n"
    assert doc["node2"]["ok"] is False and doc["node2"]["unreachable"] is True
    assert "node2" in doc["node2"]["error"] and lab.nodes["node2"].ip in doc["node2"]["error"]


def test_exec_reports_failing_command_per_node(lab3, inventory):
    inv = inventory(lab3)
    r = _exec("-i", str(inv), "--", 'test "$(hostname)" != node3')
    assert r.exit_code == 1
    assert "✗ exit 1 node3" in r.stderr
    assert "✓ node1" in r.stderr and "✓ node2" in r.stderr


def test_unknown_host_key_is_refused_then_accepted_with_accept_new(lab3, inventory, tmp_path):
    inv = inventory(lab3, names=["node1"])
    empty = tmp_path / "known_hosts"
    r = _exec("-i", str(inv), "--known-hosts", str(empty), "--", "true")
    assert r.exit_code == 1
    assert "unknown host key" in r.stderr and "--accept-new" in r.stderr
    assert not empty.exists()
    r = _exec("-i", str(inv), "--known-hosts", str(empty), "--accept-new", "--", "true")
    assert r.exit_code == 0, r.output
    assert "trusted new host key ssh-ed25519 SHA256:" in r.stderr
    assert lab3.nodes["node1"].ip in empty.read_text()
    # now it is known: strict mode passes
    assert _exec("-i", str(inv), "--known-hosts", str(empty), "--", "true").exit_code == 0


def test_changed_host_key_is_refused_even_with_accept_new(lab3, inventory, tmp_path):
    inv = inventory(lab3, names=["node1"])
    wrong = tmp_path / "known_hosts"
    other = (lab3.nodes["node2"].dir / "ssh_host_ed25519_key.pub").read_text().split()
    wrong.write_text(f"{lab3.nodes['node1'].ip} {other[0]} {other[1]}\n")
    r = _exec("-i", str(inv), "--known-hosts", str(wrong), "--accept-new", "--", "true")
    assert r.exit_code == 1
    assert "HOST KEY CHANGED" in r.stderr


def test_sub_second_connect_timeout_is_honoured(lab3):
    from edgeclu.errors import Unreachable
    from edgeclu.transport import SSHRemote

    # nobody has this address on the lab LAN: without a timeout, ARP/SYN retries would take seconds
    r = SSHRemote("ghost", "10.77.0.99", key_file=str(lab3.key), known_hosts=lab3.known_hosts,
                  connect_timeout=0.5)
    t0 = time.monotonic()
    with pytest.raises(Unreachable, match="ghost: 10.77.0.99:22"):
        r.run("true")
    assert time.monotonic() - t0 < 2.0


def test_run_feeds_stdin_whole_and_promptly(lab3):
    import hashlib
    import socket

    from edgeclu.transport import SSHRemote

    n = lab3.nodes["node1"]
    r = SSHRemote("node1", n.ip, user="edge", key_file=str(lab3.key), known_hosts=lab3.known_hosts)
    try:
        data = ("é\0" * 100_000).encode()  # 300 kB, not ASCII, with NUL bytes (the node script framing has one)
        t0 = time.monotonic()
        out = r.run("sha256sum", stdin=data, timeout=20).stdout
        assert out.split()[0] == hashlib.sha256(data).hexdigest()
        assert time.monotonic() - t0 < 5  # invoke alone reads such a stream a byte per 10 ms: minutes
        # no Nagle on the session (as OpenSSH): a command's last packet is not held for the node's delayed ACK
        sock = r._connection().client.get_transport().sock
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        times = []
        for _ in range(5):
            t0 = time.monotonic()
            r.run("true")
            times.append(time.monotonic() - t0)
        assert min(times) < 0.035, times  # about 15 ms here; 50 ms with the delayed ACK
    finally:
        r.close()
