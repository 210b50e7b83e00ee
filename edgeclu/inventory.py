"""Load, validate and write edgeclu's Ansible-compatible YAML inventory.

Shape (the same file works with ``ansible-playbook -i``)::

    k3s_cluster:
      children:
        server: {hosts: {pi-1: {ansible_host: 192.168.1.10}}}
        agent:  {hosts: {pi-2: {ansible_host: 192.168.1.11}}}
      vars: {k3s_version: v1.31.4+k3s1, ...}

Every problem found is reported as one line naming the file, the host (or group)
and the field; all problems are collected before raising :class:`InventoryError`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from edgeclu.errors import InventoryError

ROLES = ("server", "agent")
VERSION_RE = re.compile(r"^v1\.(\d+)\.(\d+)(-rc\d+)?\+k3s\d+$")
HOSTNAME_RE = re.compile(r"^(?=.{1,63}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?"
DNS_RE = re.compile(rf"^(?=.{{1,253}}$)({_LABEL}\.)*{_LABEL}$")


# -- field checkers: each returns an error message, or None ------------------
def _str(v: Any) -> str | None:
    return None if isinstance(v, str) and v.strip() else "must be a non-empty string"


def _bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "must be true or false"


def _port(v: Any) -> str | None:
    ok = isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 65535
    return None if ok else "must be a port number (1-65535)"


def _address(v: Any) -> str | None:
    if not isinstance(v, str):
        return "must be an IP address or DNS name (a string)"
    try:
        ipaddress.ip_address(v)
        return None
    except ValueError:
        return None if DNS_RE.match(v) else f"{v!r} is neither an IP address nor a DNS name"


def _ip(v: Any) -> str | None:
    try:
        ipaddress.ip_address(str(v))
        return None if isinstance(v, str) else "must be an IP address (a string)"
    except ValueError:
        return f"{v!r} is not an IP address"


def _version(v: Any) -> str | None:
    if isinstance(v, str) and VERSION_RE.match(v):
        return None
    return f"{v!r} is not a k3s version like v1.31.4+k3s1"


def _str_list(v: Any) -> str | None:
    ok = isinstance(v, list) and all(isinstance(x, str) and x for x in v)
    return None if ok else "must be a list of strings"


def _mapping(v: Any) -> str | None:
    return None if isinstance(v, dict) else "must be a mapping"


def _choice(*options: str) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        return None if v in options else f"{v!r} is not one of: {', '.join(options)}"

    return check


def _pool(v: Any) -> str | None:
    if _str_list(v):
        return "must be a list of address ranges (CIDR or first-last)"
    for item in v:
        parts = item.split("-")
        try:
            if len(parts) == 2:
                ipaddress.ip_address(parts[0].strip())
                ipaddress.ip_address(parts[1].strip())
            else:
                ipaddress.ip_network(item, strict=False)
        except ValueError:
            return f"{item!r} is not a CIDR or first-last range"
    return None


def _percent(v: Any) -> str | None:
    ok = isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 100
    return None if ok else "must be a whole percentage from 1 to 100"


# Fields a host (or the server/agent group) may set.
HOST_FIELDS: dict[str, Callable[[Any], str | None]] = {
    "ansible_host": _address,
    "ansible_user": _str,
    "ansible_port": _port,
    "ansible_ssh_private_key_file": _str,
    "ansible_become": _bool,
    "ansible_python_interpreter": _str,
    "ansible_ssh_common_args": _str,
    "node_ip": _ip,
    "node_iface": _str,
    "node_labels": _str_list,
    "node_taints": _str_list,
    "k3s_extra_config": _mapping,
    "k3s_token": _str,  # override of the cluster token for one host (migrations, tests); token_file is preferred
}

# Fields only the cluster (k3s_cluster.vars) may set.
CLUSTER_FIELDS: dict[str, Callable[[Any], str | None]] = {
    "k3s_version": _version,
    "cluster_name": _str,
    "api_endpoint": _address,
    "api_port": _port,
    "tls_san": _str_list,
    "token_file": _str,
    "token_env": _str,
    "k3s_mirror": _str,
    "k3s_airgap_dir": _str,
    "disable_swap": _bool,
    "storage": _choice("local-path", "nfs", "longhorn", "none"),
    "storage_path": _str,
    "nfs_server": _address,
    "nfs_path": _str,
    "ingress": _choice("traefik", "nginx", "none"),
    "loadbalancer": _choice("servicelb", "metallb", "none"),
    "metallb_pool": _pool,
    "agent_port": _port,
    "agent_token_file": _str,
    "upgrade_batch_percent": _percent,
    "edgeclu_known_hosts": _str,
    "kubeconfig": _str,
}

DEFAULTS: dict[str, Any] = {
    "ansible_user": "root",
    "ansible_port": 22,
    "cluster_name": "edgeclu",
    "api_port": 6443,
    "tls_san": [],
    "token_file": "~/.config/edgeclu/token",
    "disable_swap": True,
    "storage": "local-path",
    "storage_path": "/var/lib/rancher/k3s/storage",
    "ingress": "traefik",
    "loadbalancer": "servicelb",
    "agent_port": 9101,
    "upgrade_batch_percent": 25,
    "edgeclu_known_hosts": "~/.ssh/known_hosts",
    "node_labels": [],
    "node_taints": [],
    "k3s_extra_config": {},
}


@dataclass(frozen=True)
class Host:
    name: str
    role: str  # "server" | "agent"
    address: str
    user: str
    port: int
    key_file: str | None
    vars: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def node_ip(self) -> str | None:
        return self.vars.get("node_ip")


@dataclass(frozen=True)
class Inventory:
    path: Path
    hosts: tuple[Host, ...]
    vars: dict[str, Any] = field(compare=False, repr=False)

    @property
    def servers(self) -> list[Host]:
        return [h for h in self.hosts if h.role == "server"]

    @property
    def agents(self) -> list[Host]:
        return [h for h in self.hosts if h.role == "agent"]

    @property
    def k3s_version(self) -> str:
        return self.vars["k3s_version"]

    @property
    def api_endpoint(self) -> str:
        return self.vars.get("api_endpoint") or self.servers[0].address

    @property
    def known_hosts(self) -> Path:
        return Path(self.vars["edgeclu_known_hosts"]).expanduser()

    def host(self, name: str) -> Host:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)


# -- YAML with duplicate-key detection and line numbers ----------------------
class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain value", key_node.start_mark) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {seen[key] + 1})", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=True)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_yaml(text: str, path: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{path}:{mark.line + 1}" if mark else path
        raise InventoryError([f"{where}: invalid YAML: {e.problem or e.context}"]) from None
    except yaml.YAMLError as e:
        raise InventoryError([f"{path}: invalid YAML: {e}"]) from None


# -- loading -----------------------------------------------------------------
def load_inventory(path: str | Path) -> Inventory:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise InventoryError([f"{path}: cannot read inventory: {e.strerror}"]) from None
    return parse_inventory(text, str(path))


def parse_inventory(text: str, path: str = "<inventory>") -> Inventory:
    data = parse_yaml(text, path)
    problems: list[str] = []

    def bad(where: str, fld: str | None, msg: str) -> None:
        problems.append(f"{path}: {where}" + (f": field '{fld}'" if fld else "") + f": {msg}")

    if not isinstance(data, dict) or not isinstance(data.get("k3s_cluster"), dict):
        raise InventoryError([f"{path}: top level: field 'k3s_cluster': missing; "
                              "expected k3s_cluster: {children: {server: ..., agent: ...}, vars: ...}"])
    cluster = data["k3s_cluster"]
    for key in cluster:
        if key not in ("children", "vars", "hosts"):
            bad("k3s_cluster", str(key), "unknown key (expected children, vars)")
    if cluster.get("hosts"):
        bad("k3s_cluster", "hosts", "put hosts under children: server or agent")
    cvars = cluster.get("vars") or {}
    if not isinstance(cvars, dict):
        bad("k3s_cluster", "vars", "must be a mapping")
        cvars = {}
    _check_fields(cvars, {**HOST_FIELDS, **CLUSTER_FIELDS}, "cluster vars", bad)
    if "k3s_version" not in cvars:
        bad("cluster vars", "k3s_version", "missing (pin a version like v1.31.4+k3s1)")
    if cvars.get("token_file") and cvars.get("token_env"):
        bad("cluster vars", "token_env", "set token_file or token_env, not both")
    if cvars.get("loadbalancer") == "metallb" and not cvars.get("metallb_pool"):
        bad("cluster vars", "metallb_pool", "required when loadbalancer is metallb")
    if cvars.get("storage") == "nfs":
        for need in ("nfs_server", "nfs_path"):
            if not cvars.get(need):
                bad("cluster vars", need, "required when storage is nfs")

    children = cluster.get("children") or {}
    if not isinstance(children, dict):
        bad("k3s_cluster", "children", "must be a mapping of groups")
        children = {}
    for group in children:
        if group not in ROLES:
            bad(f"group {group!r}", None, "unknown group (expected server, agent)")

    hosts: list[Host] = []
    seen_names: dict[str, str] = {}
    seen_addr: dict[str, str] = {}
    base = {**DEFAULTS, **{k: v for k, v in cvars.items() if k in DEFAULTS or k in HOST_FIELDS}}
    for role in ROLES:
        group = children.get(role)
        if group is None:
            if role == "server":
                bad("k3s_cluster.children", "server", "missing: at least one server is needed")
            continue
        if not isinstance(group, dict):
            bad(f"group {role!r}", None, "must be a mapping with hosts:")
            continue
        for key in group:
            if key not in ("hosts", "vars"):
                bad(f"group {role!r}", str(key), "unknown key (expected hosts, vars)")
        gvars = group.get("vars") or {}
        if not isinstance(gvars, dict):
            bad(f"group {role!r}", "vars", "must be a mapping")
            gvars = {}
        _check_fields(gvars, HOST_FIELDS, f"group {role!r} vars", bad)
        ghosts = group.get("hosts") or {}
        if not isinstance(ghosts, dict):
            bad(f"group {role!r}", "hosts", "must be a mapping of hostname: vars")
            ghosts = {}
        if role == "server" and not ghosts:
            bad("group 'server'", "hosts", "empty: at least one server is needed")
        for name, hvars in ghosts.items():
            where = f"host {name!r}"
            hvars = hvars if hvars is not None else {}
            if not isinstance(name, str) or not HOSTNAME_RE.match(name):
                bad(where, None, "hostname must be lowercase letters, digits and '-' (RFC 1123)")
                continue
            if not isinstance(hvars, dict):
                bad(where, None, "host vars must be a mapping")
                continue
            if name in seen_names:
                bad(where, None, f"duplicate hostname (also in group {seen_names[name]!r})")
                continue
            seen_names[name] = role
            before = len(problems)
            _check_fields(hvars, HOST_FIELDS, where, bad)
            if len(problems) > before:
                continue
            merged = {**base, **{k: v for k, v in gvars.items()}, **hvars}
            address = merged.get("ansible_host", name)
            if address in seen_addr:
                bad(where, "ansible_host", f"duplicate address {address} (also on {seen_addr[address]!r})")
                continue
            seen_addr[address] = name
            hosts.append(Host(
                name=name, role=role, address=address, user=merged["ansible_user"],
                port=merged["ansible_port"], key_file=merged.get("ansible_ssh_private_key_file"),
                vars=merged,
            ))
    if problems:
        raise InventoryError(problems)
    return Inventory(path=Path(path), hosts=tuple(hosts), vars={**DEFAULTS, **cvars})


def _check_fields(values: dict, allowed: dict, where: str, bad: Callable) -> None:
    for key, value in values.items():
        check = allowed.get(key)
        if check is None:
            hint = _did_you_mean(str(key), allowed)
            bad(where, str(key), "unknown key" + (f" (did you mean {hint!r}?)" if hint else ""))
            continue
        msg = check(value)
        if msg:
            bad(where, key, msg)


def _did_you_mean(key: str, allowed: dict) -> str | None:
    import difflib

    close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.75)
    return close[0] if close else None


# -- writing -----------------------------------------------------------------
def render_inventory(servers: dict[str, dict], agents: dict[str, dict], cluster_vars: dict) -> str:
    """Inventory YAML text for the given hosts (name -> host vars) and cluster vars."""
    children: dict[str, Any] = {"server": {"hosts": servers}}
    if agents:
        children["agent"] = {"hosts": agents}
    data = {"k3s_cluster": {"children": children, "vars": cluster_vars}}
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def edit_hosts(path: Path, add: tuple[str, str, dict] | None = None, remove: str | None = None) -> str:
    """Add ``(name, role, vars)`` and/or remove a host, keeping everything else; returns new text.

    The result is validated before it is returned, so a bad edit never reaches disk.
    """
    data = parse_yaml(path.read_text(), str(path))
    children = data["k3s_cluster"].setdefault("children", {})
    if remove:
        for role in ROLES:
            hosts = (children.get(role) or {}).get("hosts") or {}
            hosts.pop(remove, None)
    if add:
        name, role, hvars = add
        group = children.setdefault(role, {}) or {}
        children[role] = group
        group.setdefault("hosts", {})
        if group["hosts"] is None:
            group["hosts"] = {}
        group["hosts"][name] = hvars
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
    parse_inventory(text, str(path))
    return text
