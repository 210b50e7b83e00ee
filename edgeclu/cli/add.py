"""``edgeclu add HOST``: add one machine to the inventory and join it; no other node changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from edgeclu import discovery
from edgeclu import phases as ph
from edgeclu import summary as sm
from edgeclu.cli import _options as opt
from edgeclu.cli._console import out, tell
from edgeclu.cli._lifecycle import Verbose
from edgeclu.cli._nodes import first_contact, known_hosts_path
from edgeclu.cli._progress import PhaseProgress, print_summary
from edgeclu.cluster import Cluster
from edgeclu.errors import EdgecluError
from edgeclu.hostkeys import Contact
from edgeclu.inventory import load_inventory
from edgeclu.lifecycle.nodes import add_node, is_address


def find_on_lan(host: str, timeout: float) -> tuple[str, str, str | None]:
    """``(inventory name, address, announced fingerprint)`` for an mDNS name, by discovery's rules:
    a name heard from two addresses or SRV targets is refused (another machine may claim it)."""
    tell(f"looking for {host} on the LAN (mDNS, {timeout:g}s)")
    try:
        found = discovery.locate(host, discovery.merge(discovery.browse(timeout)))
    except ValueError as e:
        raise EdgecluError(str(e)) from None
    except OSError as e:
        raise EdgecluError(f"mDNS: cannot open a multicast socket: {e}") from None
    name = discovery.inventory_name(found.hostname)
    if not name:
        raise EdgecluError(f"{found.hostname!r} is not a valid inventory name; give one with --name")
    tell(f"found {found.hostname} at {found.addresses[0]}")
    return name, found.addresses[0], found.facts.get("ssh_fp")


def add(
    host: Annotated[str, typer.Argument(help="An address (IP or DNS name), or a host name seen by "
                                             "`edgeclu discover` (mDNS, e.g. pi-5 or pi-5.local).")],
    role: Annotated[str, typer.Option("--role", help="agent or server.")] = "agent",
    name: Annotated[str | None, typer.Option(
        "--name", help="Inventory name [default: the machine's host name].")] = None,
    user: Annotated[str | None, typer.Option("--user", help="SSH user [default: the inventory's].")] = None,
    ssh_port: Annotated[int | None, typer.Option("--ssh-port", help="SSH port [default: the inventory's].")] = None,
    ssh_key: Annotated[str | None, typer.Option("--ssh-key", help="SSH private key [default: the inventory's].")]
    = None,
    inventory: opt.Inventory = Path("inventory.yml"),
    accept_new: opt.AcceptNew = False,
    trust: opt.Trust = None,
    known_hosts: opt.KnownHosts = None,
    discover_timeout: Annotated[float, typer.Option(help="Seconds to listen for HOST on mDNS.")] = 3.0,
    verbose: Verbose = False,
    as_json: opt.Json = False,
) -> None:
    """Add a node to the inventory and join it to the cluster; no other node is changed.

    The node is preflighted, written to the inventory, and gets k3s. Only the new node is
    changed (the first server is read, and holds the cluster lock). If it does not join,
    the inventory is put back as it was. Exit code: 0 joined and
    Ready, 1 failed, 2 bad inventory, 4 another run holds the cluster lock.
    """
    inv = load_inventory(inventory)
    kh = known_hosts_path(inv, known_hosts)
    address, announced = host, None
    if not is_address(host):
        found_name, address, announced = find_on_lan(host, discover_timeout)
        name = name or found_name
    first_contact([Contact(name or host, address, ssh_port or inv.vars["ansible_port"], announced)], kh,
                  trust=trust, accept_new=accept_new)
    board = ph.Board(ph.ADD_PHASES, {}, default_role=role)
    with PhaseProgress(board, f"edgeclu add {host}", verbose=verbose) as view:
        outcome = add_node(Cluster(inv, kh, accept_new=accept_new, report=tell), address, role=role, name=name,
                           user=user, port=ssh_port, key_file=ssh_key, on_event=view)
        view.finish(outcome.result)
    ctx = sm.Context(str(inventory), inv.vars["cluster_name"], inv.vars["k3s_version"], f"add {host}")
    nodes = [n for n in sm.summarize(board, ctx) if n.name == outcome.name]
    status = (f"added: {outcome.name} ({outcome.role}, {outcome.address}) joined and is Ready" if outcome.ok else
              f"{outcome.name} did not join; {inventory} is back as it was")
    print_summary(nodes, status, sm.next_steps(ctx, None) if not outcome.ok else
                  [f"kubectl --context {ctx.cluster} get nodes", *sm.next_steps(ctx, None)])
    if as_json:
        out.print_json(json.dumps({"name": outcome.name, "role": outcome.role, "address": outcome.address,
                                   "ok": outcome.ok, "changed": outcome.result.changed,
                                   "node": nodes[0].as_dict() if nodes else None}))
    if not outcome.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("add", epilog="Example: edgeclu add 192.168.1.23 --role agent -i inventory.yml")(add)
