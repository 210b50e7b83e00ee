"""The one context a lifecycle command works in: a :class:`Cluster`.

It holds the inventory, the SSH policy (the known_hosts file and whether an unknown host key
is trusted on first use) and the reporter, and opens everything a command reaches the nodes
through: :meth:`Cluster.remote` (a node's :class:`~edgeclu.transport.Remote`),
:meth:`Cluster.locked` (the cluster lock, on the first server), :meth:`Cluster.playbook`
(ansible-runner with the same SSH policy) and :meth:`Cluster.api` (kubectl on a server).
``converge``, ``add``, ``remove``, ``upgrade``, ``backup``, ``restore``, ``reset`` and ``token
rotate`` take one; the CLI builds it (after first contact with the nodes' host keys).

Tests hand a lifecycle function a ``Cluster`` whose ``connect`` and ``runner`` are test doubles
(``tests/fakes.py``): the decisions run as they do on real nodes.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from edgeclu.inventory import Host, Inventory
from edgeclu.lock import ClusterLock
from edgeclu.playbook import PlaybookResult, TaskEvent, run_playbook
from edgeclu.transport import Remote, SSHRemote

Report = Callable[[str], None]


def forks_for(inv: Inventory) -> int:
    """Enough forks that every agent joins at once (ansible's default of 5 would batch them)."""
    return max(10, len(inv.hosts))


@dataclass(frozen=True)
class Cluster:
    inv: Inventory
    known_hosts: Path
    accept_new: bool = False
    report: Report = print
    # how a node is reached: (inventory name, address, user, port, key file) -> Remote; SSH unless a test says
    connect: Callable[..., Remote] | None = None
    runner: Callable[..., PlaybookResult] = run_playbook  # ansible-runner; a test double in unit tests

    def with_inventory(self, inv: Inventory) -> Cluster:
        """The same cluster seen through another inventory (``add``: the one with the new node)."""
        return dataclasses.replace(self, inv=inv)

    # -- the nodes ---------------------------------------------------------------------
    def ssh(self, name: str, address: str, *, user: str, port: int = 22, key_file: str | None = None,
            connect_timeout: float = 5.0) -> Remote:
        """A machine by address, with this cluster's SSH policy (also one not in the inventory yet)."""
        if self.connect is not None:
            return self.connect(name, address, user=user, port=port, key_file=key_file)
        return SSHRemote(name, address, user=user, port=port, key_file=key_file, known_hosts=self.known_hosts,
                         accept_new=self.accept_new, report=self.report, connect_timeout=connect_timeout)

    def remote(self, host: Host | str, *, connect_timeout: float = 5.0) -> Remote:
        """The node ``host`` (a :class:`~edgeclu.inventory.Host` or its inventory name); no I/O yet."""
        h = self.inv.host(host) if isinstance(host, str) else host
        return self.ssh(h.name, h.address, user=h.user, port=h.port, key_file=h.key_file,
                        connect_timeout=connect_timeout)

    def remotes(self, hosts: Iterable[Host] | None = None) -> dict[str, Remote]:
        return {h.name: self.remote(h) for h in (self.inv.hosts if hosts is None else hosts)}

    @contextlib.contextmanager
    def locked(self, action: str, *, on: Host | None = None, remote: Remote | None = None) -> Iterator[ClusterLock]:
        """``with cluster.locked("upgrade") as lk:`` — the cluster lock, held on the first server (or ``on``;
        ``remote``: a connection to it the caller keeps using, and closes), released and closed after."""
        lock_remote = remote or self.remote(on or self.inv.servers[0])
        try:
            with ClusterLock(lock_remote, action, report=self.report) as lk:
                yield lk
        finally:
            if remote is None:
                lock_remote.close()

    def playbook(self, name: str, *, limit: str | Iterable[str] | None = None, extravars: dict | None = None,
                 check: bool = False, forks: int | None = None,
                 on_event: Callable[[TaskEvent], None] | None = None) -> PlaybookResult:
        """``name`` (``site.yml``, ``reset.yml``, ...) over this inventory, with this SSH policy."""
        if limit is not None and not isinstance(limit, str):
            limit = ",".join(limit)
        return self.runner(self.inv.path, name, known_hosts=self.known_hosts, accept_new=self.accept_new,
                           extravars=extravars, limit=limit, check=check, forks=forks or forks_for(self.inv),
                           on_event=on_event)

    def api(self, *, exclude: Iterable[str] = ()):
        """kubectl on the first server (inventory order, skipping ``exclude``) that answers."""
        from edgeclu.lifecycle.kubectl import connect_api

        return connect_api(self, exclude=exclude)
