"""`edgeclu up` end to end, as a user runs it: the real CLI, real SSH, real ansible-runner, lab nodes.

k3s itself cannot be downloaded here: the nodes get the k3s STAND-IN (tests/k3s_standin/) from a
mirror on the controller, through the same `k3s_mirror` + sha256 path a user's air-gapped setup uses.
"""

import json
import os
import stat
import subprocess
import sys
import time

import pytest
import yaml

from tests.integration import real_clients
from tests.k3s_standin.fixtures import V1, k3s_mirror, k3s_releases  # noqa: F401

pytestmark = pytest.mark.lab


def _inventory(tmp_path, lab, mirror, servers, agents):
    path = tmp_path / "inventory.yml"
    path.write_text(lab.inventory_yaml(servers, agents, user="edge", extra_vars={
        "k3s_version": V1, "token_file": str(tmp_path / "secrets" / "token"), **mirror.vars,
        "cluster_name": "lab"}))
    return path


def wait_for(fetch, want, timeout=60):
    """``fetch()`` until it has ``want`` entries (Prometheus scrapes on its own schedule)."""
    deadline = time.monotonic() + timeout
    while len(value := fetch()) < want and time.monotonic() < deadline:
        time.sleep(1)
    return value


def _edgeclu(command, inv, kubeconfig, *args, timeout=600):
    env = dict(os.environ, KUBECONFIG=str(kubeconfig), COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "edgeclu", command, "-i", str(inv), *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def _up(inv, kubeconfig, *args, timeout=600):
    return _edgeclu("up", inv, kubeconfig, *args, timeout=timeout)


def _ready(lab, server="node1"):
    doc = json.loads(lab.exec(server, "k3s kubectl get nodes -o json"))
    return {n["metadata"]["name"]: next(c["status"] for c in n["status"]["conditions"] if c["type"] == "Ready")
            for n in doc["items"]}


def test_up_one_server_three_agents_then_no_changes(fresh_lab, k3s_mirror, tmp_path):  # noqa: F811
    lab = fresh_lab(4)
    mirror = k3s_mirror(lab)
    inv = _inventory(tmp_path, lab, mirror, ["node1"], ["node2", "node3", "node4"])
    kubeconfig = tmp_path / "kube" / "config"
    kubeconfig.parent.mkdir()
    other = {"apiVersion": "v1", "kind": "Config", "current-context": "work",
             "clusters": [{"name": "work", "cluster": {"server": "https://work.example:6443"}}],
             "users": [{"name": "work", "user": {"token": "keep-me"}}],
             "contexts": [{"name": "work", "context": {"cluster": "work", "user": "work"}}]}
    kubeconfig.write_text(yaml.safe_dump(other))

    # --dry-run: a plan per node, and nothing on the nodes
    dry = _up(inv, kubeconfig, "--dry-run")
    assert dry.returncode == 0, dry.stderr[-4000:]
    for node in ("node1", "node2", "node3", "node4"):
        assert f"{node}: " in dry.stdout and "change(s)" in dry.stdout
        assert not (lab.nodes[node].upper / "usr/local/bin/k3s").exists()

    first = _up(inv, kubeconfig, "--json")
    assert first.returncode == 0, first.stderr[-6000:]
    assert _ready(lab) == {"node1": "True", "node2": "True", "node3": "True", "node4": "True"}
    for node in lab.nodes:
        assert lab.exec(node, "systemctl is-active edgeclu-agent").strip() == "active"
    token_file = tmp_path / "secrets" / "token"
    token = token_file.read_text().strip()
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert token and token not in first.stdout + first.stderr + dry.stdout + dry.stderr
    # kubeconfig merged: our context added and current, the user's other context untouched, 0600
    merged = yaml.safe_load(kubeconfig.read_text())
    assert merged["current-context"] == "lab"
    assert {c["name"] for c in merged["contexts"]} == {"work", "lab"}
    lab_cluster = next(c for c in merged["clusters"] if c["name"] == "lab")
    assert lab_cluster["cluster"]["server"] == f"https://{lab.nodes['node1'].ip}:6443"
    assert next(u for u in merged["users"] if u["name"] == "work")["user"] == {"token": "keep-me"}
    assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600
    assert list(kubeconfig.parent.glob("config.bak-*")), "no backup of the old kubeconfig"
    # the user's own kubectl (the machine's, same minor) with that kubeconfig, TLS verified: every node Ready
    assert real_clients.ready_nodes(kubeconfig, "lab", V1) == dict.fromkeys(("node1", "node2", "node3", "node4"), True)
    # a real Prometheus on the controller scrapes every node's agent with the README's scrape config
    targets = [f"{lab.nodes[n].ip}:9101" for n in sorted(lab.nodes)]
    with real_clients.prometheus(real_clients.readme_scrape_config(targets), lab.ctl_ip) as prom:
        up = wait_for(lambda: {r["metric"]["instance"]: r["value"][1]
                               for r in real_clients.query(prom, 'up{job="edgeclu"}')}, want=len(targets))
        assert up == dict.fromkeys(targets, "1")
        load = {r["metric"]["instance"] for r in real_clients.query(prom, "node_memory_MemTotal_bytes > 0")}
        assert load == set(targets)

    # the playbook itself changes nothing the second time
    second = _up(inv, kubeconfig, "--json", "--full")
    assert second.returncode == 0, second.stderr[-6000:]
    doc = json.loads(second.stdout)
    assert doc["changed"] == 0, {h: v for h, v in doc["hosts"].items() if v["changed"]}
    assert "0 change(s)" in second.stderr and "every node is as the last run left it" not in second.stderr

    # ... and every node is stamped: the next run only looks (one SSH command per node)
    assert all(lab.exec(n, "stat -c '%a %U' /var/lib/edgeclu/converged").split() == ["600", "root"] for n in lab.nodes)
    # the stamp holds what the roles asked, not a list of ours: the k3s role's config and the agent's unit
    asked = json.loads(lab.exec("node2", "cat /var/lib/edgeclu/converged"))["request"]
    assert "/etc/rancher/k3s/config.yaml" in asked["paths"] and "edgeclu-agent.service" in asked["services"]
    status = _edgeclu("status", inv, kubeconfig, "--json")
    assert status.returncode == 0, status.stderr[-3000:]
    assert {n: (r["as_left"], r["ready"]) for n, r in json.loads(status.stdout)["nodes"].items()} == dict.fromkeys(
        lab.nodes, (True, True))
    third = _up(inv, kubeconfig, "--json")
    assert third.returncode == 0, third.stderr[-6000:]
    assert "every node is as the last run left it, and Ready: nothing to change" in third.stderr
    assert json.loads(third.stdout)["changed"] == 0

    # a node that is no longer as the run left it (here: its agent stopped) gets the playbook again
    lab.exec("node3", "systemctl stop edgeclu-agent")
    lab.exec("node2", "chmod 0644 /etc/rancher/k3s/config.yaml")
    status = _edgeclu("status", inv, kubeconfig)
    assert status.returncode == 1, status.stderr[-3000:]
    assert "node3 is not as the last run left it: service edgeclu-agent.service: active/enabled -> " \
           "inactive/enabled" in status.stderr
    assert "node2 is not as the last run left it: /etc/rancher/k3s/config.yaml: mode 0600 -> 0644" in status.stderr
    assert "✓ node1: as the last run left it, Ready" in status.stderr
    fourth = _up(inv, kubeconfig, "--json")
    assert fourth.returncode == 0, fourth.stderr[-6000:]
    assert "running the playbook: node2 is not as the last run left it" in fourth.stderr
    changed = {h: v["changed"] for h, v in json.loads(fourth.stdout)["hosts"].items()}
    assert changed["node3"] > 0 and changed["node2"] > 0 and {changed["node1"], changed["node4"]} == {0}
    assert lab.exec("node3", "systemctl is-active edgeclu-agent").strip() == "active"
    assert lab.exec("node2", "stat -c %a /etc/rancher/k3s/config.yaml").strip() == "600"
    assert _edgeclu("status", inv, kubeconfig).returncode == 0
    # so does a changed inventory (here: one more node label), on every node
    data = yaml.safe_load(inv.read_text())
    data["k3s_cluster"]["vars"]["node_labels"] = ["edge=yes"]
    inv.write_text(yaml.safe_dump(data, sort_keys=False))
    fifth = _up(inv, kubeconfig, "--json")
    assert fifth.returncode == 0, fifth.stderr[-6000:]
    assert "running the playbook: node1: the inputs changed since the last run" in fifth.stderr
    assert all(v["changed"] > 0 for v in json.loads(fifth.stdout)["hosts"].values())


def test_node_powered_off_mid_up_fails_alone_and_rerun_converges(fresh_lab, k3s_mirror, tmp_path):  # noqa: F811
    lab = fresh_lab(3)
    mirror = k3s_mirror(lab)
    inv = _inventory(tmp_path, lab, mirror, ["node1"], ["node2", "node3"])
    kubeconfig = tmp_path / "kubeconfig"
    env = dict(os.environ, KUBECONFIG=str(kubeconfig))
    proc = subprocess.Popen([sys.executable, "-m", "edgeclu", "up", "-i", str(inv), "--json"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # pull node3's plug once up has started working on it
    marker = lab.nodes["node3"].upper / "etc/rancher/k3s"
    deadline = time.monotonic() + 300
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "up never reached node3"
        time.sleep(0.1)
    lab.stop("node3", hard=True)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 1, err[-6000:]
    doc = json.loads(out)
    assert doc["hosts"]["node3"]["ok"] is False
    assert doc["hosts"]["node1"]["ok"] and doc["hosts"]["node2"]["ok"]
    assert "node3" in err and "the others converged" in err
    assert _ready(lab)["node2"] == "True"

    lab.start("node3")
    lab.wait_ssh([lab.nodes["node3"]])
    again = _up(inv, kubeconfig, "--json")
    assert again.returncode == 0, again.stderr[-6000:]
    assert _ready(lab) == {"node1": "True", "node2": "True", "node3": "True"}
