"""Controller-side files of the lifecycle commands: inventory edits, backups on disk, the token."""

import datetime as dt
import json
import os
import stat
import time

import pytest
import yaml

from edgeclu.errors import EdgecluError, InventoryError
from edgeclu.inventory import load_inventory
from edgeclu.lifecycle import backup as bk
from edgeclu.lifecycle.invfile import set_cluster_var, write_inventory
from edgeclu.lifecycle.restore import restore_commands, sync_token, token_secret

INV = """k3s_cluster:
  children:
    server:
      hosts:
        pi-1: {ansible_host: 10.0.0.1}
  vars:
    k3s_version: v1.31.4+k3s1
    token_file: TOKEN
"""


def _inv(tmp_path, token_file=None):
    p = tmp_path / "inventory.yml"
    p.write_text(INV.replace("TOKEN", str(token_file or tmp_path / "token")))
    p.chmod(0o640)
    return p


def _mode(p):
    return stat.S_IMODE(p.stat().st_mode)


# -- inventory ---------------------------------------------------------------------
def test_write_inventory_is_atomic_keeps_mode_and_a_backup(tmp_path):
    p = _inv(tmp_path)
    before = p.read_text()
    text = set_cluster_var(p, "k3s_version", "v1.31.5+k3s1")
    assert p.read_text() == before  # not written yet
    backup = write_inventory(p, text, now=0)
    assert backup.name == "inventory.yml.bak-" + time.strftime("%Y%m%d-%H%M%S", time.localtime(0))
    assert backup.read_text() == before
    assert load_inventory(p).k3s_version == "v1.31.5+k3s1" and _mode(p) == 0o640 and _mode(backup) == 0o640
    assert sorted(x.name for x in tmp_path.iterdir()) == ["inventory.yml", backup.name]
    assert write_inventory(p, text, now=0).name == backup.name + ".1"  # two edits in one second: both kept
    (tmp_path / (backup.name + ".1")).unlink()
    assert write_inventory(p, before, backup=False) is None and backup.read_text() == before


def test_set_cluster_var_validates(tmp_path):
    with pytest.raises(InventoryError, match="is not a k3s version"):
        set_cluster_var(_inv(tmp_path), "k3s_version", "1.31")


# -- backups on disk -----------------------------------------------------------------
@pytest.mark.parametrize(("output", "path"), [
    # real k3s (logrus) and the stand-in
    ('INFO[0000] Saving etcd snapshot to /var/lib/rancher/k3s/server/db/snapshots/edgeclu-pi-1-1697670509\n'
     '{"level":"info","msg":"created temporary db file"}',
     "/var/lib/rancher/k3s/server/db/snapshots/edgeclu-pi-1-1697670509"),
    ('time="2025-01-01T00:00:00Z" level=info msg="Saving etcd snapshot to /d/s/edgeclu-n-1"',
     "/d/s/edgeclu-n-1"),
    ('{"level":"info","msg":"saved","path":"/var/lib/rancher/k3s/server/db/snapshots/on-demand-1612980495"}',
     "/var/lib/rancher/k3s/server/db/snapshots/on-demand-1612980495"),
    ("FATA[0000] etcd datastore disabled", None),
])
def test_snapshot_path(output, path):
    assert bk.snapshot_path(output) == path


