"""One schema for role inputs: each role's meta/argument_specs.yml (Ansible's role argument validation,
docs.ansible.com: playbooks_reuse_roles "Role argument validation", and the validate_argument_spec
module Ansible prepends to a role's tasks) is what `edgeclu inventory check` knows, and what the
roles' defaults/main.yml are generated from."""


import jinja2
import jinja2.meta
import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from edgeclu import inventory, rolespecs
from edgeclu.errors import EdgecluError, InventoryError
from tests.unit.test_k3s_playbooks import ansible_playbook

ROLES = rolespecs.roles_dir()
# the addons role's templates are rendered by module_utils/addons.py with its own context, not with role variables
OWN_CONTEXT_TEMPLATES = {"addons"}
# what Ansible itself provides (magic and connection variables, Jinja globals)
ANSIBLE_VARS = {"inventory_hostname", "groups", "hostvars", "ansible_check_mode", "role_path", "ansible_play_hosts",
                "ansible_play_hosts_all", "omit", "ansible_managed", "item", "ansible_host", "lookup", "query", "q",
                "range"}
EXPRESSION_KEYS = {"when", "changed_when", "failed_when", "until", "that"}  # bare Jinja expressions


class _AnyName(dict):
    """Every filter and test name exists (Ansible's and edgeclu's plugins are not loaded here)."""

    def __contains__(self, name):
        return True

    def get(self, name, default=None):
        return super().get(name) or _nothing


def _nothing(*args, **kwargs):
    return None


_ENV = jinja2.Environment()  # noqa: S701 - parsing only
_ENV.filters, _ENV.tests = _AnyName(_ENV.filters), _AnyName(_ENV.tests)


