"""edgeclu token rotate: which tokens, in what order, and what `remove --force` says about a
node it could not reach (pure parts; the rotation itself runs in the lab:
tests/integration/test_tokens_lab.py)."""

from pathlib import Path

import pytest

from edgeclu.errors import EdgecluError
from edgeclu.inventory import parse_inventory
from edgeclu.lifecycle import rotate
from edgeclu.lifecycle.plan import Step


@pytest.mark.parametrize("flags, expected", [
    ((False, False), (True, True)), ((True, False), (True, False)), ((False, True), (False, True)),
    ((True, True), (True, True))])
def test_which_tokens(flags, expected):
    assert rotate.which_tokens(*flags) == expected


def test_servers_one_at_a_time_then_agents_in_batches_only_for_the_agent_token():
    servers, agents = ["s1", "s2"], ["a1", "a2", "a3"]
    assert rotate.rotation_steps(servers, agents, 50, agent_token=True) == [
        Step("server", ("s1",)), Step("server", ("s2",)), Step("agent", ("a1", "a2")), Step("agent", ("a3",))]
    # agents do not hold the server token: rotating it restarts only the servers
    assert rotate.rotation_steps(servers, agents, 50, agent_token=False) == [
        Step("server", ("s1",)), Step("server", ("s2",))]


def test_an_unreachable_node_removed_by_force_still_holds_a_valid_token():
    text, flags = rotate.unreachable_advice("pi-3", "agent", Path("inv.yml"))
    assert flags == ["--agent"]
    assert text == ("pi-3 still holds the agent token in /etc/rancher/k3s/config.yaml, and the cluster still accepts "
                    "it: whoever has the machine or its SD card can join an agent with it. "
                    "Rotate: edgeclu token rotate --agent -i inv.yml")
    text, flags = rotate.unreachable_advice("pi-1", "server", Path("inv.yml"))
    assert flags == [] and "holds the server and agent tokens" in text and "join as a server" in text
    assert text.endswith("Rotate: edgeclu token rotate -i inv.yml")


INV = """
k3s_cluster:
  children:
    server: {hosts: {s1: {ansible_host: 10.0.0.1}}}
    agent: {hosts: {a1: {ansible_host: 10.0.0.2}}}
  vars: {k3s_version: v1.31.4+k3s1, token_file: TOKEN}
"""


def test_refused_before_anything_changes(tmp_path):
    inv = parse_inventory(INV.replace("TOKEN", str(tmp_path / "token")), "inv.yml")
    # a cluster not yet moved to two tokens
    with pytest.raises(EdgecluError, match="still uses one token for servers and agents; run `edgeclu up` first"):
        rotate._check_files(inv, True, True)
    (tmp_path / "agent-token").write_text("a\n")
    rotate._check_files(inv, True, True)
    env = parse_inventory(INV.replace("token_file: TOKEN", "token_env: K3S_SRV"), "inv.yml")
    with pytest.raises(EdgecluError, match=r"comes from \$K3S_SRV: edgeclu rotates tokens kept in files"):
        rotate._check_files(env, False, True)
    inline = parse_inventory(INV.replace("TOKEN", str(tmp_path / "token")).replace(
        "{ansible_host: 10.0.0.2}", "{ansible_host: 10.0.0.2, k3s_agent_token: x}"), "inv.yml")
    with pytest.raises(EdgecluError, match="k3s_agent_token is set in the inventory"):
        rotate._check_files(inline, True, False)


def test_remove_force_of_an_unreachable_agent_says_its_token_is_still_valid(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from edgeclu.cli import app
    from edgeclu.lifecycle.nodes import RemoveOutcome

    inv = tmp_path / "inv.yml"
    inv.write_text(INV.replace("TOKEN", str(tmp_path / "token")))
    gone = RemoveOutcome("a1", "agent", reachable=False, node_deleted=True, inventory_backup=tmp_path / "bak")
    monkeypatch.setattr("edgeclu.cli.remove.remove_node", lambda *a, **k: gone)
    r = CliRunner().invoke(app, ["remove", "a1", "--force", "-i", str(inv)])
    out = " ".join(r.output.split())
    assert r.exit_code == 0, r.output
    assert ("warning: a1 still holds the agent token in /etc/rancher/k3s/config.yaml, and the cluster still accepts "
            f"it: whoever has the machine or its SD card can join an agent with it. Rotate: edgeclu token rotate "
            f"--agent -i {inv}") in out
    assert "Rotate now?" not in out  # not a terminal: no question


def test_a_server_rotation_with_the_agent_token_in_the_environment_is_fine(tmp_path):
    inv = parse_inventory(INV.replace("TOKEN", str(tmp_path / "token")).replace(
        "token_file:", "k3s_agent_token_env: AGT, token_file:"), "inv.yml")
    rotate._check_files(inv, False, True)
    with pytest.raises(EdgecluError, match=r"comes from \$AGT"):
        rotate._check_files(inv, True, False)
