"""``edgeclu status``: is every node as the last `edgeclu up` left it, and what drifted (changes nothing)."""

from __future__ import annotations

import json

import typer

from edgeclu import stamp
from edgeclu.cli import _options as opt
from edgeclu.cli._console import out, safe, say
from edgeclu.cli._nodes import remotes_for
from edgeclu.inventory import load_inventory


def status(
    inventory: opt.Inventory = "inventory.yml",
    accept_new: opt.AcceptNew = False,
    trust: opt.Trust = None,
    known_hosts: opt.KnownHosts = None,
    as_json: opt.Json = False,
) -> None:
    """Say per node whether it is as the last `edgeclu up` left it and, if not, what drifted: a file the
    roles wrote, a service, a kernel module, swap, the k3s binary, the inputs (inventory, vars files,
    tokens, edgeclu). One SSH command per node, as root; nothing is changed and no lock is taken.

    Exit code: 0 every node as left and Ready, 1 something differs (`edgeclu up` repairs it), 3 a node
    could not be looked at.
    """
    inv = load_inventory(inventory)
    remotes = {r.name: r for r in remotes_for(inv, accept_new=accept_new, known_hosts=known_hosts, trust=trust)}
    try:
        looks = stamp.look(inv, remotes)
    finally:
        for r in remotes.values():
            r.close()
    not_ready = stamp.not_ready(inv, looks)
    rows = {h.name: {"as_left": looks[h.name].as_left, "why": stamp.why_not_as_left(h.name, looks[h.name]),
                     "drift": looks[h.name].drift, "ready": h.name not in not_ready,
                     "not_ready": not_ready.get(h.name)} for h in inv.hosts}
    if as_json:
        out.print_json(json.dumps({"nodes": rows}))
    for name, row in rows.items():
        if row["as_left"] and row["ready"]:
            say(f"[green]✓[/] {name}: as the last run left it, Ready")
            continue
        say(f"[yellow]![/] {safe(row['why'] or f'{name} is not Ready: ' + str(row['not_ready']))}")
        for line in row["drift"][1:]:
            say(f"    {safe(line)}")
    if any(lk.error for lk in looks.values()):
        raise typer.Exit(3)
    if not all(r["as_left"] and r["ready"] for r in rows.values()):
        say("`edgeclu up -i inventory.yml` converges what differs")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("status", epilog="Example: edgeclu status -i inventory.yml")(status)
