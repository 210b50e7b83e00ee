"""Remote I/O behind one small interface: run / put / get, optionally with sudo; ``run`` may feed
the command's stdin (how a node script's source and arguments travel: module_utils/node_loader.py).

:class:`Remote` is the protocol every other module uses; :class:`SSHRemote` is the
only implementation that touches the network (fabric over paramiko). Host keys are
checked strictly against a known_hosts file, read as OpenSSH reads it (:mod:`edgeclu.hostkeys`);
a ``@revoked`` key is always refused; ``accept_new`` trusts an unknown host once (its key is
appended to the file and its fingerprint reported), never a changed one.
"""

from __future__ import annotations

import functools
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from edgeclu import hostkeys
from edgeclu.errors import AuthFailed, CommandFailed, HostKeyError, Unreachable


@dataclass(frozen=True)
class Result:
    node: str
    command: str
    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class Remote(Protocol):
    name: str

    def run(self, command: str, *, sudo: bool = False, check: bool = True,
            timeout: float | None = None, stdin: bytes | None = None) -> Result: ...

    def put(self, local: str | Path, remote: str, *, sudo: bool = False, mode: int | None = None) -> None: ...

    def get(self, remote: str, local: str | Path, *, sudo: bool = False) -> None: ...

    def close(self) -> None: ...


def sudo_wrap(command: str, user: str) -> str:
    """The command as root: unchanged for root, else ``sudo -n`` (never prompts)."""
    if user == "root":
        return command
    return f"sudo -n -- sh -c {shlex.quote(command)}"


class _Feed:
    """``stdin`` for invoke, whole in one read: invoke reads a stream that is not a terminal one byte per
    loop, 10 ms apart (a 10 kB node script would take 100 s); an empty read then closes the channel's stdin."""

    def __init__(self, data: bytes):
        self._text = data.decode()  # UTF-8 (a script, JSON); invoke encodes it again with the run's encoding

    def read(self, _size: int = -1) -> str:
        text, self._text = self._text, ""
        return text


def fingerprint(key) -> str:
    """OpenSSH-style SHA256 fingerprint of a paramiko key."""
    return hostkeys.fingerprint_of(key.asbytes())


class _FirstUse:
    """paramiko's policy for a host with no usable key in known_hosts: refuse a revoked key; with
    ``accept_new`` append the key to known_hosts (one line, under a lock) and report its fingerprint,
    else refuse naming the fingerprint and how to trust it."""

    def __init__(self, remote: SSHRemote, revoked: frozenset[bytes]):
        self.remote, self.revoked = remote, revoked

    def missing_host_key(self, client, hostname, key):
        r = self.remote
        if key.asbytes() in self.revoked:
            raise HostKeyError(r.name, f"host key {key.get_name()} {fingerprint(key)} is marked @revoked in "
                                       f"{r.known_hosts}; refusing")
        if not r.accept_new:
            raise HostKeyError(
                r.name,
                f"unknown host key {key.get_name()} {fingerprint(key)} (not in {r.known_hosts}); check it, "
                f"then re-run with --trust {r.name}={fingerprint(key)} (or --accept-new)")
        hostkeys.append(r.known_hosts, r.host, r.port, key.get_name(), key.asbytes())
        client.get_host_keys().add(hostname, key.get_name(), key)
        r.report(f"{r.name}: trusted new host key {key.get_name()} {fingerprint(key)}")


def _paramiko_host_keys(known: list[hostkeys.Entry], name: str):
    """The keys paramiko should accept for ``name`` (key types it does not know are left out)."""
    import paramiko

    keys = paramiko.HostKeys()
    for e in known:
        try:
            keys.add(name, e.keytype, paramiko.PKey.from_type_string(e.keytype, e.blob))
        except Exception:  # noqa: BLE001, S112 - sk-*, certificates, keys paramiko cannot parse: not for us
            continue
    return keys


