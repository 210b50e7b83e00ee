"""Inventory validation: the example passes; each broken inventory fails with one line naming the field."""

import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeclu.errors import InventoryError
from edgeclu.inventory import load_inventory, parse_inventory, render_inventory
from edgeclu.lifecycle.invfile import edit_hosts

ROOT = Path(__file__).resolve().parents[2]

GOOD = """
k3s_cluster:
  children:
    server:
      hosts:
        s1: {ansible_host: 10.0.0.1}
    agent:
      hosts:
        a1: {ansible_host: 10.0.0.2}
        a2: {ansible_host: 10.0.0.3, ansible_user: admin, ansible_port: 2222}
  vars:
    k3s_version: v1.31.4+k3s1
    ansible_user: pi
"""


def test_example_inventory_is_valid():
    inv = load_inventory(ROOT / "inventory.example.yml")
    assert [h.name for h in inv.servers] == ["pi-master"]
    assert [h.name for h in inv.agents] == ["pi-worker1", "pi-worker2", "nuc1"]
    assert inv.host("nuc1").user == "admin" and inv.host("pi-worker1").user == "pi"
    assert inv.api_endpoint == "192.168.1.10"


def test_good_inventory_models():
    inv = parse_inventory(GOOD, "inv.yml")
    a2 = inv.host("a2")
    assert (a2.role, a2.address, a2.user, a2.port) == ("agent", "10.0.0.3", "admin", 2222)
    assert inv.host("s1").port == 22 and inv.host("s1").user == "pi"
    assert inv.vars["ingress"] == "traefik"  # default applied
    assert inv.api_endpoint == "10.0.0.1"  # first server when not set


def _with(patch: str) -> str:
    """GOOD with a dotted path set to a YAML value, e.g. 'vars.k3s_version=1.2'."""
    data = yaml.safe_load(GOOD)
    path, _, value = patch.partition("=")
    node = data["k3s_cluster"]
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[k]
    if value == "<delete>":
        del node[keys[-1]]
    else:
        node[keys[-1]] = yaml.safe_load(value)
    return yaml.safe_dump(data)


BAD = [
    # (inventory text, expected one-line message)
    ("just a string", "inv.yml: top level: field 'k3s_cluster': missing"),
    (_with("children.server=<delete>"), "inv.yml: k3s_cluster.children: field 'server': missing"),
    (_with("children.server.hosts={}"), "inv.yml: group 'server': field 'hosts': empty"),
    (_with("vars.k3s_version=<delete>"), "inv.yml: cluster vars: field 'k3s_version': missing"),
    (_with("vars.k3s_version=1.31"), "inv.yml: cluster vars: field 'k3s_version': 1.31 is not a k3s version"),
    (_with("vars.k3s_version=v1.31.4"), "inv.yml: cluster vars: field 'k3s_version': 'v1.31.4' is not a k3s"),
    (_with('vars.k3s_version="v1.31.4+k3s1\\n"'), "inv.yml: cluster vars: field 'k3s_version': 'v1.31.4+k3s1\\n' "
                                                   "is not a k3s"),
    (_with("vars.k3s_verison=v1.31.4+k3s1"),
     "inv.yml: cluster vars: field 'k3s_verison': unknown key (did you mean 'k3s_version'?)"),
    (_with("vars.ingress=haproxy"), "inv.yml: cluster vars: field 'ingress': 'haproxy' is not one of"),
    (_with("vars.api_port=70000"), "inv.yml: cluster vars: field 'api_port': must be a port number"),
    (_with("vars.disable_swap=maybe"), "inv.yml: cluster vars: field 'disable_swap': must be true or false"),
    (_with("vars.loadbalancer=metallb"), "inv.yml: cluster vars: field 'metallb_pool': required"),
    (_with("vars.metallb_pool=[10.0.0.300/24]"), "inv.yml: cluster vars: field 'metallb_pool': '10.0.0.300/24'"),
    (_with("children.agent.hosts.a1={ansible_host: 10.0.0.1}"),
     "inv.yml: host 'a1': field 'ansible_host': duplicate address 10.0.0.1 (also on 's1')"),
    (_with("children.agent.hosts.s1={ansible_host: 10.0.0.9}"),
     "inv.yml: host 's1': duplicate hostname (also in group 'server')"),
    (_with("children.agent.hosts.a1={ansible_port: ssh}"),
     "inv.yml: host 'a1': field 'ansible_port': must be a port number"),
    (_with("children.agent.hosts.a1={node_ip: 10.0.0}"), "inv.yml: host 'a1': field 'node_ip': '10.0.0' is not"),
    (_with("children.agent.hosts.a1={colour: blue}"), "inv.yml: host 'a1': field 'colour': unknown key"),
    (_with("children.agent.hosts.Bad_Name={}"), "inv.yml: host 'Bad_Name': hostname must be lowercase"),
    (_with("children.agent.hosts.a1=[1, 2]"), "inv.yml: host 'a1': host vars must be a mapping"),
    (_with("children.workers={hosts: {}}"), "inv.yml: group 'workers': unknown group"),
    (_with("children.agent.vars={ansible_user: 7}"),
     "inv.yml: group 'agent' vars: field 'ansible_user': 7 is not a user name"),
    ("k3s_cluster:\n  children:\n    server:\n      hosts:\n        s1: {}\n        s1: {}\n",
     "inv.yml:6: group 'server': duplicate key 's1' (first on line 5)"),
    ("k3s_cluster: [unclosed", "inv.yml:2: k3s_cluster: invalid YAML"),
]


