"""Load, validate and write edgeclu's Ansible-compatible YAML inventory.

Shape (the same file works with ``ansible-playbook -i``)::

    k3s_cluster:
      children:
        server: {hosts: {pi-1: {ansible_host: 192.168.1.10}}}
        agent:  {hosts: {pi-2: {ansible_host: 192.168.1.11}}}
      vars: {k3s_version: v1.31.4+k3s1, ...}

Every problem found is reported as one line naming the file, the host (or group)
and the field; all problems are collected before raising :class:`InventoryError`.

The keys a role reads, their types and defaults come from the roles' own ``meta/argument_specs.yml``
(:mod:`edgeclu.rolespecs`); this module adds Ansible's connection variables, edgeclu's own settings, which
role inputs a host may set (:data:`HOST_INPUTS`) and the checks beyond a type (:data:`REFINED`).
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ansible_collections.edgeclu.cluster.plugins.module_utils.k3s import VERSION_RE, reserved_config_key
from edgeclu import rolespecs, yamlsafe
from edgeclu.errors import InventoryError

ROLES = ("server", "agent")
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


_IPV4_RE = re.compile(r"^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$")


def _address(v: Any) -> str | None:
    if not isinstance(v, str):
        return "must be an IP address or DNS name (a string)"
    if _IPV4_RE.match(v):  # the common case, without ipaddress's cost (20,000 hosts)
        return None
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
    if isinstance(v, str) and VERSION_RE.fullmatch(v):
        return None
    return f"{v!r} is not a k3s version like v1.31.4+k3s1"


def _str_list(v: Any) -> str | None:
    ok = isinstance(v, list) and all(isinstance(x, str) and x for x in v)
    return None if ok else "must be a list of strings"


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


def _sha256_pins(v: Any) -> str | None:
    """``k3s_sha256``: ``{<k3s version>: {amd64|arm64|arm: <sha256 of the binary>,
    k3s-airgap-images-<arch>.tar.zst|.tar.gz|.tar: <sha256 of that images archive>}}``."""
    from ansible_collections.edgeclu.cluster.plugins.module_utils.k3s import is_images_name, is_sha256

    if not isinstance(v, dict) or not v:
        return "must map a k3s version to {amd64|arm64|arm: sha256}"
    for version, arches in v.items():
        if _version(version):
            return f"key {version!r} is not a k3s version like v1.31.4+k3s1"
        if not isinstance(arches, dict) or not arches:
            return f"{version}: must map amd64, arm64 or arm to a sha256"
        for arch, digest in arches.items():
            if arch not in ("amd64", "arm64", "arm") and not is_images_name(arch):
                return (f"{version}: {arch!r} is not a k3s release arch (amd64, arm64, arm) nor an images "
                        "archive (k3s-airgap-images-<arch>.tar.zst, .tar.gz, .tar)")
            if not is_sha256(digest):
                return f"{version} {arch}: {digest!r} is not a sha256 (64 lowercase hex digits)"
    return None


def _registries(v: Any) -> str | None:
    from ansible_collections.edgeclu.cluster.plugins.module_utils.registries import problem

    return problem(v)


def _percent(v: Any) -> str | None:
    ok = isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 100
    return None if ok else "must be a whole percentage from 1 to 100"


_USER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")
# Linux: at most 15 bytes (IFNAMSIZ 16), no '/', ':' or space; kept to the characters interface names use
_IFACE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$")
# Kubernetes label syntax (apimachinery validation: IsQualifiedName, IsValidLabelValue)
_K8S_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_K8S_PREFIX_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# What a kubelet may set on its own Node in the kubernetes.io / k8s.io namespaces (kubelet --node-labels);
# k3s hands node-label to the kubelet, so anything else there makes k3s fail to start.
_KUBELET_LABEL_PREFIXES = ("kubelet.kubernetes.io", "node.kubernetes.io")
_KUBELET_LABELS = frozenset({
    "beta.kubernetes.io/arch", "beta.kubernetes.io/instance-type", "beta.kubernetes.io/os",
    "failure-domain.beta.kubernetes.io/region", "failure-domain.beta.kubernetes.io/zone", "kubernetes.io/arch",
    "kubernetes.io/hostname", "kubernetes.io/os", "node.kubernetes.io/instance-type",
    "topology.kubernetes.io/region", "topology.kubernetes.io/zone"})
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_K3S_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9-]*\+?$")
_KUBECONFIG_0600 = ("0600", "600", 0o600, 600)  # YAML 0600 is the int 384; 600 reaches k3s as octal "600"
# ssh options that decide which host keys are trusted: edgeclu's own (see playbook.ssh_args) must stand
_SSH_TRUST_RE = re.compile(r"(?i)(StrictHostKeyChecking|UserKnownHostsFile|GlobalKnownHostsFile|KnownHostsCommand)")
# Ansible variables that replace or switch off edgeclu's ssh options (issue 9.4): never from an inventory
SSH_POLICY_VARS = frozenset({"ansible_ssh_args", "ansible_ssh_extra_args", "ansible_host_key_checking",
                             "ansible_ssh_host_key_checking"})


def _user(v: Any) -> str | None:
    if isinstance(v, str) and _USER_RE.match(v):
        return None
    return f"{v!r} is not a user name (up to 32 letters, digits, '_', '.', '-')"


def _iface(v: Any) -> str | None:
    if isinstance(v, str) and _IFACE_RE.match(v):
        return None
    return f"{v!r} is not a network interface name (up to 15 letters, digits, '_', '.', '-')"


def _label_key(key: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if not _K8S_NAME_RE.match(name) or len(name) > 63:
        return f"key {key!r}: the name must be at most 63 letters, digits, '-', '_', '.', alphanumeric at both ends"
    if "/" in key and (not _K8S_PREFIX_RE.match(prefix) or len(prefix) > 253):
        return f"key {key!r}: the prefix must be a lowercase DNS name"
    return None


def _label_value(value: str) -> str | None:
    if value and (len(value) > 63 or not _K8S_NAME_RE.match(value)):
        return f"value {value!r}: at most 63 letters, digits, '-', '_', '.', alphanumeric at both ends"
    return None


@functools.lru_cache(maxsize=4096)  # hosts share their labels: each distinct one is checked once
def _label_problem(item: str) -> str | None:
    key, eq, value = item.partition("=")
    why = ("needs key=value" if not eq else _label_key(key) or _label_value(value))
    prefix = key.rpartition("/")[0]
    if not why and (prefix.endswith(("kubernetes.io", "k8s.io"))) and key not in _KUBELET_LABELS \
            and not any(prefix == p or prefix.endswith("." + p) for p in _KUBELET_LABEL_PREFIXES):
        why = (f"key {key!r} is in the kubernetes.io namespace, which a node may not set on itself "
               "(kubelet --node-labels); set it with kubectl label")
    return f"{item!r} is not a valid node label: {why}" if why else None


@functools.lru_cache(maxsize=4096)
def _taint_problem(item: str) -> str | None:
    kv, colon, effect = item.rpartition(":")
    key, _, value = kv.partition("=")
    if not colon or effect not in _TAINT_EFFECTS:
        why = f"the effect must be one of {', '.join(_TAINT_EFFECTS)} (key=value:Effect)"
    else:
        why = _label_key(key) or _label_value(value)
    return f"{item!r} is not a valid node taint: {why}" if why else None


def _labels(v: Any) -> str | None:
    if _str_list(v):
        return "must be a list of key=value labels"
    return next(filter(None, map(_label_problem, v)), None)


def _taints(v: Any) -> str | None:
    if _str_list(v):
        return "must be a list of key=value:Effect taints"
    return next(filter(None, map(_taint_problem, v)), None)


def _local_dir(v: Any) -> str | None:
    if _str(v):
        return _str(v)
    if ".." in v.split("/"):
        return f"{v!r} has a '..' component; give the directory's own path"
    return None


def _extra_config(v: Any) -> str | None:
    if not isinstance(v, dict):
        return "must be a mapping of k3s config.yaml keys"
    for key, value in v.items():
        if not isinstance(key, str) or not _K3S_KEY_RE.match(key):
            return f"key {key!r} is not a k3s flag name (lowercase letters, digits, '-')"
        if reserved_config_key(key):
            return f"key {key!r} is set by edgeclu (the tokens, the join URL and cluster-init are edgeclu's)"
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(x, str | int | float | bool) for x in values):
            return f"key {key!r}: a value must be a string, number, true/false, or a list of them"
        if key.rstrip("+") == "write-kubeconfig-mode" and value not in _KUBECONFIG_0600:
            return f"key {key!r}: the admin kubeconfig stays 0600 (it holds the cluster-admin key)"
    return None


def _ssh_common_args(v: Any) -> str | None:
    if _str(v):
        return _str(v)
    m = _SSH_TRUST_RE.search(v)
    if m:
        return (f"may not set {m.group(1)}: edgeclu checks host keys against edgeclu_known_hosts itself "
                "(see --accept-new)")
    return None


def _int(v: Any) -> str | None:
    return None if isinstance(v, int) and not isinstance(v, bool) else "must be a whole number"


def _float(v: Any) -> str | None:
    return None if isinstance(v, int | float) and not isinstance(v, bool) else "must be a number"


def _list(v: Any) -> str | None:
    return None if isinstance(v, list) else "must be a list"


def _dict(v: Any) -> str | None:
    return None if isinstance(v, dict) else "must be a mapping"


_OF_TYPE: dict[str, Callable[[Any], str | None]] = {
    "str": _str, "path": _str, "int": _int, "bool": _bool, "float": _float, "list": _list, "dict": _dict}


def _any(v: Any) -> str | None:
    return None


def spec_check(spec: dict) -> Callable[[Any], str | None]:
    """The check of a role input that its argument spec gives: its choices, else its type (a string: a
    non-empty one; a list of strings: non-empty strings; type raw: any value)."""
    if spec.get("choices"):
        return _choice(*spec["choices"])
    kind = spec.get("type", "str")
    if kind == "list" and spec.get("elements") in ("str", "path"):
        return _str_list
    return _OF_TYPE.get(kind, _any)


# Ansible's own connection variables a host (or group) may set; no role reads them as an input.
CONNECTION_FIELDS: dict[str, Callable[[Any], str | None]] = {
    "ansible_host": _address,
    "ansible_user": _user,
    "ansible_port": _port,
    "ansible_ssh_private_key_file": _str,
    "ansible_become": _bool,
    "ansible_python_interpreter": _str,
    "ansible_ssh_common_args": _ssh_common_args,
}
# Settings only edgeclu's own commands read (no role does, so no role's spec declares them), and their
# defaults, with those of the connection variables edgeclu gives its own.
EDGECLU_FIELDS: dict[str, Callable[[Any], str | None]] = {
    "cluster_name": _str,
    "upgrade_batch_percent": _percent,
    "edgeclu_known_hosts": _str,
    "kubeconfig": _str,
}
EDGECLU_DEFAULTS: dict[str, Any] = {"ansible_user": "root", "ansible_port": 22, "cluster_name": "edgeclu",
                                    "upgrade_batch_percent": 25, "edgeclu_known_hosts": "~/.ssh/known_hosts"}
# Role inputs that must be more than their spec's type says (every other role input is checked by its spec:
# spec_check). Keys, types and defaults of role inputs come from the roles' meta/argument_specs.yml only.
REFINED: dict[str, Callable[[Any], str | None]] = {
    "k3s_version": _version,
    "api_endpoint": _address,
    "api_port": _port,
    "k3s_sha256": _sha256_pins,
    "k3s_airgap_dir": _local_dir,
    "nfs_server": _address,
    "metallb_pool": _pool,
    "agent_port": _port,
    "node_ip": _ip,
    "node_iface": _iface,
    "node_labels": _labels,
    "node_taints": _taints,
    "k3s_extra_config": _extra_config,
    "registries": _registries,
}
# Role inputs a host (or the server/agent group) may set; every other role input is the cluster's.
HOST_INPUTS = ("node_ip", "node_iface", "node_labels", "node_taints", "k3s_extra_config",
               "k3s_token",  # the server token for one host (migrations, tests); token_file is preferred
               "k3s_agent_token")  # the same for the agent token; k3s_agent_token_file is preferred


def _role_fields() -> dict[str, Callable[[Any], str | None]]:
    return {name: REFINED.get(name) or spec_check(spec) for name, spec in rolespecs.options().items()}


ROLE_FIELDS = _role_fields()
# Fields a host (or the server/agent group) may set.
HOST_FIELDS = {**CONNECTION_FIELDS, **{k: ROLE_FIELDS[k] for k in HOST_INPUTS}}
# Fields only the cluster (k3s_cluster.vars) may set.
CLUSTER_FIELDS = {**EDGECLU_FIELDS, **{k: v for k, v in ROLE_FIELDS.items() if k not in HOST_INPUTS}}
ALL_FIELDS = {**HOST_FIELDS, **CLUSTER_FIELDS}
DEFAULTS: dict[str, Any] = {**EDGECLU_DEFAULTS, **rolespecs.defaults()}
# what every host starts from (cluster settings stay in Inventory.vars)
_HOST_DEFAULTS = {k: v for k, v in DEFAULTS.items() if k in HOST_FIELDS}


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


# -- YAML: bounded, one line per problem ---------------------------------------
def describe(path: tuple) -> str:
    """Where a key path points in an inventory, as messages name it ("host 'a1': field 'x'")."""
    ints = [i for i, k in enumerate(path) if not isinstance(k, str)]
    p = list(path[: ints[0]] if ints else path)  # a list item is named by the field that holds the list
    if p[:1] == ["all"]:
        if p[1:2] == ["vars"]:
            return "group 'all' vars" + (f": field {p[2]!r}" if len(p) > 2 else "")
        return "group 'all'"
    if p[:1] != ["k3s_cluster"]:
        return "top level" + (f": field {p[0]!r}" if p else "")
    if p[1:2] == ["vars"]:
        return "cluster vars" + (f": field {p[2]!r}" if len(p) > 2 else "")
    if p[1:2] == ["children"] and len(p) > 2:
        group = p[2]
        if p[3:4] == ["vars"]:
            return f"group {group!r} vars" + (f": field {p[4]!r}" if len(p) > 4 else "")
        if p[3:4] == ["hosts"] and len(p) > 4:
            return f"host {p[4]!r}" + (f": field {p[5]!r}" if len(p) > 5 else "")
        return f"group {group!r}"
    return "k3s_cluster" + (f": field {p[1]!r}" if len(p) > 1 else "")


def read_text(path: Path, what: str = "inventory", base: tuple = ()) -> str:
    """A user's file as text: one line naming it (and the host and field) when it cannot be read or
    is not UTF-8. ``base``: as for :func:`parse_yaml`."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InventoryError([f"{path}: cannot read {what}: {e.strerror}"]) from None
    try:
        return yamlsafe.decode(data)
    except yamlsafe.YamlProblem as e:
        inside = base + e.path
        where = f"{describe(inside)}: " if inside else ""
        raise InventoryError([f"{path}:{e.line}: {where}{e.message}"]) from None


