"""`edgeclu restore` on fake nodes: its checks stop it before any node or file changes (tests/fakes.py)."""

import pytest

from edgeclu.errors import EdgecluError, Unreachable
from edgeclu.inventory import load_inventory
from edgeclu.lifecycle.backup import Backup
from edgeclu.lifecycle.restore import restore_backup
from edgeclu.node import PROBE
from tests.fakes import FakeRemote, answer_lock, fake_cluster, inventory_file, probe_answer

V = "v1.31.4+k3s1"
TOKEN = "K10abc::server:backup-secret"  # noqa: S105 - a made-up token


def _backup(tmp_path, datastore="sqlite") -> Backup:
    path = tmp_path / "homelab-20260101-000000"
    path.mkdir()
    (path / "token").write_text(TOKEN + "\n")
    (path / "db.tar.gz").write_bytes(b"not read by these tests")
    return Backup(path, {"datastore": datastore, "data_file": "db.tar.gz"})


def _cluster(tmp_path, *, running=V, record=None, **cluster_vars):
    inv = load_inventory(inventory_file(tmp_path, ["node1"], ["node2"], **cluster_vars))
    remotes = {n: FakeRemote(n).on(PROBE, probe_answer(n, k3s=running, role=role, running=True))
               for n, role in (("node1", "server"), ("node2", "agent"))}
    answer_lock(remotes["node1"], upgrade=record)
    return inv, remotes, fake_cluster(inv, remotes)


def test_a_backup_of_another_kind_of_cluster_is_refused_before_any_connection(tmp_path):
    inv = load_inventory(inventory_file(tmp_path, ["node1"], ["node2"]))
    with pytest.raises(EdgecluError, match="embedded-etcd cluster, but .* has 1 server.s., which means SQLite"):
        restore_backup(fake_cluster(inv, {}), _backup(tmp_path, "etcd"))


def test_nodes_running_a_newer_k3s_than_the_inventory_are_refused(tmp_path):
    inv, remotes, cluster = _cluster(tmp_path, running="v1.32.0+k3s1")
    (tmp_path / "token").write_text("K10abc::server:the-current-one\n")
    with pytest.raises(EdgecluError, match="v1.32.0"):
        restore_backup(cluster, _backup(tmp_path))
    assert (tmp_path / "token").read_text() == "K10abc::server:the-current-one\n"  # token not replaced
    assert not any(c.startswith("systemctl") for r in remotes.values() for c in r.calls)


def test_an_upgrade_in_progress_is_refused_before_the_nodes_are_asked(tmp_path):
    inv, remotes, cluster = _cluster(tmp_path, record={"target": "v1.31.5+k3s1", "who": "pi@laptop pid 7"})
    with pytest.raises(EdgecluError, match="v1.31.5"):
        restore_backup(cluster, _backup(tmp_path))
    assert not any(r.ran(PROBE) for r in remotes.values())


def test_a_token_from_the_environment_must_be_the_backups(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGECLU_TEST_TOKEN", "another-secret")
    inv, remotes, cluster = _cluster(tmp_path, token_env="EDGECLU_TEST_TOKEN")
    with pytest.raises(EdgecluError, match=r"\$EDGECLU_TEST_TOKEN is not the token this backup was taken with"):
        restore_backup(cluster, _backup(tmp_path))
    assert all(c == PROBE or "flock" in c for r in remotes.values() for c in r.calls)  # only looked
    assert not any(r.puts for r in remotes.values())


def test_a_server_that_does_not_answer_stops_it_before_any_change(tmp_path):
    inv = load_inventory(inventory_file(tmp_path, ["node1", "node2"], []))
    remotes = {"node1": answer_lock(FakeRemote("node1").on(PROBE, probe_answer("node1", k3s=V, role="server"))),
               "node2": FakeRemote("node2").on(PROBE, Unreachable("node2", "10.0.0.11:22 timed out after 5s"))}
    (tmp_path / "token").write_text(TOKEN + "\n")
    with pytest.raises(EdgecluError, match="node2: 10.0.0.11:22 timed out after 5s; nothing was changed"):
        restore_backup(fake_cluster(inv, remotes), _backup(tmp_path, "etcd"))
    assert not any(c.startswith("systemctl") for c in remotes["node1"].calls)
