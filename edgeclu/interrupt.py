"""Stopping a run cleanly: SIGINT/SIGTERM while a playbook runs, and the processes it leaves.

ansible-playbook's workers, and the ssh processes they start, each call ``setsid``
(ansible's ``WorkerProcess``; ``start_new_session`` in its ssh connection), so killing the
playbook's process group (what ansible-runner does on cancel) leaves them running,
re-parented to PID 1. Every process of one run carries ``EDGECLU_RUN=<id>`` in its
environment (inherited from ansible-playbook); :func:`kill_run` finds them by that mark
and kills them, by PID, until none is left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path

from edgeclu.errors import EdgecluError

RUN_MARK = "EDGECLU_RUN"
SIGNAL_NAMES = {signal.SIGINT: "SIGINT (Ctrl-C)", signal.SIGTERM: "SIGTERM"}


class Interrupted(EdgecluError):
    """A signal stopped a run; exit code 128 + the signal (130 for SIGINT, 143 for SIGTERM)."""

    def __init__(self, signum: int, message: str):
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(message)


class Terminated(BaseException):  # noqa: N818 - like KeyboardInterrupt, for SIGTERM
    """Raised by the SIGTERM handler the CLI installs, so ``with`` blocks (the lock) still unwind."""


def raise_terminated(signum, frame) -> None:
    raise Terminated()


class Signals:
    """Inside the block SIGINT and SIGTERM only set :attr:`received` (the main thread's handlers
    are swapped; elsewhere this does nothing). The previous handlers come back on exit."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._old: dict[int, object] = {}

    def _handler(self, signum, frame) -> None:
        self.received = self.received or signum

    def __enter__(self) -> Signals:
        if threading.current_thread() is threading.main_thread():
            for s in SIGNAL_NAMES:
                self._old[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)


def marked(run_id: str, proc: Path = Path("/proc")) -> list[int]:
    """PIDs of live processes whose environment has ``EDGECLU_RUN=<run_id>`` (not this one)."""
    needle = f"{RUN_MARK}={run_id}".encode()
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:  # gone, or not ours to read
            continue
        if state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def kill_run(run_id: str, timeout: float = 10.0) -> list[int]:
    """SIGKILL every process of the run until none is left (or ``timeout``); returns those still
    there."""
    deadline = time.monotonic() + timeout
    while True:
        left = marked(run_id)
        if not left or time.monotonic() >= deadline:
            return left
        for pid in left:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)  # orphans: PID 1 reaps them (ansible-playbook itself: ansible-runner)
