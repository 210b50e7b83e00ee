"""Replace a user's own file (inventory, kubeconfig) safely: timestamped backup, fsync, atomic rename.

A symlink is followed: its target gets the new content and the link stays a link (dotfile managers
keep ``~/.kube/config`` as a link into a repository). The new file keeps the old one's mode and owner
unless a mode is given.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path


def backup_name(path: Path, now: float | None = None) -> Path:
    """``<file>.bak-YYYYmmdd-HHMMSS``, or ``.1``, ``.2``… when that exists (two edits in one second)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    candidate = path.with_name(f"{path.name}.bak-{stamp}")
    n, p = 0, candidate
    while p.exists() or p.is_symlink():
        n += 1
        p = candidate.with_name(f"{candidate.name}.{n}")
    return p


def backup(path: Path, *, mode: int | None = None, now: float | None = None) -> Path:
    """Copy ``path`` (through a link) beside the name the user gave it; the copy has ``mode`` (default:
    the file's own) and is fsynced."""
    src_mode = os.stat(path).st_mode & 0o777
    dst = backup_name(path, now)
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode if mode is not None else src_mode)
    with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
        shutil.copyfileobj(src, out)
        out.flush()
        os.fsync(out.fileno())
    return dst


def replace(path: Path, text: str, *, mode: int | None = None) -> Path:
    """Write ``text`` to ``path`` atomically (temporary file in the same directory, fsync, rename,
    fsync of the directory). Returns the file actually written (the link's target for a symlink)."""
    target = Path(os.path.realpath(path))
    old = target.stat() if target.exists() else None
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")  # 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            if old is not None and os.geteuid() == 0 and (old.st_uid, old.st_gid) != (0, 0):
                os.fchown(f.fileno(), old.st_uid, old.st_gid)
            os.fchmod(f.fileno(), mode if mode is not None else (old.st_mode & 0o777 if old else 0o600))
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dfd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return target
