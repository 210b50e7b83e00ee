"""Private registries and pull-through mirrors: the inventory's ``registries`` setting, checked, and
``/etc/rancher/k3s/registries.yaml`` (k3s's format) built from it (pure but for reading the auth files).

k3s reads ``registries.yaml`` once at start, on every node (docs.k3s.io/installation/private-registry):
``mirrors: {<registry>: {endpoint: [url...], rewrite: {<regex>: <replacement>}}}`` and
``configs: {<registry host>: {auth: {username, password} | {auth} | {token}, tls: {ca_file, cert_file,
key_file, insecure_skip_verify}}}``; ``"*"`` is the wildcard entry. The inventory has the same shape,
except that credentials never stand in it: ``configs.<host>.auth_file`` names a file on the controller
(YAML: ``username``/``password``, or ``auth``, or ``token``), read only when the file is rendered.
``embedded_registry: true`` turns on k3s's embedded mirror (Spegel, docs.k3s.io/installation/registry-mirror):
the servers' ``embedded-registry: true`` and every registry listed under ``mirrors`` (an entry with no
endpoint is enough; without any, :data:`EMBEDDED_MIRRORS`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

REGISTRIES_FILE = "/etc/rancher/k3s/registries.yaml"
#: what the embedded mirror shares when the inventory lists no registry (the docs' example)
EMBEDDED_MIRRORS = ("docker.io", "registry.k8s.io")
#: what k3s's auth section takes, per the docs' table; a file gives one of these sets
AUTH_KEYS = (("username", "password"), ("auth",), ("token",))
TLS_KEYS = ("ca_file", "cert_file", "key_file", "insecure_skip_verify")
_REGISTRY_RE = re.compile(r"^(\*|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:\d{1,5})?|\[[0-9A-Fa-f:]+\](:\d{1,5})?)$")
# k3s (Go) compiles rewrites with RE2: no look-around, no back-references
_NOT_RE2 = re.compile(r"\(\?<?[=!]|\\[1-9]")


class RegistriesError(ValueError):
    """A bad ``registries`` value or auth file: the message names the field, never a secret."""


def _url_problem(url: Any) -> str | None:
    if not isinstance(url, str) or not re.match(r"^https?://[^/\s]+", url):
        return f"{url!r} is not an http(s):// URL"
    if "@" in url.split("/", 3)[2]:
        return "has credentials in the URL; put them in the registry's auth_file"
    if any(c.isspace() for c in url):
        return "has white space"
    return None


def _registry_problem(name: Any) -> str | None:
    if not isinstance(name, str) or not _REGISTRY_RE.match(name):
        return f"{name!r} is not a registry (host[:port], or \"*\")"
    return None


def _mirror(name: str, m: Any) -> str | None:
    where = f"mirrors.{name}"
    if m is None:
        return None
    if not isinstance(m, dict):
        return f"{where}: must be a mapping with endpoint and rewrite (or empty)"
    for key in m:
        if key not in ("endpoint", "rewrite"):
            return f"{where}: unknown key {key!r} (expected endpoint, rewrite)"
    endpoints = m.get("endpoint") or []
    if not isinstance(endpoints, list):
        return f"{where}.endpoint: must be a list of URLs"
    for i, url in enumerate(endpoints):
        if why := _url_problem(url):
            return f"{where}.endpoint[{i}]: {why}"
    rewrite = m.get("rewrite") or {}
    if not isinstance(rewrite, dict):
        return f"{where}.rewrite: must map a regular expression to its replacement"
    for pattern, repl in rewrite.items():
        if not isinstance(pattern, str) or not isinstance(repl, str) or not pattern:
            return f"{where}.rewrite: {pattern!r}: pattern and replacement must be strings"
        try:
            re.compile(pattern)
        except re.error as e:
            return f"{where}.rewrite: {pattern!r} is not a regular expression ({e})"
        if _NOT_RE2.search(pattern):
            return f"{where}.rewrite: {pattern!r} uses look-around or a back-reference, which k3s (RE2) lacks"
    return None


def _config(name: str, c: Any) -> str | None:
    where = f"configs.{name}"
    if c is None:
        return None
    if not isinstance(c, dict):
        return f"{where}: must be a mapping with auth_file and tls"
    for key in c:
        if key == "auth":
            return f"{where}.auth: credentials never go in the inventory; name a file on the controller in auth_file"
        if key not in ("auth_file", "tls"):
            return f"{where}: unknown key {key!r} (expected auth_file, tls)"
    if "auth_file" in c and (not isinstance(c["auth_file"], str) or not c["auth_file"].strip()):
        return f"{where}.auth_file: must be a path on the controller"
    tls = c.get("tls")
    if tls is None:
        return None
    if not isinstance(tls, dict):
        return f"{where}.tls: must be a mapping of {', '.join(TLS_KEYS)}"
    for key, value in tls.items():
        if key not in TLS_KEYS:
            return f"{where}.tls: unknown key {key!r} (expected {', '.join(TLS_KEYS)})"
        if key == "insecure_skip_verify":
            if not isinstance(value, bool):
                return f"{where}.tls.insecure_skip_verify: must be true or false"
        elif not isinstance(value, str) or not value.startswith("/") or ".." in value.split("/"):
            return f"{where}.tls.{key}: must be an absolute path on the nodes"
    if ("cert_file" in tls) != ("key_file" in tls):  # k3s refuses one without the other
        return f"{where}.tls: cert_file and key_file go together"
    return None


def problem(value: Any) -> str | None:
    """Why the inventory's ``registries`` value is not usable (one line naming the sub-field), or None."""
    if not isinstance(value, dict):
        return "must be a mapping with mirrors and configs"
    for key in value:
        if key not in ("mirrors", "configs"):
            return f"unknown key {key!r} (expected mirrors, configs)"
    for section, check in (("mirrors", _mirror), ("configs", _config)):
        entries = value.get(section)
        entries = {} if entries is None else entries
        if not isinstance(entries, dict):
            return f"{section}: must be a mapping of registry names"
        for name, entry in entries.items():
            if why := _registry_problem(name):
                return f"{section}: {why}"
            if why := check(name, entry):
                return why
    return None


