"""One k3s server process: TLS on 6443, the store, and its own kubelet heartbeat.

Two kinds of request, as on a real k3s server's port 6443: k3s's own supervisor paths (``/cacerts``,
``/ping`` open; ``/v1-standin/...`` and ``/db/snapshot`` with the token as basic auth, for joining
servers, agents and ``k3s etcd-snapshot``: k3s's are ``/v1-k3s/...`` and ``/db/...``), and the
Kubernetes API (:mod:`.kube`), which takes only a client certificate signed by the cluster's client CA
(401 otherwise). Every server answers both from the store: a file (SQLite's place) or, for HA, the
real etcd cluster this server is a member of (:mod:`.etcd`), so with etcd's quorum lost a write fails
with 503 and etcd's words.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import platform
import secrets
import socket
import ssl
import threading
import time

import yaml

from . import etcd, kube, tls
from .build import ARCH, VERSION
from .join import (
    ca_hash,
    check_token_ca,
    ensure_node_password,
    fetch_ca,
    request,
    rotate_token,
    split_token,
    token_user,
)
from .objects import ApiError, delete_node, heartbeat, node_roles, register_node
from .store import EtcdStore, FileStore
from .util import (
    DATA_DIR,
    KUBECONFIG,
    component_arg,
    default_ip,
    fatal,
    log,
    os_image,
    read_file,
    rfc3339,
    sd_notify,
    sha256,
    write_file,
)

NODE_NAME_ANNOTATION = "etcd.k3s.cattle.io/node-name"  # k3s pkg/etcd: NodeNameAnnotation, NodeAddressAnnotation
NODE_ADDRESS_ANNOTATION = "etcd.k3s.cattle.io/node-address"


class Server:
    """One k3s server process: API on 6443, the store (SQLite-like file, or the real etcd), its kubelet heartbeat."""

    def __init__(self, config: dict):
        self.config = config
        self.data_dir = config.get("data-dir") or DATA_DIR
        self.name = config.get("node-name") or socket.gethostname()
        self.grace = component_arg(config, "kube-controller-manager-arg", "node-monitor-grace-period", 40)
        self.interval = component_arg(config, "kubelet-arg", "node-status-update-frequency", 10)
        self.port = int(config.get("https-listen-port") or 6443)
        self.tls = tls.tls_dir(self.data_dir)
        self.etcd: etcd.Etcd | None = None
        self.store: FileStore | EtcdStore | None = None
        self.member = ""  # this server's etcd member name
        self.pending_removals: list[tuple[str, str]] = []
        self.stop = threading.Event()

    def apply(self, op: str, *args):
        """A state change through the store (etcd: needs its quorum)."""
        now = time.time()
        ops = {
            "register": lambda st: register_node(st, args[0], now),
            "heartbeat": lambda st: heartbeat(st, args[0], args[1], now, self.grace),
            "delete": lambda st: delete_node(st, args[0], now, self.grace),
        }
        return self.store.update(ops[op])

    # -- bootstrap -------------------------------------------------------------
    def bootstrap(self) -> None:
        """k3s's order: an etcd member already here restarts; else SQLite if it has data; else join the
        ``server:``; else a new cluster (etcd with cluster-init, SQLite without)."""
        token = str(self.config.get("token") or "")
        secret = split_token(token)[1] if token else None
        tombstone = os.path.join(etcd.db_dir(self.data_dir), "tombstone")
        if os.path.exists(tombstone):  # k3s pkg/etcd/etcd.go: Register
            log("info", "tombstone file has been detected, removing data dir to rejoin the cluster")
            os.rename(etcd.db_dir(self.data_dir), f"{etcd.db_dir(self.data_dir)}-backup-{int(time.time())}")
        file_store = FileStore(self.data_dir)
        if etcd.initialized(self.data_dir):
            log("info", "Starting etcd for existing cluster member")
            self.start_etcd("existing")
        elif file_store.exists():
            self.store = file_store
        elif self.config.get("server"):
            self.join(self.config["server"], token)
        elif self.config.get("cluster-init"):
            tls.ensure_cas(self.tls)
            log("info", "Starting etcd for new cluster, cluster-reset=false")
            self.start_etcd("new")
        else:
            self.store = file_store
        self.ca = tls.ca_bundle(self.tls)
        # etcd: a quorum read (a member that just joined may not have caught up yet)
        state = self.store.read(serializable=False) if isinstance(self.store, EtcdStore) else self.store.read()
        if not state.get("cluster") and self.config.get("server") and isinstance(self.store, EtcdStore):
            fatal(f"joined the etcd cluster of {self.config['server']}, but it holds no cluster state")
        if state.get("cluster"):
            if secret and sha256(secret) != state["cluster"]["token_hash"]:
                fatal("bootstrap data already found and encrypted with different token")
            self.secret = secret or (read_file(self.token_path()) or "").rsplit(":", 1)[-1].strip()
        else:
            tls.ensure_cas(self.tls)
            self.ca = tls.ca_bundle(self.tls)
            self.secret = secret or secrets.token_hex(16)
            state = {"cluster": {"datastore": self.store.datastore, "token_hash": sha256(self.secret),
                                 "ca_files": tls.export_cas(self.tls), "created": time.time()},
                     "nodes": {}, "node_passwords": {}, "revision": 1}
            if isinstance(self.store, EtcdStore):
                if not self.store.create(state):
                    fatal("etcd already holds a cluster's state; restart to use it")
            else:
                self.store.write(state)
            log("info", f"Starting k3s {VERSION}: new cluster, datastore {self.store.datastore}")
        agent_secret = split_token(str(self.config["agent-token"]))[1] if self.config.get("agent-token") else None
        self.store.update(lambda st: st["cluster"].update(
            grace=self.grace, agent_token_hash=sha256(agent_secret) if agent_secret else None))

    def start_etcd(self, state: str, cluster: str | None = None) -> None:
        self.etcd = etcd.Etcd(self.data_dir, self.name, self.address())
        self.member = etcd.member_name(self.data_dir, self.name)
        self.etcd.start(self.member, cluster or f"{self.member}={self.etcd.peer_url}", state)
        self.store = EtcdStore(self.etcd)
        while True:
            try:
                self.etcd.wait_ready(10, self.stop)
                return
            except etcd.EtcdError as e:
                if self.stop.is_set() or not self.etcd.running():
                    self.exit_after_etcd(str(e))
                log("info", f"Waiting for etcd server to become available: {e}")

    def exit_after_etcd(self, why: str) -> None:
        """etcd stopped under us: removed from the cluster (k3s writes a tombstone: its next start rejoins
        with a fresh data dir), or failed."""
        if self.etcd is not None and self.etcd.removed:
            write_file(os.path.join(etcd.db_dir(self.data_dir), "tombstone"), "", 0o600)
            log("info", "This node has been removed from the cluster - please restart k3s to rejoin the cluster")
        if self.etcd is not None:
            self.etcd.stop()
        fatal(f"etcd exited: {why}")

    def join(self, server: str, token: str) -> None:
        """k3s's join: the cluster's CAs from the server (the token proves who we are), then ``member add``
        through an existing member, then etcd starts with ``--initial-cluster-state existing``."""
        if not token:
            fatal("--token is required when joining a server")
        token_hash, secret = split_token(token)
        ca, ctx = fetch_ca(server, token_hash, float(os.environ.get("K3S_STANDIN_JOIN_TIMEOUT", "60")))
        auth = "Basic " + base64.b64encode(f"server:{secret}".encode()).decode()
        try:
            reply = request(server, "POST", "/v1-standin/join", {"name": self.name, "address": self.address()},
                            auth, ctx=ctx)
        except ApiError as e:
            if e.status == 401:
                fatal(f"failed to join {server}: the server rejected the token (401 Unauthorized)")
            fatal(f"failed to join {server}: {e.message}")
        except OSError as e:
            fatal(f"failed to join {server}: {e}")
        tls.import_cas(self.tls, reply["ca_files"])
        if token_hash is not None:  # the cluster's CA must be the one the token names
            check_token_ca(token_hash, tls.ca_bundle(self.tls))
        member = etcd.Etcd(self.data_dir, self.name, self.address())
        tls.issue_etcd_certs(self.tls, self.address(), self.name)
        name = etcd.member_name(self.data_dir, self.name)
        deadline = time.monotonic() + 120
        while True:
            try:
                cluster = self.add_member(member, name, reply["members"])
                break
            except etcd.EtcdError as e:  # e.g. "etcdserver: unhealthy cluster" right after another join
                if time.monotonic() > deadline or self.stop.is_set():
                    fatal(f"etcd cluster join failed: {e.message}")
                log("info", f"Waiting for other members to finish joining etcd cluster: {e.message}")
                time.sleep(2)
        log("info", f"Starting etcd to join cluster with members [{' '.join(cluster)}]")  # Go's %v of a []string
        self.start_etcd("existing", ",".join(cluster))

    def add_member(self, member: etcd.Etcd, name: str, known: list[dict]) -> list[str]:
        urls = [u for m in known for u in m.get("clientURLs") or [] if f"//{member.address}:" not in u]
        last = None
        for url in urls:
            try:
                members = member.members(url)
                break
            except etcd.EtcdError as e:
                last = e
        else:
            raise last or etcd.EtcdError("no etcd member to join")
        cluster, add = [], True
        for m in members:
            peer = (m.get("peerURLs") or [""])[0]
            mine = f"//{member.address}:" in peer
            mname = m.get("name") or (name if mine else "")
            if mine and mname == name:
                add = False
            elif etcd.node_of(mname) == self.name:
                fatal("duplicate node name found, please use a unique name for this node")
            if mname and peer:
                cluster.append(f"{mname}={peer}")
        if add:
            log("info", f"Adding member {name}={member.peer_url} to etcd cluster [{' '.join(cluster)}]")
            member.member_add(url)
            cluster.append(f"{name}={member.peer_url}")
        return cluster

    def token_path(self) -> str:
        return os.path.join(self.data_dir, "server", "token")

    def address(self) -> str:
        return self.config.get("node-ip") or default_ip()

    def write_files(self) -> None:
        token = f"K10{ca_hash(self.ca)}::server:{self.secret}\n"
        write_file(self.token_path(), token, 0o600)
        write_file(os.path.join(self.data_dir, "server", "node-token"), token, 0o600)
        agent_path = os.path.join(self.data_dir, "server", "agent-token")
        if os.path.lexists(agent_path):
            os.unlink(agent_path)
        if self.config.get("agent-token"):  # like k3s: the agent token, else a link to the server token
            agent_secret = split_token(str(self.config["agent-token"]))[1]
            write_file(agent_path, f"K10{ca_hash(self.ca)}::node:{agent_secret}\n", 0o600)
        else:
            os.symlink("token", agent_path)
        mode = int(str(self.config.get("write-kubeconfig-mode") or "0600"), 8)
        admin = {f"client-{part}-data": base64.b64encode(read_file(os.path.join(self.tls, f"{tls.ADMIN}.{ext}"))
                                                         .encode()).decode()
                 for part, ext in (("certificate", "crt"), ("key", "key"))}
        kubeconfig = {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": "default", "cluster": {
                "certificate-authority-data": base64.b64encode(self.ca.encode()).decode(),
                "server": f"https://127.0.0.1:{self.port}"}}],
            "contexts": [{"name": "default", "context": {"cluster": "default", "user": "default"}}],
            "current-context": "default",
            "users": [{"name": "default", "user": admin}],
        }
        write_file(self.config.get("write-kubeconfig") or KUBECONFIG,
                   yaml.safe_dump(kubeconfig, sort_keys=False), mode)

    def node_info(self) -> dict:
        on_etcd = self.etcd is not None
        return {"name": self.name, "address": self.address(), "password": ensure_node_password(),
                "roles": node_roles(True, on_etcd), "labels": self.config.get("node-label") or [],
                "taints": self.config.get("node-taint") or [], "version": VERSION, "arch": ARCH,
                "os_image": os_image(), "kernel": platform.release(),
                "annotations": {NODE_NAME_ANNOTATION: self.member, NODE_ADDRESS_ANNOTATION: self.address()}
                if on_etcd else {}}

    # -- run -----------------------------------------------------------------
    def run(self) -> None:
        self.bootstrap()
        tls.issue_server_certs(self.tls, self.address(), self.name, self.config.get("tls-san") or [])
        bind = self.config.get("bind-address") or "0.0.0.0"
        try:
            httpd = TLSServer((bind, self.port), make_handler(self), tls.server_context(self.tls))
        except OSError as e:
            fatal(f"listen tcp {bind}:{self.port}: bind: {e.strerror}")
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        log("info", f"Running kube-apiserver (stand-in) on port {self.port} (TLS, client certificates)")
        self.register_self()
        self.write_files()
        sd_notify("READY=1")
        log("info", f"k3s is up and running ({VERSION})")
        while not self.stop.wait(self.interval):
            self.tick()
        httpd.shutdown()
        if self.etcd is not None:
            self.etcd.stop()

    def register_self(self) -> None:
        """Register this server's Node (retried: a joining member may need a moment for etcd's quorum)."""
        while True:
            try:
                self.apply("register", self.node_info())
                return
            except ApiError as e:
                if self.stop.is_set():
                    return
                log("error", f"failed to register node {self.name}: {e.message}")
            if self.etcd is not None and not self.etcd.running():
                self.exit_after_etcd("while registering the node")
            self.stop.wait(1)

    def rotate_token(self, new_secret: str) -> dict:
        new_secret = split_token(new_secret)[1] if new_secret else secrets.token_hex(16)
        self.store.update(lambda st: rotate_token(st, new_secret))
        self.secret = new_secret
        write_file(self.token_path(), f"K10{ca_hash(self.ca)}::server:{self.secret}\n", 0o600)
        log("info", "Server token rotated")
        return {}

    # -- etcd membership (k3s pkg/etcd/member_controller.go: onRemove) ---------
    def node_deleted(self, obj: dict) -> None:
        annotations = obj["metadata"].get("annotations") or {}
        if self.etcd is None or (obj["metadata"].get("labels") or {}).get("node-role.kubernetes.io/etcd") != "true":
            return  # k3s: "Node ... was not labeled etcd node, skipping etcd member removal"
        log("info", f"Removing etcd member {obj['metadata']['name']} from cluster")
        if annotations.get(NODE_NAME_ANNOTATION):
            self.pending_removals.append((annotations[NODE_NAME_ANNOTATION],
                                          annotations.get(NODE_ADDRESS_ANNOTATION, "")))
            self.remove_members()

    def remove_members(self) -> None:
        for name, address in list(self.pending_removals):
            try:
                self.etcd.remove_peer(name, address)
                self.pending_removals.remove((name, address))
            except etcd.EtcdError as e:
                log("error", f"failed to remove etcd member {name}, will retry: {e.message}")

    def snapshot(self, body: dict) -> dict:
        """k3s's /db/snapshot (pkg/etcd/snapshot_handler.go): save, list, delete in the snapshot dir."""
        if self.etcd is None:
            raise ApiError(400, "BadRequest", "etcd datastore disabled")
        directory = body.get("dir") or self.config.get("etcd-snapshot-dir") or os.path.join(
            self.data_dir, "server", "db", "snapshots")
        os.makedirs(directory, mode=0o700, exist_ok=True)
        op, names = body.get("operation"), body.get("name") or []
        if op == "save":
            name = f"{(names or ['on-demand'])[0]}-{self.name}-{int(time.time())}"
            path = os.path.join(directory, name)
            log("info", f"Saving etcd snapshot to {path}")  # k3s pkg/etcd/snapshot.go: Snapshot
            self.etcd.snapshot_save(path)
            return {"created": [name]}
        if op == "list":
            return {"items": [{"name": n, "location": "file://" + os.path.join(directory, n),
                               "size": os.stat(os.path.join(directory, n)).st_size,
                               "created": rfc3339(os.stat(os.path.join(directory, n)).st_mtime)}
                              for n in sorted(os.listdir(directory))]}
        if op == "delete":
            deleted = []
            for n in names:
                path = os.path.join(directory, os.path.basename(n))
                if os.path.isfile(path):
                    os.remove(path)
                    deleted.append(n)
            return {"deleted": deleted}
        raise ApiError(400, "BadRequest", "invalid snapshot operation")

    def tick(self) -> None:
        if self.etcd is not None and not self.etcd.running():
            self.exit_after_etcd("etcd stopped")
        try:
            self.apply("heartbeat", self.name, ensure_node_password())
        except ApiError as e:
            log("error", f"node status update failed: {e.message}")
        if self.pending_removals:
            self.remove_members()


