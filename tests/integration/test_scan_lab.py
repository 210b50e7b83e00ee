"""`edgeclu discover --scan` on the lab LAN: nodes as freshly flashed, with avahi but no service announced.

Lab nodes boot like a fresh Debian with avahi: the host name is published, no
``_ssh._tcp``/``_workstation._tcp`` (Debian's avahi ships with publish-workstation=no and
no service files), so plain ``discover`` finds nothing. The scan talks to their real sshd
and real avahi, and reads the controller's real neighbour table.
"""

import json
import subprocess
import time

import pytest
from typer.testing import CliRunner

from edgeclu.cli import app
from edgeclu.inventory import load_inventory

pytestmark = pytest.mark.lab

PI_MAC = "dc:a6:32:00:00:02"  # a Raspberry Pi Trading Ltd OUI (IEEE), given to node2's interface


def _discover(*args):
    t0 = time.monotonic()
    r = CliRunner().invoke(app, ["discover", *args])
    return r, time.monotonic() - t0


def node_mac(lab, name):
    """The node's MAC as the kernel reports it inside the node (not through our code)."""
    out = subprocess.run(["ip", "-n", lab.nodes[name].netns, "-j", "link", "show", "eth0"], capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out)[0]["address"]


def openssh_version(lab, name):
    """The node's OpenSSH build as it prints it (``ssh -V``: ``OpenSSH_9.2p1 Debian-2+deb12u10, OpenSSL ...``;
    openssh-client and openssh-server come from one source package)."""
    return lab.exec(name, "ssh -V 2>&1").split(",")[0].strip()


@pytest.fixture(scope="module")
def fresh(lab3):
    subprocess.run(["ip", "-n", lab3.nodes["node2"].netns, "link", "set", "eth0", "address", PI_MAC], check=True)
    subprocess.run(["ip", "neigh", "flush", "all"], check=True)  # this thread is in the controller's netns
    return lab3


def test_plain_discover_finds_nothing_on_fresh_nodes(fresh):
    r, _ = _discover("--timeout", "1.5", "--json")
    assert r.exit_code == 1 and json.loads(r.stdout) == []
    assert "0 host(s) found" in r.stderr


def test_scan_finds_them_with_their_names_within_5s(fresh):
    r, wall = _discover("--scan", "10.77.0.0/24", "--json")  # the default --timeout 3: mDNS listens meanwhile
    assert r.exit_code == 0, r.output
    assert wall < 5, f"took {wall:.2f}s"
    hosts = {h["hostname"]: h for h in json.loads(r.stdout)}
    assert sorted(hosts) == ["node1", "node2", "node3"]
    for name, h in hosts.items():
        ip = fresh.nodes[name].ip
        assert (h["addresses"], h["services"], h["ssh_port"]) == ([ip], ["scan"], 22)
        [seen] = h["scan"]
        assert seen["address"] == ip and seen["reverse_name"] == name
        assert seen["ssh_banner"].startswith("SSH-2.0-") and openssh_version(fresh, name) in seen["ssh_banner"]
        assert seen["mac"] == node_mac(fresh, name)
    assert hosts["node2"]["scan"][0]["mac_vendor"] == "Raspberry Pi"
    assert "mac_vendor" not in hosts["node1"]["scan"][0]  # a random (locally administered) veth MAC
    assert "scanning 254 address(es) in 10.77.0.0/24" in r.stderr
    assert "3 host(s) found" in r.stderr


def test_table_names_the_source_of_each_fact(fresh):
    r, _ = _discover("--scan", "10.77.0.0/24", "--timeout", "1")
    assert r.exit_code == 0, r.output
    rows = {line.split()[0]: line for line in r.stdout.splitlines()[1:]}
    assert rows["node2"].split()[:3] == ["node2", fresh.nodes["node2"].ip, "scan"]
    assert "Raspberry Pi (by MAC)" in rows["node2"] and "Raspberry Pi" not in rows["node1"]


def test_scan_defaults_to_the_controllers_subnet(fresh):
    r, wall = _discover("--scan", "--timeout", "1", "--json")
    assert r.exit_code == 0, r.output
    assert sorted(h["hostname"] for h in json.loads(r.stdout)) == ["node1", "node2", "node3"]
    assert "in 10.77.0.0/24" in r.stderr and wall < 3


def test_scan_never_leaves_the_range(fresh):
    r, _ = _discover("--scan", "10.77.0.12/32", "--timeout", "0.5", "--json")
    assert r.exit_code == 0, r.output
    assert [h["hostname"] for h in json.loads(r.stdout)] == ["node2"]
    r, _ = _discover("--scan", "10.77.0.11/32,10.77.0.13", "--timeout", "0.5", "--json")
    assert [h["hostname"] for h in json.loads(r.stdout)] == ["node1", "node3"]
    r, _ = _discover("--scan", "10.77.0.128/25", "--timeout", "0.5", "--json")
    assert r.exit_code == 1 and json.loads(r.stdout) == []


def test_scan_writes_an_inventory_that_works(fresh, tmp_path):
    out = tmp_path / "inventory.yml"
    r, _ = _discover("--scan", "10.77.0.0/24", "--timeout", "1", "--server", "node1", "--write-inventory", str(out),
                     "--user", "root", "--ssh-key", str(fresh.key))
    assert r.exit_code == 0, r.output
    check = CliRunner().invoke(app, ["inventory", "check", str(out)])
    assert check.exit_code == 0, check.output
    assert [(h.name, h.role, h.address, h.user) for h in load_inventory(out).hosts] == [
        ("node1", "server", fresh.nodes["node1"].ip, "root"),
        ("node2", "agent", fresh.nodes["node2"].ip, "root"),
        ("node3", "agent", fresh.nodes["node3"].ip, "root")]
    r = CliRunner().invoke(app, ["exec", "-i", str(out), "--known-hosts", str(fresh.known_hosts), "--json", "--",
                                 "hostname"])
    assert r.exit_code == 0, r.output
    assert {n: d["stdout"].strip() for n, d in json.loads(r.stdout).items()} == {n: n for n in fresh.nodes}


def test_a_node_without_mdns_is_reported_not_listed(fresh):
    fresh.exec("node3", "systemctl stop avahi-daemon.socket avahi-daemon.service")
    try:
        r, _ = _discover("--scan", "10.77.0.0/24", "--timeout", "1", "--json")
        assert r.exit_code == 0, r.output
        assert sorted(h["hostname"] for h in json.loads(r.stdout)) == ["node1", "node2"]
        assert "scan 10.77.0.13: SSH (SSH-2.0-OpenSSH_" in r.stderr and "but no name over mDNS" in r.stderr
    finally:
        fresh.exec("node3", "systemctl start avahi-daemon.service")
        time.sleep(2)  # avahi probes its name again


def test_scan_merges_with_what_mdns_announces(fresh):
    fresh.exec("node3", "cp /usr/share/doc/avahi-daemon/examples/ssh.service /etc/avahi/services/ && "
                        "systemctl reload-or-restart avahi-daemon")
    time.sleep(2)
    r, _ = _discover("--scan", "10.77.0.0/24", "--json")
    assert r.exit_code == 0, r.output
    hosts = {h["hostname"]: h for h in json.loads(r.stdout)}
    assert sorted(hosts) == ["node1", "node2", "node3"]
    assert hosts["node3"]["services"] == ["ssh", "scan"] and hosts["node3"]["addresses"] == [fresh.nodes["node3"].ip]
    assert hosts["node1"]["services"] == ["scan"]