def parse_yaml(text: str, path: str, base: tuple = ()) -> Any:
    """The YAML document in ``text``; :class:`InventoryError` naming file, line, host/group and field.
    ``base`` is the key path the document sits at (a group_vars file's is its group's vars)."""
    try:
        return yamlsafe.load(text)
    except yamlsafe.YamlProblem as e:
        where = f"{path}:{e.line}" if e.line else path
        inside = base + e.path
        prefix = f"{describe(inside)}: " if inside else ""
        raise InventoryError([f"{where}: {prefix}{e.message}"]) from None


# -- group_vars/ and host_vars/ beside the inventory, as Ansible finds them ---------
_VARS_EXTS = ("", ".yml", ".yaml", ".json")


def vars_files(directory: Path, name: str) -> list[Path]:
    """The files Ansible's host_group_vars plugin reads for ``name`` in ``directory`` (group_vars or
    host_vars): ``name``, ``name.yml``, ``.yaml``, ``.json``, or every such file under a ``name/`` directory
    (sorted, hidden files skipped); later files win."""
    found: list[Path] = []
    for ext in _VARS_EXTS:
        p = directory / f"{name}{ext}"
        if p.is_dir():
            found += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in _VARS_EXTS
                            and not any(part.startswith(".") for part in f.relative_to(p).parts))
        elif p.is_file():
            found.append(p)
    return found


