#!/usr/bin/python3
"""k3s STAND-IN for the edgeclu test lab. This is NOT k3s.

The real k3s binary cannot be downloaded where edgeclu's tests run, so the lab serves
this single Python file (stdlib + python3-yaml) under k3s's release file names, through
the same mirror / checksum path a user's air-gap setup uses. It models the parts of k3s
that provisioning and lifecycle code observes:

* ``k3s --version``; the version and arch are baked in by ``release.py``. A file built
  for another arch refuses to run (like an "exec format error").
* ``k3s server``: reads ``/etc/rancher/k3s/config.yaml`` (and flags), writes the token
  (``K10<ca-hash>::server:<secret>``, 0600) and ``/etc/rancher/k3s/k3s.yaml``, listens
  on 6443 and keeps its state (nodes, etcd members) in a store file under the data dir.
  ``cluster-init`` starts an "etcd" cluster; ``server:`` joins one with the token.
* ``k3s agent``: must present the right token to a reachable server or exit non-zero
  with a ``level=fatal`` line in the journal; then it heartbeats. A node is Ready while
  its heartbeat is younger than node-monitor-grace-period.
* ``k3s kubectl get/cordon/uncordon/drain/delete node``, ``get pods``/``get pdb`` (a minimal
  model of pods and PodDisruptionBudgets, enough for drains), ``k3s etcd-snapshot
  save/ls/delete``, ``k3s server --cluster-reset [--cluster-reset-restore-path]``.

What it does NOT do: TLS (the API on 6443 is plain HTTP; ``https://`` URLs are
dialled as ``http://``), containers, pods, networking, real etcd consensus (the first
server holds the state, the others forward to it and keep a replica).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import fcntl
import hashlib
import http.server
import json
import os
import platform
import re
import secrets
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

import yaml

VERSION = "v1.31.4+k3s1"  # rewritten by release.py
ARCH = "amd64"  # rewritten by release.py

CONFIG = "/etc/rancher/k3s/config.yaml"
DATA_DIR = "/var/lib/rancher/k3s"
KUBECONFIG = "/etc/rancher/k3s/k3s.yaml"
NODE_PASSWORD = "/etc/rancher/node/password"
MACHINE_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}
LIST_FLAGS = {"tls-san", "node-label", "node-taint", "disable", "kubelet-arg",
              "kube-controller-manager-arg", "kube-apiserver-arg", "node-external-ip"}
BOOL_FLAGS = {"cluster-init", "cluster-reset", "disable-agent", "debug"}
KNOWN_FLAGS = LIST_FLAGS | BOOL_FLAGS | {
    "config", "token", "token-file", "server", "data-dir", "node-name", "node-ip", "write-kubeconfig",
    "write-kubeconfig-mode", "https-listen-port", "bind-address", "advertise-address",
    "cluster-reset-restore-path", "flannel-iface", "flannel-backend", "default-local-storage-path",
    "cluster-cidr", "service-cidr", "cluster-dns", "cluster-domain", "agent-token", "etcd-snapshot-dir",
    "etcd-snapshot-schedule-cron", "etcd-snapshot-retention", "secrets-encryption", "selinux",
    "protect-kernel-defaults", "system-default-registry", "embedded-registry", "prefer-bundled-bin",
    "name", "kubeconfig", "resolv-conf", "node-external-ip", "with-node-id", "lb-server-port",
    "disable-network-policy", "disable-kube-proxy", "disable-cloud-controller", "disable-helm-controller",
}


# -- small helpers -------------------------------------------------------------
def log(level: str, msg: str) -> None:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    escaped = msg.replace('"', '\\"')
    print(f'time="{now}" level={level} msg="{escaped}"', file=sys.stderr, flush=True)


def fatal(msg: str, code: int = 1):
    log("fatal", msg)
    sys.exit(code)


def sd_notify(message: str) -> None:
    """Tell systemd (Type=notify) we are ready, like k3s does once it is up."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.connect(address)
        s.sendall(message.encode())


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def parse_duration(text: str) -> float:
    """Go-style durations: ``40s``, ``1m30s``, ``500ms``."""
    total, pos = 0.0, 0
    for m in re.finditer(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(f"invalid duration {text!r}")
    return total


def component_arg(config: dict, key: str, name: str, default: float) -> float:
    """``kubelet-arg: [node-status-update-frequency=2s]`` style settings."""
    for item in config.get(key) or []:
        k, _, v = str(item).lstrip("-").partition("=")
        if k == name:
            return parse_duration(v)
    return default


def write_file(path: str, text: str, mode: int) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def read_file(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None


def split_token(token: str) -> tuple[str | None, str]:
    """``K10<ca-hash>::<user>:<secret>`` or a bare secret -> (ca hash or None, secret)."""
    token = token.strip()
    if token.startswith("K10") and "::" in token:
        ca_hash, _, rest = token[3:].partition("::")
        _, _, secret = rest.partition(":")
        if not secret:
            fatal("failed to normalize server token; must be in format K10<CA-HASH>::<USERNAME>:<PASSWORD> "
                  "or <PASSWORD>")
        return ca_hash, secret
    return None, token


def default_ip(towards: str = "192.0.2.1") -> str:
    """The source address of the route to ``towards`` (the default route if it is not local)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect((towards, 6443))
            return s.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def os_image() -> str:
    for line in (read_file("/etc/os-release") or "").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return "Linux"


def http_url(url: str) -> str:
    """The stand-in serves plain HTTP: dial ``https://`` URLs as ``http://``."""
    return "http://" + url.split("://", 1)[1] if url.startswith("https://") else url


# -- configuration ---------------------------------------------------------------
def parse_flags(argv: list[str]) -> tuple[dict, list[str]]:
    """``--key value`` / ``--key=value`` / ``--bool`` -> (flags, positional args)."""
    flags: dict = {}
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--") and len(arg) > 2:
            key, eq, value = arg[2:].partition("=")
            if key in BOOL_FLAGS and not eq:
                flags[key] = True
            else:
                if not eq:
                    i += 1
                    if i >= len(argv):
                        fatal(f"flag needs an argument: --{key}")
                    value = argv[i]
                if key in LIST_FLAGS:
                    flags.setdefault(key, []).extend(v for v in value.split(",") if v)
                elif key in BOOL_FLAGS:
                    flags[key] = value.lower() in ("1", "true", "yes")
                else:
                    flags[key] = value
        elif arg == "-c" and i + 1 < len(argv):
            flags["config"] = argv[i + 1]
            i += 1
        else:
            rest.append(arg)
        i += 1
    return flags, rest


def load_config(flags: dict) -> dict:
    """config.yaml merged with command-line flags (flags win), like k3s."""
    path = flags.get("config") or os.environ.get("K3S_CONFIG_FILE") or CONFIG
    text = read_file(path)
    config: dict = {}
    if text is not None:
        try:
            config = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            fatal(f"failed to parse {path}: {e}")
        if not isinstance(config, dict):
            fatal(f"{path}: expected a mapping of flags")
    elif "config" in flags:
        fatal(f"open {path}: no such file or directory")
    for key in list(config):
        if key.rstrip("+") not in KNOWN_FLAGS:
            log("warning", f"Unknown flag --{key} found in config.yaml, skipping")
            del config[key]
    for key in LIST_FLAGS:
        if isinstance(config.get(key), str):
            config[key] = [config[key]]
    config.update(flags)
    if "token" not in config and config.get("token-file"):
        config["token"] = (read_file(config["token-file"]) or "").strip()
    if "token" not in config and os.environ.get("K3S_TOKEN"):
        config["token"] = os.environ["K3S_TOKEN"]
    return config


# -- the store (k3s keeps this in SQLite or etcd) --------------------------------
class Store:
    """JSON state file with a lock; writes are atomic renames."""

    def __init__(self, data_dir: str):
        self.dir = os.path.join(data_dir, "server", "db")
        self.path = os.path.join(self.dir, "standin-state.json")
        self.role_path = os.path.join(self.dir, "standin-role.json")
        self._lock = threading.Lock()

    def exists(self) -> bool:
        return os.path.exists(self.path)

    def read(self) -> dict:
        return json.loads(read_file(self.path) or "{}")

    def write(self, state: dict) -> None:
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        write_file(self.path, json.dumps(state, indent=1, sort_keys=True), 0o600)

    def update(self, fn):
        with self._lock, open(os.path.join(self.dir, ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = self.read()
            result = fn(state)
            state["revision"] = state.get("revision", 0) + 1
            self.write(state)
            return result

    def role(self) -> dict | None:
        text = read_file(self.role_path)
        return json.loads(text) if text else None

    def set_role(self, role: dict) -> None:
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        write_file(self.role_path, json.dumps(role), 0o600)


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str):
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


def node_roles(server: bool, etcd: bool) -> list[str]:
    return (["control-plane", "master"] + (["etcd"] if etcd else [])) if server else []


def register_node(state: dict, info: dict, now: float) -> dict:
    """Create or refresh a node on (re)start of its kubelet; checks the node password."""
    name = info["name"]
    passwords = state.setdefault("node_passwords", {})
    want = sha256(info["password"])
    if passwords.get(name, want) != want:
        raise ApiError(403, "Forbidden", "Node password rejected, duplicate hostname or contents of "
                       f"'/etc/rancher/node/password' may not match server node-passwd entry for {name}")
    passwords[name] = want
    nodes = state.setdefault("nodes", {})
    old = nodes.get(name) or {}
    labels = {
        "beta.kubernetes.io/arch": info["arch"], "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": info["arch"], "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": "k3s",
    }
    for role in info.get("roles", []):
        labels[f"node-role.kubernetes.io/{role}"] = "true"
    for item in info.get("labels", []):
        k, _, v = item.partition("=")
        labels[k] = v
    taints = []
    for item in info.get("taints", []):
        kv, _, effect = item.partition(":")
        k, _, v = kv.partition("=")
        taints.append({"key": k, **({"value": v} if v else {}), "effect": effect or "NoSchedule"})
    nodes[name] = {
        "name": name, "roles": info.get("roles", []), "labels": labels, "taints": taints,
        "address": info["address"], "version": info["version"], "arch": info["arch"],
        "os_image": info.get("os_image", "Linux"), "kernel": info.get("kernel", ""),
        "created": old.get("created", now), "heartbeat": now, "ready_since": now,
        "unschedulable": old.get("unschedulable", False),
    }
    return nodes[name]


def heartbeat(state: dict, name: str, password: str, now: float, grace: float) -> None:
    node = (state.get("nodes") or {}).get(name)
    if node is None:
        raise ApiError(404, "NotFound", f'nodes "{name}" not found')
    if state.get("node_passwords", {}).get(name) != sha256(password):
        raise ApiError(403, "Forbidden", f"Node password rejected for {name}")
    if now - node["heartbeat"] > grace:
        node["ready_since"] = now
    node["heartbeat"] = now


def delete_node(state: dict, name: str, now: float | None = None, grace: float = 40) -> None:
    """Delete the Node object; like k3s, a deleted server also leaves etcd. Its pods go too
    (pod garbage collection); owned ones are recreated on other nodes."""
    if name not in (state.get("nodes") or {}):
        raise ApiError(404, "NotFound", f'nodes "{name}" not found')
    del state["nodes"][name]
    state.get("node_passwords", {}).pop(name, None)
    state.get("etcd_members", {}).pop(name, None)
    for key in [k for k, p in (state.get("pods") or {}).items() if p["node"] == name]:
        remove_pod(state, key, time.time() if now is None else now, grace)


# -- pods and PodDisruptionBudgets: just enough for `kubectl drain` -------------------
# No container runs: a "pod" is a record bound to a node (the stand-in has no scheduler, so
# spec.nodeName is required). A pod owned by a ReplicaSet/StatefulSet/... is recreated on
# another schedulable Ready node when it is evicted (the controller's job in Kubernetes);
# a bare pod is just deleted; DaemonSet pods are never moved.
RECREATED_BY = ("ReplicaSet", "StatefulSet", "ReplicationController", "Job")


def node_ready(node: dict, now: float, grace: float) -> bool:
    return now - node["heartbeat"] <= grace


def create_object(state: dict, doc: dict, now: float) -> str:
    """``kubectl create -f``: a Pod or a policy/v1 PodDisruptionBudget (integer budgets)."""
    kind = doc.get("kind")
    meta = doc.get("metadata") or {}
    name, ns = meta.get("name"), meta.get("namespace") or "default"
    if not name:
        raise ApiError(422, "Invalid", f"{kind}: metadata.name: Required value")
    key = f"{ns}/{name}"
    if kind == "Pod":
        node = (doc.get("spec") or {}).get("nodeName")
        if node not in (state.get("nodes") or {}):
            raise ApiError(422, "Invalid", f'Pod "{name}": spec.nodeName: {node!r} is not a node '
                                            "(the stand-in has no scheduler: set spec.nodeName)")
        pods = state.setdefault("pods", {})
        if key in pods:
            raise ApiError(409, "AlreadyExists", f'pods "{name}" already exists')
        owner = (meta.get("ownerReferences") or [{}])[0]
        pods[key] = {"namespace": ns, "name": name, "node": node, "labels": meta.get("labels") or {},
                     "owner": {"kind": owner["kind"], "name": owner["name"]} if owner.get("kind") else None,
                     "created": now}
        return f"pod/{name} created"
    if kind == "PodDisruptionBudget":
        spec = doc.get("spec") or {}
        budget = {k: spec[k] for k in ("minAvailable", "maxUnavailable") if k in spec}
        if len(budget) != 1 or not all(isinstance(v, int) and v >= 0 for v in budget.values()):
            raise ApiError(422, "Invalid", f'PodDisruptionBudget "{name}": set one of minAvailable, '
                                            "maxUnavailable, as a number (the stand-in has no percentages)")
        pdbs = state.setdefault("pdbs", {})
        if key in pdbs:
            raise ApiError(409, "AlreadyExists", f'poddisruptionbudgets.policy "{name}" already exists')
        pdbs[key] = {"namespace": ns, "name": name, "created": now,
                     "selector": (spec.get("selector") or {}).get("matchLabels") or {}, **budget}
        return f"poddisruptionbudget.policy/{name} created"
    raise ApiError(400, "BadRequest", f"the k3s stand-in cannot create kind {kind!r} (only Pod, "
                                      "PodDisruptionBudget)")


def pdb_pods(state: dict, pdb: dict) -> list[dict]:
    return [p for p in (state.get("pods") or {}).values()
            if p["namespace"] == pdb["namespace"]
            and all(p["labels"].get(k) == v for k, v in pdb["selector"].items())]


def pdb_status(state: dict, pdb: dict, now: float, grace: float) -> dict:
    """The PDB's status as the disruption controller computes it (healthy = on a Ready node)."""
    pods = pdb_pods(state, pdb)
    nodes = state.get("nodes") or {}
    healthy = sum(1 for p in pods if p["node"] in nodes and node_ready(nodes[p["node"]], now, grace))
    desired = pdb["minAvailable"] if "minAvailable" in pdb else max(len(pods) - pdb["maxUnavailable"], 0)
    return {"currentHealthy": healthy, "desiredHealthy": desired, "expectedPods": len(pods),
            "disruptionsAllowed": max(healthy - desired, 0)}


def evict_pod(state: dict, ns: str, name: str, now: float, grace: float) -> dict:
    """The Eviction API: refused (429) while a matching PDB allows no disruption."""
    key = f"{ns}/{name}"
    if key not in (state.get("pods") or {}):
        raise ApiError(404, "NotFound", f'pods "{name}" not found')
    pod = state["pods"][key]
    for pdb in (state.get("pdbs") or {}).values():
        if pod in pdb_pods(state, pdb) and pdb_status(state, pdb, now, grace)["disruptionsAllowed"] < 1:
            raise ApiError(429, "TooManyRequests", "Cannot evict pod as it would violate the pod's disruption budget.")
    remove_pod(state, key, now, grace)
    return {"kind": "Status", "status": "Success"}


def delete_pdb(state: dict, ns: str, name: str) -> str:
    if (state.get("pdbs") or {}).pop(f"{ns}/{name}", None) is None:
        raise ApiError(404, "NotFound", f'poddisruptionbudgets.policy "{name}" not found')
    return f'poddisruptionbudget.policy "{name}" deleted'


def remove_pod(state: dict, key: str, now: float, grace: float) -> None:
    """Delete a pod; its controller (if it has one that does) creates a replacement elsewhere."""
    pod = state["pods"].pop(key)
    owner = pod.get("owner") or {}
    if owner.get("kind") not in RECREATED_BY:
        return
    nodes = state.get("nodes") or {}
    load = {n: sum(1 for p in state["pods"].values() if p["node"] == n) for n in nodes}
    targets = sorted((load[n], n) for n, node in nodes.items()
                     if n != pod["node"] and not node.get("unschedulable") and node_ready(node, now, grace))
    state["pod_seq"] = state.get("pod_seq", 0) + 1
    name = pod["name"] if owner["kind"] == "StatefulSet" else f"{owner['name']}-{state['pod_seq']:05x}"
    state["pods"][f"{pod['namespace']}/{name}"] = {
        **pod, "name": name, "node": targets[0][1] if targets else None, "created": now}


def pod_object(pod: dict, nodes: dict, now: float, grace: float) -> dict:
    node = nodes.get(pod["node"]) if pod["node"] else None
    phase = "Pending" if not pod["node"] else ("Running" if node and node_ready(node, now, grace) else "Unknown")
    meta = {"name": pod["name"], "namespace": pod["namespace"], "labels": pod["labels"],
            "creationTimestamp": rfc3339(pod["created"])}
    if pod.get("owner"):
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": pod["owner"]["kind"],
                                    "name": pod["owner"]["name"], "controller": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"nodeName": pod["node"]} if pod["node"] else {}, "status": {"phase": phase}}


def pdb_object(state: dict, pdb: dict, now: float, grace: float) -> dict:
    spec = {"selector": {"matchLabels": pdb["selector"]},
            **{k: pdb[k] for k in ("minAvailable", "maxUnavailable") if k in pdb}}
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": pdb["name"], "namespace": pdb["namespace"],
                         "creationTimestamp": rfc3339(pdb["created"])},
            "spec": spec, "status": pdb_status(state, pdb, now, grace)}


