"""A small mDNS responder (RFC 6762/6763) for one service instance, standard library only.

It announces ``<host>._edgeclu._tcp.local.`` (PTR, SRV, TXT and the host's A records) at
start, answers queries for them, and says goodbye (TTL 0) when closed. It does no name
probing: instance names are the hostnames, unique on a LAN already.

Why not python-zeroconf: it pulls in asyncio (and with it ssl), which alone costs more
memory than the whole agent has as a budget (``bench/agent_footprint.py``).
The wire format helpers are pure; :class:`Responder` is the socket part.
"""

from __future__ import annotations

import ipaddress
import select
import socket
import struct
import threading
import time

MDNS_ADDR, MDNS_PORT = "224.0.0.251", 5353
A, PTR, TXT, SRV, ANY = 1, 12, 16, 33, 255
CLASS_IN, CACHE_FLUSH, QU_BIT = 1, 0x8000, 0x8000
SERVICES_META = "_services._dns-sd._udp.local."
HOST_TTL, OTHER_TTL = 120, 4500  # RFC 6762 section 10


def encode_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode("utf-8")
        if not 0 < len(raw) < 64:
            raise ValueError(f"bad DNS label in {name!r}")
        out += bytes((len(raw),)) + raw
    return out + b"\0"


def decode_name(data: bytes, offset: int) -> tuple[str, int]:
    """A (possibly compressed) name at ``offset`` -> (``"a.b.local."``, offset after it)."""
    labels, end, jumps = [], None, 0
    while True:
        if offset >= len(data):
            raise ValueError("name runs past the packet")
        n = data[offset]
        if n == 0:
            offset += 1
            break
        if n & 0xC0 == 0xC0:
            if offset + 1 >= len(data) or jumps > 20:
                raise ValueError("bad compression pointer")
            end = offset + 2 if end is None else end
            offset = ((n & 0x3F) << 8) | data[offset + 1]
            jumps += 1
            continue
        if n & 0xC0:
            raise ValueError("bad label type")
        labels.append(data[offset + 1: offset + 1 + n].decode("utf-8", "replace"))
        offset += 1 + n
    return ".".join(labels) + ".", end if end is not None else offset


def parse_query(data: bytes) -> tuple[int, list[tuple[str, int, bool]]]:
    """A query packet -> (id, [(lowercased name, qtype, unicast-response wanted)]); ValueError if not one."""
    if len(data) < 12:
        raise ValueError("short packet")
    qid, flags, qd = struct.unpack("!HHH", data[:6])
    if flags & 0x8000:
        raise ValueError("a response, not a query")
    questions, offset = [], 12
    for _ in range(qd):
        name, offset = decode_name(data, offset)
        if offset + 4 > len(data):
            raise ValueError("truncated question")
        qtype, qclass = struct.unpack("!HH", data[offset: offset + 4])
        offset += 4
        questions.append((name.lower(), qtype, bool(qclass & QU_BIT)))
    return qid, questions


def txt_rdata(txt: dict[str, str]) -> bytes:
    items = [f"{k}={v}".encode()[:255] for k, v in txt.items()]
    return b"".join(bytes((len(i),)) + i for i in items) or b"\0"


class Service:
    """The records of one instance: ``<instance>.<service_type>`` on ``<host>.local.`` at ``addresses``."""

    def __init__(self, instance: str, service_type: str, host: str, port: int, txt: dict[str, str],
                 addresses: list[str]):
        self.type = service_type
        self.name = f"{instance}.{service_type}"
        self.server = f"{host}.local."
        self.port, self.txt, self.addresses = port, txt, addresses

    def ptr(self):
        return (self.type, PTR, OTHER_TTL, False, encode_name(self.name))

    def srv(self):
        return (self.name, SRV, HOST_TTL, True, struct.pack("!HHH", 0, 0, self.port) + encode_name(self.server))

    def txt_record(self):
        return (self.name, TXT, OTHER_TTL, True, txt_rdata(self.txt))

    def a_records(self):
        return [(self.server, A, HOST_TTL, True, socket.inet_aton(a)) for a in self.addresses]

    def all_records(self):
        return [self.ptr(), self.srv(), self.txt_record(), *self.a_records()]

    def answer(self, questions: list[tuple[str, int, bool]]) -> tuple[list, list]:
        """(answers, additional records) for the questions we own; both empty if none is ours."""
        answers, extra = [], []
        for name, qtype, _ in questions:
            if name == self.type.lower() and qtype in (PTR, ANY):
                answers.append(self.ptr())
                extra += [self.srv(), self.txt_record(), *self.a_records()]
            elif name == SERVICES_META and qtype in (PTR, ANY):
                answers.append((SERVICES_META, PTR, OTHER_TTL, False, encode_name(self.type)))
            elif name == self.name.lower():
                if qtype in (SRV, ANY):
                    answers.append(self.srv())
                    extra += self.a_records()
                if qtype in (TXT, ANY):
                    answers.append(self.txt_record())
            elif name == self.server.lower() and qtype in (A, ANY):
                answers += self.a_records()
        answers = _unique(answers)
        return answers, [r for r in _unique(extra) if r not in answers]


