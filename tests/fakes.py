"""Test doubles for unit tests without root or nodes (the lab tests use the real things).

- :class:`FakeRemote`: the one remote I/O interface (:class:`edgeclu.transport.Remote`) on a
  node that does not exist. It answers only the commands it was told about (:meth:`FakeRemote.on`)
  and raises :class:`UnexpectedCommand` on any other, so a code path that starts doing something
  new fails its test instead of passing silently. It records every command it ran.
- :func:`answer_lock`: teaches a FakeRemote the cluster lock's three commands
  (:func:`edgeclu.lock.lock_command`), so the real :class:`~edgeclu.lock.ClusterLock` runs on it.
- :class:`FakePlaybooks`: stands in for ansible-runner (:func:`edgeclu.playbook.run_playbook`),
  which cannot reach a FakeRemote: records each run and returns the result the test scripted.
- :func:`fake_cluster`: a :class:`~edgeclu.cluster.Cluster` whose nodes are FakeRemotes.
- :class:`LocalRemote`: the remote interface on this machine, without SSH (``sh -c`` with stdin, as the
  login user or another one): the node probe's script runs for real in unit tests.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgeclu.cluster import Cluster
from edgeclu.errors import CommandFailed
from edgeclu.inventory import Inventory
from edgeclu.lock import LOCK_FILE
from edgeclu.playbook import HostRecap, PlaybookResult, TaskEvent
from edgeclu.transport import Result

Answer = str | Result | BaseException | Callable[[str], "str | Result"]


class UnexpectedCommand(AssertionError):
    """The code under test ran a command the test did not expect."""


class FakeRemote:
    """A node that answers only what it was told (:meth:`on`); every command run is in :attr:`calls`."""

    def __init__(self, name: str):
        self.name = name
        self._answers: list[tuple[Callable[[str], bool], bytes | None, Answer]] = []
        self.calls: list[str] = []
        self.stdins: list[bytes | None] = []  # what each command got on stdin
        self.puts: list[tuple[str, str]] = []  # (local file's content, remote path)
        self.closed = 0
        self.connections = 0  # as SSHRemote connects: on the first command, and on the first after a close
        self._open = False

    def on(self, command: str | Callable[[str], bool], answer: Answer = "", *, stdin: bytes | None = None
           ) -> FakeRemote:
        """Answer ``command`` (the exact string, or a predicate on it; with ``stdin``, only when the command
        gets exactly that on stdin) with stdout text, a :class:`Result`, an exception to raise, or a
        function of the command. Later rules win."""
        match = command if callable(command) else (lambda c, want=command: c == want)
        self._answers.insert(0, (match, stdin, answer))
        return self

    def ran(self, command: str, *, stdin: bytes | None = None) -> bool:
        return any(c == command and (stdin is None or i == stdin) for c, i in zip(self.calls, self.stdins, strict=True))

    def run(self, command: str, *, sudo: bool = False, check: bool = True, timeout: float | None = None,
            stdin: bytes | None = None) -> Result:
        answer = next((a for match, feed, a in self._answers if match(command) and feed in (None, stdin)), None)
        if answer is None:
            raise UnexpectedCommand(f"{self.name}: no answer for {command[:300]!r}"
                                    + (f" with {stdin[-300:]!r} on stdin" if stdin else ""))
        self.calls.append(command)
        self.stdins.append(stdin)
        if not self._open:
            self.connections, self._open = self.connections + 1, True
        if isinstance(answer, BaseException):
            raise answer
        if callable(answer):
            answer = answer(command)
        result = answer if isinstance(answer, Result) else Result(self.name, command, 0, answer, "")
        if check and not result.ok:
            raise CommandFailed(self.name, command, result.exit_code, result.stderr)
        return result

    def put(self, local: str | Path, remote: str, *, sudo: bool = False, mode: int | None = None) -> None:
        self.puts.append((Path(local).read_text(), remote))

    def get(self, remote: str, local: str | Path, *, sudo: bool = False) -> None:
        raise UnexpectedCommand(f"{self.name}: get {remote}")

    def close(self) -> None:
        self.closed += 1
        self._open = False


class LocalRemote:
    """This machine as a node, without SSH: ``sh -c COMMAND`` with ``stdin`` (as ``user`` through runuser,
    when given: root only). ``env`` replaces the command's environment (PATH for stand-in programs)."""

    def __init__(self, name: str = "local", *, user: str | None = None, env: dict | None = None):
        self.name, self.user, self.env = name, user, env

    def run(self, command: str, *, sudo: bool = False, check: bool = True, timeout: float | None = None,
            stdin: bytes | None = None) -> Result:
        assert not sudo, "LocalRemote runs as its user only"
        argv = ["sh", "-c", command] if self.user is None else ["runuser", "-u", self.user, "--", "sh", "-c", command]
        p = subprocess.run(argv, input=stdin or b"", capture_output=True, timeout=timeout, env=self.env)
        result = Result(self.name, command, p.returncode, p.stdout.decode(), p.stderr.decode())
        if check and not result.ok:
            raise CommandFailed(self.name, command, result.exit_code, result.stderr)
        return result

    def close(self) -> None:
        pass


