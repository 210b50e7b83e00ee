"""The store (k3s keeps this in SQLite or etcd): one JSON state file with a lock."""

from __future__ import annotations

import fcntl
import json
import os
import threading

from .util import read_file, write_file


class Store:
    """JSON state file with a lock; writes are atomic renames."""

    def __init__(self, data_dir: str):
        self.dir = os.path.join(data_dir, "server", "db")
        self.path = os.path.join(self.dir, "standin-state.json")
        self.role_path = os.path.join(self.dir, "standin-role.json")
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

    def role(self) -> dict | None:
        text = read_file(self.role_path)
        return json.loads(text) if text else None

    def set_role(self, role: dict) -> None:
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        write_file(self.role_path, json.dumps(role), 0o600)
