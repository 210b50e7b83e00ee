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
    assert mounts[0] == {"id": "22", "parent": "1", "root": "/", "mountpoint": "/", "device": "/dev/mmcblk0p2",
                         "fstype": "ext4", "options": ["rw", "noatime"], "super_options": ["rw"]}
    assert mounts[-1]["root"] == "/var/lib/rancher/k3s/storage"
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


# /proc/self/mountinfo of the agent under its unit (ProtectSystem=strict, ProtectHome=read-only, PrivateTmp,
# InaccessiblePaths=/etc/rancher /var/lib/rancher ..., PrivateDevices, ProtectProc=invisible) on a Pi whose
# k3s data is on a USB SSD at /var/lib/rancher, /home on its own partition; trimmed. Taken from a lab node
# (systemd 252) and given the Pi's devices.
SANDBOX = """\
129 86 179:2 / / ro,noatime shared:4 master:1 - ext4 /dev/mmcblk0p2 rw
130 129 0:22 / /sys ro,nosuid,nodev,noexec,relatime shared:7 master:593 - sysfs sysfs rw
131 129 179:1 / /boot/firmware ro,relatime shared:8 master:14 - vfat /dev/mmcblk0p1 rw,fmask=0022
132 129 8:1 / /var/lib/rancher ro,relatime shared:9 master:15 - ext4 /dev/sda1 rw
133 129 8:2 / /home ro,relatime shared:10 master:16 - ext4 /dev/sda2 rw
149 129 0:23 / /run rw,nosuid,nodev shared:23 master:5 - tmpfs tmpfs rw,size=388252k,mode=755
144 129 0:23 /systemd/inaccessible/dir /etc/edgeclu ro,nosuid,nodev,noexec shared:39 master:5 - tmpfs tmpfs rw
146 129 0:23 /systemd/inaccessible/reg /etc/shadow ro,nosuid,nodev,noexec shared:41 master:5 - tmpfs tmpfs rw
147 132 0:23 /systemd/inaccessible/dir /var/lib/rancher ro,nosuid,nodev,noexec shared:42 master:5 - tmpfs tmpfs rw
148 129 0:43 / /proc rw,nosuid,nodev,noexec,relatime shared:43 - proc proc rw,hidepid=invisible
168 129 179:2 /root /root ro,noatime shared:52 master:1 - ext4 /dev/mmcblk0p2 rw
169 129 0:42 / /dev ro,nosuid,noexec shared:34 - tmpfs tmpfs rw,size=4096k,nr_inodes=65536,mode=755
177 129 179:2 /tmp/systemd-private-f57c6e2e0bee478eb906b2f68cae1a00-edgeclu-agent.service-ExN2vw/tmp /tmp \
rw,nosuid,nodev shared:6 master:1 - ext4 /dev/mmcblk0p2 rw
178 129 179:2 /var/tmp/systemd-private-f57c6e2e0bee478eb906b2f68cae1a00-edgeclu-agent.service-Or5FWP/tmp /var/tmp \
rw,noatime shared:53 master:1 - ext4 /dev/mmcblk0p2 rw
"""


def test_the_agents_own_sandboxed_view_reports_the_nodes_disks():
    seen, hidden = sample.sandbox_view(sample.parse_mountinfo(SANDBOX))
    # PrivateTmp's directories and /root bound onto itself are not disks; /home (ro for us) is
    assert [m["mountpoint"] for m in sample.filesystems(seen)] == ["/", "/boot/firmware", "/home"]
    # the SSD under the inaccessible /var/lib/rancher cannot be measured: statvfs would see the cover
    assert [m["mountpoint"] for m in sample.filesystems(hidden)] == ["/var/lib/rancher"]
    # every mount is ro for the sandboxed agent; only the filesystem's flag speaks for the node
    assert sample.root_readonly(seen, own_view=True) is False
    assert sample.root_readonly(seen) is True
    ro_root = SANDBOX.replace("ext4 /dev/mmcblk0p2 rw\n", "ext4 /dev/mmcblk0p2 ro,errors=remount-ro\n", 1)
    assert sample.root_readonly(sample.parse_mountinfo(ro_root), own_view=True) is True


def test_a_disk_below_an_inaccessible_directory_is_hidden_but_one_beside_it_is_not():
    text = ("1 0 179:2 / / ro - ext4 /dev/root rw\n"
            "2 1 8:1 / /var/lib/rancher/k3s/storage ro - ext4 /dev/sda1 rw\n"
            "3 1 8:2 / /var/lib/rancher-backup ro - ext4 /dev/sda2 rw\n"
            "4 1 0:23 /systemd/inaccessible/dir /var/lib/rancher ro - tmpfs tmpfs rw\n")
    seen, hidden = sample.sandbox_view(sample.parse_mountinfo(text))
    assert [m["mountpoint"] for m in sample.filesystems(seen)] == ["/", "/var/lib/rancher-backup"]
    assert [m["mountpoint"] for m in hidden] == ["/var/lib/rancher/k3s/storage"]


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
