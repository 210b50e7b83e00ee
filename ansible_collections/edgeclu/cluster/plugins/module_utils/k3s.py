"""Pure builders for installing k3s: config.yaml data, release file names and URLs, versions.

These functions are the single source of truth for what the playbooks write; the
Ansible filter plugin ``plugins/filter/edgeclu_k3s.py`` exposes them to the
roles. Nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from ansible_collections.edgeclu.cluster.plugins.module_utils.paths import (
    AGENT_TOKEN,
    DATA_DIR,
    IMAGES_DIR,
    SERVER_TOKEN,
    SYSTEMD_DIR,
    unit_file,
)

GITHUB_RELEASES = "https://github.com/k3s-io/k3s/releases/download"
# cgroup parameters a Raspberry Pi kernel needs for k3s (memory cgroup is off by default)
PI_CGROUP_PARAMS = ("cgroup_memory=1", "cgroup_enable=memory")

# uname -m (or Ansible's ansible_architecture) -> k3s release arch
_MACHINE_ARCH = {
    "x86_64": "amd64", "amd64": "amd64",
    "aarch64": "arm64", "arm64": "arm64",
    "armv7l": "arm", "armv7": "arm", "armhf": "arm", "arm": "arm",
}
# k3s release arch -> (binary asset, checksum asset), as named on the GitHub release page
_RELEASE_FILES = {
    "amd64": ("k3s", "sha256sum-amd64.txt"),
    "arm64": ("k3s-arm64", "sha256sum-arm64.txt"),
    "arm": ("k3s-armhf", "sha256sum-arm.txt"),
}
# The release's images archive (what a node without internet needs to start pause, CoreDNS, Traefik,
# local-path...): k3s's scripts/package-airgap exports k3s-airgap-images-<arch>.tar and compresses it to
# .tar.zst and .tar.gz, and the release workflow appends their sha256sum lines to sha256sum-<arch>.txt.
# Preferred first: .tar.zst (the smallest, the one the k3s docs use). k3s imports every archive in
# IMAGES_DIR when it starts (pkg/agent/containerd: preloadImages).
# IMAGES_DIR: module_utils/paths.py
IMAGES_EXTS = (".tar.zst", ".tar.gz", ".tar")
IMAGES_PREFIX = "k3s-airgap-images-"
_IMAGES_PATH_RE = re.compile(rf"^{re.escape(IMAGES_DIR)}/{IMAGES_PREFIX}[A-Za-z0-9._+-]+$")
# a k3s release (v1.31.4+k3s1, v1.32.0-rc1+k3s1): the one pattern outside the node agent (use fullmatch)
VERSION_RE = re.compile(r"v1\.(\d+)\.(\d+)(?:-rc(\d+))?\+k3s(\d+)")
_VERSION_OUT_RE = re.compile(r"^k3s version (\S+)", re.MULTILINE)


class UnsupportedArch(ValueError):
    """No k3s release exists for this machine (e.g. armv6l: Pi Zero / Pi 1)."""


# -- release files -------------------------------------------------------------
def k3s_arch(machine: str) -> str:
    """``uname -m`` -> ``amd64`` / ``arm64`` / ``arm``."""
    try:
        return _MACHINE_ARCH[machine]
    except KeyError:
        raise UnsupportedArch(f"no k3s release for architecture {machine!r} "
                              f"(supported: x86_64, aarch64, armv7l)") from None


def release_files(machine: str) -> dict[str, str]:
    """The binary and checksum file names on a k3s release for this machine."""
    arch = k3s_arch(machine)
    binary, checksums = _RELEASE_FILES[arch]
    return {"arch": arch, "binary": binary, "checksums": checksums}


def images_names(arch: str) -> list[str]:
    """The release's images archive names for a k3s release arch, preferred first."""
    return [f"{IMAGES_PREFIX}{arch}{ext}" for ext in IMAGES_EXTS]


def is_images_name(name: Any) -> bool:
    """Is ``name`` an images archive name of some k3s release arch (``k3s-airgap-images-arm64.tar.zst``)?"""
    return isinstance(name, str) and any(name in images_names(a) for a in _RELEASE_FILES)


