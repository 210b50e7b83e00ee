"""The one node probe: the collection's k3s_node_state script with ``facts: true`` (edgeclu.node.ask), run
for real on this machine (tests.fakes.LocalRemote: sh -c with stdin, no SSH; the lab tests run it over SSH),
its facts on made-up files, and its answer checked before it is a fact (the node's word is hostile)."""

import json
import os
import sys
from pathlib import Path

import pytest

from ansible_collections.edgeclu.cluster.plugins.modules import k3s_node_state as script
from edgeclu import node
from edgeclu import preflight as pf
from edgeclu.errors import CommandFailed, NoPython, RemoteError
from edgeclu.inventory import Host, load_inventory
from edgeclu.transport import Result
from tests.fakes import FakeRemote, LocalRemote, fake_cluster, inventory_file, probe_answer

HOST = Host("pi-1", "agent", "10.0.0.2", "pi", 22, None)
V = "v1.31.4+k3s1"


def answer(facts=None, **top):
    return {"facts": facts or {}, **top}


# -- the script, run as the probe runs it ----------------------------------------------------
def test_the_probe_runs_the_script_on_this_machine_and_every_fact_is_read():
    raw = node.ask(LocalRemote(), python=sys.executable)
    f = node.facts_from(Host("ctl", "server", "127.0.0.1", "root", 22, None), raw)
    assert set(raw["facts"]) == set(node.KEYS)
    assert f.hostname == os.uname().nodename and f.machine == os.uname().machine
    assert f.sudo == ("root" if os.geteuid() == 0 else f.sudo) and f.mem_kib > 100 * 1024
    assert f.memory_cgroup is True and f.cgroup in (1, 2)
    assert f.rancher_dev  # some device or filesystem source
    assert [p.check for p in pf.check_node(f)] == ([] if f.sudo != "no" else ["sudo"])


@pytest.mark.skipif(os.geteuid() != 0, reason="runs the probe as another user through runuser")
def test_the_probe_runs_as_the_login_user_and_says_what_sudo_gives_it():
    # nobody has no passwordless sudo (this machine may have no sudo at all: "no" as well)
    raw = node.ask(LocalRemote(user="nobody"), python="/usr/bin/python3")  # (the venv is not theirs)
    assert raw["facts"]["sudo"] == "no"
    assert node.ask(LocalRemote(), python=sys.executable)["facts"]["sudo"] == "root"


def test_a_node_without_python_is_named_in_one_line():
    with pytest.raises(NoPython) as e:
        node.ask(LocalRemote("pi-1"), python="/nonexistent/python3")
    assert str(e.value) == ("pi-1: no /nonexistent/python3 on the node: k3s nodes need python3 for Ansible; "
                            "install it (apt install python3) or set ansible_python_interpreter")


def test_preflight_reports_a_node_without_python3(tmp_path):
    inv = load_inventory(inventory_file(tmp_path, ["node1"], ["node2"]))
    remotes = {"node1": FakeRemote("node1").on(node.PROBE, probe_answer("node1")),
               "node2": FakeRemote("node2").on(node.PROBE, Result("node2", node.PROBE, 127, "",
                                                                  "sh: 1: /usr/bin/python3: not found\n"))}
    rep = pf.run_preflight(fake_cluster(inv, remotes))
    assert [(p.node, p.severity, p.check, p.message) for p in rep.problems] == [
        ("node2", "error", "python", "no /usr/bin/python3 on the node: k3s nodes need python3 for Ansible; "
                                     "install it (apt install python3) or set ansible_python_interpreter")]
    # what went on stdin: the script the roles run, asked for its facts
    script_bytes, _, args = remotes["node1"].stdins[0].partition(b"\0")
    assert script_bytes == Path(script.__file__).read_bytes() and json.loads(args) == node.PROBE_ARGS


def test_the_probe_uses_the_inventory_s_interpreter(tmp_path):
    inv = load_inventory(inventory_file(tmp_path, ["node1"], [], ansible_python_interpreter="/opt/py/bin/python3"))
    remote = FakeRemote("node1").on(lambda c: c.startswith("/opt/py/bin/python3 -c "), probe_answer("node1"))
    assert node.gather(remote, inv.host("node1")).hostname == "node1"


