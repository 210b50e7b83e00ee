"""Joining: the token (``K10<ca-hash>::<user>:<secret>``), the CA a joining node fetches and checks,
and the HTTPS client nodes and servers use to talk to a server."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import ssl
import time
import urllib.error
import urllib.request

from .objects import ApiError
from .tls import client_context
from .util import NODE_PASSWORD, fatal, log, read_file, write_file


def split_token(token: str) -> tuple[str | None, str]:
    """``K10<ca-hash>::<user>:<secret>`` or a bare secret -> (ca hash or None, secret)."""
    token = token.strip()
    if token.startswith("K10") and "::" in token:
        ca_hash, _, rest = token[3:].partition("::")
        _, _, secret = rest.partition(":")
        if not secret:
            fatal("failed to normalize server token; must be in format K10<CA-HASH>::<USERNAME>:<PASSWORD> "
                  "or <PASSWORD>")
        return ca_hash, secret
    return None, token


def ca_hash(ca_pem: str) -> str:
    """The token's CA hash: sha256 of the CA bundle PEM as served at /cacerts (k3s: "the SHA256 sum of the
    PEM-formatted certificate, as stored on disk", docs cli/token.md; pkg/clientaccess/token.go hashes the
    /cacerts body)."""
    return hashlib.sha256(ca_pem.encode()).hexdigest()


def check_token_ca(token_hash: str | None, ca_pem: str) -> None:
    """A joining node trusts the fetched CA only if the token's hash matches, as k3s does
    (pkg/clientaccess/token.go: validateCACerts, and this error text)."""
    if token_hash is None:
        log("warning", "Cluster CA certificate is not trusted by the host CA bundle, but the token does not "
                       "include a CA hash. Use the full token from the server's node-token file to enable "
                       "Cluster CA validation.")
        return
    if token_hash != ca_hash(ca_pem):
        fatal(f"failed to validate token: token CA hash does not match the Cluster CA certificate hash: "
              f"{token_hash} != {ca_hash(ca_pem)}")


def request(base: str, method: str, path: str, body: dict | None = None, auth: str | None = None,
            timeout: float = 5, *, ctx: ssl.SSLContext | None = None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base.rstrip("/") + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if auth:
        req.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
            raw = resp.read().decode()
    except urllib.error.HTTPError as e:
        try:
            status = json.loads(e.read().decode())
        except ValueError:
            status = {}
        raise ApiError(e.code, status.get("reason", e.reason), status.get("message", str(e.reason))) from None
    except urllib.error.URLError as e:
        raise OSError(str(e.reason)) from None
    return json.loads(raw) if raw and raw[0] in "{[" else raw


def fetch_ca(url: str, token_hash: str | None, timeout: float) -> tuple[str, ssl.SSLContext]:
    """GET /cacerts without verification (waiting for the server), check it against the token; returns
    the CA and a client context that trusts it (and verifies the server's certificate from now on)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            ca_pem = request(url, "GET", "/cacerts", ctx=client_context(None))
            break
        except (OSError, ApiError) as e:
            if time.monotonic() > deadline:
                fatal(f"failed to get CA certs from {url}: {e}")
            log("info", f"Waiting for the server at {url}: {e}")
            time.sleep(1)
    check_token_ca(token_hash, ca_pem)
    ctx = client_context(ca_pem)
    try:
        request(url, "GET", "/ping", ctx=ctx)
    except OSError as e:
        fatal(f"failed to verify the server certificate of {url} with the Cluster CA: {e}")
    return ca_pem, ctx


def ensure_node_password() -> str:
    pw = (read_file(NODE_PASSWORD) or "").strip()
    if not pw:
        pw = secrets.token_hex(16)
        os.makedirs(os.path.dirname(NODE_PASSWORD), exist_ok=True)
        write_file(NODE_PASSWORD, pw + "\n", 0o600)
    return pw


# -- two tokens (docs.k3s.io/cli/token: the server token joins servers and agents, the agent token
# agents only; `k3s token rotate` replaces the server token, and the agent token with it when none
# was set: k3s pkg/server/handlers/token.go) ------------------------------------------------------
def token_user(state: dict, user: str, secret: str) -> str | None:
    """Who a token authenticates as: ``server`` (the server token), ``node`` (the agent token: the
    server token when no agent token is set), or None (pure)."""
    cluster = state.get("cluster") or {}
    digest = hashlib.sha256(secret.encode()).hexdigest()
    if user == "server" and secrets.compare_digest(digest, cluster.get("token_hash") or ""):
        return "server"
    if user == "node" and secrets.compare_digest(digest, cluster.get("agent_token_hash")
                                                 or cluster.get("token_hash") or ""):
        return "node"
    return None


def rotate_token(state: dict, new_secret: str) -> None:
    """``k3s token rotate``: a new server token; the agent token follows it unless one was set."""
    state["cluster"]["token_hash"] = hashlib.sha256(new_secret.encode()).hexdigest()


def kubelet_auth(name: str, password: str) -> str:
    """The credential a joined node uses for its heartbeats (k3s: its client certificate): its node
    password."""
    return "Basic " + base64.b64encode(f"kubelet:{name}:{password}".encode()).decode()