class TLSServer(http.server.ThreadingHTTPServer):
    """HTTPS with the handshake in each connection's own thread (a slow client cannot stall accept)."""

    def __init__(self, address, handler, ctx: ssl.SSLContext):
        self.ctx = ctx
        super().__init__(address, handler)

    def finish_request(self, request, client_address):
        request.settimeout(30)
        try:
            conn = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # e.g. a client that does not trust our CA: it says so itself
        try:
            super().finish_request(conn, client_address)
        finally:
            conn.close()


def make_handler(server: Server):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet: the journal gets our own lines
            pass

        def _send(self, status: int, body, ctype: str = "application/json") -> None:
            data = body if isinstance(body, bytes) else (body if isinstance(body, str) else json.dumps(body)).encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, e: ApiError) -> None:
            self._send(e.status, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                  "message": e.message, "reason": e.reason, "code": e.status})

        def _token_user(self) -> str | None:
            """The supervisor paths: ``server:<token secret>`` or ``node:<token secret>`` as basic auth."""
            header = self.headers.get("Authorization", "")
            if header.startswith("Basic "):
                try:
                    user, _, pw = base64.b64decode(header[6:]).decode().partition(":")
                except ValueError:
                    return None
                state = server.store.read()
                if user == "kubelet":  # a joined node's own credential (k3s: its client certificate)
                    name, _, password = pw.partition(":")
                    known = (state.get("node_passwords") or {}).get(name)
                    if known is None:  # a deleted node: its heartbeat gets "not found", nothing else
                        return f"kubelet:{name}" if name not in (state.get("nodes") or {}) else None
                    return f"kubelet:{name}" if secrets.compare_digest(known, sha256(password)) else None
                return token_user(state, user, pw)
            return None

        def _client_cert(self) -> str | None:
            """The Kubernetes API: the CN of a client certificate that chains to client-ca (TLS checked it)."""
            cert = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None
            for rdn in (cert or {}).get("subject", ()):
                for key, value in rdn:
                    if key == "commonName":
                        return value
            return None

        def _raw_body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def do_GET(self):
            self._route("GET")

        def do_POST(self):
            self._route("POST")

        def do_DELETE(self):
            self._route("DELETE")

        def do_PATCH(self):
            self._route("PATCH")

        def do_PUT(self):
            self._route("PUT")

        def _route(self, method: str) -> None:
            path = self.path.split("?")[0]
            try:
                raw = self._raw_body()
                if path == "/ping":
                    return self._send(200, "pong", "text/plain")
                if path == "/cacerts":
                    return self._send(200, server.ca, "text/plain")
                if path.startswith("/v1-standin/") or path == "/db/snapshot":
                    who = self._token_user()
                    if who is None:
                        raise ApiError(401, "Unauthorized", "Unauthorized")
                    body = json.loads(raw or b"{}")
                    return self._send(200, self._supervisor(method, path, body, who))
                if self._client_cert() is None:
                    raise ApiError(401, "Unauthorized", "Unauthorized")
                status, doc = kube.handle(method, self.path, raw, self.headers, server.store.read,
                                          server.store.update, server.grace, on_node_deleted=server.node_deleted)
                self._send(status, doc)
            except ApiError as e:
                self._error(e)
            except (ValueError, KeyError) as e:
                self._error(ApiError(400, "BadRequest", f"bad request: {e}"))

        def _supervisor(self, method: str, path: str, body: dict, who: str):
            parts = path.strip("/").split("/")
            route = (method, *parts[1:2])
            kubelet = who.removeprefix("kubelet:") if who.startswith("kubelet:") else None
            if path == "/db/snapshot" and method == "POST" and who == "server":
                return server.snapshot(body)
            if route == ("POST", "token") and who == "server":
                return server.rotate_token(body.get("newToken") or "")
            if route == ("POST", "join") and who == "server":
                if server.etcd is None:
                    raise ApiError(409, "Conflict", "this server uses SQLite (started without cluster-init); "
                                                    "servers cannot join it")
                # k3s: the bootstrap data (the CAs, from the datastore) and /db/info (the etcd members)
                return {"ca_files": server.store.read()["cluster"]["ca_files"], "members": server.etcd.members()}
            if route == ("POST", "register") and who in ("server", "node"):
                return server.apply("register", body)
            if route == ("POST", "heartbeat") and len(parts) == 3 and (
                    who in ("server", "node") or kubelet == parts[2]):
                return server.apply("heartbeat", parts[2], body.get("password", ""))
            raise ApiError(403, "Forbidden", f"{who} may not {method} {path}")

    return Handler
