"""The inventory's ``registries`` setting: checks (one line naming the field) and registries.yaml.

The format is k3s's (docs.k3s.io/installation/private-registry: ``mirrors.<registry>.endpoint`` /
``rewrite``, ``configs.<host>.auth`` {username, password | auth | token} and ``.tls`` {ca_file,
cert_file, key_file, insecure_skip_verify}; the ``"*"`` wildcard); the embedded mirror's
(docs.k3s.io/installation/registry-mirror: the server's ``embedded-registry: true`` plus the registries
listed under ``mirrors``, an entry with no endpoint being enough). The stand-in parses what is rendered
here as k3s (yaml.v2 into wharfie's Registry) would.
"""

from __future__ import annotations

import pytest
import yaml

from ansible_collections.edgeclu.cluster.plugins.module_utils import registries
from edgeclu.errors import InventoryError
from edgeclu.inventory import check_registries, parse_inventory
from tests.k3s_standin.standin.node_files import parse_registries

SECRET = "s3cr3t-Pa55"
GOOD = {
    "mirrors": {"docker.io": {"endpoint": ["https://mirror.lan:5000"], "rewrite": {"^rancher/(.*)": "k3s/$1"}},
                "registry.k8s.io": None,
                "*": {"endpoint": ["http://cache.lan"]}},
    "configs": {"mirror.lan:5000": {"auth_file": "/ctl/auth.yml", "tls": {"ca_file": "/etc/ssl/lan.pem"}},
                "cache.lan": {"tls": {"insecure_skip_verify": True}}},
}


def _reader(files):
    def read(path):
        if path not in files:
            raise registries.RegistriesError(f"{path}: cannot read the registry auth file: No such file")
        return files[path]
    return read


@pytest.mark.parametrize("value, message", [
    ([], "must be a mapping with mirrors and configs"),
    ({"mirror": {}}, "unknown key 'mirror' (expected mirrors, configs)"),
    ({"mirrors": []}, "mirrors: must be a mapping of registry names"),
    ({"mirrors": {"docker io": None}}, "mirrors: 'docker io' is not a registry (host[:port], or \"*\")"),
    ({"mirrors": {"docker.io": {"endpoints": []}}}, "mirrors.docker.io: unknown key 'endpoints'"),
    ({"mirrors": {"docker.io": {"endpoint": "https://m"}}}, "mirrors.docker.io.endpoint: must be a list of URLs"),
    ({"mirrors": {"docker.io": {"endpoint": ["ftp://m"]}}}, "mirrors.docker.io.endpoint[0]: 'ftp://m' is not an"),
    ({"mirrors": {"docker.io": {"endpoint": ["https://u:p@m.lan"]}}},
     "mirrors.docker.io.endpoint[0]: has credentials in the URL; put them in the registry's auth_file"),
    ({"mirrors": {"docker.io": {"rewrite": {"(": "x"}}}}, "mirrors.docker.io.rewrite: '(' is not a regular"),
    ({"mirrors": {"docker.io": {"rewrite": {"^(?!rancher)(.*)": "x/$1"}}}},
     "uses look-around or a back-reference, which k3s (RE2) lacks"),
    ({"configs": {"m.lan": {"auth": {"username": "u", "password": SECRET}}}},
     "configs.m.lan.auth: credentials never go in the inventory; name a file on the controller in auth_file"),
    ({"configs": {"m.lan": {"auth_file": ""}}}, "configs.m.lan.auth_file: must be a path on the controller"),
    ({"configs": {"m.lan": {"tls": {"ca": "/x"}}}}, "configs.m.lan.tls: unknown key 'ca'"),
    ({"configs": {"m.lan": {"tls": {"ca_file": "ca.pem"}}}}, "configs.m.lan.tls.ca_file: must be an absolute path"),
    ({"configs": {"m.lan": {"tls": {"insecure_skip_verify": "yes"}}}},
     "configs.m.lan.tls.insecure_skip_verify: must be true or false"),
    ({"configs": {"m.lan": {"tls": {"cert_file": "/c.pem"}}}}, "configs.m.lan.tls: cert_file and key_file go together"),
])
def test_problem_names_the_field(value, message):
    assert message in (registries.problem(value) or "")


def test_a_good_setting_has_no_problem_and_its_auth_files_are_listed():
    assert registries.problem(GOOD) is None
    assert registries.problem({}) is None
    assert registries.auth_files(GOOD) == {"mirror.lan:5000": "/ctl/auth.yml"}


