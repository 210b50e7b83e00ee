"""A cluster-wide lock, so two `up`/`upgrade`/`remove` runs never work on one cluster at once.

The lock lives on the cluster itself (the first server), not on the controller, so
two laptops are excluded as well as two terminals. It is a lease: a small JSON file
with an owner and an expiry, renewed by a background thread while the run lasts.
A run that dies (crash, kill -9, lost network) stops renewing, and after ``ttl``
seconds the lock is stale and the next run takes it over, saying so. Check-and-set
happens under ``flock`` on the node, so two runs racing for it cannot both win.

The expiry is kept on the node's boot-time clock (``CLOCK_BOOTTIME``) with its boot id,
never its wall clock: a Raspberry Pi has no RTC and steps its clock at NTP sync. After a
reboot of the node the old expiry means nothing, so the lease then lasts ``ttl`` from the
first look in the new boot.

It fences: the holder counts its lease as lost once a renewal was refused (another run
took it) or none succeeded for ``SAFETY * ttl`` seconds (sent-time of the last good one,
on the controller's monotonic clock), which is before the node can call it stale. A lost
lease cancels a running playbook (:func:`lease_problem`, polled by
:mod:`edgeclu.playbook`) and stops the run before its next step (:meth:`ClusterLock.check`);
destructive steps ask the node first (:meth:`ClusterLock.confirm`).
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import threading
import time
import uuid
from dataclasses import dataclass

from edgeclu.errors import EdgecluError, Unreachable
from edgeclu.node import STATE_DIR

LOCK_DIR = STATE_DIR
LOCK_FILE = f"{LOCK_DIR}/cluster.lock"
UPGRADE_FILE = f"{LOCK_DIR}/upgrade.json"  # an upgrade in progress: its target (see lifecycle/upgrade.py)
DEFAULT_TTL = 60.0
TTL_ENV = "EDGECLU_LOCK_TTL"
SAFETY = 0.8  # the holder trusts its lease for this share of the ttl after its last good renewal


class LockHeld(EdgecluError):
    exit_code = 4


class LockLost(EdgecluError):
    """This run's lease ran out or was taken over: it stops before changing anything else."""

    exit_code = 4


def lock_ttl() -> float:
    """The lease's length: ``$EDGECLU_LOCK_TTL`` seconds, else 60."""
    raw = os.environ.get(TTL_ENV, "")
    try:
        value = float(raw) if raw else DEFAULT_TTL
    except ValueError:
        raise EdgecluError(f"${TTL_ENV}: {raw!r} is not a number of seconds") from None
    if value < 2:
        raise EdgecluError(f"${TTL_ENV}: {raw!r}: the lease must last at least 2 seconds")
    return value


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
now = time.clock_gettime(time.CLOCK_BOOTTIME)  # not time.time(): the wall clock may step
wall = time.time()  # only to show since when
boot = open("/proc/sys/kernel/random/boot_id").read().strip()
def load(p):
    try:
        with open(p) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
def write(doc):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.replace(tmp, path)
def answer(code, **kw):
    kw.update(now=now, wall=wall)
    print(json.dumps(kw))
    sys.exit(code)
cur = load(path)
if not isinstance(cur, dict) or "id" not in cur or "expires" not in cur:
    cur = None
mine = cur is not None and cur["id"] == owner_id
if cur is not None and not mine and cur.get("boot") != boot:
    # written in another boot: its expiry counted on that boot's clock; the lease lasts ttl from now
    cur.update(boot=boot, expires=now + float(cur.get("ttl") or ttl))
    write(cur)
if mode == "acquire":
    if cur is not None and not mine and cur["expires"] > now:
        answer(3, held=cur)
    doc = json.loads(owner_json)
    doc.update(since=wall, boot=boot, expires=now + ttl, ttl=ttl)
    write(doc)
    answer(0, took_over=None if mine else cur, upgrade=load(os.path.join(os.path.dirname(path), "upgrade.json")))
elif mode == "renew":
    if not mine:
        answer(4, lost=cur)
    cur.update(boot=boot, expires=now + ttl)
    write(cur)
    answer(0)
elif mode == "release":
    if mine:
        os.remove(path)
    answer(0)
