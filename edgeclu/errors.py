"""Exceptions the CLI turns into one-line messages and exit codes."""

from __future__ import annotations


class EdgecluError(Exception):
    """An error the user can act on; printed without a traceback."""

    exit_code = 1


class InventoryError(EdgecluError):
    """One or more problems in an inventory file, one line each."""

    exit_code = 2

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class RemoteError(EdgecluError):
    """Something went wrong talking to one node."""

    def __init__(self, node: str, message: str):
        self.node = node
        super().__init__(f"{node}: {message}")


class Unreachable(RemoteError):
    """The node did not answer on SSH (down, wrong address, or filtered)."""


class AuthFailed(RemoteError):
    """SSH answered but refused our key or user."""


class HostKeyError(RemoteError):
    """The host key is unknown or does not match known_hosts."""


class NoPython(RemoteError):
    """The node has no python3 (or not the one the inventory names): edgeclu's probe and Ansible need it."""


class CommandFailed(RemoteError):
    def __init__(self, node: str, command: str, exit_code: int, stderr: str):
        self.command, self.exit_code, self.stderr = command, exit_code, stderr
        tail = stderr.strip().splitlines()[-1] if stderr.strip() else "no error output"
        super().__init__(node, f"`{_short(command)}` exited {exit_code}: {tail}")


def _short(command: str, width: int = 60) -> str:
    return command if len(command) <= width else command[: width - 1] + "…"