# -- kubectl output (pure) --------------------------------------------------------
def rfc3339(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def human_age(seconds: float) -> str:
    """kubectl's AGE column (k8s.io/apimachinery HumanDuration, simplified)."""
    s = int(max(seconds, 0))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    d = h // 24
    return f"{d}d{h % 24}h" if d < 8 and h % 24 else f"{d}d"


def node_object(node: dict, now: float, grace: float) -> dict:
    """A Node as ``kubectl get node -o json`` shows it (the fields edgeclu reads, and a few more)."""
    fresh = now - node["heartbeat"] <= grace
    ready = {
        "type": "Ready", "status": "True" if fresh else "Unknown",
        "reason": "KubeletReady" if fresh else "NodeStatusUnknown",
        "message": "kubelet is posting ready status" if fresh else "Kubelet stopped posting node status.",
        "lastHeartbeatTime": rfc3339(node["heartbeat"]),
        "lastTransitionTime": rfc3339(node["ready_since"] if fresh else node["heartbeat"] + grace),
    }
    spec: dict = {"podCIDR": "10.42.0.0/24", "providerID": f"k3s://{node['name']}"}
    taints = list(node.get("taints", []))
    if node.get("unschedulable"):
        spec["unschedulable"] = True
        taints.append({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule",
                       "timeAdded": rfc3339(now)})
    if not fresh:
        taints.append({"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"})
    if taints:
        spec["taints"] = taints
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": node["name"], "labels": dict(sorted(node["labels"].items())),
                     "annotations": {"k3s.io/node-args": "[]", "k3s.io/internal-ip": node["address"]},
                     "creationTimestamp": rfc3339(node["created"])},
        "spec": spec,
        "status": {
            "addresses": [{"type": "InternalIP", "address": node["address"]},
                          {"type": "Hostname", "address": node["name"]}],
            "conditions": [ready],
            "nodeInfo": {"architecture": node["arch"], "operatingSystem": "linux",
                         "osImage": node.get("os_image", ""), "kernelVersion": node.get("kernel", ""),
                         "kubeletVersion": node["version"], "kubeProxyVersion": node["version"],
                         "containerRuntimeVersion": "standin://0"},
        },
    }


