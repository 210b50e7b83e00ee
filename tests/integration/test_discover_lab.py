"""`edgeclu discover` on the lab LAN: real agents (installed by agent.yml), real avahi, real mDNS,
and a second responder (python-zeroconf, in the controller's netns) that lies."""

import contextlib
import json
import subprocess
import sys
import threading
import time

import pytest
from typer.testing import CliRunner

from edgeclu import __version__, discovery
from edgeclu.cli import app
from edgeclu.inventory import load_inventory
from edgeclu.playbook import run_playbook
from tests.lab.nodelab import enter_netns

pytestmark = pytest.mark.lab

K3S = "v1.31.4+k3s1"


def ssh_fp(lab, name):
    """The node's host key fingerprint as OpenSSH prints it (computed here, not by our code)."""
    pub = lab.nodes[name].dir / "ssh_host_ed25519_key.pub"
    return subprocess.run(["ssh-keygen", "-lf", str(pub)], capture_output=True, text=True, check=True).stdout.split()[1]


@pytest.fixture(scope="module")
def lan(lab3, tmp_path_factory):
    """node1, node2: the edgeclu agent; node3: a plain host announcing _ssh._tcp and _workstation._tcp."""
    inv = tmp_path_factory.mktemp("discover") / "agents.yml"
    inv.write_text(lab3.inventory_yaml(servers=["node1"], agents=["node2"], user="edge",
                                       extra_vars={"k3s_version": K3S}))
    result = run_playbook(inv, "agent.yml", known_hosts=lab3.known_hosts)
    assert result.ok, result.failed_hosts
    lab3.exec("node3", "cp /usr/share/doc/avahi-daemon/examples/ssh.service /etc/avahi/services/ && "
                       "sed -i 's/^#*publish-workstation=.*/publish-workstation=yes/' /etc/avahi/avahi-daemon.conf && "
                       "systemctl restart avahi-daemon")
    time.sleep(2)  # avahi probes its names again after a restart
    return lab3


def _discover(*args):
    t0 = time.monotonic()
    r = CliRunner().invoke(app, ["discover", *args])
    return r, time.monotonic() - t0


def test_finds_all_three_with_correct_facts_within_the_timeout(lan):
    r, wall = _discover("--timeout", "3", "--json")
    assert r.exit_code == 0, r.output
    assert wall < 3 + 1.5, f"took {wall:.2f}s for --timeout 3"
    hosts = {h["hostname"]: h for h in json.loads(r.stdout)}
    assert sorted(hosts) == ["node1", "node2", "node3"]
    ram = int(lan.exec("node1", "awk '/^MemTotal:/ {print $2}' /proc/meminfo")) * 1024
    arch = lan.exec("node1", "uname -m").strip()
    for name in ("node1", "node2"):
        assert hosts[name] == {
            "hostname": name, "addresses": [lan.nodes[name].ip], "services": ["edgeclu"], "ssh_port": None,
            "agent_port": 9101, "arch": arch, "agent": __version__, "ssh_fp": ssh_fp(lan, name), "ram": ram,
            "role": "server" if name == "node1" else "agent",  # the k3s role the inventory gave it
            "conflict": None, "ssh_fp_status": "announced", "ssh_fp_received": None,
            "suggested_role": None,  # TXT never picks a server
        }
    assert hosts["node3"] == {"hostname": "node3", "addresses": [lan.nodes["node3"].ip],
                              "services": ["ssh", "workstation"], "ssh_port": 22, "agent_port": None,
                              "conflict": None, "ssh_fp_status": None, "ssh_fp_received": None,
                              "suggested_role": None}
    assert "3 host(s) found, 2 with the edgeclu agent" in r.stderr


def test_table_output(lan):
    r, _ = _discover("--timeout", "2")
    assert r.exit_code == 0, r.output
    lines = {line.split()[0]: line.split() for line in r.stdout.splitlines()[1:]}
    assert lines["node1"][:4] == ["node1", lan.nodes["node1"].ip, "edgeclu", lan.exec("node1", "uname -m").strip()]
    assert lines["node3"][:3] == ["node3", lan.nodes["node3"].ip, "ssh,workstation"]
    assert f"{ssh_fp(lan, 'node2')} (announced)" in " ".join(lines["node2"])


