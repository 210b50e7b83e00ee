"""``edgeclu certs rotate``: new k3s certificates on every node, rolling, and a fresh kubeconfig.

k3s's own mechanism (docs.k3s.io/cli/certificate, k3s pkg/cli/cert/cert.go): with k3s stopped,
``k3s certificate rotate`` copies the certificates aside (``server/tls-<unix time>``) and removes
the leaf certificates, never the CAs; the next start issues new ones. k3s's maintainers: rotate
on every node, servers first, then agents, and refresh copied kubeconfigs (their client
certificate lasts a year too; github.com/k3s-io/k3s/discussions/10024). The CAs stay, so every
certificate of the cluster is trusted throughout and nodes not yet rotated keep working.

The run, under the cluster lock, every node Ready first: each server in turn is stopped,
rotated, started, and waited for until it is Ready and presents a new serving certificate;
then the merged kubeconfig gets the new admin client certificate (from the first server's
k3s.yaml, merged as ``edgeclu up`` does: backup, atomic, 0600); then the agents, in batches
of ``upgrade_batch_percent``. What is done is recorded next to the lock
(:data:`ROTATE_FILE`), so a run that stopped is resumed by the next one, which skips those
nodes; the record goes once every node is done.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from edgeclu import certs
from edgeclu import kubeconfig as kc
from edgeclu.cluster import Cluster
from edgeclu.errors import EdgecluError, RemoteError
from edgeclu.fleet import on_all
from edgeclu.inventory import Host, Inventory
from edgeclu.lifecycle.kubectl import ClusterApi
from edgeclu.lifecycle.plan import Step, describe, rolling_steps
from edgeclu.lock import LOCK_DIR, ClusterLock, read_record

Report = Callable[[str], None]
ROTATE_FILE = f"{LOCK_DIR}/certs-rotate.json"  # a rotation in progress: the nodes done so far
UNITS = {"server": "k3s", "agent": "k3s-agent"}


# -- decisions (pure) --------------------------------------------------------------------
def rotate_command(role: str) -> str:
    """Stop k3s, ``k3s certificate rotate``, start it again (also when the rotation failed: never leave
    the node stopped); the exit code is the rotation's."""
    unit = UNITS[role]
    return (f"systemctl stop {unit} && {{ k3s certificate rotate; rc=$?; "
            f"systemctl start {unit} || rc=1; exit $rc; }}")


def done_before(record: Mapping | None, names: Collection[str]) -> list[str]:
    """The nodes an earlier, stopped rotation finished (from its record; only names of this inventory)."""
    done = (record or {}).get("done")
    if not isinstance(done, list):
        return []
    return [n for n in done if isinstance(n, str) and n in names]


def failure_reason(stdout: str, stderr: str, code: int) -> str:
    """The last line k3s printed (its log goes to stderr), else the exit code."""
    lines = [line for line in (stderr + "\n" + stdout).splitlines() if line.strip()]
    return lines[-1].strip() if lines else f"exit {code}"


# -- the run -----------------------------------------------------------------------------
@dataclass
class CertsOutcome:
    steps: list[Step]
    skipped: list[str] = field(default_factory=list)  # done by an earlier run
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    not_started: list[str] = field(default_factory=list)
    kubeconfig: kc.Installed | None = None

    @property
    def ok(self) -> bool:
        return not self.failed and not self.not_started


def plan(inv: Inventory, record: Mapping | None) -> tuple[list[Step], list[str]]:
    skipped = done_before(record, {h.name for h in inv.hosts})
    steps = rolling_steps([h.name for h in inv.servers], [h.name for h in inv.agents],
                          inv.vars["upgrade_batch_percent"], skipped)
    return steps, skipped


def dry_run(cluster: Cluster) -> tuple[list[Step], list[str]]:
    """The steps a rotation would take now (reads the record of a stopped one; changes nothing)."""
    remote = cluster.remote(cluster.inv.servers[0])
    try:
        return plan(cluster.inv, read_record(remote, ROTATE_FILE))
    finally:
        remote.close()