def node_status_word(obj: dict) -> str:
    ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
    word = "Ready" if ready["status"] == "True" else "NotReady"
    return word + (",SchedulingDisabled" if obj["spec"].get("unschedulable") else "")


def node_table(objs: list[dict], now: float, wide: bool = False) -> str:
    head = ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    if wide:
        head += ["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"]
    rows = [head]
    for o in objs:
        roles = sorted(k.split("/", 1)[1] for k in o["metadata"]["labels"]
                       if k.startswith("node-role.kubernetes.io/"))
        created = dt.datetime.strptime(o["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")
        age = now - created.replace(tzinfo=dt.UTC).timestamp()
        row = [o["metadata"]["name"], node_status_word(o), ",".join(roles) or "<none>", human_age(age),
               o["status"]["nodeInfo"]["kubeletVersion"]]
        if wide:
            info = o["status"]["nodeInfo"]
            row += [o["status"]["addresses"][0]["address"], "<none>", info["osImage"], info["kernelVersion"],
                    info["containerRuntimeVersion"]]
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "".join("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n"
                   for r in rows)


# -- HTTP API ------------------------------------------------------------------------
class Server:
    """One k3s server process: API on 6443, the store, and its own kubelet heartbeat."""

    def __init__(self, config: dict):
        self.config = config
        self.data_dir = config.get("data-dir") or DATA_DIR
        self.store = Store(self.data_dir)
        self.name = config.get("node-name") or socket.gethostname()
        self.grace = component_arg(config, "kube-controller-manager-arg", "node-monitor-grace-period", 40)
        self.interval = component_arg(config, "kubelet-arg", "node-status-update-frequency", 10)
        self.port = int(config.get("https-listen-port") or 6443)
        self.leader_url: str | None = None  # None: this server holds the state
        self.stop = threading.Event()

    # -- the state, local or at the leader --------------------------------------
    def call_leader(self, method: str, path: str, body: dict | None = None, auth: str | None = None):
        return request(self.leader_url, method, path, body, auth or self.server_auth())

    def server_auth(self) -> str:
        return "Basic " + base64.b64encode(f"server:{self.secret}".encode()).decode()

    def apply(self, op: str, *args):
        """A state change on the leader (joined servers forward requests to it instead)."""
        now = time.time()
        ops = {
            "register": lambda st: register_node(st, args[0], now),
            "heartbeat": lambda st: heartbeat(st, args[0], args[1], now, self.grace),
            "delete": lambda st: delete_node(st, args[0], now, self.grace),
            "create": lambda st: [create_object(st, doc, now) for doc in args[0]],
            "evict": lambda st: evict_pod(st, args[0], args[1], now, self.grace),
            "delete_pdb": lambda st: delete_pdb(st, args[0], args[1]),
            "cordon": lambda st: self._set_unschedulable(st, args[0], True),
            "uncordon": lambda st: self._set_unschedulable(st, args[0], False),
        }
        return self.store.update(ops[op])

    @staticmethod
    def _set_unschedulable(state: dict, name: str, value: bool) -> None:
        node = (state.get("nodes") or {}).get(name)
        if node is None:
            raise ApiError(404, "NotFound", f'nodes "{name}" not found')
        node["unschedulable"] = value

    # -- bootstrap -------------------------------------------------------------
    def bootstrap(self) -> None:
        token = str(self.config.get("token") or "")
        role = self.store.role()
        server = self.config.get("server")
        if role is None and server:
            self.join(server, token)
            return
        if role and not role.get("leader"):
            # already joined: etcd data exists, the server: flag is not used again (like k3s)
            self.leader_url = role["url"]
            self.secret = role["secret"]
            self.ca = read_file(self.ca_path())
            return
        self.ca = read_file(self.ca_path()) or f"STANDIN-CA {secrets.token_hex(16)}\n"
        write_file(self.ca_path(), self.ca, 0o644)
        state = self.store.read()
        secret = split_token(token)[1] if token else None
        if state.get("cluster"):
            if secret and sha256(secret) != state["cluster"]["token_hash"]:
                fatal("bootstrap data already found and encrypted with different token")
            self.secret = secret or (read_file(self.token_path()) or "").rsplit(":", 1)[-1].strip()
        else:
            self.secret = secret or secrets.token_hex(16)
            datastore = "etcd" if self.config.get("cluster-init") else "sqlite"
            state = {"cluster": {"datastore": datastore, "token_hash": sha256(self.secret),
                                 "admin_token": secrets.token_hex(24), "ca": self.ca,
                                 "created": time.time()},
                     "nodes": {}, "node_passwords": {}, "etcd_members": {}, "revision": 1}
            if datastore == "etcd":
                state["etcd_members"][self.name] = {"address": self.address(), "joined": time.time()}
            self.store.write(state)
            log("info", f"Starting k3s {VERSION}: new cluster, datastore {datastore}")
        self.store.update(lambda st: st["cluster"].update(grace=self.grace))
        self.store.set_role({"leader": True})

    def join(self, server: str, token: str) -> None:
        if not token:
            fatal("--token is required when joining a server")
        ca_hash, secret = split_token(token)
        url = http_url(server)
        ca = wait_for_ca(url, float(os.environ.get("K3S_STANDIN_JOIN_TIMEOUT", "60")))
        if ca_hash and ca_hash != sha256(ca):
            fatal("token CA hash does not match the Cluster CA certificate hash")
        self.secret = secret
        self.leader_url = url
        try:
            reply = self.call_leader("POST", "/v1-standin/join", {"name": self.name, "address": self.address()})
        except ApiError as e:
            if e.status == 401:
                fatal(f"failed to join {server}: the server rejected the token (401 Unauthorized)")
            fatal(f"failed to join {server}: {e.message}")
        self.ca = reply["ca"]
        write_file(self.ca_path(), self.ca, 0o644)
        self.store.write(reply["state"])
        self.store.set_role({"leader": False, "url": url, "secret": secret})
        log("info", f"Joined the cluster at {server} as etcd member {self.name}")

    def ca_path(self) -> str:
        return os.path.join(self.data_dir, "server", "tls", "server-ca.crt")

    def token_path(self) -> str:
        return os.path.join(self.data_dir, "server", "token")

    def address(self) -> str:
        return self.config.get("node-ip") or default_ip()

    def write_files(self) -> None:
        token = f"K10{sha256(self.ca)}::server:{self.secret}\n"
        write_file(self.token_path(), token, 0o600)
        write_file(os.path.join(self.data_dir, "server", "node-token"), token, 0o600)
        state = self.store.read()
        mode = int(str(self.config.get("write-kubeconfig-mode") or "0600"), 8)
        kubeconfig = {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": "default", "cluster": {
                "certificate-authority-data": base64.b64encode(self.ca.encode()).decode(),
                "server": f"https://127.0.0.1:{self.port}"}}],
            "contexts": [{"name": "default", "context": {"cluster": "default", "user": "default"}}],
            "current-context": "default",
            "users": [{"name": "default", "user": {"token": state["cluster"]["admin_token"]}}],
        }
        write_file(self.config.get("write-kubeconfig") or KUBECONFIG,
                   yaml.safe_dump(kubeconfig, sort_keys=False), mode)

    def node_info(self) -> dict:
        etcd = self.leader_url is not None or self.store.read()["cluster"]["datastore"] == "etcd"
        return {"name": self.name, "address": self.address(), "password": self.node_password(),
                "roles": node_roles(True, etcd), "labels": self.config.get("node-label") or [],
                "taints": self.config.get("node-taint") or [], "version": VERSION, "arch": ARCH,
                "os_image": os_image(), "kernel": platform.release()}

    def node_password(self) -> str:
        return ensure_node_password()

    # -- run -----------------------------------------------------------------
    def run(self) -> None:
        self.bootstrap()
        bind = self.config.get("bind-address") or "0.0.0.0"
        try:
            httpd = http.server.ThreadingHTTPServer((bind, self.port), make_handler(self))
        except OSError as e:
            fatal(f"listen tcp {bind}:{self.port}: bind: {e.strerror}")
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        log("info", f"Running kube-apiserver (stand-in) on port {self.port}")
        self.register_self()
        self.write_files()
        sd_notify("READY=1")
        log("info", f"k3s is up and running ({VERSION})")
        while not self.stop.wait(self.interval):
            self.tick()
        httpd.shutdown()

    def register_self(self) -> None:
        info = self.node_info()
        if self.leader_url is None:
            self.apply("register", info)
        else:
            try:
                self.call_leader("POST", "/v1-standin/register", info)
                self.sync()
            except (ApiError, OSError) as e:
                log("error", f"failed to register node {self.name} at {self.leader_url}: {e}")

    def sync(self) -> None:
        self.store.write(self.call_leader("GET", "/v1-standin/state"))

    def tick(self) -> None:
        try:
            if self.leader_url is None:
                self.apply("heartbeat", self.name, self.node_password())
            else:
                self.call_leader("POST", f"/v1-standin/heartbeat/{self.name}", {"password": self.node_password()})
                self.sync()
        except (ApiError, OSError) as e:
            log("error", f"node status update failed: {e}")