class _Beside:
    """Reads the group_vars/host_vars files for one inventory, once each, collecting problems."""

    def __init__(self, root: Path | None):
        self.root = root
        self.listing: dict[str, set[str]] = {}

    def __call__(self, kind: str, name: str, base: tuple, problems: list[str]) -> list[tuple[str, dict]]:
        if self.root is None:
            return []
        if kind not in self.listing:
            d = self.root / f"{kind}_vars"
            self.listing[kind] = {p.split(".")[0] for p in os.listdir(d)} if d.is_dir() else set()
        if name not in self.listing[kind]:
            return []
        d = self.root / f"{kind}_vars"
        out = []
        for f in vars_files(d, name):
            try:
                data = parse_yaml(read_text(f, f"{kind}_vars file", base), str(f), base)
            except InventoryError as e:
                problems.extend(e.problems)
                continue
            if data is None:
                continue
            if not isinstance(data, dict):
                problems.append(f"{f}: {describe(base)}: must be a mapping of variables")
                continue
            out.append((str(f), data))
        return out


# -- loading -----------------------------------------------------------------
def load_inventory(path: str | Path, text: str | None = None) -> Inventory:
    """The inventory at ``path`` (``text``: its would-be content) with the group_vars/ and host_vars/
    beside it, validated."""
    path = Path(path)
    if text is None:
        text = read_text(path)
    return parse_inventory(text, str(path), beside=path.parent)


