"""The one reader of ``kubectl get nodes -o json`` (pure): a NodeList to :class:`KubeNode` per node.

What is read, as kubectl prints a ``v1.NodeList`` (a capture from k3s: tests/unit/data/kubectl_get_nodes.json):
``metadata.name``, ``metadata.labels`` (``node-role.kubernetes.io/<role>``), ``metadata.annotations``,
``spec.unschedulable`` and the ``node.kubernetes.io/unschedulable`` taint (cordoned), the ``Ready``
condition of ``status.conditions`` (``status`` True/False/Unknown, ``reason``, ``message``),
``status.nodeInfo.kubeletVersion`` and the ``InternalIP`` of ``status.addresses``. Health, the
lifecycle commands, the converged stamp and the k3s role's wait (through module_utils/k3s.py) all read it here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

ROLE_LABEL = "node-role.kubernetes.io/"


@dataclass(frozen=True)
class KubeNode:
    name: str
    ready: bool | None  # None: condition Unknown (kubelet stopped reporting) or missing
    cordoned: bool
    version: str | None
    roles: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    reason: str | None = field(default=None, compare=False)
    message: str | None = field(default=None, compare=False)  # the Ready condition's message
    ready_status: str | None = field(default=None, compare=False)  # its status as printed; None: no condition
    annotations: Mapping[str, str] = field(default_factory=dict, compare=False)

    def as_dict(self) -> dict:
        return {"name": self.name, "ready": self.ready, "cordoned": self.cordoned, "version": self.version,
                "roles": list(self.roles), "addresses": list(self.addresses), "reason": self.reason}

    @property
    def summary(self) -> str:
        state = {True: "Ready", False: "NotReady", None: "Unknown"}[self.ready]
        return state + (",cordoned" if self.cordoned else "")

    @property
    def not_ready(self) -> str | None:
        """Why this node is not Ready, or None when it is."""
        if self.ready_status is None:
            return "no Ready condition yet"
        if self.ready_status != "True":
            return f"Ready={self.ready_status}: {self.message or self.reason or ''}"
        return None


def _str(value) -> str | None:
    return value if isinstance(value, str) else None


def _node(item: Mapping) -> KubeNode | None:
    meta, spec, st = (item.get(k) if isinstance(item.get(k), dict) else {} for k in ("metadata", "spec", "status"))
    name = _str(meta.get("name"))
    if not name:
        return None
    ready = [c for c in st.get("conditions") or [] if isinstance(c, dict) and c.get("type") == "Ready"]
    cond = ready[-1] if ready else {}
    status = _str(cond.get("status"))
    labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
    annotations = meta.get("annotations") if isinstance(meta.get("annotations"), dict) else {}
    taints = [t for t in spec.get("taints") or [] if isinstance(t, dict)]
    return KubeNode(
        name=name, ready={"True": True, "False": False}.get(status),
        cordoned=bool(spec.get("unschedulable")) or any(t.get("key") == "node.kubernetes.io/unschedulable"
                                                        for t in taints),
        version=_str((st.get("nodeInfo") or {}).get("kubeletVersion")),
        roles=tuple(sorted(k.removeprefix(ROLE_LABEL) for k in labels if k.startswith(ROLE_LABEL) and
                           k != ROLE_LABEL)),
        addresses=tuple(a.get("address") for a in st.get("addresses") or []
                        if isinstance(a, dict) and a.get("type") == "InternalIP"),
        reason=_str(cond.get("reason")), message=_str(cond.get("message")), ready_status=status,
        annotations={k: v for k, v in annotations.items() if isinstance(v, str)})


def from_doc(doc) -> dict[str, KubeNode]:
    """A parsed NodeList -> ``{node name: KubeNode}``. Raises ValueError if it is not a list."""
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise ValueError("not a kubectl list (no items)")
    return {n.name: n for n in map(_node, (i for i in doc["items"] if isinstance(i, dict))) if n is not None}


def parse_nodes(text: str) -> dict[str, KubeNode]:
    """``kubectl get nodes -o json`` output -> ``{node name: KubeNode}``. Raises ValueError if not a NodeList."""
    return from_doc(json.loads(text))


def not_ready(nodes: Mapping[str, KubeNode], names: Iterable[str]) -> dict[str, str]:
    """``{name: reason}`` for each of ``names`` that is not Ready (or not listed at all)."""
    problems = {}
    for name in names:
        why = nodes[name].not_ready if name in nodes else "not registered with the cluster"
        if why:
            problems[name] = why
    return problems
