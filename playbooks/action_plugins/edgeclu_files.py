"""Action plugin for ``edgeclu_files``: run the module's file as a plain script on the node.

The same way as ``k3s_node_state`` (its ``NodeScriptAction``): the files' contents, secrets
included, travel on stdin, never on a command line; the result carries only the paths written.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("edgeclu_node_script", Path(__file__).with_name("k3s_node_state.py"))
_node_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_node_script)


class ActionModule(_node_script.NodeScriptAction):
    _supports_check_mode = True
    SCRIPT = _node_script.LIBRARY / "edgeclu_files.py"
    WHAT = "writing files"

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = {"files": self._task.args.get("files") or [],
                "secret_contents": self._task.args.get("secret_contents") or {},
                "check_mode": bool(self._task.check_mode)}
        result.update(self.run_script(args, task_vars or {}))
        return result