def make_handler(server: Server):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet: the journal gets our own lines
            pass

        def _send(self, status: int, body, ctype: str = "application/json") -> None:
            data = (body if isinstance(body, str) else json.dumps(body)).encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, e: ApiError) -> None:
            self._send(e.status, {"kind": "Status", "status": "Failure", "reason": e.reason,
                                  "message": e.message, "code": e.status})

        def _who(self) -> str | None:
            header = self.headers.get("Authorization", "")
            if header.startswith("Bearer "):
                admin = server.store.read().get("cluster", {}).get("admin_token")
                return "admin" if admin and secrets.compare_digest(header[7:], admin) else None
            if header.startswith("Basic "):
                try:
                    user, _, pw = base64.b64decode(header[6:]).decode().partition(":")
                except ValueError:
                    return None
                if user in ("server", "node") and secrets.compare_digest(pw, server.secret):
                    return user
            return None

        def _body(self) -> dict:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length) or b"{}") if length else {}

        def do_GET(self):
            self._route("GET")

        def do_POST(self):
            self._route("POST")

        def do_DELETE(self):
            self._route("DELETE")

        def _route(self, method: str) -> None:
            path = self.path.split("?")[0]
            try:
                body = self._body()
                if path == "/ping":
                    return self._send(200, "pong", "text/plain")
                if path == "/cacerts":
                    return self._send(200, server.ca, "text/plain")
                who = self._who()
                if who is None:
                    raise ApiError(401, "Unauthorized", "Unauthorized")
                if server.leader_url is not None:
                    return self._forward(method, path, body)
                self._send(200, self._local(method, path, body, who))
            except ApiError as e:
                self._error(e)
            except (ValueError, KeyError) as e:
                self._error(ApiError(400, "BadRequest", f"bad request: {e}"))

        def _forward(self, method: str, path: str, body: dict) -> None:
            try:
                reply = request(server.leader_url, method, path, body or None,
                                self.headers.get("Authorization"))
            except ApiError as e:
                return self._error(e)
            except OSError as e:
                if method == "GET" and path == "/v1-standin/state":
                    return self._send(200, server.store.read())  # the replica, while the leader is away
                return self._error(ApiError(503, "ServiceUnavailable", f"leader unreachable: {e}"))
            self._send(200, reply)

        def _local(self, method: str, path: str, body: dict, who: str):
            parts = path.strip("/").split("/")
            if parts[:1] != ["v1-standin"]:
                raise ApiError(404, "NotFound", f"the server could not find the requested resource ({path})")
            route = (method, *parts[1:2])
            if route == ("GET", "state") and who in ("admin", "server"):
                return server.store.read()
            if route == ("POST", "join") and who == "server":
                return server.store.update(lambda st: join_member(st, body))
            if route == ("POST", "register") and who in ("server", "node"):
                return server.apply("register", body)
            if route == ("POST", "heartbeat") and who in ("server", "node") and len(parts) == 3:
                return server.apply("heartbeat", parts[2], body.get("password", ""))
            if parts[1:2] == ["nodes"] and len(parts) >= 3 and who == "admin":
                if method == "DELETE" and len(parts) == 3:
                    return server.apply("delete", parts[2])
                if method == "POST" and len(parts) == 4 and parts[3] in ("cordon", "uncordon"):
                    return server.apply(parts[3], parts[2])
            if route == ("POST", "objects") and who == "admin":
                return server.apply("create", body.get("items") or [])
            if parts[1:2] == ["pods"] and len(parts) == 5 and parts[4] == "eviction" and who == "admin":
                return server.apply("evict", parts[2], parts[3])
            if method == "DELETE" and parts[1:2] == ["pdbs"] and len(parts) == 4 and who == "admin":
                return server.apply("delete_pdb", parts[2], parts[3])
            raise ApiError(403, "Forbidden", f"{who} may not {method} {path}")

    return Handler


