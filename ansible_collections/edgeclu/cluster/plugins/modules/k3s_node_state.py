#!/usr/bin/python3
"""Ansible module: the node state edgeclu's roles decide on, read in one round trip.

The installed k3s version (``k3s --version``), sha1/mode/owner of the given files,
systemd service states, loaded kernel modules, swap, the Raspberry Pi kernel command
line, and the few facts the roles need (machine arch, the default route's IPv4
address, an interface's address, container or not) -- so the playbooks skip Ansible's
fact gathering. The roles compare this with what they want and only write, restart or
reboot what differs, so a run with nothing to do costs one call per node. Read-only.

With ``facts: true`` it also reads what edgeclu's preflight and discover check
(:data:`FACTS`: hostname, RAM, model, cgroups, the device under /var/lib/rancher, the Pi
firmware's throttling bits, whether the user has passwordless sudo): edgeclu runs it so over
its own SSH transport (``edgeclu.node.gather``), the one node probe.

It runs (through ``plugins/action/k3s_node_state.py``, which validates the arguments against
``ARGUMENT_SPEC`` first) as a plain script fed to the node's python3 on stdin (``raw_main``):
no AnsiballZ wrapper and no ansible import on the node, which makes
a look at a node several times cheaper (bench/up.py's re-run is mostly these looks).
"""

from __future__ import annotations

import fcntl
import glob
import grp
import hashlib
import os
import pwd
import re
import socket
import stat
import struct
import subprocess
import sys

DOCUMENTATION = r"""
module: k3s_node_state
short_description: Read k3s version, file digests, services, modules, swap and Pi cmdline.txt
description: [Read-only, in one round trip; the roles decide on its answer.]
options:
  k3s_bin: {type: str, description: k3s binary to ask for its version (omit to skip)}
  paths: {type: list, elements: str, default: [], description: paths on the node}
  services: {type: list, elements: str, default: [], description: systemd units to report active/enabled of}
  modules: {type: list, elements: str, default: [], description: kernel modules to report loaded or not}
  iface: {type: str, description: report this interface's IPv4 address}
  globs: {type: list, elements: str, default: [], description: list the files matching these patterns}
  sha256_globs: {type: list, elements: str, default: [], description: sha256 of the files matching these patterns}
  python: {type: str, description: the interpreter to try I(imports) with}
  imports: {type: list, elements: str, default: [], description: Python modules to try importing}
  facts: {type: bool, default: false, description: also read the node facts preflight and discover check (FACTS)}
  rancher_dir: {type: str, description: with I(facts), report the block device holding this directory (rancher_dev)}
"""

#: the one spec of the arguments (node_script.validate checks a task's against it on the controller, so a
#: node path is a str there, not a controller-expanded path; DOCUMENTATION says the same,
#: tests/unit/test_node_scripts.py holds them together)
ARGUMENT_SPEC = {"k3s_bin": {"type": "str"},
                 "paths": {"type": "list", "elements": "str", "default": []},
                 "services": {"type": "list", "elements": "str", "default": []},
                 "modules": {"type": "list", "elements": "str", "default": []},
                 "iface": {"type": "str"},
                 "globs": {"type": "list", "elements": "str", "default": []},
                 "sha256_globs": {"type": "list", "elements": "str", "default": []},
                 "python": {"type": "str"},
                 "imports": {"type": "list", "elements": "str", "default": []},
                 "facts": {"type": "bool", "default": False},
                 "rancher_dir": {"type": "str"}}

PI_CMDLINES = ("/boot/firmware/cmdline.txt", "/boot/cmdline.txt")


def file_state(path: str) -> dict:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return {"exists": False}
    isdir = stat.S_ISDIR(st.st_mode)
    digest = hashlib.sha1()  # noqa: S324 - the digest Ansible's copy module compares with
    if not isdir:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 16), b""):
                digest.update(chunk)
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return {"exists": True, "isdir": isdir, "sha1": None if isdir else digest.hexdigest(),
            "mode": f"{st.st_mode & 0o7777:04o}", "owner": owner, "group": group}


def sha256_of(path: str) -> str | None:
    """The file's sha256 (streamed: an images archive is hundreds of MB), or None if it is not a file."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except (IsADirectoryError, FileNotFoundError):
        return None
    return digest.hexdigest()


def importable(python: str, name: str) -> bool:
    if os.path.realpath(python) == os.path.realpath(sys.executable):  # this very interpreter: no second start
        try:
            __import__(name)
            return True
        except Exception:  # noqa: BLE001 - any failure to import is "not importable"
            return False
    try:
        return subprocess.run([python, "-c", f"import {name}"], capture_output=True).returncode == 0
    except OSError:
        return False


def identity(path: str) -> list | None:
    """What changes whenever a file's bytes may have: device, inode, size, mtime and ctime (ctime is the
    kernel's, no one sets it), or None if there is no such file."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def remembered(memo_in: dict, memo_out: dict, key: str, path: str, compute):
    """``compute()``, or the value ``memo_in`` holds for ``key`` when ``path`` is the very same file as then
    (its :func:`identity`); what was used goes to ``memo_out``. For the answers that are costly and a function
    of one file's bytes: ``k3s --version`` and an images archive's sha256."""
    ident = identity(path)
    was = memo_in.get(key)
    same = ident is not None and isinstance(was, list) and len(was) == 2 and was[0] == ident
    value = was[1] if same else compute()
    if ident is not None:
        memo_out[key] = [ident, value]
    return value


