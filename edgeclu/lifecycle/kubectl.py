"""``k3s kubectl`` on a server, over the transport: nodes, cordon, drain, delete.

Command strings and the reading of kubectl's output are pure functions; :class:`ClusterApi`
runs them (as root: k3s.yaml is root-only) on one server.
"""

from __future__ import annotations

import json
import re
import shlex
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from ansible_collections.edgeclu.cluster.plugins.module_utils.kubenodes import KubeNode, parse_nodes
from edgeclu.errors import EdgecluError, RemoteError
from edgeclu.transport import Remote

KUBECTL = "k3s kubectl"
# on every node edgeclu cordons (drain), until it uncordons it: a re-run after a stop
# uncordons exactly these, never a node the user cordoned
CORDON_MARK = "edgeclu/cordoned-by"
_EVICT_RE = re.compile(r'error when evicting pods/"([^"]+)" -n "([^"]+)"')


# -- commands (pure) -------------------------------------------------------------------
def drain_command(node: str, timeout: float) -> str:
    """Cordon and evict through the Eviction API (PodDisruptionBudgets are respected).

    DaemonSet pods stay (they go with the node); pods without a controller are not
    deleted, so they show up as "would not move" instead of being lost silently.
    """
    return (f"{KUBECTL} drain {shlex.quote(node)} --ignore-daemonsets --delete-emptydir-data "
            f"--timeout={int(timeout)}s")


def node_command(verb: str, node: str) -> str:
    """``cordon`` / ``uncordon`` / ``delete node``."""
    if verb not in ("cordon", "uncordon", "delete"):
        raise ValueError(f"unsupported verb {verb!r}")
    return f"{KUBECTL} {verb}{' node' if verb == 'delete' else ''} {shlex.quote(node)}"


def mark_command(node: str, action: str | None) -> str:
    """Put (``action``: who cordons) or take off (None) the cordon mark, with ``kubectl annotate``
    (``KEY=VALUE --overwrite`` sets, ``KEY-`` removes)."""
    if action is None:
        return f"{KUBECTL} annotate node {shlex.quote(node)} {CORDON_MARK}-"
    return f"{KUBECTL} annotate node {shlex.quote(node)} --overwrite {shlex.quote(f'{CORDON_MARK}={action}')}"


def marked_cordons(nodes: Mapping[str, KubeNode]) -> dict[str, str]:
    """``{node: action}`` for the nodes carrying the cordon mark (pure)."""
    return {name: n.annotations[CORDON_MARK] for name, n in nodes.items() if CORDON_MARK in n.annotations}


def pods_on_command(node: str) -> str:
    return f"{KUBECTL} get pods -A --field-selector spec.nodeName={shlex.quote(node)} -o json"


PDBS_COMMAND = f"{KUBECTL} get pdb -A -o json"
NODES_COMMAND = f"{KUBECTL} get nodes -o json"


# -- reading output (pure) -------------------------------------------------------------
def eviction_errors(output: str) -> list[str]:
    """``namespace/name`` of each pod kubectl drain could not evict, in order, once each."""
    seen: list[str] = []
    for name, ns in _EVICT_RE.findall(output):
        if f"{ns}/{name}" not in seen:
            seen.append(f"{ns}/{name}")
    return seen


def _matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def explain_stuck(pods: Mapping, pdbs: Mapping, refused: Iterable[str] = ()) -> list[str]:
    """One line per pod still on a drained node (DaemonSet pods excluded: they go with the node),
    saying why it would not move. ``pods``/``pdbs``: ``kubectl get ... -o json`` documents."""
    refused = set(refused)
    lines = []
    for pod in pods.get("items", []):
        meta = pod.get("metadata") or {}
        owners = meta.get("ownerReferences") or []
        if any(o.get("kind") == "DaemonSet" for o in owners):
            continue
        key = f"{meta.get('namespace', 'default')}/{meta.get('name')}"
        budgets = [b for b in pdbs.get("items", [])
                   if (b.get("metadata") or {}).get("namespace") == meta.get("namespace", "default")
                   and _matches(((b.get("spec") or {}).get("selector") or {}).get("matchLabels") or {},
                                meta.get("labels") or {})]
        blocking = [b for b in budgets if (b.get("status") or {}).get("disruptionsAllowed", 1) < 1]
        if blocking:
            b = blocking[0]
            st, spec = b.get("status") or {}, b.get("spec") or {}
            need = (f"minAvailable {spec['minAvailable']}" if "minAvailable" in spec
                    else f"maxUnavailable {spec.get('maxUnavailable')}")
            why = (f"PodDisruptionBudget {b['metadata']['namespace']}/{b['metadata']['name']} allows 0 "
                   f"disruptions ({need}; {st.get('currentHealthy', '?')} healthy of "
                   f"{st.get('expectedPods', '?')})")
        elif not owners:
            why = "not managed by a controller: it would be deleted, not moved (kubectl drain refuses)"
        elif key in refused:
            why = "its eviction was refused until the timeout"
        else:
            why = "still on the node when the drain timed out"
        lines.append(f"{key}: {why}")
    return lines