def join_member(state: dict, body: dict) -> dict:
    if state["cluster"]["datastore"] != "etcd":
        raise ApiError(409, "Conflict", "this server uses SQLite (started without cluster-init); "
                                        "servers cannot join it")
    state["etcd_members"][body["name"]] = {"address": body["address"], "joined": time.time()}
    return {"ca": state["cluster"]["ca"], "state": state}


def request(base: str, method: str, path: str, body: dict | None = None, auth: str | None = None,
            timeout: float = 5):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base.rstrip("/") + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if auth:
        req.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read().decode()
    except urllib.error.HTTPError as e:
        try:
            status = json.loads(e.read().decode())
        except ValueError:
            status = {}
        raise ApiError(e.code, status.get("reason", e.reason), status.get("message", str(e.reason))) from None
    except urllib.error.URLError as e:
        raise OSError(str(e.reason)) from None
    return json.loads(raw) if raw and raw[0] in "{[" else raw


def wait_for_ca(url: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return request(url, "GET", "/cacerts")
        except (OSError, ApiError) as e:
            if time.monotonic() > deadline:
                fatal(f"failed to get CA certs from {url}: {e}")
            log("info", f"Waiting for the server at {url}: {e}")
            time.sleep(1)


def ensure_node_password() -> str:
    pw = (read_file(NODE_PASSWORD) or "").strip()
    if not pw:
        pw = secrets.token_hex(16)
        os.makedirs(os.path.dirname(NODE_PASSWORD), exist_ok=True)
        write_file(NODE_PASSWORD, pw + "\n", 0o600)
    return pw


# -- commands ---------------------------------------------------------------------
def install_signal_handlers(stop: threading.Event) -> None:
    def handler(signum, _frame):
        log("info", f"Received signal {signal.Signals(signum).name}, shutting down")
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def cmd_server(argv: list[str]) -> int:
    flags, _ = parse_flags(argv)
    config = load_config(flags)
    if config.get("cluster-reset"):
        return cluster_reset(config)
    if config.get("cluster-init") and config.get("server"):
        log("warning", "cluster-init is ignored when joining a server")
    server = Server(config)
    install_signal_handlers(server.stop)
    server.run()
    return 0


def cmd_agent(argv: list[str]) -> int:
    flags, _ = parse_flags(argv)
    config = load_config(flags)
    if not config.get("server"):
        fatal("--server is required")
    if not config.get("token"):
        fatal("--token is required")
    url = http_url(config["server"])
    ca_hash, secret = split_token(str(config["token"]))
    ca = wait_for_ca(url, float(os.environ.get("K3S_STANDIN_JOIN_TIMEOUT", "60")))
    if ca_hash and ca_hash != sha256(ca):
        fatal("token CA hash does not match the Cluster CA certificate hash")
    name = config.get("node-name") or socket.gethostname()
    auth = "Basic " + base64.b64encode(f"node:{secret}".encode()).decode()
    host = url.split("://", 1)[1].rsplit(":", 1)[0].strip("[]")
    info = {"name": name, "address": config.get("node-ip") or default_ip(socket.gethostbyname(host)),
            "password": ensure_node_password(), "roles": [], "labels": config.get("node-label") or [],
            "taints": config.get("node-taint") or [], "version": VERSION, "arch": ARCH,
            "os_image": os_image(), "kernel": platform.release()}
    try:
        request(url, "POST", "/v1-standin/register", info, auth)
    except ApiError as e:
        if e.status == 401:
            fatal(f"Error: the server at {config['server']} rejected the token (401 Unauthorized): "
                  "it is not this cluster's token")
        fatal(f"Error: failed to register node {name} with {config['server']}: {e.message}")
    except OSError as e:
        fatal(f"Error: failed to reach {config['server']}: {e}")
    write_file(os.path.join(config.get("data-dir") or DATA_DIR, "agent", "standin-server"),
               config["server"] + "\n", 0o600)
    stop = threading.Event()
    install_signal_handlers(stop)
    sd_notify("READY=1")
    log("info", f"k3s agent {name} joined {config['server']} ({VERSION})")
    interval = component_arg(config, "kubelet-arg", "node-status-update-frequency", 10)
    while not stop.wait(interval):
        try:
            request(url, "POST", f"/v1-standin/heartbeat/{name}", {"password": info["password"]}, auth)
        except (ApiError, OSError) as e:
            log("error", f"Error updating node status, will retry: {e}")
    return 0


def kubeconfig_target(flags: dict) -> tuple[str, str]:
    path = flags.get("kubeconfig") or os.environ.get("KUBECONFIG") or KUBECONFIG
    text = read_file(path)
    if text is None:
        print(f"error: open {path}: no such file or directory", file=sys.stderr)
        sys.exit(1)
    doc = yaml.safe_load(text)
    ctx_name = doc.get("current-context")
    ctx = next(c["context"] for c in doc["contexts"] if c["name"] == ctx_name)
    cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == ctx["cluster"])
    user = next(u["user"] for u in doc["users"] if u["name"] == ctx["user"])
    return cluster["server"], "Bearer " + str(user.get("token", ""))