"""


def lock_command(mode: str, owner: Owner, ttl: float) -> str:
    """The shell command that acquires, renews or releases the lease on a node (pure)."""
    args = " ".join(shlex.quote(a) for a in (
        LOCK_FILE, mode, owner.id,
        json.dumps({"id": owner.id, "who": owner.who, "action": owner.action}), str(ttl)))
    return (f"mkdir -p {LOCK_DIR} && chmod 700 {LOCK_DIR} && "
            f"flock {LOCK_DIR}/.flock python3 -c {shlex.quote(_PY)} {args}")


def record_command(path: str, record: dict | None) -> str:
    """Write (or, for None, remove) a run's record next to the lock, root-only (pure)."""
    if record is None:
        return f"rm -f {path}"
    return (f"mkdir -p {LOCK_DIR} && chmod 700 {LOCK_DIR} && umask 077 && "
            f"printf '%s\\n' {shlex.quote(json.dumps(record))} > {path}.tmp && "
            f"mv -f {path}.tmp {path}")


def upgrade_record_command(record: dict | None) -> str:
    """Write (or, for None, remove) the upgrade-in-progress record next to the lock (pure)."""
    return record_command(UPGRADE_FILE, record)


def read_record(remote, path: str, *, timeout: float | None = 10) -> dict | None:
    """A record next to the lock on ``remote`` (None: none, or not a JSON object)."""
    r = remote.run(f"cat {path} 2>/dev/null || true", sudo=True, timeout=timeout)
    try:
        doc = json.loads(r.stdout) if r.stdout.strip() else None
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def held_message(held: dict, answer: dict, node: str) -> str:
    """``answer``: the node's reply, with its wall clock (``wall``) and boot-time clock (``now``)."""
    age = answer["wall"] - held.get("since", answer["wall"])
    left = held["expires"] - answer["now"]
    return (f"cluster is locked by {held['who']} running `{held['action']}` since {age:.0f}s ago "
            f"(lock on {node}:{LOCK_FILE}; it goes stale {left:.0f}s after that run stops renewing it). "
            "Wait for it to finish, or stop it.")


_ACTIVE: list[ClusterLock] = []  # the leases this process holds now


def lease_problem() -> str | None:
    """Why a lease this process holds is no longer good, or None (also when it holds none). A lease
    whose renewal was stopped governs no run of this process any more: it is not asked."""
    return next((why for lk in list(_ACTIVE) if not lk._stop.is_set() and (why := lk.problem())), None)


