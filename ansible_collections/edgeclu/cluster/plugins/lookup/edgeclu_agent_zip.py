"""``lookup('edgeclu.cluster.edgeclu_agent_zip', src, want=...)``: the agent's code as one zip, built on
the controller (module_utils/agent.py).

The role compares the zip's ``sha1`` with the node's file and, where it differs, writes its bytes
(``b64``) with edgeclu_files: one file instead of one per module, and a re-run compares one checksum.
An empty ``src`` is the edgeclu package installed beside this Ansible.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile

from ansible.errors import AnsibleError
from ansible.plugins.lookup import LookupBase

from ansible_collections.edgeclu.cluster.plugins.module_utils.agent import build, package_dir

DOCUMENTATION = """
name: edgeclu_agent_zip
short_description: build the edgeclu agent's zip on the controller
description:
  - Zips edgeclu/__init__.py and edgeclu/agent/*.py from the edgeclu package directory given,
    deterministically, and returns its sha1, its bytes (base64), or the path of a copy written
    to the controller's cache directory.
options:
  _terms:
    description: the edgeclu package directory on the controller ("" for the installed edgeclu package)
    required: true
  want:
    description: C(path) of the zip, its C(sha1), or its bytes as C(b64)
    default: path
"""



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
        try:
            return self._run([package_dir(str(term or "")) for term in terms], want)
        except ValueError as e:
            raise AnsibleError(f"edgeclu_agent_zip: {e}") from None

    def _run(self, terms, want):
        if want == "path":
            return [ensure(term) for term in terms]
        if want == "sha1":  # the digest Ansible's copy module compares
            return [hashlib.sha1(build(term)).hexdigest() for term in terms]  # noqa: S324
        if want == "b64":
            return [base64.b64encode(build(term)).decode() for term in terms]
        raise AnsibleError(f"edgeclu_agent_zip: want must be path, sha1 or b64, not {want!r}")
