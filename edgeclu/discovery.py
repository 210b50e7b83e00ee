"""Find nodes on the LAN over mDNS: edgeclu agents, plain SSH hosts and avahi workstations.

``browse()`` is the only part that touches the network (python-zeroconf, asyncio
API); it returns :class:`Sighting` records (one resolved service instance each).
Everything after that is pure: :func:`merge` folds sightings into one
:class:`FoundHost` per machine, :func:`settle` applies addresses the user gave,
:func:`suggest_servers` picks the server, :func:`inventory_text` writes an inventory,
:func:`locate` finds one host for ``edgeclu add`` and :func:`parse_probe` reads the
answer of the node probe (``--probe``: facts over SSH, :func:`edgeclu.node.ask`, the one preflight runs).

mDNS is unauthenticated: anyone on the LAN can announce any name, address or TXT. So a
name heard with two addresses (per IP version) or from two SRV targets is a *conflict*
that only the user settles; TXT facts are shown but never choose the server (only
``--probe`` facts or ``--server`` do); the announced ``ssh_fp`` is a claim until the key
received over SSH matches it; loopback and link-local addresses are never a host's
address (avahi answers a local querier on ``lo`` with 127.0.0.1).

TXT keys announced by the agent (``edgeclu/agent/announce.py``): ``hostname``,
``arch``, ``model``, ``ram`` (bytes), ``agent`` (version), ``role`` (k3s role or
``none``), ``ssh_fp`` (ed25519 host key, ``SHA256:...``), ``schema``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from edgeclu import node

EDGECLU = "_edgeclu._tcp.local."
SSH = "_ssh._tcp.local."
WORKSTATION = "_workstation._tcp.local."
SERVICE_TYPES = (EDGECLU, SSH, WORKSTATION)
SHORT = {EDGECLU: "edgeclu", SSH: "ssh", WORKSTATION: "workstation"}
DEFAULT_AGENT_PORT = 9101

# avahi names workstations "host [aa:bb:cc:dd:ee:ff]"
_WORKSTATION_RE = re.compile(r"^(.*?)\s*\[[0-9a-fA-F:]{17}\]$")
_HOSTNAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class Sighting:
    """One resolved mDNS service instance."""

    service: str  # e.g. "_edgeclu._tcp.local."
    instance: str  # e.g. "node1._edgeclu._tcp.local."
    server: str | None  # SRV target, e.g. "node1.local."
    addresses: tuple[str, ...]
    port: int | None
    txt: dict[str, str] = field(default_factory=dict, compare=False)


@dataclass
class FoundHost:
    """Everything heard about one machine, merged."""

    hostname: str
    addresses: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)  # "edgeclu", "ssh", "workstation" (+ "probe")
    ssh_port: int | None = None
    agent_port: int | None = None
    facts: dict = field(default_factory=dict)  # arch, model, ram, agent, role, ssh_fp: announced (TXT), claims
    targets: list[str] = field(default_factory=list)  # SRV targets heard for it
    settled: bool = False  # the user gave its address (--address/--server NAME=IP)
    probed: dict = field(default_factory=dict)  # facts read over SSH (--probe): only these choose a server
    ssh_fp_received: str | None = None  # the host key fingerprint received over SSH (--probe)

    @property
    def has_agent(self) -> bool:
        return "edgeclu" in self.services

    @property
    def ram(self) -> int:
        """RAM as read over SSH (``--probe``); 0 when only announced."""
        value = self.probed.get("ram")
        return value if isinstance(value, int) else 0

    @property
    def conflict(self) -> str | None:
        """Why this name cannot be trusted to one machine, or None."""
        if self.settled:
            return None
        if len(self.targets) > 1:
            return f"announced by {len(self.targets)} SRV targets: {', '.join(self.targets)}"
        for version in (4, 6):
            mine = [a for a in self.addresses if ipaddress.ip_address(a.split("%")[0]).version == version]
            if len(mine) > 1:
                return f"seen at {len(mine)} addresses: {', '.join(mine)}"
        return None

    @property
    def ssh_fp_status(self) -> str | None:
        """``announced`` (TXT only), ``received`` (SSH only), ``verified`` (both agree), ``mismatch``."""
        announced = self.facts.get("ssh_fp")
        if not self.ssh_fp_received:
            return "announced" if announced else None
        if not announced:
            return "received"
        return "verified" if announced == self.ssh_fp_received else "mismatch"

    def as_dict(self) -> dict:
        return {"hostname": self.hostname, "addresses": self.addresses, "services": self.services,
                "ssh_port": self.ssh_port, "agent_port": self.agent_port, **self.facts, **self.probed,
                "conflict": self.conflict, "ssh_fp_status": self.ssh_fp_status,
                "ssh_fp_received": self.ssh_fp_received}


# -- pure: from mDNS records to hosts ---------------------------------------------
def decode_txt(properties: dict) -> dict[str, str]:
    """zeroconf's ``{b"key": b"value" | None}`` -> ``{"key": "value"}`` (flag keys -> "")."""
    txt = {}
    for k, v in (properties or {}).items():
        key = k.decode("utf-8", "replace") if isinstance(k, bytes) else str(k)
        if not key:
            continue  # an empty TXT record decodes to {b"": None}
        val = v.decode("utf-8", "replace") if isinstance(v, bytes) else ("" if v is None else str(v))
        txt[key.lower()] = val
    return txt


