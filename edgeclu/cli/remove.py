"""``edgeclu remove NODE``: drain a node, take it out of the cluster, uninstall k3s on it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from edgeclu import phases as ph
from edgeclu.cli import _options as opt
from edgeclu.cli._console import out, say
from edgeclu.cli._lifecycle import DrainTimeout
from edgeclu.cli._nodes import cluster_for
from edgeclu.cli._progress import PhaseProgress, print_words
from edgeclu.cluster import Cluster
from edgeclu.inventory import load_inventory
from edgeclu.lifecycle.nodes import remove_node
from edgeclu.lifecycle.words import remove_words


def remove(
    node: Annotated[str, typer.Argument(help="The node's inventory name.")],
    force: Annotated[bool, typer.Option(
        "--force", help="Remove it even if etcd would lose quorum (or its failure tolerance), its drain "
                        "does not finish, or it is unreachable (then its drain and uninstall are skipped).")]
    = False,
    drain_timeout: DrainTimeout = 120.0,
    inventory: opt.Inventory = Path("inventory.yml"),
    accept_new: opt.AcceptNew = False,
    trust: opt.Trust = None,
    known_hosts: opt.KnownHosts = None,
    as_json: opt.Json = False,
) -> None:
    """Drain a node, take it out of the cluster, uninstall k3s on it, drop it from the inventory.

    Cordon and drain (PodDisruptionBudgets respected; what would not move is reported), stop
    k3s, delete the Node object (k3s removes a server's etcd member), uninstall k3s and the
    edgeclu agent, and remove the node from the inventory.

    A server whose removal would break etcd quorum, or leave it unable to survive another
    failure (e.g. 1 of 3 servers), is refused unless --force. Exit code: 0 removed, 1 failed,
    2 bad inventory, 4 another run holds the cluster lock, 5 refused (nothing was changed).
    """
    inv = load_inventory(inventory)
    cluster = cluster_for(inv, known_hosts, trust=trust, accept_new=accept_new)
    role = next((h.role for h in inv.hosts if h.name == node), "agent")
    with PhaseProgress(ph.Board(ph.REMOVE_PHASES, {node: role}), f"edgeclu remove {node}") as view:
        outcome = remove_node(cluster, node, force=force, drain_timeout=drain_timeout, on_step=view.step)
    if as_json:
        out.print_json(json.dumps({
            "node": outcome.name, "role": outcome.role, "ok": outcome.ok, "reachable": outcome.reachable,
            "node_deleted": outcome.node_deleted, "uninstalled": outcome.uninstalled,
            "would_not_move": outcome.drain.stuck if outcome.drain else [],
            "quorum": outcome.quorum.message if outcome.quorum else None}))
    lines, steps = remove_words(
        name=outcome.name, role=outcome.role, reachable=outcome.reachable,
        quorum=outcome.quorum.message if outcome.quorum else None,
        drained=outcome.drain.ok if outcome.drain else None, stuck=outcome.drain.stuck if outcome.drain else [],
        node_deleted=outcome.node_deleted, uninstalled=outcome.uninstalled,
        inventory_backup=str(outcome.inventory_backup) if outcome.inventory_backup else None,
        inventory=str(inventory))
    print_words(lines, f"removed: {node}" if outcome.ok else f"{node}: not fully removed", outcome.ok, steps)
    if not outcome.reachable:
        _offer_rotation(outcome.name, outcome.role, cluster, as_json)
    if not outcome.ok:
        raise typer.Exit(1)


def _offer_rotation(name: str, role: str, cluster: Cluster, as_json: bool) -> None:
    """Its token is still valid: say so, and on a terminal offer to rotate it now."""
    from edgeclu.lifecycle.rotate import rotate_tokens, unreachable_advice

    inventory = cluster.inv.path
    advice, flags = unreachable_advice(name, role, inventory)
    say(f"[yellow]warning[/]: {escape(advice)}")
    if as_json or not sys.stdin.isatty() or not typer.confirm("Rotate now?", default=False, err=True):
        return
    outcome = rotate_tokens(cluster.with_inventory(load_inventory(inventory)), agent="--agent" in flags,
                            server=False)
    say("[green]rotated[/]" if outcome.ok else "[red]the rotation stopped[/]: run `edgeclu token rotate` again")


def register(app: typer.Typer) -> None:
    app.command("remove", epilog="Example: edgeclu remove pi-3 -i inventory.yml")(remove)
