#!/usr/bin/python3
"""Ansible module: enable a systemd service and start or restart it, in one call; in check mode, say so.

What a role does once it knows (from its plan) that a service must start: apply sysusers.d files,
reload units if one changed, enable the service, and start or restart it, waiting at most
``timeout`` seconds (k3s is Type=notify: ``systemctl start`` returns once it is up, or has failed).
On a failure the service's journal tail is the answer's ``stdout`` (``rc`` 124 after the timeout),
so the role can report the service's own message. In check mode nothing runs and the answer is
``changed`` with what would run: the real task reports the change in a dry run (no debug task posing
as one), while ``ansible.builtin.raw`` would only be skipped there. Ansible's ``systemd_service``
does the same in check mode but is a module with Ansible's imports on the node (seconds on a
Raspberry Pi) and neither applies sysusers.d nor returns the journal.

Run as a plain script through ``plugins/action/edgeclu_systemd.py`` (``raw_main``: no AnsiballZ, no
ansible import on the node), which validates the arguments against ``ARGUMENT_SPEC`` first.
"""

from __future__ import annotations

import subprocess

DOCUMENTATION = r"""
module: edgeclu_systemd
short_description: Enable a systemd service and start or restart it in one call; check mode says so
description: [Runs only when a plan says the service must start; always reports changed.]
options:
  service: {type: str, required: true, description: the unit's name}
  action: {type: str, default: start, choices: [none, start, restart], description: "none: only enable it"}
  daemon_reload: {type: bool, default: false, description: reload units first (a unit file changed)}
  sysusers: {type: list, elements: str, default: [], description: sysusers.d files to apply first}
  timeout: {type: int, default: 90, description: seconds the start or restart may take}
  journal_lines: {type: int, default: 60, description: lines of the service's journal returned on a failure}
"""

#: the one spec of the arguments (node_script.validate checks a task's against it; DOCUMENTATION says
#: the same, tests/unit/test_node_scripts.py holds them together)
ARGUMENT_SPEC = {"service": {"type": "str", "required": True},
                 "action": {"type": "str", "default": "start", "choices": ["none", "start", "restart"]},
                 "daemon_reload": {"type": "bool", "default": False},
                 "sysusers": {"type": "list", "elements": "str", "default": []},
                 "timeout": {"type": "int", "default": 90},
                 "journal_lines": {"type": "int", "default": 60}}


def steps(args: dict) -> list[list[str]]:
    """The commands, in order (pure)."""
    service = args["service"]
    return ([["systemd-sysusers", path] for path in args["sysusers"]]
            + ([["systemctl", "daemon-reload"]] if args["daemon_reload"] else [])
            + [["systemctl", "enable", "--quiet", service]]
            + ([["systemctl", args["action"], service]] if args["action"] != "none" else []))


def describe(args: dict) -> str:
    verb = {"none": "enable", "start": "enable and start", "restart": "enable and restart"}[args["action"]]
    return f"{verb} {args['service']}" + (" (units reloaded)" if args["daemon_reload"] else "")


def raw_main(args: dict) -> dict:
    """Run by the edgeclu_systemd action plugin (arguments validated there): plain Python, no Ansible on the node."""
    if args.get("check_mode"):
        return {"changed": True, "msg": f"would {describe(args)}"}
    for cmd in steps(args):
        timeout = args["timeout"] if cmd[:2] == ["systemctl", args["action"]] else None
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            rc, stderr = proc.returncode, proc.stderr
        except subprocess.TimeoutExpired:
            rc, stderr = 124, f"{' '.join(cmd)}: still not done after {timeout} s"
        except OSError as e:
            rc, stderr = 127, str(e)
        if rc != 0:
            journal = subprocess.run(["journalctl", "-u", args["service"], "-n", str(args["journal_lines"]),
                                      "--no-pager", "-o", "cat"], capture_output=True, text=True)
            return {"changed": True, "failed": True, "rc": rc, "stdout": journal.stdout, "stderr": stderr,
                    "msg": f"{' '.join(cmd)} failed (rc={rc})"}
    return {"changed": True, "rc": 0, "stdout": "", "stderr": "", "msg": describe(args)}
