"""A real etcd member per HA server, as k3s embeds one (k3s: pkg/etcd/etcd.go).

The stand-in runs Debian's ``etcd`` 3.4 as its child process (k3s runs etcd in-process), with k3s's
layout and ports: data in ``server/db/etcd`` (its member name, ``<node>-<8 hex>``, in ``name``),
clients on ``https://127.0.0.1:2379`` and ``https://<node-ip>:2379``, peers on
``https://<node-ip>:2380``, metrics on ``http://127.0.0.1:2381``, client and peer TLS with client
certificates from ``server/tls/etcd/`` (:func:`.tls.issue_etcd_certs`). It talks to etcd through
etcd's own JSON gateway (``/v3/kv/...``, ``/v3/cluster/member/...``) and uses Debian's ``etcdctl``
for snapshots (``snapshot save`` / ``snapshot restore``).

Kept small for the 2-CPU lab: ``--quota-backend-bytes`` 128 MiB, ``--snapshot-count`` 1000,
revision auto-compaction, GOMAXPROCS=1; heartbeat 250 ms / election 2.5 s (k3s: 500 ms / 5 s).
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

from . import tls
from .objects import ApiError
from .util import log, write_file

ETCD = os.environ.get("K3S_STANDIN_ETCD", "/usr/bin/etcd")
ETCDCTL = os.environ.get("K3S_STANDIN_ETCDCTL", "/usr/bin/etcdctl")
LOCAL = "https://127.0.0.1:2379"
REMOVED = "the member has been permanently removed from the cluster"  # etcd 3.4 rafthttp's errMemberRemoved
TUNING = ["--heartbeat-interval=250", "--election-timeout=2500", "--snapshot-count=1000",
          "--quota-backend-bytes=134217728", "--auto-compaction-mode=revision", "--auto-compaction-retention=1000",
          "--logger=zap", "--log-outputs=stderr", "--log-level=warn"]


class EtcdError(ApiError):
    """etcd said no (or did not answer): the API's 503, with etcd's own words."""

    def __init__(self, message: str):
        super().__init__(503, "ServiceUnavailable", message)


def db_dir(data_dir: str) -> str:
    return os.path.join(data_dir, "server", "db", "etcd")


def initialized(data_dir: str) -> bool:
    """k3s's IsInitialized: etcd has run here before (its WAL directory exists)."""
    return os.path.isdir(os.path.join(db_dir(data_dir), "member", "wal"))


def member_name(data_dir: str, node: str) -> str:
    """k3s's setName: ``<node>-<8 hex>``, made once and kept in ``db/etcd/name``."""
    path = os.path.join(db_dir(data_dir), "name")
    if os.path.exists(path):
        with open(path) as f:
            return f.read().strip()
    return save_name(data_dir, new_name(node))


def new_name(node: str) -> str:
    return f"{node}-{uuid.uuid4().hex[:8]}"


def save_name(data_dir: str, name: str) -> str:
    os.makedirs(db_dir(data_dir), mode=0o700, exist_ok=True)
    write_file(os.path.join(db_dir(data_dir), "name"), name, 0o600)
    return name


