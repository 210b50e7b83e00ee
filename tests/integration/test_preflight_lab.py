"""`edgeclu preflight` over real SSH on lab nodes: a clean pass, then broken nodes, each named."""

import json

import pytest
from typer.testing import CliRunner

from edgeclu.cli import app

pytestmark = pytest.mark.lab


def _preflight(inv, *args):
    return CliRunner().invoke(app, ["preflight", "-i", str(inv), *args])


def test_preflight_passes_then_names_each_broken_node(fresh_lab, tmp_path):
    lab = fresh_lab(3)
    inv = tmp_path / "inventory.yml"
    inv.write_text(lab.inventory_yaml(["node1"], ["node2", "node3"], user="edge",
                                      extra_vars={"k3s_version": "v1.31.4+k3s1"}))

    r = _preflight(inv, "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["ok"] is True
    assert {n: (d["role"], d["facts"]["hostname"], d["facts"]["machine"], d["facts"]["sudo"], d["problems"])
            for n, d in doc["nodes"].items()} == {
        "node1": ("server", "node1", "x86_64", "yes", []),
        "node2": ("agent", "node2", "x86_64", "yes", []),
        "node3": ("agent", "node3", "x86_64", "yes", []),
    }
    assert "preflight: 0 error(s), 0 warning(s) on 3 node(s)" in r.stderr
    facts = doc["nodes"]["node1"]["facts"]
    assert facts["memory_cgroup"] is True and facts["cgroup"] in (1, 2) and facts["rancher_dev"]

    # node2 is a Pi whose firmware saw under-voltage since boot: a test double for the firmware's
    # `vcgencmd get_throttled` (sysfs is read-only in the lab), printing what the real one prints
    lab.exec("node2", "printf '#!/bin/sh\\necho throttled=0x50000\\n' > /usr/local/bin/vcgencmd"
                      " && chmod +x /usr/local/bin/vcgencmd")
    r = _preflight(inv)
    assert r.exit_code == 0, r.output
    assert "node2: warning: the Pi reports under-voltage, throttled since boot (get_throttled=0x50000)" in r.stderr
    lab.exec("node2", "rm /usr/local/bin/vcgencmd")

    # node2 loses passwordless sudo, node3 is renamed to node1's hostname
    lab.exec("node2", "rm /etc/sudoers.d/edge")
    lab.exec("node3", "hostname node1")
    r = _preflight(inv)
    assert r.exit_code == 1, r.output
    table = {line.split()[0]: line.split() for line in r.stdout.splitlines()}
    assert table["node1"][-2:] == ["1", "error(s)"] and table["node2"][5] == "sudo:no"
    assert table["node3"][2] == "node1"
    assert "✗ node2: error: user edge has no passwordless sudo" in r.stderr
    assert "✗ node1: error: hostname 'node1' is also the hostname of node3" in r.stderr
    assert "✗ node3: error: hostname 'node1' is also the hostname of node1" in r.stderr
    assert "preflight: 3 error(s), 0 warning(s) on 3 node(s)" in r.stderr
    lab.exec("node3", "hostname node3")

    # the probe is python3's: a node without it is named in one line (Ansible needs it too)
    lab.exec("node1", "mv /usr/bin/python3 /usr/bin/python3.away")
    r = _preflight(inv)
    lab.exec("node1", "mv /usr/bin/python3.away /usr/bin/python3")
    assert r.exit_code == 1, r.output
    assert ("✗ node1: error: no /usr/bin/python3 on the node: k3s nodes need python3 for Ansible; install it "
            "(apt install python3) or set ansible_python_interpreter\n") in r.stderr

    # a node that is off is reported as such; the others are still checked
    lab.stop("node3", hard=True)
    r = _preflight(inv, "--json")
    assert r.exit_code == 3, r.output
    doc = json.loads(r.stdout)
    assert doc["nodes"]["node3"]["reachable"] is False
    [problem] = doc["nodes"]["node3"]["problems"]
    assert problem["check"] == "unreachable" and lab.nodes["node3"].ip in problem["message"]
    assert [p["check"] for p in doc["nodes"]["node2"]["problems"]] == ["sudo"]
    assert doc["nodes"]["node1"]["problems"] == []  # its twin is gone
