"""``discover --scan``: find fresh nodes that announce no mDNS service.

A freshly flashed Pi OS, Ubuntu or Debian host with avahi answers for its host name
but usually announces no ``_ssh._tcp`` or ``_workstation._tcp``, so browsing finds
nothing. The scan looks instead, only inside the ranges it is given:

1. a TCP connect to port 22 of every host address of the ranges (bounded: at most
   :data:`MAX_ADDRESSES` addresses, :data:`CONCURRENCY` at once, :data:`CONNECT_TIMEOUT`
   per connect);
2. on an open port, the SSH identification line the server sends first
   (RFC 4253 §4.2), read with a deadline and kept only as bounded, printable text;
3. the host's name from its own mDNS responder: a PTR query for its reverse name
   (``d.c.b.a.in-addr.arpa.``) sent by unicast to ``<address>:5353`` from an ephemeral
   port, a "legacy unicast" query (RFC 6762 §6.7) that avahi answers by unicast,
   echoing the query ID; the answer must come from that address (a connected socket)
   and name a valid ``<label>.local.`` host name;
4. the MAC address from the kernel's neighbour table (``/proc/net/arp``, filled by the
   connect), and from its IEEE OUI whether it is a Raspberry Pi.

What the scan learned is kept apart from what mDNS announced (:func:`merge` adds it
under the host's ``scan`` fact, one entry per address) and is no more trusted: an
address an mDNS host already has keeps the mDNS name, and a name only the scan heard
is shown as such (the host's only service is ``scan``).

Everything up to :func:`merge` is pure; :func:`scan` and what follows it is the network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import resource
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from edgeclu.discovery import FoundHost

SSH_PORT = 22
MDNS_PORT = 5353
MIN_PREFIX = 16  # --scan CIDR: refuse anything wider than a /16 ...
MAX_ADDRESSES = 2**16 - 2  # ... and more host addresses than a /16 has, over all ranges together
MIN_LOCAL_PREFIX = 22  # the controller's own subnets (--scan without a range): none wider than /22
CONCURRENCY = 256  # connects at once (each host also holds one UDP socket while it is asked its name)
CONNECT_TIMEOUT = 1.0  # a host on the LAN answers a SYN in milliseconds; an empty address never does
READ_TIMEOUT = 1.5  # banner and name, in parallel, once the port is open
BANNER_MAX = 255  # RFC 4253 §4.2: the identification string, CR LF included
READ_MAX = 1024  # bytes read from port 22 at most (lines before the identification are allowed)
TYPE_PTR = 12  # RFC 1035 §3.2.2
CLASS_IN = 1

# Raspberry Pi's IEEE MA-L assignments (OUIs), as the IEEE registry lists them
# (https://standards-oui.ieee.org/oui/oui.txt, entries "Raspberry Pi Foundation" and
# "Raspberry Pi (Trading) Ltd", quoted in https://raspberrypi.stackexchange.com/q/28365).
RASPBERRY_PI_OUIS = frozenset({"28:cd:c1", "2c:cf:67", "b8:27:eb", "d8:3a:dd", "dc:a6:32", "e4:5f:01"})

_LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
# RFC 4253 §4.2: SSH-protoversion-softwareversion SP comments, printable US-ASCII. Lenient
# on a '-' in the software version, which some servers send ("SSH-1.99-Cisco-1.25")
_IDENT_RE = re.compile(r"^SSH-[0-9]+\.[0-9]+-[!-~]+( [ -~]*)?$")
# "0.0.0.0/8" (this network) is not special to ipaddress's is_* checks on a network
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")


class ScanError(ValueError):
    """A range that cannot be scanned, with the reason (one line)."""


@dataclass(frozen=True)
class ScanHit:
    """One address that accepted a connection on port 22, and what was learned about it."""

    address: str
    port: int = SSH_PORT
    banner: str | None = None  # the SSH identification line, printable ASCII, at most BANNER_MAX
    name: str | None = None  # from the address's own mDNS answer to the reverse lookup, without ".local"
    mac: str | None = None  # from the neighbour table
    vendor: str | None = None  # from the MAC's OUI

    def as_dict(self) -> dict:
        """The ``scan`` fact: every key names where it came from."""
        fact = {"address": self.address, "port": self.port, "ssh_banner": self.banner,
                "reverse_name": self.name, "mac": self.mac, "mac_vendor": self.vendor}
        return {k: v for k, v in fact.items() if v is not None}


# -- pure: what to scan ----------------------------------------------------------------
def usable(ip: ipaddress.IPv4Address) -> bool:
    """An address a node can have: not loopback, link-local, multicast, reserved or 0.0.0.0/8."""
    return not (ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
                or ip.is_unspecified or ip in _THIS_NETWORK)


def parse_ranges(specs: Iterable[str]) -> list[ipaddress.IPv4Network]:
    """``["10.0.0.0/24", "10.0.1.0/24,10.0.2.7"]`` -> networks; ScanError names a range that cannot be scanned."""
    networks = []
    for spec in specs:
        for text in filter(None, (part.strip() for part in spec.split(","))):
            try:
                net = ipaddress.ip_network(text, strict=False)
            except ValueError:
                raise ScanError(f"--scan {text}: not an IPv4 range (e.g. 192.168.1.0/24)") from None
            if net.version != 4:
                raise ScanError(f"--scan {text}: only IPv4 ranges are scanned")
            if net.prefixlen < MIN_PREFIX:
                raise ScanError(f"--scan {text}: wider than /{MIN_PREFIX} ({net.num_addresses} addresses); "
                                "give a narrower range")
            if not usable(net.network_address) or not usable(net.broadcast_address):
                raise ScanError(f"--scan {text}: loopback, link-local, multicast or reserved addresses "
                                "are never scanned")
            networks.append(net)
    if not networks:
        raise ScanError("--scan: no range given")
    return networks


def expand(networks: Iterable[ipaddress.IPv4Network]) -> list[ipaddress.IPv4Address]:
    """Every host address of the ranges (not the network or broadcast address), once, in order."""
    numbers: set[int] = set()
    for net in networks:
        if not usable(net.network_address) or not usable(net.broadcast_address):
            raise ScanError(f"--scan {net}: loopback, link-local, multicast or reserved addresses are never scanned")
        if len(numbers) + net.num_addresses - 2 > MAX_ADDRESSES:
            raise ScanError(f"--scan: more than {MAX_ADDRESSES} addresses in all; give narrower ranges")
        first, last = int(net.network_address), int(net.broadcast_address)
        if net.prefixlen < 31:  # RFC 3021: a /31 has no network or broadcast address, a /32 is one host
            first, last = first + 1, last - 1
        numbers.update(range(first, last + 1))
    return [ipaddress.IPv4Address(n) for n in sorted(numbers)]


def local_networks(adapters) -> tuple[list[ipaddress.IPv4Network], list[str]]:
    """The controller's own IPv4 subnets (``ifaddr`` adapters) and a note for each one left out.

    Loopback and link-local are never scanned; a subnet wider than /:data:`MIN_LOCAL_PREFIX`
    (a container bridge, a big office net) only when it is given as a range.
    """
    networks: list[ipaddress.IPv4Network] = []
    skipped: list[str] = []
    for adapter in adapters:
        for ip in adapter.ips:
            if not ip.is_IPv4:
                continue
            net = ipaddress.ip_network(f"{ip.ip}/{ip.network_prefix}", strict=False)
            if not usable(ipaddress.ip_address(ip.ip)) or net.prefixlen >= 31:
                continue  # loopback, link-local; a point-to-point or host route is no LAN
            if net.prefixlen < MIN_LOCAL_PREFIX:
                skipped.append(f"{adapter.nice_name} {net} is wider than /{MIN_LOCAL_PREFIX}: "
                               f"not scanned unless given (--scan {net})")
            elif net not in networks:
                networks.append(net)
    return networks, skipped


# -- pure: what came back ----------------------------------------------------------------
def parse_banner(data: bytes) -> str | None:
    """The SSH identification line from what port 22 sent, or None.

    The server may send other lines first (RFC 4253 §4.2); only a complete line starting
    with ``SSH-``, no longer than :data:`BANNER_MAX` with its CR LF, of printable US-ASCII,
    and of the form ``SSH-proto-software[ comments]`` counts.
    """
    for line in data[:READ_MAX].split(b"\n")[:-1]:  # the last piece has no LF: incomplete
        if not line.startswith(b"SSH-"):
            continue
        if len(line) + 1 > BANNER_MAX:
            return None
        text = line.removesuffix(b"\r").decode("ascii", "replace")
        return text if _IDENT_RE.match(text) else None
    return None


def reverse_name(address: str) -> str:
    """``10.77.0.11`` -> ``11.0.77.10.in-addr.arpa.``"""
    return ipaddress.ip_address(address).reverse_pointer + "."


def local_host_name(name: str) -> str | None:
    """``Node1.local.`` -> ``node1``: one valid RFC 1123 label in ``.local``, else None."""
    name = name.lower().rstrip(".")
    if not name.endswith(".local"):
        return None
    label = name[: -len(".local")]
    return label if _LABEL_RE.match(label) else None


def reverse_query(address: str, query_id: int) -> bytes:
    """A legacy-unicast mDNS query (RFC 6762 §6.7: non-zero ID, sent from a port other than 5353)."""
    from zeroconf import DNSOutgoing, DNSQuestion

    out = DNSOutgoing(0, False, query_id)  # flags 0: a standard query
    out.add_question(DNSQuestion(reverse_name(address), TYPE_PTR, CLASS_IN))
    return out.packets()[0]


def parse_reverse_answer(packet: bytes, address: str, query_id: int) -> str | None:
    """The host name in an answer to :func:`reverse_query`, validated, or None."""
    from zeroconf import DNSIncoming

    try:
        msg = DNSIncoming(packet)
        if not msg.valid or msg.is_query() or msg.id != query_id:
            return None
        want = reverse_name(address)
        for record in msg.answers():
            if record.type == TYPE_PTR and record.name.lower() == want:
                name = local_host_name(getattr(record, "alias", "") or "")
                if name:
                    return name
    except Exception:  # noqa: BLE001 - a packet from the network that the parser chokes on is no answer
        return None
    return None


def parse_arp(text: str) -> dict[str, str]:
    """``/proc/net/arp`` -> ``{address: mac}`` for complete entries (flag ATF_COM, 0x2)."""
    table = {}
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4:
            continue
        address, flags, mac = fields[0], fields[2], fields[3].lower()
        try:
            complete = int(flags, 16) & 0x2
        except ValueError:
            continue
        if complete and _MAC_RE.match(mac) and mac != "00:00:00:00:00:00":
            table[address] = mac
    return table


def mac_vendor(mac: str | None) -> str | None:
    """``"Raspberry Pi"`` when the MAC's OUI is one of Raspberry Pi's, else None."""
    if not mac:
        return None
    mac = mac.lower().replace("-", ":")
    if not _MAC_RE.match(mac):
        return None
    return "Raspberry Pi" if mac[:8] in RASPBERRY_PI_OUIS else None


def merge(hosts: list[FoundHost], hits: Iterable[ScanHit]) -> tuple[list[FoundHost], list[ScanHit]]:
    """Fold scan hits into the mDNS hosts: one host per name, as :func:`edgeclu.discovery.merge` does.

    A hit at an address an mDNS host has belongs to that host (its mDNS name stays); else to
    the host of its reverse name (a name heard at a second address is then a conflict, as
    for mDNS), else a new host whose only service is ``scan``. Returns the hosts sorted by
    name and the hits with neither a known address nor a name.
    """
    by_name = {h.hostname: h for h in hosts}
    by_address = {a: h for h in hosts for a in h.addresses}
    unnamed = []
    for hit in hits:
        h = by_address.get(hit.address)
        if h is None and hit.name:
            h = by_name.setdefault(hit.name, FoundHost(hostname=hit.name))
        if h is None:
            unnamed.append(hit)
            continue
        if hit.address not in h.addresses:
            h.addresses.append(hit.address)
            h.addresses.sort(key=lambda a: (ipaddress.ip_address(a.split("%")[0]).version,
                                            int(ipaddress.ip_address(a.split("%")[0]))))
            by_address[hit.address] = h
        if "scan" not in h.services:
            h.services.append("scan")
        if h.ssh_port is None:
            h.ssh_port = hit.port
        h.facts.setdefault("scan", []).append(hit.as_dict())
    return [by_name[k] for k in sorted(by_name)], unnamed


# -- the network part ---------------------------------------------------------------
def scan(addresses: Iterable[ipaddress.IPv4Address], *, port: int = SSH_PORT,
         connect_timeout: float = CONNECT_TIMEOUT, read_timeout: float = READ_TIMEOUT,
         concurrency: int = CONCURRENCY) -> list[ScanHit]:
    """Probe ``addresses`` (and nothing else) and return the ones with ``port`` open, by address."""
    targets = [str(ip) for ip in addresses]
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = max(1, min(concurrency, (soft - 64) // 2)) if soft > 0 else concurrency
    hits = asyncio.run(_scan(targets, port, connect_timeout, read_timeout, limit))
    neighbours = read_neighbours()
    return [replace(h, mac=neighbours.get(h.address), vendor=mac_vendor(neighbours.get(h.address))) for h in hits]


def read_neighbours() -> dict[str, str]:
    """This thread's network namespace's ARP table (``/proc/net`` follows the process, not the thread)."""
    for path in ("/proc/thread-self/net/arp", "/proc/net/arp"):
        try:
            return parse_arp(Path(path).read_text())
        except OSError:
            continue
    return {}


async def _scan(targets: list[str], port: int, connect_timeout: float, read_timeout: float,
                concurrency: int) -> list[ScanHit]:
    gate = asyncio.Semaphore(concurrency)

    async def one(address: str) -> ScanHit | None:
        async with gate:
            try:
                async with asyncio.timeout(connect_timeout):
                    reader, writer = await asyncio.open_connection(address, port)
            except (OSError, TimeoutError):
                return None
            try:
                query_id = 1 + secrets.randbelow(0xFFFF)  # the answer must echo it
                banner, name = await asyncio.gather(_read_banner(reader, read_timeout),
                                                    _ask_name(address, query_id, read_timeout))
            finally:
                writer.close()
            return ScanHit(address, port, parse_banner(banner), name)

    results = await asyncio.gather(*(one(a) for a in targets))
    return [r for r in results if r is not None]


def _has_ident(data: bytes) -> bool:
    return any(line.startswith(b"SSH-") for line in data.split(b"\n")[:-1])


async def _read_banner(reader: asyncio.StreamReader, timeout: float) -> bytes:
    """What port 22 sends until its identification line is complete, READ_MAX bytes, EOF or the deadline."""
    data = b""
    try:
        async with asyncio.timeout(timeout):
            while len(data) < READ_MAX and not _has_ident(data):
                chunk = await reader.read(READ_MAX - len(data))
                if not chunk:
                    break
                data += chunk
    except (OSError, TimeoutError):
        pass
    return data


class _Answer(asyncio.DatagramProtocol):
    def __init__(self, address: str, query_id: int, done: asyncio.Future):
        self.address, self.query_id, self.done = address, query_id, done

    def datagram_received(self, data: bytes, addr) -> None:
        name = parse_reverse_answer(data, self.address, self.query_id)
        if name and not self.done.done():
            self.done.set_result(name)

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable: no mDNS responder there
        if not self.done.done():
            self.done.set_result(None)


async def _ask_name(address: str, query_id: int, timeout: float) -> str | None:
    loop = asyncio.get_running_loop()
    done: asyncio.Future = loop.create_future()
    try:
        # connected: the kernel drops datagrams from any other address or port
        transport, _ = await loop.create_datagram_endpoint(lambda: _Answer(address, query_id, done),
                                                           remote_addr=(address, MDNS_PORT))
    except OSError:
        return None
    query = reverse_query(address, query_id)
    try:
        transport.sendto(query)
        try:
            return await asyncio.wait_for(asyncio.shield(done), timeout / 3)
        except TimeoutError:
            transport.sendto(query)  # once more: a datagram lost on a busy LAN
            return await asyncio.wait_for(done, timeout * 2 / 3)
    except TimeoutError:
        return None
    finally:
        transport.close()
