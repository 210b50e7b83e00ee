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


def test_stdin_a_command_no_longer_takes_is_dropped_not_raised():
    # CI saw it: `python3 -c LOADER` with the script on stdin, on a node without python3, exits 127 before
    # reading; the stdin thread's write then met paramiko's closed channel and invoke raised ThreadException
    # instead of giving the exit status. The channel here is a test double that is closed.
    from edgeclu import transport

    class ClosedChannel:
        def sendall(self, data):
            raise OSError("Socket is closed")

        def shutdown_write(self):
            raise OSError("Socket is closed")

    runner_class = transport._runner()  # one class, made once (fabric is imported on first use)
    runner = runner_class.__new__(runner_class)
    runner.channel = ClosedChannel()
    assert runner._write_proc_stdin(b"script\0{}") is None
    assert runner.close_proc_stdin() is None
