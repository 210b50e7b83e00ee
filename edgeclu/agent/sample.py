"""One health sample of this node (schema :data:`edgeclu.agent.SCHEMA_VERSION`), from psutil and sysfs.

Readers that touch the system are small; everything they return is shaped by pure
helpers (:func:`filesystems`, :func:`root_readonly`, :func:`thermal_zones`) that tests feed text.
"""

from __future__ import annotations

import os
import time

import psutil

from edgeclu import __version__
from edgeclu.agent import SCHEMA_VERSION, k3s, pi
from edgeclu.agent.config import AgentConfig

# like node_exporter's defaults: pseudo filesystems and container plumbing are not disks
_SKIP = ("autofs binfmt_misc bpf cgroup cgroup2 configfs debugfs devpts devtmpfs fusectl hugetlbfs iso9660 "
         "mqueue nsfs overlay proc procfs pstore ramfs rpc_pipefs securityfs selinuxfs squashfs sysfs tracefs "
         "tmpfs efivarfs fuse.lxcfs nfsd")
SKIP_FSTYPES = frozenset(_SKIP.split())
SKIP_MOUNT_PREFIXES = ("/proc", "/sys", "/dev", "/run", "/var/lib/kubelet/", "/var/lib/rancher/k3s/agent/",
                       "/var/lib/docker/", "/var/lib/containers/", "/snap/")
SKIP_NICS = ("lo", "veth", "cni", "flannel", "docker", "kube-", "cali", "vxlan", "tunl")


def parse_mountinfo(text: str) -> list[dict]:
    """``/proc/<pid>/mountinfo`` lines -> [{id, parent, root, mountpoint, device, fstype, options,
    super_options}] (``root``: the directory of the filesystem mounted there, ``/`` unless a bind)."""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        a, b = left.split(), right.split()
        if len(a) < 6 or len(b) < 3:
            continue
        mounts.append({"id": a[0], "parent": a[1], "root": _unescape(a[3]), "mountpoint": _unescape(a[4]),
                       "device": b[1], "fstype": b[0], "options": a[5].split(","), "super_options": b[2].split(",")})
    return mounts


def _unescape(field: str) -> str:
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def filesystems(mounts: list[dict]) -> list[dict]:
    """The mounts worth reporting: real filesystems, one entry per mountpoint; ``/`` always."""
    chosen: dict[str, dict] = {}
    for m in mounts:
        mp = m["mountpoint"]
        if mp != "/" and (m["fstype"] in SKIP_FSTYPES
                          or any(mp == p.rstrip("/") or mp.startswith(p.rstrip("/") + "/")
                                 for p in SKIP_MOUNT_PREFIXES)):
            continue
        chosen[mp] = m  # later mounts hide earlier ones on the same path
    return [chosen[k] for k in sorted(chosen)]


def is_readonly(m: dict, *, own_view: bool = False) -> bool:
    """Is this mount read-only: the mount or its filesystem (an SD card remounted ro after errors)?
    In the agent's own sandboxed view (``own_view``) every mount is made read-only for it
    (``ProtectSystem=strict``): only the filesystem's own flag then says anything about the node."""
    return "ro" in m["super_options"] or (not own_view and "ro" in m["options"])


def root_readonly(mounts: list[dict], *, own_view: bool = False) -> bool | None:
    """Is ``/`` read-only (see :func:`is_readonly`)? None when the table has no ``/``."""
    roots = [m for m in mounts if m["mountpoint"] == "/"]
    return is_readonly(roots[-1], own_view=own_view) if roots else None


def _under(path: str, top: str) -> bool:
    return top == "/" or path == top or path.startswith(top.rstrip("/") + "/")


def _resolve(path: str, children: dict[str, list[dict]], root: dict) -> dict:
    """The mount a process reaches at ``path``: down from ``root``, into the shallowest child mount
    on the way, and to the last one stacked on the same place."""
    current = root
    while True:
        on_path = [c for c in children.get(current["id"], []) if c is not current and _under(path, c["mountpoint"])
                   and len(c["mountpoint"]) >= len(current["mountpoint"])]
        if not on_path:
            return current
        shallowest = min(len(c["mountpoint"]) for c in on_path)
        current = [c for c in on_path if len(c["mountpoint"]) == shallowest][-1]