class ClusterLock:
    """``with ClusterLock(remote, "up"):`` — raises :class:`LockHeld` if another run holds the cluster."""

    def __init__(self, remote, action: str, *, ttl: float | None = None, renew_every: float | None = None,
                 report=print):
        self.remote, self.owner, self.ttl = remote, Owner.current(action), ttl or lock_ttl()
        self.renew_every = renew_every or self.ttl / 4
        self.report = report
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._io = threading.Lock()  # one lock command at a time on this connection
        self._good_until = 0.0  # controller monotonic time until which the lease is surely ours
        self.lost: str | None = None  # why the lease is gone
        self.upgrade: dict | None = None  # the upgrade-in-progress record found when the lock was taken

    def _call(self, mode: str):
        sent = time.monotonic()
        return sent, self._bounded(lambda: self.remote.run(
            lock_command(mode, self.owner, self.ttl), sudo=True, check=False, timeout=self._wait))

    @property
    def _wait(self) -> float:
        """Seconds a lock command may take: 5, less for a short lease."""
        return max(min(self.ttl / 2, 5.0), 1.0)

    def _bounded(self, call):
        """``call()`` (one command on the lock's node), given up on after a deadline: SSH on a dead link
        can wait far longer than its command timeout (opening a channel), and the lease cannot."""
        deadline = self._wait + 2
        if not self._io.acquire(timeout=deadline):
            raise Unreachable(self.remote.name, "an earlier cluster lock command is still waiting for an answer")
        box: dict = {}

        def run() -> None:
            try:
                box["result"] = call()
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                box["error"] = e
            finally:
                self._io.release()

        worker = threading.Thread(target=run, name="cluster-lock-call", daemon=True)
        worker.start()
        worker.join(deadline)
        if worker.is_alive():  # closing the connection wakes it up; the next call reconnects
            self.remote.close()
            raise Unreachable(self.remote.name, f"no answer to a cluster lock command in {deadline:g}s")
        if "error" in box:
            raise box["error"]
        return box["result"]

    def acquire(self) -> None:
        sent, r = self._call("acquire")
        if r.exit_code == 3:
            doc = json.loads(r.stdout)
            raise LockHeld(held_message(doc["held"], doc, self.remote.name))
        if r.exit_code != 0:
            raise EdgecluError(f"{self.remote.name}: cannot take the cluster lock: {r.stderr.strip()}")
        doc = json.loads(r.stdout)
        self._good_until = sent + SAFETY * self.ttl
        self.upgrade = doc.get("upgrade") if isinstance(doc.get("upgrade"), dict) else None
        stale = doc.get("took_over")
        if stale:
            self.report(f"took over a stale cluster lock left by {stale['who']} ({stale['action']})")
        _ACTIVE.append(self)
        self._thread = threading.Thread(target=self._renew, name="cluster-lock", daemon=True)
        self._thread.start()

    def _renew_once(self) -> None:
        """One renewal; sets :attr:`lost` (and raises :class:`LockLost`) if another run has it."""
        sent, r = self._call("renew")
        if r.exit_code == 0:
            self._good_until = sent + SAFETY * self.ttl
            return
        if r.exit_code == 4:
            cur = (json.loads(r.stdout or "{}").get("lost") or {})
            self.lost = (f"the cluster lock on {self.remote.name} was taken over by "
                         f"{cur.get('who', 'another run')} ({cur.get('action', '?')})")
            raise LockLost(self.lost)
        raise EdgecluError(f"{self.remote.name}: renewing the cluster lock failed: {r.stderr.strip()}")

    def _renew(self) -> None:
        error = "no answer"
        while not self._stop.wait(self.renew_every):
            try:
                self._renew_once()
            except LockLost:
                self.report(f"warning: {self.lost}")
                return
            except Exception as e:  # noqa: BLE001 - a missed renewal is retried while the lease lasts
                error = str(e)
            if self.problem():
                self.lost = self.problem()
                self.report(f"warning: {self.lost} (last error: {error})")
                return

    def problem(self) -> str | None:
        """Why this lease is no longer surely ours, or None."""
        if self.lost:
            return self.lost
        if self._thread is not None and time.monotonic() > self._good_until:
            return (f"the cluster lock on {self.remote.name} could not be renewed for "
                    f"{SAFETY * self.ttl:.0f}s; another run may have taken it over")
        return None

    def check(self, before: str) -> None:
        """Raise :class:`LockLost` if the lease is gone, naming the step that will not run."""
        why = self.problem()
        if why:
            raise LockLost(f"{why}: stopped before {before}; nothing of that was done. Run the command "
                           "again once the cluster answers")

    def confirm(self, before: str) -> None:
        """Ask the node, now, whether the lease is still ours (a renewal); before destructive steps."""
        self.check(before)
        try:
            self._renew_once()
        except LockLost:
            self.check(before)
        except Exception as e:  # noqa: BLE001 - unreachable, timed out: not confirmed
            raise LockLost(f"could not confirm the cluster lock on {self.remote.name} ({e}): stopped before "
                           f"{before}; nothing of that was done") from None

    def set_upgrade(self, record: dict | None) -> None:
        """Record (or clear, with None) the upgrade in progress next to the lock, while holding it."""
        self.write_record(UPGRADE_FILE, record)
        self.upgrade = record

    def write_record(self, path: str, record: dict | None) -> None:
        """Write (or clear, with None) a record at ``path`` next to the lock, while holding it."""
        self._bounded(lambda: self.remote.run(record_command(path, record), sudo=True, timeout=self._wait))

    def read_record(self, path: str) -> dict | None:
        """The record at ``path`` next to the lock (None: none, or not a JSON object)."""
        return self._bounded(lambda: read_record(self.remote, path, timeout=self._wait))

    def release(self) -> None:
        self._stop.set()
        if self in _ACTIVE:
            _ACTIVE.remove(self)
        if self._thread:
            self._thread.join(timeout=5)
        try:
            self._call("release")
        except Exception:  # noqa: BLE001 - unreachable: the lease simply expires
            self.report(f"could not release the cluster lock on {self.remote.name}; it expires in {self.ttl:.0f}s")

    def __enter__(self) -> ClusterLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
