"""From an inventory (and CLI options) to the nodes' :class:`~edgeclu.transport.Remote` objects."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from edgeclu import hostkeys
from edgeclu.cli._console import err, say, tell
from edgeclu.cluster import Cluster
from edgeclu.errors import EdgecluError
from edgeclu.inventory import Host, Inventory, load_inventory
from edgeclu.transport import Remote


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


def ask_terminal(seen: list[hostkeys.Seen], known_hosts: Path) -> bool:
    """List every unknown host with its fingerprint; one question for all of them."""
    say(f"{len(seen)} host(s) not in {known_hosts} yet:")
    for s in seen:
        c = s.contact
        note = "  (the same as it announced over mDNS)" if c.announced == s.fingerprint else ""
        tell(f"  {c.name}  {hostkeys.host_field(c.host, c.port)}  {s.keytype} {s.fingerprint}{note}")
    say("Compare each with the node's own: `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on its console.")
    return typer.confirm("Trust these host keys?", default=False, err=True)


def first_contact(contacts: list[hostkeys.Contact], known_hosts: Path, *, trust: list[str] | None,
                  accept_new: bool, scanner=hostkeys.scan) -> None:
    """``--trust`` pins, then (on a terminal, without ``--accept-new``) one question for the other unknown hosts."""
    try:
        pins = hostkeys.parse_pins(trust)
    except ValueError as e:
        raise EdgecluError(str(e)) from None
    interactive = not accept_new and sys.stdin.isatty() and err.is_terminal
    hostkeys.first_contact(contacts, known_hosts, pins=pins, confirm=ask_terminal if interactive else None,
                           report=tell, scanner=scanner)


def trusted_known_hosts(inv: Inventory, override: Path | None, *, trust: list[str] | None, accept_new: bool,
                        hosts: list[Host] | None = None) -> Path:
    """The known_hosts file, after first contact with the inventory's hosts (or ``hosts``)."""
    kh = known_hosts_path(inv, override)
    first_contact([hostkeys.Contact(h.name, h.address, h.port) for h in (inv.hosts if hosts is None else hosts)],
                  kh, trust=trust, accept_new=accept_new)
    return kh


def cluster_for(inv: Inventory, override: Path | None, *, trust: list[str] | None, accept_new: bool,
                hosts: list[Host] | None = None) -> Cluster:
    """The :class:`~edgeclu.cluster.Cluster` a command works in, after first contact with the inventory's
    hosts (or ``hosts``); progress goes to stderr."""
    kh = trusted_known_hosts(inv, override, trust=trust, accept_new=accept_new, hosts=hosts)
    return Cluster(inv, kh, accept_new=accept_new, report=tell)


def remotes_for(inventory: Path | Inventory, *, limit: str | None = None, accept_new: bool = False,
                known_hosts: Path | None = None, trust: list[str] | None = None) -> list[Remote]:
    inv = inventory if isinstance(inventory, Inventory) else load_inventory(inventory)
    hosts = select(inv, limit)
    cluster = cluster_for(inv, known_hosts, trust=trust, accept_new=accept_new, hosts=hosts)
    return [cluster.remote(h) for h in hosts]
