"""``edgeclu backup``: snapshot the datastore and copy it, with the token, to this machine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from edgeclu.cli import _options as opt
from edgeclu.cli._console import out, say
from edgeclu.cli._lifecycle import BackupDir, backup_root
from edgeclu.cli._nodes import cluster_for
from edgeclu.inventory import load_inventory
from edgeclu.lifecycle.backup import create_backup, list_backups


def backup(
    list_: Annotated[bool, typer.Option("--list", help="List the backups kept here; take none.")] = False,
    backup_dir: BackupDir = None,
    inventory: opt.Inventory = Path("inventory.yml"),
    accept_new: opt.AcceptNew = False,
    trust: opt.Trust = None,
    known_hosts: opt.KnownHosts = None,
    as_json: opt.Json = False,
) -> None:
    """Back up the datastore and the token to this machine, or list the backups.

    An etcd snapshot (k3s etcd-snapshot save) or, for a single server, a copy of its
    SQLite datastore, plus the server token and the nodes' passwords.

    Kept on this machine in a 0700 directory of 0600 files; `--list` shows them and
    `edgeclu restore NAME` puts one back.
    """
    root = backup_root(backup_dir)
    if list_:
        found = list_backups(root)
        if as_json:
            out.print_json(json.dumps([b.summary() for b in found]))
            return
        for b in found:
            s = b.summary()
            out.print(f"{s['name']}  {s['created']}  {s['datastore']:<6}  {s['k3s_version'] or '-'}  "
                      f"{len(s['nodes'])} node(s)  {s['size']} bytes", highlight=False, markup=False)
        say(f"{len(found)} backup(s) in {root}")
        return
    inv = load_inventory(inventory)
    taken = create_backup(cluster_for(inv, known_hosts, trust=trust, accept_new=accept_new), root=root)
    if as_json:
        out.print_json(json.dumps(taken.summary()))
    else:
        out.print(taken.name, highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    app.command("backup", epilog="Example: edgeclu backup -i inventory.yml; edgeclu backup --list")(backup)
