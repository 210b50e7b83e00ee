"""``edgeclu preflight``: check that every node can run k3s, changing nothing."""

from __future__ import annotations

import json

import typer

from edgeclu import preflight as pf
from edgeclu.cli import _options as opt
from edgeclu.cli._console import out, plain, safe, say
from edgeclu.cli._nodes import cluster_for, select
from edgeclu.inventory import load_inventory


def preflight(
    inventory: opt.Inventory = "inventory.yml",
    limit: opt.Limit = None,
    accept_new: opt.AcceptNew = False,
    trust: opt.Trust = None,
    known_hosts: opt.KnownHosts = None,
    as_json: opt.Json = False,
) -> None:
    """Check every node before `edgeclu up`: unique hostnames, RAM (server >= 1 GB; agent >= 512 MB,
    else a warning), an architecture k3s supports, passwordless sudo, SSH reachability.

    Exit code: 0 no errors (warnings allowed), 1 a check failed, 3 a node was unreachable.
    """
    inv = load_inventory(inventory)
    hosts = select(inv, limit)
    rep = pf.run_preflight(cluster_for(inv, known_hosts, trust=trust, accept_new=accept_new, hosts=hosts),
                           hosts=hosts)
    if as_json:
        out.print_json(json.dumps(pf.as_json(rep, hosts)))
    else:
        for h in hosts:
            f = rep.facts.get(h.name)
            mine = [p for p in rep.problems if p.node == h.name]
            errors = sum(p.severity == "error" for p in mine)
            verdict = f"{errors} error(s)" if errors else ("warning" if mine else "ok")
            if f is None:
                cells = [h.name, h.role, "-", "-", "-", "-", verdict]
            else:
                ram = f"{f.mem_kib / 1024 / 1024:.1f}GiB" if f.mem_kib else "?"
                cells = [h.name, h.role, f.hostname, f.machine, ram, f"sudo:{f.sudo}", verdict]
            out.print(plain("  ".join(cells)), highlight=False, markup=False)
        for p in rep.problems:
            mark = "[red]✗[/]" if p.severity == "error" else "[yellow]![/]"
            say(f"{mark} {p.node}: {p.severity}: {safe(p.message)}")
    warnings = len(rep.problems) - len(rep.errors)
    say(f"preflight: {len(rep.errors)} error(s), {warnings} warning(s) on {len(hosts)} node(s)")
    if rep.errors:
        raise typer.Exit(3 if rep.unreachable else 1)


def register(app: typer.Typer) -> None:
    app.command("preflight", epilog="Example: edgeclu preflight -i inventory.yml")(preflight)
