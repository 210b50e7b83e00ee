"""The converged stamp (edgeclu/stamp.py): what makes a run skip the playbook, what `edgeclu status` reports.

On lab nodes in tests/integration/test_up_lab.py; here: the node command run by /bin/sh on this machine
(the real probe, k3s_node_state, against files under tmp_path), the digests, the drift and the decisions."""

import json
import os
import subprocess

import pytest

from ansible_collections.edgeclu.cluster.plugins.module_utils import node_loader
from edgeclu import stamp
from edgeclu.inventory import load_inventory
from edgeclu.playbook import TaskEvent

INV = """
k3s_cluster:
  children:
    server: {hosts: {s1: {ansible_host: 10.0.0.1}}}
    agent: {hosts: {a1: {ansible_host: 10.0.0.2}, a2: {ansible_host: 10.0.0.3}}}
  vars:
    k3s_version: v1.31.4+k3s1
    token_file: TOKEN
"""


@pytest.fixture()
def setup(tmp_path):
    (tmp_path / "token").write_text("sekrit\n")
    inv_path = tmp_path / "inventory.yml"
    inv_path.write_text(INV.replace("TOKEN", str(tmp_path / "token")))
    tree = tmp_path / "playbooks"
    (tree / "roles").mkdir(parents=True)
    (tree / "roles" / "x.yml").write_text("- debug: msg=x\n")
    return tmp_path, inv_path, tree


def _digests(inv_path, tree):
    inv = load_inventory(inv_path)
    cluster = stamp.cluster_digest(inv, [tree])
    return {h.name: stamp.inputs_digest(cluster, inv, h) for h in inv.hosts}


def test_inputs_digest_changes_with_every_input_and_only_then(setup, monkeypatch):
    tmp_path, inv_path, tree = setup
    base = _digests(inv_path, tree)
    assert len(set(base.values())) == 3  # one per node
    assert _digests(inv_path, tree) == base  # the same inputs, the same digests
    (tree / "__pycache__").mkdir()
    (tree / "__pycache__" / "x.pyc").write_bytes(b"junk")
    assert _digests(inv_path, tree) == base  # byte-code caches are not inputs

    changes = [
        lambda: inv_path.write_text(inv_path.read_text().replace("v1.31.4", "v1.31.5")),  # the inventory
        lambda: (tmp_path / "host_vars").mkdir() or (tmp_path / "host_vars" / "a1.yml").write_text("node_iface: e1\n"),
        lambda: (tmp_path / "token").write_text("other\n"),  # the token
        lambda: (tree / "roles" / "x.yml").write_text("- debug: msg=y\n"),  # edgeclu's playbooks
        lambda: (tree / "roles" / "new.yml").write_text(""),
    ]
    seen = {tuple(base.values())}
    for change in changes:
        change()
        now = tuple(_digests(inv_path, tree).values())
        assert now not in seen
        seen.add(now)


def test_the_token_is_hashed_never_stored(setup):
    _, inv_path, tree = setup
    digests = _digests(inv_path, tree)
    assert all("sekrit" not in d for d in digests.values())
    fed = stamp.node_stdin({"inputs": next(iter(digests.values())), "request": {"paths": ["/x"]}})
    assert b"sekrit" not in fed


@pytest.mark.parametrize("requests, merged", [
    ([], {}),
    ([{"paths": ["/a", "/b"], "services": ["k3s"]}, {"paths": ["/b", "/c"], "services": [], "iface": None}],
     {"paths": ["/a", "/b", "/c"], "services": ["k3s"]}),
    ([{"k3s_bin": "/usr/local/bin/k3s", "globs": ["/m/*.yaml"]}, {"k3s_bin": "/opt/k3s", "modules": ["overlay"]}],
     {"k3s_bin": "/usr/local/bin/k3s", "globs": ["/m/*.yaml"], "modules": ["overlay"]}),
    ([{"python": "/usr/bin/python3", "imports": ["psutil"]}, {"imports": ["psutil"]}],
     {"python": "/usr/bin/python3", "imports": ["psutil"]}),
])
def test_merge_asks_everything_once(requests, merged):
    assert stamp.merge(requests) == merged