def test_write_inventory_that_inventory_check_accepts(lan, tmp_path):
    out = tmp_path / "inventory.yml"
    # announcements alone never choose the server
    r, _ = _discover("--timeout", "2", "--write-inventory", str(out))
    assert r.exit_code == 1 and "no k3s server chosen" in r.stderr and not out.exists()
    r, _ = _discover("--timeout", "2", "--write-inventory", str(out), "--user", "edge", "--ssh-key", str(lan.key),
                     "--server", "node1")
    assert r.exit_code == 0, r.output
    check = CliRunner().invoke(app, ["inventory", "check", str(out)])
    assert check.exit_code == 0, check.output
    inv = load_inventory(out)
    assert [(h.name, h.role, h.address, h.user) for h in inv.hosts] == [
        ("node1", "server", lan.nodes["node1"].ip, "edge"),
        ("node2", "agent", lan.nodes["node2"].ip, "edge"),
        ("node3", "agent", lan.nodes["node3"].ip, "edge")]
    # the written inventory works: exec reaches every node through it
    r = CliRunner().invoke(app, ["exec", "-i", str(out), "--known-hosts", str(lan.known_hosts), "--json", "--",
                                 "hostname"])
    assert r.exit_code == 0, r.output
    assert {n: d["stdout"].strip() for n, d in json.loads(r.stdout).items()} == {n: n for n in lan.nodes}
    # an existing file is not overwritten by accident; --server is honoured
    r, _ = _discover("--timeout", "1", "--write-inventory", str(out))
    assert r.exit_code == 1 and "exists; use --force" in r.stderr
    r, _ = _discover("--timeout", "2", "--write-inventory", str(out), "--force", "--server", "node3")
    assert r.exit_code == 0, r.output
    assert [h.name for h in load_inventory(out).servers] == ["node3"]


def test_probe_checks_every_host_key_and_reads_facts_over_ssh(lan, tmp_path):
    out = tmp_path / "inventory.yml"
    r, _ = _discover("--timeout", "2", "--json", "--probe", "--user", "root", "--ssh-key", str(lan.key),
                     "--known-hosts", str(lan.known_hosts), "--write-inventory", str(out))
    assert r.exit_code == 0, r.output
    hosts = {h["hostname"]: h for h in json.loads(r.stdout)}
    ram = int(lan.exec("node3", "awk '/^MemTotal:/ {print $2}' /proc/meminfo")) * 1024
    for name, h in hosts.items():
        assert "probe" in h["services"] and h["ram"] == ram
        assert h["ssh_fp_received"] == ssh_fp(lan, name)
        # the agents announced it and SSH presented the same; node3 announced none
        assert h["ssh_fp_status"] == ("received" if name == "node3" else "verified")
    assert hosts["node3"]["arch"] == lan.exec("node3", "uname -m").strip()
    # probed RAM chooses: all equal here (one machine's memory), so the tie goes to an agent's host, first name
    assert [h.name for h in load_inventory(out).servers] == ["node1"]


def test_probe_refuses_unknown_host_keys_and_names_the_pin(lan, tmp_path):
    r, _ = _discover("--timeout", "2", "--json", "--probe", "--user", "root", "--ssh-key", str(lan.key),
                     "--known-hosts", str(tmp_path / "empty"))
    assert r.exit_code == 0, r.output
    node3 = next(h for h in json.loads(r.stdout) if h["hostname"] == "node3")
    assert "probe" not in node3["services"] and "arch" not in node3
    assert f"unknown host key ssh-ed25519 {ssh_fp(lan, 'node3')}" in r.stderr
    assert f"--trust node3={ssh_fp(lan, 'node3')}" in r.stderr