def cmd_kubectl(argv: list[str]) -> int:
    switches = ("--ignore-daemonsets", "--delete-emptydir-data", "--delete-local-data", "--force",
                "--disable-eviction", "-A", "--all-namespaces")
    present = {a for a in argv if a in switches}
    argv = [a for a in argv if a not in switches]
    for short, long in (("-n", "--namespace"), ("-f", "--filename")):
        if short in argv[:-1]:
            i = argv.index(short)
            argv[i:i + 2] = [f"{long}={argv[i + 1]}"]
    flags, args = parse_flags(argv)
    namespace = flags.get("namespace")
    output = flags.get("output") or ""
    if "-o" in args:
        i = args.index("-o")
        output = args[i + 1] if i + 1 < len(args) else ""
        del args[i:i + 2]
    output = next((a[2:].lstrip("=") for a in args if a.startswith("-o") and len(a) > 2), output)
    args = [a for a in args if not a.startswith("-")]
    server, auth = kubeconfig_target(flags)
    url = http_url(server)

    def api(method: str, path: str, body: dict | None = None):
        try:
            return request(url, method, path, body, auth)
        except ApiError as e:
            if e.status == 401:
                print("error: You must be logged in to the server (Unauthorized)", file=sys.stderr)
            else:
                print(f"Error from server ({e.reason}): {e.message}", file=sys.stderr)
            sys.exit(1)
        except OSError:
            hostport = server.split("://", 1)[-1]
            print(f"The connection to the server {hostport} was refused - did you specify the right host "
                  "or port?", file=sys.stderr)
            sys.exit(1)

    verb = args[0] if args else ""
    if verb == "get" and len(args) >= 2 and args[1] in ("nodes", "node", "no"):
        state = api("GET", "/v1-standin/state")
        grace = float(state.get("cluster", {}).get("grace") or 40)
        now = time.time()
        nodes = state.get("nodes", {})
        names = args[2:] or sorted(nodes)
        missing = [n for n in names if n not in nodes]
        if missing:
            print(f'Error from server (NotFound): nodes "{missing[0]}" not found', file=sys.stderr)
            return 1
        objs = [node_object(nodes[n], now, grace) for n in names]
        single = len(args) > 2 and len(names) == 1
        if output in ("json", "yaml"):
            doc = objs[0] if single else {"apiVersion": "v1", "kind": "List", "items": objs,
                                          "metadata": {"resourceVersion": ""}}
            print(json.dumps(doc, indent=4) if output == "json" else yaml.safe_dump(doc, sort_keys=False),
                  end="\n" if output == "json" else "")
        elif output == "name":
            print("".join(f"node/{o['metadata']['name']}\n" for o in objs), end="")
        else:
            print(node_table(objs, now, wide=output == "wide"), end="")
        return 0
    if verb in ("cordon", "uncordon") and len(args) == 2:
        api("POST", f"/v1-standin/nodes/{args[1]}/{verb}")
        print(f"node/{args[1]} {verb}ed")
        return 0
    if verb == "drain" and len(args) == 2:
        return kubectl_drain(api, url, auth, args[1], flags, present)
    if verb == "get" and len(args) >= 2 and args[1] in ("pods", "pod", "po", "pdb", "poddisruptionbudgets",
                                                         "poddisruptionbudget"):
        state = api("GET", "/v1-standin/state")
        grace, now = float(state.get("cluster", {}).get("grace") or 40), time.time()
        ns = None if "-A" in present or "--all-namespaces" in present else (namespace or "default")
        if args[1] in ("pods", "pod", "po"):
            on_node = (flags.get("field-selector") or "").removeprefix("spec.nodeName=") or None
            objs = [pod_object(p, state.get("nodes") or {}, now, grace)
                    for _, p in sorted((state.get("pods") or {}).items())
                    if (ns is None or p["namespace"] == ns) and (on_node is None or p["node"] == on_node)]
        else:
            objs = [pdb_object(state, b, now, grace) for _, b in sorted((state.get("pdbs") or {}).items())
                    if ns is None or b["namespace"] == ns]
        if output == "json":
            print(json.dumps({"apiVersion": "v1", "kind": "List", "items": objs,
                              "metadata": {"resourceVersion": ""}}, indent=4))
        else:  # a short table: NAMESPACE/NAME, then STATUS and NODE, or ALLOWED DISRUPTIONS
            for o in objs:
                m, st = o["metadata"], o["status"]
                cols = [st["phase"], o["spec"].get("nodeName", "<none>")] if o["kind"] == "Pod" \
                    else [str(st["disruptionsAllowed"])]
                print(" ".join([f"{m['namespace']}/{m['name']}", *cols]))
        return 0
    if verb in ("create", "apply") and flags.get("filename"):
        path = flags["filename"]
        text = sys.stdin.read() if path == "-" else read_file(path)
        if text is None:
            print(f'error: the path "{path}" does not exist', file=sys.stderr)
            return 1
        docs = []
        for doc in yaml.safe_load_all(text):
            if isinstance(doc, dict):
                docs += doc.get("items", []) if doc.get("kind") == "List" else [doc]
        if namespace:
            for doc in docs:
                doc.setdefault("metadata", {}).setdefault("namespace", namespace)
        for line in api("POST", "/v1-standin/objects", {"items": docs}):
            print(line)
        return 0
    if verb == "delete" and len(args) == 3 and args[1] in ("pdb", "poddisruptionbudget", "poddisruptionbudgets"):
        print(api("DELETE", f"/v1-standin/pdbs/{namespace or 'default'}/{args[2]}"))
        return 0
    if verb == "delete" and len(args) == 3 and args[1] in ("node", "nodes", "no"):
        api("DELETE", f"/v1-standin/nodes/{args[2]}")
        print(f'node "{args[2]}" deleted')
        return 0
    print(f"error: the k3s stand-in's kubectl does not support: {' '.join(argv)}", file=sys.stderr)
    return 1


