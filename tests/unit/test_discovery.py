"""Discovery without the network: TXT decoding, per-host merging, server choice, inventory, --probe parsing."""

import pytest

from edgeclu import discovery as d
from edgeclu import node
from edgeclu.inventory import parse_inventory

FP = "SHA256:VCjQx2Fy/AQqOqKfBXhc78wNn1kzbV+YmL/O74TW9TY"


def agent(host, ip, ram, port=9101, **txt):
    base = {"hostname": host, "arch": "aarch64", "model": "Raspberry Pi 4 Model B Rev 1.4", "ram": str(ram),
            "agent": "0.1.0", "role": "none", "ssh_fp": FP, "schema": "1"}
    return d.Sighting(d.EDGECLU, f"{host}.{d.EDGECLU}", f"{host}.local.", (ip,), port, {**base, **txt})


def ssh(host, *addresses, port=22):
    return d.Sighting(d.SSH, f"{host}.{d.SSH}", f"{host}.local.", addresses, port, {})


def ws(host, *addresses):
    return d.Sighting(d.WORKSTATION, f"{host} [dc:a6:32:01:02:03].{d.WORKSTATION}", f"{host}.local.", addresses, 9, {})


@pytest.mark.parametrize(("props", "txt"), [
    ({b"hostname": b"pi-1", b"ram": b"8000"}, {"hostname": "pi-1", "ram": "8000"}),
    ({b"": None}, {}),  # avahi's empty TXT record
    ({b"Flag": None}, {"flag": ""}),
    ({b"model": "Pi \u00e9".encode()}, {"model": "Pi é"}),
    ({}, {}),
    (None, {}),
])
def test_decode_txt(props, txt):
    assert d.decode_txt(props) == txt


@pytest.mark.parametrize(("sighting", "host"), [
    (agent("pi-1", "10.0.0.1", 1), "pi-1"),
    (agent("Pi-Kitchen", "10.0.0.1", 1), "pi-kitchen"),
    (ssh("nuc", "10.0.0.2"), "nuc"),
    (ws("nuc", "10.0.0.2"), "nuc"),
    (d.Sighting(d.WORKSTATION, f"nas [00:11:22:33:44:55].{d.WORKSTATION}", None, (), 9, {}), "nas"),
    (d.Sighting(d.SSH, f"box.{d.SSH}", None, (), 22, {}), "box"),
    (d.Sighting(d.SSH, f"x.{d.SSH}", "router.lan.", (), 22, {}), "router.lan"),
])
def test_host_of(sighting, host):
    assert d.host_of(sighting) == host


def _as_dicts(hosts):
    return [{k: v for k, v in h.as_dict().items() if k not in ("conflict", "ssh_fp_status", "ssh_fp_received")}
            for h in hosts]


def test_merge_per_host_ipv4_by_default():
    sightings = [
        ssh("pi-1", "fe80::1", "192.168.1.10"),
        agent("pi-1", "192.168.1.10", 8 * 2**30),
        ws("pi-1", "192.168.1.10", "fe80::1"),
        ssh("nuc", "192.168.1.20", port=2222),
        ws("printer", "fe80::9"),
    ]
    hosts = d.merge(sightings)
    assert _as_dicts(hosts) == [
        {"hostname": "nuc", "addresses": ["192.168.1.20"], "services": ["ssh"], "ssh_port": 2222,
         "agent_port": None},
        {"hostname": "pi-1", "addresses": ["192.168.1.10"], "services": ["edgeclu", "ssh", "workstation"],
         "ssh_port": 22, "agent_port": 9101, "arch": "aarch64", "model": "Raspberry Pi 4 Model B Rev 1.4",
         "agent": "0.1.0", "ssh_fp": FP, "ram": 8 * 2**30},
        {"hostname": "printer", "addresses": [], "services": ["workstation"], "ssh_port": None, "agent_port": None},
    ]
    assert [h.conflict for h in hosts] == [None, None, None]
    assert hosts[1].ssh_fp_status == "announced"
    # link-local is never a host's address, with --ipv6 neither
    assert d.merge(sightings, ipv6=True)[1].addresses == ["192.168.1.10"]
    assert d.merge([ssh("pi-1", "192.168.1.10", "2001:db8::10")], ipv6=True)[0].addresses == [
        "192.168.1.10", "2001:db8::10"]


@pytest.mark.parametrize("bad", ["127.0.0.1", "127.0.1.1", "::1", "169.254.3.4", "fe80::1%eth0", "0.0.0.0",
                                 "224.0.0.251", "not-an-ip"])