def test_the_recorder_keeps_what_each_hosts_probe_asked():
    rec = stamp.Recorder()
    ask = {"paths": ["/etc/rancher/k3s/config.yaml"], "services": ["k3s"]}
    rec(TaskEvent("s1", "Read the node", "ok", action="k3s_node_state", res={"request": ask}))
    rec(TaskEvent("s1", "Read the agent", "ok", action="edgeclu.cluster.k3s_node_state",
                  res={"request": {"services": ["edgeclu-agent.service"]}}))
    rec(TaskEvent("s1", "Write", "changed", action="edgeclu_files", res={"request": {"paths": ["/nope"]}}))
    rec(TaskEvent("a1", "Read the node", "failed", action="k3s_node_state", res={"request": ask}))
    rec(TaskEvent("a1", "Read the node", "ok", action="k3s_node_state", res={"request": "not a dict"}))
    assert rec.request("s1") == {"paths": ["/etc/rancher/k3s/config.yaml"],
                                 "services": ["k3s", "edgeclu-agent.service"]}
    assert rec.request("a1") is None


F = {"exists": True, "isdir": False, "sha1": "a" * 40, "mode": "0600", "owner": "root", "group": "root"}


@pytest.mark.parametrize("now, expected", [
    ({}, []),
    ({"files": {"/c": {**F, "sha1": "b" * 40}}}, ["/c: content changed"]),
    ({"files": {"/c": {**F, "mode": "0644"}}}, ["/c: mode 0600 -> 0644"]),
    ({"files": {"/c": {**F, "owner": "pi"}}}, ["/c: owner root:root -> pi:root"]),
    ({"files": {"/c": {"exists": False}}}, ["/c: is gone"]),
    ({"services": {"k3s": {"active": "inactive", "enabled": "enabled"}}}, ["service k3s: active/enabled -> "
                                                                           "inactive/enabled"]),
    ({"modules": {"overlay": False}}, ["kernel module overlay: loaded -> not loaded"]),
    ({"imports": {"psutil": False}}, ["python module psutil: importable -> not importable"]),
    ({"globs": {"/m/edgeclu-*.yaml": ["/m/edgeclu-b.yaml"]}}, ["/m/edgeclu-*.yaml: +/m/edgeclu-b.yaml, "
                                                               "-/m/edgeclu-a.yaml"]),
    ({"swap": {"active": 1, "fstab": 0}}, ["swap: 0 active, 0 in fstab -> 1 active, 0 in fstab"]),
    ({"k3s_version_output": "k3s version v1.31.5+k3s1 (abc)\ngo version go1.22\n"},
     ["k3s --version: k3s version v1.31.4+k3s1 (abc) -> k3s version v1.31.5+k3s1 (abc)"]),
    ({"default_ipv4": "10.0.0.9"}, ["default address: 10.0.0.1 -> 10.0.0.9"]),
    ({"rpi_cmdline": {"path": "/boot/firmware/cmdline.txt", "content": "x"}}, ["/boot/firmware/cmdline.txt: changed"]),
    # the images archives (sha256_globs: hashed, not sha1'd like the small files)
    ({"sha256": {"/i/k3s-airgap-images-amd64.tar.zst": "d" * 64}},
     ["/i/k3s-airgap-images-amd64.tar.zst: content changed"]),
    ({"sha256": {}}, ["/i/k3s-airgap-images-amd64.tar.zst: removed"]),
    ({"sha256": {"/i/k3s-airgap-images-amd64.tar.zst": "c" * 64, "/i/k3s-airgap-images-arm.tar": "e" * 64}},
     ["/i/k3s-airgap-images-arm.tar: added"]),
])
def test_drift_names_what_changed(now, expected):
    was = {"files": {"/c": F}, "services": {"k3s": {"active": "active", "enabled": "enabled"}},
           "modules": {"overlay": True}, "imports": {"psutil": True},
           "globs": {"/m/edgeclu-*.yaml": ["/m/edgeclu-a.yaml"]},
           "swap": {"active": 0, "fstab": 0}, "k3s_version_output": "k3s version v1.31.4+k3s1 (abc)\n",
           "default_ipv4": "10.0.0.1", "rpi_cmdline": None,
           "sha256": {"/i/k3s-airgap-images-amd64.tar.zst": "c" * 64}}
    assert stamp.drift(was, {**was, **now}) == expected


@pytest.mark.parametrize("answer", ["", "[1]", '{"stamp": [1]}', '{"stamp": {"format": 1}}',
                                    '{"stamp": {"format": 2, "answer": "x"}, "now": [2], "nodes": 3}'])
def test_a_hostile_or_old_answer_is_never_as_left(answer):
    lk = stamp.parse_look(answer, "I")
    assert not lk.as_left and lk.nodes is None


