"""One k3s server process: TLS on 6443, the store, and its own kubelet heartbeat.

Two kinds of request, as on a real k3s server's port 6443: k3s's own supervisor paths (``/cacerts``,
``/ping`` open; ``/v1-standin/...`` with the token as basic auth, for joining servers and agents: k3s's
are ``/v1-k3s/...``), and the Kubernetes API (:mod:`.kube`), which takes only a client certificate
signed by the cluster's client CA (401 otherwise). A joined server forwards both to the first server,
which holds the state.
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
import urllib.error
import urllib.request

import yaml

from . import kube, tls
from .build import ARCH, VERSION
from .join import (
    ca_hash,
    check_token_ca,
    ensure_node_password,
    fetch_ca,
    join_member,
    kubelet_auth,
    request,
    rotate_token,
    split_token,
    token_user,
)
from .objects import ApiError, delete_node, heartbeat, node_roles, register_node
from .store import Store
from .util import (
    DATA_DIR,
    KUBECONFIG,
    component_arg,
    default_ip,
    fatal,
    log,
    os_image,
    read_file,
    sd_notify,
    sha256,
    write_file,
)


class Server:
    """One k3s server process: API on 6443, the store, and its own kubelet heartbeat."""

    def __init__(self, config: dict):
        self.config = config
        self.data_dir = config.get("data-dir") or DATA_DIR
        self.store = Store(self.data_dir)
        self.name = config.get("node-name") or socket.gethostname()
        self.grace = component_arg(config, "kube-controller-manager-arg", "node-monitor-grace-period", 40)
        self.interval = component_arg(config, "kubelet-arg", "node-status-update-frequency", 10)
        self.port = int(config.get("https-listen-port") or 6443)
        self.tls = tls.tls_dir(self.data_dir)
        self.leader_url: str | None = None  # None: this server holds the state
        self._leader_ctx: ssl.SSLContext | None = None
        self.stop = threading.Event()

    # -- the state, local or at the leader --------------------------------------
    def call_leader(self, method: str, path: str, body: dict | None = None, auth: str | None = None):
        return request(self.leader_url, method, path, body, auth or self.server_auth(), ctx=self.leader_ctx())

    def leader_ctx(self) -> ssl.SSLContext:
        """Trust the cluster CA and present this server's admin certificate (for forwarded API calls)."""
        if self._leader_ctx is None:
            self._leader_ctx = tls.client_context(self.ca, self.tls)
        return self._leader_ctx

    def server_auth(self) -> str:
        return "Basic " + base64.b64encode(f"server:{self.secret}".encode()).decode()

    def apply(self, op: str, *args):
        """A state change on the leader (joined servers forward requests to it instead)."""
        now = time.time()
        ops = {
            "register": lambda st: register_node(st, args[0], now),
            "heartbeat": lambda st: heartbeat(st, args[0], args[1], now, self.grace),
            "delete": lambda st: delete_node(st, args[0], now, self.grace),
        }
        return self.store.update(ops[op])

    # -- bootstrap -------------------------------------------------------------
    def bootstrap(self) -> None:
        token = str(self.config.get("token") or "")
        role = self.store.role()
        server = self.config.get("server")
        if role is None and server:
            self.join(server, token)
            return
        if role and not role.get("leader"):
            # already joined: etcd data exists, the server: flag is not used again (like k3s)
            self.leader_url = role["url"]
            self.ca = tls.ca_bundle(self.tls)
            # the token must still be the cluster's (the replica has its hash; after a rotation while
            # this server was down, the leader knows)
            self.secret = split_token(token)[1] if token else role["secret"]
            if sha256(self.secret) != (self.store.read().get("cluster") or {}).get("token_hash"):
                try:
                    self.store.write(self.call_leader("GET", "/v1-standin/state"))
                except (ApiError, OSError):
                    fatal("bootstrap data already found and encrypted with different token")
            self.store.set_role({**role, "secret": self.secret})
            return
        tls.ensure_cas(self.tls)
        self.ca = tls.ca_bundle(self.tls)
        state = self.store.read()
        secret = split_token(token)[1] if token else None
        if state.get("cluster"):
            if secret and sha256(secret) != state["cluster"]["token_hash"]:
                fatal("bootstrap data already found and encrypted with different token")
            self.secret = secret or (read_file(self.token_path()) or "").rsplit(":", 1)[-1].strip()
        else:
            self.secret = secret or secrets.token_hex(16)
            datastore = "etcd" if self.config.get("cluster-init") else "sqlite"
            state = {"cluster": {"datastore": datastore, "token_hash": sha256(self.secret),
                                 "ca_files": tls.export_cas(self.tls), "created": time.time()},
                     "nodes": {}, "node_passwords": {}, "etcd_members": {}, "revision": 1}
            if datastore == "etcd":
                state["etcd_members"][self.name] = {"address": self.address(), "joined": time.time()}
            self.store.write(state)
            log("info", f"Starting k3s {VERSION}: new cluster, datastore {datastore}")
        agent_secret = split_token(str(self.config["agent-token"]))[1] if self.config.get("agent-token") else None
        self.store.update(lambda st: st["cluster"].update(
            grace=self.grace, agent_token_hash=sha256(agent_secret) if agent_secret else None))
        self.store.set_role({"leader": True})

    def join(self, server: str, token: str) -> None:
        if not token:
            fatal("--token is required when joining a server")
        token_hash, secret = split_token(token)
        url = server  # https://<server>:6443
        self.ca, ctx = fetch_ca(url, token_hash, float(os.environ.get("K3S_STANDIN_JOIN_TIMEOUT", "60")))
        self.secret = secret
        self.leader_url = url
        try:
            reply = request(url, "POST", "/v1-standin/join", {"name": self.name, "address": self.address()},
                            self.server_auth(), ctx=ctx)
        except ApiError as e:
            if e.status == 401:
                fatal(f"failed to join {server}: the server rejected the token (401 Unauthorized)")
            fatal(f"failed to join {server}: {e.message}")
        tls.import_cas(self.tls, reply["state"]["cluster"]["ca_files"])
        self.ca = tls.ca_bundle(self.tls)
        if token_hash is not None:  # the cluster's CA must be the one the token names
            check_token_ca(token_hash, self.ca)
        self.store.write(reply["state"])
        self.store.set_role({"leader": False, "url": url, "secret": secret})
        log("info", f"Joined the cluster at {server} as etcd member {self.name}")

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
        etcd = self.leader_url is not None or self.store.read()["cluster"]["datastore"] == "etcd"
        return {"name": self.name, "address": self.address(), "password": self.node_password(),
                "roles": node_roles(True, etcd), "labels": self.config.get("node-label") or [],
                "taints": self.config.get("node-taint") or [], "version": VERSION, "arch": ARCH,
                "os_image": os_image(), "kernel": platform.release()}

    def node_password(self) -> str:
        return ensure_node_password()

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

    def register_self(self) -> None:
        info = self.node_info()
        if self.leader_url is None:
            self.apply("register", info)
        else:
            try:
                self.call_leader("POST", "/v1-standin/register", info)
                self.sync()
            except (ApiError, OSError) as e:
                log("error", f"failed to register node {self.name} at {self.leader_url}: {e}")

    def sync(self) -> None:
        self.store.write(self.call_leader("GET", "/v1-standin/state", auth=self.kubelet_auth()))

    def kubelet_auth(self) -> str:
        return kubelet_auth(self.name, self.node_password())

    def rotate_token(self, new_secret: str) -> dict:
        new_secret = split_token(new_secret)[1] if new_secret else secrets.token_hex(16)
        self.store.update(lambda st: rotate_token(st, new_secret))
        self.secret = new_secret
        write_file(self.token_path(), f"K10{ca_hash(self.ca)}::server:{self.secret}\n", 0o600)
        log("info", "Server token rotated")
        return {}

    def tick(self) -> None:
        try:
            if self.leader_url is None:
                self.apply("heartbeat", self.name, self.node_password())
            else:
                self.call_leader("POST", f"/v1-standin/heartbeat/{self.name}", {"password": self.node_password()},
                                 auth=self.kubelet_auth())
                self.sync()
        except (ApiError, OSError) as e:
            log("error", f"node status update failed: {e}")


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
                if path.startswith("/v1-standin/"):
                    who = self._token_user()
                    if who is None:
                        raise ApiError(401, "Unauthorized", "Unauthorized")
                    body = json.loads(raw or b"{}")
                    if server.leader_url is not None:
                        return self._forward(method, path, raw, {"Authorization": self.headers["Authorization"]})
                    return self._send(200, self._supervisor(method, path, body, who))
                if self._client_cert() is None:
                    raise ApiError(401, "Unauthorized", "Unauthorized")
                if server.leader_url is not None:
                    return self._forward(method, self.path, raw, {h: self.headers[h] for h in ("Accept", "Content-Type")
                                                                   if self.headers.get(h)})
                status, doc = kube.handle(method, self.path, raw, self.headers, server.store.read,
                                          server.store.update, server.grace)
                self._send(status, doc)
            except ApiError as e:
                self._error(e)
            except (ValueError, KeyError) as e:
                self._error(ApiError(400, "BadRequest", f"bad request: {e}"))

        def _forward(self, method: str, path: str, raw: bytes, headers: dict) -> None:
            """Pass the request to the first server (it holds the state); its answer goes back as it is."""
            req = urllib.request.Request(server.leader_url.rstrip("/") + path, data=raw or None, method=method,
                                         headers={**headers, **({"Content-Type": "application/json"}
                                                                if raw and "Content-Type" not in headers else {})})
            try:
                with urllib.request.urlopen(req, timeout=10, context=server.leader_ctx()) as resp:
                    status, ctype, data = resp.status, resp.headers.get("Content-Type"), resp.read()
            except urllib.error.HTTPError as e:
                status, ctype, data = e.code, e.headers.get("Content-Type"), e.read()
            except (urllib.error.URLError, OSError) as e:
                if method == "GET" and path == "/v1-standin/state":
                    return self._send(200, server.store.read())  # the replica, while the leader is away
                return self._error(ApiError(503, "ServiceUnavailable", f"leader unreachable: {e}"))
            self._send(status, data, ctype or "application/json")

        def _supervisor(self, method: str, path: str, body: dict, who: str):
            parts = path.strip("/").split("/")
            route = (method, *parts[1:2])
            kubelet = who.removeprefix("kubelet:") if who.startswith("kubelet:") else None
            if route == ("GET", "state") and kubelet and "control-plane" in (
                    (server.store.read().get("nodes") or {}).get(kubelet) or {}).get("roles", []):
                return server.store.read()  # a joined server's replica
            if route == ("POST", "token") and who == "server":
                return server.rotate_token(body.get("newToken") or "")
            if route == ("GET", "state") and who == "server":
                return server.store.read()
            if route == ("POST", "join") and who == "server":
                return server.store.update(lambda st: join_member(st, body))
            if route == ("POST", "register") and who in ("server", "node"):
                return server.apply("register", body)
            if route == ("POST", "heartbeat") and len(parts) == 3 and (
                    who in ("server", "node") or kubelet == parts[2]):
                return server.apply("heartbeat", parts[2], body.get("password", ""))
            raise ApiError(403, "Forbidden", f"{who} may not {method} {path}")

    return Handler
