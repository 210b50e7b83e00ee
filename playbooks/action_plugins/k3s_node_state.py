"""Action plugin for ``k3s_node_state``: run the module's file as a plain script on the node.

``python3 - --edgeclu-raw '<args as JSON>'`` with the script on stdin (like pipelining, so no
temporary files and no tty), under become when the task has it, and the JSON it prints is
the task's result. Same arguments and result as the module; read-only, so it also runs
in check mode.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

SCRIPT = Path(__file__).resolve().parents[1] / "library" / "k3s_node_state.py"
RAW_FLAG = "--edgeclu-raw"


def node_python(task_vars: dict) -> str:
    python = str(task_vars.get("ansible_python_interpreter") or "")
    return python if python.startswith("/") else "/usr/bin/python3"


def command(python: str, args: dict) -> str:
    return f"{shlex.quote(python)} - {RAW_FLAG} {shlex.quote(json.dumps(args, sort_keys=True))}"


class ActionModule(ActionBase):
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = {k: v for k, v in self._task.args.items() if v is not None}
        res = self._low_level_execute_command(command(node_python(task_vars), args), sudoable=True,
                                              in_data=SCRIPT.read_bytes())
        if res.get("rc") != 0:
            raise AnsibleActionFail(f"reading the node's state failed (rc={res.get('rc')}): "
                                    f"{(res.get('stderr') or res.get('stdout') or '').strip()[-500:]}")
        try:
            result.update(json.loads(res["stdout"]))
        except ValueError as e:
            raise AnsibleActionFail(f"the node's state is not JSON ({e}): {res['stdout'][:300]}") from None
        result["changed"] = False
        return result
