"""How edgeclu's own modules run: ``NodeScriptAction``, the base of the collection's action plugins.

The node's python3 gets a one-line loader as ``-c`` and, on stdin, the module's file
(``plugins/modules/<name>.py``), a NUL byte and the arguments as JSON (like pipelining: no
temporary files, no tty, nothing on the command line but the loader, so arguments may be
large and are never in a process listing). The loader runs the file's ``raw_main(args)`` and
prints its result as JSON: no AnsiballZ wrapper and no ansible import on the node, several
times cheaper than a module (on a Raspberry Pi, most of a run). Under become when the task
has it. Controller-side only (the action plugins import it; no module ships it to a node).
"""

from __future__ import annotations

import json
from pathlib import Path

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

# the framing, shared with edgeclu's own transport (edgeclu.node.gather)
from ansible_collections.edgeclu.cluster.plugins.module_utils.node_loader import (  # noqa: F401 - node_script's names
    LOADER,
    command,
    node_python,
    stdin,
)

#: the collection's plugins/modules: each script a NodeScriptAction runs
MODULES = Path(__file__).resolve().parents[1] / "modules"


class NodeScriptAction(ActionBase):
    """Runs ``SCRIPT``'s ``raw_main`` with the task's arguments (those set) and ``check_mode``;
    its answer is the task's result."""

    _supports_check_mode = True
    _supports_async = False
    SCRIPT: str  # the module's file name in plugins/modules
    WHAT = "reading the node's state"

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = {k: v for k, v in self._task.args.items() if v is not None}
        result.update(self.run_script({**args, "check_mode": bool(self._task.check_mode)}, task_vars or {}))
        return result

    def run_script(self, args: dict, task_vars: dict) -> dict:
        res = self._low_level_execute_command(command(node_python(task_vars)), sudoable=True,
                                              in_data=stdin((MODULES / self.SCRIPT).read_bytes(), args))
        if res.get("rc") != 0:
            raise AnsibleActionFail(f"{self.WHAT} failed (rc={res.get('rc')}): "
                                    f"{(res.get('stderr') or res.get('stdout') or '').strip()[-500:]}")
        try:
            return json.loads(res["stdout"])
        except ValueError as e:
            raise AnsibleActionFail(f"{self.WHAT}: the node's answer is not JSON ({e}): "
                                    f"{res['stdout'][:300]}") from None
