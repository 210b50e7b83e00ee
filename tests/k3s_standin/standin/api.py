"""One k3s server process: the API on 6443, the store, and its own kubelet heartbeat."""

from __future__ import annotations

import base64
import http.server
import json
import os
import platform
import secrets
import socket
import threading
import time

import yaml

from .build import ARCH, VERSION
from .join import ensure_node_password, http_url, join_member, request, split_token, wait_for_ca
from .objects import ApiError, create_object, delete_node, delete_pdb, evict_pod, heartbeat, node_roles, register_node
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
        self.leader_url: str | None = None  # None: this server holds the state
        self.stop = threading.Event()

    # -- the state, local or at the leader --------------------------------------
    def call_leader(self, method: str, path: str, body: dict | None = None, auth: str | None = None):
        return request(self.leader_url, method, path, body, auth or self.server_auth())

    def server_auth(self) -> str:
        return "Basic " + base64.b64encode(f"server:{self.secret}".encode()).decode()

    def apply(self, op: str, *args):
        """A state change on the leader (joined servers forward requests to it instead)."""
        now = time.time()
        ops = {
            "register": lambda st: register_node(st, args[0], now),
            "heartbeat": lambda st: heartbeat(st, args[0], args[1], now, self.grace),
            "delete": lambda st: delete_node(st, args[0], now, self.grace),
            "create": lambda st: [create_object(st, doc, now) for doc in args[0]],
            "evict": lambda st: evict_pod(st, args[0], args[1], now, self.grace),
            "delete_pdb": lambda st: delete_pdb(st, args[0], args[1]),
            "cordon": lambda st: self._set_unschedulable(st, args[0], True),
            "uncordon": lambda st: self._set_unschedulable(st, args[0], False),
        }
        return self.store.update(ops[op])

    @staticmethod
    def _set_unschedulable(state: dict, name: str, value: bool) -> None:
        node = (state.get("nodes") or {}).get(name)
        if node is None:
            raise ApiError(404, "NotFound", f'nodes "{name}" not found')
        node["unschedulable"] = value

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
            self.secret = role["secret"]
            self.ca = read_file(self.ca_path())
            return
        self.ca = read_file(self.ca_path()) or f"STANDIN-CA {secrets.token_hex(16)}\n"
        write_file(self.ca_path(), self.ca, 0o644)
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
                                 "admin_token": secrets.token_hex(24), "ca": self.ca,
                                 "created": time.time()},
                     "nodes": {}, "node_passwords": {}, "etcd_members": {}, "revision": 1}
            if datastore == "etcd":
                state["etcd_members"][self.name] = {"address": self.address(), "joined": time.time()}
            self.store.write(state)
            log("info", f"Starting k3s {VERSION}: new cluster, datastore {datastore}")
        self.store.update(lambda st: st["cluster"].update(grace=self.grace))
        self.store.set_role({"leader": True})

    def join(self, server: str, token: str) -> None:
        if not token:
            fatal("--token is required when joining a server")
        ca_hash, secret = split_token(token)
        url = http_url(server)
        ca = wait_for_ca(url, float(os.environ.get("K3S_STANDIN_JOIN_TIMEOUT", "60")))
        if ca_hash and ca_hash != sha256(ca):
            fatal("token CA hash does not match the Cluster CA certificate hash")
        self.secret = secret
        self.leader_url = url
        try:
            reply = self.call_leader("POST", "/v1-standin/join", {"name": self.name, "address": self.address()})
        except ApiError as e:
            if e.status == 401:
                fatal(f"failed to join {server}: the server rejected the token (401 Unauthorized)")
            fatal(f"failed to join {server}: {e.message}")
        self.ca = reply["ca"]
        write_file(self.ca_path(), self.ca, 0o644)
        self.store.write(reply["state"])
        self.store.set_role({"leader": False, "url": url, "secret": secret})
        log("info", f"Joined the cluster at {server} as etcd member {self.name}")

    def ca_path(self) -> str:
        return os.path.join(self.data_dir, "server", "tls", "server-ca.crt")

    def token_path(self) -> str:
        return os.path.join(self.data_dir, "server", "token")

    def address(self) -> str:
        return self.config.get("node-ip") or default_ip()

    def write_files(self) -> None:
        token = f"K10{sha256(self.ca)}::server:{self.secret}\n"
        write_file(self.token_path(), token, 0o600)
        write_file(os.path.join(self.data_dir, "server", "node-token"), token, 0o600)
        state = self.store.read()
        mode = int(str(self.config.get("write-kubeconfig-mode") or "0600"), 8)
        kubeconfig = {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": "default", "cluster": {
                "certificate-authority-data": base64.b64encode(self.ca.encode()).decode(),
                "server": f"https://127.0.0.1:{self.port}"}}],
            "contexts": [{"name": "default", "context": {"cluster": "default", "user": "default"}}],
            "current-context": "default",
            "users": [{"name": "default", "user": {"token": state["cluster"]["admin_token"]}}],
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
        bind = self.config.get("bind-address") or "0.0.0.0"
        try:
            httpd = http.server.ThreadingHTTPServer((bind, self.port), make_handler(self))
        except OSError as e:
            fatal(f"listen tcp {bind}:{self.port}: bind: {e.strerror}")
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        log("info", f"Running kube-apiserver (stand-in) on port {self.port}")
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
        self.store.write(self.call_leader("GET", "/v1-standin/state"))

    def tick(self) -> None:
        try:
            if self.leader_url is None:
                self.apply("heartbeat", self.name, self.node_password())
            else:
                self.call_leader("POST", f"/v1-standin/heartbeat/{self.name}", {"password": self.node_password()})
                self.sync()
        except (ApiError, OSError) as e:
            log("error", f"node status update failed: {e}")

