"""Preflight: can these nodes run k3s? One SSH command per node (the node probe,
:func:`edgeclu.node.gather`: the collection's k3s_node_state script with ``facts: true``, run by
the node's python3 as the login user), then pure checks.

Errors (``edgeclu up`` refuses to start): duplicate hostnames, a server with less than
1 GB of RAM, an architecture k3s has no release for, a login user without passwordless
sudo, a node that cannot be reached, a node without python3 (Ansible needs it too).
Warnings: an agent with less than 512 MB, the memory cgroup switched off (on a Pi, ``up``
fixes cmdline.txt and reboots), a 32-bit armv7 node, an etcd server whose /var/lib/rancher
is on an SD card, a Pi that has seen under-voltage or throttling since boot.

Where the memory cgroup is read (the script's ``cgroup_facts``): with cgroup v2
(``/sys/fs/cgroup/cgroup.controllers``) from that file; only on v1 (or hybrid) from
``/proc/cgroups``. From Raspberry Pi kernel 6.12 on, ``/proc/cgroups`` no longer lists the
memory controller at all (the kernel gained ``CONFIG_MEMCG_V1``, which Pi kernels leave
off; raspberrypi/linux#6980), so reading it there says nothing about v2.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from ansible_collections.edgeclu.cluster.plugins.module_utils.k3s import UnsupportedArch, k3s_arch
from edgeclu.agent.pi import decode_throttled
from edgeclu.errors import CommandFailed, NoPython, RemoteError, Unreachable
from edgeclu.fleet import on_all
from edgeclu.inventory import Host
from edgeclu.node import RANCHER_DIR, NodeFacts, gather

# MemTotal excludes what firmware and kernel reserve: a 1 GB Pi reports about 920-950 MiB,
# so the nominal sizes get 10 % slack.
SERVER_MIN_KIB = int(1024 * 1024 * 0.9)
AGENT_MIN_KIB = int(512 * 1024 * 0.9)

_SD_CARD = re.compile(r"(?:/dev/)?mmcblk\d+(?:p\d+)?")


@dataclass(frozen=True)
class Problem:
    node: str
    severity: str  # error | warning
    check: str
    message: str

    def __str__(self) -> str:
        return f"{self.node}: {self.severity}: {self.message}"


@dataclass
class Report:
    facts: dict[str, NodeFacts]
    problems: list[Problem]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def unreachable(self) -> list[str]:
        return [p.node for p in self.problems if p.check == "unreachable"]


def on_sd_card(device: str) -> bool:
    """``mmcblk0p2`` or ``/dev/mmcblk1``: an SD card (or eMMC) slot."""
    return bool(_SD_CARD.fullmatch(device.strip()))


def _gib(kib: int) -> str:
    return f"{kib / 1024 / 1024:.1f} GiB"


def _conditions(names: list[str], when: str) -> str:
    return f"{', '.join(n.replace('_', '-') for n in names)} {when}" if names else ""


def check_node(f: NodeFacts, etcd: bool = False) -> list[Problem]:
    """The checks that need only this node's facts (``etcd``: the servers run embedded etcd)."""
    problems = []

    def add(severity: str, check: str, message: str) -> None:
        problems.append(Problem(f.name, severity, check, message))

    try:
        k3s_arch(f.machine)
    except UnsupportedArch as e:
        add("error", "arch", str(e))
    if f.mem_kib is None:
        add("warning", "memory", "could not read MemTotal from /proc/meminfo")
    elif f.role == "server" and f.mem_kib < SERVER_MIN_KIB:
        add("error", "memory", f"a k3s server needs at least 1 GB of RAM; this node has {_gib(f.mem_kib)}")
    elif f.role == "agent" and f.mem_kib < AGENT_MIN_KIB:
        add("warning", "memory", f"a k3s agent should have at least 512 MB of RAM; this node has {_gib(f.mem_kib)}")
    if f.sudo == "no":
        add("error", "sudo", f"user {f.user} has no passwordless sudo (`sudo -n true` failed); "
                             f"add '{f.user} ALL=(ALL) NOPASSWD:ALL' to /etc/sudoers.d/ or log in as root")
    if f.memory_cgroup is False:
        where = {2: " (not in /sys/fs/cgroup/cgroup.controllers)", 1: " (/proc/cgroups)"}.get(f.cgroup, "")
        add("warning", "cgroup", f"the memory cgroup is disabled{where}; on a Raspberry Pi, `edgeclu up` adds "
                                 "cgroup_memory=1 cgroup_enable=memory to cmdline.txt and reboots")
    if f.machine == "armv7l":
        add("warning", "arch", "32-bit armv7: k3s still ships armhf, but Kubernetes no longer publishes linux/arm "
                               "images and many charts have none; on a Pi 3, 4 or 5 prefer a 64-bit OS (aarch64), "
                               "or pin images that have an arm/v7 build")
    if etcd and f.role == "server" and on_sd_card(f.rancher_dev):
        add("warning", "storage", f"{RANCHER_DIR} is on an SD card ({f.rancher_dev}): etcd writes constantly "
                                  "and k3s's maintainers advise against etcd on SD cards (slow fsync, wear); move "
                                  f"{RANCHER_DIR} to an SSD or USB disk, or use one server (SQLite)")
    if f.throttled is not None:
        seen = decode_throttled(f.throttled)
        now = [k for k, v in seen["now"].items() if v]
        since = [k for k, v in seen["since_boot"].items() if v and k not in now]
        if now or since:
            what = "; ".join(part for part in (_conditions(now, "now"), _conditions(since, "since boot")) if part)
            add("warning", "power", f"the Pi reports {what} (get_throttled={seen['raw']}): use the official "
                                    "power supply and cooling before k3s adds load (edgeclu health shows it too)")
    return problems


