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
    _supports_check_mode = True
    SCRIPT = _node_script.LIBRARY / "k3s_fetch.py"
    WHAT = "installing k3s"

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = {k: self._task.args.get(k) for k in ("url", "name", "sums_url", "dest", "version", "timeout")}
        result.update(self.run_script({**args, "check_mode": bool(self._task.check_mode)}, task_vars or {}))
        return result