def test_loopback_and_link_local_are_never_a_hosts_address(bad):
    assert not d.usable_address(bad, ipv6=True)
    # discover run on pi-1 itself: its avahi answers the local querier on lo with 127.0.0.1
    [h] = d.merge([agent("pi-1", "192.168.1.10", 1), ssh("pi-1", bad, "192.168.1.10")], ipv6=True)
    assert h.addresses == ["192.168.1.10"] and h.conflict is None
    text = d.inventory_text([h], ["pi-1"], k3s_version="v1.31.4+k3s1")
    assert "ansible_host: 192.168.1.10" in text and bad not in text


def test_browse_never_listens_on_loopback():
    import ifaddr

    adapters = [ifaddr.Adapter("lo", "lo", [ifaddr.IP("127.0.0.1", 8, "lo"), ifaddr.IP(("::1", 0, 0), 128, "lo")]),
                ifaddr.Adapter("eth0", "eth0", [ifaddr.IP("192.168.1.5", 24, "eth0")]),
                ifaddr.Adapter("wlan0", "wlan0", [ifaddr.IP("10.0.0.5", 24, "wlan0")])]
    assert d.listen_addresses(adapters) == ["10.0.0.5", "192.168.1.5"]


def test_a_name_from_two_addresses_is_a_conflict_not_the_lower_address():
    # a second responder announces pi-2 with a lower address than the real one
    real, spoof = agent("pi-2", "192.168.1.12", 1), ssh("pi-2", "192.168.1.3")
    [h] = d.merge([real, spoof])
    assert h.conflict == "seen at 2 addresses: 192.168.1.3, 192.168.1.12"
    with pytest.raises(ValueError, match=r"pi-2 is seen at 2 addresses.*--address NAME=IP"):
        d.inventory_text([h], ["pi-2"], k3s_version="v1.31.4+k3s1")
    with pytest.raises(ValueError, match="pi-2 is seen at 2 addresses"):
        d.locate("pi-2", [h])
    d.settle([h], {"pi-2": "192.168.1.12"})  # --address pi-2=192.168.1.12
    assert h.conflict is None and h.addresses == ["192.168.1.12"]
    assert "ansible_host: 192.168.1.12" in d.inventory_text([h], ["pi-2"], k3s_version="v1.31.4+k3s1")
    assert d.locate("pi-2.local", [h]) is h


def test_a_name_from_two_srv_targets_is_a_conflict():
    evil = d.Sighting(d.EDGECLU, f"evil.{d.EDGECLU}", "evil.local.", ("192.168.1.12",), 9101,
                      {"hostname": "pi-2", "ram": str(64 * 2**30)})
    [h] = d.merge([ssh("pi-2", "192.168.1.12"), evil])
    assert h.conflict == "announced by 2 SRV targets: pi-2.local., evil.local."


@pytest.mark.parametrize(("settle", "error"), [
    ({"pi-9": "10.0.0.9"}, "not discovered: pi-9"),
    ({"pi-2": "pi-2.lan"}, "pi-2=pi-2.lan: not an IP address"),
])
def test_settle_refuses(settle, error):
    with pytest.raises(ValueError, match=error):
        d.settle(d.merge([ssh("pi-2", "10.0.0.2")]), settle)


def test_locate():
    hosts = d.merge([ssh("pi-4", "10.0.0.4"), ws("pi-6")])
    assert d.locate("PI-4.local.", hosts).addresses == ["10.0.0.4"]
    for missing in ("pi-6", "pi-7"):  # no address heard / not heard at all
        with pytest.raises(ValueError, match=f"{missing} was not found by discovery"):
            d.locate(missing, hosts)


def test_merge_keeps_k3s_role_and_ignores_bad_ram():
    [h] = d.merge([agent("pi-1", "10.0.0.1", "lots", role="server")])
    assert h.facts["role"] == "server" and "ram" not in h.facts and h.ram == 0


def test_the_server_is_never_chosen_from_txt():
    hosts = d.merge([agent("pi-a", "10.0.0.1", 4 * 2**30), agent("pi-b", "10.0.0.2", 64 * 2**30),
                     ssh("nuc", "10.0.0.4")])
    assert d.suggest_servers(hosts) == []  # a claimed ram picks nothing
    with pytest.raises(ValueError, match="no k3s server chosen"):
        d.inventory_text(hosts, [], k3s_version="v1.31.4+k3s1")


