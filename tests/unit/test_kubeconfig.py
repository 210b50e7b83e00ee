"""edgeclu.kubeconfig: rewrite k3s.yaml by editing the document, merge it, write it 0600 with a backup."""

import copy
import os
import stat
import time

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from edgeclu import kubeconfig as kc
from edgeclu.errors import EdgecluError

# what k3s writes (the certificate data is made up; "default" appears inside it on purpose)
K3S_YAML = """\
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: ZGVmYXVsdCBodHRwczovLzEyNy4wLjAuMTo2NDQz
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: default
  user:
    client-certificate-data: Y2xpZW50IGRlZmF1bHQ=
    client-key-data: U0VDUkVUS0VZIGRlZmF1bHQ=
"""

OTHER = {
    "apiVersion": "v1", "kind": "Config", "preferences": {"colors": True},
    "clusters": [{"name": "work", "cluster": {"server": "https://10.0.0.1:6443"}}],
    "users": [{"name": "work-admin", "user": {"token": "t0ken"}}],
    "contexts": [{"name": "work", "context": {"cluster": "work", "user": "work-admin"}}],
    "current-context": "work",
}


def k3s():
    return kc.parse(K3S_YAML, "k3s.yaml")


@pytest.mark.parametrize("endpoint, port, url", [
    ("192.168.1.10", 6443, "https://192.168.1.10:6443"),
    ("k3s.home.arpa", 443, "https://k3s.home.arpa:443"),
    ("fd00::10", 6443, "https://[fd00::10]:6443"),
])
def test_api_url(endpoint, port, url):
    assert kc.api_url(endpoint, port) == url


def test_rewrite_edits_names_and_server_only():
    src = k3s()
    before = copy.deepcopy(src)
    out = kc.rewrite(src, name="homelab", server="https://192.168.1.10:6443")
    assert src == before  # input untouched
    assert out == {
        "apiVersion": "v1",
        "clusters": [{"cluster": {"certificate-authority-data": "ZGVmYXVsdCBodHRwczovLzEyNy4wLjAuMTo2NDQz",
                                  "server": "https://192.168.1.10:6443"}, "name": "homelab"}],
        "contexts": [{"context": {"cluster": "homelab", "user": "homelab"}, "name": "homelab"}],
        "current-context": "homelab",
        "kind": "Config",
        "preferences": {},
        "users": [{"name": "homelab", "user": {"client-certificate-data": "Y2xpZW50IGRlZmF1bHQ=",
                                              "client-key-data": "U0VDUkVUS0VZIGRlZmF1bHQ="}}],
    }


def test_rewrite_follows_structure_not_text():
    # a cluster whose name is not "default" and a user named differently still get renamed, and a
    # "default" or "127.0.0.1" elsewhere in the document is left alone
    doc = k3s()
    doc["clusters"][0]["name"] = "k3s"
    doc["users"][0]["name"] = "admin@k3s"
    doc["extensions"] = [{"name": "default", "extension": {"note": "https://127.0.0.1:6443"}}]
    out = kc.rewrite(doc, name="lab", server="https://10.77.0.11:6443")
    assert [out[k][0]["name"] for k in ("clusters", "users", "contexts")] == ["lab", "lab", "lab"]
    assert out["extensions"] == [{"name": "default", "extension": {"note": "https://127.0.0.1:6443"}}]


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["clusters"].append(copy.deepcopy(d["clusters"][0])), "found 2 clusters, 1 users, 1 contexts"),
    (lambda d: d.pop("users"), "found 1 clusters, 0 users, 1 contexts"),
    (lambda d: d["contexts"][0].pop("context"), "has no body"),
])
def test_rewrite_refuses_unexpected_shapes(mutate, message):
    doc = k3s()
    mutate(doc)
    with pytest.raises(EdgecluError, match=message):
        kc.rewrite(doc, name="x", server="https://h:1")


@pytest.mark.parametrize("text, message", [
    ("client-key-data: SECRETKEY\nclusters: [a\n", "k3s.yaml: not a valid kubeconfig: invalid YAML \\(line 3\\)"),
    ("client-key-data: SECRETKEY\nkind: Pod\n", "k3s.yaml: not a kubeconfig"),
    ("- client-key-data: SECRETKEY\n", "k3s.yaml: not a kubeconfig"),
    ("client-key-data: SECRETKEY\nclusters: {a: 1}\n", "'clusters' must be a list of named entries"),
])
def test_parse_errors_name_the_file_never_the_content(text, message):
    with pytest.raises(EdgecluError, match=message) as e:
        kc.parse(text, "k3s.yaml")
    assert "SECRETKEY" not in str(e.value)


def test_merge_into_nothing_is_the_new_config():
    new = kc.rewrite(k3s(), name="homelab", server="https://h:6443")
    assert kc.merge(None, new) == new