def test_probe_with_trust_pins_records_exactly_those_hosts(lan, tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_text("# mine\n")
    r, _ = _discover("--timeout", "2", "--json", "--probe", "--user", "root", "--ssh-key", str(lan.key),
                     "--known-hosts", str(kh), "--trust", f"node3={ssh_fp(lan, 'node3')}",
                     "--trust", f"{lan.nodes['node1'].ip}={ssh_fp(lan, 'node1')}")
    assert r.exit_code == 0, r.output
    hosts = {h["hostname"]: h for h in json.loads(r.stdout)}
    assert ["probe" in hosts[n]["services"] for n in ("node1", "node2", "node3")] == [True, False, True]
    pub = {n: (lan.nodes[n].dir / "ssh_host_ed25519_key.pub").read_text().split()[:2] for n in ("node1", "node3")}
    assert kh.read_text() == "# mine\n" + "".join(f"{lan.nodes[n].ip} {' '.join(pub[n])}\n" for n in ("node1", "node3"))
    # a pin that is not the key the host presents: refused, nothing recorded
    wrong = tmp_path / "wrong"
    r, _ = _discover("--timeout", "2", "--probe", "--user", "root", "--ssh-key", str(lan.key),
                     "--known-hosts", str(wrong), "--trust", f"node3={ssh_fp(lan, 'node1')}")
    assert r.exit_code == 1 and "node3: host key ssh-ed25519" in r.stderr and "is not the one pinned" in r.stderr
    assert not wrong.exists()


@pytest.mark.parametrize("node", ["node3", "node1"])
def test_discover_on_a_node_never_reports_its_loopback_address(lan, tmp_path, node):
    """Issue 11.6: run on a node (as when the controller is the first Pi), the node's own avahi answers
    the browser's queries on lo with 127.0.0.1 for its name (avahi joins mDNS on lo; python-zeroconf
    browses on every interface, lo included: reproduced with Debian's 0.47 on node1, where the agent and
    avahi share the name node1.local). On node3, avahi publishes _ssh/_workstation, so every browse
    sees it. edgeclu browses off lo and never takes a loopback address."""
    out = tmp_path / "inventory.yml"
    got = {}

    def on_the_node():
        with enter_netns(lan.nodes[node].netns):
            got["sightings"] = discovery.browse(3.0)
            got["cli"] = CliRunner().invoke(app, ["discover", "--timeout", "2", "--json", "--server", "node1",
                                                  "--write-inventory", str(out)])
    t = threading.Thread(target=on_the_node)
    t.start()
    t.join()
    own = [s for s in got["sightings"] if discovery.host_of(s) == node]
    assert own and all(s.addresses == (lan.nodes[node].ip,) for s in own), own
    r = got["cli"]
    assert r.exit_code == 0, r.output
    hosts = {h["hostname"]: h for h in json.loads(r.stdout)}
    assert {n: h["addresses"] for n, h in hosts.items()} == {n: [lan.nodes[n].ip] for n in lan.nodes}
    assert [(h.name, h.address) for h in load_inventory(out).hosts] == [(n, lan.nodes[n].ip) for n in lan.nodes]


SPOOFER = """
import socket, sys
from zeroconf import IPVersion, ServiceInfo, Zeroconf
kind, instance, server, address, *txt = sys.argv[1:]
zc = Zeroconf(interfaces=[sys.stdin.readline().strip()], ip_version=IPVersion.V4Only)
info = ServiceInfo(kind, f"{instance}.{kind}", server=server, addresses=[socket.inet_aton(address)], port=22,
                   properties=dict(t.split("=", 1) for t in txt))
zc.register_service(info, allow_name_change=False)
print("registered", flush=True)
sys.stdin.read()
zc.unregister_service(info)
zc.close()
"""


@contextlib.contextmanager
def second_responder(lan, kind, instance, server, address, **txt):
    """Another machine on the LAN answering mDNS for a name it does not own (python-zeroconf)."""
    p = subprocess.Popen([sys.executable, "-c", SPOOFER, kind, instance, server, address,
                          *(f"{k}={v}" for k, v in txt.items())], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    try:
        p.stdin.write(lan.ctl_ip + "\n")
        p.stdin.flush()
        assert p.stdout.readline().strip() == "registered"
        yield
    finally:
        p.stdin.close()
        p.wait(10)


def test_a_second_responder_claiming_node2_is_a_conflict_and_never_written(lan, tmp_path):
    spoof = "10.77.0.2"  # lower than node2's address: the old code wrote it into the inventory
    out = tmp_path / "inventory.yml"
    with second_responder(lan, "_ssh._tcp.local.", "node2", "node2.local.", spoof):
        r, _ = _discover("--timeout", "3", "--json")
        node2 = next(h for h in json.loads(r.stdout) if h["hostname"] == "node2")
        assert node2["conflict"] == f"seen at 2 addresses: {spoof}, {lan.nodes['node2'].ip}", r.stdout
        r, _ = _discover("--timeout", "3")
        assert f"CONFLICT: {spoof}, {lan.nodes['node2'].ip}" in r.stdout
        assert "conflict node2: seen at 2 addresses" in r.stderr
        r, _ = _discover("--timeout", "3", "--server", "node1", "--write-inventory", str(out))
        assert r.exit_code == 1 and "not written: node2 is seen at 2 addresses" in r.stderr, r.output
        assert not out.exists()
        # edgeclu add follows the same rule
        inv = tmp_path / "cluster.yml"
        inv.write_text(lan.inventory_yaml(servers=["node1"], agents=[], extra_vars={"k3s_version": K3S}))
        r = CliRunner().invoke(app, ["add", "node2", "-i", str(inv), "--discover-timeout", "3"])
        assert r.exit_code == 1 and "node2 is seen at 2 addresses" in r.stderr, r.output
        assert "node2" not in inv.read_text()
        # the user settles it
        r, _ = _discover("--timeout", "3", "--server", "node1", "--address", f"node2={lan.nodes['node2'].ip}",
                         "--write-inventory", str(out))
        assert r.exit_code == 0, r.output
        assert load_inventory(out).host("node2").address == lan.nodes["node2"].ip


def test_announced_ram_never_picks_the_server(lan, tmp_path):
    with second_responder(lan, "_edgeclu._tcp.local.", "bignode", "bignode.local.", "10.77.0.99",
                          hostname="bignode", ram=str(2**40), ssh_fp="SHA256:" + "A" * 43):
        r, _ = _discover("--timeout", "3", "--json")
        assert {h["hostname"]: h["suggested_role"] for h in json.loads(r.stdout)}["bignode"] is None
        r, _ = _discover("--timeout", "3", "--json", "--probe", "--user", "root", "--ssh-key", str(lan.key),
                         "--known-hosts", str(lan.known_hosts))
        roles = {h["hostname"]: h["suggested_role"] for h in json.loads(r.stdout)}
        assert roles == {"bignode": "agent", "node1": "server", "node2": "agent", "node3": "agent"}


def test_a_host_key_that_is_not_the_announced_one_is_flagged_and_never_trusted(lan, tmp_path):
    lie = "SHA256:" + "A" * 43
    kh = tmp_path / "known_hosts"
    with second_responder(lan, "_edgeclu._tcp.local.", "node3", "node3.local.", lan.nodes["node3"].ip,
                          hostname="node3", ssh_fp=lie):
        r, _ = _discover("--timeout", "3", "--json", "--probe", "--accept-new", "--user", "root",
                         "--ssh-key", str(lan.key), "--known-hosts", str(kh))
    assert r.exit_code == 0, r.output
    node3 = next(h for h in json.loads(r.stdout) if h["hostname"] == "node3")
    assert (node3["ssh_fp_status"], node3["ssh_fp"], node3["ssh_fp_received"]) == (
        "mismatch", lie, ssh_fp(lan, "node3"))
    assert f"host key mismatch node3: announced {lie}, received {ssh_fp(lan, 'node3')}" in r.stderr
    assert "probe" not in node3["services"]
    # --accept-new recorded node1 and node2, never node3
    assert sorted(line.split()[0] for line in kh.read_text().splitlines()) == [
        lan.nodes["node1"].ip, lan.nodes["node2"].ip]


def test_add_refuses_a_host_whose_key_is_not_the_announced_one(lan, tmp_path):
    lie = "SHA256:" + "A" * 43
    inv = tmp_path / "cluster.yml"
    inv.write_text(lan.inventory_yaml(servers=["node1"], agents=[], extra_vars={
        "k3s_version": K3S, "edgeclu_known_hosts": str(tmp_path / "known_hosts")}))
    before = inv.read_text()
    with second_responder(lan, "_edgeclu._tcp.local.", "node3", "node3.local.", lan.nodes["node3"].ip,
                          hostname="node3", ssh_fp=lie):
        r = CliRunner().invoke(app, ["add", "node3", "-i", str(inv), "--accept-new", "--discover-timeout", "3"])
    assert r.exit_code == 1, r.output
    assert f"node3: host key ssh-ed25519 {ssh_fp(lan, 'node3')} is not the {lie} it announced" in r.stderr
    assert inv.read_text() == before and not (tmp_path / "known_hosts").exists()
