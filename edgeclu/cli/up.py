"""``edgeclu up``: converge the cluster to the inventory (idempotent; ``--dry-run`` changes nothing)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from edgeclu import kubeconfig as kc
from edgeclu import phases as ph
from edgeclu import summary as sm
from edgeclu.cli import _options as opt
from edgeclu.cli._console import out, plain, say
from edgeclu.cli._nodes import cluster_for
from edgeclu.cli._progress import PhaseProgress, print_summary
from edgeclu.converge import converge
from edgeclu.inventory import load_inventory


def up(
    inventory: opt.Inventory = Path("inventory.yml"),
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change per node; change nothing.")]
    = False,
    accept_new: opt.AcceptNew = False,
    trust: opt.Trust = None,
    known_hosts: opt.KnownHosts = None,
    kubeconfig: Annotated[Path | None, typer.Option(
        help="Merge the cluster's kubeconfig here [default: $KUBECONFIG or ~/.kube/config].")] = None,
    merge_kubeconfig: Annotated[bool, typer.Option(
        "--merge-kubeconfig/--no-merge-kubeconfig", help="Merge the kubeconfig after converging.")] = True,
    skip_preflight: Annotated[bool, typer.Option("--skip-preflight", help="Do not run the preflight checks.")]
    = False,
    full: Annotated[bool, typer.Option("--full", help=(
        "Run the playbook even when every node is as the last run left it (see README: the converged stamp)."))]
    = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help=(
        "Show every task per node as Ansible names it, instead of the phases."))] = False,
    skip_unreachable: Annotated[bool, typer.Option("--skip-unreachable", help=(
        "Converge the nodes that answer and leave out the unreachable ones (never the first server, "
        "nor so many servers that etcd loses quorum)."))] = False,
    as_json: opt.Json = False,
) -> None:
    """Converge the cluster to the inventory: preflight, prerequisites, k3s, add-ons, node agent, kubeconfig.

    A second run changes nothing; when no node and no input changed since the last run (the converged
    stamp), it only looks. Exit code: 0 converged, 1 some node failed (the others still
    converge), 2 bad inventory, 3 unreachable nodes were skipped (--skip-unreachable), 4 another
    run holds the cluster lock (or this run lost it), 130/143 interrupted (SIGINT/SIGTERM).
    """
    inv = load_inventory(inventory)
    if merge_kubeconfig and not dry_run:
        kc.check(inv, kubeconfig)  # bad input is one line, before any progress
    cluster = cluster_for(inv, known_hosts, trust=trust, accept_new=accept_new)
    board = ph.Board(ph.UP_PHASES, {h.name: h.role for h in inv.hosts}, first=inv.servers[0].name)
    title = "edgeclu up --dry-run" if dry_run else "edgeclu up"
    with PhaseProgress(board, title, verbose=verbose) as view:
        view.step(ph.Step("preflight", ph.SKIPPED if skip_preflight else ph.WORKING))

        def on_event(ev) -> None:
            view(ev)
            if ev.status == "finished" and not dry_run and merge_kubeconfig:
                view.step(ph.Step("kubeconfig", ph.WORKING))

        outcome = converge(cluster, dry_run=dry_run, preflight=not skip_preflight, kubeconfig=kubeconfig,
                           merge_kubeconfig=merge_kubeconfig, on_event=on_event, fast=not full,
                           skip_unreachable=skip_unreachable)
        result = outcome.result
        view.step(ph.Step("preflight", ph.DONE))
        view.finish(result)
        view.step(ph.Step("kubeconfig", ph.SKIPPED if not outcome.kubeconfig else
                          ph.CHANGED if outcome.kubeconfig_changed else ph.DONE))
    if dry_run:
        plan = {h: rec.changed_tasks for h, rec in result.hosts.items()}
        diffs = {h: sm.diff_lines(rec.diffs) for h, rec in result.hosts.items()}
        if as_json:
            out.print_json(json.dumps({"dry_run": True, "would_change": plan, "diff": diffs}))
        else:
            for host in board.cells:
                tasks = plan.get(host, [])
                out.print(f"{host}: " + ("no changes" if not tasks else f"{len(tasks)} change(s)"),
                          highlight=False)
                for task in tasks:
                    out.print(f"  ~ {task}", highlight=False, markup=False)
                for line in diffs.get(host, []):  # the before side is the node's text
                    out.print(f"    {plain(line)}", highlight=False, markup=False)
        say("dry run: nothing was changed (secret values are masked, the token is never shown)")
    else:
        ctx = sm.Context(str(inventory), inv.vars["cluster_name"], inv.vars["k3s_version"])
        nodes = sm.summarize(board, ctx)
        path = str(outcome.kubeconfig) if outcome.kubeconfig else None
        steps = sm.next_steps(ctx, path, backup=str(outcome.kubeconfig_backup or "") or None,
                              default=sm.kubectl_reads(path, os.environ, Path.home()) if path else True,
                              cluster_up=any(n.status in ("changed", "unchanged") for n in nodes))
        status = sm.status_line(nodes, result.changed)
        print_summary(nodes, status, steps)
        if as_json:
            out.print_json(json.dumps({
                "ok": result.ok,
                "changed": result.changed,
                "nodes": {n.name: n.as_dict() for n in nodes},
                "hosts": {h: {"ok": r.healthy, "changed": r.changed, "failures": r.failures}
                          for h, r in result.hosts.items()},
                "kubeconfig": path,
                "next": steps,
                "skipped": outcome.skipped,
            }))
        if outcome.skipped:
            say(f"[yellow]skipped (unreachable): {', '.join(outcome.skipped)}[/]: not changed; run `edgeclu up` "
                "again when they are back")
    if not result.ok:
        raise typer.Exit(1)
    if outcome.skipped:
        raise typer.Exit(3)


def register(app: typer.Typer) -> None:
    app.command("up", epilog="Example: edgeclu up -i inventory.yml --dry-run")(up)
