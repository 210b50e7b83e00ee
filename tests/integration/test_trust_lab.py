"""First contact and the user's known_hosts, on real sshd lab nodes: --accept-new appends and keeps the
file, @revoked is refused by paramiko and by OpenSSH (Ansible's path), --trust pins, a terminal asks."""

import json
import os
import pty
import re
import select
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from edgeclu.cli import app
from edgeclu.cli._console import plain
from edgeclu.errors import HostKeyError
from edgeclu.playbook import ssh_args
from edgeclu.transport import SSHRemote

pytestmark = pytest.mark.lab

K3S = "v1.31.4+k3s1"


def pub(lab, name):
    return (lab.nodes[name].dir / "ssh_host_ed25519_key.pub").read_text().split()[:2]


def fp(lab, name):
    out = subprocess.run(["ssh-keygen", "-lf", str(lab.nodes[name].dir / "ssh_host_ed25519_key.pub")],
                         capture_output=True, text=True, check=True).stdout
    return out.split()[1]


def line(lab, name):
    return f"{lab.nodes[name].ip} {' '.join(pub(lab, name))}\n"


@pytest.fixture
def inv(lab3, tmp_path):
    """An inventory of the three nodes whose known_hosts starts empty (tmp_path/known_hosts)."""
    path = tmp_path / "inventory.yml"
    path.write_text(lab3.inventory_yaml(servers=["node1"], agents=["node2", "node3"], extra_vars={
        "k3s_version": K3S, "edgeclu_known_hosts": str(tmp_path / "known_hosts")}))
    return path


def _exec(inv, *args):
    return CliRunner().invoke(app, ["exec", "-i", str(inv), "--json", *args, "--", "hostname"])


# a user's file: comments, a FIDO key, a CA line, a hashed entry and a revoked key for other hosts
SK_KEY = ("AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"
          "AAAABHNzaDo=")
USERS_FILE = f"""# my laptop's hosts
github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl
nas.lan sk-ssh-ed25519@openssh.com {SK_KEY} yubikey
@cert-authority *.corp.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl
|1|F1E1KeoE/eEWhi10WpGv4OdiO6Y=|3988QV0VE8wmZL7suNrYQLITLCg= ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ
@revoked old-box.lan ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl
"""


