"""Preflight checks: pure functions over node facts, table-style."""


import pytest

from edgeclu import node
from edgeclu import preflight as pf

GIB = 1024 * 1024  # in KiB


def facts(name="n1", role="server", hostname=None, machine="aarch64", mem_kib=4 * GIB, sudo="yes",
          memory_cgroup=True, user="pi", cgroup=None, rancher_dev="", throttled=None):
    return node.NodeFacts(name=name, role=role, user=user, hostname=hostname or name, machine=machine,
                        mem_kib=mem_kib, sudo=sudo, memory_cgroup=memory_cgroup, cgroup=cgroup,
                        rancher_dev=rancher_dev, throttled=throttled)


SD_WARNING = ("warning", "storage", "/var/lib/rancher is on an SD card (mmcblk0p2): etcd writes constantly and "
                                    "k3s's maintainers advise against etcd on SD cards (slow fsync, wear); move "
                                    "/var/lib/rancher to an SSD or USB disk, or use one server (SQLite)")
ARMV7_WARNING = ("warning", "arch", "32-bit armv7: k3s still ships armhf, but Kubernetes no longer publishes "
                                    "linux/arm images and many charts have none; on a Pi 3, 4 or 5 prefer a 64-bit "
                                    "OS (aarch64), or pin images that have an arm/v7 build")


def power(what):
    return ("warning", "power", f"the Pi reports {what}: use the official power supply and cooling before k3s "
                                "adds load (edgeclu health shows it too)")


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
    (facts(memory_cgroup=False, cgroup=2),
     [("warning", "cgroup", "the memory cgroup is disabled (not in /sys/fs/cgroup/cgroup.controllers); on a "
                            "Raspberry Pi, `edgeclu up` adds cgroup_memory=1 cgroup_enable=memory to cmdline.txt "
                            "and reboots")]),
    (facts(memory_cgroup=False, cgroup=1),
     [("warning", "cgroup", "the memory cgroup is disabled (/proc/cgroups); on a Raspberry Pi, `edgeclu up` adds "
                            "cgroup_memory=1 cgroup_enable=memory to cmdline.txt and reboots")]),
    (facts(memory_cgroup=True, cgroup=2), []),
    (facts(memory_cgroup=None), []),
    (facts(machine="armv7l"), [ARMV7_WARNING]),
    (facts(machine="armv7l", role="agent", mem_kib=int(0.92 * GIB)), [ARMV7_WARNING]),
    # an SD card matters only under etcd (see test_sd_card_warns_only_etcd_servers)
    (facts(rancher_dev="mmcblk0p2"), []),
    (facts(throttled=0), []),
    (facts(throttled=0x50000), [power("under-voltage, throttled since boot (get_throttled=0x50000)")]),
    (facts(throttled=0x50005), [power("under-voltage, throttled now (get_throttled=0x50005)")]),
    (facts(throttled=0x20005),
     [power("under-voltage, throttled now; freq-capped since boot (get_throttled=0x20005)")]),
    (facts(throttled=0x1), [power("under-voltage now (get_throttled=0x1)")]),
])
def test_check_node(f, expected):
    assert [(p.severity, p.check, p.message) for p in pf.check_node(f)] == expected


@pytest.mark.parametrize("f, etcd, warned", [
    (facts(rancher_dev="mmcblk0p2"), True, True),
    (facts(rancher_dev="/dev/mmcblk1"), True, True),
    (facts(rancher_dev="mmcblk0p2"), False, False),  # one server: SQLite
    (facts(rancher_dev="mmcblk0p2", role="agent", mem_kib=int(0.92 * GIB)), True, False),  # agents run no etcd
    (facts(rancher_dev="sda1"), True, False),
    (facts(rancher_dev="nvme0n1p2"), True, False),
    (facts(rancher_dev="overlay"), True, False),
    (facts(rancher_dev=""), True, False),
])
def test_sd_card_warns_only_etcd_servers(f, etcd, warned):
    storage = [(p.severity, p.check, p.message) for p in pf.check_node(f, etcd) if p.check == "storage"]
    assert storage == ([(SD_WARNING[0], SD_WARNING[1], SD_WARNING[2].replace("mmcblk0p2", f.rancher_dev))]
                       if warned else [])


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
