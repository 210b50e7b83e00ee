"""Preflight checks: pure functions over node facts, table-style."""

import subprocess

import pytest

from edgeclu import preflight as pf
from edgeclu.inventory import Host

GIB = 1024 * 1024  # in KiB


def facts(name="n1", role="server", hostname=None, machine="aarch64", mem_kib=4 * GIB, sudo="yes",
          memory_cgroup=True, user="pi"):
    return pf.NodeFacts(name=name, role=role, user=user, hostname=hostname or name, machine=machine,
                        mem_kib=mem_kib, sudo=sudo, memory_cgroup=memory_cgroup)


@pytest.mark.parametrize("f, expected", [
    (facts(), []),
    # a 1 GB Pi reports ~0.92 GiB of MemTotal: still a server
    (facts(mem_kib=int(0.92 * GIB)), []),
    (facts(mem_kib=int(0.75 * GIB)),
     [("error", "memory", "a k3s server needs at least 1 GB of RAM; this node has 0.8 GiB")]),
    (facts(role="agent", mem_kib=int(0.75 * GIB)), []),
    (facts(role="agent", mem_kib=400 * 1024),
     [("warning", "memory", "a k3s agent should have at least 512 MB of RAM; this node has 0.4 GiB")]),
    (facts(mem_kib=None), [("warning", "memory", "could not read MemTotal from /proc/meminfo")]),
    (facts(machine="armv6l"),
     [("error", "arch", "no k3s release for architecture 'armv6l' (supported: x86_64, aarch64, armv7l)")]),
    (facts(sudo="no"),
     [("error", "sudo", "user pi has no passwordless sudo (`sudo -n true` failed); add "
                        "'pi ALL=(ALL) NOPASSWD:ALL' to /etc/sudoers.d/ or log in as root")]),
    (facts(sudo="root", user="root"), []),
    (facts(memory_cgroup=False),
     [("warning", "cgroup", "the memory cgroup is disabled; on a Raspberry Pi, `edgeclu up` adds "
                            "cgroup_memory=1 cgroup_enable=memory to cmdline.txt and reboots")]),
    (facts(memory_cgroup=None), []),
])
def test_check_node(f, expected):
    assert [(p.severity, p.check, p.message) for p in pf.check_node(f)] == expected


def test_duplicate_hostnames_are_reported_on_every_node_that_shares_one():
    nodes = [facts("pi-1", hostname="raspberrypi"), facts("pi-2", hostname="pi-2"),
             facts("pi-3", role="agent", hostname="raspberrypi"), facts("pi-4", hostname="raspberrypi")]
    assert [(p.node, p.severity, p.message) for p in pf.check_duplicates(nodes)] == [
        ("pi-1", "error", "hostname 'raspberrypi' is also the hostname of pi-3, pi-4; give every node its own "
                          "(hostnamectl set-hostname NAME)"),
        ("pi-3", "error", "hostname 'raspberrypi' is also the hostname of pi-1, pi-4; give every node its own "
                          "(hostnamectl set-hostname NAME)"),
        ("pi-4", "error", "hostname 'raspberrypi' is also the hostname of pi-1, pi-3; give every node its own "
                          "(hostnamectl set-hostname NAME)"),
    ]


def test_check_facts_orders_by_node_then_errors_first():
    nodes = [facts("a", machine="riscv64", memory_cgroup=False), facts("b", hostname="a")]
    assert [(p.node, p.severity, p.check) for p in pf.check_facts(nodes)] == [
        ("a", "error", "arch"), ("a", "error", "hostname"), ("a", "warning", "cgroup"), ("b", "error", "hostname")]


def test_problem_reads_as_one_line():
    assert str(pf.Problem("pi-1", "error", "sudo", "no sudo")) == "pi-1: error: no sudo"


def test_probe_runs_in_a_posix_shell_and_parses(tmp_path):
    # the real probe script, on this machine (root): every key present and parsed
    out = subprocess.run(["sh", "-c", pf.PROBE], capture_output=True, text=True, check=True).stdout
    host = Host("ctl", "server", "127.0.0.1", "root", 22, None)
    f = pf.facts_from(host, out)
    assert f.hostname == subprocess.run(["hostname"], capture_output=True, text=True).stdout.strip()
    assert f.machine == "x86_64" and f.sudo == "root" and f.mem_kib > 100 * 1024
    assert f.memory_cgroup is True
    assert pf.check_node(f) == []


def test_parse_probe_tolerates_noise():
    assert pf.parse_probe("motd line\nhostname=pi-1\nmachine = armv7l\n=\nsudo=no") == {
        "hostname": "pi-1", "machine": "armv7l", "": "", "sudo": "no"}
    f = pf.facts_from(Host("pi-1", "agent", "10.0.0.2", "pi", 22, None), "hostname=pi-1\nmachine=armv7l\n")
    assert (f.mem_kib, f.sudo, f.memory_cgroup) == (None, "no", None)
