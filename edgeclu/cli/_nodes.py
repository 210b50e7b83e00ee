"""From an inventory (and CLI options) to the nodes' :class:`~edgeclu.transport.Remote` objects."""

from __future__ import annotations

from pathlib import Path

from edgeclu.cli._console import tell
from edgeclu.errors import EdgecluError
from edgeclu.inventory import Host, Inventory, load_inventory
from edgeclu.transport import SSHRemote, remote_for


def select(inv: Inventory, limit: str | None) -> list[Host]:
    if not limit:
        return list(inv.hosts)
    names = [n.strip() for n in limit.split(",") if n.strip()]
    unknown = [n for n in names if n not in {h.name for h in inv.hosts}]
    if unknown:
        raise EdgecluError(f"{inv.path}: no such host(s): {', '.join(unknown)}")
    return [h for h in inv.hosts if h.name in names]


def known_hosts_path(inv: Inventory, override: Path | None) -> Path:
    return override.expanduser() if override else inv.known_hosts


def remotes_for(inventory: Path | Inventory, *, limit: str | None = None, accept_new: bool = False,
                known_hosts: Path | None = None) -> list[SSHRemote]:
    inv = inventory if isinstance(inventory, Inventory) else load_inventory(inventory)
    kh = known_hosts_path(inv, known_hosts)
    return [remote_for(h, known_hosts=kh, accept_new=accept_new, report=tell) for h in select(inv, limit)]
