"""Where ansible-runner's private data directory lives for one edgeclu run, and sweeping old ones.

A run's directory holds the environment ansible-playbook gets (with ``token_env``, the
cluster token), its artifacts and SSH control sockets, so it is a secret: it lives under
``$XDG_RUNTIME_DIR/edgeclu`` (a per-user tmpfs, gone at logout) or, without one, in
``<tmp>/edgeclu-<uid>``; either is a 0700 directory owned by the user, which edgeclu checks
(a directory someone else made, or a symlink, is refused). Each run's directory is named
after the process that made it (pid and start time), so a run killed with SIGKILL (which
cannot clean up) is swept by the next run: :func:`sweep` removes every directory whose
process is gone.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

from edgeclu.errors import EdgecluError

PREFIX = "run-"


def root_dir(env: dict[str, str] | None = None) -> Path:
    """The per-user 0700 directory that holds run directories (made if needed, checked always)."""
    env = os.environ if env is None else env
    runtime = env.get("XDG_RUNTIME_DIR")
    uid = os.getuid()
    if runtime and os.path.isabs(runtime) and _owned_private(Path(runtime), uid):
        root = Path(runtime) / "edgeclu"
    else:
        root = Path(tempfile.gettempdir()) / f"edgeclu-{uid}"
    try:
        os.mkdir(root, 0o700)
    except FileExistsError:
        pass
    except OSError as e:
        raise EdgecluError(f"cannot make {root} for the playbook run: {e.strerror}") from None
    if not _owned_private(root, uid):
        raise EdgecluError(f"{root} is not a directory of yours with mode 0700 (it holds secrets during a run); "
                           "remove it or fix its owner and mode")
    return root


def _owned_private(path: Path, uid: int) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == uid and stat.S_IMODE(st.st_mode) & 0o077 == 0


def _start_time(pid: int) -> str | None:
    """The process's start time (field 22 of /proc/<pid>/stat), or None if it does not exist."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[-1].split()[19]


def owner_tag(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{pid}-{_start_time(pid) or 0}"


def is_stale(name: str) -> bool:
    """True for a run directory whose process no longer runs (a pid reused by another process
    has another start time)."""
    parts = name[len(PREFIX):].split("-")
    if not name.startswith(PREFIX) or len(parts) < 3 or not parts[0].isdigit():
        return False
    pid, started = int(parts[0]), parts[1]
    return _start_time(pid) != started


def sweep(root: Path) -> list[str]:
    """Remove the run directories left by runs that died; returns their names."""
    gone = []
    for entry in sorted(os.listdir(root)):
        if entry.startswith(PREFIX) and is_stale(entry):
            shutil.rmtree(root / entry, ignore_errors=True)
            gone.append(entry)
    return gone


def new_run_dir() -> Path:
    """A fresh 0700 run directory, after sweeping what dead runs left behind."""
    root = root_dir()
    sweep(root)
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{owner_tag()}-", dir=root))