def _reads(node, key=None):
    """Names a YAML tree's Jinja reads (templated strings; bare expressions under when:, until:, ...)."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _reads(k, None)
            yield from _reads(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from _reads(v, key)
    elif isinstance(node, str):
        text = node if "{{" in node or "{%" in node or key not in EXPRESSION_KEYS else "{{ (" + node + ") }}"
        if "{{" in text or "{%" in text:
            yield from jinja2.meta.find_undeclared_variables(_ENV.parse(text))


def _sets(node, facts_only=False):
    """Names a task tree sets: facts (register, set_fact) and, unless ``facts_only``, the names it scopes
    (vars: of a task, block or include; loop_var)."""
    if isinstance(node, dict):
        if isinstance(node.get("register"), str):
            yield node["register"]
        for key in ("ansible.builtin.set_fact",) if facts_only else ("ansible.builtin.set_fact", "vars"):
            if isinstance(node.get(key), dict):
                yield from (k for k in node[key] if "{{" not in k)
        if not facts_only and isinstance(node.get("loop_control"), dict) and "loop_var" in node["loop_control"]:
            yield node["loop_control"]["loop_var"]
        for v in node.values():
            yield from _sets(v, facts_only)
    elif isinstance(node, list):
        for v in node:
            yield from _sets(v, facts_only)


def _role(role):
    """(names the role reads, names it sets itself, facts it registers) from its tasks, vars, defaults and
    templates."""
    base = ROLES / role
    reads, sets, facts = set(), set(), set()
    for path in sorted((base / "tasks").glob("*.yml")) + sorted((base / "handlers").glob("*.yml")):
        data = yaml.safe_load(path.read_text())
        reads |= set(_reads(data))
        sets |= set(_sets(data))
        facts |= set(_sets(data, facts_only=True))
    for sub in ("vars", "defaults"):
        data = yaml.safe_load((base / sub / "main.yml").read_text()) if (base / sub / "main.yml").is_file() else None
        reads |= set(_reads(data or {}))
        if sub == "vars":
            sets |= set(data or {})
            if data and "/meta/argument_specs.yml" in (base / sub / "main.yml").read_text():
                reads |= set(rolespecs.role_options()[role])  # it hands all its inputs on (the addons role)
    templates = [] if role in OWN_CONTEXT_TEMPLATES else sorted((base / "templates").glob("*.j2"))
    for path in templates:
        reads |= jinja2.meta.find_undeclared_variables(_ENV.parse(path.read_text()))
    return reads, sets, facts


ALL_ROLES = sorted(p.name for p in ROLES.iterdir() if (p / "tasks").is_dir())
_SEEN = {role: _role(role) for role in ALL_ROLES}
# facts a role registers for another (prereq_state for raspberrypi, k3s_plan for k3s_server/k3s_agent): a
# hand-over inside the play, not an input
HANDED_OVER = {name for _, _, facts in _SEEN.values() for name in facts}


def test_every_role_has_a_spec():
    assert ALL_ROLES and sorted(rolespecs.role_options()) == ALL_ROLES


@pytest.mark.parametrize("role", ALL_ROLES)
def test_every_variable_a_role_reads_from_outside_has_a_spec_and_every_spec_is_read(role):
    reads, sets, _ = _SEEN[role]
    declared = set(rolespecs.role_options()[role])
    inputs = reads - sets - ANSIBLE_VARS - HANDED_OVER
    assert sorted(inputs - declared) == [], f"{role} reads these without declaring them in meta/argument_specs.yml"
    assert sorted(declared - reads) == [], f"{role}'s meta/argument_specs.yml declares inputs it never reads"
    assert not declared & sets, f"{role} declares inputs it also sets itself (vars/main.yml, set_fact, register)"


def test_the_check_finds_an_undeclared_input(tmp_path):
    # the analysis above is not vacuous: a task reading a new variable is seen
    reads = set(_reads([{"name": "x", "ansible.builtin.debug": {"msg": "{{ k3s_new_knob | int }}"},
                         "when": "other_knob and item"}]))
    assert reads == {"k3s_new_knob", "other_knob", "item"}


def test_defaults_files_are_generated_from_the_specs():
    assert rolespecs.stale_defaults() == [], "run: python -m edgeclu.rolespecs --write"
    for role in ALL_ROLES:
        data = yaml.safe_load((ROLES / role / "defaults/main.yml").read_text()) or {}
        assert data == rolespecs.role_defaults(role)


def test_a_stale_defaults_file_is_named(tmp_path):
    role = tmp_path / "r"
    (role / "meta").mkdir(parents=True)
    (role / "defaults").mkdir()
    (role / "meta/argument_specs.yml").write_text(
        "argument_specs:\n  main:\n    options:\n      r_timeout: {type: int, default: 5}\n      r_name: {type: str}\n")
    (role / "defaults/main.yml").write_text("r_timeout: 4\n")
    assert rolespecs.stale_defaults(tmp_path) == [role / "defaults/main.yml"]
    (role / "defaults/main.yml").write_text(rolespecs.defaults_text("r", tmp_path))
    assert rolespecs.stale_defaults(tmp_path) == []
    assert yaml.safe_load((role / "defaults/main.yml").read_text()) == {"r_timeout": 5}


def test_two_roles_defining_one_input_differently_are_refused(tmp_path):
    for role, default in (("a", 5), ("b", 6)):
        (tmp_path / role / "meta").mkdir(parents=True)
        (tmp_path / role / "meta/argument_specs.yml").write_text(
            f"argument_specs:\n  main:\n    options:\n      shared: {{type: int, default: {default}}}\n")
    with pytest.raises(EdgecluError, match="roles 'a' and 'b' define input 'shared' differently"):
        rolespecs.options(tmp_path)


# -- the inventory check and the specs agree -------------------------------------------------------------
def test_every_role_input_is_an_inventory_key_with_the_roles_default():
    opts = rolespecs.options()
    assert set(opts) <= set(inventory.ALL_FIELDS)
    # the inventory knows nothing else but Ansible's connection variables and edgeclu's own settings
    assert set(inventory.ALL_FIELDS) - set(opts) == set(inventory.CONNECTION_FIELDS) | set(inventory.EDGECLU_FIELDS)
    assert not set(opts) & (set(inventory.CONNECTION_FIELDS) | set(inventory.EDGECLU_FIELDS))
    assert set(inventory.REFINED) <= set(opts) and set(inventory.HOST_INPUTS) <= set(opts)
    for name, spec in opts.items():
        assert inventory.DEFAULTS.get(name) == spec.get("default"), name
    assert set(inventory.DEFAULTS) - set(opts) == set(inventory.EDGECLU_DEFAULTS)


PROBES = [0, 1, 70000, -1, True, False, "", "x", "300", "yes", 1.5, [], ["a"], [1], {}, {"a": 1}, None]


@pytest.mark.parametrize("name", sorted(rolespecs.options()))
def test_the_inventory_takes_no_value_ansible_refuses_and_takes_the_default(name):
    spec = rolespecs.options()[name]
    check = inventory.ALL_FIELDS[name]
    options = {name: {k: v for k, v in spec.items() if k not in ("required", "default")}}

    def ansible_takes(value):
        return not ArgumentSpecValidator(options).validate({name: value}).error_messages

    if "default" in spec:
        assert ansible_takes(spec["default"]) and check(spec["default"]) is None, name
    for value in PROBES:
        if value is not None and not ansible_takes(value):
            assert check(value) is not None, f"{name}: inventory check takes {value!r}, the role's spec does not"
    for choice in spec.get("choices", []):
        assert check(choice) is None


def test_a_role_knob_is_legal_in_the_inventory_and_checked_by_its_spec():
    base = "k3s_cluster:\n  children: {server: {hosts: {s1: {}}}}\n  vars: {k3s_version: v1.31.4+k3s1, %s}\n"
    inv = inventory.parse_inventory(base % "k3s_start_timeout: 600, rpi_reboot_timeout: 900", "inv.yml")
    assert inv.vars["k3s_start_timeout"] == 600 and inv.vars["k3s_ready_timeout"] == 300
    with pytest.raises(InventoryError) as e:
        inventory.parse_inventory(base % "k3s_start_timeout: soon, agent_python: [x]", "inv.yml")
    assert e.value.problems == ["inv.yml: cluster vars: field 'k3s_start_timeout': must be a whole number",
                                "inv.yml: cluster vars: field 'agent_python': must be a non-empty string"]
    with pytest.raises(InventoryError) as e:  # a role knob is the cluster's, not a host's
        inventory.parse_inventory("k3s_cluster:\n  children: {server: {hosts: {s1: {k3s_start_timeout: 1}}}}\n"
                                  "  vars: {k3s_version: v1.31.4+k3s1}\n", "inv.yml")
    assert e.value.problems == ["inv.yml: host 's1': field 'k3s_start_timeout': unknown key"]


def test_ansible_validates_a_role_input_from_its_spec_before_the_role_runs(tmp_path):
    # the validate_argument_spec task Ansible prepends to the role refuses a bad value: nothing else runs
    play = f"- hosts: localhost\n  gather_facts: false\n  roles: [{{role: {ROLES}/raspberrypi}}]\n"
    proc = ansible_playbook(tmp_path, play, "all:\n  hosts: {localhost: {ansible_connection: local}}\n",
                            "-e", "rpi_reboot_timeout=[1]")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Validation of arguments failed" in proc.stdout and "rpi_reboot_timeout" in proc.stdout, proc.stdout
    assert "Look for a Raspberry Pi kernel command line" not in proc.stdout
