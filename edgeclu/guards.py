"""What a run refuses before it changes anything (pure): a k3s downgrade, an `up` over an
upgrade in progress, and which unreachable nodes ``up --skip-unreachable`` may leave out."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from ansible_collections.edgeclu.cluster.plugins.module_utils.k3s import is_newer, version_key
from edgeclu.lifecycle.plan import quorum


def _known(version: str | None) -> bool:
    try:
        version_key(version or "")
        return True
    except ValueError:
        return False


def newer_nodes(installed: Mapping[str, str | None], wanted: str) -> dict[str, str]:
    """``{node: installed version}`` for each node whose k3s is newer than ``wanted``."""
    return {n: v for n, v in installed.items() if v and is_newer(v, wanted)}


def downgrade_refusal(installed: Mapping[str, str | None], wanted: str, pending: Mapping | None = None
                      ) -> str | None:
    """Why a run that installs ``wanted`` must not start (some node runs a newer k3s), or None.

    k3s (its etcd above all) cannot be downgraded; a node ahead of the inventory is what an
    upgrade that stopped part-way leaves, so the way out is to finish that upgrade.
    """
    newer = newer_nodes(installed, wanted)
    if not newer:
        return None
    target = (pending or {}).get("target")
    if not _known(target):
        target = max(newer.values(), key=version_key)
    nodes = ", ".join(f"{n} runs k3s {v}" for n, v in newer.items())
    return (f"{nodes}, newer than the inventory's k3s_version {wanted}; k3s cannot be downgraded, so nothing "
            f"was changed. To finish the upgrade: `edgeclu upgrade --k3s-version {target}`")


def pending_upgrade_refusal(record: Mapping | None, wanted: str) -> str | None:
    """Why `up`/`add`/`restore` with ``wanted`` must wait: an upgrade to a newer k3s was started
    (``record``, written by `edgeclu upgrade` next to the cluster lock) and has not finished."""
    target = (record or {}).get("target")
    if not is_newer(target, wanted):
        return None
    who = record.get("who") or "an earlier run"
    return (f"an upgrade to k3s {target} was started by {who} and has not finished (the inventory still says "
            f"{wanted}); nothing was changed. To finish it: `edgeclu upgrade --k3s-version {target}`")


def skip_plan(servers: Sequence[str], agents: Sequence[str], unreachable: Collection[str]
              ) -> tuple[list[str], str | None]:
    """``(nodes to converge, None)``, or ``([], why not)`` for ``up --skip-unreachable``.

    The first server is where the cluster starts (and the lock lives); the other servers
    must keep etcd's quorum (more than half of all servers) among the reachable ones.
    """
    down = [n for n in [*servers, *agents] if n in unreachable]
    if servers and servers[0] in unreachable:
        return [], (f"the first server {servers[0]} is unreachable; it starts the cluster and holds its lock, "
                    "so nothing can be converged without it")
    up_servers = [s for s in servers if s not in unreachable]
    if len(up_servers) < quorum(len(servers)):
        return [], (f"{len(up_servers)} of {len(servers)} servers are reachable, and etcd needs {quorum(len(servers))} "
                    f"for quorum (unreachable: {', '.join(s for s in servers if s in unreachable)})")
    return [n for n in [*servers, *agents] if n not in down], None
