"""``edgeclu backup``: the cluster's datastore and token, copied to the controller.

An embedded-etcd cluster gets ``k3s etcd-snapshot save`` on its first server; a
single server (SQLite) gets a copy of ``/var/lib/rancher/k3s/server/db`` (SQLite files
through SQLite's online backup API, so a busy database is copied consistently). With it
go the server token (a snapshot can only be restored with the token it was taken with)
and each node's ``/etc/rancher/node/password`` (the restored datastore only takes the
nodes back with their old passwords, e.g. after ``edgeclu reset``).

A backup is a directory ``<root>/<cluster>-<UTC time>/`` (mode 0700) of 0600 files and a
``meta.json`` with their sha256; ``root`` is ``$EDGECLU_BACKUP_DIR`` or
``~/.local/share/edgeclu/backups``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgeclu.cluster import Cluster
from edgeclu.errors import EdgecluError
from edgeclu.fleet import on_all
from edgeclu.lifecycle.kubectl import ClusterApi
from edgeclu.node import NODE_PASSWORD, SERVER_DIR, SERVER_TOKEN, SNAPSHOT_DIR

Report = Callable[[str], None]

SNAPSHOT_NAME = "edgeclu"
_SAVED_RE = re.compile(r"Saving etcd snapshot to (\S+)")
_SAVED_JSON_RE = re.compile(r'"msg":"saved","path":"([^"]+)"')
# k3s >= 1.27 (the CLI asks the server to save): only `Snapshot <name> saved.`; the file is in the snapshot dir
_SAVED_NAME_RE = re.compile(r"Snapshot ([A-Za-z0-9][A-Za-z0-9._-]*) saved\.")

# Runs on the server as root: a consistent copy of server/db (without snapshots and etcd)
# as a tar.gz in a new temporary file, whose path it prints.
SQLITE_COPY = r"""
import os, shutil, sqlite3, sys, tarfile, tempfile
src = sys.argv[1]
stage = tempfile.mkdtemp(prefix="edgeclu-db-")
dst = os.path.join(stage, "db")
os.mkdir(dst, 0o700)
for name in sorted(os.listdir(src)):
    path = os.path.join(src, name)
    if name in ("snapshots", "etcd") or name.endswith(("-wal", "-shm", "-journal")) or not os.path.isfile(path):
        continue
    if name.endswith(".db"):
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as a, sqlite3.connect(os.path.join(dst, name)) as b:
            a.backup(b)
    else:
        shutil.copy2(path, os.path.join(dst, name))
fd, out = tempfile.mkstemp(prefix="edgeclu-db-", suffix=".tar.gz")
with os.fdopen(fd, "wb") as f, tarfile.open(fileobj=f, mode="w:gz") as tar:
    tar.add(dst, arcname="db")
