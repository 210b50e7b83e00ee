"""What the agent announces: TXT records, the SSH host key fingerprint, which addresses."""

import socket
import subprocess

import pytest

from edgeclu.agent import announce


def test_fingerprint_matches_ssh_keygen(tmp_path):
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "root@pi-1", "-f", str(key)], check=True)
    expected = subprocess.run(["ssh-keygen", "-lf", f"{key}.pub"], capture_output=True, text=True,
                              check=True).stdout.split()[1]
    assert announce.ssh_fingerprint((tmp_path / "k.pub").read_text()) == expected
    assert expected.startswith("SHA256:")


@pytest.mark.parametrize("line", ["", "ssh-ed25519", "ssh-ed25519 not*base64 x"])
def test_fingerprint_of_garbage_is_none(line):
    assert announce.ssh_fingerprint(line) is None


SAMPLE = {"schema": 1, "agent_version": "0.1.0",
          "host": {"hostname": "pi-1", "arch": "aarch64", "model": "Raspberry Pi 4 Model B Rev 1.4"},
          "memory": {"total_bytes": 8245698560}, "k3s": {"role": "server"}}


def test_txt_records():
    assert announce.txt_records(SAMPLE, "SHA256:abc") == {
        "hostname": "pi-1", "arch": "aarch64", "model": "Raspberry Pi 4 Model B Rev 1.4", "ram": "8245698560",
        "agent": "0.1.0", "role": "server", "ssh_fp": "SHA256:abc", "schema": "1"}
    bare = {**SAMPLE, "host": {**SAMPLE["host"], "model": None}, "k3s": {"role": None}}
    txt = announce.txt_records(bare, None)
    assert (txt["model"], txt["role"], txt["ssh_fp"]) == ("", "none", "")


def test_txt_strings_fit_in_255_bytes():
    long = {**SAMPLE, "host": {**SAMPLE["host"], "model": "é" * 300}}
    txt = announce.txt_records(long, None)
    assert len(f"model={txt['model']}".encode()) <= 255
    assert set(txt["model"]) == {"é"}  # cut on a character boundary


IFADDRS = {
    "lo": [(socket.AF_INET, "127.0.0.1")],
    "eth0": [(socket.AF_INET, "192.168.1.10"), (socket.AF_INET6, "fe80::1")],
    "wlan0": [(socket.AF_INET, "169.254.3.4"), (socket.AF_INET, "10.0.0.7")],
    "cni0": [(socket.AF_INET, "10.42.0.1")],
    "flannel.1": [(socket.AF_INET, "10.42.0.0")],
    "veth1234": [(socket.AF_INET, "10.42.0.9")],
}


def test_lan_addresses_skip_loopback_link_local_and_container_plumbing():
    assert announce.lan_ipv4(IFADDRS) == ["192.168.1.10", "10.0.0.7"]


@pytest.mark.parametrize(("listen", "configured", "expected"), [
    ("0.0.0.0", [], ["192.168.1.10", "10.0.0.7"]),
    ("192.168.1.10", [], ["192.168.1.10"]),
    ("0.0.0.0", ["10.0.0.7"], ["10.0.0.7"]),
])
def test_announce_addresses(listen, configured, expected):
    assert announce.announce_addresses(listen, configured, IFADDRS) == expected


def test_link_networks_are_the_subnets_of_the_announced_addresses():
    masks = {"eth0": [("192.168.1.10", "255.255.255.0")], "wlan0": [("10.0.0.7", "255.255.0.0")],
             "usb0": [("172.16.0.9", None)]}
    assert [str(n) for n in announce.link_networks(["192.168.1.10", "10.0.0.7", "172.16.0.9"], masks)] == [
        "192.168.1.0/24", "10.0.0.0/16", "172.16.0.9/32"]
    assert [str(n) for n in announce.link_networks(["10.9.9.9"], masks)] == ["10.9.9.9/32"]  # configured, not up