def test_suggest_server_most_probed_ram_then_name():
    hosts = d.merge([agent("pi-a", "10.0.0.1", 64 * 2**30), agent("pi-b", "10.0.0.2", 1),
                     agent("pi-c", "10.0.0.3", 1), ssh("nuc", "10.0.0.4")])
    for h, ram in zip(hosts, (8, 4, 8, 8), strict=True):  # nuc, pi-a, pi-b, pi-c as read over SSH
        # (pi-a claimed 64 GiB in TXT); the tie goes to an agent's host, then the first name
        h.probed["ram"] = ram * 2**30
    assert d.suggest_servers(hosts) == ["pi-b"]
    assert d.suggest_servers(hosts, ["nuc", "pi-a.local"]) == ["nuc", "pi-a"]
    assert d.suggest_servers([]) == []
    with pytest.raises(ValueError, match="not discovered: pi-z"):
        d.suggest_servers(hosts, ["pi-z"])


@pytest.mark.parametrize(("announced", "received", "status"), [
    (FP, None, "announced"), (None, FP, "received"), (FP, FP, "verified"),
    (FP, "SHA256:" + "A" * 43, "mismatch"), (None, None, None),
])
def test_ssh_fp_status(announced, received, status):
    h = d.FoundHost("pi-1", facts={"ssh_fp": announced} if announced else {}, ssh_fp_received=received)
    assert h.ssh_fp_status == status


@pytest.mark.parametrize(("name", "expected"), [
    ("pi-1", "pi-1"), ("Pi_Kitchen", "pi-kitchen"), ("nuc.lan", "nuc"), ("--", None), ("a" * 64, None),
])
def test_inventory_name(name, expected):
    assert d.inventory_name(name) == expected


def test_inventory_text_is_accepted_by_the_inventory_loader():
    hosts = d.merge([agent("pi-1", "192.168.1.10", 8 * 2**30), agent("pi-2", "192.168.1.11", 4 * 2**30),
                     ssh("nuc", "192.168.1.20", port=2222), ws("printer")])
    text = d.inventory_text(hosts, ["pi-1"], k3s_version="v1.31.4+k3s1", user="pi",
                            key_file="~/.ssh/id_ed25519")
    inv = parse_inventory(text)
    assert [(h.name, h.role, h.address, h.port, h.user) for h in inv.hosts] == [
        ("pi-1", "server", "192.168.1.10", 22, "pi"),
        ("nuc", "agent", "192.168.1.20", 2222, "pi"),
        ("pi-2", "agent", "192.168.1.11", 22, "pi"),
    ]
    assert inv.k3s_version == "v1.31.4+k3s1"
    assert inv.vars["ansible_ssh_private_key_file"] == "~/.ssh/id_ed25519"
    assert "agent_port" not in text


def test_inventory_text_carries_a_non_default_agent_port():
    hosts = d.merge([agent("pi-1", "10.0.0.1", 1, port=9200)])
    assert parse_inventory(d.inventory_text(hosts, ["pi-1"], k3s_version="v1.31.4+k3s1")).vars["agent_port"] == 9200


def test_parse_probe():
    raw = {"machine": "x86_64", "facts": {"hostname": "nuc", "mem_kib": 16234716, "sudo": "yes",
                                          "model": "Raspberry Pi 5 Model B Rev 1.0", "ssh_fp": FP}, "unknown": 1}
    # the fingerprint is the key received over SSH, not what the node answers
    assert d.parse_probe(raw) == {"hostname": "nuc", "arch": "x86_64", "ram": 16234716 * 1024,
                                  "model": "Raspberry Pi 5 Model B Rev 1.0"}
    assert d.parse_probe({"machine": "x86_64", "facts": {"model": "", "mem_kib": None}}) == {"arch": "x86_64"}
    assert d.parse_probe({"facts": {"mem_kib": 2.4e07, "hostname": "nuc\nevil"}}) == {}
    assert d.parse_probe("hostname=nuc\n") == {}


def test_discover_probes_with_the_node_probe():
    # the same probe preflight runs, read the same way: one probe, one key set (run here without SSH)
    import os
    import sys

    from tests.fakes import LocalRemote

    facts = d.parse_probe(node.ask(LocalRemote(), python=sys.executable))
    assert facts["arch"] == os.uname().machine
    assert facts["ram"] > 100 * 1024 * 1024 and facts["hostname"] == os.uname().nodename
