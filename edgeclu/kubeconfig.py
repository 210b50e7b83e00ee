"""The cluster's kubeconfig on the operator's machine.

k3s writes ``/etc/rancher/k3s/k3s.yaml`` on every server, pointing at ``https://127.0.0.1:6443``
with cluster, user and context all called ``default``. :func:`rewrite` points it at the API
endpoint and names everything ``cluster_name`` by editing the parsed document (never by string
replacement); :func:`merge` folds it into an existing kubeconfig, replacing only same-named
entries; :func:`install` writes the result to ``$KUBECONFIG`` (its first path) or
``~/.kube/config``, mode 0600, after a timestamped backup.

The kubeconfig holds the cluster-admin key: nothing here prints or logs its content.
"""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ansible_collections.edgeclu.cluster.plugins.module_utils.k3s import api_url
from edgeclu import userfile, yamlsafe
from edgeclu.errors import EdgecluError
from edgeclu.node import K3S_YAML

_SECTIONS = (("clusters", "cluster"), ("users", "user"), ("contexts", "context"))


class KubeconfigError(EdgecluError):
    """A kubeconfig edgeclu cannot use: bad input, exit 2 like a bad inventory."""

    exit_code = 2


def parse(text: str, source: str) -> dict[str, Any]:
    """A kubeconfig document; ``source`` names it in errors (never the content)."""
    try:
        doc = yamlsafe.load(text)
    except yamlsafe.YamlProblem as e:  # the problem's own words may quote a value: a key, say
        where = f" (line {e.line})" if e.line else ""
        raise KubeconfigError(f"{source}: not a valid kubeconfig: invalid YAML{where}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict) or doc.get("kind", "Config") != "Config":
        raise KubeconfigError(f"{source}: not a kubeconfig (expected kind: Config)")
    for key, _ in _SECTIONS:
        entries = doc.get(key)
        if entries is not None and not (isinstance(entries, list)
                                        and all(isinstance(e, dict) and "name" in e for e in entries)):
            raise KubeconfigError(f"{source}: not a valid kubeconfig: '{key}' must be a list of named entries")
    return doc


def rewrite(k3s_config: Mapping[str, Any], *, name: str, server: str, source: str = K3S_YAML) -> dict:
    """k3s's kubeconfig with the server URL set to ``server`` and cluster/user/context named ``name``."""
    doc = copy.deepcopy(dict(k3s_config))
    entries = {key: doc.get(key) or [] for key, _ in _SECTIONS}
    if any(len(v) != 1 for v in entries.values()):
        counts = ", ".join(f"{len(v)} {k}" for k, v in entries.items())
        raise EdgecluError(f"{source}: expected one cluster, user and context as k3s writes, found {counts}")
    (cluster,), (user,), (context,) = entries["clusters"], entries["users"], entries["contexts"]
    if not isinstance(cluster.get("cluster"), dict) or not isinstance(context.get("context"), dict):
        raise EdgecluError(f"{source}: cluster or context entry has no body")
    cluster["name"] = user["name"] = context["name"] = name
    cluster["cluster"]["server"] = server
    context["context"]["cluster"] = name
    context["context"]["user"] = name
    doc["current-context"] = name
    return doc


def merge(existing: Mapping[str, Any] | None, new: Mapping[str, Any], *, make_current: bool = True) -> dict:
    """``existing`` with ``new``'s clusters, users and contexts added; same-named entries are
    replaced where they stand, everything else (other contexts, preferences, extensions) is kept.
    """
    out = copy.deepcopy(dict(existing or {}))
    out.setdefault("apiVersion", new.get("apiVersion", "v1"))
    out.setdefault("kind", "Config")
    out.setdefault("preferences", new.get("preferences", {}))
    for key, _ in _SECTIONS:
        entries = list(out.get(key) or [])
        for entry in new.get(key) or []:
            names = [e.get("name") for e in entries]
            if entry["name"] in names:
                entries[names.index(entry["name"])] = copy.deepcopy(entry)
            else:
                entries.append(copy.deepcopy(entry))
        out[key] = entries
    if make_current or not out.get("current-context"):
        out["current-context"] = new.get("current-context")
    return out


def target_path(env: Mapping[str, str] | None = None, home: Path | None = None) -> Path:
    """The file kubectl would write: the first entry of ``$KUBECONFIG``, else ``~/.kube/config``."""
    env = os.environ if env is None else env
    for part in env.get("KUBECONFIG", "").split(os.pathsep):
        if part.strip():
            return Path(part).expanduser()
    return (home or Path.home()) / ".kube" / "config"


def dump(doc: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(doc), sort_keys=False, default_flow_style=False)


@dataclass(frozen=True)
class Installed:
    path: Path
    backup: Path | None  # None when there was nothing to back up, or nothing changed
    changed: bool
    context: str


def read(path: Path) -> dict[str, Any] | None:
    """The kubeconfig at ``path`` (through a symlink), or None when there is none; one line when it is
    not UTF-8 or not a kubeconfig."""
    if not path.exists():
        return None
    try:
        data = path.read_bytes()
    except OSError as e:
        raise KubeconfigError(f"{path}: cannot read the kubeconfig: {e.strerror}") from None
    try:
        text = yamlsafe.decode(data)
    except yamlsafe.YamlProblem as e:
        raise KubeconfigError(f"{path}: not a valid kubeconfig: {e.message} (line {e.line})") from None
    return parse(text, str(path))


def install(new: Mapping[str, Any], *, path: Path | None = None, now: float | None = None) -> Installed:
    """Merge ``new`` (from :func:`rewrite`) into the kubeconfig at ``path`` (default:
    :func:`target_path`). Unchanged content is not rewritten; otherwise the old file is copied to
    ``<file>.bak-YYYYmmdd-HHMMSS`` (0600) and the new one replaces it atomically, mode 0600. A
    symlink stays a symlink: its target is what gets replaced.
    """
    path = path or target_path()
    existing = read(path)
    merged = merge(existing, new)
    context = merged["current-context"]
    if existing is not None and merged == existing:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
            return Installed(path, None, True, context)
        return Installed(path, None, False, context)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    backup = userfile.backup(path, mode=0o600, now=now) if existing is not None else None
    userfile.replace(path, dump(merged), mode=0o600)
    return Installed(path, backup, True, context)


def fetch(remote, *, local_dir: Path | None = None) -> dict[str, Any]:
    """Read k3s.yaml from a server over the transport (as root) and parse it."""
    with tempfile.TemporaryDirectory(dir=local_dir) as tmp:
        dst = Path(tmp) / "k3s.yaml"
        remote.get(K3S_YAML, dst, sudo=True)
        try:
            return parse(dst.read_text(errors="replace"), f"{getattr(remote, 'name', 'server')}:{K3S_YAML}")
        except KubeconfigError as e:  # the server's file, not the user's input: exit 1
            raise EdgecluError(str(e)) from None


def path_for(inventory, env: Mapping[str, str] | None = None) -> Path:
    """Where ``up`` merges the kubeconfig: the inventory's ``kubeconfig``, else :func:`target_path`."""
    v = inventory.vars
    return Path(v["kubeconfig"]).expanduser() if v.get("kubeconfig") else target_path(env)


def check(inventory, path: Path | None = None) -> None:
    """Refuse, before anything changes, a kubeconfig that ``up`` could not merge into (exit 2)."""
    read(path or path_for(inventory))


def install_from_server(inventory, remote, *, path: Path | None = None,
                        env: Mapping[str, str] | None = None) -> Installed:
    """The whole step for ``edgeclu up``: fetch k3s.yaml from ``remote`` (a server), point it at the
    inventory's API endpoint, name it ``cluster_name``, and merge it into ``path``, else the inventory's
    ``kubeconfig`` path if set, else ``$KUBECONFIG`` / ``~/.kube/config``."""
    v = inventory.vars
    path = path or path_for(inventory, env)
    new = rewrite(fetch(remote), name=v["cluster_name"], server=api_url(inventory.api_endpoint, v["api_port"]),
                  source=f"{getattr(remote, 'name', 'server')}:{K3S_YAML}")
    return install(new, path=path)
