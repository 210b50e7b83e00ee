"""One place for node facts: the collection's module_utils/paths.py. The roles' YAML and templates name
none of its paths (the planners put them into the plans), a role input that moves one of them has it as
its default, and the collection decides without the edgeclu package."""

import re
import subprocess
import sys

import pytest

from ansible_collections.edgeclu.cluster.plugins.module_utils import paths
from edgeclu import rolespecs

COLLECTION = rolespecs.roles_dir().parent
# the inputs' defaults (the one place Ansible reads them) and the defaults generated from them
EXEMPT = {"argument_specs.yml"}


def role_files():
    for f in sorted([*COLLECTION.glob("roles/**/*"), *COLLECTION.glob("playbooks/**/*")]):
        if f.is_file() and f.name not in EXEMPT and f.parent.name != "defaults" and f.suffix in (".yml", ".j2"):
            yield f


def literals(text, values):
    """``(path, line)`` for each of ``values`` spelled out in ``text`` as a whole path or a path's start (not
    inside another path: ``{{ prefix }}/etc/x`` is not ``/etc/x``)."""
    for value in values:
        for m in re.finditer(rf"(?<![\w./}}-]){re.escape(value)}(?![\w.-])", text):
            yield value, text.count("\n", 0, m.start()) + 1


def test_no_role_spells_out_a_node_path():
    values = paths.node_paths()
    assert paths.AGENT_CONFIG in values and paths.SYSTEMD_DIR in values and paths.PI_CMDLINES[0] in values
    files = list(role_files())
    assert len(files) > 40, files  # the scan looked at the roles' tasks, vars and templates
    found = [f"{f.relative_to(COLLECTION)}:{line}: {value}"
             for f in files for value, line in literals(f.read_text(), values)]
    assert not found, "node paths belong in module_utils/paths.py (the plans carry them):\n" + "\n".join(found)


@pytest.mark.parametrize("text, hits", [
    ("path: /etc/edgeclu/agent.json", [(paths.AGENT_CONFIG, 1), (paths.AGENT_CONFIG_DIR, 1)]),
    ("x\nrm -f /etc/systemd/system/k3s*.service", [(paths.SYSTEMD_DIR, 2)]),
    ("{{ agent_prefix }}/etc/edgeclu", []),  # a path inside another is not that path
    ("/etc/edgeclu-other", []),
])
def test_the_scan_finds_whole_paths(text, hits):
    assert list(literals(text, [paths.AGENT_CONFIG, paths.SYSTEMD_DIR, paths.AGENT_CONFIG_DIR])) == hits


def test_a_path_input_defaults_to_the_node_fact():
    defaults = rolespecs.defaults()
    assert {name: defaults.get(name) for name in paths.ROLE_INPUTS} == paths.ROLE_INPUTS


def test_the_planners_work_without_the_edgeclu_package():
    # the collection is usable with ansible-playbook alone: no planner may reach into edgeclu
    code = """
import sys
sys.modules["edgeclu"] = None  # importing it now raises ImportError
from ansible_collections.edgeclu.cluster.plugins.module_utils import k3s, prereq, raspberrypi, agent, addons
state = {"files": {}, "services": {"k3s": {"active": "inactive", "enabled": "disabled"}}, "machine": "x86_64",
         "k3s_version_output": ""}
plan = k3s.install_plan(state, config_file={"path": "/c", "mode": "0600", "content": "x"},
                        files=[{"path": k3s.node_paths("k3s")["unit"], "mode": "0644", "content": "u"}],
                        version="v1.31.4+k3s1", service="k3s")
assert plan["unit_changed"] and plan["restart"], plan
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "ok", proc.stderr
