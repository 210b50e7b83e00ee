"""``edgeclu health``: one table, a row per node, from the agents (SSH where an agent is down)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from edgeclu import kubeconfig
from edgeclu.cli import _options as opt
from edgeclu.cli._console import out, plain, safe, say
from edgeclu.cli._nodes import cluster_for, select
from edgeclu.errors import EdgecluError
from edgeclu.health import collect, report
from edgeclu.health.thresholds import Thresholds
from edgeclu.inventory import Host, load_inventory

EPILOG = """Examples:

  edgeclu health -i inventory.yml

  edgeclu health -i inventory.yml --json

  edgeclu health -i inventory.yml --watch 5 --temp-warn 70 --disk-warn 80
"""

_STYLE = {"ok": "green", "warning": "yellow", "critical": "red", "down": "bold red"}


def render(rep: report.Report) -> Table:
    t = Table(box=None, pad_edge=False, header_style="bold")
    for col in report.COLUMNS:
        t.add_column(col, overflow="fold", no_wrap=col not in ("NOTES", "MODEL", "PI", "K3S"))
    for n in rep.nodes:
        cells = report.row(n, rep.now)
        t.add_row(*[Text(plain(cells[c]), style=_STYLE[n.status]) if c == "STATUS" else Text(plain(cells[c]))
                    for c in report.COLUMNS])
    return t


def render_trends(rep: report.Report, history: report.History, every: float) -> Table:
    """Per node, a sparkline of CPU, memory, temperature and the fullest disk over the last rounds."""
    rounds = max((len(r) for r in history.rounds.values()), default=0)
    t = Table(box=None, pad_edge=False, header_style="bold",
              title=f"trends: the last {rounds} round(s), every {every:g}s", title_justify="left")
    for col in ("NODE", *report.TRENDS):
        t.add_column(col, no_wrap=True)
    for n in rep.nodes:
        cells = history.cells(n.name, rep.thresholds)
        t.add_row(n.name, *[cells[k] for k in report.TRENDS])
    return t


def print_table(table: Table) -> None:
    """A terminal folds long cells; a pipe or a file gets each row on one line."""
    if out.is_terminal:
        out.print(table)
        return
    saved = out.width
    out.width = max(out.measure(table, options=out.options.update_width(10_000)).maximum, saved)
    try:
        out.print(table)
    finally:
        out.width = saved


def health(
    inventory: opt.Inventory = Path("inventory.yml"),
    as_json: opt.Json = False,
    watch: Annotated[float | None, typer.Option("--watch", help="Refresh every N seconds until Ctrl-C.")] = None,
    limit: opt.Limit = None,
    timeout: Annotated[float, typer.Option(help="Seconds per node (agent, then SSH) before it counts as "
                                                "down.")] = 4.0,
    no_ssh: Annotated[bool, typer.Option("--no-ssh", help="Do not fall back to SSH when an agent is "
                                                          "down.")] = False,
    no_kubernetes: Annotated[bool, typer.Option("--no-kubernetes", help="Skip the Kubernetes node status "
                                                                        "(kubectl on a server).")] = False,
    token_file: Annotated[Path | None, typer.Option("--token-file", help="Agents' bearer token (default: the "
                                                                         "inventory's agent_token_file).")] = None,
    temp_warn: Annotated[float, typer.Option(help="Warn at this temperature (°C).")] = Thresholds.temp_warn,
    temp_crit: Annotated[float, typer.Option(help="Critical at this temperature (°C).")] = Thresholds.temp_crit,
    disk_warn: Annotated[float, typer.Option(help="Warn when a disk is this full (%).")] = Thresholds.disk_warn,
    disk_crit: Annotated[float, typer.Option(help="Critical when a disk is this full (%).")] = Thresholds.disk_crit,
    mem_warn: Annotated[float, typer.Option(help="Warn when memory use reaches this (%).")] = Thresholds.mem_warn,
    mem_crit: Annotated[float | None, typer.Option(help="Critical when memory use reaches this (%); "
                                                        "off by default.")] = None,
    cert_warn: Annotated[float, typer.Option(help="Warn when a server's serving certificate or the kubeconfig's "
                                                  "client certificate ends within this many days.")
                         ] = Thresholds.cert_warn_days,
    accept_new: opt.AcceptNew = False,
    trust: opt.Trust = None,
    known_hosts: opt.KnownHosts = None,
) -> None:
    """Health of every node: CPU, memory, disks, temperature, Pi power, k3s and Kubernetes status,
    and when the cluster's certificates end.

    Polls every node's agent at once; where an agent is down, samples over SSH. Reads every
    server's serving certificate over TLS and the kubeconfig's client certificate.
    Exit code: 0 all ok, 1 warning, 2 critical, 3 a node is down (unreachable).
    """
    thresholds = Thresholds(temp_warn, temp_crit, disk_warn, disk_crit, mem_warn, mem_crit, cert_warn)
    problems = thresholds.problems()
    if problems:
        raise EdgecluError("; ".join(problems))
    if timeout <= 0:
        raise EdgecluError("--timeout must be more than 0 seconds")
    inv = load_inventory(inventory)
    hosts = select(inv, limit)
    token = collect.read_token(inv, token_file)
    cluster = cluster_for(inv, known_hosts, trust=trust, accept_new=accept_new, hosts=hosts)
    kubeconfig_path = kubeconfig.path_for(inv)

    def remote_factory(host: Host, budget: float):
        # fabric int()s connect_timeout, and 0 means no timeout at all: never hand it less than 1 s
        return cluster.remote(host, connect_timeout=max(1, math.ceil(budget)))

    def one_round() -> report.Report:
        results, kube_result = collect.gather(
            hosts, inv.servers, port=inv.vars["agent_port"], token=token, timeout=timeout,
            remote_factory=remote_factory, ssh_fallback=not no_ssh, kubernetes=not no_kubernetes,
            cert_port=inv.vars["api_port"])
        client = collect.kubeconfig_cert(kubeconfig_path, inv.vars["cluster_name"])
        return report.build(results, kube_result, thresholds, client)

    def show(rep: report.Report) -> None:
        if as_json:
            # plain json: rich's print_json highlighting costs ~0.2 s for 10 nodes
            # --watch: one JSON document per line and round
            typer.echo(json.dumps(rep.as_dict(), indent=None if watch else 2, ensure_ascii=False))
            return
        print_table(render(rep))
        for f in rep.cluster:
            say(f"[{_STYLE[f.level]}]cluster[/]: {safe(f.message)}")
        counts = {s: sum(n.status == s for n in rep.nodes) for s in ("ok", "warning", "critical", "down")}
        say(", ".join(f"{v} {k}" for k, v in counts.items() if v) + f" → {rep.status}")

    if not watch:
        rep = one_round()
        show(rep)
        raise typer.Exit(rep.exit_code)
    if watch <= 0:
        raise EdgecluError("--watch must be more than 0 seconds")
    rep = None
    history = report.History()
    try:
        while True:
            started = time.monotonic()
            rep = one_round()
            history.add(rep)
            if not as_json and out.is_terminal:
                out.clear()
                say(time.strftime("%H:%M:%S") + f"  every {watch:g}s, Ctrl-C to stop")
            show(rep)
            if not as_json:
                print_table(render_trends(rep, history, watch))
            time.sleep(max(watch - (time.monotonic() - started), 0))
    except KeyboardInterrupt:
        pass
    raise typer.Exit(rep.exit_code if rep else 130)


def register(app: typer.Typer) -> None:
    app.command("health", epilog=EPILOG)(health)
