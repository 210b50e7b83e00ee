"""``edgeclu add`` and ``edgeclu remove``: grow and shrink a running cluster, one node at a time.

add: the new node is checked (preflight), written to the inventory and converged with
``site.yml --limit <node>``: only that node is changed; the first server is read (the
join URL, the token if the controller lost it, Ready) and holds the cluster lock.

remove: cordon and drain (PodDisruptionBudgets respected, with a timeout and a report of
what would not move), disable and stop k3s on the node (a reboot must not bring it back),
delete the Node object (k3s then removes the node's etcd member), uninstall k3s and the
edgeclu agent (``reset.yml --limit``), and drop the node from the inventory, only once the
uninstall finished (else it stays there, and a re-run of remove finishes the job). A
server whose removal would cost etcd its quorum (or its ability to survive another
failure) is refused unless ``force``; ``force`` also removes a node that cannot be
reached (its drain and uninstall are skipped). Each destructive step first confirms that
the cluster lock is still this run's.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgeclu import discovery, node
from edgeclu import phases as ph
from edgeclu.cluster import Cluster
from edgeclu.converge import Outcome, converge, refuse_pending_upgrade
from edgeclu.errors import EdgecluError, RemoteError
from edgeclu.guards import downgrade_refusal
from edgeclu.inventory import ROLES, load_inventory
from edgeclu.lifecycle.invfile import edit_hosts, write_inventory
from edgeclu.lifecycle.kubectl import Drain
from edgeclu.lifecycle.plan import QuorumCheck, check_leftover_node, check_member_removal
from edgeclu.lock import ClusterLock
from edgeclu.playbook import PlaybookResult, TaskEvent
from edgeclu.preflight import run_preflight

Report = Callable[[str], None]


# -- add: pure parts -----------------------------------------------------------------
def is_address(text: str) -> bool:
    """An IP address or a DNS name with a dot (``pi-5.lan``); not a bare or ``.local`` mDNS name."""
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return "." in text and not text.lower().rstrip(".").endswith(".local")


def new_host_vars(address: str, *, user: str | None, port: int | None, key_file: str | None,
                  cluster_vars: dict) -> dict:
    """Host vars for the inventory: the address, plus SSH settings that differ from the cluster's."""
    hvars: dict = {"ansible_host": address}
    for key, value in (("ansible_user", user), ("ansible_port", port), ("ansible_ssh_private_key_file", key_file)):
        if value is not None and value != cluster_vars.get(key):
            hvars[key] = value
    return hvars


# -- add ---------------------------------------------------------------------------------
@dataclass
class AddOutcome:
    name: str
    role: str
    address: str
    result: PlaybookResult
    inventory_backup: Path | None

    @property
    def ok(self) -> bool:
        return self.result.ok


def resolve(cluster: Cluster, host: str, *, name: str | None, user: str, port: int,
            key_file: str | None) -> tuple[str, str]:
    """``(inventory name, address)`` for HOST, an address (the CLI resolves an mDNS name first, by
    :func:`edgeclu.discovery.locate`'s rules); without ``name`` the machine is asked for its host name."""
    if not is_address(host):
        raise EdgecluError(f"{host} is not an address; look it up with `edgeclu discover` first")
    address = host
    if not name:  # ask the machine for its name (a read)
        remote = cluster.ssh(host, address, user=user, port=port, key_file=key_file)
        try:
            hostname = remote.run("hostname", timeout=15).stdout.strip()
        finally:
            remote.close()
        name = discovery.inventory_name(hostname)
        if not name:
            raise EdgecluError(f"{host} calls itself {hostname!r}, not a valid inventory name; "
                               "give one with --name")
    return name, address


