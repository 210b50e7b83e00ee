"""What edgeclu knows of a node, in one place: where k3s and edgeclu keep things on it, its k3s
units, and the one probe that reads its facts over SSH (:data:`PROBE`, read by :func:`facts_from`).

The paths and unit names are the collection's (``plugins/module_utils/paths.py``, k3s's defaults and
edgeclu's own; the roles get them from there too), re-exported here. The node agent
(:mod:`edgeclu.agent`) is shipped alone and keeps its own copy of the unit names.

The probe's output is the node's word: every value is checked (numbers are digits, the k3s
version matches k3s's pattern) before it is a fact, and an unknown key is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

from ansible_collections.edgeclu.cluster.plugins.module_utils import paths
from ansible_collections.edgeclu.cluster.plugins.module_utils.k3s import parse_version_output
from ansible_collections.edgeclu.cluster.plugins.module_utils.paths import (  # noqa: F401 - re-exported
    AGENT_CONFIG,
    AGENT_CONFIG_DIR,
    AGENT_DIR,
    AGENT_SERVICE,
    AGENT_ZIP,
    K3S_BIN,
    K3S_CONFIG,
    K3S_CONFIG_DIR,
    K3S_KILLALL,
    K3S_MODULES_CONF,
    K3S_SYSCTL_CONF,
    K3S_UNINSTALL,
    K3S_YAML,
    MANIFESTS_DIR,
    NODE_PASSWORD,
    PI_CMDLINES,
    RANCHER_DIR,
    SERVER_DIR,
    SERVER_TOKEN,
    SERVICES,
    SNAPSHOT_DIR,
    STAMP,
    STATE_DIR,
    STORAGE_DIR,
    SYSTEMD_DIR,
)
from ansible_collections.edgeclu.cluster.plugins.module_utils.paths import DATA_DIR as K3S_DATA_DIR  # noqa: F401
from edgeclu.agent.pi import parse_throttled

# -- where things are: the collection's module_utils/paths.py (the roles' planners put the same paths
# into their plans), re-exported here under edgeclu's names


def service(role: str) -> str:
    """The k3s service of a node with this role: ``k3s`` or ``k3s-agent``."""
    return SERVICES[role]


def unit_file(role: str) -> str:
    return paths.unit_file(service(role))


# -- the probe ------------------------------------------------------------------------------
# One shell command, as the login user (nothing needs root), one ``key=value`` line per fact.
PROBE = rf"""
echo "hostname=$(hostname)"
echo "machine=$(uname -m)"
sed -n 's/^MemTotal: *\([0-9]*\) kB$/mem_kib=\1/p' /proc/meminfo
for f in /proc/device-tree/model /sys/firmware/devicetree/base/model; do
  [ -r "$f" ] && {{ echo "model=$(tr -d '\000' < "$f")"; break; }}
done
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  echo cgroup=2
  if grep -qw memory /sys/fs/cgroup/cgroup.controllers; then echo memory_cgroup=1; else echo memory_cgroup=0; fi
elif [ -r /proc/cgroups ]; then
  echo cgroup=1
  awk '$1 == "memory" {{ v = $4 }} END {{ print "memory_cgroup=" (v == "" ? 0 : v) }}' /proc/cgroups
fi
d={RANCHER_DIR}; while [ ! -e "$d" ] && [ "$d" != / ]; do d=$(dirname "$d"); done
mm=$(findmnt -no MAJ:MIN -T "$d" 2>/dev/null | head -n 1 | tr -d ' ')
if [ -n "$mm" ] && [ -e "/sys/dev/block/$mm" ]; then
  echo "rancher_dev=$(basename "$(readlink -f "/sys/dev/block/$mm")")"
else echo "rancher_dev=$(df -P "$d" 2>/dev/null | awk 'NR == 2 {{ print $1 }}')"; fi
t=$(cat /sys/devices/platform/soc/soc:firmware/get_throttled 2>/dev/null || vcgencmd get_throttled 2>/dev/null)
[ -n "$t" ] && echo "throttled=$t"
if [ "$(id -u)" = 0 ]; then echo sudo=root; elif sudo -n true 2>/dev/null; then echo sudo=yes; else echo sudo=no; fi
echo "k3s=$({K3S_BIN} --version 2>/dev/null | head -n 1)"
for s in {" ".join(SERVICES.values())}; do
  [ -f "{SYSTEMD_DIR}/$s.service" ] && echo "k3s_unit=$s"
  systemctl is-active --quiet "$s" 2>/dev/null && echo "k3s_active=$s"
done
true
"""
# what the probe prints; :class:`NodeFacts` has them, checked
KEYS = ("hostname", "machine", "mem_kib", "model", "cgroup", "memory_cgroup", "rancher_dev", "throttled", "sudo",
        "k3s", "k3s_unit", "k3s_active")


@dataclass(frozen=True)
class NodeFacts:
    name: str
    role: str
    user: str
    hostname: str
    machine: str
    mem_kib: int | None
    sudo: str  # root | yes | no
    memory_cgroup: bool | None = None
    cgroup: int | None = None  # 2 (unified), 1 (v1 or hybrid), None (unknown)
    rancher_dev: str = ""  # the block device under /var/lib/rancher (mmcblk0p2, sda1, overlay, ...)
    throttled: int | None = None  # the firmware's get_throttled bits, on a Pi
    k3s_version: str | None = None  # the installed k3s (``k3s --version``), None if none
    model: str = ""  # the device tree's model (Raspberry Pi 5 Model B Rev 1.0), "" elsewhere
    k3s_units: tuple[str, ...] = ()  # the k3s services installed (unit files edgeclu's install writes)
    k3s_active: tuple[str, ...] = ()  # and those running

    @property
    def k3s_installed(self) -> bool:
        """The binary answers and the unit of this node's role is there."""
        return self.k3s_version is not None and service(self.role) in self.k3s_units


def parse_probe(text: str) -> dict[str, list[str]]:
    """``{key: [values]}`` for the known keys of :data:`PROBE`'s output (noise and other keys are dropped)."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() in KEYS:
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def facts_from(host, probe_output: str) -> NodeFacts:
    """The facts of inventory host ``host`` from its answer to :data:`PROBE`."""
    values = parse_probe(probe_output)

    def one(key: str) -> str:
        return values.get(key, [""])[-1]

    mem, cgroup, memory = one("mem_kib"), one("cgroup"), one("memory_cgroup")
    units = tuple(s for s in SERVICES.values() if s in values.get("k3s_unit", []))
    active = tuple(s for s in SERVICES.values() if s in values.get("k3s_active", []))
    return NodeFacts(name=host.name, role=host.role, user=host.user, hostname=one("hostname"),
                     machine=one("machine"), mem_kib=int(mem) if mem.isdigit() else None,
                     sudo=one("sudo") if one("sudo") in ("root", "yes") else "no",
                     memory_cgroup=None if "memory_cgroup" not in values else memory == "1",
                     cgroup=int(cgroup) if cgroup in ("1", "2") else None, rancher_dev=one("rancher_dev"),
                     throttled=parse_throttled(one("throttled")), k3s_version=parse_version_output(one("k3s")),
                     model=one("model")[:200], k3s_units=units, k3s_active=active)


def gather(remote, host) -> NodeFacts:
    """Run the probe on ``remote`` (a :class:`~edgeclu.transport.Remote`) for inventory host ``host``."""
    return facts_from(host, remote.run(PROBE, timeout=30).stdout)