def host_of(s: Sighting) -> str:
    """The machine a sighting belongs to: TXT hostname, else SRV target, else instance name."""
    if s.txt.get("hostname"):
        return s.txt["hostname"].strip().lower()
    if s.server:
        name = s.server.rstrip(".")
        return (name[: -len(".local")] if name.lower().endswith(".local") else name).lower()
    label = s.instance[: -len(s.service) - 1] if s.instance.endswith("." + s.service) else s.instance
    m = _WORKSTATION_RE.match(label)
    return (m.group(1) if m else label).strip().lower()


def usable_address(address: str, ipv6: bool = False) -> bool:
    """An address a host can be reached at from the LAN: not loopback, link-local, multicast or unspecified."""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    if ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_unspecified:
        return False
    return ip.version == 4 or ipv6


def _address_key(address: str) -> tuple:
    ip = ipaddress.ip_address(address.split("%")[0])
    return (ip.version, int(ip))


def _facts_from_txt(txt: dict[str, str]) -> dict:
    facts: dict = {}
    for key in ("arch", "model", "agent", "ssh_fp"):
        if txt.get(key):
            facts[key] = txt[key]
    if txt.get("role") and txt["role"] != "none":
        facts["role"] = txt["role"]
    if txt.get("ram", "").isdigit():
        facts["ram"] = int(txt["ram"])
    return facts


def merge(sightings: Iterable[Sighting], ipv6: bool = False) -> list[FoundHost]:
    """One :class:`FoundHost` per machine, sorted by name; IPv4 only unless ``ipv6``."""
    hosts: dict[str, FoundHost] = {}
    for s in sightings:
        name = host_of(s)
        if not name:
            continue
        h = hosts.setdefault(name, FoundHost(hostname=name))
        short = SHORT.get(s.service, s.service)
        if short not in h.services:
            h.services.append(short)
        for a in s.addresses:
            if usable_address(a, ipv6) and a not in h.addresses:
                h.addresses.append(a)
        if s.server and s.server.lower() not in h.targets:
            h.targets.append(s.server.lower())
        if s.service == EDGECLU:
            h.agent_port = s.port
            h.facts.update(_facts_from_txt(s.txt))
        elif s.service == SSH:
            h.ssh_port = s.port
    for h in hosts.values():
        h.services.sort(key=lambda x: list(SHORT.values()).index(x) if x in SHORT.values() else 99)
        h.addresses.sort(key=_address_key)
    return [hosts[k] for k in sorted(hosts)]