@pytest.mark.parametrize("result, error", [
    (Result("n", "", 1, "", "Traceback ...\nPermissionError: x\n"),
     "n: `the node probe (k3s_node_state)` exited 1: PermissionError: x"),
    (Result("n", "", 0, "motd\n{}", ""), "n: the node probe's answer is not a JSON object"),
    (Result("n", "", 0, "[1, 2]", ""), "n: the node probe's answer is not a JSON object"),
    (Result("n", "", 0, json.dumps({"facts": {"model": "x" * (2 << 20)}}), ""),
     "n: the node probe's answer is not a JSON object"),  # more than an honest answer: refused unread
])
def test_a_probe_that_fails_or_answers_garbage_is_an_error(result, error):
    with pytest.raises(RemoteError) as e:
        node.ask(FakeRemote("n").on(node.PROBE, result))
    assert str(e.value) == error
    assert isinstance(e.value, CommandFailed) == (result.exit_code != 0)


def test_the_roles_calls_do_not_pay_for_the_facts():
    assert "facts" not in script.gather({"paths": ["/nonexistent"]})
    assert set(script.gather({"facts": True})["facts"]) == set(node.KEYS)


# -- each fact, on made-up files -----------------------------------------------------------------
@pytest.mark.parametrize("controllers, proc_cgroups, expected", [
    ("cpuset cpu io memory hugetlb pids rdma misc\n", None, (2, True)),
    ("cpuset cpu io hugetlb pids rdma misc\n", None, (2, False)),
    # v2 is read first: /proc/cgroups (present, saying memory is on) is not asked
    ("cpuset cpu io\n", "#subsys_name\thierarchy\tnum_cgroups\tenabled\nmemory\t8\t88\t1\n", (2, False)),
    # v1: the 6.12 kernel without CONFIG_MEMCG_V1 lists no memory line at all (raspberrypi/linux#6980)
    (None, "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t0\t99\t1\npids\t0\t99\t1\n", (1, False)),
    (None, "#subsys_name\thierarchy\tnum_cgroups\tenabled\nmemory\t0\t39\t0\n", (1, False)),
    (None, "#subsys_name\thierarchy\tnum_cgroups\tenabled\nmemory\t8\t88\t1\n", (1, True)),
    (None, None, (None, None)),
])
def test_cgroups_v2_controllers_first_proc_cgroups_only_on_v1(tmp_path, controllers, proc_cgroups, expected):
    fs, proc = tmp_path / "cgroup.controllers", tmp_path / "cgroups"
    if controllers is not None:
        fs.write_text(controllers)
    if proc_cgroups is not None:
        proc.write_text(proc_cgroups)
    got = script.cgroup_facts(str(fs), str(proc))
    assert (got["cgroup"], got["memory_cgroup"]) == expected
    f = node.facts_from(HOST, answer(got))
    assert (f.cgroup, f.memory_cgroup) == expected


MOUNTINFO = """\
22 1 179:2 / / rw,noatime shared:1 - ext4 /dev/mmcblk0p2 rw
30 22 0:26 / /run rw shared:5 - tmpfs tmpfs rw
40 22 8:1 / /var/lib/ran rw shared:9 - ext4 /dev/sdb1 rw
41 22 8:17 / /var/lib/rancher rw shared:10 - ext4 /dev/sda1 rw
42 22 0:50 / /mnt/my\\040disk rw shared:11 - overlay overlay rw
"""


