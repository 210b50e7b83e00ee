"""The cluster's objects (pure): nodes, pods, PodDisruptionBudgets, and their API shapes.

No container runs: a "pod" is a record bound to a node (the stand-in has no scheduler, so
spec.nodeName is required). A pod owned by a ReplicaSet/StatefulSet/... is recreated on
another schedulable Ready node when it is evicted (the controller's job in Kubernetes);
a bare pod is just deleted; DaemonSet pods are never moved.
"""

from __future__ import annotations

import time
import uuid

from .util import rfc3339, sha256

RECREATED_BY = ("ReplicaSet", "StatefulSet", "ReplicationController", "Job")


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str):
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


def new_uid() -> str:
    return str(uuid.uuid4())


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
        **(old.get("labels") or {}),
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
        "unschedulable": old.get("unschedulable", False), "uid": old.get("uid") or new_uid(),
        "annotations": {**(old.get("annotations") or {}), **(info.get("annotations") or {})},
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
    """Delete the Node object (a server's etcd member is removed by the server that handled the delete,
    as k3s's member controller does). Its pods go too (pod garbage collection); owned ones are recreated
    on other nodes."""
    if name not in (state.get("nodes") or {}):
        raise ApiError(404, "NotFound", f'nodes "{name}" not found')
    del state["nodes"][name]
    state.get("node_passwords", {}).pop(name, None)
    for key in [k for k, p in (state.get("pods") or {}).items() if p["node"] == name]:
        remove_pod(state, key, time.time() if now is None else now, grace)


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
                     "created": now, "uid": new_uid()}
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
        pdbs[key] = {"namespace": ns, "name": name, "created": now, "uid": new_uid(),
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
        **pod, "name": name, "node": targets[0][1] if targets else None, "created": now, "uid": new_uid()}


def pod_object(pod: dict, nodes: dict, now: float, grace: float) -> dict:
    node = nodes.get(pod["node"]) if pod["node"] else None
    phase = "Pending" if not pod["node"] else ("Running" if node and node_ready(node, now, grace) else "Unknown")
    meta = {"name": pod["name"], "namespace": pod["namespace"], "labels": pod["labels"],
            "creationTimestamp": rfc3339(pod["created"]), "uid": pod.get("uid", ""),
            "resourceVersion": "1"}
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
                         "creationTimestamp": rfc3339(pdb["created"]), "uid": pdb.get("uid", ""),
                         "resourceVersion": "1"},
            "spec": spec, "status": pdb_status(state, pdb, now, grace)}


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
                     "annotations": {"k3s.io/node-args": "[]", "k3s.io/internal-ip": node["address"],
                                     **(node.get("annotations") or {})},
                     "creationTimestamp": rfc3339(node["created"]), "uid": node.get("uid", ""),
                     "resourceVersion": str(int(node["heartbeat"]))},
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


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch; a strategic-merge patch's ``$`` directives are dropped (the stand-in's
    objects have no lists that kubectl patches by key)."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if k.startswith("$"):
            continue
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


SYSTEM_TAINTS = ("node.kubernetes.io/unschedulable", "node.kubernetes.io/unreachable")


def patch_node(state: dict, name: str, patch: dict, now: float, grace: float) -> dict:
    """PATCH a Node (merge or strategic merge): labels, annotations, spec.unschedulable and
    spec.taints are kept; the rest of the object is the kubelet's and the stand-in's to say."""
    node = (state.get("nodes") or {}).get(name)
    if node is None:
        raise ApiError(404, "NotFound", f'nodes "{name}" not found')
    if not isinstance(patch, dict):
        raise ApiError(400, "BadRequest", "the patch is not a JSON object")
    obj = merge_patch(node_object(node, now, grace), patch)
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    if meta.get("name") != name:
        raise ApiError(422, "Invalid", f'Node "{name}" is invalid: metadata.name: Invalid value: field is immutable')
    node["labels"] = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    shown = {"k3s.io/node-args", "k3s.io/internal-ip"}
    node["annotations"] = {str(k): str(v) for k, v in (meta.get("annotations") or {}).items() if k not in shown}
    node["unschedulable"] = bool(spec.get("unschedulable"))
    node["taints"] = [t for t in spec.get("taints") or [] if t.get("key") not in SYSTEM_TAINTS]
    return node
