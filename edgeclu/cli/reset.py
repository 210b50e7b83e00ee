"""``edgeclu reset``: uninstall k3s and the edgeclu agent from every node (after a backup)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from edgeclu import phases as ph
from edgeclu import summary as sm
from edgeclu.cli import _options as opt
from edgeclu.cli._console import out, say
from edgeclu.cli._lifecycle import BackupDir, Verbose, backup_root
from edgeclu.cli._nodes import cluster_for
from edgeclu.cli._progress import PhaseProgress, print_words
from edgeclu.inventory import load_inventory
from edgeclu.lifecycle.reset import reset_cluster
from edgeclu.lifecycle.words import reset_words


def reset(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    no_backup: Annotated[bool, typer.Option("--no-backup", help="Do not take a backup first.")] = False,
    backup_dir: BackupDir = None,
    inventory: opt.Inventory = Path("inventory.yml"),
    accept_new: opt.AcceptNew = False,
    trust: opt.Trust = None,
    known_hosts: opt.KnownHosts = None,
    verbose: Verbose = False,
    as_json: opt.Json = False,
) -> None:
    """Uninstall k3s and the edgeclu agent from every node, after a backup.

    Removes k3s (services, binary, config, data) and the edgeclu agent. Takes a backup first
    (see `edgeclu backup`) unless --no-backup.

    Asks for confirmation unless --yes. The inventory, the token file and the kubeconfig on
    this machine are kept, so `edgeclu up` or `edgeclu restore` can bring the cluster back.
    Exit code: 0 reset, 1 failed on some node or not confirmed, 4 another run holds the cluster lock.
    """
    inv = load_inventory(inventory)
    names = [h.name for h in inv.hosts]
    question = (f"Uninstall k3s from {len(names)} node(s) ({', '.join(names)}) and delete cluster "
                f"{inv.vars['cluster_name']!r}'s data on them{'' if no_backup else ' (after a backup)'}?")
    if not yes and not typer.confirm(question, default=False):
        say("nothing was changed")
        raise typer.Exit(1)
    cluster = cluster_for(inv, known_hosts, trust=trust, accept_new=accept_new)
    board = ph.Board(ph.RESET_PHASES, {h.name: h.role for h in inv.hosts}, first=inv.servers[0].name,
                     locate=ph.locate_reset)
    with PhaseProgress(board, "edgeclu reset", verbose=verbose) as view:
        view.step(ph.Step("backup", ph.SKIPPED if no_backup else ph.WORKING))
        outcome = reset_cluster(cluster, backup=not no_backup, backup_root=backup_root(backup_dir),
                                on_event=view)
        view.step(ph.Step("backup", ph.CHANGED if outcome.backup else ph.SKIPPED))
        view.finish(outcome.result)
    ctx = sm.Context(str(inventory), inv.vars["cluster_name"], inv.vars["k3s_version"], "reset --yes")
    nodes = sm.summarize(board, ctx)
    lines, steps = reset_words(
        nodes={n.name: (sm.words_line(n) if n.status in ("changed", "unchanged") else
                        f"{n.status.upper()} at {n.phase}: {n.reason} (try: {n.hint})") for n in nodes},
        backup=outcome.backup.name if outcome.backup else None, inventory=str(inventory))
    ok = outcome.result.ok
    print_words(lines, f"reset: k3s uninstalled from {len(outcome.result.hosts)} node(s)" if ok else
                f"reset failed on: {', '.join(outcome.result.failed_hosts)}", ok, steps)
    if as_json:
        out.print_json(json.dumps({"ok": outcome.result.ok, "backup": outcome.backup.name if outcome.backup else None,
                                   "failed": list(outcome.result.failed_hosts),
                                   "nodes": {n.name: n.as_dict() for n in nodes}}))
    if not outcome.result.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("reset", epilog="Example: edgeclu reset --yes -i inventory.yml")(reset)
