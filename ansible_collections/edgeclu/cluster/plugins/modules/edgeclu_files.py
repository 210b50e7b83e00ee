#!/usr/bin/python3
"""Ansible module: write several files and directories on a node in one call.

The roles first read the node (``k3s_node_state``) and pass only what differs, so on a
converged node this module is not called at all; when it is, one call replaces a
``copy`` per file (each a round trip and a Python start on the node: on a Raspberry Pi
that is most of a first run). Each entry: ``path``, ``mode``, ``owner``/``group``
(root), and ``directory: true``, ``content`` (text) or ``content_b64`` (bytes). Files
are written atomically (a temporary file in the same directory, then rename); a
missing parent directory is created 0755. ``secret_contents`` (``{path: text}``, under
``no_log``) gives the content of entries that hold secrets: it never appears in output
or logs.

The playbooks run it through ``plugins/action/edgeclu_files.py`` as a plain script
(``raw_main``: no AnsiballZ, no ansible import on the node); it also works as a module.
"""

from __future__ import annotations

import base64
import grp
import os
import pwd
import tempfile

DOCUMENTATION = r"""
module: edgeclu_files
short_description: Write files and directories (content, mode, owner) in one call; only what differs
options:
  files: {type: list, elements: dict, default: []}
  secret_contents: {type: dict, default: {}, description: "{path: content} for entries holding secrets; never logged"}
"""


def wanted_bytes(entry: dict, secrets: dict) -> bytes | None:
    if entry.get("directory"):
        return None
    if entry["path"] in secrets:
        return str(secrets[entry["path"]]).encode()
    if entry.get("content_b64") is not None:
        return base64.b64decode(entry["content_b64"])
    return str(entry.get("content") or "").encode()


def ids(entry: dict) -> tuple[int, int]:
    return pwd.getpwnam(entry.get("owner") or "root").pw_uid, grp.getgrnam(entry.get("group") or "root").gr_gid


def wanted_mode(entry: dict, data: bytes | None) -> int:
    return int(str(entry.get("mode") or ("0755" if data is None else "0644")), 8)


def differs(entry: dict, data: bytes | None) -> bool:
    path, mode = entry["path"], wanted_mode(entry, data)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return True
    uid, gid = ids(entry)
    if (st.st_mode & 0o7777, st.st_uid, st.st_gid) != (mode, uid, gid):
        return True
    if data is None:
        return not os.path.isdir(path)
    if not os.path.isfile(path) or st.st_size != len(data):
        return True
    with open(path, "rb") as f:
        return f.read() != data


def apply(entry: dict, data: bytes | None) -> None:
    path, mode = entry["path"], wanted_mode(entry, data)
    uid, gid = ids(entry)
    parent = os.path.dirname(path)
    if parent and not os.path.isdir(parent):
        os.makedirs(parent, mode=0o755)
    if data is None:
        if not os.path.isdir(path):
            os.mkdir(path, mode)
        os.chown(path, uid, gid)
        os.chmod(path, mode)
        return
    fd, tmp = tempfile.mkstemp(dir=parent or ".", prefix=".edgeclu-")
    try:
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write(files: list, secrets: dict, check_mode: bool) -> dict:
    """Write what differs; ``{changed, paths, msg}``, or ``failed`` with the path that failed."""
    changed = []
    for entry in files:
        if not entry.get("path"):
            return {"failed": True, "msg": "every entry needs a path", "paths": changed}
        try:
            data = wanted_bytes(entry, secrets)
            if differs(entry, data):
                changed.append(entry["path"])
                if not check_mode:
                    apply(entry, data)
        except (OSError, KeyError, ValueError) as e:
            return {"failed": True, "msg": f"{entry['path']}: {e}", "paths": changed}
    verb = "would write" if check_mode else "wrote"
    return {"changed": bool(changed), "paths": changed, "msg": f"{verb} {', '.join(changed)}" if changed else ""}


def raw_main(args: dict) -> dict:
    """Run by the edgeclu_files action plugin: plain Python, no Ansible on the node."""
    return write(args.get("files") or [], args.get("secret_contents") or {}, bool(args.get("check_mode")))


def main() -> None:
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(
        argument_spec={"files": {"type": "list", "elements": "dict", "default": []},
                       "secret_contents": {"type": "dict", "default": {}, "no_log": True}},
        supports_check_mode=True,
    )
    result = write(module.params["files"], module.params["secret_contents"], module.check_mode)
    if result.get("failed"):
        module.fail_json(**{k: v for k, v in result.items() if k != "failed"})
    module.exit_json(**result)


if __name__ == "__main__":
    main()