@pytest.mark.parametrize("look, why", [
    (stamp.Look(stamped=True, inputs_same=True), None),
    (stamp.Look(error="timed out"), "n1 could not be looked at (timed out)"),
    (stamp.Look(), "n1 has no stamp yet"),
    (stamp.Look(stamped=True), "n1: the inputs changed since the last run (the inventory, its vars files, a token "
                               "or edgeclu)"),
    (stamp.Look(stamped=True, inputs_same=True, drift=["/c: is gone", "x"]), "n1 is not as the last run left it: "
                                                                            "/c: is gone"),
])
def test_why_a_node_is_not_as_left(look, why):
    assert stamp.why_not_as_left("n1", look) == why


def _run(args, tmp_path, monkeypatch):
    monkeypatch.setattr(stamp, "STAMP", str(tmp_path / "lib" / "converged"))
    proc = subprocess.run(["sh", "-c", node_loader.command("python3")], input=stamp.node_stdin(args),
                          capture_output=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.decode()


def test_the_node_command_stamps_and_replays_what_the_roles_asked(tmp_path, monkeypatch):
    config = tmp_path / "config.yaml"
    config.write_text("node-ip: 10.0.0.1\n")
    os.chmod(config, 0o600)
    (tmp_path / "m").mkdir()
    request = {"paths": [str(config)], "globs": [str(tmp_path / "m" / "*.yaml")]}
    assert json.loads(_run({"inputs": "I", "request": request}, tmp_path, monkeypatch)) == {"written": True}
    assert oct((tmp_path / "lib" / "converged").stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "lib").stat().st_mode & 0o777) == "0o700"

    assert stamp.parse_look(_run({}, tmp_path, monkeypatch), "I").as_left
    assert not stamp.parse_look(_run({}, tmp_path, monkeypatch), "J").inputs_same  # another inventory

    config.write_text("node-ip: 10.0.0.2\n")
    os.chmod(config, 0o644)
    (tmp_path / "m" / "edgeclu-x.yaml").write_text("")
    lk = stamp.parse_look(_run({}, tmp_path, monkeypatch), "I")
    assert lk.drift == [f"{config}: content changed", f"{config}: mode 0600 -> 0644",
                        f"{tmp_path}/m/*.yaml: +{tmp_path}/m/edgeclu-x.yaml"]
    config.unlink()
    assert stamp.parse_look(_run({}, tmp_path, monkeypatch), "I").drift[0] == f"{config}: is gone"

    (tmp_path / "lib" / "converged").unlink()  # never stamped
    assert stamp.parse_look(_run({}, tmp_path, monkeypatch), "I") == stamp.Look()


def test_the_replay_reuses_the_costly_answers_of_the_very_same_files_only(tmp_path, monkeypatch):
    # `k3s --version` (a k3s stand-in that counts its starts) and an images archive's sha256 are taken
    # from the stamp while the file is the same one; a replaced binary or a rewritten archive is asked again
    count = tmp_path / "starts"
    k3s = tmp_path / "k3s"
    k3s.write_text(f"#!/bin/sh\necho x >> {count}\necho 'k3s version v1.31.4+k3s1 (abc)'\n")
    k3s.chmod(0o755)
    images = tmp_path / "images"
    images.mkdir()
    archive = images / "k3s-airgap-images-amd64.tar.zst"
    archive.write_bytes(b"one")
    request = {"k3s_bin": str(k3s), "sha256_globs": [str(images / "k3s-airgap-images-*")]}
    _run({"inputs": "I", "request": request}, tmp_path, monkeypatch)
    assert count.read_text().count("x") == 1
    for _ in range(2):
        assert stamp.parse_look(_run({}, tmp_path, monkeypatch), "I").as_left
    assert count.read_text().count("x") == 1  # not started again
    _run({"inputs": "I", "request": request}, tmp_path, monkeypatch)  # a new stamp (up --full): from the old one
    assert count.read_text().count("x") == 1
    assert stamp.parse_look(_run({}, tmp_path, monkeypatch), "I").as_left

    archive.write_bytes(b"two")  # same size, new content: its mtime/ctime moved
    assert stamp.parse_look(_run({}, tmp_path, monkeypatch), "I").drift == [f"{archive}: content changed"]
    k3s.write_text(k3s.read_text().replace("v1.31.4", "v1.31.5"))
    lk = stamp.parse_look(_run({}, tmp_path, monkeypatch), "I")
    assert any(d.startswith("k3s --version: k3s version v1.31.4+k3s1 (abc) -> k3s version v1.31.5") for d in lk.drift)
    assert count.read_text().count("x") >= 2
    starts = count.read_text().count("x")
    _run({"inputs": "I", "request": request}, tmp_path, monkeypatch)  # stamping the replaced binary asks it
    assert count.read_text().count("x") == starts + 1
    assert stamp.parse_look(_run({}, tmp_path, monkeypatch), "I").as_left
