"""The k3s playbooks: token hygiene, units, filters, syntax. (Their inputs and defaults: test_rolespecs.py;
the topology, config.yaml 0600 and the token files on real nodes: tests/integration/test_site_lab.py.)"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jinja2
import pytest
import yaml

from edgeclu.inventory import DEFAULTS
from edgeclu.resources import collection_dir, collections_path

COLLECTION = collection_dir()
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
        for path in sorted((COLLECTION / "roles" / role / "tasks").glob("*.yml")):
            for task in _tasks(yaml.safe_load(path.read_text())):
                yield f"{role}/{path.name}: {task.get('name', '?')}", task


def test_no_playbook_group_vars():
    assert not (COLLECTION / "playbooks" / "group_vars").exists()


def test_every_task_that_handles_the_token_is_no_log():
    handling = []
    for where, task in _role_tasks():
        skip = {"name", "when", "block", "rescue", "always"}
        if any(f"ansible.builtin.{verb}" in task for verb in ("include_role", "import_tasks", "include_tasks")):
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
           "ANSIBLE_COLLECTIONS_PATH": str(collections_path())}
    return subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(tmp_path / "inventory.yml"),
                           str(tmp_path / "play.yml"), *args], capture_output=True, text=True, env=env, timeout=120)


def test_the_settings_check_shows_its_message_not_the_token(tmp_path):
    # config.yaml is rendered under no_log; the check before it renders it with stand-in tokens, so a
    # mistake in the settings is seen (with k3s's reason), and the real token never is
    proc = ansible_playbook(
        tmp_path, "- hosts: k3s_cluster\n  gather_facts: false\n  tasks:\n    - ansible.builtin.import_role:"
        " {name: edgeclu.cluster.k3s_install, tasks_from: configure}\n",
        "k3s_cluster:\n  children:\n    server: {hosts: {localhost: {ansible_connection: local}}}\n",
        "--check", "-e", '{"k3s_version": "v1.31.4+k3s1", "k3s_token": "SECRET-TOKEN-123", '
        '"k3s_agent_token": "SECRET-AGENT-456", "k3s_extra_config": {"token": "x"}}')
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "k3s_extra_config may not set token (edgeclu manages them)" in out
    assert "SECRET-TOKEN-123" not in out and "SECRET-AGENT-456" not in out


@pytest.mark.parametrize("unit, verb", [("k3s.service.j2", "server"), ("k3s-agent.service.j2", "agent")])
def test_units_start_k3s_from_config_yaml_only(unit, verb):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(COLLECTION / "roles/k3s_install/templates"),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    text = env.get_template(unit).render(**DEFAULTS, ansible_managed="managed")
    lines = text.splitlines()
    assert lines[0] == "# managed" and "/etc/rancher/k3s/config.yaml" in lines[1]
    assert [line for line in lines if line.startswith("ExecStart=")] == [f"ExecStart=/usr/local/bin/k3s {verb}"]
    assert "Type=notify" in lines and "Restart=always" in lines and "KillMode=process" in lines


def test_the_collection_alone_works_without_the_edgeclu_package(tmp_path):
    # a copy of the collection somewhere else, and an `edgeclu` package that refuses to be imported, ahead of
    # the real one on the path: the plugins reach their Python only through ansible_collections.edgeclu.cluster
    shutil.copytree(COLLECTION, tmp_path / "colls/ansible_collections/edgeclu/cluster",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "trap/edgeclu").mkdir(parents=True)
    (tmp_path / "trap/edgeclu/__init__.py").write_text("raise ImportError('the collection imported edgeclu')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "trap"), "ANSIBLE_HOME": str(tmp_path / "ah"),
           "ANSIBLE_COLLECTIONS_PATH": str(tmp_path / "colls"), "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "False",
           "ANSIBLE_LOCALHOST_WARNING": "False", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False", "ANSIBLE_NOCOLOR": "1"}
    msg = "{{ 'k3s' | edgeclu.cluster.k3s_release_url('v1.31.4+k3s1', 'http://m') }} " \
          "{{ ({'storage': 'longhorn', 'k3s_version': 'v1.31.4+k3s1'} | edgeclu.cluster.edgeclu_addons(1))" \
          ".packages | join(',') }} " \
          "{{ '10.1.2.3' | edgeclu.cluster.edgeclu_agent_listen('') }}"
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [{"ansible.builtin.debug": {"msg": msg}}]}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-c", "local", "-i", "localhost,",
                           "-e", f"ansible_python_interpreter={sys.executable}", "play.yml"],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert '"msg": "http://m/v1.31.4%2Bk3s1/k3s open-iscsi,nfs-common 10.1.2.3"' in proc.stdout


def test_site_yml_passes_ansible_syntax_check(tmp_path):
    inv = tmp_path / "inventory.yml"
    inv.write_text(yaml.safe_dump({"k3s_cluster": {
        "children": {"server": {"hosts": {"s1": None}}, "agent": {"hosts": {"a1": None}}},
        "vars": {"k3s_version": "v1.31.4+k3s1"}}}))
    bindir = Path(sys.executable).parent
    proc = subprocess.run([str(bindir / "ansible-playbook"), "-i", str(inv), "edgeclu.cluster.site",
                           "--syntax-check"], capture_output=True, text=True,
                          env={**os.environ, "ANSIBLE_HOME": str(tmp_path / "ah"),
                               "ANSIBLE_COLLECTIONS_PATH": str(collections_path())})
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_reset_honours_the_inventorys_k3s_install_dir(tmp_path):
    # k3s in the inventory's k3s_install_dir with no uninstall script beside it: reset refuses, naming that
    # directory (a play-level `vars:` would put /usr/local/bin above the inventory). --check, as the user
    # running it here, on localhost: nothing is changed, and the refusal comes before any other task.
    bindir = tmp_path / "opt-bin"
    bindir.mkdir()
    (bindir / "k3s").write_text("#!/bin/sh\n")
    inv = tmp_path / "inventory.yml"
    inv.write_text(yaml.safe_dump({"k3s_cluster": {
        "children": {"server": {"hosts": {"localhost": {"ansible_connection": "local"}}}},
        "vars": {"k3s_install_dir": str(bindir), "ansible_python_interpreter": sys.executable,
                 "ansible_become": False}}}))
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inv),
                           "edgeclu.cluster.reset", "--check"], capture_output=True, text=True,
                          env={**os.environ, "ANSIBLE_HOME": str(tmp_path / "ah"), "ANSIBLE_NOCOLOR": "1",
                               "ANSIBLE_COLLECTIONS_PATH": str(collections_path())}, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"localhost has {bindir}/k3s but neither k3s-uninstall.sh nor k3s-agent-uninstall.sh" in proc.stdout