def kubectl_drain(api, url: str, auth: str, node: str, flags: dict, present: set[str]) -> int:
    """``kubectl drain``: cordon, then evict every pod through the Eviction API (so PDBs are
    respected), retrying refused evictions every 5 s until ``--timeout`` (0: forever)."""
    timeout = parse_duration(flags["timeout"]) if flags.get("timeout") not in (None, "0") else 0
    api("POST", f"/v1-standin/nodes/{node}/cordon")
    print(f"node/{node} cordoned")
    state = api("GET", "/v1-standin/state")
    pods = [p for _, p in sorted((state.get("pods") or {}).items()) if p["node"] == node]
    daemons = [p for p in pods if (p.get("owner") or {}).get("kind") == "DaemonSet"]
    bare = [p for p in pods if not p.get("owner")]
    problems = []
    if daemons and "--ignore-daemonsets" not in present:
        problems.append("cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): "
                        + ", ".join(f"{p['namespace']}/{p['name']}" for p in daemons))
    if bare and "--force" not in present:
        problems.append("cannot delete Pods that declare no controller (use --force to override): "
                        + ", ".join(f"{p['namespace']}/{p['name']}" for p in bare))
    if problems:
        text = ", ".join(problems)
        print(f'error: unable to drain node "{node}" due to error: {text}, continuing command...\n'
              f"There are pending nodes to be drained:\n {node}\n{text}", file=sys.stderr)
        return 1
    if daemons:
        print("Warning: ignoring DaemonSet-managed Pods: "
              + ", ".join(f"{p['namespace']}/{p['name']}" for p in daemons), file=sys.stderr)
    pending = [p for p in pods if p not in daemons]
    for p in pending:
        print(f"evicting pod {p['namespace']}/{p['name']}")
    deadline = time.monotonic() + timeout if timeout else None
    while pending:
        waiting = []
        for p in pending:
            try:
                request(url, "POST", f"/v1-standin/pods/{p['namespace']}/{p['name']}/eviction", {}, auth)
                print(f"pod/{p['name']} evicted")
            except ApiError as e:
                if e.status == 404:
                    continue
                if e.status != 429:
                    print(f"error: {e.message}", file=sys.stderr)
                    return 1
                print(f'error when evicting pods/"{p["name"]}" -n "{p["namespace"]}" (will retry after 5s): '
                      f"{e.message}", file=sys.stderr)
                waiting.append(p)
        pending = waiting
        if not pending:
            break
        if deadline is not None and time.monotonic() + 5 > deadline:
            time.sleep(max(deadline - time.monotonic(), 0))
            errs = [f'error when evicting pods/"{p["name"]}" -n "{p["namespace"]}": global timeout reached: '
                    f"{flags['timeout']}" for p in pending]
            text = errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]"
            print(f'There are pending pods in node "{node}" when an error occurred: {text}\n'
                  f'error: unable to drain node "{node}" due to error: {text}, continuing command...\n'
                  f"There are pending nodes to be drained:\n {node}\n{text}", file=sys.stderr)
            return 1
        time.sleep(5)
    print(f"node/{node} drained")
    return 0