def make_handler(server: Server):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet: the journal gets our own lines
            pass

        def _send(self, status: int, body, ctype: str = "application/json") -> None:
            data = (body if isinstance(body, str) else json.dumps(body)).encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, e: ApiError) -> None:
            self._send(e.status, {"kind": "Status", "status": "Failure", "reason": e.reason,
                                  "message": e.message, "code": e.status})

        def _who(self) -> str | None:
            header = self.headers.get("Authorization", "")
            if header.startswith("Bearer "):
                admin = server.store.read().get("cluster", {}).get("admin_token")
                return "admin" if admin and secrets.compare_digest(header[7:], admin) else None
            if header.startswith("Basic "):
                try:
                    user, _, pw = base64.b64decode(header[6:]).decode().partition(":")
                except ValueError:
                    return None
                if user in ("server", "node") and secrets.compare_digest(pw, server.secret):
                    return user
            return None

        def _body(self) -> dict:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length) or b"{}") if length else {}

        def do_GET(self):
            self._route("GET")

        def do_POST(self):
            self._route("POST")

        def do_DELETE(self):
            self._route("DELETE")

        def _route(self, method: str) -> None:
            path = self.path.split("?")[0]
            try:
                body = self._body()
                if path == "/ping":
                    return self._send(200, "pong", "text/plain")
                if path == "/cacerts":
                    return self._send(200, server.ca, "text/plain")
                who = self._who()
                if who is None:
                    raise ApiError(401, "Unauthorized", "Unauthorized")
                if server.leader_url is not None:
                    return self._forward(method, path, body)
                self._send(200, self._local(method, path, body, who))
            except ApiError as e:
                self._error(e)
            except (ValueError, KeyError) as e:
                self._error(ApiError(400, "BadRequest", f"bad request: {e}"))

        def _forward(self, method: str, path: str, body: dict) -> None:
            try:
                reply = request(server.leader_url, method, path, body or None,
                                self.headers.get("Authorization"))
            except ApiError as e:
                return self._error(e)
            except OSError as e:
                if method == "GET" and path == "/v1-standin/state":
                    return self._send(200, server.store.read())  # the replica, while the leader is away
                return self._error(ApiError(503, "ServiceUnavailable", f"leader unreachable: {e}"))
            self._send(200, reply)

        def _local(self, method: str, path: str, body: dict, who: str):
            parts = path.strip("/").split("/")
            if parts[:1] != ["v1-standin"]:
                raise ApiError(404, "NotFound", f"the server could not find the requested resource ({path})")
            route = (method, *parts[1:2])
            if route == ("GET", "state") and who in ("admin", "server"):
                return server.store.read()
            if route == ("POST", "join") and who == "server":
                return server.store.update(lambda st: join_member(st, body))
            if route == ("POST", "register") and who in ("server", "node"):
                return server.apply("register", body)
            if route == ("POST", "heartbeat") and who in ("server", "node") and len(parts) == 3:
                return server.apply("heartbeat", parts[2], body.get("password", ""))
            if parts[1:2] == ["nodes"] and len(parts) >= 3 and who == "admin":
                if method == "DELETE" and len(parts) == 3:
                    return server.apply("delete", parts[2])
                if method == "POST" and len(parts) == 4 and parts[3] in ("cordon", "uncordon"):
                    return server.apply(parts[3], parts[2])
            if route == ("POST", "objects") and who == "admin":
                return server.apply("create", body.get("items") or [])
            if parts[1:2] == ["pods"] and len(parts) == 5 and parts[4] == "eviction" and who == "admin":
                return server.apply("evict", parts[2], parts[3])
            if method == "DELETE" and parts[1:2] == ["pdbs"] and len(parts) == 4 and who == "admin":
                return server.apply("delete_pdb", parts[2], parts[3])
            raise ApiError(403, "Forbidden", f"{who} may not {method} {path}")

    return Handler