def service_state(name: str) -> dict:
    def ask(verb: str) -> str:
        proc = subprocess.run(["systemctl", verb, name], capture_output=True, text=True)
        return proc.stdout.strip() or "unknown"

    return {"active": ask("is-active"), "enabled": ask("is-enabled")}


def swap_state() -> dict:
    with open("/proc/swaps") as f:
        active = len(f.read().splitlines()[1:])
    fstab = 0
    try:
        with open("/etc/fstab") as f:
            for line in f:
                fields = line.split()
                if len(fields) >= 3 and not fields[0].startswith("#") and fields[2] == "swap":
                    fstab += 1
    except FileNotFoundError:
        pass
    return {"active": active, "fstab": fstab}


def pi_cmdline() -> dict | None:
    for path in PI_CMDLINES:
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        if "has moved to" not in text:  # bookworm leaves a pointer at /boot/cmdline.txt
            return {"path": path, "content": text}
    return None


def default_ipv4() -> str | None:
    """Source address of the default route (what Ansible's default_ipv4 reports); sends nothing."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 53))
            return s.getsockname()[0]
        except OSError:
            return None


def iface_ipv4(name: str) -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name[:15].encode()))  # SIOCGIFADDR
        except OSError:
            return None
    return socket.inet_ntoa(packed[20:24])


def container() -> str:
    """The container manager (systemd-nspawn, lxc, docker...), or "" on a real or virtual machine."""
    try:
        proc = subprocess.run(["systemd-detect-virt", "--container"], capture_output=True, text=True)
        return proc.stdout.strip() if proc.returncode == 0 else ""
    except FileNotFoundError:
        pass
    try:
        with open("/run/systemd/container") as f:
            return f.read().strip()
    except OSError:
        return "docker" if os.path.exists("/.dockerenv") else ""


# -- the node facts (``facts: true``) -------------------------------------------------
# Run as the login user when not under become (edgeclu's preflight and discover): nothing here needs
# root, and "sudo" says what that user may do. Every value is the node's word: edgeclu.node checks them.
CGROUP_CONTROLLERS = "/sys/fs/cgroup/cgroup.controllers"
PROC_CGROUPS = "/proc/cgroups"
DT_MODELS = ("/proc/device-tree/model", "/sys/firmware/devicetree/base/model")
THROTTLED = "/sys/devices/platform/soc/soc:firmware/get_throttled"


def mem_kib(meminfo: str = "/proc/meminfo") -> int | None:
    with open(meminfo) as f:
        for line in f:
            fields = line.split()
            if fields[:1] == ["MemTotal:"] and len(fields) == 3 and fields[2] == "kB" and fields[1].isdigit():
                return int(fields[1])
    return None


def model() -> str:
    """The device tree's model (``Raspberry Pi 5 Model B Rev 1.0``), "" without a device tree."""
    for path in DT_MODELS:
        try:
            with open(path, "rb") as f:
                return f.read(4096).replace(b"\0", b"").decode("utf-8", "replace")
        except OSError:
            continue
    return ""


def cgroup_facts(controllers: str = CGROUP_CONTROLLERS, proc_cgroups: str = PROC_CGROUPS) -> dict:
    """``cgroup`` 2 (unified) or 1 (v1 or hybrid) and whether the memory controller is on: on v2 from
    cgroup.controllers; only on v1 from /proc/cgroups (a kernel without CONFIG_MEMCG_V1, like Raspberry Pi's
    from 6.12 on, lists no memory line there at all: raspberrypi/linux#6980)."""
    if os.path.isfile(controllers):
        with open(controllers) as f:
            return {"cgroup": 2, "memory_cgroup": "memory" in f.read().split()}
    try:
        with open(proc_cgroups) as f:
            lines = [line.split() for line in f]
    except OSError:
        return {"cgroup": None, "memory_cgroup": None}
    return {"cgroup": 1, "memory_cgroup": any(len(x) >= 4 and x[0] == "memory" and x[3] == "1" for x in lines)}


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)  # mountinfo's \040 for a space


