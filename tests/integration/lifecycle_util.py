"""Helpers for the lifecycle lab tests (test_lifecycle_*_lab.py): the real CLI in a subprocess,
an inventory with fast heartbeats, and what the k3s stand-in on a server knows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.k3s_standin.fixtures import V1

# heartbeats every second, NotReady after 4 s without one (k3s defaults: 10 s / 40 s)
FAST = {"kubelet-arg": ["node-status-update-frequency=1s"],
        "kube-controller-manager-arg": ["node-monitor-grace-period=4s"]}


COMMENT = "# the lab's inventory: edgeclu's edits keep this comment\n"


def write_inventory(tmp_path: Path, lab, mirror, servers, agents, **cluster_vars) -> Path:
    path = tmp_path / "inventory.yml"
    path.write_text(COMMENT + lab.inventory_yaml(servers, agents, user="edge", extra_vars={
        "k3s_version": V1, "token_file": str(tmp_path / "secrets" / "token"), **mirror.vars,
        "cluster_name": "lab", "k3s_extra_config": FAST, **cluster_vars}))
    return path


def inventory_hosts(path: Path) -> dict[str, list[str]]:
    children = yaml.safe_load(path.read_text())["k3s_cluster"]["children"]
    return {role: sorted((g or {}).get("hosts") or {}) for role, g in children.items()}


def env_for(tmp_path: Path) -> dict:
    return dict(os.environ, KUBECONFIG=str(tmp_path / "kubeconfig"), EDGECLU_BACKUP_DIR=str(tmp_path / "backups"),
                COLUMNS="200")


def edgeclu(tmp_path: Path, *args: str, input: str | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    """``edgeclu ARGS`` as a user runs it (stdout and stderr captured separately)."""
    return subprocess.run([sys.executable, "-m", "edgeclu", *args], env=env_for(tmp_path), input=input,
                          capture_output=True, text=True, timeout=timeout)


def start(tmp_path: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "edgeclu", *args], env=env_for(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-8000:]}"
    return proc


def kube_nodes(lab, server: str = "node1") -> dict[str, dict]:
    """``{name: {ready, version, cordoned, roles}}`` from kubectl on ``server``."""
    doc = json.loads(lab.exec(server, "k3s kubectl get nodes -o json"))
    nodes = {}
    for item in doc["items"]:
        labels = item["metadata"]["labels"]
        nodes[item["metadata"]["name"]] = {
            "ready": next(c["status"] for c in item["status"]["conditions"] if c["type"] == "Ready") == "True",
            "version": item["status"]["nodeInfo"]["kubeletVersion"],
            "cordoned": bool(item["spec"].get("unschedulable")),
            "roles": sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/")),
        }
    return nodes


def wait_for(predicate, timeout: float = 60, interval: float = 0.5, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval)


def service_marks(lab, node: str, services=("k3s", "k3s-agent", "edgeclu-agent")) -> dict:
    """What changes when a node is touched: each unit's start time, PID and restart count, and the
    mtime of the files edgeclu writes."""
    marks = {}
    for unit in services:
        marks[unit] = lab.exec(node, f"systemctl show {unit} -p ActiveEnterTimestampMonotonic -p MainPID "
                                     "-p NRestarts -p ActiveState").split()
    marks["files"] = lab.exec(node, "stat -c '%n %Y %s' /etc/rancher/k3s/config.yaml /usr/local/bin/k3s "
                                    "/etc/systemd/system/k3s*.service /etc/edgeclu/agent.json 2>/dev/null; true")
    return marks


# etcdctl on a server against its real etcd member, with k3s's certificate paths (server/tls/etcd/)
TLS = "/var/lib/rancher/k3s/server/tls/etcd"
ETCDCTL = (f"ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert={TLS}/server-ca.crt "
           f"--cert={TLS}/server-client.crt --key={TLS}/server-client.key")
STATE_KEY = "/registry/k3s-standin/state"  # tests/k3s_standin/standin/store.py


def etcd_members(run) -> list[str]:
    """The node names of the etcd members (``etcdctl member list``; k3s names them ``<node>-<8 hex>``),
    ``run(command) -> stdout`` on a server."""
    doc = json.loads(run(f"{ETCDCTL} member list -w json"))
    return sorted(m["name"].rsplit("-", 1)[0] for m in doc.get("members") or [] if m.get("name"))


def standin_state(lab, server: str = "node1") -> dict:
    """What the stand-in keeps: in etcd (read with etcdctl) on an HA server, else its state file."""
    if lab.exec(server, "test -d /var/lib/rancher/k3s/server/db/etcd/member && echo etcd || true").strip():
        return json.loads(lab.exec(server, f"{ETCDCTL} get {STATE_KEY} --print-value-only"))
    return json.loads(lab.exec(server, "cat /var/lib/rancher/k3s/server/db/standin-state.json"))
