#!/usr/bin/python3
"""Install a k3s binary from a release URL or mirror, checked against the sha256 the controller gives.

On the node, in one call: download ``url`` into a temporary file next to ``dest`` while hashing
it, refuse it (and leave ``dest`` alone) unless the hash is ``sha256``, then install it
root:root 0755 by rename and run ``dest --version``, which must name ``version`` when given.
The expected hash comes from the controller (``k3s_sha256`` in the inventory, or the release's
checksum file read by the controller over https or from its air-gap directory: see
``module_utils/k3s.py's checksum_source``), never from the place the binary comes from: a mirror that
serves another binary can serve a matching checksum file as well. Check mode downloads
nothing. http(s) URLs only. Run as a plain script through ``plugins/action/k3s_fetch.py``,
which validates the arguments against ``ARGUMENT_SPEC`` first (``raw_main``: no AnsiballZ, no
ansible import on the node): one Python start instead of several Ansible modules, each of which
costs a Python start with Ansible's imports, which on a Raspberry Pi is seconds.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
import urllib.parse
import urllib.request

DOCUMENTATION = r"""
module: k3s_fetch
short_description: Download k3s, check it against the controller's sha256, install it, report its version
description: [In one call on the node; check mode downloads nothing.]
options:
  url: {type: str, required: true, description: the binary's URL}
  sha256: {type: str, required: true, description: the sha256 the binary must have (from the controller)}
  sha256_from: {type: str, description: where the controller got it (for messages)}
  dest: {type: str, required: true, description: the path on the node}
  version: {type: str, description: the version the new binary must report (k3s --version; omit for another file)}
  mode: {type: str, default: "0755", description: the installed file's mode (an images archive is 0644)}
  what: {type: str, default: k3s, description: what the file is (for messages)}
  timeout: {type: int, default: 60, description: seconds the download may stall}
"""

#: the one spec of the arguments (node_script.validate checks a task's against it on the controller, so a
#: node path is a str there, not a controller-expanded path; DOCUMENTATION says the same,
#: tests/unit/test_node_scripts.py holds them together)
ARGUMENT_SPEC = {"url": {"type": "str", "required": True},
                 "sha256": {"type": "str", "required": True},
                 "sha256_from": {"type": "str"},
                 "dest": {"type": "str", "required": True},
                 "version": {"type": "str"},
                 "mode": {"type": "str", "default": "0755"},
                 "what": {"type": "str", "default": "k3s"},
                 "timeout": {"type": "int", "default": 60}}


def _get(url: str, timeout: int):
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ValueError("not an http(s) URL")
    request = urllib.request.Request(url, headers={"User-Agent": "edgeclu"})  # noqa: S310 - http(s), checked
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - http(s) only, checked above


def fetch(url: str, sha256: str, dest: str, version: str | None = None, timeout: int = 60,
          check_mode: bool = False, sha256_from: str | None = None, mode: str = "0755", what: str = "k3s") -> dict:
    expected = (sha256 or "").strip()
    if not re.fullmatch(r"[0-9a-f]{64}", expected):
        return {"failed": True, "msg": f"no valid sha256 to check {url} against; refusing to install {what}"}
    if check_mode:
        return {"changed": True, "sha256": expected, "msg": f"would download {url} (sha256 {expected})"}
    directory = os.path.dirname(dest) or "."
    os.makedirs(directory, mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".k3s-")
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as f:
            try:
                with _get(url, timeout) as r:
                    while chunk := r.read(1 << 20):
                        digest.update(chunk)
                        f.write(chunk)
            except (OSError, ValueError) as e:
                return {"failed": True, "msg": f"cannot download {url}: {e}"}
            f.flush()
            os.fsync(f.fileno())
        if digest.hexdigest() != expected:
            return {"failed": True, "msg": f"{what} from {url} does not match the sha256 from "
                                           f"{sha256_from or 'the controller'} (expected {expected}, got "
                                           f"{digest.hexdigest()}); refusing to install it"}
        os.chown(tmp, 0, 0)
        os.chmod(tmp, int(mode, 8))  # the binary: 0755 in /usr/local/bin, as k3s's installer
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    if not version:
        return {"changed": True, "sha256": expected, "msg": f"installed {dest} from {url} (sha256 {expected})"}
    proc = subprocess.run([dest, "--version"], capture_output=True, text=True)
    output = proc.stdout if proc.returncode == 0 else ""
    if version and version not in output.split():
        return {"failed": True, "changed": True, "version_output": output,
                "msg": f"{dest} from {url} does not run as k3s {version}: `k3s --version` said "
                       f"{(output or proc.stderr).strip()[:200]!r}"}
    return {"changed": True, "sha256": expected, "version_output": output,
            "msg": f"installed {dest} from {url} (sha256 {expected})"}


def raw_main(args: dict) -> dict:
    """Run by the k3s_fetch action plugin (arguments validated there): plain Python, no Ansible on the node."""
    return fetch(args["url"], args["sha256"], args["dest"], args.get("version"), int(args.get("timeout") or 60),
                 bool(args.get("check_mode")), args.get("sha256_from"), str(args.get("mode") or "0755"),
                 args.get("what") or "k3s")
