"""Edits keep the user's file (issue 10.6): add/remove/upgrade edit the inventory round-trip (comments, order,
anchors, quoting, indentation), with a timestamped backup, fsync and an atomic replace; a symlinked
inventory or kubeconfig is updated through the link."""

import difflib
import os
import time

import pytest
import yaml

from edgeclu import kubeconfig as kc
from edgeclu import userfile
from edgeclu.errors import InventoryError
from edgeclu.inventory import load_inventory
from edgeclu.lifecycle.invfile import edit_hosts, set_cluster_var, write_inventory

INV = """\
# The garage cluster. Ask Sam before changing the server.
k3s_cluster:
    children:
        server:
            hosts:
                pi-1: &pi {ansible_host: 192.0.2.1, ansible_port: 2222}   # the one with the SSD
        agent:
            hosts:
                pi-2: {<<: *pi, ansible_host: 192.0.2.2}
                # pi-3 sits on the shelf by the door
                pi-3:
                    ansible_host: 192.0.2.3   # wired
                    node_labels: ["edgeclu.io/zone=shelf"]
                # pi-4: the noisy one
                pi-4: {<<: *pi, ansible_host: 192.0.2.4}
    vars:
        k3s_version: v1.31.4+k3s1    # pinned: `edgeclu upgrade` changes it
        ansible_user: 'pi'
        tls_san: [k3s.home.arpa]
# end
"""


def _diff(a: str, b: str) -> list[str]:
    return [ln for ln in difflib.unified_diff(a.splitlines(), b.splitlines(), lineterm="", n=0)
            if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]


@pytest.fixture
def inv(tmp_path):
    p = tmp_path / "inventory.yml"
    p.write_text(INV)
    p.chmod(0o640)
    return p


def test_add_changes_only_the_new_line(inv):
    new = edit_hosts(inv, add=("pi-5", "agent", {"ansible_host": "192.0.2.5"}))
    assert inv.read_text() == INV  # computed, not written
    assert _diff(INV, new) == ["+                pi-5: {ansible_host: 192.0.2.5}"]
    write_inventory(inv, new)
    assert [h.name for h in load_inventory(inv).agents] == ["pi-2", "pi-3", "pi-4", "pi-5"]
    assert load_inventory(inv).host("pi-4").port == 2222  # the merge key still works


@pytest.mark.parametrize(("name", "removed"), [
    ("pi-2", ["-                pi-2: {<<: *pi, ansible_host: 192.0.2.2}"]),
    ("pi-3", ["-                # pi-3 sits on the shelf by the door", "-                pi-3:",
              "-                    ansible_host: 192.0.2.3   # wired",
              '-                    node_labels: ["edgeclu.io/zone=shelf"]']),
    ("pi-4", ["-                # pi-4: the noisy one", "-                pi-4: {<<: *pi, ansible_host: 192.0.2.4}"]),
])
def test_remove_drops_only_that_host_and_keeps_the_comments_around_it(inv, name, removed):
    new = edit_hosts(inv, remove=name)
    assert _diff(INV, new) == removed  # a comment line above a host goes with it, the others stay


def test_upgrade_changes_one_value_and_keeps_its_comment(inv):
    new = set_cluster_var(inv, "k3s_version", "v1.31.5+k3s1")
    assert _diff(INV, new) == [
        "-        k3s_version: v1.31.4+k3s1    # pinned: `edgeclu upgrade` changes it",
        "+        k3s_version: v1.31.5+k3s1    # pinned: `edgeclu upgrade` changes it"]


def test_an_edit_that_would_be_invalid_never_reaches_the_file(inv):
    with pytest.raises(InventoryError, match="duplicate address 192.0.2.1"):
        edit_hosts(inv, add=("pi-9", "agent", {"ansible_host": "192.0.2.1"}))
    assert inv.read_text() == INV


def test_write_keeps_a_timestamped_backup_fsyncs_and_replaces_atomically(inv, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}")) or real_fsync(fd))
    ino = inv.stat().st_ino
    new = edit_hosts(inv, remove="pi-2")
    backup = write_inventory(inv, new, now=0)
    assert backup.name == "inventory.yml.bak-" + time.strftime("%Y%m%d-%H%M%S", time.localtime(0))
    assert backup.read_text() == INV and inv.read_text() == new
    assert inv.stat().st_ino != ino  # a new file renamed over the old one, never rewritten in place
    assert oct(inv.stat().st_mode & 0o777) == oct(backup.stat().st_mode & 0o777) == "0o640"
    assert str(backup) in synced and str(inv.parent) in synced  # the backup, and the directory after the rename
    assert sorted(p.name for p in inv.parent.iterdir()) == sorted(["inventory.yml", backup.name])  # no temp file


def test_a_symlinked_inventory_is_edited_through_the_link(tmp_path, inv):
    link = tmp_path / "link.yml"
    link.symlink_to(inv)
    write_inventory(link, edit_hosts(link, remove="pi-4"), now=0)
    assert link.is_symlink() and os.readlink(link) == str(inv)
    assert "pi-4:" not in inv.read_text() and "# end" in inv.read_text()


# -- kubeconfig -----------------------------------------------------------------------------------
def _k3s_config(name="lab"):
    return kc.rewrite({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "default", "cluster": {"server": "https://127.0.0.1:6443",
                                                     "certificate-authority-data": "Q0E="}}],
        "users": [{"name": "default", "user": {"client-key-data": "S0VZ"}}],
        "contexts": [{"name": "default", "context": {"cluster": "default", "user": "default"}}],
        "current-context": "default"}, name=name, server="https://192.0.2.1:6443")


def test_a_symlinked_kubeconfig_is_updated_through_the_link(tmp_path):
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    real = dotfiles / "kubeconfig"
    real.write_text(kc.dump(_k3s_config("other")))
    real.chmod(0o600)
    link = tmp_path / ".kube" / "config"
    link.parent.mkdir()
    link.symlink_to(real)
    done = kc.install(_k3s_config("lab"), path=link, now=0)
    assert link.is_symlink() and os.readlink(link) == str(real)
    names = [c["name"] for c in yaml.safe_load(real.read_text())["contexts"]]
    assert names == ["other", "lab"]
    assert oct(real.stat().st_mode & 0o777) == "0o600"
    assert done.backup.parent == link.parent and done.backup.name.startswith("config.bak-")
    assert [c["name"] for c in yaml.safe_load(done.backup.read_text())["contexts"]] == ["other"]
    assert sorted(p.name for p in dotfiles.iterdir()) == ["kubeconfig"]  # no temp file left beside it


def test_backup_names_do_not_collide(tmp_path):
    p = tmp_path / "f"
    p.write_text("x")
    first, second = userfile.backup(p, now=0), userfile.backup(p, now=0)
    assert (first.name, second.name) == (f"f.bak-{time.strftime('%Y%m%d-%H%M%S', time.localtime(0))}",
                                         first.name + ".1")