@pytest.mark.parametrize("mounts, path, expected", [
    # the longest mount point holding the path wins; /var/lib/ran is not a parent of /var/lib/rancher
    (MOUNTINFO, "var/lib/rancher/k3s", "sda1"),
    (MOUNTINFO, "var/lib/rancher", "sda1"),
    (MOUNTINFO, "etc", "mmcblk0p2"),
    (MOUNTINFO, "run", "tmpfs"),  # no block device: the filesystem's source, as df prints it
    (MOUNTINFO, "mnt/my disk", "overlay"),  # mountinfo escapes a space as \040
    (MOUNTINFO + "43 41 8:33 / /var/lib/rancher rw - ext4 /dev/sdc1 rw\n", "var/lib/rancher", "sdc1"),  # over it
    ("", "etc", ""),
])
def test_the_device_under_a_path_is_the_one_findmnt_names(tmp_path, mounts, path, expected):
    # a made-up root: the mount points as directories under it, mountinfo and /sys/dev/block as files
    root = tmp_path / "root"
    for point in ("etc", "run", "var/lib/ran", "var/lib/rancher/k3s", "mnt/my disk"):
        (root / point).mkdir(parents=True)
    block = tmp_path / "block"
    devices = tmp_path / "devices"
    for majmin, dev in (("179:2", "mmcblk0/mmcblk0p2"), ("8:1", "sdb/sdb1"), ("8:17", "sda/sda1"),
                        ("8:33", "sdc/sdc1")):
        (devices / dev).mkdir(parents=True)
        block.mkdir(exist_ok=True)
        (block / majmin).symlink_to(devices / dev)
    info = tmp_path / "mountinfo"
    info.write_text(mounts.replace(" / /", f" / {root}/").replace(f" / {root}/ ", f" / {root} "))
    assert script.mount_device(str(root / path), str(info), str(block)) == expected


