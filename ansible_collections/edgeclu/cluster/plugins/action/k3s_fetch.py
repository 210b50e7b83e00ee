"""Action plugin for ``k3s_fetch``: run the module's file as a plain script on the node.

The same way as ``k3s_node_state`` (its ``NodeScriptAction``); see library/k3s_fetch.py.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("edgeclu_node_script", Path(__file__).with_name("k3s_node_state.py"))
_node_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_node_script)


class ActionModule(_node_script.NodeScriptAction):
    SCRIPT = _node_script.LIBRARY / "k3s_fetch.py"
    WHAT = "installing k3s"
