"""The collection's node scripts (plugins/modules/*, run by module_utils/node_script.py's NodeScriptAction):
each has one argument spec, ARGUMENT_SPEC, which its DOCUMENTATION says the same as, and a task's arguments
are checked against it on the controller before anything is sent: a typo or a wrong type fails the task in
one line naming the module and the key, and a secret value never appears in that line."""

import sys

import pytest
import yaml
from ansible.errors import AnsibleActionFail

from ansible_collections.edgeclu.cluster.plugins.module_utils import node_script
from ansible_collections.edgeclu.cluster.plugins.modules import (
    edgeclu_files,
    edgeclu_systemd,
    k3s_fetch,
    k3s_node_state,
)
from edgeclu.playbook import run_playbook

MODULES = (edgeclu_files, edgeclu_systemd, k3s_fetch, k3s_node_state)
SPEC_KEYS = ("type", "elements", "default", "required")


def _documented(options: dict) -> dict:
    return {name: {**{k: o[k] for k in SPEC_KEYS if k in o},
                   **({"options": _documented(o["suboptions"])} if "suboptions" in o else {})}
            for name, o in options.items()}


def _specified(spec: dict) -> dict:
    return {name: {**{k: o[k] for k in SPEC_KEYS if k in o},
                   **({"options": _specified(o["options"])} if "options" in o else {})}
            for name, o in spec.items()}


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_documentation_says_what_the_spec_checks(module):
    doc = yaml.safe_load(module.DOCUMENTATION)
    assert doc["module"] == module.__name__.rsplit(".", 1)[-1]
    assert _documented(doc["options"]) == _specified(module.ARGUMENT_SPEC)
    assert not hasattr(module, "main")  # the action plugin runs raw_main; no unused AnsibleModule wrapper


@pytest.mark.parametrize(("module", "args", "says"), [
    (k3s_node_state, {"path": ["/etc/hostname"]}, "edgeclu.cluster.k3s_node_state: unsupported parameters path."),
    (k3s_node_state, {"services": {"a": 1}}, "edgeclu.cluster.k3s_node_state: argument 'services' is of type dict"),
    (k3s_fetch, {"url": "http://m/k3s", "sha256": "0" * 64, "dest": "/k3s", "timeout": "soon"},
     "edgeclu.cluster.k3s_fetch: argument 'timeout' is of type str and we were unable to convert to int"),
    (k3s_fetch, {"url": "http://m/k3s", "sha256": "0" * 64},
     "edgeclu.cluster.k3s_fetch: missing required arguments: dest"),
    (edgeclu_files, {"files": [{"paht": "/etc/x", "content": "x"}]},
     "edgeclu.cluster.edgeclu_files: missing required arguments: path found in files; "
     "unsupported parameters files.paht."),
    (edgeclu_systemd, {"service": "k3s", "action": "reload"},
     "edgeclu.cluster.edgeclu_systemd: value of action must be one of: none, start, restart, got: reload"),
    (edgeclu_files, {"files": [{"path": "/etc/x", "content": "x", "content_b64": "eA=="}]},
     "edgeclu.cluster.edgeclu_files: parameters are mutually exclusive: content|content_b64 found in files"),
])
def test_bad_arguments_fail_in_one_line_naming_the_module_and_the_key(module, args, says):
    with pytest.raises(AnsibleActionFail) as e:
        node_script.validate(module, args)
    msg = str(e.value.message)
    assert msg.startswith(says) and "\n" not in msg


def test_a_secret_value_never_appears_in_the_error():
    secret = "hunter2-is-the-token"
    with pytest.raises(AnsibleActionFail) as e:
        node_script.validate(edgeclu_files, {"files": [{"path": "/etc/x", "directory": secret}],
                                             "secret_contents": {"/etc/y": secret}})
    msg = str(e.value.message)
    assert "directory" in msg and secret not in msg


def test_validated_arguments_have_the_defaults():
    args = node_script.validate(edgeclu_files, {"files": [{"path": "/etc/x", "content": "x"}]})
    assert args == {"files": [{"path": "/etc/x", "content": "x", "owner": "root", "group": "root",
                               "directory": False, "mode": None, "content_b64": None}], "secret_contents": {}}
    assert node_script.validate(k3s_fetch, {"url": "u", "sha256": "s", "dest": "~/k3s"})["dest"] == "~/k3s"  # node's


def test_a_playbook_task_with_a_typo_fails_and_sends_nothing(tmp_path):
    # through ansible-runner, as edgeclu runs playbooks: `path:` for `paths:` stops the task (today's code
    # sent it and the module ignored it: the role then decided on a look that had looked at nothing)
    play = tmp_path / "play.yml"
    play.write_text(yaml.safe_dump([{"hosts": "all", "gather_facts": False, "tasks": [
        {"name": "Look", "edgeclu.cluster.k3s_node_state": {"path": ["/etc/hostname"]}}]}]))
    inv = tmp_path / "inventory.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": {"here": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    events = []
    result = run_playbook(inv, str(play), known_hosts=tmp_path / "known_hosts", on_event=events.append)
    assert not result.ok
    assert result.hosts["here"].failures == [
        "Look: edgeclu.cluster.k3s_node_state: unsupported parameters path. Supported parameters include: facts, "
        "globs, iface, imports, k3s_bin, modules, paths, python, rancher_dir, services, sha256_globs."]
    assert not [e for e in events if e.status == "ok"]


@pytest.mark.parametrize(("args", "commands", "says"), [
    ({"service": "k3s", "daemon_reload": True, "action": "restart"},
     [["systemctl", "daemon-reload"], ["systemctl", "enable", "--quiet", "k3s"], ["systemctl", "restart", "k3s"]],
     "would enable and restart k3s (units reloaded)"),
    ({"service": "k3s-agent", "action": "none"}, [["systemctl", "enable", "--quiet", "k3s-agent"]],
     "would enable k3s-agent"),
    ({"service": "edgeclu-agent.service", "sysusers": ["/etc/sysusers.d/edgeclu-agent.conf"]},
     [["systemd-sysusers", "/etc/sysusers.d/edgeclu-agent.conf"], ["systemctl", "enable", "--quiet",
      "edgeclu-agent.service"], ["systemctl", "start", "edgeclu-agent.service"]],
     "would enable and start edgeclu-agent.service"),
])
def test_edgeclu_systemd_steps_and_check_mode_says_what_without_running(args, commands, says, monkeypatch):
    args = node_script.validate(edgeclu_systemd, args)
    assert edgeclu_systemd.steps(args) == commands
    monkeypatch.setattr(edgeclu_systemd.subprocess, "run", lambda *a, **k: pytest.fail(f"ran {a}"))
    assert edgeclu_systemd.raw_main({**args, "check_mode": True}) == {"changed": True, "msg": says}


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_ansible_doc_reads_the_documentation(module, tmp_path):
    import json
    import os
    import subprocess
    from pathlib import Path

    from edgeclu.resources import collections_path

    name = f"edgeclu.cluster.{module.__name__.rsplit('.', 1)[-1]}"
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-doc"), "--json", name], capture_output=True,
                          text=True, env={**os.environ, "ANSIBLE_HOME": str(tmp_path),
                                          "ANSIBLE_COLLECTIONS_PATH": str(collections_path())})
    assert proc.returncode == 0, proc.stderr
    assert set(json.loads(proc.stdout)[name]["doc"]["options"]) == set(module.ARGUMENT_SPEC)
