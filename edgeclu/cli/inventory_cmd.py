"""``edgeclu inventory check FILE``: validate an inventory, one line per problem."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from edgeclu import tokens
from edgeclu.cli._console import say
from edgeclu.inventory import check_registries, load_inventory

app = typer.Typer(help="Inspect and validate inventories.", no_args_is_help=True)


@app.command("check", epilog="Example: edgeclu inventory check inventory.yml")
def check(path: Annotated[Path, typer.Argument(help="Inventory YAML to validate.")]) -> None:
    """Validate an inventory; exit 2 with one line per problem if it is wrong."""
    inv = load_inventory(path)
    check_registries(inv.path, inv.vars)
    for line in tokens.warnings(inv):
        say(f"[yellow]warning[/]: {escape(line)}")
    say(f"{path}: ok: {len(inv.servers)} server(s), {len(inv.agents)} agent(s), k3s {inv.k3s_version}"
        + (" (HA, embedded etcd)" if len(inv.servers) > 1 else ""))


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="inventory")
