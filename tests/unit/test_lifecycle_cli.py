"""The lifecycle commands' CLI: what they refuse before touching any node, and `backup --list`.

The inventory points at 192.0.2.1 (TEST-NET-1, never answers): a command that tried SSH
would fail with "unreachable" after its connect timeout instead of the message checked here.
"""

import json
import time

import pytest
from typer.testing import CliRunner

from edgeclu.cli import app
from tests.unit.test_lifecycle_files import _fake_backup

INV = """k3s_cluster:
  children:
    server: {hosts: {pi-1: {ansible_host: 192.0.2.1}}}
    agent: {hosts: {pi-2: {ansible_host: 192.0.2.2}}}
  vars: {k3s_version: v1.31.4+k3s1}
"""


@pytest.fixture
def inv(tmp_path):
    p = tmp_path / "inventory.yml"
    p.write_text(INV)
    return p


def _run(args, **kw):
    t0 = time.monotonic()
    r = CliRunner().invoke(app, args, **kw)
    return r, time.monotonic() - t0


@pytest.mark.parametrize(("args", "code", "message"), [
    (["reset"], 1, "nothing was changed"),
    (["restore", "home-1"], 1, "no backup 'home-1' (in "),
    (["upgrade", "--k3s-version", "1.31.5"], 1, "--k3s-version: '1.31.5' is not a k3s version"),
    (["add", "192.0.2.9", "--role", "boss"], 1, "--role must be server or agent, not 'boss'"),
    (["remove", "pi-9"], 1, "pi-9 is not in"),
    (["remove", "pi-1"], 5, "pi-1 is the cluster's only server: removing it removes the cluster"),
])
def test_refused_before_any_node_is_contacted(inv, tmp_path, args, code, message):
    r, took = _run([*args, "-i", str(inv), "--backup-dir", str(tmp_path / "b")] if args[0] in ("reset", "restore")
                   else [*args, "-i", str(inv)], input="n\n")
    assert r.exit_code == code, r.output
    assert message in r.stderr.replace("\n", " ")
    assert "unreachable" not in r.stderr and took < 4
    assert inv.read_text() == INV


def test_reset_states_what_it_will_do_before_asking(inv, tmp_path):
    r, _ = _run(["reset", "-i", str(inv), "--no-backup"], input="\n")
    assert r.exit_code == 1
    assert ("Uninstall k3s from 2 node(s) (pi-1, pi-2) and delete cluster 'edgeclu''s data on them? [y/N]"
            in r.output)


def test_backup_list(tmp_path):
    root = tmp_path / "b"
    _fake_backup(root, "home-20250102-000000", "2025-01-02T00:00:00Z")
    _fake_backup(root, "home-20250101-000000", "2025-01-01T00:00:00Z", datastore="sqlite")
    r, _ = _run(["backup", "--list", "--backup-dir", str(root)])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert [ln.split()[:4] for ln in lines] == [
        ["home-20250101-000000", "2025-01-01T00:00:00Z", "sqlite", "v1.31.4+k3s1"],
        ["home-20250102-000000", "2025-01-02T00:00:00Z", "etcd", "v1.31.4+k3s1"]]
    assert lines[0].endswith("2 node(s)  " + str(sum(p.stat().st_size for p in (root / "home-20250101-000000")
                                                         .iterdir())) + " bytes")
    assert r.stderr.strip() == f"2 backup(s) in {root}"
    r, _ = _run(["backup", "--list", "--json"], env={"EDGECLU_BACKUP_DIR": str(root)})
    assert [b["name"] for b in json.loads(r.stdout)] == ["home-20250101-000000", "home-20250102-000000"]


def test_certs_rotate_refuses_a_kubeconfig_it_could_not_merge_into_before_any_node(inv, tmp_path):
    bad = tmp_path / "kubeconfig"
    bad.write_text("clusters: [unclosed\n")
    r, took = _run(["certs", "rotate", "-i", str(inv)], env={"KUBECONFIG": str(bad)})
    assert r.exit_code == 2, r.output
    assert f"{bad}: not a valid kubeconfig: invalid YAML" in r.stderr
    assert "unreachable" not in r.stderr and took < 4