def test_names_and_default_root(tmp_path):
    when = dt.datetime(2025, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
    assert bk.backup_name("home", when) == "home-20250304-050607"
    assert bk.default_root({"EDGECLU_BACKUP_DIR": str(tmp_path)}) == tmp_path
    assert bk.default_root({"XDG_DATA_HOME": "/x"}) == bk.Path("/x/edgeclu/backups")


def _fake_backup(root, name, created, datastore="etcd"):
    d = root / name
    d.mkdir(parents=True, mode=0o700)
    files = {"snap": "state", "token": "K10abc::server:s3cret\n", "node-passwords.json": '{"pi-1": "pw"}'}
    for f, text in files.items():
        bk._write_private(d / f, text)
    meta = {"cluster": "home", "created": created, "datastore": datastore, "server": "pi-1", "data_file": "snap",
            "k3s_version": "v1.31.4+k3s1", "nodes": ["pi-1", "pi-2"],
            "sha256": {f: bk.sha256_file(d / f) for f in files}}
    bk._write_private(d / "meta.json", json.dumps(meta))
    return d


def test_list_and_load_backups_checks_every_file(tmp_path):
    root = tmp_path / "b"
    _fake_backup(root, "home-2", "2025-01-02T00:00:00Z")
    _fake_backup(root, "home-1", "2025-01-01T00:00:00Z", datastore="sqlite")
    (root / "junk").mkdir()
    found = bk.list_backups(root)
    assert [b.name for b in found] == ["home-1", "home-2"]
    assert found[1].summary() == {"name": "home-2", "created": "2025-01-02T00:00:00Z", "cluster": "home",
                                  "datastore": "etcd", "server": "pi-1", "k3s_version": "v1.31.4+k3s1",
                                  "nodes": ["pi-1", "pi-2"], "size": found[1].size, "path": str(root / "home-2")}
    b = bk.load_backup("home-2", root)
    assert b.token() == "K10abc::server:s3cret" and b.node_passwords() == {"pi-1": "pw"}
    assert bk.load_backup(str(root / "home-1"), tmp_path / "elsewhere").datastore == "sqlite"
    assert _mode(root / "home-2") == 0o700 and {_mode(p) for p in (root / "home-2").iterdir()} == {0o600}

    (root / "home-2" / "snap").write_text("tampered")
    with pytest.raises(EdgecluError, match="snap does not match its sha256 in meta.json; refusing"):
        bk.load_backup("home-2", root)
    with pytest.raises(EdgecluError, match=r"no backup 'nope' \(in .*: home-1, home-2\)"):
        bk.load_backup("nope", root)
    assert bk.list_backups(tmp_path / "missing") == []


# -- restore: token and commands -------------------------------------------------------------
@pytest.mark.parametrize(("token", "secret"), [
    ("K10" + "a" * 64 + "::server:abc123", "abc123"), ("abc123\n", "abc123"), ("K10x::node:s", "s")])
def test_token_secret(token, secret):
    assert token_secret(token) == secret


def test_restore_commands():
    assert restore_commands("etcd", "/var/lib/edgeclu/restore/edgeclu-n-1") == [
        "k3s server --cluster-reset --cluster-reset-restore-path=/var/lib/edgeclu/restore/edgeclu-n-1"]
    d = "/var/lib/rancher/k3s/server"
    assert restore_commands("sqlite", "/s/db.tar.gz") == [
        f"rm -rf {d}/db.before-restore", f"if [ -d {d}/db ]; then mv {d}/db {d}/db.before-restore; fi",
        f"mkdir -p {d} && tar -xzf /s/db.tar.gz -C {d}"]


def test_sync_token_writes_the_backups_secret_0600_and_keeps_the_old_one(tmp_path):
    root = tmp_path / "b"
    b = bk.Backup(_fake_backup(root, "home-1", "2025"), {})
    token = tmp_path / "conf" / "token"
    inv = load_inventory(_inv(tmp_path, token))
    said = []
    assert sync_token(inv, b, said.append) is True  # no token file at all
    assert token.read_text() == "s3cret\n" and _mode(token) == 0o600 and _mode(token.parent) == 0o700
    assert sync_token(inv, b, said.append) is False
    token.write_text("other\n")
    assert sync_token(inv, b, said.append) is True
    assert (tmp_path / "conf" / "token.before-restore").read_text() == "other\n"
    assert _mode(tmp_path / "conf" / "token.before-restore") == 0o600
    assert "s3cret" not in " ".join(said)


def test_sync_token_from_the_environment_is_checked_not_written(tmp_path, monkeypatch):
    b = bk.Backup(_fake_backup(tmp_path / "b", "home-1", "2025"), {})
    p = tmp_path / "inventory.yml"
    data = yaml.safe_load(INV)
    data["k3s_cluster"]["vars"] = {"k3s_version": "v1.31.4+k3s1", "token_env": "EDGECLU_T"}
    p.write_text(yaml.safe_dump(data))
    inv = load_inventory(p)
    monkeypatch.setenv("EDGECLU_T", "s3cret")
    assert sync_token(inv, b, print) is False
    monkeypatch.setenv("EDGECLU_T", "wrong")
    with pytest.raises(EdgecluError, match=r"\$EDGECLU_T is not the token this backup was taken with"):
        sync_token(inv, b, print)
    assert os.environ["EDGECLU_T"] == "wrong"
