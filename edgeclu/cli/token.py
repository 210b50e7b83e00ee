"""``edgeclu token rotate [--agent|--server]``: new k3s tokens, then every node's config, rolling."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from edgeclu.cli import _options as opt
from edgeclu.cli._console import out, say
from edgeclu.cli._nodes import cluster_for
from edgeclu.inventory import load_inventory
from edgeclu.lifecycle.rotate import rotate_tokens

app = typer.Typer(help="Manage the cluster's k3s tokens.", no_args_is_help=True)


@app.command("rotate", epilog="Example: edgeclu token rotate --agent -i inventory.yml")
def rotate(
    agent: Annotated[bool, typer.Option("--agent", help="Rotate the agent token (agents, and servers' "
                                                        "agent-token).")] = False,
    server: Annotated[bool, typer.Option("--server", help="Rotate the server token (k3s token rotate).")] = False,
    ready_timeout: Annotated[float, typer.Option(
        "--ready-timeout", help="Seconds a restarted node has to be Ready.")] = 300.0,
    inventory: opt.Inventory = Path("inventory.yml"),
    accept_new: opt.AcceptNew = False,
    trust: opt.Trust = None,
    known_hosts: opt.KnownHosts = None,
    as_json: opt.Json = False,
) -> None:
    """Replace the k3s tokens (both unless --agent or --server) and roll them out.

    The server token with k3s's own `k3s token rotate` on a server, the agent token as a new
    random one; each goes to its file on this machine (0600), then every server gets its new
    config.yaml and restarts, one at a time, each waited for until Ready, then (for the agent
    token) the agents in batches. The old token is refused from then on. Every node must be
    Ready first. Exit code: 0 rotated, 1 a node did not come back, 2 bad inventory, 4 another
    run holds the cluster lock.
    """
    inv = load_inventory(inventory)
    outcome = rotate_tokens(cluster_for(inv, known_hosts, trust=trust, accept_new=accept_new), agent=agent,
                            server=server, ready_timeout=ready_timeout)
    rotated = [name for name, on in (("agent", outcome.agent), ("server", outcome.server)) if on]
    if as_json:
        out.print_json(json.dumps({"rotated": rotated, "ok": outcome.ok, "done": outcome.done,
                                   "failed": outcome.failed, "not_started": outcome.not_started}))
    if not outcome.ok:
        for node, why in outcome.failed.items():
            say(f"[red]✗ {node}[/]: {escape(why)}")
        raise typer.Exit(1)
    say(f"[green]rotated[/]: the {' and '.join(rotated)} token(s); {len(outcome.done)} node(s) restarted with "
        "the new one, all Ready")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="token")
