"""discover --scan without the LAN: ranges, banners, reverse names, neighbour table, OUIs, the merge.

The last tests run :func:`edgeclu.scan.scan` against real sockets on 127.0.0.1 (a real
listener sending hostile banners), which the range checks never let a user scan.
"""

import asyncio
import ipaddress
import socket
import threading
import time

import ifaddr
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner
from zeroconf import DNSOutgoing, DNSPointer

from edgeclu import scan as s
from edgeclu.cli import app
from edgeclu.discovery import FoundHost

A = ipaddress.IPv4Address


# -- ranges ---------------------------------------------------------------------------
@pytest.mark.parametrize(("specs", "networks"), [
    (["10.77.0.0/24"], ["10.77.0.0/24"]),
    (["10.77.0.5/24"], ["10.77.0.0/24"]),  # host bits: the network it is in
    (["192.168.1.0/24, 192.168.2.0/25", "10.0.0.7"], ["192.168.1.0/24", "192.168.2.0/25", "10.0.0.7/32"]),
    (["172.16.0.0/16"], ["172.16.0.0/16"]),  # the widest allowed
])
def test_parse_ranges(specs, networks):
    assert s.parse_ranges(specs) == [ipaddress.ip_network(n) for n in networks]


@pytest.mark.parametrize(("specs", "message"), [
    (["10.0.0.0/15"], r"10.0.0.0/15: wider than /16 \(131072 addresses\)"),
    (["0.0.0.0/0"], "wider than /16"),
    (["10.0.0.0/8"], "wider than /16"),
    (["fd00::/120"], "only IPv4"),
    (["pi-1"], "pi-1: not an IPv4 range"),
    (["10.0.0.0/33"], "not an IPv4 range"),
    (["127.0.0.0/24"], "loopback, link-local, multicast or reserved"),
    (["169.254.10.0/24"], "loopback, link-local"),
    (["224.0.0.0/24"], "multicast"),
    (["240.0.0.0/24"], "reserved"),
    (["255.255.255.255"], "reserved"),
    (["0.0.1.0/24"], "reserved"),
    ([""], "no range given"),
    ([" , "], "no range given"),
])
def test_parse_ranges_refuses(specs, message):
    with pytest.raises(s.ScanError, match=message):
        s.parse_ranges(specs)


def test_expand_is_exactly_the_hosts_of_the_range():
    assert s.expand(s.parse_ranges(["10.77.0.0/24"])) == [A(f"10.77.0.{i}") for i in range(1, 255)]
    assert s.expand(s.parse_ranges(["10.77.0.8/30"])) == [A("10.77.0.9"), A("10.77.0.10")]
    assert s.expand(s.parse_ranges(["10.77.0.8/31"])) == [A("10.77.0.8"), A("10.77.0.9")]  # RFC 3021
    assert s.expand(s.parse_ranges(["10.77.0.9"])) == [A("10.77.0.9")]
    # overlapping ranges: every address once, in order
    assert s.expand(s.parse_ranges(["10.77.0.12/30", "10.77.0.8/29"])) == [A(f"10.77.0.{i}") for i in range(9, 15)]
    wide = s.expand(s.parse_ranges(["192.168.0.0/16"]))
    assert len(wide) == 65534 and wide[0] == A("192.168.0.1") and wide[-1] == A("192.168.255.254")


def test_expand_refuses_more_than_a_16_in_all():
    with pytest.raises(s.ScanError, match="more than 65534 addresses"):
        s.expand(s.parse_ranges(["192.168.0.0/16", "10.1.0.0/24"]))
    with pytest.raises(s.ScanError, match="never scanned"):  # also when not from parse_ranges
        s.expand([ipaddress.ip_network("127.0.0.0/30")])


def _adapter(name, *ips):
    return ifaddr.Adapter(name, name, [ifaddr.IP(ip, prefix, name) for ip, prefix in ips])


def test_local_networks():
    adapters = [
        _adapter("lo", ("127.0.0.1", 8), (("::1", 0, 0), 128)),
        _adapter("eth0", ("192.168.1.23", 24), (("fe80::1", 0, 2), 64), ("169.254.7.7", 16)),
        _adapter("wlan0", ("192.168.1.40", 24), ("10.20.30.4", 22)),  # the same /24 twice: once
        _adapter("docker0", ("172.17.0.1", 16)),
        _adapter("wg0", ("10.9.0.2", 32)),
    ]
    networks, skipped = s.local_networks(adapters)
    assert networks == [ipaddress.ip_network("192.168.1.0/24"), ipaddress.ip_network("10.20.28.0/22")]
    assert skipped == ["docker0 172.17.0.0/16 is wider than /22: not scanned unless given (--scan 172.17.0.0/16)"]


# -- what came back ---------------------------------------------------------------------
DEBIAN = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10\r\n"


