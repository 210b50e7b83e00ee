"""edgeclu.tokens: where the secrets live on the controller, how they are written, and the
warnings for a token file others can read or a token written into the inventory."""

import os

import pytest
from typer.testing import CliRunner

from edgeclu import tokens
from edgeclu.cli import app
from edgeclu.errors import EdgecluError
from edgeclu.inventory import parse_inventory

INV = """
k3s_cluster:
  children:
    server: {hosts: {s1: {ansible_host: 10.0.0.1}}}
    agent: {hosts: {a1: {ansible_host: 10.0.0.2}, a2: {ansible_host: 10.0.0.3, k3s_agent_token: inline}}}
  vars:
    k3s_version: v1.31.4+k3s1
    token_file: TOKEN
"""


def test_the_agent_token_lives_beside_the_server_token_unless_set(tmp_path):
    v = {"token_file": str(tmp_path / "t" / "token")}
    assert tokens.server_token(v).path == tmp_path / "t" / "token"
    assert tokens.agent_token(v).path == tmp_path / "t" / "agent-token"
    assert tokens.agent_token({**v, "k3s_agent_token_file": "/x/agent"}).path.as_posix() == "/x/agent"
    assert tokens.agent_token({"k3s_agent_token_env": "AGT"}).env == "AGT"
    assert tokens.server_token({}).path == tokens.Path("~/.config/edgeclu/token").expanduser()


def test_write_is_0600_in_a_0700_dir_and_replaces_atomically(tmp_path):
    s = tokens.agent_token({"token_file": str(tmp_path / "new" / "token")})
    tokens.write(s, "first")
    tokens.write(s, "second")
    assert tokens.read(s) == "second"
    assert s.path.stat().st_mode & 0o777 == 0o600 and s.path.parent.stat().st_mode & 0o777 == 0o700
    assert sorted(p.name for p in s.path.parent.iterdir()) == ["agent-token"]
    with pytest.raises(EdgecluError, match=r"comes from \$AGT"):
        tokens.write(tokens.Secret("k3s_agent_token_env", "the k3s agent token", None, "AGT"), "x")


def test_token_files_others_can_read_are_named_with_the_fix(tmp_path):
    d = tmp_path / "secrets"
    d.mkdir(mode=0o700)
    token = d / "token"
    token.write_text("t\n")
    token.chmod(0o600)
    v = {"token_file": str(token)}
    assert tokens.permission_warnings(v) == []
    token.chmod(0o644)
    (d / "agent-token").write_text("a\n")
    (d / "agent-token").chmod(0o640)
    d.chmod(0o755)
    assert tokens.permission_warnings(v) == [
        f"{token} (the k3s server token) is readable by group and others (mode 0644): chmod 600 {token}",
        f"{d} (the k3s server token, its directory) is readable by group and others (mode 0755): chmod 700 {d}",
        f"{d / 'agent-token'} (the k3s agent token) is readable by its group (mode 0640): "
        f"chmod 600 {d / 'agent-token'}",
        f"{d} (the k3s agent token, its directory) is readable by group and others (mode 0755): chmod 700 {d}",
    ]


def test_a_token_in_the_inventory_is_named(tmp_path):
    inv = parse_inventory(INV.replace("TOKEN", str(tmp_path / "token")).replace(
        "k3s_version:", "k3s_token: inline-server-token\n    k3s_version:"), str(tmp_path / "inv.yml"))
    assert tokens.inventory_warnings(inv) == [
        f"{tmp_path / 'inv.yml'}: cluster vars: k3s_token puts the server token in the inventory, where whoever "
        "reads the file can use it; keep it in token_file (0600) instead",
        f"{tmp_path / 'inv.yml'}: host 'a2': k3s_agent_token puts the agent token in the inventory, where whoever "
        "reads the file can use it; keep it in k3s_agent_token_file (0600) instead",
    ]


def test_inventory_check_shows_the_warnings(tmp_path):
    (tmp_path / "token").write_text("t\n")
    os.chmod(tmp_path / "token", 0o644)
    path = tmp_path / "inv.yml"
    path.write_text(INV.replace("TOKEN", str(tmp_path / "token")))
    result = CliRunner().invoke(app, ["inventory", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert "warning: " + f"{tmp_path / 'token'} (the k3s server token) is readable by group and others" \
        in " ".join(result.output.split())
    assert "host 'a2': k3s_agent_token puts the agent token in the inventory" in " ".join(result.output.split())
