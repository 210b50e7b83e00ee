"""``edgeclu reset``: uninstall k3s and the edgeclu agent from every node (``reset.yml``),
after a backup unless told not to. Asking for confirmation is the CLI's job."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgeclu.converge import forks_for
from edgeclu.errors import EdgecluError, RemoteError
from edgeclu.inventory import Inventory
from edgeclu.lifecycle.backup import Backup, create_backup
from edgeclu.lock import ClusterLock
from edgeclu.playbook import PlaybookResult, TaskEvent, run_playbook
from edgeclu.transport import remote_for


@dataclass
class ResetOutcome:
    backup: Backup | None
    result: PlaybookResult


def reset_cluster(inv: Inventory, *, backup: bool = True, backup_root: Path, known_hosts: Path,
                  accept_new: bool = False, report: Callable[[str], None] = print,
                  on_event: Callable[[TaskEvent], None] | None = None) -> ResetOutcome:
    lock_remote = remote_for(inv.servers[0], known_hosts=known_hosts, accept_new=accept_new, report=report)
    try:
        with ClusterLock(lock_remote, "reset", report=report):
            saved = None
            if backup:
                try:
                    saved = create_backup(inv, root=backup_root, known_hosts=known_hosts, accept_new=accept_new,
                                          report=report)
                except (EdgecluError, RemoteError) as e:
                    raise EdgecluError(f"backup before reset failed: {e}. Nothing was changed; "
                                       "`edgeclu reset --no-backup` resets without one") from None
            result = run_playbook(inv.path, "reset.yml", known_hosts=known_hosts, accept_new=accept_new,
                                  forks=forks_for(inv), on_event=on_event)
            return ResetOutcome(saved, result)
    finally:
        lock_remote.close()
