"""How edgeclu's own modules run: ``NodeScriptAction``, the base of the collection's action plugins.

The node's python3 gets a one-line loader as ``-c`` and, on stdin, the module's file
(``plugins/modules/<name>.py``), a NUL byte and the arguments as JSON (like pipelining: no
temporary files, no tty, nothing on the command line but the loader, so arguments may be
large and are never in a process listing). The task's arguments are first checked on the controller
against the module's ``ARGUMENT_SPEC`` (the one spec of each script; its DOCUMENTATION says the same,
tests/unit/test_node_scripts.py holds them together) with Ansible's own validator: an unknown key
(``path:`` for ``paths:``), a wrong type or a missing one fails the task in one line naming the module
and the key, secret (``no_log``) values masked, and nothing is sent. The script gets the validated
arguments, defaults filled in. The loader runs the file's ``raw_main(args)`` and
prints its result as JSON: no AnsiballZ wrapper and no ansible import on the node, several
times cheaper than a module (on a Raspberry Pi, most of a run). Under become when the task
has it. Controller-side only (the action plugins import it; no module ships it to a node).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values
from ansible.module_utils.errors import UnsupportedError
from ansible.plugins.action import ActionBase

# the framing, shared with edgeclu's own transport (edgeclu.node.gather)
from ansible_collections.edgeclu.cluster.plugins.module_utils.node_loader import (  # noqa: F401 - node_script's names
    LOADER,
    command,
    node_python,
    stdin,
)


def validate(module: ModuleType, args: dict) -> dict:
    """``args`` checked against ``module.ARGUMENT_SPEC``: the validated arguments (defaults filled in),
    or AnsibleActionFail with one line naming the module and what is wrong, no_log values masked."""
    name = f"edgeclu.cluster.{module.__name__.rsplit('.', 1)[-1]}"
    result = ArgumentSpecValidator(module.ARGUMENT_SPEC).validate(args)
    if result.error_messages:  # (result.errors is always true)
        problems = [f"unsupported parameters {e}" if isinstance(e, UnsupportedError) else str(e)
                    for e in result.errors]
        msg = remove_values("; ".join(problems), result._no_log_values)
        raise AnsibleActionFail(f"{name}: {' '.join(msg.split())}")
    return result.validated_parameters


class NodeScriptAction(ActionBase):
    """Runs ``MODULE``'s ``raw_main`` with the task's arguments (those set, validated) and
    ``check_mode`` and ``diff`` (the task's); its answer is the task's result."""

    _supports_check_mode = True
    _supports_async = False
    MODULE: ModuleType  # the module in plugins/modules: its file is the script, its ARGUMENT_SPEC the spec
    WHAT = "reading the node's state"

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = validate(self.MODULE, {k: v for k, v in self._task.args.items() if v is not None})
        result.update(self.run_script({**args, "check_mode": bool(self._task.check_mode),
                                       "diff": bool(self._task.diff)}, task_vars or {}))
        return result

    def run_script(self, args: dict, task_vars: dict) -> dict:
        script = Path(self.MODULE.__file__).read_bytes()
        res = self._low_level_execute_command(command(node_python(task_vars)), sudoable=True,
                                              in_data=stdin(script, args))
        if res.get("rc") != 0:
            raise AnsibleActionFail(f"{self.WHAT} failed (rc={res.get('rc')}): "
                                    f"{(res.get('stderr') or res.get('stdout') or '').strip()[-500:]}")
        try:
            return json.loads(res["stdout"])
        except ValueError as e:
            raise AnsibleActionFail(f"{self.WHAT}: the node's answer is not JSON ({e}): "
                                    f"{res['stdout'][:300]}") from None