def rotate_certs(cluster: Cluster, *, ready_timeout: float = 300, kubeconfig: Path | None = None) -> CertsOutcome:
    inv, report = cluster.inv, cluster.report
    kc.check(inv, kubeconfig)  # one it could not merge into stops the run before anything changes (exit 2)
    with cluster.locked("certs rotate") as lk:
        record = lk.read_record(ROTATE_FILE)
        steps, skipped = plan(inv, record)
        outcome = CertsOutcome(steps, skipped)
        if skipped:
            report(f"resuming the rotation started by {record.get('who', 'an earlier run')}: already done: "
                   f"{', '.join(skipped)}")
        report(f"certificate rotation: {describe(steps)}")
        api = cluster.api()
        try:
            api.require_ready([h.name for h in inv.hosts], "before its certificates are rotated")
            record = dict(record or {"started": time.time(), "who": lk.owner.who, "done": []})
            record["done"] = list(skipped)
            runner = _Runner(cluster, api, lk, outcome, record, ready_timeout=ready_timeout)
            refreshed = False
            for i, step in enumerate(steps):
                if step.role == "agent" and not refreshed:  # every server is done: its k3s.yaml is new
                    outcome.kubeconfig, refreshed = _refresh_kubeconfig(cluster, kubeconfig), True
                if not runner.step(step, f"[{i + 1}/{len(steps)}]"):
                    outcome.not_started = [n for s in steps[i + 1:] for n in s.nodes]
                    if outcome.not_started:
                        report(f"stopped: certificates not rotated yet: {', '.join(outcome.not_started)} "
                               "(`edgeclu certs rotate` again resumes)")
                    break
            else:
                if not refreshed:
                    outcome.kubeconfig = _refresh_kubeconfig(cluster, kubeconfig)
        finally:
            api.close()
        if outcome.ok:
            lk.write_record(ROTATE_FILE, None)
        return outcome


def _refresh_kubeconfig(cluster: Cluster, path: Path | None) -> kc.Installed:
    remote = cluster.remote(cluster.inv.servers[0])
    try:
        installed = kc.install_from_server(cluster.inv, remote, path=path)
    finally:
        remote.close()
    backup = f" (previous one: {installed.backup})" if installed.backup else ""
    cluster.report(f"kubeconfig: context '{installed.context}' in {installed.path} has the new client certificate"
                   f"{backup}" if installed.changed else
                   f"kubeconfig: {installed.path} already has the current client certificate")
    return installed


class _Runner:
    """One step at a time: rotate on its nodes, wait for them, record them done."""

    def __init__(self, cluster: Cluster, api: ClusterApi, lk: ClusterLock, outcome: CertsOutcome, record: dict, *,
                 ready_timeout: float):
        self.cluster, self.inv, self.report = cluster, cluster.inv, cluster.report
        self.api, self.lk, self.outcome, self.record, self.ready_timeout = api, lk, outcome, record, ready_timeout
        self.port = cluster.inv.vars["api_port"]

    def _serving(self, host: Host) -> certs.CertDates | None:
        try:
            return certs.serving_cert(host.address, self.port, 5)
        except certs.CertError:
            return None

    def _rotate(self, host: Host) -> None:
        remote = self.cluster.remote(host)
        try:
            r = remote.run(rotate_command(host.role), sudo=True, check=False, timeout=self.ready_timeout + 60)
        finally:
            remote.close()
        if r.exit_code != 0:
            raise EdgecluError(f"`k3s certificate rotate` failed: {failure_reason(r.stdout, r.stderr, r.exit_code)}")

    def _wait_new_serving(self, host: Host, before: certs.CertDates | None, deadline: float) -> str | None:
        """None once ``host`` presents another serving certificate than before; else why not."""
        while True:
            now = self._serving(host)
            if now is not None and now != before:
                return None
            if time.monotonic() >= deadline:
                return (f"it still presents the old serving certificate on port {self.port}" if now else
                        f"no serving certificate could be read on port {self.port}")
            time.sleep(1)

    def step(self, step: Step, label: str) -> bool:
        hosts = [self.inv.host(n) for n in step.nodes]
        names = ", ".join(step.nodes)
        self.lk.confirm(f"rotating the certificates of {names}")
        self.report(f"{label} {names}: stop k3s, `k3s certificate rotate`, start")
        before = {h.name: self._serving(h) for h in hosts if h.role == "server"}
        started = time.monotonic()
        results = on_all(hosts, self._rotate)
        failed = {n: str(e).removeprefix(f"{n}: ") for n, e in results.failed.items()}
        back = [n for n in step.nodes if n not in failed]
        try:
            waiting = self.api.wait_nodes(back, self.ready_timeout)
        except RemoteError as e:
            waiting = dict.fromkeys(back, str(e))
        failed.update({n: f"not Ready after {self.ready_timeout:g}s ({why})" for n, why in waiting.items()})
        for h in hosts:
            if h.role == "server" and h.name not in failed:
                why = self._wait_new_serving(h, before[h.name], started + self.ready_timeout)
                if why:
                    failed[h.name] = why
        for n in step.nodes:
            if n in failed:
                self.report(f"{label} {n}: FAILED: {failed[n]}")
            else:
                self.outcome.done.append(n)
                self.record["done"].append(n)
                self.report(f"{label} {n}: new certificates, Ready")
        if any(n not in failed for n in step.nodes):
            self.lk.write_record(ROTATE_FILE, self.record)
        self.outcome.failed.update(failed)
        return not failed
