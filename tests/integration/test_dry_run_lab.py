"""`edgeclu up --dry-run` on a converged cluster whose inventory changed: it shows the diffs of the files
edgeclu would write (k3s's config.yaml with the token masked), changes nothing, and the token is in none of
what the run printed, nor in ansible-runner's artifacts (its events, its stdout) of the same dry run."""

import os
import shutil
import subprocess
import sys

import pytest
import yaml

from edgeclu import playbook
from edgeclu.cluster import Cluster
from edgeclu.converge import converge
from edgeclu.inventory import load_inventory
from tests.k3s_standin.fixtures import V1, k3s_mirror, k3s_releases  # noqa: F401

pytestmark = pytest.mark.lab


def _edgeclu(inv, tmp_path, *args):
    env = dict(os.environ, KUBECONFIG=str(tmp_path / "kubeconfig"), COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "edgeclu", "up", "-i", str(inv), *args], env=env,
                          capture_output=True, text=True, timeout=600)


def test_dry_run_shows_file_diffs_with_the_token_masked_and_never_prints_it(fresh_lab, k3s_mirror, tmp_path,  # noqa: F811
                                                                            monkeypatch):
    lab = fresh_lab(2)
    mirror = k3s_mirror(lab)
    inv = tmp_path / "inventory.yml"
    inv.write_text(lab.inventory_yaml(["node1"], ["node2"], user="edge", extra_vars={
        "k3s_version": V1, "token_file": str(tmp_path / "secrets" / "token"), **mirror.vars, "cluster_name": "lab"}))
    first = _edgeclu(inv, tmp_path, "--json")
    assert first.returncode == 0, first.stderr[-6000:]
    token = (tmp_path / "secrets" / "token").read_text().strip()
    agent_token = (tmp_path / "secrets" / "agent-token").read_text().strip()
    config_before = lab.exec("node1", "cat /etc/rancher/k3s/config.yaml")
    assert token in config_before

    data = yaml.safe_load(inv.read_text())
    data["k3s_cluster"]["vars"]["node_labels"] = ["edge=yes"]
    inv.write_text(yaml.safe_dump(data, sort_keys=False))
    dry = _edgeclu(inv, tmp_path, "--dry-run")
    assert dry.returncode == 0, dry.stderr[-6000:]
    out = dry.stdout
    assert "/etc/rancher/k3s/config.yaml (would be)" in out, out[-4000:]
    assert "+- edge=yes" in out.replace("    +", "+")  # the new label, as to_nice_yaml writes it
    assert "token: <secret>" in out  # the token's line, masked (unchanged: a context line)
    for secret in (token, agent_token):
        assert secret not in dry.stdout + dry.stderr
    assert lab.exec("node1", "cat /etc/rancher/k3s/config.yaml") == config_before  # nothing changed

    # the same dry run in-process, keeping ansible-runner's private data dir (events, stdout) before it goes
    kept = tmp_path / "runner"
    real_rmtree = shutil.rmtree

    def keep(path, *a, **k):
        if not kept.exists():
            shutil.copytree(path, kept, ignore=shutil.ignore_patterns("cp"))  # ssh sockets
        real_rmtree(path, *a, **k)

    monkeypatch.setattr(playbook.shutil, "rmtree", keep)
    cluster = Cluster(load_inventory(inv), lab.known_hosts, report=lambda _: None)
    outcome = converge(cluster, dry_run=True)
    assert outcome.result.ok and outcome.result.hosts["node1"].diffs
    files = [p for p in kept.rglob("*") if p.is_file()]
    assert any(p.parent.name == "job_events" for p in files)
    for p in files:
        text = p.read_bytes()
        assert token.encode() not in text and agent_token.encode() not in text, p
    assert b"<secret>" in b"".join(p.read_bytes() for p in files if p.parent.name == "job_events")