@pytest.mark.parametrize(("data", "banner"), [
    (DEBIAN, "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10"),
    (b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13.5\r\n\x00\x00\x05\xdc\x07\x14",  # and the KEXINIT after it
     "SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13.5"),
    (b"SSH-2.0-dropbear_2022.83\n", "SSH-2.0-dropbear_2022.83"),  # LF alone is accepted (RFC 4253 §4.2)
    (b"SSH-1.99-Cisco-1.25\r\n", "SSH-1.99-Cisco-1.25"),
    (b"Welcome to the lab\r\nauthorised users only\r\n" + DEBIAN, "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10"),
    (b"SSH-2.0-OpenSSH_9.2p1", None),  # no line end yet: incomplete
    (b"", None),
    (b"HTTP/1.1 400 Bad Request\r\n\r\n", None),
    (b"SSH-2.0-\r\n", None),  # no software version
    (b"SSH-two-x\r\n", None),
    (b"SSH-2.0-x " + b"A" * 250 + b"\r\n", None),  # longer than 255 with CR LF
    (b"SSH-2.0-x " + b"A" * 243 + b"\r\n", "SSH-2.0-x " + "A" * 243),  # exactly 255
    (b"SSH-2.0-OpenSSH_9.2 \x1b[31mred\x1b[0m\r\n", None),  # escape sequences are not printable
    (b"SSH-2.0-OpenSSH_9.2 [bold]x[/bold]\r\n", "SSH-2.0-OpenSSH_9.2 [bold]x[/bold]"),  # printable: escaped on display
    (b"SSH-2.0-Open\xc3\xa9SSH\r\n", None),
    (b"SSH-2.0-x\tcomment\r\n", None),
    (b"junk\n" * 300 + DEBIAN, None),  # past READ_MAX: not read
])
def test_parse_banner(data, banner):
    assert s.parse_banner(data) == banner


def test_reverse_name():
    assert s.reverse_name("10.77.0.11") == "11.0.77.10.in-addr.arpa."


@pytest.mark.parametrize(("name", "host"), [
    ("node1.local.", "node1"),
    ("Pi-Kitchen.LOCAL", "pi-kitchen"),
    ("node1-2.local.", "node1-2"),  # avahi's name after a conflict
    ("node1", None),
    ("node1.example.com.", None),
    ("a.b.local.", None),
    ("-bad.local.", None),
    ("bad-.local.", None),
    ("node_1.local.", None),
    ("evil name.local.", None),
    ("x" * 64 + ".local.", None),
    ("x" * 63 + ".local.", "x" * 63),
    (".local.", None),
    ("", None),
    ("node1\x1b[2J.local.", None),
])
def test_local_host_name(name, host):
    assert s.local_host_name(name) == host


# What avahi 0.8 (Debian bookworm, a lab node) sent back to reverse_query("10.77.0.11", 4242),
# captured with a connected UDP socket: one PTR answer, TTL 10 as RFC 6762 §6.7 asks.
AVAHI_ANSWER = bytes.fromhex(
    "109284000001000100000000023131013002373702313007696e2d61646472046172706100000c0001c00c000c00010000000a"
    "000d056e6f646531056c6f63616c00")


def _answer(address, alias, query_id=4242, name=None):
    out = DNSOutgoing(0x8400, False, query_id)  # response, authoritative
    out.add_answer_at_time(DNSPointer(name or s.reverse_name(address), s.TYPE_PTR, s.CLASS_IN, 10, alias), 0)
    return out.packets()[0]


def test_reverse_query_is_a_legacy_unicast_ptr_question():
    from zeroconf import DNSIncoming

    msg = DNSIncoming(s.reverse_query("10.77.0.11", 4242))
    assert msg.is_query() and msg.id == 4242
    assert [(q.name, q.type, q.unicast) for q in msg.questions] == [("11.0.77.10.in-addr.arpa.", s.TYPE_PTR, False)]


@pytest.mark.parametrize(("packet", "address", "query_id", "name"), [
    (AVAHI_ANSWER, "10.77.0.11", 4242, "node1"),
    (AVAHI_ANSWER, "10.77.0.11", 4243, None),  # not the ID we sent
    (AVAHI_ANSWER, "10.77.0.12", 4242, None),  # about another address
    (_answer("10.77.0.12", "pi-2.local."), "10.77.0.12", 4242, "pi-2"),
    (_answer("10.77.0.12", "pi-2.example.com."), "10.77.0.12", 4242, None),
    (_answer("10.77.0.12", "rm -rf.local."), "10.77.0.12", 4242, None),
    (_answer("10.77.0.12", "pi-2.local.", name="13.0.77.10.in-addr.arpa."), "10.77.0.12", 4242, None),
    (s.reverse_query("10.77.0.12", 4242), "10.77.0.12", 4242, None),  # a query is no answer
    (b"", "10.77.0.12", 4242, None),
    (b"\x10\x92\x84\x00\x00\x00\x00\x01\xff\xff", "10.77.0.12", 4242, None),
    (AVAHI_ANSWER[:-3], "10.77.0.11", 4242, None),  # truncated
])
def test_parse_reverse_answer(packet, address, query_id, name):
    assert s.parse_reverse_answer(packet, address, query_id) == name


