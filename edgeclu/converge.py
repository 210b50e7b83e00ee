"""Converge a cluster to its inventory: lock, run site.yml (unless the stamp says nothing can have
changed, see :mod:`edgeclu.stamp`), stamp the nodes, merge the kubeconfig.

Before anything changes it refuses a node whose k3s is newer than the inventory's, and an
upgrade in progress (:mod:`edgeclu.guards`); with ``skip_unreachable`` it leaves out the
nodes preflight could not reach, unless they are needed (the first server, etcd quorum).

The CLI (`edgeclu up`, `edgeclu add`) formats; this module decides what runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgeclu import guards, stamp, tokens
from edgeclu import kubeconfig as kc
from edgeclu.cluster import Cluster
from edgeclu.errors import EdgecluError
from edgeclu.inventory import Inventory, check_registries
from edgeclu.lock import ClusterLock
from edgeclu.playbook import HostRecap, PlaybookResult, TaskEvent


@dataclass
class Outcome:
    result: PlaybookResult
    kubeconfig: Path | None = None
    kubeconfig_backup: Path | None = None
    kubeconfig_changed: bool = False  # False: it already held this cluster's entries as they are
    skipped: list[str] = field(default_factory=list)  # unreachable, left out (skip_unreachable)


def run_preflight(cluster: Cluster, *, skip_unreachable: bool = False, remotes: dict | None = None):
    """Preflight every node (unreachable ones are not errors with ``skip_unreachable``), and refuse a
    node whose k3s is newer than the inventory's. Returns the preflight report. ``remotes``: see
    :func:`edgeclu.preflight.run_preflight`."""
    from edgeclu.preflight import run_preflight as preflight

    inv, report = cluster.inv, cluster.report
    rep = preflight(cluster, remotes=remotes)
    errors = [p for p in rep.errors if not (skip_unreachable and p.check == "unreachable")]
    for p in rep.problems:
        report(f"preflight: {p}")
    if errors:
        down = [p.node for p in errors if p.check == "unreachable"]
        raise EdgecluError(f"preflight failed on {len({p.node for p in errors})} node(s); nothing was changed"
                           + (f" (unreachable: {', '.join(down)}; `edgeclu up --skip-unreachable` converges the "
                              "others)" if down else ""))
    refusal = guards.downgrade_refusal({n: f.k3s_version for n, f in rep.facts.items()}, inv.vars["k3s_version"])
    if refusal:
        raise EdgecluError(refusal)
    return rep


def refuse_pending_upgrade(lock: ClusterLock | None, inv: Inventory) -> None:
    """Under the lock: stop if `edgeclu upgrade` to a newer k3s was started and has not finished."""
    refusal = guards.pending_upgrade_refusal(lock.upgrade if lock else None, inv.vars["k3s_version"])
    if refusal:
        raise EdgecluError(refusal)


def _unchanged(inv: Inventory, remotes: dict, report: Callable[[str], None]) -> PlaybookResult | None:
    """A result with nothing changed when every node is as the last run left it, else None (run)."""
    try:
        why = stamp.unchanged(inv, remotes)
    except OSError as e:  # e.g. a token file edgeclu may not read: the playbook will say so
        why = f"the stamps could not be checked ({e})"
    if why:
        report(f"running the playbook: {why}")
        return None
    report("every node is as the last run left it, and Ready: nothing to change "
           "(`edgeclu up --full` runs the playbook anyway)")
    return PlaybookResult("site.yml", 0, "unchanged", {h.name: HostRecap() for h in inv.hosts})


def _stamp(inv: Inventory, result: PlaybookResult, remotes: dict, recorder: stamp.Recorder,
           report: Callable[[str], None]) -> None:
    converged = [h for h in inv.hosts if h.name in result.hosts and result.hosts[h.name].healthy]
    try:
        failed = stamp.write(inv, converged, remotes, recorder)
    except OSError as e:
        failed = {h.name: str(e) for h in converged}
    for name, err in failed.items():
        report(f"{name}: could not write the converged stamp ({err}); the next run looks at it in full")


def converge(cluster: Cluster, *, dry_run: bool = False, preflight: bool = True, limit: str | None = None,
             kubeconfig: Path | None = None, merge_kubeconfig: bool = True,
             on_event: Callable[[TaskEvent], None] | None = None, lock_action: str = "up", lock: bool = True,
             fast: bool = False, skip_unreachable: bool = False) -> Outcome:
    """``lock=False``: the caller already holds the cluster lock (``edgeclu add``, ``restore``).
    ``fast``: skip the playbook when the converged stamps say nothing can have changed (``up``).
    A run over every node (no ``limit``) stamps the nodes that converged."""
    inv, report = cluster.inv, cluster.report
    for line in tokens.warnings(inv):
        report(f"warning: {line}")
    check_registries(inv.path, inv.vars)  # its auth files: bad ones stop the run (exit 2)
    if merge_kubeconfig and not dry_run:
        kc.check(inv, kubeconfig)  # a kubeconfig it could not merge into stops it before any change
    skipped: list[str] = []
    # every node's connection, opened on first use: preflight's are the stamps' look's right after it
    remotes = cluster.remotes()
    try:
        if preflight:
            rep = run_preflight(cluster, skip_unreachable=skip_unreachable and limit is None, remotes=remotes)
            if rep.unreachable and limit is None:
                nodes, why = guards.skip_plan([h.name for h in inv.servers], [h.name for h in inv.agents],
                                              rep.unreachable)
                if why:
                    raise EdgecluError(f"--skip-unreachable: {why}; nothing was changed")
                skipped, limit = rep.unreachable, ",".join(nodes)
                report(f"skipping unreachable node(s): {', '.join(skipped)} (--skip-unreachable)")
        first = inv.servers[0]
        recorder = stamp.Recorder()  # what the roles asked each node: the stamp replays it

        def events(te: TaskEvent) -> None:
            recorder(te)
            if on_event:
                on_event(te)

        def play(held: ClusterLock | None) -> PlaybookResult:
            if held:
                held.check("the playbook")
            return cluster.playbook("site.yml", check=dry_run, limit=limit, on_event=events)

        if dry_run:  # read-only: no lock file, no kubeconfig
            return Outcome(play(None), skipped=skipped)
        lock_remote = remotes[first.name]
        with cluster.locked(lock_action, remote=lock_remote) if lock else contextlib.nullcontext() as held:
            refuse_pending_upgrade(held, inv)
            result = _unchanged(inv, remotes, report) if fast and limit is None else None
            if result is None:
                # the nodes may reboot in the run (a Pi's memory cgroup): the stamps reconnect after it
                for name, r in remotes.items():
                    if name != first.name:
                        r.close()
                result = play(held)
                if limit is None:
                    _stamp(inv, result, remotes, recorder, report)
            outcome = Outcome(result, skipped=skipped)
            first_ok = first.name in result.hosts and result.hosts[first.name].healthy
            if merge_kubeconfig and first_ok:
                if held:
                    held.check("merging the kubeconfig")
                installed = kc.install_from_server(inv, lock_remote, path=kubeconfig)
                outcome.kubeconfig, outcome.kubeconfig_backup = installed.path, installed.backup
                outcome.kubeconfig_changed = installed.changed
            return outcome
    finally:
        for r in remotes.values():
            r.close()