# -- running them ------------------------------------------------------------------------
@dataclass
class Drain:
    node: str
    ok: bool
    stuck: list[str] = field(default_factory=list)  # "ns/name: why" for pods that would not move
    output: str = ""


class ClusterApi:
    """kubectl on one server, as root."""

    def __init__(self, remote: Remote):
        self.remote = remote

    @property
    def server(self) -> str:
        return self.remote.name

    def run(self, command: str, *, check: bool = True, timeout: float | None = 60):
        return self.remote.run(command, sudo=True, check=check, timeout=timeout)

    def nodes(self) -> dict[str, KubeNode]:
        return parse_nodes(self.run(NODES_COMMAND).stdout)

    def node(self, verb: str, name: str) -> None:
        self.run(node_command(verb, name))

    def mark(self, name: str, action: str) -> None:
        """Mark ``name`` as cordoned by edgeclu's ``action``; call before draining it."""
        self.run(mark_command(name, action))

    def uncordon_marked(self, name: str) -> None:
        """Uncordon, then take the mark off (a stop in between: the next run uncordons again)."""
        self.node("uncordon", name)
        self.run(mark_command(name, None))

    def marked(self) -> dict[str, str]:
        """``{node: action}``: nodes an edgeclu run cordoned and has not uncordoned yet."""
        return marked_cordons(self.nodes())

    def drain(self, name: str, timeout: float) -> Drain:
        r = self.run(drain_command(name, timeout), check=False, timeout=timeout + 60)
        output = r.stdout + r.stderr
        if r.exit_code == 0:
            return Drain(name, True, output=output)
        try:
            pods = json.loads(self.run(pods_on_command(name)).stdout)
            pdbs = json.loads(self.run(PDBS_COMMAND).stdout)
            stuck = explain_stuck(pods, pdbs, eviction_errors(output))
        except (RemoteError, ValueError) as e:
            stuck = [f"(could not list the pods left on {name}: {e})"]
        if not stuck:  # kubectl failed for another reason: show its own words
            tail = [line for line in output.splitlines() if line.startswith("error")][-1:] or ["drain failed"]
            stuck = [tail[0]]
        return Drain(name, False, stuck, output)

    def wait_nodes(self, names: Iterable[str], timeout: float, *,
                   want: Callable[[KubeNode], bool] = lambda n: n.ready is True,
                   interval: float = 2.0) -> dict[str, str]:
        """Poll until every node in ``names`` passes ``want``; returns {node: why not} for the rest."""
        names = list(names)
        deadline = time.monotonic() + timeout
        while True:
            try:
                nodes = self.nodes()
                left = {n: (nodes[n].summary + (f", {nodes[n].version}" if nodes[n].version else "")
                            if n in nodes else "not registered")
                        for n in names if n not in nodes or not want(nodes[n])}
            except (RemoteError, ValueError) as e:
                left = dict.fromkeys(names, f"kubectl on {self.server} failed: {e}")
            if not left or time.monotonic() >= deadline:
                return left
            time.sleep(interval)

    def require_ready(self, names: Iterable[str], purpose: str) -> None:
        """Refuse, naming each one and why, unless every node in ``names`` is Ready now (before a rolling change
        that restarts them: ``purpose`` says which)."""
        down = self.wait_nodes(names, 0)
        if down:
            why = "; ".join(f"{n}: {w}" for n, w in down.items())
            raise EdgecluError(f"every node must be Ready {purpose} ({why}); bring it back, or take it out first "
                               "(`edgeclu remove --force NODE`). Nothing was changed")

    def wait_gone(self, name: str, timeout: float, interval: float = 1.0) -> bool:
        """Wait until ``name`` is no longer listed (k3s finalizers may hold a deleted server briefly)."""
        deadline = time.monotonic() + timeout
        while name in self.nodes():
            if time.monotonic() >= deadline:
                return False
            time.sleep(interval)
        return True

    def close(self) -> None:
        self.remote.close()


def connect_api(cluster, *, exclude: Iterable[str] = ()) -> ClusterApi:
    """A :class:`ClusterApi` on the first server of ``cluster`` (a :class:`~edgeclu.cluster.Cluster`;
    inventory order, skipping ``exclude``) whose kubectl answers."""
    exclude = set(exclude)
    errors = []
    servers = [h for h in cluster.inv.servers if h.name not in exclude]
    for host in servers:
        api = ClusterApi(cluster.remote(host))
        try:
            api.nodes()
            return api
        except (RemoteError, ValueError) as e:
            errors.append(str(e))
            api.close()
    if not servers:
        raise EdgecluError("no other server to reach the cluster's API through")
    raise EdgecluError("no server answered `k3s kubectl get nodes` (tried "
                       + ", ".join(h.name for h in servers) + "): " + "; ".join(errors))
