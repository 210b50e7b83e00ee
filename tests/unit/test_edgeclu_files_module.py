"""The edgeclu_files module, run by real ansible-playbook on this machine (connection local) through its
action plugin as a plain script (how the playbooks run it). It writes what it is given (the controller
decides what is stale: module_utils/k3s.py's stale_files), in check mode changes nothing, shows Ansible's
diff with --diff, and never shows a secret, not even masked in the diff or with the task's arguments
displayed."""

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ansible_collections.edgeclu.cluster.plugins.modules import edgeclu_files
from edgeclu.resources import collections_path

SECRET = "K10feedface::server:do-not-print-me"
OLD_SECRET = "K10deadbeef::server:old-one"

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="writes root:root files (CI runs as root)")


def _run(tmp_path: Path, files: list, secrets: dict | None = None, check: bool = False, diff: bool = False
         ) -> tuple[str, dict]:
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "Write", "edgeclu.cluster.edgeclu_files": {"files": files, "secret_contents": "{{ secrets }}"},
         "register": "out", "vars": {"secrets": secrets or {}}},
        {"name": "Show", "ansible.builtin.copy": {"content": "{{ out | to_json }}", "dest": str(tmp_path / "out.json")},
         "check_mode": False, "diff": False}]}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections_path()), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_INVENTORY_UNPARSED_WARNING="False",
               ANSIBLE_DISPLAY_ARGS_TO_STDOUT="True")  # a user's ansible.cfg may say so: the task start shows args
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-c", "local", "-i", "localhost,", "-vvv",
           "-e", f"ansible_python_interpreter={sys.executable}",
           str(tmp_path / "play.yml")] + (["--check"] if check else []) + (["--diff"] if diff else [])
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    return r.stdout + r.stderr, yaml.safe_load((tmp_path / "out.json").read_text())


@needs_root
def test_writes_what_it_is_given_and_check_mode_changes_nothing(tmp_path):
    d = tmp_path / "etc" / "app"
    blob = bytes(range(256)) * 4
    files = [{"path": str(d), "directory": True, "mode": "0700"},
             {"path": str(d / "config.yaml"), "mode": "0600"},
             {"path": str(d / "unit"), "content": "[Unit]\n", "mode": "0644"},
             {"path": str(tmp_path / "new" / "code.zip"), "content_b64": base64.b64encode(blob).decode(),
              "mode": "0644"}]
    secrets = {str(d / "config.yaml"): f"token: {SECRET}\n"}
    log, out = _run(tmp_path, files, secrets)
    assert "edgeclu_node_script" in log  # -vvv shows how it ran: the action's one-line loader
    assert out["changed"] and out["paths"] == [f["path"] for f in files]
    assert (d / "config.yaml").read_text() == f"token: {SECRET}\n" and (d / "unit").read_text() == "[Unit]\n"
    assert (tmp_path / "new" / "code.zip").read_bytes() == blob
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in (d, d / "config.yaml", d / "unit")} == {
        "app": "0o700", "config.yaml": "0o600", "unit": "0o644"}
    assert SECRET not in log

    os.chmod(d / "unit", 0o666)
    (d / "config.yaml").write_text("token: other\n")
    log, out = _run(tmp_path, files[1:3], secrets, check=True)
    assert out["changed"] and out["paths"] == [str(d / "config.yaml"), str(d / "unit")]
    assert out["msg"].startswith("would write")
    assert (d / "config.yaml").read_text() == "token: other\n" and oct((d / "unit").stat().st_mode & 0o777) == "0o666"
    assert SECRET not in log

    _, out = _run(tmp_path, files[1:3], secrets)
    assert (d / "config.yaml").read_text() == f"token: {SECRET}\n"
    assert oct((d / "unit").stat().st_mode & 0o777) == "0o644"
    assert not [p for p in d.iterdir() if p.name.startswith(".edgeclu-")]  # no temporary file left


@needs_root
def test_diff_shows_changes_with_secret_values_masked(tmp_path):
    conf, unit = tmp_path / "config.yaml", tmp_path / "unit"
    conf.write_text(f"node-ip: 10.0.0.1\ntoken: {OLD_SECRET}\n")
    unit.write_text("[Unit]\nDescription=old\n")
    files = [{"path": str(conf), "mode": "0600"},
             {"path": str(unit), "content": "[Unit]\nDescription=new\n", "mode": "0644"},
             {"path": str(tmp_path / "blob"), "content_b64": base64.b64encode(b"\0\1\2").decode(), "mode": "0644"}]
    secrets = {str(conf): f"node-ip: 10.0.0.2\ntoken: {SECRET}\n"}
    log, out = _run(tmp_path, files, secrets, check=True, diff=True)
    assert SECRET not in log + str(out) and OLD_SECRET not in log + str(out)
    assert conf.read_text() == f"node-ip: 10.0.0.1\ntoken: {OLD_SECRET}\n"  # check mode: nothing written
    by_path = {}
    for d in out["diff"]:
        by_path.setdefault(d["before_header"], []).append(d)
    [attrs, text] = by_path[str(conf)]
    assert (attrs["before"]["mode"], attrs["after"]["mode"]) == ("0644", "0600")
    assert text["before"] == "node-ip: 10.0.0.1\ntoken: <secret>\n"
    assert text["after"] == "node-ip: 10.0.0.2\ntoken: <secret, changed>\n"
    assert by_path[str(unit)] == [{"before_header": str(unit), "after_header": str(unit),
                                   "before": "[Unit]\nDescription=old\n", "after": "[Unit]\nDescription=new\n"}]
    assert by_path[str(tmp_path / "blob")][-1].get("src_binary")
    # Ansible's own callback prints it as a unified diff
    assert "-node-ip: 10.0.0.1" in log and "+token: <secret, changed>" in log and "+Description=new" in log


@pytest.mark.parametrize(("before", "after", "want_before", "want_after"), [
    # a changed token: masked on both sides, marked changed; the other lines diff as they are
    ("node-ip: 1\ntoken: aaaa1\n", "node-ip: 2\ntoken: bbbb2\n", "node-ip: 1\ntoken: <secret>\n",
     "node-ip: 2\ntoken: <secret, changed>\n"),
    # the same token: identical masked lines, so no diff line for it
    ("token: aaaa1\nx: 1\n", "token: aaaa1\nx: 2\n", "token: <secret>\nx: 1\n", "token: <secret>\nx: 2\n"),
    # agent.json's quoted key; a new file has no before
    ("", '{\n  "listen": "10.0.0.1",\n  "token": "t0ken-value"\n}\n', "",
     '{\n  "listen": "10.0.0.1",\n  "token": <secret, changed>\n}\n'),
    # registries.yaml: everything nested under auth is masked, a value wrapped onto the next line too
    ("configs:\n  r:\n    auth:\n      username: bob\n      password: pa55word\n",
     "configs:\n  r:\n    auth:\n      username: bob\n      password: a long\n        pass phrase\n",
     "configs:\n  r:\n    auth: <secret>\n      <secret>\n      <secret>\n",
     "configs:\n  r:\n    auth: <secret, changed>\n      <secret>\n      <secret>\n        <secret>\n"),
    # a secret value repeated under another key is masked there too
    ("token: s3cr3t-value\nnote: s3cr3t-value\n", "token: s3cr3t-value\n", "token: <secret>\nnote: <secret>\n",
     "token: <secret>\n"),
])
def test_mask_pair(before, after, want_before, want_after):
    assert edgeclu_files.mask_pair(before, after) == (want_before, want_after)
