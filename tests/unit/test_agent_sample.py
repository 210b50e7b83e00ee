"""Sampling: mount tables, read-only root, thermal zones, k3s unit state, and a real sample."""

import json

import pytest

from edgeclu.agent import k3s, sample
from edgeclu.agent.config import AgentConfig

# /proc/1/mountinfo of a Pi running k3s, trimmed
MOUNTINFO = """\
22 1 179:2 / / rw,noatime shared:1 - ext4 /dev/mmcblk0p2 rw
23 22 0:5 / /dev rw,relatime shared:2 - devtmpfs udev rw,size=1843412k
24 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
25 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 22 0:23 / /run rw,nosuid,nodev,noexec,relatime shared:5 - tmpfs tmpfs rw,size=388252k,mode=755
30 22 179:1 / /boot/firmware rw,relatime shared:14 - vfat /dev/mmcblk0p1 rw,fmask=0022
31 22 8:1 / /mnt/usb\\040disk rw,relatime shared:15 - ext4 /dev/sda1 rw
40 22 0:50 / /run/k3s/containerd/io.containerd.runtime.v2.task/k8s.io/abc/rootfs rw shared:30 - overlay overlay rw
41 22 0:51 / /var/lib/kubelet/pods/123/volumes/kubernetes.io~projected/kube-api-access rw - tmpfs tmpfs rw
42 22 179:2 /var/lib/rancher/k3s/storage /var/lib/rancher/k3s/storage rw,noatime - ext4 /dev/mmcblk0p2 rw
"""


def test_parse_mountinfo_and_choose_real_filesystems():
    mounts = sample.parse_mountinfo(MOUNTINFO)
    assert mounts[0] == {"mountpoint": "/", "device": "/dev/mmcblk0p2", "fstype": "ext4",
                         "options": ["rw", "noatime"], "super_options": ["rw"]}
    assert [m["mountpoint"] for m in sample.filesystems(mounts)] == [
        "/", "/boot/firmware", "/mnt/usb disk", "/var/lib/rancher/k3s/storage"]


def test_overlay_root_is_kept():
    text = "100 90 0:40 / / rw,relatime - overlay overlay rw,lowerdir=/a,upperdir=/b\n"
    assert [m["mountpoint"] for m in sample.filesystems(sample.parse_mountinfo(text))] == ["/"]


@pytest.mark.parametrize(("line", "readonly"), [
    ("22 1 179:2 / / rw,noatime - ext4 /dev/mmcblk0p2 rw", False),
    ("22 1 179:2 / / ro,noatime - ext4 /dev/mmcblk0p2 ro", True),
    # ext4 remounted read-only after errors: the filesystem (super options) says ro
    ("22 1 179:2 / / rw,noatime - ext4 /dev/mmcblk0p2 ro,errors=remount-ro", True),
    # only the mount is ro (e.g. a read-only bind): still read-only for writers
    ("22 1 179:2 / / ro,relatime - ext4 /dev/vda rw", True),
])
def test_root_readonly(line, readonly):
    assert sample.root_readonly(sample.parse_mountinfo(line)) is readonly


def test_root_readonly_last_mount_wins_and_missing_is_unknown():
    text = ("22 1 179:2 / / rw - ext4 /dev/a rw\n"
            "90 22 0:40 / / ro - overlay overlay ro\n")
    assert sample.root_readonly(sample.parse_mountinfo(text)) is True
    assert sample.root_readonly([]) is None


def test_thermal_zones(tmp_path):
    for i, (kind, milli) in enumerate([("cpu-thermal", "81234"), ("gpu", "45000")]):
        z = tmp_path / f"thermal_zone{i}"
        z.mkdir()
        (z / "type").write_text(kind + "\n")
        (z / "temp").write_text(milli + "\n")
    (tmp_path / "thermal_zone9").mkdir()  # no temp file: skipped
    assert sample.thermal_zones(str(tmp_path)) == [
        {"name": "cpu-thermal", "zone": "0", "celsius": 81.2, "source": "thermal"},
        {"name": "gpu", "zone": "1", "celsius": 45.0, "source": "thermal"},
    ]


