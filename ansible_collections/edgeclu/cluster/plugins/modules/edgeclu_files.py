#!/usr/bin/python3
"""Ansible module: write several files and directories on a node in one call.

It writes what it is given, and decides nothing: what differs is decided on the controller,
once, from the roles' one look at the node (``k3s_node_state``) by ``module_utils/k3s.py``'s
``stale_files``, which every role's planner calls. The plans need that answer before anything is
written (a restart of k3s when its config changed, a dry run's plan, the converged stamp's
request), so that check is the one kept; a second one here would only say again what the
controller already knew, at the price of reading every file on the node. So on a converged node
this module is not called at all; when it is, one call replaces a ``copy`` per file (each a round
trip and a Python start on the node: on a Raspberry Pi that is most of a first run).

Each entry: ``path``, ``mode``, ``owner``/``group`` (root), and ``directory: true``, ``content``
(text) or ``content_b64`` (bytes). Files are written atomically (a temporary file in the same
directory, then rename); a missing parent directory is created 0755. ``secret_contents``
(``{path: text}``, ``no_log``) gives the content of entries that hold secrets: it never appears
in output or logs. With ``--diff`` the result holds Ansible's ``diff`` (a list: per entry its
attributes before/after, and for a text file its content before/after); in a secret entry the
value of every key that looks like a credential (``token``, ``password``, ``auth``...) is masked
on the node, before the answer leaves it, while the other lines still diff (``mask_pair``).

The playbooks run it through ``plugins/action/edgeclu_files.py`` as a plain script (``raw_main``:
no AnsiballZ, no ansible import on the node); the action plugin validates the arguments against
``ARGUMENT_SPEC`` first (module_utils/node_script.py).
"""

from __future__ import annotations

import base64
import grp
import os
import pwd
import re
import stat
import tempfile

DOCUMENTATION = r"""
module: edgeclu_files
short_description: Write files and directories (content, mode, owner) in one call; what the controller found stale
description: [Writes every entry it is given, atomically; with --diff, shows what changes, secrets masked.]
options:
  files:
    type: list
    elements: dict
    default: []
    description: the files and directories to write
    suboptions:
      path: {type: str, required: true, description: the path on the node}
      mode: {type: str, description: "octal, as a string (default 0644 for a file, 0755 for a directory)"}
      owner: {type: str, default: root, description: the owner's name}
      group: {type: str, default: root, description: the group's name}
      directory: {type: bool, default: false, description: a directory, not a file}
      content: {type: str, description: the file's text}
      content_b64: {type: str, description: the file's bytes, base64}
  secret_contents: {type: dict, default: {}, description: "{path: content} for entries holding secrets; never logged"}
"""

#: the one spec of the arguments (node_script.validate checks a task's against it; DOCUMENTATION says
#: the same, tests/unit/test_node_scripts.py holds them together)
ARGUMENT_SPEC = {
    "files": {"type": "list", "elements": "dict", "default": [], "options": {
        "path": {"type": "str", "required": True},
        "mode": {"type": "str"},
        "owner": {"type": "str", "default": "root"},
        "group": {"type": "str", "default": "root"},
        "directory": {"type": "bool", "default": False},
        "content": {"type": "str"},
        "content_b64": {"type": "str"},
    }, "mutually_exclusive": [["directory", "content"], ["directory", "content_b64"], ["content", "content_b64"]]},
    "secret_contents": {"type": "dict", "default": {}, "no_log": True},
}

DIFF_MAX = 104448  # Ansible's default MAX_FILE_SIZE_FOR_DIFF: bigger files are not diffed
#: keys whose value is masked in the diff of a secret entry (k3s's token/agent-token/datastore-endpoint/
#: etcd-s3-*-key, registries.yaml's auth, agent.json's token)
SECRET_KEY = re.compile(r"token|pass|secret|auth|credential|key|endpoint|private", re.I)
_KEY_LINE = re.compile(r"""^(\s*(?:-\s+)?(["']?)([\w.-]+)\2\s*[:=])(.*)$""")
MASK = "<secret>"
MASK_CHANGED = "<secret, changed>"


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
    mode = str(entry.get("mode") or ("0755" if data is None else "0644"))
    if not re.fullmatch(r"0?[0-7]{3,4}", mode):
        raise ValueError(f"mode {mode!r} is not an octal mode as a string (quote it: '0644')")
    return int(mode, 8)


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


