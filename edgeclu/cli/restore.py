"""``edgeclu restore BACKUP``: put the cluster's datastore back from a backup (k3s cluster-reset)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from edgeclu import phases as ph
from edgeclu import summary as sm
from edgeclu.cli import _options as opt
from edgeclu.cli._console import out, say, tell
from edgeclu.cli._lifecycle import BackupDir, Verbose, backup_root
from edgeclu.cli._nodes import cluster_for
from edgeclu.cli._progress import PhaseProgress, print_summary, print_words
from edgeclu.inventory import load_inventory
from edgeclu.lifecycle.backup import load_backup
from edgeclu.lifecycle.restore import restore_backup
from edgeclu.lifecycle.words import restore_words


def restore(
    name: Annotated[str, typer.Argument(help="A backup name from `edgeclu backup --list`, or its directory.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    backup_dir: BackupDir = None,
    inventory: opt.Inventory = Path("inventory.yml"),
    accept_new: opt.AcceptNew = False,
    trust: opt.Trust = None,
    known_hosts: opt.KnownHosts = None,
    verbose: Verbose = False,
    as_json: opt.Json = False,
) -> None:
    """Restore a backup (k3s cluster-reset), on a running cluster or after `edgeclu reset`.

    Stops k3s on the servers, resets the first one onto the backup (cluster-reset with the
    snapshot, or its SQLite files), rejoins the other servers, then converges every node.

    Everything written to the cluster since the backup is lost. Exit code: 0 restored and
    every node Ready, 1 failed, 2 bad inventory, 4 another run holds the cluster lock.
    """
    inv = load_inventory(inventory)
    chosen = load_backup(name, backup_root(backup_dir))
    m = chosen.meta
    tell(f"backup {chosen.name}: {m['datastore']} datastore of {m['server']}, taken {m['created']}, "
         f"nodes: {', '.join(m.get('nodes', []))}")
    if not yes and not typer.confirm(f"Restore cluster {inv.vars['cluster_name']!r} to this backup? Changes made "
                                     "since it was taken are lost", default=False):
        say("nothing was changed")
        raise typer.Exit(1)
    cluster = cluster_for(inv, known_hosts, trust=trust, accept_new=accept_new)
    board = ph.Board(ph.RESTORE_PHASES, {h.name: h.role for h in inv.hosts}, first=inv.servers[0].name)
    with PhaseProgress(board, f"edgeclu restore {chosen.name}", verbose=verbose) as view:
        view.step(ph.Step("restore", ph.WORKING))
        outcome = restore_backup(cluster, chosen, on_event=view)
        result = outcome.converge.result
        view.step(ph.Step("restore", ph.CHANGED))
        view.finish(result)
    ctx = sm.Context(str(inventory), inv.vars["cluster_name"], inv.vars["k3s_version"], f"restore {chosen.name}")
    nodes = sm.summarize(board, ctx)
    print_words(restore_words(backup=chosen.name, token_replaced=outcome.token_replaced,
                              passwords=outcome.passwords_restored,
                              installed_first=inv.servers[0].name if outcome.installed_first else None),
                "restore: the datastore is the backup's", True, [])
    kube = str(outcome.converge.kubeconfig) if outcome.converge.kubeconfig else None
    print_summary(nodes, f"restored: {chosen.name}; {len(result.hosts)} node(s) Ready" if outcome.ok else
                  sm.status_line(nodes, result.changed), sm.next_steps(ctx, kube, cluster_up=outcome.ok))
    if as_json:
        out.print_json(json.dumps({"backup": chosen.name, "ok": outcome.ok, "token_replaced": outcome.token_replaced,
                                   "node_passwords_restored": outcome.passwords_restored,
                                   "failed": list(result.failed_hosts)}))
    if not outcome.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("restore", epilog="Example: edgeclu restore edgeclu-20250101-120000 -i inventory.yml")(restore)
