"""``edgeclu upgrade --k3s-version vX``: a rolling k3s upgrade.

Servers one at a time (inventory order), then agents in batches of
``upgrade_batch_percent`` % (at least one node). Each node is drained, upgraded
(``site.yml --limit`` with the new ``k3s_version``: the role swaps the binary and
restarts the service), uncordoned, and waited for until it is Ready on the new
version. The run stops at the first step where a node does not come back, and says
which. Nodes already on the target are skipped, so a re-run resumes. The inventory's
``k3s_version`` is updated once every node runs the target.

Resuming is safe: the target is recorded next to the cluster lock before the first node
gets it (so `edgeclu up` refuses to run the old version over it, see :mod:`edgeclu.guards`) and
cleared when every node runs it; every node this module cordons carries a mark
(:data:`~edgeclu.lifecycle.kubectl.CORDON_MARK`) until it is uncordoned, and a run first
uncordons the nodes an earlier, stopped one left marked. Each step first confirms that
the cluster lock is still this run's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ansible_collections.edgeclu.cluster.plugins.module_utils.k3s import compare_versions, version_key
from edgeclu import phases as ph
from edgeclu.cluster import Cluster
from edgeclu.errors import EdgecluError, RemoteError
from edgeclu.inventory import Inventory
from edgeclu.lifecycle.invfile import set_cluster_var, write_inventory
from edgeclu.lifecycle.kubectl import ClusterApi
from edgeclu.lifecycle.plan import Step, describe, upgrade_steps
from edgeclu.lock import ClusterLock
from edgeclu.playbook import TaskEvent

Report = Callable[[str], None]
OnStep = Callable[[ph.Step], None]


def _no_step(step: ph.Step) -> None:
    pass


@dataclass
class UpgradeOutcome:
    target: str
    steps: list[Step]
    before: dict[str, str | None]
    upgraded: list[str] = field(default_factory=list)  # in the order they were done
    failed: dict[str, str] = field(default_factory=dict)  # node -> why
    not_started: list[str] = field(default_factory=list)
    inventory_backup: Path | None = None

    @property
    def ok(self) -> bool:
        return not self.failed and not self.not_started

    @property
    def skipped(self) -> list[str]:
        """Already on the target before this run."""
        return [n for n, v in self.before.items() if v == self.target]


def check_target(target: str) -> None:
    try:
        version_key(target)
    except ValueError as e:
        raise EdgecluError(f"--k3s-version: {e}") from None


def plan_upgrade(inv: Inventory, api: ClusterApi, target: str, percent: int | None = None
                 ) -> tuple[list[Step], dict[str, str | None]]:
    """The steps for this cluster, from the versions its nodes report now (reads only)."""
    check_target(target)
    nodes = api.nodes()
    missing = [h.name for h in inv.hosts if h.name not in nodes]
    if missing:
        raise EdgecluError(f"not part of the cluster yet: {', '.join(missing)}; run `edgeclu up` first")
    before = {h.name: nodes[h.name].version for h in inv.hosts}
    newer = [f"{n} ({v})" for n, v in before.items() if v and compare_versions(v, target) > 0]
    if newer:
        raise EdgecluError(f"{', '.join(newer)} already run a newer k3s than {target}; k3s cannot be downgraded")
    steps = upgrade_steps([h.name for h in inv.servers], [h.name for h in inv.agents],
                          percent or inv.vars["upgrade_batch_percent"], before, target)
    return steps, before


def upgrade_cluster(cluster: Cluster, target: str, *, percent: int | None = None, drain_timeout: float = 120,
                    ready_timeout: float = 300, on_event: Callable[[TaskEvent], None] | None = None,
                    on_step: OnStep = _no_step) -> UpgradeOutcome:
    """The rolling upgrade; ``on_step`` hears each node's steps (:data:`edgeclu.phases.UPGRADE_PHASES`)."""
    check_target(target)
    inv, report = cluster.inv, cluster.report
    with cluster.locked("upgrade") as lk:
        api = cluster.api()
        try:
            if lk.upgrade:
                report(f"resuming the upgrade to {lk.upgrade.get('target')} started by "
                       f"{lk.upgrade.get('who', 'an earlier run')}")
            release_marked(api, lk, report)
            steps, before = plan_upgrade(inv, api, target, percent)
            outcome = UpgradeOutcome(target, steps, before)
            report(f"upgrade to {target}: {describe(steps)}")
            if outcome.skipped:
                report(f"already on {target}: {', '.join(outcome.skipped)}")
                for phase in ph.UPGRADE_PHASES:
                    on_step(ph.Step(phase.key, ph.DONE, tuple(outcome.skipped), f"already on {target}"))
            for i, step in enumerate(steps):
                if not _step(cluster, api, step, f"[{i + 1}/{len(steps)}]", outcome, lk,
                             drain_timeout=drain_timeout, ready_timeout=ready_timeout,
                             single=len(before) == 1, on_event=on_event, on_step=on_step):
                    outcome.not_started = [n for s in steps[i + 1:] for n in s.nodes]
                    if outcome.not_started:
                        report(f"stopped: not upgraded: {', '.join(outcome.not_started)}")
                    for phase in ph.UPGRADE_PHASES:  # every step still waiting, on any node
                        on_step(ph.Step(phase.key, ph.SKIPPED, None, "the upgrade stopped first"))
                    return outcome
        finally:
            api.close()
        if inv.vars["k3s_version"] != target:
            lk.check("updating the inventory")
            outcome.inventory_backup = write_inventory(inv.path, set_cluster_var(inv.path, "k3s_version", target))
            report(f"{inv.path}: k3s_version is now {target} (previous version: {outcome.inventory_backup})")
        if lk.upgrade:
            lk.set_upgrade(None)  # done: `up` with the new k3s_version is free to run
        return outcome


