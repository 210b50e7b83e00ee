"""Discovery without the network: TXT decoding, per-host merging, server choice, inventory, --probe parsing."""

import pytest

from edgeclu import discovery as d
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


def test_merge_per_host_ipv4_by_default():
    sightings = [
        ssh("pi-1", "fe80::1", "192.168.1.10"),
        agent("pi-1", "192.168.1.10", 8 * 2**30),
        ws("pi-1", "192.168.1.10", "fe80::1"),
        ssh("nuc", "192.168.1.20", "192.168.1.3", port=2222),
        ws("printer", "fe80::9"),
    ]
    hosts = d.merge(sightings)
    assert [h.as_dict() for h in hosts] == [
        {"hostname": "nuc", "addresses": ["192.168.1.3", "192.168.1.20"], "services": ["ssh"], "ssh_port": 2222,
         "agent_port": None},
        {"hostname": "pi-1", "addresses": ["192.168.1.10"], "services": ["edgeclu", "ssh", "workstation"],
         "ssh_port": 22, "agent_port": 9101, "arch": "aarch64", "model": "Raspberry Pi 4 Model B Rev 1.4",
         "agent": "0.1.0", "ssh_fp": FP, "ram": 8 * 2**30},
        {"hostname": "printer", "addresses": [], "services": ["workstation"], "ssh_port": None, "agent_port": None},
    ]
    assert d.merge(sightings, ipv6=True)[1].addresses == ["192.168.1.10", "fe80::1"]


def test_merge_keeps_k3s_role_and_ignores_bad_ram():
    [h] = d.merge([agent("pi-1", "10.0.0.1", "lots", role="server")])
    assert h.facts["role"] == "server" and "ram" not in h.facts and h.ram == 0


def test_suggest_server_most_ram_then_name():
    hosts = d.merge([agent("pi-a", "10.0.0.1", 4 * 2**30), agent("pi-b", "10.0.0.2", 8 * 2**30),
                     agent("pi-c", "10.0.0.3", 8 * 2**30), ssh("nuc", "10.0.0.4")])
    assert d.suggest_servers(hosts) == ["pi-b"]
    assert d.suggest_servers(hosts, ["nuc", "pi-a"]) == ["nuc", "pi-a"]
    assert d.suggest_servers([]) == []
    with pytest.raises(ValueError, match="not discovered: pi-z"):
        d.suggest_servers(hosts, ["pi-z"])


def test_suggest_server_prefers_agent_hosts_when_ram_is_unknown():
    hosts = d.merge([ssh("aaa", "10.0.0.1"), agent("zzz", "10.0.0.2", "?")])
    assert d.suggest_servers(hosts) == ["zzz"]


@pytest.mark.parametrize(("name", "expected"), [
    ("pi-1", "pi-1"), ("Pi_Kitchen", "pi-kitchen"), ("nuc.lan", "nuc"), ("--", None), ("a" * 64, None),
])
def test_inventory_name(name, expected):
    assert d.inventory_name(name) == expected


def test_inventory_text_is_accepted_by_the_inventory_loader():
    hosts = d.merge([agent("pi-1", "192.168.1.10", 8 * 2**30), agent("pi-2", "192.168.1.11", 4 * 2**30),
                     ssh("nuc", "192.168.1.20", port=2222), ws("printer")])
    text = d.inventory_text(hosts, d.suggest_servers(hosts), k3s_version="v1.31.4+k3s1", user="pi",
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
    out = ("hostname=nuc\narch=x86_64\nmem_kb=16234716\nmodel=Raspberry Pi 5 Model B Rev 1.0\n"
           f"ssh_fp={FP}\nnoise\nunknown=1\n")
    assert d.parse_probe(out) == {"hostname": "nuc", "arch": "x86_64", "ram": 16234716 * 1024,
                                  "model": "Raspberry Pi 5 Model B Rev 1.0", "ssh_fp": FP}
    assert d.parse_probe("arch=x86_64\nmodel=\nmem_kb=\nssh_fp=\n") == {"arch": "x86_64"}
    assert d.parse_probe("mem_kb=2.4e+07\n") == {}