class SSHRemote:
    """A node over SSH. Creating one does no I/O; the connection opens on first use."""

    def __init__(self, name: str, host: str, *, user: str = "root", port: int = 22,
                 key_file: str | None = None, known_hosts: str | Path = "~/.ssh/known_hosts",
                 accept_new: bool = False, connect_timeout: float = 5.0,
                 report: Callable[[str], None] = print):
        self.name, self.host, self.user, self.port = name, host, user, port
        self.key_file = str(Path(key_file).expanduser()) if key_file else None
        self.known_hosts = Path(known_hosts).expanduser()
        self.accept_new, self.connect_timeout, self.report = accept_new, connect_timeout, report
        self._conn = None

    def __repr__(self) -> str:
        return f"<SSHRemote {self.name} {self.user}@{self.host}:{self.port}>"

    # -- connection --------------------------------------------------------
    def _connection(self):
        if self._conn is not None and self._conn.is_connected:
            return self._conn
        import paramiko
        from fabric import Config, Connection

        config = Config(overrides={"load_ssh_configs": False, "runners": {"remote": _runner()}})
        # the timeout goes to paramiko directly: fabric's connect_timeout= is cast to int (0.9 s -> 0 = none)
        kwargs = {"look_for_keys": self.key_file is None, "allow_agent": self.key_file is None,
                  "timeout": self.connect_timeout,
                  "banner_timeout": self.connect_timeout, "auth_timeout": self.connect_timeout}
        if self.key_file:
            kwargs["key_filename"] = self.key_file
        conn = Connection(self.host, user=self.user, port=self.port, config=config, connect_kwargs=kwargs)
        client = conn.client
        found = hostkeys.lookup(hostkeys.read(self.known_hosts), self.host, self.port)
        # ours only (fabric would pre-load ~/.ssh/known_hosts), and never a revoked key
        client._host_keys = _paramiko_host_keys(found.usable(), hostkeys.host_field(self.host, self.port))
        client.set_missing_host_key_policy(_FirstUse(self, found.revoked))
        try:
            conn.open()
        except HostKeyError:
            raise
        except paramiko.BadHostKeyException as e:
            raise HostKeyError(
                self.name,
                f"HOST KEY CHANGED: got {fingerprint(e.key)}, known_hosts has "
                f"{fingerprint(e.expected_key)}; refusing (remove the old entry if the node was rebuilt)",
            ) from None
        except paramiko.AuthenticationException as e:
            raise AuthFailed(self.name, f"{self.user}@{self.host} refused our key ({e})") from None
        except TimeoutError:
            raise Unreachable(self.name, f"{self.host}:{self.port} timed out after "
                                         f"{self.connect_timeout:g}s") from None
        except (OSError, paramiko.SSHException, EOFError) as e:
            raise Unreachable(self.name, f"{self.host}:{self.port}: {_reason(e)}") from None
        # as OpenSSH does for a session: without it, Nagle's algorithm and the node's delayed ACK hold back
        # each command's last packet (stdin's EOF, the exit status) for about 40 ms
        _no_delay(client.get_transport().sock)
        self._conn = conn
        return conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- the interface -----------------------------------------------------
    def run(self, command: str, *, sudo: bool = False, check: bool = True,
            timeout: float | None = None, stdin: bytes | None = None) -> Result:
        import paramiko

        conn = self._connection()
        full = sudo_wrap(command, self.user) if sudo else command
        feed = {"in_stream": False} if stdin is None else {"in_stream": _Feed(stdin), "encoding": "utf-8"}
        try:
            r = conn.run(full, hide=True, warn=True, timeout=timeout, **feed)
        except (OSError, EOFError, paramiko.SSHException) as e:
            self.close()
            raise Unreachable(self.name, f"connection lost: {_reason(e)}") from None
        except Exception as e:  # invoke's CommandTimedOut
            if type(e).__name__ == "CommandTimedOut":
                self.close()
                raise Unreachable(self.name, f"`{command}` timed out after {timeout:g}s") from None
            raise
        result = Result(self.name, command, r.exited, r.stdout, r.stderr)
        if check and not result.ok:
            if sudo and self.user != "root" and "sudo: a password is required" in r.stderr:
                raise CommandFailed(self.name, command, r.exited,
                                    f"user {self.user} has no passwordless sudo")
            raise CommandFailed(self.name, command, r.exited, r.stderr)
        return result

    def put(self, local: str | Path, remote: str, *, sudo: bool = False, mode: int | None = None) -> None:
        conn = self._connection()
        if not sudo or self.user == "root":
            conn.put(str(local), remote)
            if mode is not None:
                self.run(f"chmod {mode:o} {shlex.quote(remote)}")
            return
        tmp = self.run("mktemp").stdout.strip()
        conn.put(str(local), tmp)
        mode_arg = f"-m {mode:o} " if mode is not None else ""
        self.run(f"install {mode_arg}{shlex.quote(tmp)} {shlex.quote(remote)} && rm -f {shlex.quote(tmp)}",
                 sudo=True)

    def get(self, remote: str, local: str | Path, *, sudo: bool = False) -> None:
        conn = self._connection()
        if not sudo or self.user == "root":
            conn.get(remote, str(local))
            return
        tmp = self.run("mktemp").stdout.strip()
        self.run(f"cat {shlex.quote(remote)} > {shlex.quote(tmp)} && chown {shlex.quote(self.user)} {shlex.quote(tmp)}",
                 sudo=True)
        try:
            conn.get(tmp, str(local))
        finally:
            self.run(f"rm -f {shlex.quote(tmp)}", check=False)


@functools.cache
def _runner():
    """fabric's runner, except that stdin the command no longer takes is dropped, as OpenSSH's client drops
    it: a command that exits before reading its stdin (``python3`` not on the node: exit 127) gives its exit
    status, not invoke's ThreadException from the stdin thread's write to the closed channel."""
    from fabric.runners import Remote as FabricRemote

    class Runner(FabricRemote):
        def _write_proc_stdin(self, data):
            try:
                return super()._write_proc_stdin(data)
            except OSError:  # paramiko: "Socket is closed"
                return None

        def close_proc_stdin(self):
            try:
                return super().close_proc_stdin()
            except OSError:
                return None

    return Runner


def _no_delay(sock) -> None:
    import contextlib
    import socket

    with contextlib.suppress(OSError, AttributeError):  # not a TCP socket (a proxy command's pipe)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _reason(e: BaseException) -> str:
    text = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return text

