"""The agent's own mDNS responder: wire format checked with python-zeroconf's parser and
packet builder, and a real announcement browsed, resolved and withdrawn on loopback."""

import ipaddress
import struct
import time

import pytest
from zeroconf import DNSIncoming, DNSOutgoing, DNSQuestion, IPVersion, ServiceBrowser, Zeroconf, const

from edgeclu.agent import mdns

SERVICE = mdns.Service("pi-1", "_edgeclu._tcp.local.", "pi-1", 9101,
                       {"hostname": "pi-1", "ram": "8000000000", "model": "Raspberry Pi 5"},
                       ["192.168.1.10", "10.0.0.5"])


def _query(*questions, unicast=False):
    out = DNSOutgoing(const._FLAGS_QR_QUERY)
    for name, qtype in questions:
        q = DNSQuestion(name, qtype, const._CLASS_IN)
        q.unicast = unicast
        out.add_question(q)
    return out.packets()[0]


def _records(packet):
    inc = DNSIncoming(packet)
    assert inc.valid and not inc.is_query()
    return [(type(r).__name__, r.name, r.ttl, r.unique) for r in inc.answers()], inc


@pytest.mark.parametrize("name", ["_edgeclu._tcp.local.", "pi-1.local.", "a.b-c.d.local."])
def test_name_round_trip(name):
    encoded = mdns.encode_name(name)
    assert mdns.decode_name(b"xx" + encoded, 2) == (name, 2 + len(encoded))


def test_compressed_names_and_bad_pointers():
    packet = b"\x05local\x00" + b"\x04pi-1\xc0\x00"  # "pi-1" + pointer to "local"
    assert mdns.decode_name(packet, 7) == ("pi-1.local.", 14)
    with pytest.raises(ValueError):
        mdns.decode_name(b"\xc0\x00", 0)  # a pointer to itself: a loop
    with pytest.raises(ValueError):
        mdns.decode_name(b"\x09short", 0)  # runs past the end
    with pytest.raises(ValueError):
        mdns.encode_name("x" * 64 + ".local.")


def test_parse_a_real_query():
    packet = _query(("_edgeclu._tcp.local.", const._TYPE_PTR), ("PI-1.local.", const._TYPE_A), unicast=True)
    assert mdns.parse_query(packet) == (0, [("_edgeclu._tcp.local.", 12, True), ("pi-1.local.", 1, True)])


@pytest.mark.parametrize("packet", [b"", b"\x00" * 11, b"\x00\x00\x84\x00" + b"\x00" * 8,
                                    b"\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03abc"])
def test_not_a_readable_query(packet):
    with pytest.raises((ValueError, struct.error)):
        mdns.parse_query(packet)


def test_browse_answer_has_ptr_and_srv_txt_a_as_additionals():
    answers, extra = SERVICE.answer(mdns.parse_query(_query(("_edgeclu._tcp.local.", const._TYPE_PTR)))[1])
    records, inc = _records(mdns.response(answers, extra))
    assert records == [
        ("DNSPointer", "_edgeclu._tcp.local.", 4500, False),
        ("DNSService", "pi-1._edgeclu._tcp.local.", 120, True),
        ("DNSText", "pi-1._edgeclu._tcp.local.", 4500, True),
        ("DNSAddress", "pi-1.local.", 120, True),
        ("DNSAddress", "pi-1.local.", 120, True),
    ]
    ptr, srv, txt, a1, a2 = inc.answers()
    assert ptr.alias == "pi-1._edgeclu._tcp.local."
    assert (srv.port, srv.server) == (9101, "pi-1.local.")
    assert txt.text == b"\x0dhostname=pi-1\x0eram=8000000000\x14model=Raspberry Pi 5"
    assert [a1.address, a2.address] == [bytes([192, 168, 1, 10]), bytes([10, 0, 0, 5])]