def _unique(records: list) -> list:
    seen, out = set(), []
    for r in records:
        key = (r[0].lower(), r[1], r[4])
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def response(answers: list, extra: list = (), *, qid: int = 0, questions: list = (), ttl: int | None = None,
             legacy: bool = False) -> bytes:
    """A response packet. ``ttl=0`` makes it a goodbye; ``legacy`` (unicast to a one-shot querier)
    echoes the questions, caps TTLs at 10 s and drops the cache-flush bit (RFC 6762 section 6.7)."""
    out = struct.pack("!HHHHHH", qid, 0x8400, len(questions), len(answers), 0, len(extra))
    for name, qtype, _ in questions:
        out += encode_name(name) + struct.pack("!HH", qtype, CLASS_IN)
    for name, rtype, rttl, unique, rdata in [*answers, *extra]:
        cls = CLASS_IN | (CACHE_FLUSH if unique and not legacy else 0)
        t = rttl if ttl is None else ttl
        out += encode_name(name) + struct.pack("!HHIH", rtype, cls, min(t, 10) if legacy else t, len(rdata)) + rdata
    return out


def on_link(source: str, networks: list) -> bool:
    """RFC 6762 section 11: a query is answered only when it comes from the local link, i.e. from
    this host or from an address in one of the subnets we answer on (``networks``)."""
    try:
        ip = ipaddress.ip_address(source)
    except ValueError:
        return False
    return ip.is_loopback or any(ip in net for net in networks)


class Responder:
    """Answers for a :class:`Service` on the given IPv4 addresses' interfaces, in a thread.
    ``networks`` (the subnets of those interfaces) limit who is answered (:func:`on_link`);
    None answers every source (tests on loopback)."""

    def __init__(self, service: Service, announce_times: int = 2, networks: list | None = None):
        self.service, self.announce_times, self.networks = service, announce_times, networks
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # avahi may hold 5353 too
        s.bind(("", MDNS_PORT))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        for addr in self.service.addresses:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                         socket.inet_aton(MDNS_ADDR) + socket.inet_aton(addr))
        self._sock = s
        self._thread = threading.Thread(target=self._run, name="mdns", daemon=True)
        self._thread.start()

    def _send(self, packet: bytes, dest: tuple[str, int] | None = None) -> None:
        assert self._sock is not None
        for addr in self.service.addresses:
            try:
                if dest is None:
                    self._sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(addr))
                self._sock.sendto(packet, dest or (MDNS_ADDR, MDNS_PORT))
            except OSError:
                pass  # an interface went away; the next announcement or query tries again
            if dest is not None:
                return

    def _run(self) -> None:
        next_announce, announced = time.monotonic(), 0
        while not self._stop.is_set():
            now = time.monotonic()
            if announced < self.announce_times and now >= next_announce:
                self._send(response(self.service.all_records()))
                announced += 1
                next_announce = now + 1.0 * announced  # 1 s, then 2 s apart
            try:
                ready, _, _ = select.select([self._sock], [], [], 0.5)
                if not ready:
                    continue
                data, src = self._sock.recvfrom(9000)
            except (OSError, ValueError):
                if self._stop.is_set():
                    return
                continue
            if self.networks is not None and not on_link(src[0], self.networks):
                continue  # off-link (routed or spoofed from afar): never answered
            try:
                qid, questions = parse_query(data)
            except (ValueError, struct.error):
                continue  # not a query we can read: ignore, like every mDNS responder
            answers, extra = self.service.answer(questions)
            if not answers:
                continue
            if src[1] != MDNS_PORT:  # a one-shot (legacy) querier: reply to it directly
                self._send(response(answers, extra, qid=qid, questions=questions, legacy=True), dest=src)
            else:
                self._send(response(answers, extra))

    def close(self) -> None:
        if self._sock is None:
            return
        self._stop.set()
        if self._thread:
            self._thread.join(2)
        try:
            self._send(response(self.service.all_records()[:3], ttl=0))  # goodbye: PTR, SRV, TXT
        finally:
            self._sock.close()
            self._sock = None