def cmd_etcd_snapshot(argv: list[str]) -> int:
    flags, args = parse_flags(argv)
    config = load_config(flags)
    data_dir = config.get("data-dir") or DATA_DIR
    store = Store(data_dir)
    snap_dir = config.get("etcd-snapshot-dir") or os.path.join(store.dir, "snapshots")
    verb = args[0] if args else "save"
    if verb == "save":
        state = store.read()
        if state.get("cluster", {}).get("datastore") != "etcd":
            fatal("etcd datastore disabled")
        node = config.get("node-name") or socket.gethostname()
        name = f"{config.get('name') or 'on-demand'}-{node}-{int(time.time())}"
        path = os.path.join(snap_dir, name)
        os.makedirs(snap_dir, mode=0o700, exist_ok=True)
        log("info", f"Saving etcd snapshot to {path}")
        log("info", f"Saving etcd snapshot to {path}")
        write_file(path, json.dumps(state, sort_keys=True), 0o600)
        log("info", f"Snapshot {name} saved.")
        return 0
    if verb in ("ls", "list"):
        rows = [["Name", "Location", "Size", "Created"]]
        for name in sorted(os.listdir(snap_dir)) if os.path.isdir(snap_dir) else []:
            st = os.stat(os.path.join(snap_dir, name))
            rows.append([name, "file://" + os.path.join(snap_dir, name), str(st.st_size), rfc3339(st.st_mtime)])
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        print("".join(" ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n"
                      for r in rows), end="")
        return 0
    if verb in ("delete", "prune") and len(args) >= 2:
        for name in args[1:]:
            os.remove(os.path.join(snap_dir, os.path.basename(name)))
            log("info", f"Snapshot {name} deleted.")
        return 0
    print(f"error: unsupported etcd-snapshot command {verb!r}", file=sys.stderr)
    return 1


def cluster_reset(config: dict) -> int:
    """``k3s server --cluster-reset``: this server becomes the only etcd member (restoring a snapshot)."""
    data_dir = config.get("data-dir") or DATA_DIR
    store = Store(data_dir)
    restore = config.get("cluster-reset-restore-path")
    text = read_file(restore) if restore else read_file(store.path)
    if not text:
        fatal(f"no etcd data to reset{' in ' + restore if restore else ''}")
    state = json.loads(text)
    token = str(config.get("token") or "")
    if token and sha256(split_token(token)[1]) != state["cluster"]["token_hash"]:
        fatal("bootstrap data already found and encrypted with different token")
    name = config.get("node-name") or socket.gethostname()
    state["cluster"]["datastore"] = "etcd"
    state["etcd_members"] = {name: {"address": config.get("node-ip") or default_ip(), "joined": time.time()}}
    store.write(state)
    write_file(os.path.join(data_dir, "server", "tls", "server-ca.crt"), state["cluster"]["ca"], 0o644)
    store.set_role({"leader": True})
    log("info", "Managed etcd cluster membership has been reset, restart without --cluster-reset flag now. "
        "Backup and delete ${datadir}/server/db on each peer etcd server and rejoin the nodes")
    return 0


def main(argv: list[str]) -> int:
    machine = platform.machine()
    if MACHINE_ARCH.get(machine, machine) != ARCH:
        print(f"{argv[0]}: cannot execute binary file: Exec format error "
              f"(stand-in built for {ARCH}, this machine is {machine})", file=sys.stderr)
        return 126
    prog = os.path.basename(argv[0])
    args = argv[1:]
    if prog == "kubectl":
        return cmd_kubectl(args)
    if not args or args[0] in ("--version", "-v", "version"):
        print(f"k3s version {VERSION} (standin)\ngo version go1.22.9 (stand-in: python {platform.python_version()})")
        return 0
    commands = {"server": cmd_server, "agent": cmd_agent, "kubectl": cmd_kubectl,
                "etcd-snapshot": cmd_etcd_snapshot}
    if args[0] not in commands:
        print(f"k3s stand-in: unknown command {args[0]!r} (supported: {', '.join(commands)})", file=sys.stderr)
        return 1
    return commands[args[0]](args[1:])


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main(sys.argv))