@pytest.mark.parametrize(("name", "qtype", "types"), [
    ("pi-1._edgeclu._tcp.local.", const._TYPE_SRV, ["DNSService", "DNSAddress", "DNSAddress"]),
    ("pi-1._edgeclu._tcp.local.", const._TYPE_TXT, ["DNSText"]),
    ("PI-1._edgeclu._tcp.local.", const._TYPE_ANY, ["DNSService", "DNSText", "DNSAddress", "DNSAddress"]),
    ("pi-1.local.", const._TYPE_A, ["DNSAddress", "DNSAddress"]),
    ("_services._dns-sd._udp.local.", const._TYPE_PTR, ["DNSPointer"]),
    ("_ssh._tcp.local.", const._TYPE_PTR, []),
    ("pi-2.local.", const._TYPE_A, []),
])
def test_only_our_names_are_answered(name, qtype, types):
    answers, extra = SERVICE.answer(mdns.parse_query(_query((name, qtype)))[1])
    if not types:
        assert (answers, extra) == ([], [])
        return
    records, _ = _records(mdns.response(answers, extra))
    assert [r[0] for r in records] == types


def test_legacy_unicast_reply_and_goodbye():
    answers, extra = SERVICE.answer([("pi-1._edgeclu._tcp.local.", const._TYPE_TXT, False)])
    packet = mdns.response(answers, extra, qid=4242, questions=[("pi-1._edgeclu._tcp.local.", 16, False)],
                           legacy=True)
    records, inc = _records(packet)
    assert inc.id == 4242 and len(inc.questions) == 1
    assert records == [("DNSText", "pi-1._edgeclu._tcp.local.", 10, False)]  # TTL capped, no cache-flush
    bye, _ = _records(mdns.response(SERVICE.all_records()[:3], ttl=0))
    assert [r[2] for r in bye] == [0, 0, 0]


def test_empty_txt_is_one_empty_string():
    assert mdns.txt_rdata({}) == b"\0"


def test_announce_browse_resolve_goodbye_on_loopback():
    service = mdns.Service("unit-node", "_edgeclu._tcp.local.", "unit-node", 9555, {"role": "agent"},
                           ["127.0.0.1"])
    responder = mdns.Responder(service)
    responder.start()
    zc = Zeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    events = []

    class Listener:
        def add_service(self, zc, type_, name):
            events.append(("add", name))

        def remove_service(self, zc, type_, name):
            events.append(("remove", name))

        def update_service(self, zc, type_, name):
            pass

    try:
        browser = ServiceBrowser(zc, "_edgeclu._tcp.local.", Listener())
        deadline = time.monotonic() + 5
        while ("add", service.name) not in events and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ("add", service.name) in events
        info = zc.get_service_info("_edgeclu._tcp.local.", service.name, 3000)
        assert info is not None
        assert (info.parsed_addresses(), info.port, info.server, info.decoded_properties) == (
            ["127.0.0.1"], 9555, "unit-node.local.", {"role": "agent"})
        responder.close()  # goodbye: the browser sees it go at once, not after the TTL
        deadline = time.monotonic() + 5
        while ("remove", service.name) not in events and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ("remove", service.name) in events
        browser.cancel()
    finally:
        responder.close()
        zc.close()


NETS = [ipaddress.IPv4Network("192.168.1.0/24"), ipaddress.IPv4Network("10.0.0.5/32")]


@pytest.mark.parametrize(("source", "answered"), [
    ("192.168.1.77", True),   # the LAN
    ("192.168.1.10", True),   # ourselves, through the multicast loop
    ("127.0.0.1", True),      # this host
    ("10.0.0.5", True),
    ("10.0.0.6", False),      # outside a /32
    ("192.168.2.1", False),   # routed from another subnet
    ("8.8.8.8", False),
    ("not-an-ip", False),
])
def test_only_on_link_sources_are_answered(source, answered):
    assert mdns.on_link(source, NETS) is answered
