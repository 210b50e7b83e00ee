"""The ``edgeclu`` command line: one module per command, wired together here."""

from __future__ import annotations

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


app = typer.Typer(
    cls=_Group,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold tokens
    help="Turn Raspberry Pis and small x86 boxes into a k3s cluster, and keep an eye on it.",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"edgeclu {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    pass


def _register() -> None:
    from edgeclu.cli import agent_cmd, discover, exec_cmd, health, inventory_cmd, preflight, up

    app.add_typer(inventory_cmd.app, name="inventory")
    for module in (discover, up, preflight, health, exec_cmd, agent_cmd):
        module.register(app)
    from edgeclu.cli import add, backup, remove, reset, restore, upgrade  # lifecycle (issue 5)

    for module in (add, remove, upgrade, backup, restore, reset):
        module.register(app)
    from edgeclu.cli import token

    token.register(app)


_register()


def main() -> None:
    signal.signal(signal.SIGTERM, raise_terminated)  # unwind (release the lock), exit 143
    app(prog_name="edgeclu")


if __name__ == "__main__":
    sys.exit(main())