def release_marked(api: ClusterApi, lk: ClusterLock, report: Report) -> list[str]:
    """Uncordon the nodes an earlier edgeclu run cordoned and did not uncordon (it was stopped)."""
    marked = api.marked()
    for n, action in marked.items():
        lk.check(f"uncordoning {n}")
        api.uncordon_marked(n)
        report(f"{n}: uncordoned (an earlier `edgeclu {action}` cordoned it and stopped before uncordoning it)")
    return list(marked)


def _step(cluster: Cluster, api: ClusterApi, step: Step, label: str, outcome: UpgradeOutcome, lk: ClusterLock, *,
          drain_timeout: float, ready_timeout: float, single: bool, on_event,
          on_step: OnStep = _no_step) -> bool:
    report = cluster.report
    target = outcome.target
    drained: list[str] = []
    for n in step.nodes:
        if single:
            report(f"{label} {n}: the only node, not drained")
            on_step(ph.Step("drain", ph.SKIPPED, (n,), "the only node"))
            continue
        lk.confirm(f"draining {n}")
        report(f"{label} {n}: draining")
        on_step(ph.Step("drain", ph.WORKING, (n,)))
        api.mark(n, "upgrade")
        d = api.drain(n, drain_timeout)
        if not d.ok:
            for line in d.stuck:
                report(f"  would not move: {line}")
            for m in [*drained, n]:
                api.uncordon_marked(m)
            outcome.failed[n] = f"drain did not finish ({len(d.stuck)} pod(s) would not move); uncordoned, not upgraded"
            outcome.not_started += [m for m in step.nodes if m != n and m not in drained]
            report(f"{label} {n}: {outcome.failed[n]}")
            on_step(ph.Step("drain", ph.FAILED, (n,), outcome.failed[n]))
            return False
        drained.append(n)
        on_step(ph.Step("drain", ph.CHANGED, (n,)))
    names = ", ".join(step.nodes)
    lk.confirm(f"upgrading {names}")
    if (lk.upgrade or {}).get("target") != target:  # from here on a node may run the target: `up` must know
        lk.set_upgrade({"target": target, "who": lk.owner.who, "started": time.time()})
    report(f"{label} {names}: installing k3s {target}")
    on_step(ph.Step("install", ph.WORKING, step.nodes))
    result = cluster.playbook("site.yml", extravars={"k3s_version": target}, limit=step.nodes, on_event=on_event)
    failed = result.failures_of(step.nodes)
    back = [n for n in step.nodes if n not in failed]
    for n in step.nodes:
        on_step(ph.Step("install", ph.FAILED if n in failed else ph.CHANGED, (n,), failed.get(n, "")))
    if back and not single:
        report(f"{label} {', '.join(back)}: k3s {target} installed; uncordoning")
    for n in back if not single else []:
        api.uncordon_marked(n)
        on_step(ph.Step("uncordon", ph.CHANGED, (n,)))
    if single:
        on_step(ph.Step("uncordon", ph.SKIPPED, tuple(back), "the only node: never cordoned"))
    on_step(ph.Step("ready", ph.WORKING, tuple(back)))
    waiting = api.wait_nodes(back, ready_timeout, want=lambda k: k.ready is True and k.version == target)
    for n, why in waiting.items():
        failed[n] = f"not Ready on {target} after {ready_timeout:g}s ({why})"
    for n in failed if not single else []:  # not Ready: it takes no pods anyway; do not leave it cordoned
        try:
            api.uncordon_marked(n)
        except RemoteError as e:
            report(f"{label} {n}: could not uncordon it: {e}")
    for n in back:
        on_step(ph.Step("ready", ph.FAILED if n in failed else ph.DONE, (n,), failed.get(n, "")))
    for n in step.nodes:
        if n in failed:
            report(f"{label} {n}: FAILED: {failed[n]} (uncordoned: it takes pods again once it is Ready)")
        else:
            outcome.upgraded.append(n)
            report(f"{label} {n}: upgraded {outcome.before.get(n)} -> {target}, uncordoned, Ready")
    outcome.failed.update(failed)
    return not failed
