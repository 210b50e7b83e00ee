"""Kubernetes node status for health: the rules over module_utils/kubenodes.py (which parses the list)."""

from __future__ import annotations

from ansible_collections.edgeclu.cluster.plugins.module_utils.kubenodes import KubeNode, parse_nodes  # noqa: F401 - parse_nodes: health reads the list there
from edgeclu.health.thresholds import Finding

# run on a server (as root: k3s.yaml is root-only); 127 = no k3s on that node
COMMAND = "command -v k3s >/dev/null 2>&1 || exit 127; k3s kubectl get nodes -o json"
NO_K3S = 127


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
