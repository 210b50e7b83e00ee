import paramiko
import pytest

from edgeclu.errors import CommandFailed
from edgeclu.transport import SSHRemote, fingerprint, sudo_wrap


@pytest.mark.parametrize(("cmd", "user", "expected"), [
    ("id -u", "root", "id -u"),
    ("id -u", "pi", "sudo -n -- sh -c 'id -u'"),
    ("echo 'a b' > /x", "pi", "sudo -n -- sh -c 'echo '\"'\"'a b'\"'\"' > /x'"),
])
def test_sudo_wrap(cmd, user, expected):
    assert sudo_wrap(cmd, user) == expected


def test_fingerprint_matches_openssh(tmp_path):
    import subprocess

    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    expected = subprocess.run(["ssh-keygen", "-l", "-f", f"{key}.pub"], capture_output=True, text=True,
                              check=True).stdout.split()[1]
    assert fingerprint(paramiko.Ed25519Key(filename=str(key))) == expected


def test_constructor_does_no_io():
    r = SSHRemote("n1", "203.0.113.1", key_file="~/nonexistent")  # TEST-NET address: never contacted
    assert r._conn is None and repr(r) == "<SSHRemote n1 root@203.0.113.1:22>"


def test_command_failed_message_is_one_line_with_last_stderr_line():
    e = CommandFailed("n1", "systemctl start k3s", 1, "warning\nJob failed\n")
    assert str(e) == "n1: `systemctl start k3s` exited 1: Job failed"
