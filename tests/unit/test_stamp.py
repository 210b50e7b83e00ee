"""The converged stamp (edgeclu/stamp.py): what makes a run skip the playbook, and what does not.

The shell side (the fingerprint, run as root on a node) is exercised on lab nodes in
tests/integration/test_up_lab.py; here: its commands run by /bin/sh on this machine, the digests and the
decision."""

import hashlib
import subprocess
from pathlib import Path

import pytest

from edgeclu import stamp
from edgeclu.errors import InventoryError
from edgeclu.inventory import load_inventory, parse_inventory

INV = """
k3s_cluster:
  children:
    server: {hosts: {s1: {ansible_host: 10.0.0.1}}}
    agent: {hosts: {a1: {ansible_host: 10.0.0.2}, a2: {ansible_host: 10.0.0.3}}}
  vars:
    k3s_version: v1.31.4+k3s1
    token_file: TOKEN
"""


@pytest.fixture()
def setup(tmp_path):
    (tmp_path / "token").write_text("sekrit\n")
    inv_path = tmp_path / "inventory.yml"
    inv_path.write_text(INV.replace("TOKEN", str(tmp_path / "token")))
    tree = tmp_path / "playbooks"
    (tree / "roles").mkdir(parents=True)
    (tree / "roles" / "x.yml").write_text("- debug: msg=x\n")
    return tmp_path, inv_path, tree


def _digests(inv_path, tree):
    inv = load_inventory(inv_path)
    cluster = stamp.cluster_digest(inv, [tree])
    return {h.name: stamp.inputs_digest(cluster, inv, h) for h in inv.hosts}


def test_inputs_digest_changes_with_every_input_and_only_then(setup, monkeypatch):
    tmp_path, inv_path, tree = setup
    base = _digests(inv_path, tree)
    assert len(set(base.values())) == 3  # one per node
    assert _digests(inv_path, tree) == base  # the same inputs, the same digests
    (tree / "__pycache__").mkdir()
    (tree / "__pycache__" / "x.pyc").write_bytes(b"junk")
    assert _digests(inv_path, tree) == base  # byte-code caches are not inputs

    changes = [
        lambda: inv_path.write_text(inv_path.read_text().replace("v1.31.4", "v1.31.5")),  # the inventory
        lambda: (tmp_path / "host_vars").mkdir() or (tmp_path / "host_vars" / "a1.yml").write_text("node_iface: e1\n"),
        lambda: (tmp_path / "token").write_text("other\n"),  # the token
        lambda: (tree / "roles" / "x.yml").write_text("- debug: msg=y\n"),  # edgeclu's playbooks
        lambda: (tree / "roles" / "new.yml").write_text(""),
    ]
    seen = {tuple(base.values())}
    for change in changes:
        change()
        now = tuple(_digests(inv_path, tree).values())
        assert now not in seen
        seen.add(now)


def test_the_token_is_hashed_never_stored(setup):
    _, inv_path, tree = setup
    assert all("sekrit" not in d for d in _digests(inv_path, tree).values())
    assert "sekrit" not in stamp.write_command(next(iter(_digests(inv_path, tree).values())))


@pytest.mark.parametrize("stamp_line, state, inputs, expected", [
    ("I " + "a" * 64, "a" * 64, "I", True),
    ("I " + "a" * 64, "b" * 64, "I", False),   # the node changed
    ("J " + "a" * 64, "a" * 64, "I", False),   # the inputs changed
    ("", "a" * 64, "I", False),                # never stamped
    ("I ", "", "I", False),                    # the fingerprint did not run
])
def test_matches(stamp_line, state, inputs, expected):
    assert stamp.matches(inputs, state, stamp_line) is expected


def test_check_output_parses_and_only_the_first_server_lists_nodes():
    assert "kubectl get nodes" in stamp.check_command(True) and "get nodes" not in stamp.check_command(False)
    out = 'state=' + "a" * 64 + '\nstamp=I ' + "a" * 64 + '\nnodes=\n{"items": []}\n'
    assert stamp.parse_check(out) == ("a" * 64, "I " + "a" * 64, '{"items": []}\n')
    assert stamp.parse_check("state=x\nstamp=\n") == ("x", "", None)


def test_commands_run_by_sh_write_and_read_a_stamp(tmp_path, monkeypatch):
    # the real commands, by /bin/sh, with the stamp under tmp_path
    monkeypatch.setattr(stamp, "STAMP", str(tmp_path / "lib" / "converged"))
    write = subprocess.run(["sh", "-c", stamp.write_command("I" * 64)], capture_output=True, text=True)
    assert write.returncode == 0, write.stderr
    check = subprocess.run(["sh", "-c", stamp.check_command(False)], capture_output=True, text=True)
    state, line, nodes = stamp.parse_check(check.stdout)
    assert stamp.matches("I" * 64, state, line) and nodes is None
    assert oct((tmp_path / "lib" / "converged").stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "lib").stat().st_mode & 0o777) == "0o700"
    assert len(state) == 64 and state != hashlib.sha256(b"").hexdigest()


def test_custom_paths_turn_the_stamp_off(tmp_path):
    # edgeclu's inventory has no such keys; Ansible also reads group_vars/host_vars beside it
    path = tmp_path / "inventory.yml"
    path.write_text(INV.replace("TOKEN", "t"))
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "host_vars" / "a1.yml").write_text("node_labels: [a=b]\n")
    assert stamp.blockers(load_inventory(path)) == []
    (tmp_path / "host_vars" / "a2.yml").write_text("k3s_install_dir: /opt/bin\n")
    assert stamp.blockers(parse_inventory(path.read_text(), str(path))) == [
        "k3s_install_dir is set (the stamp looks at the default paths)"]
    # and edgeclu itself refuses such a file: group_vars/host_vars follow the inventory's rules
    with pytest.raises(InventoryError, match=r"host_vars/a2.yml: host 'a2': field 'k3s_install_dir': unknown key"):
        load_inventory(path)


def test_fingerprint_covers_what_the_roles_write():
    # every file the roles write at its default path is in the fingerprint (a drift there is seen)
    root = Path(__file__).resolve().parents[2]
    written = ["/etc/modules-load.d/k3s.conf", "/etc/sysctl.d/90-k3s.conf", "/etc/rancher/k3s/config.yaml",
               "/etc/systemd/system/k3s.service", "/etc/systemd/system/k3s-agent.service",
               "/usr/local/bin/k3s-killall.sh", "/usr/local/bin/k3s-uninstall.sh",
               "/usr/local/bin/k3s-agent-uninstall.sh", "/opt/edgeclu/edgeclu-agent.zip", "/etc/edgeclu/agent.json",
               "/etc/systemd/system/edgeclu-agent.service", "/var/lib/rancher/k3s/server/manifests/edgeclu-*.yaml"]
    assert [p for p in written if p not in stamp.FINGERPRINT] == []
    for service in ("k3s", "k3s-agent", "edgeclu-agent", "dphys-swapfile"):
        assert f" {service} " in stamp.FINGERPRINT.split("for s in")[1].split(";")[0] + " "
    prereq = (root / "playbooks/roles/prereq/defaults/main.yml").read_text()
    assert "/etc/modules-load.d/k3s.conf" in prereq and "/etc/sysctl.d/90-k3s.conf" in prereq