@pytest.mark.parametrize(("text", "expected"), BAD, ids=[b[1][9:60] for b in BAD])
def test_bad_inventory_names_file_host_and_field(text, expected):
    with pytest.raises(InventoryError) as exc:
        parse_inventory(text, "inv.yml")
    lines = exc.value.problems
    assert any(line.startswith(expected) for line in lines), lines
    assert all("\n" not in line for line in lines)


def test_all_problems_are_reported_at_once():
    text = _with("vars.ingress=haproxy")
    text = yaml.safe_dump({**yaml.safe_load(text)})
    data = yaml.safe_load(text)
    data["k3s_cluster"]["vars"]["api_port"] = "x"
    with pytest.raises(InventoryError) as exc:
        parse_inventory(yaml.safe_dump(data), "inv.yml")
    assert len(exc.value.problems) == 2


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(InventoryError, match=r"nope\.yml: cannot read inventory: No such file"):
        load_inventory(tmp_path / "nope.yml")


def test_render_and_edit_round_trip(tmp_path):
    text = render_inventory({"s1": {"ansible_host": "10.0.0.1"}}, {}, {"k3s_version": "v1.30.2+k3s2"})
    path = tmp_path / "inv.yml"
    path.write_text(text)
    assert [h.name for h in load_inventory(path).hosts] == ["s1"]
    path.write_text(edit_hosts(path, add=("a9", "agent", {"ansible_host": "10.0.0.9"})))
    inv = load_inventory(path)
    assert [(h.name, h.role) for h in inv.hosts] == [("s1", "server"), ("a9", "agent")]
    path.write_text(edit_hosts(path, remove="a9"))
    assert [h.name for h in load_inventory(path).hosts] == ["s1"]
    with pytest.raises(InventoryError, match="duplicate address"):
        edit_hosts(path, add=("a8", "agent", {"ansible_host": "10.0.0.1"}))


# -- fuzzing: whatever the YAML, the loader returns an Inventory or raises InventoryError ----------
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.text(max_size=12),
                    st.sampled_from(["v1.31.4+k3s1", "10.0.0.1", "server", "agent", "traefik"]))
keys = st.one_of(st.text(max_size=10), st.sampled_from(
    ["k3s_cluster", "children", "server", "agent", "hosts", "vars", "ansible_host", "k3s_version",
     "ansible_port", "metallb_pool", "node_ip", "tls_san", "storage"]))
trees = st.recursive(scalars, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                     st.dictionaries(keys, kids, max_size=4)), max_leaves=25)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=trees)
def test_fuzz_structures_never_crash(tree):
    text = yaml.safe_dump({"k3s_cluster": tree} if isinstance(tree, dict) else tree)
    try:
        inv = parse_inventory(text, "fuzz.yml")
    except InventoryError as e:
        assert e.problems and all(p.startswith("fuzz.yml") for p in e.problems)
    else:
        assert inv.servers


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
def test_fuzz_raw_text_never_crashes(text):
    try:
        parse_inventory(text, "raw.yml")
    except InventoryError as e:
        assert all(p.startswith("raw.yml") for p in e.problems)


