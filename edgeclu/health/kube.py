"""Kubernetes node status from ``k3s kubectl get nodes -o json`` (pure parsing + rules)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from edgeclu.health.thresholds import Finding

# run on a server (as root: k3s.yaml is root-only); 127 = no k3s on that node
COMMAND = "command -v k3s >/dev/null 2>&1 || exit 127; k3s kubectl get nodes -o json"
NO_K3S = 127


@dataclass(frozen=True)
class KubeNode:
    name: str
    ready: bool | None  # None: condition Unknown (kubelet stopped reporting) or missing
    cordoned: bool
    version: str | None
    roles: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    reason: str | None = field(default=None, compare=False)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["roles"], d["addresses"] = list(self.roles), list(self.addresses)
        return d

    @property
    def summary(self) -> str:
        state = {True: "Ready", False: "NotReady", None: "Unknown"}[self.ready]
        return state + (",cordoned" if self.cordoned else "")


def parse_nodes(text: str) -> dict[str, KubeNode]:
    """``kubectl get nodes -o json`` output -> {node name: KubeNode}. Raises ValueError if not a NodeList."""
    doc = json.loads(text)
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise ValueError("not a kubectl list (no items)")
    nodes = {}
    for item in doc["items"]:
        meta, spec, st = item.get("metadata") or {}, item.get("spec") or {}, item.get("status") or {}
        name = meta.get("name")
        if not name:
            continue
        ready, reason = None, None
        for cond in st.get("conditions") or []:
            if cond.get("type") == "Ready":
                ready = {"True": True, "False": False}.get(cond.get("status"))
                reason = cond.get("reason")
        roles = sorted(k.split("/", 1)[1] for k in (meta.get("labels") or {})
                       if k.startswith("node-role.kubernetes.io/") and "/" in k)
        taints = spec.get("taints") or []
        cordoned = bool(spec.get("unschedulable")) or any(
            t.get("key") == "node.kubernetes.io/unschedulable" for t in taints)
        nodes[name] = KubeNode(
            name=name, ready=ready, cordoned=cordoned,
            version=(st.get("nodeInfo") or {}).get("kubeletVersion"), roles=tuple(roles),
            addresses=tuple(a.get("address") for a in st.get("addresses") or [] if a.get("type") == "InternalIP"),
            reason=reason)
    return nodes


def match(nodes: dict[str, KubeNode], name: str, address: str) -> KubeNode | None:
    """The Kubernetes node for an inventory host: same name, else same InternalIP."""
    if name in nodes:
        return nodes[name]
    return next((n for n in nodes.values() if address in n.addresses), None)


def findings(node: KubeNode | None, expected: bool) -> list[Finding]:
    """NotReady is critical; Unknown, cordoned or missing (while k3s runs there) are warnings."""
    if node is None:
        return [Finding("warning", "kubernetes", "not a node of the cluster")] if expected else []
    out = []
    if node.ready is False:
        out.append(Finding("critical", "kubernetes", f"NotReady ({node.reason})" if node.reason else "NotReady"))
    elif node.ready is None:
        out.append(Finding("warning", "kubernetes", "Ready condition unknown"))
    if node.cordoned:
        out.append(Finding("warning", "kubernetes", "cordoned (unschedulable)"))
    return out
