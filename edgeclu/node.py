"""What edgeclu knows of a node, in one place: where k3s and edgeclu keep things on it, its k3s
units, and the one probe that reads its facts over SSH (:func:`gather`: the collection's node script
``k3s_node_state`` with ``facts: true``, its answer read by :func:`checked`).

The paths and unit names are the collection's (``plugins/module_utils/paths.py``, k3s's defaults and
edgeclu's own; the roles get them from there too), re-exported here. The node agent
(:mod:`edgeclu.agent`) is shipped alone and keeps its own copy of the unit names.

The probe's answer is the node's word: every value is checked (types, ranges, lengths, the k3s
version matches k3s's pattern) before it is a fact, and an unknown key is ignored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ansible_collections.edgeclu.cluster.plugins.module_utils import node_loader, paths
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
from ansible_collections.edgeclu.cluster.plugins.modules import k3s_node_state
from edgeclu.agent.pi import parse_throttled
from edgeclu.errors import CommandFailed, NoPython, RemoteError

# -- where things are: the collection's module_utils/paths.py (the roles' planners put the same paths
# into their plans), re-exported here under edgeclu's names


def service(role: str) -> str:
    """The k3s service of a node with this role: ``k3s`` or ``k3s-agent``."""
    return SERVICES[role]


def unit_file(role: str) -> str:
    return paths.unit_file(service(role))


# -- the probe ------------------------------------------------------------------------------
# The collection's node script k3s_node_state with ``facts: true``, as the login user (nothing needs root;
# "sudo" says what that user may do), over edgeclu's transport with the collection's framing: the loader
# as the command, the script and these arguments on stdin. The roles run the same script without facts.
PROBE_ARGS = {"facts": True, "rancher_dir": RANCHER_DIR, "k3s_bin": K3S_BIN, "paths": [unit_file(r) for r in SERVICES],
              "services": list(SERVICES.values())}
PROBE = node_loader.command(node_loader.DEFAULT_PYTHON)  # the command, with the usual interpreter
#: the facts the probe adds (``facts`` in its answer); :class:`NodeFacts` has them, checked, with the
#: answer's ``machine``, ``k3s_version_output`` and the k3s units' ``files`` and ``services``
KEYS = tuple(k3s_node_state.FACTS)
MAX_ANSWER = 1 << 20  # an honest answer is about 2 kB
_HOSTNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # the kernel's HOST_NAME_MAX is 64
_MACHINE = re.compile(r"[A-Za-z0-9_]{1,32}")  # uname -m: x86_64, aarch64, armv7l
_DEVICE = re.compile(r"[A-Za-z0-9/_.:@+-]{1,128}")  # mmcblk0p2, /dev/root, overlay, rpool/ROOT/debian
_PRINTABLE = re.compile(r"[^\x20-\x7e\u00a0-\ud7ff\ue000-\ufffd]")


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


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _text(value: Any, pattern: re.Pattern) -> str:
    return value if isinstance(value, str) and pattern.fullmatch(value) else ""


def checked(answer: Any) -> dict[str, Any]:
    """The probe's answer (the node's word) as :class:`NodeFacts`' values, each checked: a wrong type, an
    out-of-range number, a string that is not what the program prints is no fact (None or ""); unknown
    keys are ignored (pure)."""
    doc = _dict(answer)
    f = _dict(doc.get("facts"))
    mem = f.get("mem_kib")
    model = f.get("model") if isinstance(f.get("model"), str) else ""
    throttled = f.get("throttled")
    version = doc.get("k3s_version_output")
    files, services = _dict(doc.get("files")), _dict(doc.get("services"))
    return {
        "hostname": _text(f.get("hostname"), _HOSTNAME),
        "machine": _text(doc.get("machine"), _MACHINE),
        "mem_kib": mem if type(mem) is int and 0 < mem < 1 << 50 else None,
        "sudo": f["sudo"] if f.get("sudo") in ("root", "yes") else "no",
        "memory_cgroup": f["memory_cgroup"] if isinstance(f.get("memory_cgroup"), bool) else None,
        "cgroup": f["cgroup"] if f.get("cgroup") in (1, 2) and type(f["cgroup"]) is int else None,
        "rancher_dev": _text(f.get("rancher_dev"), _DEVICE),
        "throttled": parse_throttled(throttled) if isinstance(throttled, str) and len(throttled) <= 64 else None,
        "k3s_version": parse_version_output(version[:4096]) if isinstance(version, str) else None,
        "model": _PRINTABLE.sub("", model[:1000]).strip()[:200],
        "k3s_units": tuple(s for r, s in SERVICES.items() if _dict(files.get(unit_file(r))).get("exists") is True),
        "k3s_active": tuple(s for s in SERVICES.values() if _dict(services.get(s)).get("active") == "active"),
    }


def facts_from(host, answer: Any) -> NodeFacts:
    """The facts of inventory host ``host`` from its answer to the probe (parsed JSON)."""
    return NodeFacts(name=host.name, role=host.role, user=host.user, **checked(answer))


def ask(remote, *, python: str = node_loader.DEFAULT_PYTHON, timeout: float = 30) -> dict:
    """Run the probe on ``remote`` (a :class:`~edgeclu.transport.Remote`) as its login user: its answer,
    parsed (a dict; the values are unchecked: :func:`checked`). :class:`~edgeclu.errors.NoPython` when the
    node has no ``python`` (exit 127 of the shell), RemoteError when the probe fails or its answer is no JSON."""
    script = Path(k3s_node_state.__file__).read_bytes()
    r = remote.run(node_loader.command(python), check=False, timeout=timeout,
                   stdin=node_loader.stdin(script, PROBE_ARGS))
    if r.exit_code == 127:
        raise NoPython(remote.name, f"no {python} on the node: k3s nodes need python3 for Ansible; install it "
                                    "(apt install python3) or set ansible_python_interpreter")
    if not r.ok:
        raise CommandFailed(remote.name, "the node probe (k3s_node_state)", r.exit_code, r.stderr[-500:])
    try:
        answer = json.loads(r.stdout) if len(r.stdout) <= MAX_ANSWER else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise RemoteError(remote.name, "the node probe's answer is not a JSON object")
    return answer


def gather(remote, host) -> NodeFacts:
    """The facts of inventory host ``host``, read on ``remote`` with its interpreter."""
    return facts_from(host, ask(remote, python=node_loader.node_python(host.vars)))