def test_cli_check_exit_codes(tmp_path):
    from typer.testing import CliRunner

    from edgeclu.cli import app

    ok = CliRunner().invoke(app, ["inventory", "check", str(ROOT / "inventory.example.yml")])
    assert ok.exit_code == 0 and "1 server(s), 3 agent(s)" in ok.stderr
    bad = tmp_path / "bad.yml"
    bad.write_text(textwrap.dedent(_with("vars.k3s_version=latest")))
    r = CliRunner().invoke(app, ["inventory", "check", str(bad)])
    assert r.exit_code == 2
    assert r.stderr.strip() == (f"error: {bad}: cluster vars: field 'k3s_version': "
                                "'latest' is not a k3s version like v1.31.4+k3s1")
    assert "Traceback" not in r.output


# -- k3s from a mirror is authenticated by a hash the controller holds (issue 9, point 5) ----
PIN = "a" * 64


@pytest.mark.parametrize("patch, ok", [
    ("vars.k3s_mirror='http://10.0.0.5/k3s'", False),  # plain HTTP, nothing pinned
    (f"vars.k3s_mirror='http://10.0.0.5/k3s'|vars.k3s_sha256={{'v1.31.4+k3s1': {{'amd64': '{PIN}'}}}}", True),
    (f"vars.k3s_mirror='http://10.0.0.5/k3s'|vars.k3s_sha256={{'v1.31.5+k3s1': {{'amd64': '{PIN}'}}}}", False),
    ("vars.k3s_mirror='https://mirror.lan/k3s'", True),  # the controller fetches the checksum file over https
    ("vars.k3s_airgap_dir=/srv/k3s", True),
    (f"vars.k3s_mirror='http://10.0.0.5/k3s'|vars.k3s_sha256={{'v1.31.4+k3s1': {{'amd64': '{PIN}', "
     f"'k3s-airgap-images-amd64.tar.zst': '{PIN}', 'k3s-airgap-images-arm.tar.gz': '{PIN}'}}}}"
     "|vars.k3s_airgap_images=true", True),
])
def test_an_http_mirror_needs_a_pinned_sha256(patch, ok):
    text = GOOD
    for part in patch.split("|"):
        data = yaml.safe_load(text)
        path, _, value = part.partition("=")
        data["k3s_cluster"]["vars"][path.removeprefix("vars.")] = yaml.safe_load(value)
        text = yaml.safe_dump(data)
    if ok:
        parse_inventory(text, "inv.yml")
        return
    with pytest.raises(InventoryError) as e:
        parse_inventory(text, "inv.yml")
    [line] = e.value.problems
    assert line.startswith("inv.yml: cluster vars: field 'k3s_mirror': http://10.0.0.5/k3s is plain HTTP and "
                           "nothing pins the k3s binary")
    assert "k3s_sha256: {v1.31.4+k3s1: {amd64: <sha256>" in line and "https mirror" in line  # the fix


@pytest.mark.parametrize("pins, message", [
    ("[a]", "must map a k3s version"),
    ("{'1.31': {amd64: x}}", "key '1.31' is not a k3s version"),
    ("{'v1.31.4+k3s1': {x86_64: " + repr(PIN) + "}}", "'x86_64' is not a k3s release arch"),
    ("{'v1.31.4+k3s1': {amd64: ABC}}", "amd64: 'ABC' is not a sha256"),
    # the images archive is pinned by its release file name (k3s-airgap-images-<arch>.tar.zst/.tar.gz/.tar)
    ("{'v1.31.4+k3s1': {k3s-airgap-images-amd64.tar.xz: " + repr(PIN) + "}}",
     "'k3s-airgap-images-amd64.tar.xz' is not a k3s release arch (amd64, arm64, arm) nor an images archive"),
    ("{'v1.31.4+k3s1': {k3s-airgap-images-arm.tar: ABC}}", "k3s-airgap-images-arm.tar: 'ABC' is not a sha256"),
])
def test_bad_pins_are_named(pins, message):
    with pytest.raises(InventoryError) as e:
        parse_inventory(_with(f"vars.k3s_sha256={pins}"), "inv.yml")
    assert any("field 'k3s_sha256'" in p and message in p for p in e.value.problems), e.value.problems