def test_a_path_that_does_not_exist_yet_is_on_its_nearest_parent_s_device(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text(f"22 1 0:26 / {tmp_path} rw - tmpfs tmpfs rw\n")
    assert script.mount_device(str(tmp_path / "var/lib/rancher"), str(info), str(tmp_path / "none")) == "tmpfs"


def test_throttled_from_sysfs_else_vcgencmd(tmp_path, monkeypatch):
    sysfs = tmp_path / "get_throttled"
    sysfs.write_text("50005\n")
    assert node.facts_from(HOST, answer({"throttled": script.throttled(str(sysfs))})).throttled == 0x50005
    # no sysfs file: the firmware tool, a stand-in printing what the real one prints
    vcgencmd = tmp_path / "vcgencmd"
    vcgencmd.write_text("#!/bin/sh\necho throttled=0x50000\n")
    vcgencmd.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert script.throttled(str(tmp_path / "none")) == "throttled=0x50000"
    assert node.facts_from(HOST, answer({"throttled": "throttled=0x50000"})).throttled == 0x50000
    monkeypatch.setenv("PATH", "/nonexistent")
    assert script.throttled(str(tmp_path / "none")) is None


def test_the_k3s_version_is_what_the_binary_prints(tmp_path):
    # `k3s --version` prints "k3s version v1.31.4+k3s1 (a562d090)" then "go version go1.22.9" (k3s's
    # cmd/k3s/main.go via urfave/cli's version printer; a stand-in printing the same)
    k3s = tmp_path / "k3s"
    k3s.write_text("#!/bin/sh\necho 'k3s version v1.31.4+k3s1 (a562d090)'\necho 'go version go1.22.9'\n")
    k3s.chmod(0o755)
    raw = script.gather({"facts": True, "k3s_bin": str(k3s)})
    assert node.facts_from(HOST, raw).k3s_version == V
    assert node.facts_from(HOST, script.gather({"facts": True, "k3s_bin": str(tmp_path / "none")})).k3s_version \
        is None


@pytest.mark.parametrize(("units", "running", "role", "installed"), [
    (("k3s",), (), "server", True),
    (("k3s-agent",), ("k3s-agent",), "agent", True),
    (("k3s-agent",), (), "server", False),  # an agent's unit on a host the inventory calls a server
    ((), (), "agent", False),
])
def test_which_k3s_units_are_installed_and_running(units, running, role, installed):
    raw = answer({}, k3s_version_output=f"k3s version {V} (a562d090)\n",
                 files={node.unit_file(r): {"exists": node.service(r) in units} for r in node.SERVICES},
                 services={s: {"active": "active" if s in running else "inactive"} for s in node.SERVICES.values()})
    f = node.facts_from(Host("pi-1", role, "10.0.0.2", "pi", 22, None), raw)
    assert (f.k3s_units, f.k3s_active, f.k3s_version) == (units, running, V)
    assert f.k3s_installed is installed


# -- the node's word, checked ---------------------------------------------------------------------
GOOD = {"hostname": "pi-1", "mem_kib": 3_900_000, "model": "Raspberry Pi 5 Model B Rev 1.0", "cgroup": 2,
        "memory_cgroup": True, "rancher_dev": "mmcblk0p2", "throttled": "50000", "sudo": "yes"}


@pytest.mark.parametrize("key, value, expected", [
    ("sudo", "maybe", "no"), ("sudo", True, "no"), ("sudo", ["root"], "no"),
    ("mem_kib", "3900000", None), ("mem_kib", 12e9, None), ("mem_kib", True, None), ("mem_kib", -1, None),
    ("mem_kib", 10 ** 30, None),
    ("cgroup", 3, None), ("cgroup", "2", None), ("cgroup", True, None), ("cgroup", 2.0, None),
    ("memory_cgroup", 1, None), ("memory_cgroup", "true", None),
    ("hostname", "pi-1; rm -rf /", ""), ("hostname", "x" * 65, ""), ("hostname", "\x1b[31mred", ""),
    ("hostname", 7, ""), ("hostname", "", ""),
    ("rancher_dev", "sda1\nmmcblk0p2", ""), ("rancher_dev", "x" * 129, ""), ("rancher_dev", {}, ""),
    ("throttled", "0x" + "5" * 100, None), ("throttled", 0x50000, None), ("throttled", "garbage", None),
    ("model", "x" * (1 << 20), "x" * 200), ("model", "Pi\x1b[2J\x07 5", "Pi[2J 5"), ("model", 5, ""),
])
def test_what_a_node_answers_is_checked_before_it_is_a_fact(key, value, expected):
    f = node.facts_from(HOST, answer({**GOOD, key: value}))
    assert getattr(f, key) == expected
    others = {k: getattr(f, k) for k in GOOD if k != key}
    assert others == {k: getattr(node.facts_from(HOST, answer(GOOD)), k) for k in GOOD if k != key}


@pytest.mark.parametrize("top", [
    {"machine": "x86_64; reboot"}, {"machine": ["x86_64"]}, {"machine": "x" * 33},
    {"k3s_version_output": "k3s version v1.31.4+k3s1; rm -rf / (x)"}, {"k3s_version_output": "k3s version 1.31"},
    {"k3s_version_output": ["k3s version v1.31.4+k3s1"]}, {"k3s_version_output": "x" * (1 << 20) + "\n" +
                                                          "k3s version v1.31.4+k3s1 (a)"},
    {"files": {node.unit_file("agent"): {"exists": "yes"}}, "services": {"k3s-agent": {"active": True}}},
    {"files": [node.unit_file("agent")], "services": "k3s-agent"},
])
def test_hostile_answer_parts_are_no_facts(top):
    f = node.facts_from(HOST, answer({}, **top))
    assert (f.machine, f.k3s_version, f.k3s_units, f.k3s_active) == ("", None, (), ())


@pytest.mark.parametrize("raw", [None, [], "hostname=pi-1", {"facts": ["hostname", "pi-1"]}, {"facts": None}])
def test_an_answer_of_the_wrong_shape_gives_no_facts(raw):
    f = node.facts_from(HOST, raw)
    assert (f.hostname, f.machine, f.mem_kib, f.sudo, f.memory_cgroup, f.cgroup) == ("", "", None, "no", None, None)


def test_unknown_keys_are_ignored():
    f = node.facts_from(HOST, answer({**GOOD, "role": "server", "name": "evil", "user": "root"}, name="evil"))
    assert (f.name, f.role, f.user, f.hostname) == ("pi-1", "agent", "pi", "pi-1")