shutil.rmtree(stage)
print(out)
"""


def default_root(env: dict | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("EDGECLU_BACKUP_DIR"):
        return Path(env["EDGECLU_BACKUP_DIR"]).expanduser()
    data = Path(env["XDG_DATA_HOME"]).expanduser() if env.get("XDG_DATA_HOME") else Path.home() / ".local/share"
    return data / "edgeclu" / "backups"


def snapshot_path(output: str) -> str | None:
    """Where ``k3s etcd-snapshot save`` wrote the snapshot, from its log (pure): the path when it logs one
    (older k3s), else the saved snapshot's name in k3s's snapshot dir."""
    m = _SAVED_RE.search(output) or _SAVED_JSON_RE.search(output)
    if m:
        return m.group(1).rstrip('".')
    m = _SAVED_NAME_RE.search(output)
    return f"{SNAPSHOT_DIR}/{m.group(1)}" if m else None


def backup_name(cluster: str, when: dt.datetime) -> str:
    return f"{cluster}-{when.astimezone(dt.UTC):%Y%m%d-%H%M%S}"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class Backup:
    path: Path
    meta: dict

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def datastore(self) -> str:
        return self.meta["datastore"]

    @property
    def data_file(self) -> Path:
        return self.path / self.meta["data_file"]

    @property
    def size(self) -> int:
        return sum(p.stat().st_size for p in self.path.iterdir() if p.is_file())

    def token(self) -> str:
        return (self.path / "token").read_text().strip()

    def node_passwords(self) -> dict[str, str]:
        f = self.path / "node-passwords.json"
        return json.loads(f.read_text()) if f.exists() else {}

    def summary(self) -> dict:
        m = self.meta
        return {"name": self.name, "created": m["created"], "cluster": m["cluster"], "datastore": m["datastore"],
                "server": m["server"], "k3s_version": m.get("k3s_version"), "nodes": m.get("nodes", []),
                "size": self.size, "path": str(self.path)}


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def _fetch(remote, src: str, dst: Path) -> None:
    remote.get(src, dst, sudo=True)
    os.chmod(dst, 0o600)


def create_backup(cluster: Cluster, *, root: Path, api: ClusterApi | None = None) -> Backup:
    """Take a backup through the first server that answers; returns it (already on disk)."""
    inv, report = cluster.inv, cluster.report
    own_api = api is None
    api = api or cluster.api()
    try:
        nodes = api.nodes()
        server = api.server
        etcd = "etcd" in nodes[server].roles if server in nodes else len(inv.servers) > 1
        now = dt.datetime.now(dt.UTC)
        _private_dir(root)
        target = root / backup_name(inv.vars["cluster_name"], now)
        n = 1
        while target.exists():
            target = root / f"{backup_name(inv.vars['cluster_name'], now)}.{n}"
            n += 1
        _private_dir(target)
        remote = api.remote
        if etcd:
            report(f"{server}: k3s etcd-snapshot save")
            r = remote.run(f"k3s etcd-snapshot save --name {SNAPSHOT_NAME}", sudo=True, timeout=600)
            path = snapshot_path(r.stdout + r.stderr)
            if not path:
                raise EdgecluError(f"{server}: k3s etcd-snapshot save did not say where it saved the snapshot")
            data_file = os.path.basename(path)
            _fetch(remote, path, target / data_file)
        else:
            report(f"{server}: copying the SQLite datastore ({SERVER_DIR}/db)")
            r = remote.run(f"python3 -c {shlex.quote(SQLITE_COPY)} {SERVER_DIR}/db", sudo=True, timeout=600)
            tmp = r.stdout.strip().splitlines()[-1]
            data_file = "db.tar.gz"
            try:
                _fetch(remote, tmp, target / data_file)
            finally:
                remote.run(f"rm -f {shlex.quote(tmp)}", sudo=True, check=False)
        _fetch(remote, SERVER_TOKEN, target / "token")
        passwords = _node_passwords(cluster)
        _write_private(target / "node-passwords.json", json.dumps(passwords, indent=1, sort_keys=True) + "\n")
        files = sorted(p.name for p in target.iterdir())
        meta = {"schema": 1, "cluster": inv.vars["cluster_name"], "created": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "datastore": "etcd" if etcd else "sqlite", "server": server, "data_file": data_file,
                "k3s_version": nodes[server].version if server in nodes else None, "nodes": sorted(nodes),
                "sha256": {f: sha256_file(target / f) for f in files}}
        _write_private(target / "meta.json", json.dumps(meta, indent=1) + "\n")
        report(f"backup {target.name}: {meta['datastore']} datastore of {server}, token, "
               f"{len(passwords)} node password(s) -> {target}")
        return Backup(target, meta)
    finally:
        if own_api:
            api.close()


def _node_passwords(cluster: Cluster) -> dict[str, str]:
    inv = cluster.inv
    remotes = cluster.remotes()

    def read(host) -> str | None:
        r = remotes[host.name].run(f"cat {NODE_PASSWORD} 2>/dev/null", sudo=True, check=False, timeout=30)
        return (r.stdout.strip() or None) if r.ok else None

    try:
        results = on_all(inv.hosts, read)
    finally:
        for r in remotes.values():
            r.close()
    for name, err in results.failed.items():
        cluster.report(f"warning: {name}: node password not saved: {err}")
    return {n: v for n, v in results.succeeded.items() if v}


def list_backups(root: Path) -> list[Backup]:
    """Backups under ``root``, oldest first (directories without a readable meta.json are ignored)."""
    found = []
    for meta in sorted(root.glob("*/meta.json")) if root.is_dir() else []:
        try:
            found.append(Backup(meta.parent, json.loads(meta.read_text())))
        except (OSError, ValueError):
            continue
    return sorted(found, key=lambda b: (b.meta.get("created", ""), b.name))


REQUIRED_FILES = ("token",)  # with data_file; node-passwords.json is listed when present


def _plain_name(name) -> bool:
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\0" not in name


def backup_problem(path: Path, meta) -> str | None:
    """Why the backup in ``path`` cannot be trusted, or None: ``meta.json`` lists a sha256 for every file
    in the directory and each matches, every name (``data_file`` too) is a plain file name inside it, and
    the files restore needs are there. A regular file each, never a link out of the directory."""
    if not isinstance(meta, dict):
        return "meta.json is not a JSON object"
    digests = meta.get("sha256")
    if not isinstance(digests, dict) or not digests:
        return "meta.json lists no sha256 digests"
    if meta.get("datastore") not in ("etcd", "sqlite"):
        return f"meta.json: datastore {meta.get('datastore')!r} is not etcd or sqlite"
    data_file = meta.get("data_file")
    for name in [*digests, data_file]:
        if not _plain_name(name):
            return f"meta.json names {name!r}, which is not a file name inside the backup directory"
    for name in [data_file, *REQUIRED_FILES]:
        if name not in digests:
            return f"{name} is not listed in meta.json"
    present = {p.name for p in path.iterdir()} - {"meta.json"}
    unlisted = sorted(present - set(digests))
    if unlisted:
        return f"{', '.join(unlisted)} not listed in meta.json"
    for name, digest in digests.items():
        f = path / name
        if f.is_symlink() or not f.is_file():
            return f"{name} is missing or not a regular file"
        if sha256_file(f) != digest:
            return f"{name} does not match its sha256 in meta.json"
    return None


def load_backup(ref: str, root: Path) -> Backup:
    """A backup by name (under ``root``) or by path, checked whole (:func:`backup_problem`)."""
    path = Path(ref).expanduser()
    if not (path / "meta.json").exists():
        path = root / ref
    try:
        meta = json.loads((path / "meta.json").read_text())
    except (OSError, ValueError):
        names = ", ".join(b.name for b in list_backups(root)) or "none"
        raise EdgecluError(f"no backup {ref!r} (in {root}: {names})") from None
    problem = backup_problem(path, meta)
    if problem:
        raise EdgecluError(f"backup {path.name}: {problem}; refusing to restore it")
    return Backup(path, meta)