def test_accept_new_appends_one_line_per_host_and_keeps_the_users_file(lab3, inv, tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_text(USERS_FILE)
    r = _exec(inv, "--accept-new")  # before: @cert-authority made every paramiko command fail
    assert r.exit_code == 0, r.output
    assert {n: d["stdout"].strip() for n, d in json.loads(r.stdout).items()} == {n: n for n in lab3.nodes}
    assert sorted(kh.read_text().removeprefix(USERS_FILE).splitlines(keepends=True)) == sorted(
        line(lab3, n) for n in lab3.nodes)
    r = _exec(inv)  # strict now, from the appended lines
    assert r.exit_code == 0, r.output
    assert kh.read_text().startswith(USERS_FILE)


def test_a_revoked_key_is_refused_by_paramiko(lab3, tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_text(line(lab3, "node1") + f"@revoked * {' '.join(pub(lab3, 'node1'))}\n")
    for accept_new in (False, True):
        r = SSHRemote("node1", lab3.nodes["node1"].ip, key_file=str(lab3.key), known_hosts=kh,
                      accept_new=accept_new)
        with pytest.raises(HostKeyError, match=re.escape(f"node1: host key ssh-ed25519 {fp(lab3, 'node1')} is "
                                                         "marked @revoked")):
            r.run("true")
    assert kh.read_text().count("\n") == 2  # nothing was appended


def test_a_revoked_key_is_refused_by_openssh_with_edgeclus_options(lab3, tmp_path):
    """Ansible's path: the exact ssh options edgeclu hands Ansible (playbook.ssh_args), --accept-new too."""
    kh = tmp_path / "known_hosts"
    kh.write_text(f"@revoked {lab3.nodes['node2'].ip} {' '.join(pub(lab3, 'node2'))}\n")
    for accept_new in (False, True):
        r = subprocess.run(["ssh", *ssh_args(kh, accept_new).split(), "-o", "ControlMaster=no", "-o",
                            "BatchMode=yes", "-i", str(lab3.key), f"root@{lab3.nodes['node2'].ip}", "true"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 255 and "revoked" in r.stderr.lower(), r.stderr
    assert kh.read_text().count("\n") == 1


def test_trust_pins_by_name_or_address(lab3, inv, tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_text("# mine\n")
    r = _exec(inv, "--trust", f"node1={fp(lab3, 'node1')}", "--trust", f"{lab3.nodes['node2'].ip}={fp(lab3, 'node2')}",
              "--trust", f"node3={fp(lab3, 'node3')}")
    assert r.exit_code == 0, r.output
    assert kh.read_text() == "# mine\n" + "".join(line(lab3, n) for n in ("node1", "node2", "node3"))
    assert all(f"trusted host key ssh-ed25519 {fp(lab3, n)}" in r.stderr for n in lab3.nodes)


def test_a_wrong_pin_is_refused_and_nothing_is_recorded(lab3, inv, tmp_path):
    kh = tmp_path / "known_hosts"
    r = _exec(inv, "--trust", f"node1={fp(lab3, 'node1')}", "--trust", f"node2={fp(lab3, 'node3')}", "--accept-new")
    assert r.exit_code == 1
    assert f"error: node2: host key ssh-ed25519 {fp(lab3, 'node2')} is not the one pinned with --trust" in r.stderr
    assert not kh.exists() or "node2" not in kh.read_text()


def test_an_unknown_host_without_a_pin_is_refused_with_the_pin_to_give(lab3, inv):
    r = _exec(inv, "--limit", "node3")
    assert r.exit_code == 1
    assert f"--trust node3={fp(lab3, 'node3')}" in json.loads(r.stdout)["node3"]["error"]


def test_trust_then_ansible_checks_strictly(lab3, inv, tmp_path):
    """The pins are in known_hosts before Ansible runs: OpenSSH (StrictHostKeyChecking=yes) accepts them."""
    r = CliRunner().invoke(app, ["agent", "install", "-i", str(inv), "--limit", "node2",
                                 "--trust", f"node2={fp(lab3, 'node2')}"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "known_hosts").read_text() == line(lab3, "node2")


def _on_a_terminal(args: list[str], answer: str, timeout: float = 60) -> tuple[int, str]:
    """Run edgeclu on a pseudo-terminal, answer its question, return (exit code, what it printed)."""
    leader, follower = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "edgeclu", *args], stdin=follower, stdout=follower,
                         stderr=follower, env={**os.environ, "COLUMNS": "200", "TERM": "xterm"})
    os.close(follower)
    shown, answered, deadline = b"", False, time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        if not answered and b"Trust these host keys?" in shown:
            os.write(leader, answer.encode() + b"\n")
            answered = True
        if p.poll() is not None and not ready:
            break
    os.close(leader)
    return p.wait(10), plain(shown.decode(errors="replace")).replace("\r", "")


def test_a_terminal_lists_every_unknown_host_and_asks_once(lab3, inv, tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_text(line(lab3, "node1"))
    code, shown = _on_a_terminal(["exec", "-i", str(inv), "--", "hostname"], "n")
    assert code == 1, shown
    assert f"2 host(s) not in {kh} yet:" in shown
    for n in ("node2", "node3"):
        assert f"{n}  {lab3.nodes[n].ip}  ssh-ed25519 {fp(lab3, n)}" in shown
    assert f"node1  {lab3.nodes['node1'].ip}" not in shown  # known: not asked about
    assert shown.count("Trust these host keys?") == 1 and "not trusted: node2, node3; nothing was changed" in shown
    assert kh.read_text() == line(lab3, "node1")
    code, shown = _on_a_terminal(["exec", "-i", str(inv), "--", "hostname"], "y")
    assert code == 0, shown
    assert kh.read_text() == "".join(line(lab3, n) for n in ("node1", "node2", "node3"))
    assert all(f"{n}: {n}" in shown for n in lab3.nodes)
