"""Bits shared by the lifecycle commands (add, remove, upgrade, backup, restore, reset)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

BackupDir = Annotated[
    Path | None, typer.Option("--backup-dir", envvar="EDGECLU_BACKUP_DIR",
                              help="Where backups are kept [default: ~/.local/share/edgeclu/backups].")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help=(
    "Show every task per node as Ansible names it, instead of the phases."))]
DrainTimeout = Annotated[
    float, typer.Option("--drain-timeout", help="Seconds a drain may take before the pods that would not "
                                                 "move are reported.")]


def backup_root(option: Path | None) -> Path:
    from edgeclu.lifecycle.backup import default_root

    return option.expanduser() if option else default_root()
