"""The k3s playbooks: token hygiene, units, filters, syntax. (Their inputs and defaults: test_rolespecs.py;
the topology, config.yaml 0600 and the token files on real nodes: tests/integration/test_site_lab.py.)"""

import os
import re
import subprocess
import sys
from pathlib import Path

import jinja2
import pytest
import yaml

from edgeclu.inventory import DEFAULTS

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = ROOT / "playbooks"
K3S_ROLES = ("prereq", "raspberrypi", "k3s_install", "k3s_server", "k3s_agent")
# anything that holds the token (or config.yaml, which contains it)
SECRETS = re.compile(r"k3s_token_value|k3s_agent_token_value|k3s_secret_existing|k3s_secret_recovered"
                     r"|k3s_secret_new|k3s_secret_fact|k3s_config_file|k3s_config_data"
                     r"|\bk3s_(agent_)?token\b(?!\s+is\s)")  # the user's k3s_token, not "k3s_token is defined"


def _tasks(items):
    for task in items or []:
        yield task
        for key in ("block", "rescue", "always"):
            yield from _tasks(task.get(key))


def _role_tasks():
    for role in K3S_ROLES:
        for path in sorted((PLAYBOOKS / "roles" / role / "tasks").glob("*.yml")):
            for task in _tasks(yaml.safe_load(path.read_text())):
                yield f"{role}/{path.name}: {task.get('name', '?')}", task


def test_no_playbook_group_vars():
    assert not (PLAYBOOKS / "group_vars").exists()


def test_every_task_that_handles_the_token_is_no_log():
    handling = []
    for where, task in _role_tasks():
        skip = {"name", "when", "block", "rescue", "always"}
        if "ansible.builtin.include_role" in task or "ansible.builtin.import_tasks" in task:
            skip.add("vars")  # vars handed to an include are templated lazily, never logged
        body = {k: v for k, v in task.items() if k not in skip}
        if task.get("name") == "Check the k3s settings":
            continue  # shown on purpose, stand-in tokens: test_the_settings_check_shows_its_message_not_the_token
        if SECRETS.search(yaml.safe_dump(body)):
            handling.append(where)
            assert task.get("no_log") is True, f"{where} handles the token without no_log: true"
    # the check above looked at the real token paths (it would pass vacuously otherwise)
    assert len(handling) >= 5, handling


def ansible_playbook(tmp_path, play: str, inventory: str, *args: str) -> subprocess.CompletedProcess:
    """Real ansible-playbook on ``play`` with edgeclu's modules and filters (no edgeclu CLI, no node)."""
    (tmp_path / "play.yml").write_text(play)
    (tmp_path / "inventory.yml").write_text(inventory)
    env = {**os.environ, "ANSIBLE_HOME": str(tmp_path / "ah"), "ANSIBLE_NOCOLOR": "1",
           **{f"ANSIBLE_{kind.upper()}": str(PLAYBOOKS / d) for kind, d in (
               ("library", "library"), ("action_plugins", "action_plugins"), ("filter_plugins", "filter_plugins"))}}
    return subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(tmp_path / "inventory.yml"),
                           str(tmp_path / "play.yml"), *args], capture_output=True, text=True, env=env, timeout=120)


def test_the_settings_check_shows_its_message_not_the_token(tmp_path):
    # config.yaml is rendered under no_log; the check before it renders it with stand-in tokens, so a
    # mistake in the settings is seen (with k3s's reason), and the real token never is
    proc = ansible_playbook(
        tmp_path, f"- hosts: k3s_cluster\n  gather_facts: false\n  tasks:\n    - ansible.builtin.import_role:"
        f" {{name: {PLAYBOOKS}/roles/k3s_install, tasks_from: configure}}\n",
        "k3s_cluster:\n  children:\n    server: {hosts: {localhost: {ansible_connection: local}}}\n",
        "--check", "-e", '{"k3s_version": "v1.31.4+k3s1", "k3s_token": "SECRET-TOKEN-123", '
        '"k3s_agent_token": "SECRET-AGENT-456", "k3s_extra_config": {"token": "x"}}')
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "k3s_extra_config may not set token (edgeclu manages them)" in out
    assert "SECRET-TOKEN-123" not in out and "SECRET-AGENT-456" not in out


@pytest.mark.parametrize("unit, verb", [("k3s.service.j2", "server"), ("k3s-agent.service.j2", "agent")])
def test_units_start_k3s_from_config_yaml_only(unit, verb):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ROOT / "templates"), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    text = env.get_template(unit).render(**DEFAULTS, ansible_managed="managed")
    lines = text.splitlines()
    assert lines[0] == "# managed" and "/etc/rancher/k3s/config.yaml" in lines[1]
    assert [line for line in lines if line.startswith("ExecStart=")] == [f"ExecStart=/usr/local/bin/k3s {verb}"]
    assert "Type=notify" in lines and "Restart=always" in lines and "KillMode=process" in lines


def test_filter_plugin_finds_edgeclu_without_it_being_installed():
    # -S: no site-packages, so `import edgeclu` only works through the plugin's path fallback
    code = (f"import runpy; m = runpy.run_path('{PLAYBOOKS}/filter_plugins/edgeclu_k3s.py'); "
            "f = m['FilterModule']().filters(); "
            "print(f['k3s_release_url']('k3s', 'v1.31.4+k3s1', 'http://m'))")
    proc = subprocess.run([sys.executable, "-S", "-c", code], cwd="/", capture_output=True, text=True,
                          env={"PATH": os.environ["PATH"]})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "http://m/v1.31.4%2Bk3s1/k3s\n"


def test_site_yml_passes_ansible_syntax_check(tmp_path):
    inv = tmp_path / "inventory.yml"
    inv.write_text(yaml.safe_dump({"k3s_cluster": {
        "children": {"server": {"hosts": {"s1": None}}, "agent": {"hosts": {"a1": None}}},
        "vars": {"k3s_version": "v1.31.4+k3s1"}}}))
    bindir = Path(sys.executable).parent
    proc = subprocess.run([str(bindir / "ansible-playbook"), "-i", str(inv), str(PLAYBOOKS / "site.yml"),
                           "--syntax-check"], capture_output=True, text=True,
                          env={**os.environ, "ANSIBLE_HOME": str(tmp_path / "ah")})
    assert proc.returncode == 0, proc.stdout + proc.stderr
