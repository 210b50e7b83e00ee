"""The edgeclu_files module, run by real ansible-playbook on this machine (connection local), both
ways: through its action plugin as a plain script (how the playbooks run it) and as an Ansible
module. Writes only what differs, in check mode changes nothing, and never shows a secret content."""

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edgeclu.resources import collection_dir, collections_path

SECRET = "K10feedface::server:do-not-print-me"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="writes root:root files (CI runs as root)")


@pytest.fixture(params=["action", "module"])
def how(request):
    return request.param


def _run(tmp_path: Path, how: str, files: list, secrets: dict | None = None, check: bool = False
         ) -> tuple[str, dict]:
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "Write", "edgeclu.cluster.edgeclu_files": {"files": files, "secret_contents": secrets or {}},
         "register": "out"},
        {"name": "Show", "ansible.builtin.copy": {"content": "{{ out | to_json }}", "dest": str(tmp_path / "out.json")},
         "check_mode": False, "diff": False}]}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections_path()), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_INVENTORY_UNPARSED_WARNING="False")
    if how == "module":  # the collection's modules/edgeclu_files.py as a module, without its action plugin
        env["ANSIBLE_LIBRARY"] = str(collection_dir() / "plugins/modules")
        play[0]["tasks"][0]["edgeclu_files"] = play[0]["tasks"][0].pop("edgeclu.cluster.edgeclu_files")
        (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-c", "local", "-i", "localhost,", "-vvv",
           "-e", f"ansible_python_interpreter={sys.executable}",
           str(tmp_path / "play.yml")] + (["--check"] if check else [])
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    return r.stdout + r.stderr, yaml.safe_load((tmp_path / "out.json").read_text())


def test_writes_what_differs_once_and_check_mode_changes_nothing(tmp_path, how):
    d = tmp_path / "etc" / "app"
    blob = bytes(range(256)) * 4
    files = [{"path": str(d), "directory": True, "mode": "0700"},
             {"path": str(d / "config.yaml"), "mode": "0600"},
             {"path": str(d / "unit"), "content": "[Unit]\n", "mode": "0644"},
             {"path": str(tmp_path / "new" / "code.zip"), "content_b64": base64.b64encode(blob).decode(),
              "mode": "0644"}]
    secrets = {str(d / "config.yaml"): f"token: {SECRET}\n"}
    log, out = _run(tmp_path, how, files, secrets)
    # -vvv shows how it ran: the action's one-line loader, or Ansible's module wrapper
    assert ("edgeclu_node_script" in log, "AnsiballZ_edgeclu_files" in log) == (how == "action", how == "module")
    assert out["changed"] and out["paths"] == [f["path"] for f in files]
    assert (d / "config.yaml").read_text() == f"token: {SECRET}\n" and (d / "unit").read_text() == "[Unit]\n"
    assert (tmp_path / "new" / "code.zip").read_bytes() == blob
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in (d, d / "config.yaml", d / "unit")} == {
        "app": "0o700", "config.yaml": "0o600", "unit": "0o644"}
    assert SECRET not in log  # -vvv shows the module's arguments: the secret is masked

    log, out = _run(tmp_path, how, files, secrets)
    assert not out["changed"] and out["paths"] == []

    os.chmod(d / "unit", 0o666)
    (d / "config.yaml").write_text("token: other\n")
    log, out = _run(tmp_path, how, files, secrets, check=True)
    assert out["changed"] and out["paths"] == [str(d / "config.yaml"), str(d / "unit")]
    assert out["msg"].startswith("would write")
    assert (d / "config.yaml").read_text() == "token: other\n" and oct((d / "unit").stat().st_mode & 0o777) == "0o666"
    assert SECRET not in log

    _, out = _run(tmp_path, how, files, secrets)
    assert out["paths"] == [str(d / "config.yaml"), str(d / "unit")]
    assert (d / "config.yaml").read_text() == f"token: {SECRET}\n"
    assert oct((d / "unit").stat().st_mode & 0o777) == "0o644"
    assert not [p for p in d.iterdir() if p.name.startswith(".edgeclu-")]  # no temporary file left
