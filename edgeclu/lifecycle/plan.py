"""Pure planning: upgrade order and batches, and whether removing a server keeps etcd quorum."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


def upgrade_steps(servers: Sequence[str], agents: Sequence[str], percent: int,
                  versions: Mapping[str, str | None], target: str) -> list[Step]:
    """Servers one at a time (inventory order), then agents in batches of ``percent`` % of all
    agents. Nodes already running ``target`` are left out, so a re-run resumes."""
    steps = [Step("server", (s,)) for s in servers if versions.get(s) != target]
    todo = [a for a in agents if versions.get(a) != target]
    size = batch_size(len(agents), percent)
    steps += [Step("agent", tuple(todo[i:i + size])) for i in range(0, len(todo), size)]
    return steps


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
