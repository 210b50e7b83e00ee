"""Preflight checks: pure functions over node facts, table-style."""

import os
import subprocess

import pytest

from edgeclu import node
from edgeclu import preflight as pf
from edgeclu.inventory import Host

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


@pytest.mark.parametrize("probe, expected", [
    # cgroup v2 with memory (Debian 12, Pi OS with cgroup_enable=memory)
    ("cgroup=2\nmemory_cgroup=1\n", (2, True)),
    # cgroup v2 without it (Pi kernel 6.12, cmdline.txt untouched): /proc/cgroups would not even list it
    ("cgroup=2\nmemory_cgroup=0\n", (2, False)),
    # v1 / hybrid: from /proc/cgroups, a missing line is "not there"
    ("cgroup=1\nmemory_cgroup=0\n", (1, False)),
    ("cgroup=1\nmemory_cgroup=1\n", (1, True)),
    ("", (None, None)),
])
def test_cgroup_facts(probe, expected):
    f = node.facts_from(Host("pi-1", "agent", "10.0.0.2", "pi", 22, None), probe)
    assert (f.cgroup, f.memory_cgroup) == expected


@pytest.mark.parametrize("controllers, proc_cgroups, expected", [
    ("cpuset cpu io memory hugetlb pids rdma misc\n", None, "cgroup=2 memory_cgroup=1"),
    ("cpuset cpu io hugetlb pids rdma misc\n", None, "cgroup=2 memory_cgroup=0"),
    # v1: the 6.12 kernel without CONFIG_MEMCG_V1 lists no memory line at all (raspberrypi/linux#6980)
    (None, "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t0\t99\t1\npids\t0\t99\t1\n",
     "cgroup=1 memory_cgroup=0"),
    (None, "#subsys_name\thierarchy\tnum_cgroups\tenabled\nmemory\t0\t39\t0\n", "cgroup=1 memory_cgroup=0"),
    (None, "#subsys_name\thierarchy\tnum_cgroups\tenabled\nmemory\t8\t88\t1\n", "cgroup=1 memory_cgroup=1"),
])
def test_probe_reads_v2_controllers_first_and_proc_cgroups_only_on_v1(tmp_path, controllers, proc_cgroups,
                                                                      expected):
    # the probe's own shell, with its two paths pointed at files made here
    fs = tmp_path / "cgroup.controllers"
    proc = tmp_path / "cgroups"
    if controllers is not None:
        fs.write_text(controllers)
    if proc_cgroups is not None:
        proc.write_text(proc_cgroups)
    script = node.PROBE.replace("/sys/fs/cgroup/cgroup.controllers", str(fs)).replace("/proc/cgroups", str(proc))
    assert script != node.PROBE
    out = node.parse_probe(subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout)
    assert f"cgroup={out['cgroup'][-1]} memory_cgroup={out['memory_cgroup'][-1]}" == expected


@pytest.mark.parametrize("text, expected", [
    ("throttled=0x50005", 0x50005), ("50000", 0x50000), ("", None), ("garbage", None)])
def test_throttled_from_probe(text, expected):
    f = node.facts_from(Host("pi-1", "agent", "10.0.0.2", "pi", 22, None), f"throttled={text}\n" if text else "")
    assert f.throttled == expected


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
    # the real probe script, on this machine (root in CI, anyone on a contributor's): every key parsed
    out = subprocess.run(["sh", "-c", node.PROBE], capture_output=True, text=True, check=True).stdout
    host = Host("ctl", "server", "127.0.0.1", "root", 22, None)
    f = node.facts_from(host, out)
    assert f.hostname == subprocess.run(["hostname"], capture_output=True, text=True).stdout.strip()
    if os.geteuid() == 0:
        sudo = "root"
    else:
        sudo = "yes" if subprocess.run(["sh", "-c", "sudo -n true 2>/dev/null"]).returncode == 0 else "no"
    assert f.machine == "x86_64" and f.sudo == sudo and f.mem_kib > 100 * 1024
    assert f.memory_cgroup is True and f.cgroup in (1, 2)
    assert f.rancher_dev  # some device or filesystem source
    assert [p.check for p in pf.check_node(f)] == ([] if sudo != "no" else ["sudo"])


def test_parse_probe_tolerates_noise():
    assert node.parse_probe("motd line\nhostname=pi-1\nmachine = armv7l\n=\nsudo=no\nother=1") == {
        "hostname": ["pi-1"], "machine": ["armv7l"], "sudo": ["no"]}
    f = node.facts_from(Host("pi-1", "agent", "10.0.0.2", "pi", 22, None), "hostname=pi-1\nmachine=armv7l\n")
    assert (f.mem_kib, f.sudo, f.memory_cgroup) == (None, "no", None)


@pytest.mark.parametrize(("units", "running", "role", "installed"), [
    (("k3s",), (), "server", True),
    (("k3s-agent",), ("k3s-agent",), "agent", True),
    (("k3s-agent",), (), "server", False),  # an agent's unit on a host the inventory calls a server
    ((), (), "agent", False),
])
def test_probe_reads_which_k3s_units_are_installed_and_running(tmp_path, units, running, role, installed):
    # the probe's own shell, with the unit directory, the binary and systemctl pointed at stand-ins made here
    (tmp_path / "bin").mkdir()
    for u in units:
        (tmp_path / f"{u}.service").write_text("[Unit]\n")
    k3s = tmp_path / "bin" / "k3s"
    k3s.write_text("#!/bin/sh\necho 'k3s version v1.31.4+k3s1 (a562d090)'\necho 'go version go1.22.9'\n")
    systemctl = tmp_path / "bin" / "systemctl"  # `systemctl is-active --quiet NAME`
    systemctl.write_text(f"#!/bin/sh\ncase \" {' '.join(running)} \" in *\" $3 \"*) exit 0;; esac; exit 3\n")
    for f in (k3s, systemctl):
        f.chmod(0o755)
    script = node.PROBE.replace(node.SYSTEMD_DIR, str(tmp_path)).replace(node.K3S_BIN, str(k3s))
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True,
                         env={**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}).stdout
    f = node.facts_from(Host("pi-1", role, "10.0.0.2", "pi", 22, None), out)
    assert (f.k3s_units, f.k3s_active, f.k3s_version) == (units, running, "v1.31.4+k3s1")
    assert f.k3s_installed is installed


def test_what_a_node_prints_is_checked_before_it_is_a_fact():
    host = Host("pi-1", "agent", "10.0.0.2", "pi", 22, None)
    f = node.facts_from(host, "sudo=maybe\nmem_kib=12e9\nk3s=k3s version v1.31.4+k3s1; rm -rf /\n"
                              "cgroup=3\nk3s_unit=sshd\nk3s_active=k3s\nmodel=" + "x" * 500 + "\n")
    assert (f.sudo, f.mem_kib, f.k3s_version, f.cgroup, f.k3s_units, f.k3s_active) == (
        "no", None, None, None, (), ("k3s",))
    assert len(f.model) == 200