def sandbox_view(mounts: list[dict]) -> tuple[list[dict], list[dict]]:
    """The agent's own mount table (its sandbox) -> (the node's mounts it can see, real mounts hidden
    from it). Drops what the sandbox added: ``PrivateTmp`` directories and directories bound onto
    themselves (``ProtectHome=read-only``...), which show a filesystem already listed. A mount that
    another filesystem covers (``InaccessiblePaths=`` over it or over a directory above it) is hidden:
    statvfs would measure the cover."""
    ids = {m["id"] for m in mounts}
    roots = [m for m in mounts if m["parent"] not in ids and m["mountpoint"] == "/"]
    if not roots:
        return mounts, []
    children: dict[str, list[dict]] = {}
    for m in mounts:
        children.setdefault(m["parent"], []).append(m)
    by_id = {m["id"]: m for m in mounts}
    seen, hidden = [], []
    for m in mounts:
        parent = by_id.get(m["parent"])
        if "/systemd-private-" in m["root"]:
            continue  # PrivateTmp's own /tmp, /var/tmp
        if parent is not None and m["device"] == parent["device"] and m["fstype"] == parent["fstype"] \
                and m["root"] == _join(parent["root"], _relative(m["mountpoint"], parent["mountpoint"])):
            continue  # a directory bound onto itself (read-only or not): its filesystem is its parent's
        reached = _resolve(m["mountpoint"], children, roots[-1])
        # covered by the same filesystem (PrivateTmp's directory over a /tmp disk): statvfs still measures it
        (seen if reached is m or reached["device"] == m["device"] else hidden).append(m)
    return seen, hidden


def _relative(path: str, top: str) -> str:
    return path[len(top.rstrip("/")):] if top != "/" else path


def _join(root: str, rel: str) -> str:
    return (root.rstrip("/") + rel) or "/"


def usage(path: str) -> dict | None:
    """``df``-style usage: percent = used / (used + available to users)."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    total, free, avail = st.f_blocks * st.f_frsize, st.f_bfree * st.f_frsize, st.f_bavail * st.f_frsize
    used = total - free
    pct = round(100.0 * used / (used + avail), 1) if used + avail else 0.0
    return {"total_bytes": total, "free_bytes": free, "avail_bytes": avail, "used_percent": pct}


def read_mounts() -> tuple[list[dict], bool]:
    """(the mount table, whether it is our own view): PID 1's when we may read it (as root, or
    without ``ProtectProc=``), else our own, which the unit's sandboxing narrowed (:func:`sandbox_view`)."""
    for path, own in (("/proc/1/mountinfo", False), ("/proc/self/mountinfo", True)):
        try:
            with open(path) as f:
                return parse_mountinfo(f.read()), own
        except OSError:
            continue
    return [], True


def thermal_zones(thermal_dir: str) -> list[dict]:
    """``<dir>/thermal_zone*/{type,temp}`` (millidegrees) -> [{name, celsius, source}]."""
    found = []
    try:
        zones = sorted(os.path.join(thermal_dir, z) for z in os.listdir(thermal_dir) if z.startswith("thermal_zone"))
    except OSError:
        zones = []
    for zone in zones:
        try:
            with open(os.path.join(zone, "temp")) as f:
                celsius = int(f.read().strip()) / 1000.0
        except (OSError, ValueError):
            continue
        try:
            with open(os.path.join(zone, "type")) as f:
                kind = f.read().strip()
        except OSError:
            kind = os.path.basename(zone)
        found.append({"name": kind, "zone": os.path.basename(zone).removeprefix("thermal_zone"),
                      "celsius": round(celsius, 1), "source": "thermal"})
    return found


