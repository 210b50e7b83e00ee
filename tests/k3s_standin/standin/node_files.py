"""What k3s reads from the node when it starts, besides config.yaml: image archives and registries.yaml.

* Image archives in ``<data-dir>/agent/images``: k3s imports each supported file when it starts and logs
  ``Imported images from <path> in <duration>`` (k3s pkg/agent/containerd/containerd.go, preloadImages);
  the stand-in has no containerd, so it logs the same line per archive and records them in
  ``<data-dir>/agent/standin-images.json`` (name, size, sha256) for the tests.
* ``/etc/rancher/k3s/registries.yaml``: k3s loads it with Go's yaml.v2 into rancher/wharfie's
  ``Registry`` (``mirrors: {name: {endpoint: [str], rewrite: {str: str}}}``, ``configs: {name: {auth:
  {username, password, auth, token, identity_token}, tls: {ca_file, cert_file, key_file,
  insecure_skip_verify: bool}}}``), logging ``Using registry config file at <path>``
  (wharfie pkg/registries/registries.go). A value of the wrong type fails k3s; unknown keys are
  ignored. The stand-in checks the same and records which registries it saw (never a credential) in
  ``<data-dir>/agent/standin-registries.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time

import yaml

from .util import DATA_DIR, fatal, log, read_file, write_file

REGISTRIES = "/etc/rancher/k3s/registries.yaml"
# k3s's isFileSupported (pkg/agent/containerd): the archive kinds it imports
IMAGE_SUFFIXES = (".tar", ".tar.lz4", ".tar.bz2", ".tbz", ".tar.gz", ".tgz", ".tar.zst", ".tzst", ".txt")
AUTH_KEYS = ("username", "password", "auth", "token", "identity_token")
TLS_KEYS = {"ca_file": str, "cert_file": str, "key_file": str, "insecure_skip_verify": bool}


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def import_images(data_dir: str | None) -> list[dict]:
    images = os.path.join(data_dir or DATA_DIR, "agent", "images")
    found = []
    try:
        names = sorted(os.listdir(images))
    except FileNotFoundError:
        names = []
    for name in names:
        path = os.path.join(images, name)
        if not os.path.isfile(path) or not name.lower().endswith(IMAGE_SUFFIXES):
            continue
        start = time.monotonic()
        entry = {"name": name, "size": os.path.getsize(path), "sha256": _sha256(path)}
        found.append(entry)
        log("info", f"Imported images from {path} in {(time.monotonic() - start) * 1000:.3f}ms")
    write_file(os.path.join(data_dir or DATA_DIR, "agent", "standin-images.json"), json.dumps(found) + "\n", 0o600)
    return found


def _typed(value, kind, where: str):
    if value is not None and not isinstance(value, kind):
        fatal(f"failed to load registries.yaml {REGISTRIES}: {where}: cannot unmarshal "
              f"{type(value).__name__} into {kind.__name__}")
    return value


def parse_registries(text: str) -> dict:
    """What k3s would take from registries.yaml: ``{mirrors: {name: {endpoints, rewrites}}, configs:
    {name: {auth: [keys], tls: [keys]}}}`` (the keys of auth, never their values)."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        fatal(f"failed to load registries.yaml {REGISTRIES}: {str(e).splitlines()[0]}")
    _typed(data, dict, "top level")
    seen: dict = {"mirrors": {}, "configs": {}}
    for name, mirror in (_typed(data.get("mirrors"), dict, "mirrors") or {}).items():
        mirror = _typed(mirror, dict, f"mirrors.{name}") or {}
        endpoints = _typed(mirror.get("endpoint"), list, f"mirrors.{name}.endpoint") or []
        for url in endpoints:
            _typed(url, str, f"mirrors.{name}.endpoint")
        rewrites = _typed(mirror.get("rewrite"), dict, f"mirrors.{name}.rewrite") or {}
        for k, v in rewrites.items():
            _typed(k, str, f"mirrors.{name}.rewrite")
            _typed(v, str, f"mirrors.{name}.rewrite")
        seen["mirrors"][str(name)] = {"endpoints": endpoints, "rewrites": sorted(rewrites)}
    for name, config in (_typed(data.get("configs"), dict, "configs") or {}).items():
        config = _typed(config, dict, f"configs.{name}") or {}
        auth = _typed(config.get("auth"), dict, f"configs.{name}.auth") or {}
        for key in AUTH_KEYS:
            _typed(auth.get(key), str, f"configs.{name}.auth.{key}")
        tls = _typed(config.get("tls"), dict, f"configs.{name}.tls") or {}
        for key, kind in TLS_KEYS.items():
            _typed(tls.get(key), kind, f"configs.{name}.tls.{key}")
        if bool(tls.get("cert_file")) != bool(tls.get("key_file")):
            fatal(f"configs.{name}.tls: cert file and key file must be given together")
        seen["configs"][str(name)] = {"auth": sorted(k for k in AUTH_KEYS if auth.get(k)),
                                      "tls": sorted(k for k in TLS_KEYS if k in tls)}
    return seen


def load_registries(data_dir: str | None) -> dict | None:
    text = read_file(REGISTRIES)
    report = os.path.join(data_dir or DATA_DIR, "agent", "standin-registries.json")
    if text is None:
        write_file(report, "null\n", 0o600)
        return None
    log("info", f"Using registry config file at {REGISTRIES}")
    seen = parse_registries(text)
    log("info", f"registries.yaml: mirrors {', '.join(seen['mirrors']) or '(none)'}; "
                f"configs {', '.join(seen['configs']) or '(none)'}")
    write_file(report, json.dumps(seen, sort_keys=True) + "\n", 0o600)
    return seen


def on_start(config: dict) -> None:
    """What k3s does with these files as it starts (a server runs an agent too)."""
    load_registries(config.get("data-dir"))
    import_images(config.get("data-dir"))
