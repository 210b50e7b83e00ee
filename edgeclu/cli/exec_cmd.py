"""``edgeclu exec -- CMD``: run one shell command on every node, in parallel."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from edgeclu.cli import _options as opt
from edgeclu.cli._console import out, plain, safe, say
from edgeclu.cli._nodes import remotes_for
from edgeclu.errors import EdgecluError, Unreachable
from edgeclu.fleet import on_all


def exec_(
    command: Annotated[list[str], typer.Argument(help="Shell command (put it after --).")],
    inventory: opt.Inventory = "inventory.yml",
    limit: opt.Limit = None,
    sudo: Annotated[bool, typer.Option("--sudo", help="Run as root (sudo -n).")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds per node before giving up.")] = 60.0,
    accept_new: opt.AcceptNew = False,
    trust: opt.Trust = None,
    known_hosts: opt.KnownHosts = None,
    as_json: opt.Json = False,
) -> None:
    """Run a shell command on all nodes at once and show each node's result.

    Exit code: 0 all succeeded, 1 a command failed, 3 a node was unreachable.
    """
    cmd = " ".join(command)
    remotes = remotes_for(inventory, limit=limit, accept_new=accept_new, known_hosts=known_hosts,
                          trust=trust)
    say(f"running on {len(remotes)} node(s): {safe(cmd)}")
    results = on_all(remotes, lambda r: r.run(cmd, sudo=sudo, check=False, timeout=timeout))
    for r in remotes:
        r.close()
    if as_json:
        doc = {}
        for node, res in results.items():
            if isinstance(res, BaseException):
                doc[node] = {"ok": False, "unreachable": isinstance(res, Unreachable), "error": str(res)}
            else:
                doc[node] = {"ok": res.ok, "unreachable": False, "exit_code": res.exit_code,
                             "stdout": res.stdout, "stderr": res.stderr}
        out.print_json(json.dumps(doc))
    else:
        for node, res in results.items():
            if isinstance(res, BaseException):
                say(f"[red]✗ {node}[/]: {safe(res if isinstance(res, EdgecluError) else repr(res))}")
                continue
            mark = "[green]✓[/]" if res.ok else f"[red]✗ exit {res.exit_code}[/]"
            say(f"{mark} {node}")
            for line in res.stdout.splitlines():
                out.print(f"{node}: {plain(line)}", highlight=False, markup=False)
            for line in res.stderr.splitlines():
                say(f"  {node} stderr: {safe(line)}")
    failed = [n for n, r in results.items() if isinstance(r, BaseException) or not r.ok]
    if failed:
        say(f"{len(failed)} of {len(results)} node(s) failed: {', '.join(failed)}")
        down = any(isinstance(r, Unreachable) for r in results.values())
        raise typer.Exit(3 if down else 1)


def register(app: typer.Typer) -> None:
    app.command("exec", epilog="Example: edgeclu exec -i inventory.yml --sudo -- uptime")(exec_)