def images_plan(machine: str, *, wanted: bool | None = None, airgap_files: Iterable[str] | None = None,
                on_node: Mapping[str, str] | None = None, where: str = "") -> dict[str, Any]:
    """Which images archive a node gets, and what is in its way (pure).

    ``wanted``: the inventory's ``k3s_airgap_images`` (None: only from an air-gap directory that has
    one). ``airgap_files``: the names in the air-gap directory's version directory (None: no air-gap
    directory; then the node downloads the ``.tar.zst``). ``on_node``: ``{path: sha256}`` of the
    ``k3s-airgap-images-*`` files in :data:`IMAGES_DIR` on the node. The archive is the node's arch's
    only: any other images archive there (another arch, another format) is removed, so k3s finds
    exactly one. ``have`` is the node's sha256 of it (the caller compares it with the controller's).
    What the node reported is only trusted as far as it names an images archive in :data:`IMAGES_DIR`.
    """
    arch = k3s_arch(machine)
    names = images_names(arch)
    if wanted is False:
        file = None
    elif airgap_files is not None:
        present = set(airgap_files)
        file = next((n for n in names if n in present), None)
        if file is None and wanted:
            raise ValueError(f"k3s_airgap_images is true but {where or 'the air-gap directory'} has no "
                             f"{' / '.join(names)}")
    else:
        file = names[0] if wanted else None
    on_node = {p: d for p, d in (on_node or {}).items() if isinstance(p, str) and _IMAGES_PATH_RE.match(p)}
    dest = f"{IMAGES_DIR}/{file}" if file else None
    return {"arch": arch, "file": file, "dest": dest, "have": on_node.get(dest) if dest else None,
            "remove": sorted(p for p in on_node if p != dest) if file else []}


def release_url(version: str, filename: str, mirror: str | None = None) -> str:
    """``<mirror or GitHub>/<version>/<file>``, with ``+`` in the version URL-encoded."""
    base = (mirror or GITHUB_RELEASES).rstrip("/")
    return f"{base}/{quote(version, safe='')}/{filename}"


def sha256_for(checksums: str, filename: str) -> str | None:
    """The sha256 listed for ``filename`` in a ``sha256sum`` file (``<hex>  <name>``), or None."""
    for line in checksums.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == filename and is_sha256(parts[0]):
            return parts[0]
    return None


def is_sha256(value: Any) -> bool:
    return isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value) is not None


def _https(url: str) -> bool:
    return url.lower().startswith("https://")


def mirror_problem(mirror: str | None, pins: Mapping[str, Any] | None, version: str) -> str | None:
    """Why a plain-HTTP ``k3s_mirror`` cannot be used for ``version`` (nothing pins the binary),
    or None (pure). Over http whoever is on the path serves the binary and its checksum file
    alike, and the binary runs as root on every node: only a hash the controller already
    holds authenticates it."""
    if not mirror or _https(mirror) or (pins or {}).get(version):
        return None
    return (f"{mirror} is plain HTTP and nothing pins the k3s binary: anyone on the network path can serve "
            "another binary with a matching checksum file, and it runs as root on every node. Pin it with "
            f"k3s_sha256: {{{version}: {{amd64: <sha256>, arm64: ...}}}} (from the release's "
            "sha256sum-<arch>.txt, fetched over https), or use an https mirror, or k3s_airgap_dir")


def checksum_source(version: str, arch: str, *, pins: Mapping[str, Any] | None = None, mirror: str | None = None,
                    airgap_dir: str | None = None, filename: str | None = None) -> dict[str, str]:
    """Where the controller gets the sha256 that decides whether a node installs a release file (pure):
    the binary, or ``filename`` (the images archive) of the node's ``arch``.

    In order: ``k3s_sha256[version][arch]`` for the binary, ``k3s_sha256[version][filename]`` for
    another file (``{"sha256": ...}``); the release's checksum file in the air-gap directory on the
    controller (``{"path": ...}``); the checksum file fetched by the controller over https from the
    mirror or GitHub (``{"url": ...}``). A plain-HTTP mirror with no pin is refused
    (:func:`mirror_problem`). The node only downloads bytes.
    """
    files = _RELEASE_FILES[arch]
    key = filename or arch
    pinned = ((pins or {}).get(version) or {}).get(key)
    if pinned:
        return {"sha256": pinned, "what": f"k3s_sha256 for {version} {key}"}
    if airgap_dir:
        path = f"{airgap_dir.rstrip('/')}/{version}/{files[1]}"
        return {"path": path, "what": path}
    if (pins or {}).get(version) and mirror and not _https(mirror):
        raise ValueError(f"k3s_sha256 pins {version} for {', '.join(sorted(pins[version]))} but not for {key}; "
                         f"add its sha256 (from the release's {files[1]})")
    problem = mirror_problem(mirror, pins, version)
    if problem:
        raise ValueError(problem)
    url = release_url(version, files[1], mirror)
    return {"url": url, "what": url}