def add_node(cluster: Cluster, host: str, *, role: str = "agent", name: str | None = None, user: str | None = None,
             port: int | None = None, key_file: str | None = None,
             on_event: Callable[[TaskEvent], None] | None = None) -> AddOutcome:
    inv, report = cluster.inv, cluster.report
    if role not in ROLES:
        raise EdgecluError(f"--role must be server or agent, not {role!r}")
    v = inv.vars
    ssh_user = user or v["ansible_user"]
    ssh_port = port or v["ansible_port"]
    ssh_key = key_file or v.get("ansible_ssh_private_key_file")
    name, address = resolve(cluster, host, name=name, user=ssh_user, port=ssh_port, key_file=ssh_key)
    for h in inv.hosts:
        if h.name == name or h.address == address:
            raise EdgecluError(f"{h.name} ({h.address}) is already in {inv.path}; "
                               "run `edgeclu up` to converge it")
    if role == "server" and len(inv.servers) == 1:
        raise EdgecluError(
            f"{inv.servers[0].name} is this cluster's only server, so it runs k3s with SQLite, which other "
            "servers cannot join. `edgeclu add` changes only the new node; to get more servers, add them to "
            "the inventory and run `edgeclu up` (it restarts the first server with cluster-init)")
    entry = (name, role, new_host_vars(address, user=user, port=port, key_file=key_file, cluster_vars=v))
    new_inv = load_inventory(inv.path, text=edit_hosts(inv.path, add=entry))
    grown = cluster.with_inventory(new_inv)
    pre = run_preflight(grown, hosts=[new_inv.host(name)])
    for p in pre.problems:
        report(f"preflight: {p}")
    if pre.errors:
        raise EdgecluError(f"preflight failed on {name}; nothing was changed")
    refusal = downgrade_refusal({n: f.k3s_version for n, f in pre.facts.items()}, v["k3s_version"])
    if refusal:
        raise EdgecluError(refusal)

    with cluster.locked("add") as lk:
        refuse_pending_upgrade(lk, inv)
        _clear_leftover(grown, new_inv.host(name))
        old_text = inv.path.read_text()
        backup = write_inventory(inv.path, edit_hosts(inv.path, add=entry))  # the file as it is now, locked
        report(f"{name} ({role}, {address}) added to {inv.path} (previous version: {backup})")
        try:
            outcome: Outcome = converge(grown, preflight=False, limit=name, merge_kubeconfig=False,
                                        on_event=on_event, lock=False)
        except BaseException:
            write_inventory(inv.path, old_text, backup=False)
            raise
        if not outcome.result.ok:
            write_inventory(inv.path, old_text, backup=False)
            report(f"{name} did not join: {inv.path} is back as it was; fix the problem and run "
                   f"`edgeclu add` again")
        return AddOutcome(name, role, address, outcome.result, backup)


def _clear_leftover(cluster: Cluster, host) -> None:
    """Delete a stale Node object with the new host's name (see :func:`check_leftover_node`)."""
    api = cluster.api()
    try:
        listed = api.nodes().get(host.name)
        if listed is None:
            return
        remote = cluster.remote(host)
        try:
            running = bool(node.gather(remote, host).k3s_active)
        finally:
            remote.close()
        check = check_leftover_node(host.name, host.address, listed, running)
        if check.action == "refuse":
            raise EdgecluError(f"{check.message}. Nothing was changed")
        cluster.report(check.message)
        if check.action == "delete":
            api.node("delete", host.name)
            if not api.wait_gone(host.name, 30):
                raise EdgecluError(f"the old Node object {host.name} is still listed 30s after its deletion; "
                                   "nothing else was changed")
    finally:
        api.close()


# -- remove --------------------------------------------------------------------------------
@dataclass
class RemoveOutcome:
    name: str
    role: str
    reachable: bool
    quorum: QuorumCheck | None = None
    drain: Drain | None = None
    node_deleted: bool = False
    uninstalled: bool = False
    inventory_backup: Path | None = None
    uninstall_failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.node_deleted and (self.uninstalled or not self.reachable) and self.inventory_backup is not None


class Refused(EdgecluError):
    """The removal was refused before anything changed (or after the drain was rolled back)."""

    exit_code = 5


def stop_k3s_command(role: str) -> str:
    """Disable, then stop, the node's k3s service: stopped alone, a reboot would start it again and
    the node would rejoin with a valid token (pure)."""
    service = node.service(role)
    return (f"if systemctl cat {service}.service >/dev/null 2>&1; then "
            f"systemctl disable {service} && systemctl stop {service}; fi")


def _stop_k3s(remote, role: str) -> None:
    remote.run(stop_k3s_command(role), sudo=True, timeout=120)


def remove_node(cluster: Cluster, name: str, *, force: bool = False, drain_timeout: float = 120,
                on_event: Callable[[TaskEvent], None] | None = None,
                on_step: Callable[[ph.Step], None] | None = None) -> RemoveOutcome:
    """Take ``name`` out; ``on_step`` hears its steps (:data:`edgeclu.phases.REMOVE_PHASES`)."""
    inv, report = cluster.inv, cluster.report
    try:
        host = inv.host(name)
    except KeyError:
        raise EdgecluError(f"{name} is not in {inv.path} (hosts: {', '.join(h.name for h in inv.hosts)})") from None
    if host.role == "server" and len(inv.servers) == 1:
        raise Refused(f"{name} is the cluster's only server: removing it removes the cluster "
                      "(use `edgeclu reset` for that)")
    outcome = RemoveOutcome(name, host.role, reachable=True)

    target = cluster.remote(host)
    try:
        target.run("true", timeout=15)
    except RemoteError as e:
        outcome.reachable = False
        if not force:
            raise Refused(f"{e}. Use --force to remove it anyway: its Node object, etcd member and inventory "
                          "entry go; k3s stays on the machine (wipe it before reusing it)") from None
        report(f"{name} is unreachable ({e}); --force: skipping its drain and uninstall")
    finally:
        target.close()
    step = _stepper(name, on_step)

    # the lock lives on the first server; when that is the node going away and it is down, the next one
    lock_host = next(h for h in inv.servers if outcome.reachable or h.name != name)
    with cluster.locked("remove", on=lock_host) as lk:
        _remove_locked(cluster, host, outcome, lk, force=force, drain_timeout=drain_timeout, on_event=on_event,
                       step=step)
    return outcome