def mount_device(path: str, mountinfo: str = "/proc/self/mountinfo", sys_block: str = "/sys/dev/block") -> str:
    """The block device holding ``path`` (or its nearest existing parent): ``mmcblk0p2``, ``sda1``; the
    filesystem's source when it is on none (``overlay``, ``tmpfs``); "" if unknown. Like
    ``findmnt -T path``: the mount with the longest mount point that contains the path, its MAJ:MIN
    looked up in /sys/dev/block."""
    while not os.path.exists(path) and path not in ("/", ""):
        path = os.path.dirname(path)
    path = os.path.realpath(path or "/")
    best = None
    try:
        with open(mountinfo) as f:
            for line in f:
                left, _, right = line.partition(" - ")
                a, b = left.split(), right.split()
                if len(a) < 5 or len(b) < 2:
                    continue
                point = _unescape(a[4])
                if (path == point or path.startswith(point.rstrip("/") + "/")) and \
                        (best is None or len(point) >= len(best[0])):
                    best = (point, a[2], _unescape(b[1]))
    except OSError:
        return ""
    if best is None:
        return ""
    block = os.path.join(sys_block, best[1])
    return os.path.basename(os.path.realpath(block)) if os.path.exists(block) else best[2]


def throttled(sysfs: str = THROTTLED) -> str | None:
    """The Pi firmware's get_throttled, as sysfs (``50000``) or ``vcgencmd`` (``throttled=0x50000``) prints it."""
    try:
        with open(sysfs) as f:
            text = f.read(256).strip()
    except OSError:
        try:
            text = subprocess.run(["vcgencmd", "get_throttled"], capture_output=True, text=True).stdout[:256].strip()
        except OSError:
            text = ""
    return text or None


def sudo() -> str:
    """``root``, ``yes`` (``sudo -n true`` works: passwordless sudo) or ``no``, for the user this runs as.
    No timeout of its own: sudo takes 20 s when the hostname does not resolve, and says yes then (the
    caller's timeout covers a sudo that hangs)."""
    if os.geteuid() == 0:
        return "root"
    try:
        ok = subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0
    except OSError:
        ok = False
    return "yes" if ok else "no"


#: the facts ``facts: true`` adds (under ``facts``), each read by its function of the parameters:
#: edgeclu.node reads these keys
FACTS = {
    "hostname": lambda p: socket.gethostname(),
    "mem_kib": lambda p: mem_kib(),
    "model": lambda p: model(),
    "cgroup": lambda p: cgroup_facts()["cgroup"],
    "memory_cgroup": lambda p: cgroup_facts()["memory_cgroup"],
    "rancher_dev": lambda p: mount_device(p["rancher_dir"]) if p["rancher_dir"] else "",
    "throttled": lambda p: throttled(),
    "sudo": lambda p: sudo(),
}


def node_facts(p: dict) -> dict:
    return {key: read(p) for key, read in FACTS.items()}


# what a request that leaves a key out asks (edgeclu/stamp.py replays a request here without the action plugin)
DEFAULTS = {k: o.get("default") for k, o in ARGUMENT_SPEC.items()}


def k3s_version_output(k3s_bin: str) -> str:
    proc = subprocess.run([k3s_bin, "--version"], capture_output=True, text=True)
    return proc.stdout if proc.returncode == 0 else ""


def gather(p: dict, memo_in: dict | None = None, memo_out: dict | None = None) -> dict:
    """The node's state for the parameters ``p`` (see DOCUMENTATION). ``memo_in``/``memo_out``: see
    :func:`remembered` (the converged stamp keeps one; the roles' calls have none and compute all)."""
    p = {**DEFAULTS, **{k: v for k, v in p.items() if v is not None}}
    memo_in, memo_out = memo_in or {}, {} if memo_out is None else memo_out
    version_output = ""
    if p["k3s_bin"] and os.path.exists(p["k3s_bin"]):
        version_output = remembered(memo_in, memo_out, "k3s_version_output", p["k3s_bin"],
                                    lambda: k3s_version_output(p["k3s_bin"]))
    sha256 = {path: remembered(memo_in, memo_out, f"sha256:{path}", path, lambda path=path: sha256_of(path))
              for pattern in p["sha256_globs"] for path in sorted(glob.glob(pattern))}
    return dict(
        changed=False,
        k3s_version_output=version_output,
        files={path: file_state(path) for path in p["paths"]},
        services={name: service_state(name) for name in p["services"]},
        modules={name: os.path.isdir(f"/sys/module/{name}") for name in p["modules"]},
        swap=swap_state(),
        rpi_cmdline=pi_cmdline(),
        machine=os.uname().machine,
        default_ipv4=default_ipv4(),
        iface_ipv4=iface_ipv4(p["iface"]) if p["iface"] else None,
        container=container(),
        globs={pattern: sorted(glob.glob(pattern)) for pattern in p["globs"]},
        sha256={path: digest for path, digest in sha256.items() if digest},
        imports={name: importable(p["python"] or sys.executable, name) for name in p["imports"]},
        **({"facts": node_facts(p)} if p["facts"] else {}),
        request={k: p[k] for k in DEFAULTS},  # what was asked: edgeclu's converged stamp replays it
    )


def raw_main(args: dict) -> dict:
    """Run by the k3s_node_state action plugin: plain Python, no Ansible on the node."""
    return gather(args)
