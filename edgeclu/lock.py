"""A cluster-wide lock, so two `up`/`upgrade`/`remove` runs never work on one cluster at once.

The lock lives on the cluster itself (the first server), not on the controller, so
two laptops are excluded as well as two terminals. It is a lease: a small JSON file
with an owner and an expiry, renewed by a background thread while the run lasts.
A run that dies (crash, kill -9, lost network) stops renewing, and after ``ttl``
seconds the lock is stale and the next run takes it over, saying so. Check-and-set
happens under ``flock`` on the node, so two runs racing for it cannot both win.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import threading
import uuid
from dataclasses import dataclass

from edgeclu.errors import EdgecluError

LOCK_DIR = "/var/lib/edgeclu"
LOCK_FILE = f"{LOCK_DIR}/cluster.lock"


class LockHeld(EdgecluError):
    exit_code = 4


@dataclass(frozen=True)
class Owner:
    id: str
    who: str  # user@host pid N
    action: str

    @classmethod
    def current(cls, action: str) -> Owner:
        who = f"{os.environ.get('USER', 'unknown')}@{socket.gethostname()} pid {os.getpid()}"
        return cls(uuid.uuid4().hex, who, action)


_PY = r"""
import json, os, sys, time
path, mode, owner_id, owner_json, ttl = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
now = time.time()
try:
    cur = json.load(open(path))
except (OSError, ValueError):
    cur = None
def write(doc):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.replace(tmp, path)
if mode == "acquire":
    if cur and cur["id"] != owner_id and cur["expires"] > now:
        print(json.dumps({"held": cur, "now": now})); sys.exit(3)
    doc = json.loads(owner_json); doc.update(since=now, expires=now + ttl)
    write(doc)
    print(json.dumps({"took_over": cur if cur and cur["id"] != owner_id else None, "now": now}))
elif mode == "renew":
    if not cur or cur["id"] != owner_id:
        print(json.dumps({"lost": cur})); sys.exit(4)
    cur["expires"] = now + ttl; write(cur); print("{}")
elif mode == "release":
    if cur and cur["id"] == owner_id:
        os.remove(path)
    print("{}")
"""


def lock_command(mode: str, owner: Owner, ttl: float) -> str:
    """The shell command that acquires, renews or releases the lease on a node (pure)."""
    args = " ".join(shlex.quote(a) for a in (
        LOCK_FILE, mode, owner.id,
        json.dumps({"id": owner.id, "who": owner.who, "action": owner.action}), str(ttl)))
    return (f"mkdir -p {LOCK_DIR} && chmod 700 {LOCK_DIR} && "
            f"flock {LOCK_DIR}/.flock python3 -c {shlex.quote(_PY)} {args}")


def held_message(held: dict, now: float, node: str) -> str:
    age = now - held["since"]
    left = held["expires"] - now
    return (f"cluster is locked by {held['who']} running `{held['action']}` since {age:.0f}s ago "
            f"(lock on {node}:{LOCK_FILE}; it goes stale {left:.0f}s after that run stops renewing it). "
            "Wait for it to finish, or stop it.")


class ClusterLock:
    """``with ClusterLock(remote, "up"):`` — raises :class:`LockHeld` if another run holds the cluster."""

    def __init__(self, remote, action: str, *, ttl: float = 60.0, renew_every: float | None = None,
                 report=print):
        self.remote, self.owner, self.ttl = remote, Owner.current(action), ttl
        self.renew_every = renew_every or ttl / 4
        self.report = report
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False

    def acquire(self) -> None:
        r = self.remote.run(lock_command("acquire", self.owner, self.ttl), sudo=True, check=False)
        if r.exit_code == 3:
            doc = json.loads(r.stdout)
            raise LockHeld(held_message(doc["held"], doc["now"], self.remote.name))
        if r.exit_code != 0:
            raise EdgecluError(f"{self.remote.name}: cannot take the cluster lock: {r.stderr.strip()}")
        stale = json.loads(r.stdout).get("took_over")
        if stale:
            self.report(f"took over a stale cluster lock left by {stale['who']} ({stale['action']})")
        self._thread = threading.Thread(target=self._renew, name="cluster-lock", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.renew_every):
            try:
                r = self.remote.run(lock_command("renew", self.owner, self.ttl), sudo=True, check=False)
                if r.exit_code == 4:
                    self.lost = True
                    self.report("warning: the cluster lock was taken by another run")
                    return
            except Exception:  # noqa: BLE001, S112 - a missed renewal is retried; the lease covers gaps
                continue

    def release(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        try:
            self.remote.run(lock_command("release", self.owner, self.ttl), sudo=True, check=False)
        except Exception:  # noqa: BLE001 - unreachable: the lease simply expires
            self.report(f"could not release the cluster lock on {self.remote.name}; it expires in {self.ttl:.0f}s")

    def __enter__(self) -> ClusterLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