def _stepper(name: str, on_step: Callable[[ph.Step], None] | None) -> Callable[..., None]:
    def step(phase: str, state: str, message: str = "") -> None:
        if on_step is not None:
            on_step(ph.Step(phase, state, (name,), message))
    return step


def _remove_locked(cluster: Cluster, host, outcome: RemoveOutcome, lk: ClusterLock, *, force: bool,
                   drain_timeout: float, on_event, step: Callable[..., None]) -> None:
    inv, report, name = cluster.inv, cluster.report, host.name
    api = cluster.api(exclude=[name])
    try:
        nodes = api.nodes()
        if host.role == "server":
            members = {n.name: n.ready is True for n in nodes.values() if "etcd" in n.roles}
            outcome.quorum = check_member_removal(name, members)
            if not outcome.quorum.ok:
                if not force:
                    step("quorum", ph.FAILED, outcome.quorum.message)
                    raise Refused(f"{outcome.quorum.message}. Nothing was changed; --force removes it anyway")
                report(f"warning: {outcome.quorum.message}; --force: removing it anyway")
            else:
                report(outcome.quorum.message)
            step("quorum", ph.DONE, outcome.quorum.message)
        in_cluster = name in nodes
        if not in_cluster:
            report(f"{name} is not in the cluster's node list (kubectl via {api.server})")
        if in_cluster and outcome.reachable:
            lk.confirm(f"draining {name}")
            report(f"draining {name} (timeout {drain_timeout:g}s)")
            step("drain", ph.WORKING)
            api.mark(name, "remove")
            outcome.drain = api.drain(name, drain_timeout)
            if not outcome.drain.ok:
                for line in outcome.drain.stuck:
                    report(f"  would not move: {line}")
                if not force:
                    api.uncordon_marked(name)
                    step("drain", ph.FAILED, f"{len(outcome.drain.stuck)} pod(s) would not move; uncordoned")
                    raise Refused(f"{name} could not be drained ({len(outcome.drain.stuck)} pod(s) would not "
                                  f"move); it is uncordoned again and nothing else changed. Fix that, or use "
                                  "--force to remove it anyway (those pods go with the node)")
                report("--force: removing it anyway")
            step("drain", ph.CHANGED)
        else:
            step("drain", ph.SKIPPED, "unreachable (--force)" if not outcome.reachable else "not in the cluster")
        if outcome.reachable:
            lk.confirm(f"stopping k3s on {name}")
            step("stop", ph.WORKING)
            remote = cluster.remote(host)
            try:
                _stop_k3s(remote, host.role)  # so the kubelet cannot register the node again
            finally:
                remote.close()
            step("stop", ph.CHANGED)
        else:
            step("stop", ph.SKIPPED, "unreachable (--force)")
        if in_cluster:
            lk.confirm(f"deleting the Node {name}")
            api.node("delete", name)
            report(f"Node {name} deleted" + (" (k3s removes its etcd member)" if host.role == "server" else ""))
        step("delete", ph.CHANGED if in_cluster else ph.DONE, "" if in_cluster else "not in the node list")
        outcome.node_deleted = True
        if in_cluster and not api.wait_gone(name, 30):
            report(f"warning: {name} is still listed by kubectl 30s after its deletion")
    finally:
        api.close()

    if outcome.reachable:
        lk.confirm(f"uninstalling k3s from {name}")
        step("uninstall", ph.WORKING)
        result = cluster.playbook("reset.yml", limit=name, on_event=on_event)
        outcome.uninstalled = result.ok
        outcome.uninstall_failures = [f for h in result.hosts.values() for f in h.failures]
        if not result.ok:
            step("uninstall", ph.FAILED, "; ".join(outcome.uninstall_failures[:2]) or "did not finish")
            report(f"uninstall on {name} did not finish: " + "; ".join(outcome.uninstall_failures[:3]))
            report(f"{name} is out of the cluster and its k3s is disabled and stopped, but it stays in {inv.path} "
                   f"until the uninstall finishes: fix that and run `edgeclu remove {name}` again")
            return
        report(f"k3s and the edgeclu agent uninstalled from {name}")
        step("uninstall", ph.CHANGED)
    else:
        step("uninstall", ph.SKIPPED, "unreachable (--force): k3s stays on the machine")
    lk.check(f"removing {name} from {inv.path}")
    outcome.inventory_backup = write_inventory(inv.path, edit_hosts(inv.path, remove=name))
    report(f"{name} removed from {inv.path} (previous version: {outcome.inventory_backup})")
    step("inventory", ph.CHANGED)
