"""`edgeclu discover` on the lab LAN: real agents (installed by agent.yml), real avahi, real mDNS."""

import json
import subprocess
import time

import pytest
from typer.testing import CliRunner

from edgeclu import __version__
from edgeclu.cli import app
from edgeclu.inventory import load_inventory
from edgeclu.playbook import run_playbook

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
            "suggested_role": "server" if name == "node1" else "agent",
        }
    assert hosts["node3"] == {"hostname": "node3", "addresses": [lan.nodes["node3"].ip],
                              "services": ["ssh", "workstation"], "ssh_port": 22, "agent_port": None,
                              "suggested_role": "agent"}
    assert "3 host(s) found, 2 with the edgeclu agent" in r.stderr


def test_table_output(lan):
    r, _ = _discover("--timeout", "2")
    assert r.exit_code == 0, r.output
    lines = {line.split()[0]: line.split() for line in r.stdout.splitlines()[1:]}
    assert lines["node1"][:4] == ["node1", lan.nodes["node1"].ip, "edgeclu", lan.exec("node1", "uname -m").strip()]
    assert lines["node3"][:3] == ["node3", lan.nodes["node3"].ip, "ssh,workstation"]
    assert ssh_fp(lan, "node2") in lines["node2"]


def test_write_inventory_that_inventory_check_accepts(lan, tmp_path):
    out = tmp_path / "inventory.yml"
    r, _ = _discover("--timeout", "2", "--write-inventory", str(out), "--user", "edge", "--ssh-key", str(lan.key))
    assert r.exit_code == 0, r.output
    check = CliRunner().invoke(app, ["inventory", "check", str(out)])
    assert check.exit_code == 0, check.output
    inv = load_inventory(out)
    # equal RAM everywhere (the nodes share this machine's memory): the tie goes to the first name
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


def test_probe_gathers_facts_over_ssh_for_hosts_without_the_agent(lan):
    r, _ = _discover("--timeout", "2", "--json", "--probe", "--user", "root", "--ssh-key", str(lan.key),
                     "--known-hosts", str(lan.known_hosts))
    assert r.exit_code == 0, r.output
    node3 = next(h for h in json.loads(r.stdout) if h["hostname"] == "node3")
    assert node3["services"] == ["ssh", "workstation", "probe"]
    assert node3["arch"] == lan.exec("node3", "uname -m").strip()
    assert node3["ram"] == int(lan.exec("node3", "awk '/^MemTotal:/ {print $2}' /proc/meminfo")) * 1024
    assert node3["ssh_fp"] == ssh_fp(lan, "node3")


def test_probe_refuses_unknown_host_keys(lan, tmp_path):
    r, _ = _discover("--timeout", "2", "--json", "--probe", "--user", "root", "--ssh-key", str(lan.key),
                     "--known-hosts", str(tmp_path / "empty"))
    assert r.exit_code == 0, r.output
    node3 = next(h for h in json.loads(r.stdout) if h["hostname"] == "node3")
    assert "probe" not in node3["services"] and "arch" not in node3
    assert "probe node3" in r.stderr and "unknown host key" in r.stderr