def _find(name: str, hosts: list[FoundHost]) -> FoundHost | None:
    want = name.lower().rstrip(".").removesuffix(".local")
    return next((h for h in hosts if h.hostname == want), None)


def settle(hosts: list[FoundHost], addresses: dict[str, str]) -> None:
    """The user's word on where a host is (``NAME=IP``): its only address from now on, conflict settled."""
    for name, address in addresses.items():
        h = _find(name, hosts)
        if h is None:
            raise ValueError(f"not discovered: {name} (found: {', '.join(x.hostname for x in hosts) or 'nothing'})")
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise ValueError(f"{name}={address}: not an IP address") from None
        h.addresses, h.settled = [address], True


def suggest_servers(hosts: list[FoundHost], chosen: list[str] | None = None) -> list[str]:
    """The names that should be k3s servers: ``chosen`` if given, else the probed host with the most RAM.

    Never from TXT: an announced ``ram`` is anyone's claim. Without ``--probe`` facts, no suggestion.
    """
    names = [h.hostname for h in hosts]
    if chosen:
        unknown = [c for c in chosen if _find(c, hosts) is None]
        if unknown:
            raise ValueError(f"not discovered: {', '.join(unknown)} (found: {', '.join(names) or 'nothing'})")
        return [_find(c, hosts).hostname for c in chosen]
    probed = [h for h in hosts if h.ram and not h.conflict]
    if not probed:
        return []
    best = max(probed, key=lambda h: (h.ram, h.has_agent, [-ord(c) for c in h.hostname]))
    return [best.hostname]


def locate(name: str, hosts: list[FoundHost]) -> FoundHost:
    """The one host ``name`` means, for ``edgeclu add``; ValueError if it is unknown, unreachable or in conflict."""
    h = _find(name, hosts)
    if h is None or not h.addresses:
        seen = ", ".join(x.hostname for x in hosts) or "nothing"
        raise ValueError(f"{name} was not found by discovery (found: {seen}); give its address instead")
    if h.conflict:
        raise ValueError(f"{h.hostname} is {h.conflict}: another machine may be claiming its name; "
                         "give its address instead")
    return h


def inventory_name(hostname: str) -> str | None:
    """A valid inventory host name for an mDNS host name (lowercase RFC 1123 label), or None."""
    name = hostname.lower().split(".")[0]
    name = re.sub(r"[^a-z0-9-]+", "-", name).strip("-")
    return name if _HOSTNAME_RE.match(name) else None


def inventory_text(hosts: list[FoundHost], servers: list[str], *, k3s_version: str,
                   user: str | None = None, key_file: str | None = None) -> str:
    """An inventory (``edgeclu inventory check`` accepts it) for the discovered hosts.

    ValueError if a host is in conflict (:attr:`FoundHost.conflict`) or no server is chosen.
    """
    from edgeclu.inventory import parse_inventory, render_inventory

    conflicts = [f"{h.hostname} is {h.conflict}" for h in hosts if h.conflict]
    if conflicts:
        raise ValueError("; ".join(conflicts) + " — settle it with --address NAME=IP (or --server NAME=IP)")
    if not servers:
        raise ValueError("no k3s server chosen: announced facts are not authenticated; "
                         "pick it with --server NAME, or let --probe read the RAM over SSH")

    server_hosts: dict[str, dict] = {}
    agent_hosts: dict[str, dict] = {}
    ports = {h.agent_port for h in hosts if h.agent_port}
    for h in hosts:
        name = inventory_name(h.hostname)
        if name is None or not h.addresses:
            continue
        hvars: dict = {"ansible_host": h.addresses[0]}
        if h.ssh_port and h.ssh_port != 22:
            hvars["ansible_port"] = h.ssh_port
        (server_hosts if h.hostname in servers else agent_hosts)[name] = hvars
    cluster_vars: dict = {"k3s_version": k3s_version}
    if user:
        cluster_vars["ansible_user"] = user
    if key_file:
        cluster_vars["ansible_ssh_private_key_file"] = key_file
    if len(ports) == 1 and ports != {DEFAULT_AGENT_PORT}:
        cluster_vars["agent_port"] = ports.pop()
    text = render_inventory(server_hosts, agent_hosts, cluster_vars)
    parse_inventory(text, "<discovered inventory>")  # never hand out an inventory we would reject
    return text


