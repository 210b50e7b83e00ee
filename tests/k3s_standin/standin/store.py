"""The cluster's state (k3s keeps it in SQLite, or in etcd with cluster-init), as one JSON document.

:class:`FileStore`: a single server without cluster-init (k3s: SQLite through kine), a JSON file under
``server/db`` with a lock. :class:`EtcdStore`: the same document under one key in the real etcd
cluster (:mod:`.etcd`), written with a compare-and-swap on its revision, so every server reads and
writes the same state and a write needs etcd's quorum.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading

from .util import read_file, write_file

KEY = "/registry/k3s-standin/state"


class FileStore:
    """JSON state file with a lock; writes are atomic renames."""

    datastore = "sqlite"

    def __init__(self, data_dir: str):
        self.dir = os.path.join(data_dir, "server", "db")
        self.path = os.path.join(self.dir, "standin-state.json")
        self._lock = threading.Lock()

    def exists(self) -> bool:
        return os.path.exists(self.path)

    def read(self) -> dict:
        return json.loads(read_file(self.path) or "{}")

    def write(self, state: dict) -> None:
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        write_file(self.path, json.dumps(state, indent=1, sort_keys=True), 0o600)

    def update(self, fn):
        with self._lock, open(os.path.join(self.dir, ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = self.read()
            result = fn(state)
            state["revision"] = state.get("revision", 0) + 1
            self.write(state)
            return result


class EtcdStore:
    """The state document in etcd; ``update`` retries when another server wrote in between."""

    datastore = "etcd"

    def __init__(self, etcd):
        self.etcd = etcd

    def read(self, serializable: bool = True) -> dict:
        """From the local member without asking the leader (like the apiserver's watch cache, reads go on
        while etcd has no quorum; writes, below, do not)."""
        value, _ = self.etcd.get(KEY, serializable)
        return json.loads(value or "{}")

    def create(self, state: dict) -> bool:
        """Write the first state of a new cluster; False if there already is one."""
        return self.etcd.put_if(KEY, json.dumps(state, sort_keys=True), 0)

    def update(self, fn):
        """``fn(state)`` on the latest state, written back if nobody wrote in between (else again): the
        read may be the local member's (a stale one only costs a retry), the write needs the quorum."""
        while True:
            value, rev = self.etcd.get(KEY, serializable=True)
            state = json.loads(value or "{}")
            result = fn(state)
            state["revision"] = state.get("revision", 0) + 1
            if self.etcd.put_if(KEY, json.dumps(state, sort_keys=True), rev):
                return result