def parse_inventory(text: str, path: str = "<inventory>", beside: Path | None = None) -> Inventory:
    """Validate inventory ``text`` (named ``path`` in messages); ``beside``: the directory whose
    group_vars/ and host_vars/ Ansible would read with it (None: none)."""
    data = parse_yaml(text, path)
    problems: list[str] = []
    extra = _Beside(beside)

    def bad(where: str, fld: str | None, msg: str, file: str = path) -> None:
        problems.append(f"{file}: {where}" + (f": field '{fld}'" if fld else "") + f": {msg}")

    def layer(values: Any, allowed: dict, where: str, file: str = path) -> dict:
        """Checked variables of one group/host (an empty dict when they are not a mapping)."""
        if values is None:
            return {}
        if not isinstance(values, dict):
            bad(where, None, "must be a mapping of variables", file)
            return {}
        _check_fields(values, allowed, where, lambda w, f, m: bad(w, f, m, file))
        return values

    if not isinstance(data, dict) or not isinstance(data.get("k3s_cluster"), dict):
        raise InventoryError([f"{path}: top level: field 'k3s_cluster': missing; "
                              "expected k3s_cluster: {children: {server: ..., agent: ...}, vars: ...}"])
    for key in data:
        if key not in ("k3s_cluster", "all"):
            bad(f"group {key!r}", None, "unknown group (an edgeclu inventory has k3s_cluster with children "
                "server and agent, and optionally all: vars)")
    top = data.get("all")
    all_vars: dict = {}
    if isinstance(top, dict):
        for key in top:
            if key != "vars":
                bad("group 'all'", str(key), "only vars: here (hosts go under k3s_cluster: children: server/agent)")
        all_vars = layer(top.get("vars"), ALL_FIELDS, "group 'all' vars")
    elif top is not None:
        bad("group 'all'", None, "must be a mapping with vars:")
    cluster = data["k3s_cluster"]
    for key in cluster:
        if key not in ("children", "vars", "hosts"):
            bad("k3s_cluster", str(key), "unknown key (expected children, vars)")
    if cluster.get("hosts"):
        bad("k3s_cluster", "hosts", "put hosts under children: server or agent")
    cluster_vars = cluster.get("vars")
    if cluster_vars is not None and not isinstance(cluster_vars, dict):
        bad("k3s_cluster", "vars", "must be a mapping")
        cluster_vars = None
    cluster_vars = layer(cluster_vars, ALL_FIELDS, "cluster vars")

    def files(kind: str, name: str, base: tuple, allowed: dict, where: str) -> dict:
        merged: dict = {}
        for file, values in extra(kind, name, base, problems):
            merged.update(layer(values, allowed, where, file))
        return merged

    gv_all = files("group", "all", ("all", "vars"), ALL_FIELDS, "group 'all' vars")
    gv_cluster = files("group", "k3s_cluster", ("k3s_cluster", "vars"), ALL_FIELDS, "cluster vars")
    # Ansible's precedence: the inventory file's group vars (parent groups first), then group_vars/all,
    # group_vars/<group> (parents first), the inventory's host vars, host_vars/<host>
    cvars = {**all_vars, **cluster_vars, **gv_all, **gv_cluster}
    if "k3s_version" not in cvars:
        bad("cluster vars", "k3s_version", "missing (pin a version like v1.31.4+k3s1)")
    if cvars.get("token_file") and cvars.get("token_env"):
        bad("cluster vars", "token_env", "set token_file or token_env, not both")
    if cvars.get("k3s_agent_token_file") and cvars.get("k3s_agent_token_env"):
        bad("cluster vars", "k3s_agent_token_env", "set k3s_agent_token_file or k3s_agent_token_env, not both")
    pins = cvars.get("k3s_sha256")
    if isinstance(cvars.get("k3s_mirror"), str) and isinstance(cvars.get("k3s_version"), str) \
            and (pins is None or not _sha256_pins(pins)):  # (bad pins have their own message)
        from ansible_collections.edgeclu.cluster.plugins.module_utils.k3s import mirror_problem

        if problem := mirror_problem(cvars["k3s_mirror"], pins, cvars["k3s_version"]):
            bad("cluster vars", "k3s_mirror", problem)
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

    def host_part(values: dict) -> dict:
        return {k: v for k, v in values.items() if k in HOST_FIELDS}

    hosts: list[Host] = []
    seen_names: dict[str, str] = {}
    seen_addr: dict[str, str] = {}
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
        gvars = group.get("vars")
        if gvars is not None and not isinstance(gvars, dict):
            bad(f"group {role!r}", "vars", "must be a mapping")
            gvars = None
        gvars = layer(gvars, HOST_FIELDS, f"group {role!r} vars")
        gv_role = files("group", role, ("k3s_cluster", "children", role, "vars"), HOST_FIELDS,
                        f"group {role!r} vars")
        base = {**_HOST_DEFAULTS, **host_part(all_vars), **host_part(cluster_vars), **gvars,
                **host_part(gv_all), **host_part(gv_cluster), **gv_role}
        layers_ok = not problems  # a bad group/cluster value never reaches a host (it may be unhashable)
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
            hv = files("host", name, ("k3s_cluster", "children", role, "hosts", name), HOST_FIELDS, where)
            if len(problems) > before or not layers_ok:
                continue
            merged = {**base, **hvars, **hv}
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
            if key in SSH_POLICY_VARS:
                bad(where, key, "would replace edgeclu's ssh options and host-key checks, which an inventory "
                    "may not change (ansible_ssh_common_args takes other options, e.g. ProxyJump)")
                continue
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


def check_registries(path: Any, cluster_vars: dict[str, Any]) -> None:
    """Before a run: every auth file of the inventory's ``registries`` is readable and well-formed, else
    :class:`InventoryError` (exit 2), one line naming the file, the registry and the field."""
    from ansible_collections.edgeclu.cluster.plugins.module_utils import registries

    try:
        registries.render(cluster_vars.get("registries"))  # reads and checks every auth file
    except registries.RegistriesError as e:
        raise InventoryError([f"{path}: cluster vars: field 'registries': {e}"]) from None
