"""edgeclu's SSH policy beats any inventory variable (issue 9.4), on a real lab node with real sshd and Ansible.

A host_vars file beside the inventory tries to switch host-key checks off. ``edgeclu inventory check``
refuses it (tests/unit/test_bad_input.py); here the playbook is run anyway, as a careless ``ansible``
user or a stale file could, and edgeclu's extra-vars must still decide: against a known_hosts file that does
not hold the node's key, the node is refused; against the right one, it is reached.
"""

from pathlib import Path

import pytest

from edgeclu.errors import InventoryError
from edgeclu.inventory import load_inventory
from edgeclu.playbook import run_playbook

pytestmark = pytest.mark.lab
PING = str(Path(__file__).resolve().parents[1] / "fixtures" / "ping.yml")  # a test playbook

WEAKEN = {"ansible_ssh_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
          "ansible_ssh_extra_args": "-o StrictHostKeyChecking=no", "ansible_host_key_checking": False,
          "ansible_ssh_host_key_checking": False}


def test_extra_vars_policy_wins_over_a_host_vars_file(fresh_lab, tmp_path):
    import yaml

    lab = fresh_lab(1)
    inv = tmp_path / "inventory.yml"
    inv.write_text(lab.inventory_yaml(["node1"], [], user="edge", extra_vars={"k3s_version": "v1.31.4+k3s1"}))
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "host_vars" / "node1.yml").write_text(yaml.safe_dump(WEAKEN))
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text(yaml.safe_dump(WEAKEN))
    with pytest.raises(InventoryError, match="host_vars/node1.yml: host 'node1': field 'ansible_ssh_args'"):
        load_inventory(inv)

    stranger = tmp_path / "known_hosts.empty"  # knows no node: a spoofed or unknown key looks like this
    stranger.write_text("")
    refused = run_playbook(inv, PING, known_hosts=stranger)
    assert not refused.ok and refused.hosts["node1"].unreachable, refused.hosts
    assert any("Host key verification failed" in f for f in refused.hosts["node1"].failures), refused.hosts
    assert stranger.read_text() == ""  # nothing was learnt either

    reached = run_playbook(inv, PING, known_hosts=lab.known_hosts)
    assert reached.ok, {h: r.failures for h, r in reached.hosts.items()}