@pytest.mark.parametrize("text, message", [
    ("username: u\n", "give username and password, or auth, or token (it has username)"),
    ("username: u\npassword: p\ntoken: t\n", "give username and password, or auth, or token"),
    ("user: u\n", "unknown key 'user'"),
    ("- u\n", "must be a mapping"),
    ("username: u\npassword: ''\n", "field 'password' must be a non-empty one-line string"),
    ("username: u\npassword: 123\n", "field 'password' must be a non-empty one-line string"),
    ("{x", "not YAML"),
])
def test_auth_file_problems_name_the_file_and_field_never_the_value(text, message):
    with pytest.raises(registries.RegistriesError) as e:
        registries.parse_auth(text.replace("u\n", f"{SECRET}\n", 1) if "123" not in text else text, "/ctl/auth.yml")
    assert str(e.value).startswith("/ctl/auth.yml: ") and message in str(e.value)
    assert SECRET not in str(e.value)


@pytest.mark.parametrize("text, auth", [
    (f"username: robot\npassword: {SECRET}\n", {"username": "robot", "password": SECRET}),
    (f"auth: {SECRET}\n", {"auth": SECRET}),
    (f'{{"token": "{SECRET}"}}', {"token": SECRET}),  # JSON is YAML
])
def test_render_puts_the_auth_file_in_the_config(text, auth):
    data = registries.render(GOOD, read=_reader({"/ctl/auth.yml": text}))
    assert data == {
        "mirrors": {"docker.io": {"endpoint": ["https://mirror.lan:5000"], "rewrite": {"^rancher/(.*)": "k3s/$1"}},
                    "registry.k8s.io": None, "*": {"endpoint": ["http://cache.lan"]}},
        "configs": {"mirror.lan:5000": {"auth": auth, "tls": {"ca_file": "/etc/ssl/lan.pem"}},
                    "cache.lan": {"tls": {"insecure_skip_verify": True}}},
    }


@pytest.mark.parametrize("value, embedded, mirrors", [
    (None, False, None),  # not managed: the file is left alone
    (None, True, {"docker.io": None, "registry.k8s.io": None}),  # the docs' example
    ({"mirrors": {"ghcr.io": None}}, True, {"ghcr.io": None}),
    ({}, False, {}),  # managed and empty
])
def test_embedded_registry_lists_the_mirrored_registries(value, embedded, mirrors):
    data = registries.render(value, embedded)
    assert (None if data is None else data.get("mirrors", {})) == mirrors


def test_render_text_is_stable_and_parses_as_k3s_reads_it():
    read = _reader({"/ctl/auth.yml": f"username: robot\npassword: {SECRET}\n"})
    text = registries.render_text(GOOD, read=read)
    assert text == registries.render_text(GOOD, read=read)
    assert text.startswith("# Managed by edgeclu") and yaml.safe_load(text)["configs"]["mirror.lan:5000"]["auth"][
        "password"] == SECRET
    seen = parse_registries(text)  # the stand-in, checking types as k3s's yaml.v2 into wharfie's Registry
    assert seen["mirrors"]["docker.io"] == {"endpoints": ["https://mirror.lan:5000"], "rewrites": ["^rancher/(.*)"]}
    assert seen["configs"]["mirror.lan:5000"] == {"auth": ["password", "username"], "tls": ["ca_file"]}
    assert SECRET not in repr(seen)


def test_a_missing_auth_file_stops_the_run_naming_the_file_and_registry(tmp_path):
    value = {"configs": {"m.lan": {"auth_file": str(tmp_path / "nope.yml")}}}
    with pytest.raises(InventoryError) as e:
        check_registries("inv.yml", {"registries": value})
    assert e.value.exit_code == 2
    assert e.value.problems == [f"inv.yml: cluster vars: field 'registries': {tmp_path}/nope.yml: cannot read the "
                                "registry auth file: No such file or directory"]
    (tmp_path / "nope.yml").write_text(f"username: x\npassword: {SECRET}\ntoken: y\n")
    with pytest.raises(InventoryError) as e:
        check_registries("inv.yml", {"registries": value})
    assert f"{tmp_path}/nope.yml (registries.configs.m.lan.auth_file): give username" in e.value.problems[0]
    assert SECRET not in e.value.problems[0]


def test_inventory_checks_registries_one_line_naming_the_field():
    text = yaml.safe_dump({"k3s_cluster": {"children": {"server": {"hosts": {"s1": None}}}, "vars": {
        "k3s_version": "v1.31.4+k3s1", "embedded_registry": "yes",
        "registries": {"mirrors": {"docker.io": {"endpoint": ["mirror.lan"]}}}}}})
    with pytest.raises(InventoryError) as e:
        parse_inventory(text, "inv.yml")
    assert e.value.problems == [
        "inv.yml: cluster vars: field 'embedded_registry': must be true or false",
        "inv.yml: cluster vars: field 'registries': mirrors.docker.io.endpoint[0]: 'mirror.lan' is not an "
        "http(s):// URL",
    ]
