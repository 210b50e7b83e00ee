"""``edgeclu upgrade --k3s-version vX``: rolling upgrade, servers first, then agents in batches."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from edgeclu import phases as ph
from edgeclu.cli import _options as opt
from edgeclu.cli._console import out, say
from edgeclu.cli._lifecycle import DrainTimeout
from edgeclu.cli._nodes import cluster_for
from edgeclu.cli._progress import PhaseProgress, print_words
from edgeclu.inventory import load_inventory
from edgeclu.lifecycle.plan import describe
from edgeclu.lifecycle.upgrade import check_target, plan_upgrade, upgrade_cluster
from edgeclu.lifecycle.words import upgrade_words


def upgrade(
    k3s_version: Annotated[str, typer.Option("--k3s-version", help="The k3s version to upgrade to, e.g. "
                                                                  "v1.31.5+k3s1.")],
    batch_percent: Annotated[int | None, typer.Option(
        "--batch-percent", min=1, max=100,
        help="Share of the agents upgraded at once, rounded up [default: the inventory's "
             "upgrade_batch_percent, 25].")] = None,
    drain_timeout: DrainTimeout = 120.0,
    ready_timeout: Annotated[float, typer.Option(
        "--ready-timeout", help="Seconds an upgraded node has to be Ready on the new version.")] = 300.0,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the order; change nothing.")] = False,
    inventory: opt.Inventory = Path("inventory.yml"),
    accept_new: opt.AcceptNew = False,
    trust: opt.Trust = None,
    known_hosts: opt.KnownHosts = None,
    as_json: opt.Json = False,
) -> None:
    """Upgrade k3s node by node: servers one at a time, then agents in batches.

    Each node is drained, upgraded, uncordoned and waited for until it is Ready on the new
    version. The run stops at the first node that does not come back and names it; a
    re-run skips the nodes already upgraded. When every node runs the new version, the
    inventory's k3s_version is set to it. Exit code: 0 upgraded, 1 stopped at a node,
    2 bad inventory, 4 another run holds the cluster lock.
    """
    inv = load_inventory(inventory)
    cluster = cluster_for(inv, known_hosts, trust=trust, accept_new=accept_new)
    check_target(k3s_version)
    if dry_run:
        api = cluster.api()
        try:
            steps, before = plan_upgrade(inv, api, k3s_version, batch_percent)
        finally:
            api.close()
        if as_json:
            out.print_json(json.dumps({"dry_run": True, "target": k3s_version, "versions": before,
                                       "steps": [{"role": s.role, "nodes": list(s.nodes)} for s in steps]}))
        else:
            for i, s in enumerate(steps, 1):
                out.print(f"{i}. {s.role}: {', '.join(s.nodes)}", highlight=False, markup=False)
            say(f"dry run: {describe(steps)}; nothing was changed")
        return
    board = ph.Board(ph.UPGRADE_PHASES, {h.name: h.role for h in inv.hosts}, first=inv.servers[0].name)
    with PhaseProgress(board, f"edgeclu upgrade to {k3s_version}") as view:
        outcome = upgrade_cluster(cluster, k3s_version, percent=batch_percent, drain_timeout=drain_timeout,
                                  ready_timeout=ready_timeout, on_step=view.step)
    if as_json:
        out.print_json(json.dumps({"target": outcome.target, "ok": outcome.ok, "upgraded": outcome.upgraded,
                                   "skipped": outcome.skipped, "failed": outcome.failed,
                                   "not_started": outcome.not_started}))
    lines, steps = upgrade_words(
        target=outcome.target, before=outcome.before, order=[(s.role, s.nodes) for s in outcome.steps],
        upgraded=outcome.upgraded, failed=outcome.failed, not_started=outcome.not_started,
        inventory=str(inventory), cluster=inv.vars["cluster_name"])
    status = (f"upgraded: {len(outcome.upgraded)} node(s) to {outcome.target}"
              + (f", {len(outcome.skipped)} already on it" if outcome.skipped else "")) if outcome.ok else \
        (f"stopped at {', '.join(outcome.failed)}" + (f"; left: {', '.join(outcome.not_started)}"
                                                      if outcome.not_started else ""))
    print_words(lines, status, outcome.ok, steps)
    if not outcome.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("upgrade", epilog="Example: edgeclu upgrade --k3s-version v1.31.5+k3s1 -i inventory.yml")(upgrade)
