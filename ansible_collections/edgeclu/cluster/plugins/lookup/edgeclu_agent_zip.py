"""``lookup('edgeclu_agent_zip', src, want=...)``: the agent's code as one zip, built on the controller.

The node runs it with ``PYTHONPATH=<zip> python3 -m edgeclu.agent`` (zipimport). The role
compares the zip's ``sha1`` with the node's file and, where it differs, writes its bytes
(``b64``) with edgeclu_files: one file instead of one per module, and a re-run compares one
checksum. The zip is deterministic (sorted names, fixed timestamps and modes, stored,
not deflated: zipimport then needs no zlib), so the same code always gives the same
bytes and an unchanged agent is never copied or restarted again.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tempfile
import zipfile

DOCUMENTATION = """
name: edgeclu_agent_zip
short_description: build the edgeclu agent's zip on the controller
description:
  - Zips edgeclu/__init__.py and edgeclu/agent/*.py from the edgeclu package directory given,
    deterministically, and returns its sha1, its bytes (base64), or the path of a copy written
    to the controller's cache directory.
options:
  _terms:
    description: the edgeclu package directory on the controller
    required: true
  want:
    description: C(path) of the zip, its C(sha1), or its bytes as C(b64)
    default: path
"""

try:  # the builder below is plain Python; Ansible is only needed to use it as a lookup
    from ansible.errors import AnsibleError
    from ansible.plugins.lookup import LookupBase
except ImportError:  # pragma: no cover
    AnsibleError, LookupBase = RuntimeError, object

FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def agent_files(src: str) -> list[tuple[str, str]]:
    """``(name in the zip, path)`` for the package's ``__init__.py`` and the agent's modules, sorted."""
    agent = os.path.join(src, "agent")
    if not os.path.isfile(os.path.join(agent, "__main__.py")):
        raise AnsibleError(f"{src} is not the edgeclu package (no agent/__main__.py)")
    files = [("edgeclu/__init__.py", os.path.join(src, "__init__.py"))]
    files += [(f"edgeclu/agent/{f}", os.path.join(agent, f)) for f in os.listdir(agent) if f.endswith(".py")]
    return sorted(files)


def build(src: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, path in agent_files(src):
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.external_attr = 0o100644 << 16
            info.create_system = 3  # unix
            with open(path, "rb") as f:
                zf.writestr(info, f.read())
    return buf.getvalue()


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = os.path.join(base, "edgeclu")
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        return path
    except OSError:
        return tempfile.gettempdir()


def ensure(src: str, directory: str | None = None) -> str:
    """Write the zip (named by its sha256) unless it is there already; returns its path."""
    data = build(src)
    directory = directory or cache_dir()
    path = os.path.join(directory, f"edgeclu-agent-{hashlib.sha256(data).hexdigest()[:16]}.zip")
    if not os.path.isfile(path):
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    return path


class LookupModule(LookupBase):
    def run(self, terms, variables=None, want="path", **kwargs):
        """``want``: ``path`` (the zip, written to the cache directory), ``sha1`` (its digest, to compare
        with the node's) or ``b64`` (its bytes, base64, for the edgeclu_files module)."""
        if want == "path":
            return [ensure(str(term)) for term in terms]
        if want == "sha1":  # the digest Ansible's copy module compares
            return [hashlib.sha1(build(str(term))).hexdigest() for term in terms]  # noqa: S324
        if want == "b64":
            return [base64.b64encode(build(str(term))).decode() for term in terms]
        raise AnsibleError(f"edgeclu_agent_zip: want must be path, sha1 or b64, not {want!r}")