@given(st.binary(max_size=600))
def test_parse_reverse_answer_never_raises(data):
    s.parse_reverse_answer(data, "10.77.0.11", 4242)  # None or a valid name, never an exception
    name = s.parse_reverse_answer(AVAHI_ANSWER[:12] + data, "10.77.0.11", 4242)
    assert name is None or s.local_host_name(name + ".local.") == name


# /proc/net/arp as a lab controller had it after a scan (plus an unanswered address)
ARP = """IP address       HW type     Flags       HW address            Mask     Device
10.77.0.11       0x1         0x2         2a:42:dc:4f:36:03     *        eth0
10.77.0.12       0x1         0x2         DC:A6:32:12:34:56     *        eth0
10.77.0.99       0x1         0x0         00:00:00:00:00:00     *        eth0
10.77.0.98       0x1         0x6         00:00:00:00:00:00     *        eth0
10.77.0.97       0x1         zz          aa:bb:cc:dd:ee:ff     *        eth0
10.77.0.96       0x1         0x2         not-a-mac             *        eth0
garbage
"""


def test_parse_arp():
    assert s.parse_arp(ARP) == {"10.77.0.11": "2a:42:dc:4f:36:03", "10.77.0.12": "dc:a6:32:12:34:56"}
    assert s.parse_arp("") == {}


@pytest.mark.parametrize("mac", ["b8:27:eb:01:02:03", "dc:a6:32:01:02:03", "e4:5f:01:01:02:03",
                                 "28:cd:c1:01:02:03", "d8:3a:dd:01:02:03", "2c:cf:67:01:02:03",
                                 "DC-A6-32-AA-BB-CC"])
def test_mac_vendor_raspberry_pi(mac):
    assert s.mac_vendor(mac) == "Raspberry Pi"


@pytest.mark.parametrize("mac", ["b8:27:ec:01:02:03", "2a:42:dc:4f:36:03", "00:00:00:00:00:00", "dc:a6:32",
                                 "dc:a6:32:01:02:03:04", "dc:a6:32:01:02:0g", "", None])
def test_mac_vendor_other(mac):
    assert s.mac_vendor(mac) is None


# -- the merge ----------------------------------------------------------------------
BANNER = "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10"


def hit(address, name=None, mac=None, banner=BANNER):
    return s.ScanHit(address, 22, banner, name, mac, s.mac_vendor(mac))


def mdns(name, *addresses, services=("ssh",), ssh_port=22):
    return FoundHost(hostname=name, addresses=list(addresses), services=list(services), ssh_port=ssh_port)


def test_merge_a_silent_node_becomes_a_host_seen_only_by_the_scan():
    hosts, unnamed = s.merge([], [hit("10.0.0.12", "pi-2", "dc:a6:32:12:34:56")])
    assert unnamed == []
    [h] = hosts
    assert {k: v for k, v in h.as_dict().items() if k in ("hostname", "addresses", "services", "ssh_port",
                                                         "agent_port", "scan")} == {
        "hostname": "pi-2", "addresses": ["10.0.0.12"], "services": ["scan"], "ssh_port": 22, "agent_port": None,
        "scan": [{"address": "10.0.0.12", "port": 22, "ssh_banner": BANNER, "reverse_name": "pi-2",
                  "mac": "dc:a6:32:12:34:56", "mac_vendor": "Raspberry Pi"}]}


def test_merge_into_mdns_hosts():
    hosts, unnamed = s.merge(
        [mdns("nuc", "10.0.0.5", ssh_port=2222), mdns("pi-1", "10.0.0.11", services=("edgeclu",), ssh_port=None),
         mdns("pi-3", "10.0.0.13")],
        [hit("10.0.0.5", "nuc"),             # same name, same address: one host
         hit("10.0.0.11", "evil"),           # an mDNS host's address: its mDNS name stays
         hit("10.0.0.23", "pi-3"),           # a name mDNS heard elsewhere: a second address (a conflict)
         hit("10.0.0.30"),                   # an mDNS host's address, no name
         hit("10.0.0.40", banner=None),      # nothing known: not a host
         hit("10.0.0.12", "pi-2")])
    assert [(h.hostname, h.addresses, h.services, h.ssh_port) for h in hosts] == [
        ("nuc", ["10.0.0.5"], ["ssh", "scan"], 2222),  # the announced port is kept
        ("pi-1", ["10.0.0.11"], ["edgeclu", "scan"], 22),
        ("pi-2", ["10.0.0.12"], ["scan"], 22),
        ("pi-3", ["10.0.0.13", "10.0.0.23"], ["ssh", "scan"], 22),
    ]
    by_name = {h.hostname: h for h in hosts}
    assert by_name["pi-1"].facts["scan"][0]["reverse_name"] == "evil"  # shown, never the name
    assert [x["address"] for x in by_name["pi-3"].facts["scan"]] == ["10.0.0.23"]
    assert unnamed == [hit("10.0.0.30"), hit("10.0.0.40", banner=None)]