# -- pure: --probe ------------------------------------------------------------------
def parse_probe(answer) -> dict:
    """The node probe's answer (:func:`edgeclu.node.ask`, checked by :func:`edgeclu.node.checked`) ->
    discover's facts ``hostname``, ``arch``, ``ram`` (bytes), ``model`` (empty values dropped): a part of
    what preflight reads."""
    values = node.checked(answer)
    facts: dict = {key: values[fact] for key, fact in (("hostname", "hostname"), ("arch", "machine"),
                                                       ("model", "model")) if values[fact]}
    if values["mem_kib"] is not None:  # /proc/meminfo's kB are KiB
        facts["ram"] = values["mem_kib"] * 1024
    return facts


# -- the network part ---------------------------------------------------------------
def listen_addresses(adapters) -> list[str]:
    """The IPv4 interface addresses to browse on: every one but loopback (``ifaddr`` adapters).

    On ``lo`` a local avahi answers for this machine's own name with 127.0.0.1; nothing
    on the LAN is ever heard there.
    """
    return sorted({ip.ip for a in adapters for ip in a.ips
                   if ip.is_IPv4 and not ipaddress.ip_address(ip.ip).is_loopback})


def browse(timeout: float = 3.0, *, types: Iterable[str] = SERVICE_TYPES, ipv6: bool = False,
           interfaces=None) -> list[Sighting]:
    """Listen for ``timeout`` seconds and return every service instance resolved by then."""
    import asyncio

    return asyncio.run(_browse(timeout, tuple(types), ipv6, interfaces))


async def _browse(timeout: float, types: tuple[str, ...], ipv6: bool, interfaces) -> list[Sighting]:
    import asyncio

    from zeroconf import InterfaceChoice, IPVersion, ServiceStateChange
    from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    version = IPVersion.All if ipv6 else IPVersion.V4Only
    if interfaces is None and not ipv6:
        import ifaddr

        interfaces = listen_addresses(ifaddr.get_adapters()) or None
    aiozc = AsyncZeroconf(interfaces=interfaces or InterfaceChoice.All, ip_version=version)
    found: dict[tuple[str, str], Sighting] = {}
    pending: set[asyncio.Task] = set()  # strong refs: the loop only keeps weak ones

    async def resolve(service: str, name: str) -> None:
        info = AsyncServiceInfo(service, name)
        remaining_ms = int(max(deadline - loop.time(), 0.05) * 1000)
        if not await info.async_request(aiozc.zeroconf, remaining_ms):
            return
        found[(service, name)] = Sighting(
            service=service, instance=name, server=info.server,
            addresses=tuple(info.parsed_addresses(version)), port=info.port,
            txt=decode_txt(info.properties))

    def on_change(zeroconf, service_type: str, name: str, state_change) -> None:
        # handlers must not block: schedule the lookup and keep a reference to it
        if state_change is ServiceStateChange.Removed:
            found.pop((service_type, name), None)
            return
        task = asyncio.ensure_future(resolve(service_type, name))
        pending.add(task)
        task.add_done_callback(pending.discard)

    browser = AsyncServiceBrowser(aiozc.zeroconf, list(types), handlers=[on_change])
    try:
        await asyncio.sleep(max(deadline - loop.time(), 0))
    finally:
        for task in list(pending):
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await browser.async_cancel()
        await aiozc.async_close()
    return sorted(found.values(), key=lambda s: (s.service, s.instance))