def fail(node: str, command: str = "", code: int = 1, stderr: str = "failed") -> Result:
    return Result(node, command, code, "", stderr)


def answer_lock(remote: FakeRemote, *, upgrade: dict | None = None, held_by: str | None = None) -> FakeRemote:
    """The cluster lock's acquire / renew / release on ``remote``, as the node-side script answers them
    (``upgrade``: the upgrade-in-progress record found next to the lock; ``held_by``: another run holds it)."""

    def is_lock(command: str) -> bool:
        return "flock /var/lib/edgeclu/.flock python3 -c" in command and LOCK_FILE in command

    def answer(command: str) -> Result:
        mode = shlex.split(command)[-4]  # lock_command: ... LOCK_FILE MODE ID OWNER TTL
        clock = {"now": 100.0, "wall": 1_000_000.0}
        if mode == "acquire" and held_by:
            held = {"id": "other", "who": held_by, "action": "up", "since": clock["wall"] - 5, "expires": 160.0}
            return Result(remote.name, command, 3, json.dumps({"held": held, **clock}), "")
        doc = {"took_over": None, "upgrade": upgrade, **clock} if mode == "acquire" else clock
        return Result(remote.name, command, 0, json.dumps(doc), "")

    remote.on(is_lock, answer)
    remote.on(lambda c: "upgrade.json" in c and "flock" not in c, "")  # the upgrade record: written, removed
    return remote


@dataclass
class FakePlaybooks:
    """ansible-runner's stand-in: ``outcomes`` maps a playbook name to a function of the run's ``limit``
    (and extravars) giving the per-host outcome; every run is in :attr:`runs`. ``probes``: per host, the
    ``k3s_node_state`` request its roles make, sent as the task event ansible-runner would send."""

    outcomes: dict[str, Callable[..., dict[str, HostRecap]]] = field(default_factory=dict)
    runs: list[dict] = field(default_factory=list)
    probes: dict[str, dict] = field(default_factory=dict)

    def __call__(self, inventory, playbook: str, *, known_hosts, accept_new=False, extravars=None, limit=None,
                 check=False, forks=None, on_event=None, verbosity=0) -> PlaybookResult:
        run = {"playbook": playbook, "limit": limit, "extravars": extravars or {}, "check": check}
        self.runs.append(run)
        if playbook not in self.outcomes:
            raise UnexpectedCommand(f"playbook {playbook} (limit {limit}) was not expected")
        hosts = self.outcomes[playbook](**run)
        for host in hosts:
            if host in self.probes and on_event is not None:
                on_event(TaskEvent(host, "look at the node", "ok", role="k3s_install", action="k3s_node_state",
                                   res={"request": self.probes[host]}))
        rc = 0 if all(h.healthy for h in hosts.values()) else 2
        return PlaybookResult(playbook, rc, "successful" if rc == 0 else "failed", hosts)


def ok(*names: str) -> dict[str, HostRecap]:
    return {n: HostRecap(ok=1, changed=1) for n in names}


def failed(name: str, why: str = "the task failed") -> dict[str, HostRecap]:
    return {name: HostRecap(failed=1, failures=[why])}


def fake_cluster(inv: Inventory, remotes: dict[str, FakeRemote], playbooks: FakePlaybooks | None = None,
                 reports: list[str] | None = None) -> Cluster:
    """A Cluster over ``inv`` whose node ``name`` is ``remotes[name]`` (any other name or address: a node
    that answers nothing, so its first command is an :class:`UnexpectedCommand`; making a Remote does no
    I/O, as with SSH), with ansible-runner replaced by ``playbooks``."""

    def connect(name: str, address: str, **_ssh) -> FakeRemote:
        return remotes[name] if name in remotes else FakeRemote(f"{name} ({address}, not expected)")

    return Cluster(inv, Path("/nonexistent/known_hosts"), connect=connect, runner=playbooks or FakePlaybooks(),
                   report=(reports.append if reports is not None else lambda _line: None))


# -- what the fake nodes say --------------------------------------------------------------
def kube_node(name: str, version: str, *, ready: str = "True", roles: tuple[str, ...] = (),
              unschedulable: bool = False, annotations: dict | None = None) -> dict:
    """One item of ``kubectl get nodes -o json``, in the shape real kubectl prints it (compare
    tests/unit/data/kubectl_get_nodes.json, a capture from k3s): name, annotations and role labels
    in metadata, ``spec.unschedulable`` when cordoned, the Ready condition, the kubelet version."""
    labels = {"kubernetes.io/hostname": name, **{f"node-role.kubernetes.io/{r}": "true" for r in roles}}
    spec = {"unschedulable": True} if unschedulable else {}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": labels, "annotations": dict(annotations or {})},
            "spec": spec,
            "status": {"conditions": [{"type": "Ready", "status": ready, "reason": "KubeletReady"}],
                       "nodeInfo": {"kubeletVersion": version}, "addresses": []}}


