"""``edgeclu discover``: list the machines announcing themselves over mDNS, optionally write an inventory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from edgeclu import discovery, hostkeys
from edgeclu.cli import _options as opt
from edgeclu.cli import _scan
from edgeclu.cli._console import plain, safe, say, tell
from edgeclu.cli._nodes import first_contact
from edgeclu.cli.health import print_table
from edgeclu.errors import EdgecluError
from edgeclu.hostkeys import Contact

DEFAULT_K3S_VERSION = "v1.31.4+k3s1"

EPILOG = """Examples:

  edgeclu discover

  edgeclu discover --timeout 5 --json

  edgeclu discover --probe --user pi --ssh-key ~/.ssh/id_ed25519 --write-inventory inventory.yml

  edgeclu discover --server pi-1 --server pi-2 --write-inventory inventory.yml

  edgeclu discover --scan 192.168.1.0/24 --server pi-1 --write-inventory inventory.yml

  edgeclu discover --probe --trust pi-1=SHA256:... --address pi-2=192.168.1.12 --write-inventory inventory.yml
"""


def human_bytes(n: int | None) -> str:
    if not n:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit in ("B", "KiB", "MiB") else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover - the loop always returns


def key_cell(h: discovery.FoundHost) -> str:
    """The SSH KEY column: a fingerprint and whether it is only *announced* (TXT) or checked over SSH."""
    status, announced, received = h.ssh_fp_status, h.facts.get("ssh_fp"), h.ssh_fp_received
    if status is None:
        return "-"
    if status == "mismatch":
        return f"MISMATCH: announced {announced}, received {received}"
    return f"{received or announced} ({status})"


def role_cell(h: discovery.FoundHost, servers: list[str]) -> str:
    if h.hostname in servers:
        return "server"
    return "agent" if servers else "-"


def table(hosts: list[discovery.FoundHost], servers: list[str]) -> Table:
    t = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("HOST", "ADDRESS", "SERVICES", "ARCH", "MODEL", "RAM", "AGENT", "K3S", "SUGGESTED", "SSH KEY"):
        t.add_column(col, overflow="fold")
    for h in hosts:
        f = {**h.facts, **h.probed}
        address = ", ".join(h.addresses) or "-"
        cells = (h.hostname, f"CONFLICT: {address}" if h.conflict else address, ",".join(h.services),
                 f.get("arch", "-"), _scan.model_cell(f), human_bytes(f.get("ram")), f.get("agent", "-"),
                 f.get("role", "-"), role_cell(h, servers), key_cell(h))
        t.add_row(*(Text(plain(c)) for c in cells))
    return t


def probe(hosts: list[discovery.FoundHost], *, user: str, key_file: str | None, known_hosts: Path,
          accept_new: bool, trust: list[str] | None, timeout: float) -> dict[str, str]:
    """The key each host presents (compared with the one it announced), first contact, then facts over SSH
    (as read there, these and only these choose a server). Returns {host: error} for failures."""
    from edgeclu import node
    from edgeclu.fleet import on_all
    from edgeclu.transport import SSHRemote

    targets = [h for h in hosts if h.addresses and not h.conflict]
    contacts = {h.hostname: Contact(h.hostname, h.addresses[0], h.ssh_port or 22, h.facts.get("ssh_fp"))
                for h in targets}
    seen = on_all(contacts.values(), lambda c: hostkeys.scan(c, timeout), name=lambda c: c.name)
    errors: dict[str, str] = {}
    for h in targets:
        s = seen[h.hostname]
        if isinstance(s, BaseException):
            errors[h.hostname] = str(s)
        else:
            h.ssh_fp_received = s.fingerprint

    def scanned(c: Contact) -> hostkeys.Seen:
        s = seen[c.name]
        if isinstance(s, BaseException):
            raise s
        return s

    # a host whose key is not the one it announced is never trusted here, nor on first use
    mismatch = {h.hostname for h in targets if h.ssh_fp_status == "mismatch"}
    first_contact([c for n, c in contacts.items() if n not in mismatch and n not in errors], known_hosts,
                  trust=trust, accept_new=accept_new, scanner=scanned)
    reachable = [h for h in targets if h.hostname not in errors]
    remotes = {h.hostname: SSHRemote(h.hostname, h.addresses[0], user=user, port=h.ssh_port or 22,
                                     key_file=key_file, known_hosts=known_hosts,
                                     accept_new=accept_new and h.hostname not in mismatch,
                                     connect_timeout=timeout, report=tell) for h in reachable}
    results = on_all(reachable, lambda h: node.ask(remotes[h.hostname], timeout=timeout), name=lambda h: h.hostname)
    for r in remotes.values():
        r.close()
    for h in reachable:
        res = results[h.hostname]
        if isinstance(res, BaseException):
            errors[h.hostname] = str(res)
            continue
        facts = discovery.parse_probe(res)
        facts.pop("hostname", None)
        h.probed.update(facts)
        if "probe" not in h.services:
            h.services.append("probe")
    return errors


def _named_addresses(values: list[str], option: str) -> dict[str, str]:
    pairs = {}
    for v in values:
        name, sep, address = v.partition("=")
        if not sep or not name or not address:
            raise EdgecluError(f"{option} {v!r}: expected NAME=IP")
        pairs[name.strip().lower()] = address.strip()
    return pairs


def discover(
    timeout: Annotated[float, typer.Option(help="Seconds to listen for announcements.")] = 3.0,
    as_json: opt.Json = False,
    write_inventory: Annotated[Path | None, typer.Option(
        "--write-inventory", help="Write an inventory for the hosts found to this file.")] = None,
    server: Annotated[list[str] | None, typer.Option(
        "--server", metavar="NAME[=IP]",
        help="Make this host a k3s server (repeat for HA; default with --probe: the one with the most RAM). "
             "NAME=IP also settles its address.")] = None,
    address: Annotated[list[str] | None, typer.Option(
        "--address", metavar="NAME=IP",
        help="This host is at IP: settles a conflict (a name heard from two addresses or SRV targets).")] = None,
    k3s_version: Annotated[str, typer.Option(help="k3s version for the written inventory.")] = DEFAULT_K3S_VERSION,
    user: Annotated[str | None, typer.Option("--user", help="SSH user for --probe and the inventory.")] = None,
    ssh_key: Annotated[str | None, typer.Option("--ssh-key", help="SSH private key for --probe and the "
                                                                   "inventory.")] = None,
    probe_ssh: Annotated[bool, typer.Option("--probe", help="Check each host's SSH key against the one it "
                                                            "announced and read its facts over SSH.")] = False,
    known_hosts: opt.KnownHosts = None,
    accept_new: opt.AcceptNew = False,
    trust: opt.Trust = None,
    ipv6: Annotated[bool, typer.Option("--ipv6", help="Also list IPv6 addresses.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --write-inventory file.")] = False,
    scan: Annotated[bool, typer.Option("--scan", help="Also look for SSH hosts that announce nothing: port 22 "
                                                      "of every address in CIDR (default: this machine's own "
                                                      "subnets), named by their mDNS reverse lookup.")] = False,
    cidr: Annotated[list[str] | None, typer.Argument(
        metavar="CIDR", show_default=False,
        help="Ranges for --scan, e.g. 192.168.1.0/24 (several, or comma-separated; at most a /16).")] = None,
) -> None:
    """Find nodes on the LAN: edgeclu agents (_edgeclu._tcp), SSH hosts (_ssh._tcp), workstations.

    What mDNS says is a claim: a name heard from two addresses is a conflict, the server is
    chosen only by --server or --probe facts, a fingerprint is announced until --probe checks it.
    Exit code: 0 something was found, 1 nothing was found (or the inventory was refused).
    """
    if write_inventory and write_inventory.exists() and not force:
        raise EdgecluError(f"{write_inventory} exists; use --force to overwrite it")
    if cidr and not scan:
        raise EdgecluError(f"{cidr[0]}: a range is only scanned with --scan (edgeclu discover --scan {cidr[0]})")
    settled = _named_addresses(address or [], "--address")
    chosen = []
    for s in server or []:
        name, sep, _ = s.partition("=")
        chosen.append(name.strip())
        if sep:
            settled.update(_named_addresses([s], "--server"))
    scanning = _scan.start(cidr) if scan else None
    say(f"listening for mDNS announcements for {timeout:g}s…")
    try:
        hosts = discovery.merge(discovery.browse(timeout, ipv6=ipv6), ipv6=ipv6)
    except OSError as e:
        raise EdgecluError(f"mDNS: cannot open a multicast socket: {e}") from None
    if scanning:
        hosts = _scan.finish(scanning, hosts)
    try:
        discovery.settle(hosts, settled)
    except ValueError as e:
        raise EdgecluError(str(e)) from None
    if probe_ssh:
        kh = known_hosts.expanduser() if known_hosts else Path("~/.ssh/known_hosts").expanduser()
        for host, error in probe(hosts, user=user or "root", key_file=ssh_key, known_hosts=kh,
                                 accept_new=accept_new, trust=trust, timeout=max(timeout, 5.0)).items():
            say(f"[yellow]probe {safe(host)}[/]: {safe(error)}")
    try:
        servers = discovery.suggest_servers(hosts, chosen)
    except ValueError as e:
        raise EdgecluError(str(e)) from None
    if as_json:
        typer.echo(json.dumps([{**h.as_dict(), "suggested_role": role_cell(h, servers) if servers else None}
                               for h in hosts], indent=2, ensure_ascii=False))
    elif hosts:
        print_table(table(hosts, servers))
    for h in hosts:
        if h.conflict:
            say(f"[red]conflict[/] {safe(h.hostname)}: {safe(h.conflict)}; another machine may claim its name "
                f"(settle it with --address {safe(h.hostname)}=IP)")
        if h.ssh_fp_status == "mismatch":
            say(f"[red]host key mismatch[/] {safe(h.hostname)}: announced {safe(h.facts['ssh_fp'])}, "
                f"received {safe(h.ssh_fp_received)} over SSH; not trusted")
    say(f"{len(hosts)} host(s) found, {sum(h.has_agent for h in hosts)} with the edgeclu agent")
    if write_inventory:
        if not hosts:
            raise EdgecluError(f"nothing found: {write_inventory} not written")
        skipped = [h.hostname for h in hosts if discovery.inventory_name(h.hostname) is None or not h.addresses]
        for name in skipped:
            say(f"[yellow]skipped {safe(name)}[/]: no usable hostname or IPv4 address")
        try:
            text = discovery.inventory_text(hosts, servers, k3s_version=k3s_version, user=user, key_file=ssh_key)
        except ValueError as e:
            raise EdgecluError(f"{write_inventory} not written: {e}") from None
        write_inventory.write_text(text)
        say(f"wrote {write_inventory}: server(s) {', '.join(servers)}; check it with "
            f"`edgeclu inventory check {write_inventory}`")
    if not hosts:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("discover", epilog=EPILOG)(discover)
