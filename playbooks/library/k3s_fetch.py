#!/usr/bin/python3
"""Install a k3s binary from a release URL or mirror, checked against the release's sha256 file.

On the node, in one call: fetch ``sums_url`` (the release's ``sha256sum-<arch>.txt``), find the
sha256 of ``name`` in it, download ``url`` into a temporary file next to ``dest`` while hashing
it, refuse it (and leave ``dest`` alone) unless the hash matches, then install it root:root 0755
by rename and run ``dest --version``, which must name ``version`` when given. Check mode fetches
the checksums only. http(s) URLs only. Run as a plain script through
``action_plugins/k3s_fetch.py`` (``raw_main``: no AnsiballZ, no ansible import on the node): one
Python start instead of three Ansible modules (checksums, download, version), each of which
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
short_description: Download k3s checked against the release sha256 file, install it, report its version
options:
  url: {type: str, required: true, description: the binary's URL}
  name: {type: str, required: true, description: the binary's name in the checksum file (k3s, k3s-arm64, ...)}
  sums_url: {type: str, required: true, description: the release's sha256sum-<arch>.txt}
  dest: {type: path, required: true}
  version: {type: str, description: the version the new binary must report (k3s --version)}
  timeout: {type: int, default: 60}
"""


def sha256_listed(sums: str, name: str) -> str | None:
    """The sha256 a ``sha256sum`` file lists for ``name`` (``<hex>  <name>``), or None.

    The node has no edgeclu package: this is ``edgeclu.k3s.sha256_for`` (the air-gap path's, on the
    controller) once more; tests/unit/test_k3s_fetch.py holds the two to the same answers.
    """
    for line in sums.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == name and re.fullmatch(r"[0-9a-f]{64}", parts[0]):
            return parts[0]
    return None


def _get(url: str, timeout: int):
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ValueError("not an http(s) URL")
    request = urllib.request.Request(url, headers={"User-Agent": "edgeclu"})  # noqa: S310 - http(s), checked
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - http(s) only, checked above


def fetch(url: str, name: str, sums_url: str, dest: str, version: str | None = None, timeout: int = 60,
          check_mode: bool = False) -> dict:
    sums_file = sums_url.rsplit("/", 1)[-1]
    try:
        with _get(sums_url, timeout) as r:
            sums = r.read().decode("utf-8", "replace")
    except (OSError, ValueError) as e:
        return {"failed": True, "msg": f"cannot download {sums_url}: {e}"}
    expected = sha256_listed(sums, name)
    if not expected:
        return {"failed": True, "msg": f"{sums_url} lists no sha256 for {name}; refusing to install k3s"}
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
            return {"failed": True, "msg": f"k3s from {url} does not match {sums_file} (expected sha256 "
                                           f"{expected}, got {digest.hexdigest()}); refusing to install it"}
        os.chown(tmp, 0, 0)
        os.chmod(tmp, 0o755)  # noqa: S103 - an executable in /usr/local/bin, as k3s's installer
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    proc = subprocess.run([dest, "--version"], capture_output=True, text=True)
    output = proc.stdout if proc.returncode == 0 else ""
    if version and version not in output.split():
        return {"failed": True, "changed": True, "version_output": output,
                "msg": f"{dest} from {url} does not run as k3s {version}: `k3s --version` said "
                       f"{(output or proc.stderr).strip()[:200]!r}"}
    return {"changed": True, "sha256": expected, "version_output": output,
            "msg": f"installed {dest} from {url} (sha256 {expected})"}


def raw_main(args: dict) -> dict:
    """Run by the k3s_fetch action plugin: plain Python, no Ansible on the node."""
    return fetch(args["url"], args["name"], args["sums_url"], args["dest"], args.get("version"),
                 int(args.get("timeout") or 60), bool(args.get("check_mode")))


def main() -> None:
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(argument_spec={"url": {"type": "str", "required": True},
                                          "name": {"type": "str", "required": True},
                                          "sums_url": {"type": "str", "required": True},
                                          "dest": {"type": "path", "required": True},
                                          "version": {"type": "str"},
                                          "timeout": {"type": "int", "default": 60}},
                           supports_check_mode=True)
    result = fetch(**module.params, check_mode=module.check_mode)
    if result.get("failed"):
        module.fail_json(**{k: v for k, v in result.items() if k != "failed"})
    module.exit_json(**result)


if __name__ == "__main__":
    main()