def test_merge_keeps_other_entries_and_replaces_same_named_ones_in_place():
    existing = copy.deepcopy(OTHER)
    existing["clusters"].append({"name": "homelab", "cluster": {"server": "https://old:6443"}})
    existing["clusters"].append({"name": "zzz", "cluster": {"server": "https://z:6443"}})
    new = kc.rewrite(k3s(), name="homelab", server="https://new:6443")
    out = kc.merge(existing, new)
    assert [c["name"] for c in out["clusters"]] == ["work", "homelab", "zzz"]
    assert out["clusters"][1] == new["clusters"][0]
    assert [u["name"] for u in out["users"]] == ["work-admin", "homelab"]
    assert [c["name"] for c in out["contexts"]] == ["work", "homelab"]
    assert out["users"][0] == OTHER["users"][0] and out["contexts"][0] == OTHER["contexts"][0]
    assert out["preferences"] == {"colors": True}
    assert out["current-context"] == "homelab"
    assert kc.merge(existing, new, make_current=False)["current-context"] == "work"
    assert kc.merge(out, new) == out  # idempotent


names = st.lists(st.sampled_from(["a", "b", "homelab", "prod", "x-1"]), unique=True, max_size=5)


@given(clusters=names, users=names, contexts=names)
def test_merge_property_others_untouched_new_present_once(clusters, users, contexts):
    existing = {"apiVersion": "v1", "kind": "Config",
                "clusters": [{"name": n, "cluster": {"server": f"https://{n}"}} for n in clusters],
                "users": [{"name": n, "user": {"token": n}} for n in users],
                "contexts": [{"name": n, "context": {"cluster": n, "user": n}} for n in contexts]}
    new = kc.rewrite(k3s(), name="homelab", server="https://new:6443")
    out = kc.merge(existing, new)
    for key in ("clusters", "users", "contexts"):
        assert [e for e in out[key] if e["name"] != "homelab"] == \
               [e for e in existing[key] if e["name"] != "homelab"]
        assert [e for e in out[key] if e["name"] == "homelab"] == new[key]


@pytest.mark.parametrize("value, expected", [
    (None, "HOME/.kube/config"),
    ("", "HOME/.kube/config"),
    ("/a/one", "/a/one"),
    (f"{os.pathsep}/a/one{os.pathsep}/b/two", "/a/one"),
])
def test_target_path(tmp_path, value, expected):
    env = {} if value is None else {"KUBECONFIG": value}
    assert kc.target_path(env, home=tmp_path) == type(tmp_path)(expected.replace("HOME", str(tmp_path)))


def mode(p):
    return stat.S_IMODE(p.stat().st_mode)


def test_install_new_file_is_0600_without_backup(tmp_path):
    path = tmp_path / "nested" / ".kube" / "config"
    new = kc.rewrite(k3s(), name="homelab", server="https://h:6443")
    r = kc.install(new, path=path)
    assert r == kc.Installed(path, None, True, "homelab")
    assert mode(path) == 0o600
    assert yaml.safe_load(path.read_text()) == new
    assert sorted(p.name for p in path.parent.iterdir()) == ["config"]


def test_install_merges_with_a_timestamped_0600_backup_then_is_idempotent(tmp_path):
    path = tmp_path / "config"
    old_text = yaml.safe_dump(OTHER)
    path.write_text(old_text)
    path.chmod(0o644)
    new = kc.rewrite(k3s(), name="homelab", server="https://h:6443")
    r = kc.install(new, path=path, now=1700000000)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(1700000000))
    assert r.changed and r.backup == tmp_path / f"config.bak-{stamp}"
    assert r.backup.read_text() == old_text and mode(r.backup) == 0o600
    assert mode(path) == 0o600
    merged = yaml.safe_load(path.read_text())
    assert [c["name"] for c in merged["contexts"]] == ["work", "homelab"]
    assert merged["users"][0] == OTHER["users"][0]
    # same content again: nothing written, no new backup
    again = kc.install(new, path=path, now=1700000001)
    assert again == kc.Installed(path, None, False, "homelab")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config", f"config.bak-{stamp}"]
    # a second change within the same second does not overwrite the first backup
    other = kc.rewrite(k3s(), name="homelab", server="https://moved:6443")
    third = kc.install(other, path=path, now=1700000000)
    assert third.backup == tmp_path / f"config.bak-{stamp}.1"


def test_install_fixes_a_too_open_mode_even_when_content_is_unchanged(tmp_path):
    path = tmp_path / "config"
    new = kc.rewrite(k3s(), name="homelab", server="https://h:6443")
    kc.install(new, path=path)
    path.chmod(0o644)
    r = kc.install(new, path=path)
    assert r.changed and r.backup is None and mode(path) == 0o600


def test_install_refuses_to_overwrite_a_broken_kubeconfig(tmp_path):
    path = tmp_path / "config"
    path.write_text("clusters: [oops\n")
    with pytest.raises(EdgecluError, match=f"{path}: not a valid kubeconfig"):
        kc.install(kc.rewrite(k3s(), name="h", server="https://h:1"), path=path)
    assert path.read_text() == "clusters: [oops\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config"]


def test_install_uses_kubeconfig_env_first_path(tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    monkeypatch.setenv("KUBECONFIG", f"{first}{os.pathsep}{second}")
    r = kc.install(kc.rewrite(k3s(), name="h", server="https://h:1"))
    assert r.path == first and first.exists() and not second.exists()