def check_duplicates(facts: Iterable[NodeFacts]) -> list[Problem]:
    """Each node whose hostname another node also has."""
    by_hostname: dict[str, list[str]] = {}
    for f in facts:
        if f.hostname:
            by_hostname.setdefault(f.hostname, []).append(f.name)
    problems = []
    for hostname, names in by_hostname.items():
        if len(names) < 2:
            continue
        for name in names:
            others = ", ".join(n for n in names if n != name)
            problems.append(Problem(name, "error", "hostname",
                                    f"hostname {hostname!r} is also the hostname of {others}; give every node "
                                    "its own (hostnamectl set-hostname NAME)"))
    return problems


def check_facts(facts: list[NodeFacts], etcd: bool = False) -> list[Problem]:
    problems = [p for f in facts for p in check_node(f, etcd)] + check_duplicates(facts)
    order = {f.name: i for i, f in enumerate(facts)}
    return sorted(problems, key=lambda p: (order.get(p.node, len(order)), p.severity != "error", p.check))


def run_preflight(cluster, *, hosts: list[Host] | None = None, remotes: dict | None = None) -> Report:
    """Probe every node of ``cluster`` (a :class:`~edgeclu.cluster.Cluster`; or ``hosts``) in parallel;
    an unreachable node is an error of its own, the rest are checked. ``remotes``: the nodes' connections,
    the caller's to keep using and close; else preflight's own, closed."""
    inv = cluster.inv
    hosts = list(hosts if hosts is not None else inv.hosts)
    own = remotes is None
    remotes = cluster.remotes(hosts) if own else remotes
    try:
        results = on_all(hosts, lambda h: gather(remotes[h.name], h))
    finally:
        for r in remotes.values() if own else ():
            r.close()
    facts = [v for v in results.values() if isinstance(v, NodeFacts)]
    problems = [Problem(name, "error", _failure_kind(err), str(err).removeprefix(f"{name}: "))
                for name, err in results.failed.items()]
    problems += check_facts(facts, etcd=len(inv.servers) > 1)
    order = {h.name: i for i, h in enumerate(hosts)}
    problems.sort(key=lambda p: order[p.node])
    return Report({f.name: f for f in facts}, problems)


def _failure_kind(err: BaseException) -> str:
    if isinstance(err, Unreachable):
        return "unreachable"
    if isinstance(err, NoPython):
        return "python"
    return "ssh" if isinstance(err, RemoteError) and not isinstance(err, CommandFailed) else "probe"


def as_json(rep: Report, hosts: Iterable[Host]) -> dict:
    nodes = {}
    for h in hosts:
        f = rep.facts.get(h.name)
        mine = [p for p in rep.problems if p.node == h.name]
        nodes[h.name] = {
            "role": h.role, "reachable": f is not None,
            "facts": {k: v for k, v in asdict(f).items() if k not in ("name", "role")} if f else None,
            "problems": [{"severity": p.severity, "check": p.check, "message": p.message} for p in mine],
        }
    return {"ok": not rep.errors, "nodes": nodes}