def _masked(text: str) -> tuple[list[str], list[tuple[str, str]]]:
    """``text``'s lines with the value of each secret-looking key (and the lines nested under it)
    replaced by MASK, and the ``(key line prefix, value)`` pairs masked (pure)."""
    lines, found = [], []
    within = None  # the indentation of a secret key whose nested lines are being masked
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip())
        if within is not None and (not line.strip() or indent > within):
            lines.append(" " * indent + MASK if line.strip() else line)
            found[-1] = (found[-1][0], found[-1][1] + "\n" + line)
            continue
        within = None
        m = _KEY_LINE.match(line)
        if m and SECRET_KEY.search(m.group(3)):
            found.append((m.group(1), m.group(4).strip()))
            lines.append(f"{m.group(1)} {MASK}")
            within = indent
        else:
            lines.append(line)
    return lines, found


def mask_pair(before: str, after: str) -> tuple[str, str]:
    """A secret file's content before and after, with secret values masked (pure): a masked value
    that changed reads MASK_CHANGED on the after side, so the diff shows the line; any other
    occurrence of a masked value is masked too."""
    (b_lines, b_found), (a_lines, a_found) = _masked(before), _masked(after)
    changed = {prefix for prefix, value in a_found if dict(b_found).get(prefix) != value}
    a_lines = [f"{line[:-len(MASK)]}{MASK_CHANGED}" if line.endswith(f" {MASK}") and line[:-len(MASK) - 1] in changed
               else line for line in a_lines]
    values = sorted({w for _, block in b_found + a_found for v in block.split() if len(w := v.strip("\"',")) >= 4},
                    key=len, reverse=True)

    def scrub(lines: list[str]) -> str:
        text = "\n".join(lines)
        for v in values:
            text = text.replace(v, MASK)
        return text + "\n" if lines else ""

    return scrub(b_lines), scrub(a_lines)


def _state(path: str) -> dict:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return {"path": path, "state": "absent"}
    kind = "directory" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode) else "other"
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return {"path": path, "state": kind, "mode": f"{st.st_mode & 0o7777:04o}", "owner": owner, "group": group,
            "size": st.st_size}


def _text(data: bytes) -> str | None:
    if b"\0" in data:
        return None
    try:
        return data.decode()
    except UnicodeDecodeError:
        return None


def diff_of(entry: dict, data: bytes | None, secret: bool) -> list[dict]:
    """Ansible's diffs for writing ``entry``: its attributes (when they change) and, for a file, its
    content (text only, up to DIFF_MAX bytes; a secret file's masked with mask_pair)."""
    path = entry["path"]
    have = _state(path)
    want = {"path": path, "state": "directory" if data is None else "file",
            "mode": f"{wanted_mode(entry, data):04o}", "owner": entry.get("owner") or "root",
            "group": entry.get("group") or "root"}
    diffs = []
    size = have.pop("size", 0)
    if any(have.get(k) != v for k, v in want.items()):
        diffs.append({"before_header": path, "after_header": path, "before": have, "after": want})
    if data is None:
        return diffs
    header = {"before_header": path, "after_header": path}
    if len(data) > DIFF_MAX:
        return diffs + [{**header, "src_larger": DIFF_MAX}]
    if have["state"] == "file" and size > DIFF_MAX:
        return diffs + [{**header, "dst_larger": DIFF_MAX}]
    before = b""
    if have["state"] == "file":
        with open(path, "rb") as f:
            before = f.read()
    if before == data:
        return diffs
    after_text, before_text = _text(data), _text(before)
    if after_text is None:
        return diffs + [{**header, "src_binary": 1}]
    if before_text is None:
        return diffs + [{**header, "dst_binary": 1}]
    if secret:
        before_text, after_text = mask_pair(before_text, after_text)
    return diffs + [{**header, "before": before_text, "after": after_text}]


def write(files: list, secrets: dict, check_mode: bool, diff: bool = False) -> dict:
    """Write every entry (what the controller found stale); ``{changed, paths, msg, diff?}``, or
    ``failed`` with the path that failed."""
    done, diffs = [], []
    for entry in files:
        try:
            data = wanted_bytes(entry, secrets)
            if diff:
                diffs += diff_of(entry, data, entry["path"] in secrets)
            if not check_mode:
                apply(entry, data)
            done.append(entry["path"])
        except (OSError, KeyError, ValueError) as e:
            return {"failed": True, "msg": f"{entry['path']}: {e}", "paths": done}
    verb = "would write" if check_mode else "wrote"
    result = {"changed": bool(done), "paths": done, "msg": f"{verb} {', '.join(done)}" if done else ""}
    if diff:
        result["diff"] = diffs
    return result


def raw_main(args: dict) -> dict:
    """Run by the edgeclu_files action plugin (arguments validated there): plain Python, no Ansible on the node."""
    return write(args["files"], args["secret_contents"], bool(args.get("check_mode")), bool(args.get("diff")))
