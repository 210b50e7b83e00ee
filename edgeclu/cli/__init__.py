"""The ``edgeclu`` command line: one module per command, wired together here."""

from __future__ import annotations

import importlib
import signal
import sys

import typer
from typer.core import TyperGroup

from edgeclu import __version__
from edgeclu.cli._console import plain
from edgeclu.errors import EdgecluError
from edgeclu.interrupt import Terminated, raise_terminated


class _Group(TyperGroup):
    """Turns :class:`EdgecluError` into a one-line message and its exit code, no traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EdgecluError as e:
            for line in str(e).splitlines():
                typer.echo(f"error: {plain(line)}", err=True)
            ctx.exit(e.exit_code)
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            ctx.exit(130)
        except Terminated:
            typer.echo("terminated (SIGTERM)", err=True)
            ctx.exit(143)


# Each command and the module of edgeclu.cli that registers it. Only the module of the command being run is
# imported (issue 10.5: start-up must not pay for every command's imports); --help and a mistyped name get all.
COMMANDS = {
    "discover": "discover", "inventory": "inventory_cmd", "preflight": "preflight", "up": "up",
    "health": "health", "exec": "exec_cmd", "agent": "agent_cmd", "add": "add", "remove": "remove",
    "upgrade": "upgrade", "backup": "backup", "restore": "restore", "reset": "reset", "token": "token",
    "status": "status", "certs": "certs", "collection": "collection_cmd",
}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"edgeclu {__version__}")
        raise typer.Exit()


def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    pass


def build(only: str | None = None) -> typer.Typer:
    """The CLI with command ``only`` registered, or every command when ``only`` names none."""
    root = typer.Typer(
        cls=_Group,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_show_locals=False,  # locals may hold tokens
        help="Turn Raspberry Pis and small x86 boxes into a k3s cluster, and keep an eye on it.",
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    root.callback()(_root)
    for name in [only] if only in COMMANDS else COMMANDS:
        importlib.import_module(f"edgeclu.cli.{COMMANDS[name]}").register(root)
    return root


def command_named(argv: list[str]) -> str | None:
    """The command an argument list runs: its first word that is not an option (the root takes no values)."""
    return next((a for a in argv if not a.startswith("-")), None)


def __getattr__(name: str):
    if name == "app":  # the whole CLI, for tests and documentation; built once, on first use
        globals()["app"] = built = build()
        return built
    raise AttributeError(name)


def main() -> None:
    signal.signal(signal.SIGTERM, raise_terminated)  # unwind (release the lock), exit 143
    build(command_named(sys.argv[1:]))(prog_name="edgeclu")


if __name__ == "__main__":
    sys.exit(main())
