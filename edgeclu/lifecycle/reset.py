"""``edgeclu reset``: uninstall k3s and the edgeclu agent from every node (``reset.yml``),
after a backup unless told not to. Asking for confirmation is the CLI's job."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgeclu.cluster import Cluster
from edgeclu.errors import EdgecluError, RemoteError
from edgeclu.lifecycle.backup import Backup, create_backup
from edgeclu.playbook import PlaybookResult, TaskEvent


@dataclass
class ResetOutcome:
    backup: Backup | None
    result: PlaybookResult


def reset_cluster(cluster: Cluster, *, backup: bool = True, backup_root: Path,
                  on_event: Callable[[TaskEvent], None] | None = None) -> ResetOutcome:
    with cluster.locked("reset"):
        saved = None
        if backup:
            try:
                saved = create_backup(cluster, root=backup_root)
            except (EdgecluError, RemoteError) as e:
                raise EdgecluError(f"backup before reset failed: {e}. Nothing was changed; "
                                   "`edgeclu reset --no-backup` resets without one") from None
        return ResetOutcome(saved, cluster.playbook("reset.yml", on_event=on_event))
