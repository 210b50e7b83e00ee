"""How a node script travels to a node's python3 (pure, no ansible import): the one framing both the
collection's action plugins (module_utils/node_script.py) and edgeclu's own transport (the node probe,
:func:`edgeclu.node.gather`, and the converged stamp, :mod:`edgeclu.stamp`) use.

The node's python3 gets a one-line loader as ``-c`` (:func:`command`) and, on stdin (:func:`stdin`),
the script's source (``plugins/modules/<name>.py``), a NUL byte and the arguments as JSON: no
temporary file, nothing on the command line but the loader. The loader runs the script's
``raw_main(args)`` and prints its result as JSON.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from typing import Any

LOADER = ("import sys,json;d=sys.stdin.buffer.read();s,_,a=d.partition(b'\\0');g={'__name__':'edgeclu_node_script'};"
          "exec(compile(s,'<edgeclu>','exec'),g);print(json.dumps(g['raw_main'](json.loads(a))))")
DEFAULT_PYTHON = "/usr/bin/python3"


def node_python(variables: Mapping[str, Any]) -> str:
    """The node's interpreter: ``ansible_python_interpreter`` when it is an absolute path, else python3's
    usual place (the same one Ansible would find on Debian and Raspberry Pi OS)."""
    python = str(variables.get("ansible_python_interpreter") or "")
    return python if python.startswith("/") else DEFAULT_PYTHON


def command(python: str) -> str:
    return f"{shlex.quote(python)} -c {shlex.quote(LOADER)}"


def stdin(script: bytes, args: dict) -> bytes:
    return script + b"\0" + json.dumps(args, sort_keys=True).encode()