def node_of(member: str) -> str:
    """The node name in a member name ``<node>-<8 hex>`` (k3s: the part before the last hyphen)."""
    head, _, tail = member.rpartition("-")
    return head if head and len(tail) == 8 else member


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _die_with_parent() -> None:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Etcd:
    """This server's etcd member: its process, and a client for it (or for another member)."""

    def __init__(self, data_dir: str, node: str, address: str):
        self.data_dir, self.node, self.address = data_dir, node, address
        self.tls = tls.tls_dir(data_dir)
        self.proc: subprocess.Popen | None = None
        self.removed = False
        self._ctx = None

    @property
    def peer_url(self) -> str:
        return f"https://{self.address}:2380"

    @property
    def client_url(self) -> str:
        return f"https://{self.address}:2379"

    # -- the process ---------------------------------------------------------
    def start(self, name: str, cluster: str, state: str, *, reset: bool = False) -> None:
        """Run etcd: ``cluster`` is ``--initial-cluster``, ``state`` new or existing; ``reset`` is k3s's
        cluster-reset (``--force-new-cluster``, clients and peers on loopback only)."""
        tls.issue_etcd_certs(self.tls, self.address, self.node)
        self._ctx = None
        t = lambda n: os.path.join(self.tls, n)  # noqa: E731
        args = [ETCD, f"--name={name}", f"--data-dir={db_dir(self.data_dir)}",
                f"--listen-client-urls={LOCAL}" + ("" if reset else f",{self.client_url}"),
                f"--advertise-client-urls={LOCAL if reset else self.client_url}",
                f"--listen-peer-urls={'https://127.0.0.1:2380' if reset else self.peer_url}",
                f"--initial-advertise-peer-urls={self.peer_url}", f"--initial-cluster={cluster}",
                f"--initial-cluster-state={state}", "--listen-metrics-urls=http://127.0.0.1:2381",
                f"--cert-file={t(tls.ETCD_SERVER + '.crt')}", f"--key-file={t(tls.ETCD_SERVER + '.key')}",
                "--client-cert-auth", f"--trusted-ca-file={t('etcd/server-ca.crt')}",
                f"--peer-cert-file={t(tls.ETCD_PEER + '.crt')}", f"--peer-key-file={t(tls.ETCD_PEER + '.key')}",
                "--peer-client-cert-auth", f"--peer-trusted-ca-file={t('etcd/peer-ca.crt')}", *TUNING]
        if reset:
            args.append("--force-new-cluster")
        os.makedirs(db_dir(self.data_dir), mode=0o700, exist_ok=True)
        os.chmod(db_dir(self.data_dir), 0o700)
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, env={**os.environ, "GOMAXPROCS": "1"}, preexec_fn=_die_with_parent)
        threading.Thread(target=self._relay, args=(self.proc,), daemon=True).start()

    def _relay(self, proc: subprocess.Popen) -> None:
        """etcd's log goes to the journal (as k3s logs its embedded etcd); notice a removal."""
        for line in proc.stderr:
            if REMOVED in line:
                self.removed = True
            sys.stderr.write(line)
            sys.stderr.flush()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def wait_ready(self, timeout: float = 60, stop: threading.Event | None = None) -> None:
        """Until the local member answers and knows a leader (etcd exiting meanwhile is fatal)."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running():
                raise EtcdError(REMOVED if self.removed else "etcd exited (see its log above)")
            with contextlib.suppress(ApiError, OSError):
                if int(self.call("/v3/maintenance/status", {}, timeout=3).get("leader") or 0):
                    return
            if time.monotonic() > deadline or (stop is not None and stop.is_set()):
                raise EtcdError(f"etcd did not become ready in {timeout:.0f}s")
            time.sleep(0.3)

    # -- the client (etcd's JSON gateway) ------------------------------------
    def ctx(self):
        if self._ctx is None:
            self._ctx = tls.etcd_client_context(self.tls)
        return self._ctx

    def call(self, path: str, body: dict, base: str = LOCAL, timeout: float = 25) -> dict:
        """One gateway call; etcd's own error message on failure. (Without quorum etcd answers a
        request within twice its request timeout, 5 s + 2 election timeouts, so 25 s is enough.)"""
        req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self.ctx()) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            try:
                doc = json.loads(e.read() or b"{}")
            except ValueError:
                doc = {}
            message = doc.get("message") or doc.get("error") or f"HTTP {e.code}"
            raise EtcdError(message if message.startswith("etcdserver: ") else f"etcd: {message}") from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise EtcdError(f"etcd: {base} unreachable: {reason}") from None

    def get(self, key: str, serializable: bool = False) -> tuple[str | None, int]:
        """(value, mod_revision); (None, 0) when the key does not exist."""
        doc = self.call("/v3/kv/range", {"key": b64(key), "serializable": serializable})
        kvs = doc.get("kvs") or []
        if not kvs:
            return None, 0
        return base64.b64decode(kvs[0].get("value", "")).decode(), int(kvs[0].get("mod_revision") or 0)

    def put_if(self, key: str, value: str, mod_revision: int) -> bool:
        """Write ``key`` only if it is unchanged since ``mod_revision`` (0: only if it does not exist)."""
        compare = ({"target": "MOD", "key": b64(key), "mod_revision": str(mod_revision), "result": "EQUAL"}
                   if mod_revision else
                   {"target": "CREATE", "key": b64(key), "create_revision": "0", "result": "EQUAL"})
        doc = self.call("/v3/kv/txn", {"compare": [compare],
                                       "success": [{"request_put": {"key": b64(key), "value": b64(value)}}]})
        return bool(doc.get("succeeded"))

    def members(self, base: str = LOCAL) -> list[dict]:
        return self.call("/v3/cluster/member/list", {}, base=base).get("members") or []

    def member_add(self, base: str) -> None:
        self.call("/v3/cluster/member/add", {"peerURLs": [self.peer_url]}, base=base)

    def remove_peer(self, name: str, address: str) -> bool:
        """k3s's RemovePeer: the member with this name whose peer URL has this address; False if none."""
        for m in self.members():
            if m.get("name") == name and any(f"//{address}:" in u for u in m.get("peerURLs") or []):
                log("info", f"Removing name={name} id={int(m['ID'])} address={address} from etcd")
                self.call("/v3/cluster/member/remove", {"ID": m["ID"]})
                return True
        return False

    # -- snapshots (etcdctl) -------------------------------------------------
    def etcdctl(self, *args: str, endpoint: str = LOCAL) -> subprocess.CompletedProcess:
        t = lambda n: os.path.join(self.tls, n)  # noqa: E731
        return subprocess.run([ETCDCTL, f"--endpoints={endpoint}", f"--cacert={t('etcd/server-ca.crt')}",
                               f"--cert={t(tls.ETCD_CLIENT + '.crt')}", f"--key={t(tls.ETCD_CLIENT + '.key')}",
                               *args], capture_output=True, text=True, env={**os.environ, "ETCDCTL_API": "3"},
                              timeout=300)

    def snapshot_save(self, path: str) -> None:
        r = self.etcdctl("snapshot", "save", path)
        if r.returncode != 0:
            raise EtcdError((r.stderr.strip().splitlines() or ["etcdctl snapshot save failed"])[-1])


def restore(snapshot: str, data_dir: str, name: str, peer_url: str) -> None:
    """``etcdctl snapshot restore`` into a fresh ``db/etcd`` as a one-member cluster (k3s: ETCD.Restore)."""
    r = subprocess.run([ETCDCTL, "snapshot", "restore", snapshot, f"--name={name}", f"--data-dir={db_dir(data_dir)}",
                        f"--initial-cluster={name}={peer_url}", f"--initial-advertise-peer-urls={peer_url}"],
                       capture_output=True, text=True, env={**os.environ, "ETCDCTL_API": "3"}, timeout=300)
    if r.returncode != 0:
        raise EtcdError((r.stderr.strip().splitlines() or ["etcdctl snapshot restore failed"])[-1])
