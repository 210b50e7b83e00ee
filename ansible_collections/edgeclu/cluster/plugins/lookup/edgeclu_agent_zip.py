"""``lookup('edgeclu.cluster.edgeclu_agent_zip', src, want=...)``: the agent's code as one zip, built on
the controller (module_utils/agent.py).

The role compares the zip's ``sha1`` with the node's file and, where it differs, writes its bytes
(``b64``) with edgeclu_files: one file instead of one per module, and a re-run compares one checksum.
An empty ``src`` is the edgeclu package installed beside this Ansible.
"""

from __future__ import annotations

import base64
import hashlib

from ansible.errors import AnsibleError
from ansible.plugins.lookup import LookupBase

from ansible_collections.edgeclu.cluster.plugins.module_utils.agent import build, package_dir

DOCUMENTATION = """
name: edgeclu_agent_zip
short_description: build the edgeclu agent's zip on the controller
description:
  - Zips edgeclu/__init__.py and edgeclu/agent/*.py from the edgeclu package directory given,
    deterministically, and returns its sha1 or its bytes (base64).
options:
  _terms:
    description: the edgeclu package directory on the controller ("" for the installed edgeclu package)
    required: true
  want:
    description: the zip's C(sha1), or its bytes as C(b64)
    required: true
"""


class LookupModule(LookupBase):
    def run(self, terms, variables=None, want=None, **kwargs):
        """``want``: ``sha1`` (the zip's digest, to compare with the node's) or ``b64`` (its bytes, base64,
        for the edgeclu_files module)."""
        try:
            srcs = [package_dir(str(term or "")) for term in terms]
        except ValueError as e:
            raise AnsibleError(f"edgeclu_agent_zip: {e}") from None
        if want == "sha1":  # the digest Ansible's copy module compares
            return [hashlib.sha1(build(src)).hexdigest() for src in srcs]  # noqa: S324
        if want == "b64":
            return [base64.b64encode(build(src)).decode() for src in srcs]
        raise AnsibleError(f"edgeclu_agent_zip: want must be sha1 or b64, not {want!r}")
