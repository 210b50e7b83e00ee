"""``edgeclu agent``: run the node agent here (or print one sample); ``edgeclu agent install``: put it on nodes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgeclu.cli import _options as opt

app = typer.Typer(
    help="The node health agent: serve /health and /metrics here, or install it on the nodes.",
    invoke_without_command=True,
    epilog="Examples:\n\n  edgeclu agent --once\n\n  edgeclu agent --config /etc/edgeclu/agent.json\n\n"
           "  edgeclu agent install -i inventory.yml",
)


@app.callback()
def agent(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option(
        help="Agent JSON config (default: /etc/edgeclu/agent.json if it exists, else built-in defaults).")] = None,
    once: Annotated[bool, typer.Option("--once", help="Print one health sample as JSON and exit.")] = False,
    listen: Annotated[str | None, typer.Option(help="Address to bind (overrides the config).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (overrides the config; default 9101).")] = None,
    no_announce: Annotated[bool, typer.Option("--no-announce", help="Do not announce over mDNS.")] = False,
) -> None:
    """Run the node agent in the foreground: GET /health (JSON) and GET /metrics (Prometheus),
    announced over mDNS as _edgeclu._tcp. Stop it with Ctrl-C.

    The same code runs on nodes as edgeclu-agent.service (see `edgeclu agent install`).
    """
    if ctx.invoked_subcommand:
        return
    from edgeclu.agent.main import main

    argv = ["--once"] if once else []
    for flag, value in (("--config", config), ("--listen", listen), ("--port", port)):
        if value is not None:
            argv += [flag, str(value)]
    if no_announce:
        argv.append("--no-announce")
    raise typer.Exit(main(argv))


@app.command("install", epilog="Example: edgeclu agent install -i inventory.yml --limit pi-3")
def install(
    inventory: opt.Inventory = Path("inventory.yml"),
    limit: opt.Limit = None,
    accept_new: opt.AcceptNew = False,
    trust: opt.Trust = None,
    known_hosts: opt.KnownHosts = None,
) -> None:
    """Install or update the agent on the nodes (edgeclu.cluster.agent): code in /opt/edgeclu,
    /etc/edgeclu/agent.json (root only), hardened edgeclu-agent.service, enabled and started.

    Idempotent. Exit code: 0 done, 1 some node failed, 2 bad inventory.
    """
    from edgeclu.cli._console import say
    from edgeclu.cli._nodes import cluster_for, select
    from edgeclu.cli._progress import PlaybookProgress, print_recap
    from edgeclu.inventory import load_inventory

    inv = load_inventory(inventory)
    chosen = select(inv, limit)
    cluster = cluster_for(inv, known_hosts, trust=trust, accept_new=accept_new, hosts=chosen)
    hosts = [h.name for h in chosen]
    with PlaybookProgress(hosts, "edgeclu agent install") as progress:
        result = cluster.playbook("agent.yml", limit=hosts if limit else None, on_event=progress)
    print_recap(result)
    if not result.ok:
        raise typer.Exit(1)
    say(f"[green]agent running[/] on {len(result.hosts)} node(s), {result.changed} change(s); "
        f"port {inv.vars['agent_port']}" + (", token required for /health" if inv.vars.get("agent_token_file")
                                            else ""))


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="agent")
