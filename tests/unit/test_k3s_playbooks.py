"""The k3s playbooks' structure: defaults in sync, token hygiene, topology, units, filters."""

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


@pytest.mark.parametrize("role, keys", [
    ("prereq", {"disable_swap"}),
    ("raspberrypi", {"disable_swap"}),
    ("k3s_install", {"token_file", "api_port", "tls_san", "storage", "storage_path",
                     "ingress", "loadbalancer", "node_labels", "node_taints", "k3s_extra_config",
                     "embedded_registry"}),
    ("k3s_server", set()),
    ("k3s_agent", set()),
])
def test_role_defaults_mirror_the_inventory_defaults(role, keys):
    # role defaults, the lowest precedence: an inventory's k3s_cluster vars always win
    # (playbook group_vars/all would override them)
    defaults = yaml.safe_load((COLLECTION / "roles" / role / "defaults" / "main.yml").read_text()) or {}
    assert {k: defaults[k] for k in keys} == {k: DEFAULTS[k] for k in keys}
    assert {k: v for k, v in defaults.items() if k in DEFAULTS} == {k: DEFAULTS[k] for k in keys}


def test_no_playbook_group_vars():
    assert not (COLLECTION / "playbooks" / "group_vars").exists()


def test_every_task_that_handles_the_token_is_no_log():
    handling = []
    for where, task in _role_tasks():
        skip = {"name", "when", "block", "rescue", "always"}
        if "ansible.builtin.include_role" in task or "ansible.builtin.import_tasks" in task:
            skip.add("vars")  # vars handed to an include are templated lazily, never logged
        body = {k: v for k, v in task.items() if k not in skip}
        if task.get("name") == "Check the k3s settings":
            # visible on purpose: it renders the config with a placeholder token, never the real one
            assert "combine(k3s_checked_tokens)" in task["ansible.builtin.assert"]["that"], where
            assert task["vars"]["k3s_token_value"] == task["vars"]["k3s_agent_token_value"] == "checked", where
            assert set(re.findall(r"'(\w+)': '(\w+)'", task["vars"]["k3s_checked_tokens"])) == {
                ("token", "checked"), ("agent_token", "checked")}, where
            continue
        if SECRETS.search(yaml.safe_dump(body)):
            handling.append(where)
            assert task.get("no_log") is True, f"{where} handles the token without no_log: true"
    # the check above looked at the real token paths (it would pass vacuously otherwise)
    assert len(handling) >= 5, handling


def test_config_yaml_and_token_file_are_root_only():
    write = yaml.safe_load((COLLECTION / "roles/k3s_install/tasks/write.yml").read_text())
    config = next(t for t in write if "config.yaml" in t["name"])
    # edgeclu_files writes root:root unless an entry says otherwise; the content goes as a no_log secret
    # (config.yaml and registries.yaml: their paths and modes from the plan, 0600: test_k3s.py)
    files = config["edgeclu.cluster.edgeclu_files"]["files"]
    assert "k3s_plan.secret_writes" in files and "owner" not in files
    secrets = config["edgeclu.cluster.edgeclu_files"]["secret_contents"]
    assert secrets == "{{ k3s_plan.secret_contents }}" and config["no_log"] is True
    create = yaml.safe_load((COLLECTION / "roles/k3s_install/tasks/token_create.yml").read_text())
    token_copy = [t for t in _tasks(create) if "ansible.builtin.copy" in t]
    assert [t["ansible.builtin.copy"]["mode"] for t in token_copy] == ["0600"]


def _load(path: str):
    return yaml.safe_load((COLLECTION / path).read_text())


def test_site_configures_every_node_at_once_then_starts_servers_one_at_a_time_then_agents():
    plays = _load("playbooks/site.yml")
    assert [(p["hosts"], p.get("serial")) for p in plays] == [
        ("k3s_cluster", None), ("server", None), ("agent", None), ("k3s_cluster", None)]
    imports = [[(t["ansible.builtin.import_role"]["name"], t["ansible.builtin.import_role"]["tasks_from"])
                for t in p.get("tasks", []) + p.get("pre_tasks", [])] for p in plays]
    assert imports == [[("edgeclu.cluster.k3s_install", "configure")], [("edgeclu.cluster.k3s_server", "start")],
                       [("edgeclu.cluster.k3s_agent", "start")], [("edgeclu.cluster.k3s_server", "ready")]]
    assert plays[0]["roles"] == ["edgeclu.cluster.prereq", "edgeclu.cluster.raspberrypi"]
    assert plays[3]["roles"] == ["edgeclu.cluster.addons", "edgeclu.cluster.edgeclu_agent"]
    # one install path for both kinds of node (the same tasks, so all nodes run them together),
    # the kind chosen by inventory group
    defaults = _load("roles/k3s_install/defaults/main.yml")
    assert "groups.get('server', [])" in defaults["k3s_role"]
    assert defaults["k3s_config_params"] == (
        "{{ k3s_server_config_params if k3s_role == 'server' else k3s_agent_config_params }}")
    # one at a time = the (blocking, Type=notify) start is throttled to 1 for servers only, and
    # a node is started only where the install found something to do
    [server_start] = _load("roles/k3s_server/tasks/start.yml")
    [agent_start] = _load("roles/k3s_agent/tasks/start.yml")
    assert server_start["vars"]["k3s_start_throttle"] == 1 and "vars" not in agent_start
    assert server_start["when"] == agent_start["when"] == "k3s_plan.start_needed"
    assert defaults["k3s_start_throttle"] == 0
    [systemctl] = [t for t in _load("roles/k3s_install/tasks/start.yml")
                   if "systemctl" in str(t.get("ansible.builtin.raw", ""))]
    assert systemctl["throttle"] == "{{ k3s_start_throttle }}"


@pytest.mark.parametrize("unit, verb", [("k3s.service.j2", "server"), ("k3s-agent.service.j2", "agent")])
def test_units_start_k3s_from_config_yaml_only(unit, verb):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(COLLECTION / "roles/k3s_install/templates"),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    text = env.get_template(unit).render(k3s_install_dir="/usr/local/bin", ansible_managed="managed")
    lines = text.splitlines()
    assert lines[0] == "# managed"
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