SYSTEMCTL_SHOW = """\
Id=k3s.service
LoadState=loaded
ActiveState=active
SubState=running

Id=k3s-agent.service
LoadState=not-found
ActiveState=inactive
SubState=dead
"""


def test_k3s_state_from_systemctl():
    units = k3s.parse_systemctl_show(SYSTEMCTL_SHOW)
    assert k3s.k3s_state(units, "") == {"role": "server", "unit": "k3s.service", "installed": True,
                                        "active_state": "active", "sub_state": "running", "active": True}
    # configured as an agent, but k3s-agent is not installed
    assert k3s.k3s_state(units, "agent") == {
        "role": "agent", "unit": "k3s-agent.service", "installed": False, "active_state": "inactive",
        "sub_state": "dead", "active": False}
    # no k3s at all
    none = k3s.parse_systemctl_show(SYSTEMCTL_SHOW.replace("LoadState=loaded", "LoadState=not-found"))
    assert k3s.k3s_state(none, "")["role"] is None


@pytest.mark.parametrize(("text", "version"), [
    ("k3s version v1.31.4+k3s1 (a562d090)\ngo version go1.22.9\n", "v1.31.4+k3s1"),
    ("k3s version v1.32.0-rc1+k3s2 (abc)\n", "v1.32.0-rc1+k3s2"),
    ("bash: k3s: command not found", None),
])
def test_k3s_version(text, version):
    assert k3s.parse_version(text) == version


def test_k3s_version_is_cached_per_binary(tmp_path):
    exe = tmp_path / "k3s"
    count = tmp_path / "count"
    exe.write_text(f"#!/bin/sh\necho x >> {count}\necho 'k3s version v1.31.4+k3s1 (abc)'\n")
    exe.chmod(0o755)
    assert k3s.read_version(str(exe)) == "v1.31.4+k3s1"
    assert k3s.read_version(str(exe)) == "v1.31.4+k3s1"
    assert count.read_text().count("x") == 1
    assert k3s.read_version(str(tmp_path / "missing")) is None


def test_a_real_sample_of_this_machine_with_pi_files(tmp_path):
    (tmp_path / "model").write_bytes(b"Raspberry Pi 4 Model B Rev 1.4\x00")
    (tmp_path / "get_throttled").write_text("50005\n")
    cfg = AgentConfig(model_paths=[str(tmp_path / "model")], throttled_path=str(tmp_path / "get_throttled"),
                      thermal_dir=str(tmp_path / "none"), k3s_bin=str(tmp_path / "no-k3s"))
    s = sample.take_sample(cfg, cpu_interval=0.05)
    json.dumps(s)  # serialisable
    assert s["schema"] == 1
    assert s["host"]["model"] == "Raspberry Pi 4 Model B Rev 1.4"
    assert s["throttled"]["raw"] == "0x50005"
    assert s["throttled"]["now"]["under_voltage"] is True
    assert s["throttled"]["source"] == str(tmp_path / "get_throttled")
    assert s["memory"]["total_bytes"] > s["memory"]["available_bytes"] > 0
    assert "/" in [d["mountpoint"] for d in s["disks"]]
    assert 0 <= s["cpu"]["percent"] <= 100
    assert s["k3s"]["version"] is None
    assert s["errors"] == []


def test_no_pi_files_means_no_model_and_no_throttling(tmp_path):
    cfg = AgentConfig(model_paths=[str(tmp_path / "m")], throttled_path=str(tmp_path / "t"),
                      vcgencmd=str(tmp_path / "vc"))
    s = sample.take_sample(cfg)
    assert s["host"]["model"] is None and s["throttled"] is None
