"""``edgeclu certs rotate``: new k3s certificates on every node, rolling, and a fresh kubeconfig."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from edgeclu.cli import _options as opt
from edgeclu.cli._console import out, safe, say
from edgeclu.cli._nodes import cluster_for
from edgeclu.inventory import load_inventory
from edgeclu.lifecycle.certs import dry_run, rotate_certs
from edgeclu.lifecycle.plan import describe

app = typer.Typer(help="Manage the cluster's k3s certificates.", no_args_is_help=True)


def _steps(steps) -> list[dict]:
    return [{"role": s.role, "nodes": list(s.nodes)} for s in steps]


@app.command("rotate", epilog="Example: edgeclu certs rotate -i inventory.yml")
def rotate(
    ready_timeout: Annotated[float, typer.Option(
        "--ready-timeout", help="Seconds a restarted node has to be Ready.")] = 300.0,
    dry_run_: Annotated[bool, typer.Option("--dry-run", help="Show the order; change nothing.")] = False,
    inventory: opt.Inventory = Path("inventory.yml"),
    accept_new: opt.AcceptNew = False,
    trust: opt.Trust = None,
    known_hosts: opt.KnownHosts = None,
    as_json: opt.Json = False,
) -> None:
    """Rotate k3s's certificates on every node (k3s certificate rotate), rolling.

    Servers one at a time (stop k3s, rotate, start, wait until it is Ready with a new serving
    certificate), then the kubeconfig gets the new client certificate (merged as `up` does,
    with a backup), then the agents in batches. The CAs stay, so nothing loses trust. Every
    node must be Ready first; a re-run after a stop resumes. Exit code: 0 rotated, 1 a node
    did not come back, 2 bad inventory, 4 another run holds the cluster lock.
    """
    inv = load_inventory(inventory)
    cluster = cluster_for(inv, known_hosts, trust=trust, accept_new=accept_new)
    if dry_run_:
        steps, skipped = dry_run(cluster)
        if as_json:
            out.print_json(json.dumps({"dry_run": True, "steps": _steps(steps), "skipped": skipped}))
        else:
            for i, s in enumerate(steps, 1):
                out.print(f"{i}. {s.role}: {', '.join(s.nodes)}", highlight=False, markup=False)
            say(escape(f"dry run: {describe(steps)}"
                       + (f" (already done by a stopped run: {', '.join(skipped)})" if skipped else "")
                       + "; nothing was changed"))
        return
    outcome = rotate_certs(cluster, ready_timeout=ready_timeout)
    installed = outcome.kubeconfig
    if as_json:
        out.print_json(json.dumps({
            "ok": outcome.ok, "steps": _steps(outcome.steps), "done": outcome.done, "skipped": outcome.skipped,
            "failed": outcome.failed, "not_started": outcome.not_started,
            "kubeconfig": {"path": str(installed.path), "changed": installed.changed,
                           "backup": str(installed.backup) if installed.backup else None} if installed else None}))
    if not outcome.ok:
        for node, why in outcome.failed.items():
            say(f"[red]✗ {safe(node)}[/]: {safe(why)}")
        raise typer.Exit(1)
    say(escape(f"rotated: new certificates on {len(outcome.done)} node(s), all Ready"
               + (f" ({len(outcome.skipped)} done by an earlier run)" if outcome.skipped else "")
               + (f"; kubeconfig {installed.path} refreshed" if installed else "")))


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="certs")