def temperatures(thermal_dir: str) -> list[dict]:
    """hwmon sensors via psutil; else the thermal zones under ``thermal_dir``."""
    found = []
    sensors = getattr(psutil, "sensors_temperatures", None)
    if sensors and thermal_dir == AgentConfig.thermal_dir:
        try:
            for chip, entries in sensors().items():
                for i, e in enumerate(entries):
                    found.append({"name": chip, "sensor": e.label or f"temp{i + 1}",
                                  "celsius": round(e.current, 1), "source": "hwmon"})
        except OSError:
            found = []
    return found or thermal_zones(thermal_dir)


def networks() -> list[dict]:
    counters = psutil.net_io_counters(pernic=True)
    return [{"device": nic, "rx_bytes": c.bytes_recv, "tx_bytes": c.bytes_sent}
            for nic, c in sorted(counters.items()) if not nic.startswith(SKIP_NICS)]


def prime_cpu() -> None:
    """Start the CPU-percent window; the next sample reports usage since now."""
    psutil.cpu_percent(interval=None)


def take_sample(cfg: AgentConfig, *, cpu_interval: float | None = None) -> dict:
    """Everything ``GET /health`` returns. Parts that fail are listed in ``errors``, never fatal."""
    errors: list[str] = []
    now = time.time()
    vm, sw = psutil.virtual_memory(), psutil.swap_memory()
    boot = psutil.boot_time()
    mounts, own = read_mounts()
    if own:
        mounts, hidden = sandbox_view(mounts)
        errors += [f"disk {m['mountpoint']}: hidden from the agent by its sandbox, usage not reported"
                   for m in filesystems(hidden)]
    disks = []
    for m in filesystems(mounts):
        if not os.path.isdir(m["mountpoint"]):
            # a file bound onto a file (a container's /etc/hosts, a read-only binary) is no disk: its
            # filesystem is listed where it is mounted, and in the sandbox a read-only bind looks writable
            continue
        u = usage(m["mountpoint"])
        if u is None:
            errors.append(f"statvfs {m['mountpoint']} failed")
            continue
        disks.append({"mountpoint": m["mountpoint"], "device": m["device"], "fstype": m["fstype"],
                      "readonly": is_readonly(m, own_view=own), **u})
    model = pi.read_model(cfg.model_paths)
    raw, source = pi.read_throttled(cfg.throttled_path, cfg.vcgencmd, bool(model and "Raspberry" in model))
    temps = temperatures(cfg.thermal_dir)
    try:
        k3s_info = k3s.read_k3s(cfg.k3s_bin, cfg.k3s_role)
    except Exception as e:  # noqa: BLE001 - one failed part must not cost the whole sample
        errors.append(f"k3s: {e}")
        k3s_info = None
    uname = os.uname()
    return {
        "schema": SCHEMA_VERSION,
        "agent_version": __version__,
        "time": round(now, 3),
        "host": {
            "hostname": cfg.hostname or uname.nodename,
            "arch": uname.machine,
            "kernel": uname.release,
            "model": model,
            "boot_time": boot,
            "uptime_seconds": round(now - boot, 1),
        },
        "cpu": {"count": psutil.cpu_count() or 1,
                "percent": psutil.cpu_percent(interval=cpu_interval),
                "seconds": _cpu_seconds()},
        "load": [round(x, 2) for x in os.getloadavg()],
        "memory": {"total_bytes": vm.total, "available_bytes": vm.available, "free_bytes": vm.free,
                   "used_percent": round(vm.percent, 1)},
        "swap": {"total_bytes": sw.total, "free_bytes": sw.free, "used_percent": round(sw.percent, 1)},
        "disks": disks,
        "root_readonly": root_readonly(mounts, own_view=own),
        "network": networks(),
        "temperature": {"max_celsius": max((t["celsius"] for t in temps), default=None), "sensors": temps},
        "throttled": dict(pi.decode_throttled(raw), source=source) if raw is not None else None,
        "k3s": k3s_info,
        "errors": errors,
    }


CPU_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def _cpu_seconds() -> list[dict[str, float]]:
    """Per CPU, seconds spent in each mode since boot (node_cpu_seconds_total)."""
    return [{m: round(getattr(t, m), 2) for m in CPU_MODES if hasattr(t, m)}
            for t in psutil.cpu_times(percpu=True)]
