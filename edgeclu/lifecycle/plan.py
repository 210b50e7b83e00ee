"""Pure planning: upgrade order and batches, and whether removing a server keeps etcd quorum."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    """Nodes upgraded together: one server, or a batch of agents."""

    role: str  # server | agent
    nodes: tuple[str, ...]


def batch_size(count: int, percent: int) -> int:
    """``percent`` % of ``count`` agents, rounded up: never 0 while there is an agent."""
    if count <= 0:
        return 0
    return max(1, -(-count * percent // 100))


def rolling_steps(servers: Sequence[str], agents: Sequence[str], percent: int,
                  done: Collection[str] = ()) -> list[Step]:
    """Servers one at a time (inventory order), then agents in batches of ``percent`` % of all
    agents (a batch keeps its size when some are done). Nodes in ``done`` are left out, so a
    re-run resumes."""
    steps = [Step("server", (s,)) for s in servers if s not in done]
    todo = [a for a in agents if a not in done]
    size = max(batch_size(len(agents), percent), 1)
    steps += [Step("agent", tuple(todo[i:i + size])) for i in range(0, len(todo), size)]
    return steps


def upgrade_steps(servers: Sequence[str], agents: Sequence[str], percent: int,
                  versions: Mapping[str, str | None], target: str) -> list[Step]:
    """:func:`rolling_steps`, leaving out the nodes already running ``target``."""
    return rolling_steps(servers, agents, percent, {n for n, v in versions.items() if v == target})


def describe(steps: Sequence[Step]) -> str:
    """``node1 (server) -> node2 (server) -> [node3, node4] (agents)`` (pure)."""
    parts = [f"{s.nodes[0]} (server)" if s.role == "server" else f"[{', '.join(s.nodes)}] (agents)" for s in steps]
    return " -> ".join(parts) or "nothing to do"


@dataclass(frozen=True)
class QuorumCheck:
    ok: bool
    message: str


def quorum(members: int) -> int:
    return members // 2 + 1


def tolerance(members: int, healthy: int) -> int:
    """How many more members may fail before etcd loses quorum (negative: already lost)."""
    return healthy - quorum(members)


def check_member_removal(target: str, members: Mapping[str, bool]) -> QuorumCheck:
    """May ``target`` leave etcd? ``members``: {etcd member: healthy (its node is Ready)}.

    Refused when etcd would lose quorum, or when the cluster could survive losing a
    server before and could not after (removing 1 of 3 healthy servers leaves 2, and 2
    members need both for quorum).
    """
    if target not in members:
        return QuorumCheck(True, f"{target} is not an etcd member")
    n, healthy = len(members), sum(1 for ok in members.values() if ok)
    after_n, after_healthy = n - 1, healthy - (1 if members[target] else 0)
    if after_n == 0:
        return QuorumCheck(False, f"{target} is the only etcd member: removing it removes the cluster "
                                  "(use `edgeclu reset` for that)")
    before, after = tolerance(n, healthy), tolerance(after_n, after_healthy)
    state = f"{after_healthy} healthy of {after_n} etcd member(s) left, quorum needs {quorum(after_n)}"
    if after < 0:
        return QuorumCheck(False, f"removing {target} would break etcd quorum: {state}")
    if after < before and after < 1:
        return QuorumCheck(False, f"removing {target} would leave etcd unable to survive losing another "
                                  f"server: {state} (now {n} members survive {before} failure(s))")
    return QuorumCheck(True, f"etcd keeps quorum: {state}")


@dataclass(frozen=True)
class LeftoverCheck:
    action: str  # "join": nothing in the way | "keep": the host is that node | "delete" | "refuse"
    message: str = ""


def check_leftover_node(name: str, address: str, node, k3s_running: bool) -> LeftoverCheck:
    """A Node object named like the host being added (``node``: a KubeNode or None).

    k3s remembers a node's password under its name; a machine that was wiped (or is new)
    and has that name is refused until the old Node object is deleted. So: no such node ->
    join; k3s running on the host -> it is that node, keep it; Ready at another address ->
    another machine uses the name, refuse; otherwise it is a leftover of an earlier
    install of this name -> delete it, then join.
    """
    if node is None:
        return LeftoverCheck("join")
    state = node.summary + (f" at {', '.join(node.addresses)}" if node.addresses else "")
    if k3s_running:
        return LeftoverCheck("keep", f"{name} already runs k3s and is in the cluster ({state}): joining it as is")
    if node.ready is True and node.addresses and address not in node.addresses:
        return LeftoverCheck("refuse", f"a node named {name} is in the cluster and Ready ({state}), and it is not "
                                       f"{address}: another machine uses that name. Give this one another "
                                       "host name (or --name), or remove the other first")
    return LeftoverCheck("delete", f"{name} is in the cluster's node list from an earlier install ({state}) but "
                                   f"k3s is not running on {address}: deleting that Node object so {name} can "
                                   "join again (k3s would refuse its new node password)")