# -- versions --------------------------------------------------------------------
def parse_version_output(text: str | None) -> str | None:
    """The version in ``k3s --version`` output (``k3s version v1.31.4+k3s1 (abc)``), or None (also when
    what follows ``k3s version`` is not a k3s version: the output is the node's word)."""
    m = _VERSION_OUT_RE.search(text or "")
    return m.group(1) if m and VERSION_RE.fullmatch(m.group(1)) else None


def version_key(version: str) -> tuple[int, int, int, int, int]:
    """Sort key: minor, patch, release (an -rc sorts before the release), rc number, k3s revision."""
    m = VERSION_RE.fullmatch(version)
    if not m:
        raise ValueError(f"{version!r} is not a k3s version like v1.31.4+k3s1")
    minor, patch, rc, rev = m.groups()
    return int(minor), int(patch), 0 if rc else 1, int(rc or 0), int(rev)


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` is older than, equal to or newer than ``b``."""
    ka, kb = version_key(a), version_key(b)
    return (ka > kb) - (ka < kb)


def is_newer(installed: str | None, wanted: str) -> bool:
    """Is the ``installed`` version (None or unparseable: no) newer than ``wanted``?"""
    try:
        return compare_versions(installed or "", wanted) > 0
    except ValueError:
        return False


def kubernetes_minor(version: str) -> str:
    """``v1.31.4+k3s1`` -> ``1.31``."""
    return f"1.{version_key(version)[0]}"


# -- config.yaml -----------------------------------------------------------------
def api_url(host: str, port: int = 6443) -> str:
    """``https://host:port`` (IPv6 literals bracketed)."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"https://{host}:{port}"


def disabled_addons(ingress: str = "traefik", loadbalancer: str = "servicelb",
                    storage: str = "local-path") -> list[str]:
    """k3s packaged components to ``disable:`` for the chosen add-ons."""
    off = []
    if ingress != "traefik":
        off.append("traefik")
    if loadbalancer != "servicelb":
        off.append("servicelb")
    if storage != "local-path":
        off.append("local-storage")
    return off


# config.yaml keys edgeclu sets itself: the tokens (also as files), the join URL (also as k3s's short flag
# ``-s``; ``-t`` is the token's), cluster-init. k3s reads every config key as the flag of that name,
# aliases included (``t: x`` is ``-t x``), and ``key+`` appends to it. See ``k3s server --help``.
RESERVED_CONFIG_KEYS = frozenset({"token", "token-file", "t", "agent-token", "agent-token-file", "server", "s",
                                  "server-url", "cluster-init"})


def reserved_config_key(key: Any) -> bool:
    """True for a ``k3s_extra_config`` key that would set what edgeclu manages (pure)."""
    return isinstance(key, str) and key.rstrip("+") in RESERVED_CONFIG_KEYS


def _unique(items: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for item in items:
        if item and item not in seen:
            seen.append(item)
    return seen


def node_config(role: str, *, token: str | None = None, agent_token: str | None = None, node_name: str,
                node_ip: str | None = None, node_iface: str | None = None, server_url: str | None = None,
                cluster_init: bool = False, tls_san: Iterable[str] = (), labels: Iterable[str] = (),
                taints: Iterable[str] = (), disable: Iterable[str] = (), local_storage_path: str | None = None,
                embedded_registry: bool = False, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The content of ``/etc/rancher/k3s/config.yaml`` for one node, as data.

    ``role`` is ``server`` or ``agent``. A server with ``cluster_init`` starts a new
    embedded-etcd cluster; a server with ``server_url`` joins one; a server with neither
    is a single server (SQLite). An agent needs ``server_url``. ``embedded_registry``: k3s's embedded
    registry mirror, a server option that turns it on for the whole cluster. ``extra`` (the inventory's
    ``k3s_extra_config``) is merged last but may not set the tokens or the join URL.

    Two tokens, as k3s has them (docs.k3s.io/cli/token): a server gets the server ``token``
    (it joins servers and agents, and encrypts the datastore's bootstrap data) and the
    ``agent-token``; an agent gets the agent token only, as its ``token``, so the config of a
    stolen agent cannot join a server.
    """
    if role not in ("server", "agent"):
        raise ValueError(f"role must be server or agent, not {role!r}")
    if role == "server" and not token:
        raise ValueError("a server needs the server token")
    if role == "agent" and token:
        raise ValueError("an agent gets the agent token only, never the server token")
    if role == "agent" and not agent_token:
        raise ValueError("an agent needs the agent token")
    if cluster_init and server_url:
        raise ValueError("a server either starts the cluster (cluster_init) or joins one (server_url)")
    if role == "agent" and not server_url:
        raise ValueError("an agent needs server_url")
    if role == "agent" and (cluster_init or tls_san or disable or local_storage_path or embedded_registry):
        raise ValueError("cluster_init, tls_san, disable, local_storage_path and embedded_registry are server "
                         "settings")
    extra = dict(extra or {})
    reserved = sorted(k for k in extra if reserved_config_key(k))
    if reserved:
        raise ValueError(f"k3s_extra_config may not set {', '.join(reserved)} (edgeclu manages them)")

    cfg: dict[str, Any] = {"token": token if role == "server" else agent_token, "node-name": node_name}
    if role == "server" and agent_token:
        cfg["agent-token"] = agent_token
    if server_url:
        cfg["server"] = server_url
    if cluster_init:
        cfg["cluster-init"] = True
    if node_ip:
        cfg["node-ip"] = node_ip
    if node_iface:
        cfg["flannel-iface"] = node_iface
    if labels := _unique(labels):
        cfg["node-label"] = labels
    if taints := _unique(taints):
        cfg["node-taint"] = taints
    if role == "server":
        cfg["write-kubeconfig-mode"] = "0600"
        if sans := _unique(tls_san):
            cfg["tls-san"] = sans
        if off := _unique(disable):
            cfg["disable"] = off
        if local_storage_path:
            cfg["default-local-storage-path"] = local_storage_path
        if embedded_registry:
            cfg["embedded-registry"] = True
    cfg.update(extra)
    return cfg


# -- systemd and journal ---------------------------------------------------------
_LOG_MSG_RE = re.compile(r'level=(fatal|error)\s+msg="((?:[^"\\]|\\.)*)"')


def journal_error(journal: str) -> str | None:
    """The last fatal/error message in k3s log lines (``level=fatal msg="..."``), or None."""
    found = _LOG_MSG_RE.findall(journal or "")
    if not found:
        return None
    fatal = [msg for level, msg in found if level == "fatal"]
    return (fatal or [msg for _, msg in found])[-1].replace('\\"', '"')


# -- Raspberry Pi ----------------------------------------------------------------
def cmdline_with_cgroups(cmdline: str) -> str:
    """``cmdline.txt`` with the memory cgroup enabled; unchanged (but for the final newline) if it is.

    The file is one line of space-separated kernel parameters, applied in order after the
    ones the firmware's device tree puts first; current Pi kernels (6.12) get
    ``cgroup_disable=memory`` from there, and ``cgroup_enable=memory`` later on the line
    turns the controller back on (raspberrypi/linux#6980, #6439). So a
    ``cgroup_disable=memory`` in the file itself is dropped (it would win over ours), and
    ``cgroup_memory`` with another value is replaced; everything else keeps its order.
    ``cgroup_memory=1`` is what k3s's own error message asks for: older kernels need it,
    current ones ignore it.
    """
    words = [w for w in cmdline.split() if w != "cgroup_disable=memory"]
    for param in PI_CGROUP_PARAMS:
        key = param.split("=", 1)[0]
        if param in words:
            continue
        if key == "cgroup_memory" and any(w.startswith("cgroup_memory=") for w in words):
            words = [param if w.startswith("cgroup_memory=") else w for w in words]
        else:
            words.append(param)
    return " ".join(words) + "\n"


# -- deciding what to change ------------------------------------------------------
def node_paths(service: str) -> dict[str, str]:
    """``k3s_service | k3s_paths``: where k3s keeps what the k3s roles and their scripts name on a node
    running ``service`` (module_utils/paths.py); the install, config and images directories are role inputs."""
    return {"unit": unit_file(service), "systemd_dir": SYSTEMD_DIR, "data_dir": DATA_DIR,
            "server_token": SERVER_TOKEN, "agent_token": AGENT_TOKEN}


def stale_files(wanted: Iterable[Mapping[str, Any]], state: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Paths whose content (sha1), mode or owner on the node differ from ``wanted``.

    ``wanted``: ``{path, content | sha1 | directory: true, mode, owner='root', group='root'}``
    (``sha1`` for a file whose bytes the controller has elsewhere); ``state``: what the
    ``k3s_node_state`` module reported per path.
    """
    import hashlib

    stale = []
    for f in wanted:
        have = state.get(f["path"]) or {}
        want = {"mode": f["mode"], "owner": f.get("owner", "root"), "group": f.get("group", "root")}
        if f.get("directory"):
            want["isdir"] = True
        else:
            want["sha1"] = (hashlib.sha1(f["content"].encode()).hexdigest()  # noqa: S324 - as Ansible
                            if "content" in f else f["sha1"])
        if not have.get("exists") or any(have.get(k) != v for k, v in want.items()):
            stale.append(f["path"])
    return stale


def install_plan(state: Mapping[str, Any], *, config_file: Mapping[str, Any], files: Iterable[Mapping[str, Any]],
                 version: str, service: str, secret_files: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """What the k3s_install role does on a node, from one ``k3s_node_state`` look at it.

    ``config_file``: config.yaml as ``{path, mode, content}``; ``files``: the unit and scripts,
    the same way; ``secret_files``: other files k3s reads at start that hold secrets
    (registries.yaml), written with config.yaml. Each content is read once (in a playbook each read
    renders a template). A new config, registries.yaml, unit or binary (another version than
    ``version``) means a restart. A newer installed k3s is never replaced (``downgrade``: the role
    refuses the node).
    """
    config_file = dict(config_file)
    files = [dict(f) for f in files]
    secrets = [dict(config_file)] + [dict(f) for f in secret_files]
    stale_secrets = stale_files(secrets, state["files"])
    stale_paths = stale_files(files, state["files"])
    config_stale = bool(stale_secrets)
    unit_changed = unit_file(service) in stale_paths
    installed = parse_version_output(state.get("k3s_version_output")) or ""
    downgrade = is_newer(installed, version)  # never installed over: k3s cannot be downgraded
    install = installed != version and not downgrade
    restart = config_stale or unit_changed or install
    service = state["services"][service]
    start_now = restart or service.get("active") != "active"
    return {
        "release_files": release_files(state["machine"]),
        "installed_version": installed,
        "install": install,
        "downgrade": downgrade,
        "config_file": config_file,
        # what write.yml gives edgeclu_files for them (the contents go as no_log secrets)
        "secret_writes": [{"path": f["path"], "mode": f["mode"]} for f in secrets if f["path"] in stale_secrets],
        "secret_contents": {f["path"]: f["content"] for f in secrets if f["path"] in stale_secrets},
        "files": files,
        "config_stale": config_stale,
        "stale_paths": stale_paths,
        "write": config_stale or bool(stale_paths),
        "unit_changed": unit_changed,
        "restart": restart,
        "start_now": start_now,
        "start_needed": start_now or service.get("enabled") != "enabled",
    }


def nodes_not_ready(nodes: Mapping[str, Any], names: Iterable[str]) -> dict[str, str]:
    """``{name: reason}`` for each of ``names`` that is not Ready in ``kubectl get nodes -o json``
    (parsed; read by module_utils/kubenodes.py)."""
    from ansible_collections.edgeclu.cluster.plugins.module_utils import kubenodes

    try:
        found = kubenodes.from_doc(nodes)
    except ValueError:
        found = {}
    return kubenodes.not_ready(found, names)