def auth_files(value: Mapping[str, Any] | None) -> dict[str, str]:
    """``{registry: auth_file}`` (as written: ``~`` not expanded) for the configs that have one."""
    configs = (value or {}).get("configs") or {}
    return {name: c["auth_file"] for name, c in configs.items() if isinstance(c, dict) and c.get("auth_file")}


def parse_auth(text: str, where: str) -> dict[str, str]:
    """The auth section from an auth file's text. Errors name ``where`` and the field, never a value."""
    import yaml  # here: the Ansible filter imports this module where PyYAML may not be importable yet

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise RegistriesError(f"{where}: not YAML (expected username and password, or auth, or token)") from None
    if not isinstance(data, dict):
        raise RegistriesError(f"{where}: must be a mapping: username and password, or auth, or token")
    keys = tuple(sorted(data))
    for key in data:
        if key not in {k for ks in AUTH_KEYS for k in ks}:
            raise RegistriesError(f"{where}: unknown key {key!r} (expected username and password, or auth, or token)")
    if keys not in {tuple(sorted(ks)) for ks in AUTH_KEYS}:
        raise RegistriesError(f"{where}: give username and password, or auth, or token (it has {', '.join(keys)})")
    for key, v in data.items():
        if not isinstance(v, str) or not v.strip() or "\n" in v.strip():
            raise RegistriesError(f"{where}: field {key!r} must be a non-empty one-line string")
    return {k: v.strip() for k, v in data.items()}


def _read(path: str) -> str:
    p = Path(path).expanduser()
    try:
        return p.read_text()
    except OSError as e:
        raise RegistriesError(f"{p}: cannot read the registry auth file: {e.strerror}") from None
    except UnicodeDecodeError:
        raise RegistriesError(f"{p}: the registry auth file is not UTF-8") from None


def _auth(name: str, path: str, read: Callable[[str], str]) -> dict[str, str]:
    return parse_auth(read(path), f"{Path(path).expanduser()} (registries.configs.{name}.auth_file)")


def render(value: Mapping[str, Any] | None, embedded: bool = False,
           read: Callable[[str], str] = _read) -> dict[str, Any] | None:
    """``registries.yaml`` as data (None: edgeclu does not manage the file). Auth files are read with
    ``read`` (path as written). With ``embedded``, every mirrored registry is listed under ``mirrors``."""
    if value is None and not embedded:
        return None
    value = value or {}
    if why := problem(value):
        raise RegistriesError(f"registries: {why}")
    mirrors: dict[str, Any] = {}
    for name, m in (value.get("mirrors") or {}).items():
        entry = {}
        if (m or {}).get("endpoint"):
            entry["endpoint"] = list(m["endpoint"])
        if (m or {}).get("rewrite"):
            entry["rewrite"] = dict(m["rewrite"])
        mirrors[name] = entry or None
    if embedded and not mirrors:
        mirrors = dict.fromkeys(EMBEDDED_MIRRORS)
    configs: dict[str, Any] = {}
    for name, c in (value.get("configs") or {}).items():
        entry = {}
        if (c or {}).get("auth_file"):
            entry["auth"] = _auth(name, c["auth_file"], read)
        if (c or {}).get("tls"):
            entry["tls"] = dict(c["tls"])
        configs[name] = entry or None
    out: dict[str, Any] = {}
    if mirrors:
        out["mirrors"] = mirrors
    if configs:
        out["configs"] = configs
    return out


def render_text(value: Mapping[str, Any] | None, embedded: bool = False,
                read: Callable[[str], str] = _read) -> str | None:
    """:func:`render` as the file's text (sorted keys: the same input gives the same bytes), or None."""
    import yaml

    data = render(value, embedded, read)
    if data is None:
        return None
    return "# Managed by edgeclu (inventory: registries)\n" + yaml.safe_dump(data, sort_keys=True,
                                                                               default_flow_style=False)