def test_merge_two_addresses_answering_one_name():
    hosts, _ = s.merge([], [hit("10.0.0.21", "pi"), hit("10.0.0.9", "pi")])
    assert [(h.hostname, h.addresses) for h in hosts] == [("pi", ["10.0.0.9", "10.0.0.21"])]
    assert [x["address"] for x in hosts[0].facts["scan"]] == ["10.0.0.21", "10.0.0.9"]


def test_model_cell_says_a_vendor_comes_from_the_mac():
    from edgeclu.cli._scan import model_cell

    pi = hit("10.0.0.12", "pi-2", "dc:a6:32:12:34:56").as_dict()
    assert model_cell({"scan": [pi]}) == "Raspberry Pi (by MAC)"
    assert model_cell({"model": "Raspberry Pi 4 Model B Rev 1.4", "scan": [pi]}) == "Raspberry Pi 4 Model B Rev 1.4"
    assert model_cell({"scan": [hit("10.0.0.13", "x", "2a:42:dc:4f:36:03").as_dict()]}) == "-"
    assert model_cell({}) == "-"


# -- the CLI refuses before sending anything ---------------------------------------
@pytest.mark.parametrize(("args", "message"), [
    (["--scan", "10.0.0.0/8"], "--scan 10.0.0.0/8: wider than /16"),
    (["--scan", "127.0.0.0/24"], "never scanned"),
    (["10.0.0.0/24"], "a range is only scanned with --scan"),
])
def test_cli_refuses_ranges_before_listening(args, message):
    r = CliRunner().invoke(app, ["discover", *args])
    assert r.exit_code == 1, r.output
    assert message in r.stderr and "listening" not in r.stderr and "scanning" not in r.stderr


# -- the network part, against real sockets on loopback --------------------------------
@pytest.fixture
def server():
    """A TCP server on 127.0.0.1 that answers each connection with ``behaviour`` (set by the test)."""
    state = {"send": b"", "hold": 0.0}
    sock = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            def talk(c=conn):
                try:
                    c.sendall(state["send"])
                    time.sleep(state["hold"])
                except OSError:
                    pass
                finally:
                    c.close()
            threading.Thread(target=talk, daemon=True).start()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield state, sock.getsockname()[1]
    stop.set()
    t.join()
    sock.close()


def _scan_loopback(port):
    t0 = time.monotonic()
    hits = s.scan([A("127.0.0.1")], port=port, connect_timeout=0.5, read_timeout=0.6)
    return hits, time.monotonic() - t0


def test_scan_reads_the_banner(server):
    state, port = server
    state["send"] = DEBIAN
    hits, _ = _scan_loopback(port)
    assert [(h.address, h.port, h.banner) for h in hits] == [("127.0.0.1", port, BANNER)]


@pytest.mark.parametrize("send", [b"", b"SSH-2.0-slow", b"\x1b]0;pwned\x07" * 400, b"A" * 100000])
def test_scan_bounds_what_a_hostile_port_sends(server, send):
    state, port = server
    state["send"], state["hold"] = send, 3.0  # and keeps the connection open
    hits, wall = _scan_loopback(port)
    assert wall < 1.0, f"took {wall:.2f}s with a 0.6s read deadline"
    assert [(h.address, h.banner) for h in hits] == [("127.0.0.1", None)]


def test_scan_closed_port_is_no_hit():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: refused
    hits, _ = _scan_loopback(port)
    assert hits == []


def test_scan_concurrency_is_bounded(monkeypatch):
    """At most ``concurrency`` connects in flight. A double: open_connection is wrapped to count and sent to
    a refused port on loopback, as 40 real slow targets would need a LAN."""
    peak = {"now": 0, "max": 0}
    real = asyncio.open_connection

    async def counting(host, port):
        peak["now"] += 1
        peak["max"] = max(peak["max"], peak["now"])
        try:
            await asyncio.sleep(0.05)
            return await real("127.0.0.1", 9)  # discard port: refused at once
        finally:
            peak["now"] -= 1

    monkeypatch.setattr(s.asyncio, "open_connection", counting)
    hits = s.scan([A(f"192.0.2.{i}") for i in range(1, 41)], concurrency=8, connect_timeout=0.5)
    assert hits == [] and peak["max"] == 8