def node_list(*items: dict) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(items), "metadata": {}})


def inventory_file(tmp_path: Path, servers: list[str], agents: list[str], *, k3s_version: str = "v1.31.4+k3s1",
                   **cluster_vars) -> Path:
    """An inventory with these hosts at 10.0.0.10, .11, ... (the token in tmp_path, never in the home
    directory), with a comment the edits must keep."""
    import yaml

    addresses = iter(range(10, 255))
    children = {group: {"hosts": {n: {"ansible_host": f"10.0.0.{next(addresses)}"} for n in names} or None}
                for group, names in (("server", servers), ("agent", agents))}
    token = {} if "token_env" in cluster_vars else {"token_file": str(tmp_path / "token")}
    doc = {"k3s_cluster": {"children": children,
                           "vars": {"k3s_version": k3s_version, "ansible_user": "root", **token, **cluster_vars}}}
    path = tmp_path / "inventory.yml"
    path.write_text("# the user's comment\n" + yaml.safe_dump(doc, sort_keys=False))
    return path


class FakeKube:
    """``k3s kubectl`` on a FakeRemote server, over a dict of nodes: get nodes, annotate (the cordon
    mark), drain (cordons; ``stuck`` nodes' drains fail as kubectl's do), uncordon, delete node.
    Commands are the ones :mod:`edgeclu.lifecycle.kubectl` builds, matched exactly."""

    def __init__(self, server: FakeRemote, nodes: dict[str, dict], *, stuck: tuple[str, ...] = ()):
        from edgeclu.lifecycle import kubectl as k

        self.nodes = nodes  # name -> {"version", "ready", "roles", "cordoned", "mark"}
        server.on(f"{k.KUBECTL} get nodes -o json", lambda _c: self.listing())
        for name in nodes:
            server.on(k.drain_command(name, 120), lambda c, n=name: self._drain(server, c, n, n in stuck))
            server.on(k.node_command("uncordon", name), lambda _c, n=name: self._set(n, cordoned=False))
            server.on(k.node_command("delete", name), lambda _c, n=name: self.nodes.pop(n) and "")
            server.on(k.mark_command(name, None), lambda _c, n=name: self._set(n, mark=None))
            for action in ("upgrade", "remove"):
                server.on(k.mark_command(name, action), lambda _c, n=name, a=action: self._set(n, mark=a))
            server.on(k.pods_on_command(name), json.dumps({"items": [
                {"metadata": {"name": "db-0", "namespace": "default", "ownerReferences": [{"kind": "StatefulSet"}],
                              "labels": {"app": "db"}}}]}))
        server.on(k.PDBS_COMMAND, json.dumps({"items": [
            {"metadata": {"name": "db", "namespace": "default"}, "spec": {"minAvailable": 1,
             "selector": {"matchLabels": {"app": "db"}}}, "status": {"disruptionsAllowed": 0}}]}))

    def _set(self, name: str, **change) -> str:
        self.nodes[name].update(change)
        return ""

    def _drain(self, server: FakeRemote, command: str, name: str, stuck: bool) -> Result:
        self._set(name, cordoned=True)
        if stuck:  # kubectl drain's words when an eviction is refused until its timeout
            return Result(server.name, command, 1, "", 'error when evicting pods/"db-0" -n "default" (will retry '
                          "after 5s): Cannot evict pod as it would violate the pod's disruption budget.\n")
        return Result(server.name, command, 0, f"node/{name} drained\n", "")

    def listing(self) -> str:
        items = []
        for name, n in self.nodes.items():
            items.append(kube_node(name, n["version"], ready=n.get("ready", "True"), roles=n.get("roles", ()),
                                   unschedulable=n.get("cordoned", False),
                                   annotations={"edgeclu/cordoned-by": n["mark"]} if n.get("mark") else {}))
        return node_list(*items)


def probe_answer(hostname: str, *, machine: str = "aarch64", mem_kib: int = 3_900_000, k3s: str | None = None,
                 role: str | None = None, running: bool = False) -> str:
    """What a node answers to the node probe (:func:`edgeclu.node.ask`: k3s_node_state with ``facts: true``,
    the answer's parts the probe reads): ``k3s`` installed at this version as ``role``'s service (running
    or not), or no k3s."""
    from edgeclu.node import SERVICES, unit_file

    units = {unit_file(r): {"exists": bool(k3s) and r == role} for r in SERVICES}
    services = {s: {"active": "active" if k3s and running and r == role else "inactive", "enabled": "enabled"}
                for r, s in SERVICES.items()}
    return json.dumps({"machine": machine, "k3s_version_output": f"k3s version {k3s} (5ea9e3ae)\n" if k3s else "",
                       "files": units, "services": services,
                       "facts": {"hostname": hostname, "mem_kib": mem_kib, "cgroup": 2, "memory_cgroup": True,
                                 "rancher_dev": "sda2", "sudo": "root", "model": "", "throttled": None}})
