"""`edgeclu add`: what HOST means, and the host vars written (pure)."""

import pytest

from edgeclu.lifecycle.nodes import is_address, new_host_vars


@pytest.mark.parametrize(("text", "address"), [
    ("192.168.1.23", True), ("fe80::1", True), ("pi-5.lan", True), ("pi-5.example.com", True),
    ("pi-5", False), ("pi-5.local", False), ("PI-5.local.", False),
])
def test_is_address(text, address):
    assert is_address(text) is address


def test_new_host_vars_only_what_differs_from_the_cluster():
    cluster = {"ansible_user": "pi", "ansible_port": 22, "ansible_ssh_private_key_file": "~/.ssh/id"}
    assert new_host_vars("10.0.0.5", user=None, port=None, key_file=None, cluster_vars=cluster) == {
        "ansible_host": "10.0.0.5"}
    assert new_host_vars("10.0.0.5", user="pi", port=2222, key_file="~/.ssh/other", cluster_vars=cluster) == {
        "ansible_host": "10.0.0.5", "ansible_port": 2222, "ansible_ssh_private_key_file": "~/.ssh/other"}
