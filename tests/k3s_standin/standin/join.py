"""Joining: the token (``K10<ca-hash>::<user>:<secret>``), the CA a joining node fetches and checks,
and the HTTP client nodes use to talk to a server."""

from __future__ import annotations

import json
import os
import secrets
import time
import urllib.error
import urllib.request

from .objects import ApiError
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

def http_url(url: str) -> str:
    """The stand-in serves plain HTTP: dial ``https://`` URLs as ``http://``."""
    return "http://" + url.split("://", 1)[1] if url.startswith("https://") else url

def request(base: str, method: str, path: str, body: dict | None = None, auth: str | None = None,
            timeout: float = 5):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base.rstrip("/") + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if auth:
        req.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
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

def wait_for_ca(url: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return request(url, "GET", "/cacerts")
        except (OSError, ApiError) as e:
            if time.monotonic() > deadline:
                fatal(f"failed to get CA certs from {url}: {e}")
            log("info", f"Waiting for the server at {url}: {e}")
            time.sleep(1)

def ensure_node_password() -> str:
    pw = (read_file(NODE_PASSWORD) or "").strip()
    if not pw:
        pw = secrets.token_hex(16)
        os.makedirs(os.path.dirname(NODE_PASSWORD), exist_ok=True)
        write_file(NODE_PASSWORD, pw + "\n", 0o600)
    return pw

def join_member(state: dict, body: dict) -> dict:
    if state["cluster"]["datastore"] != "etcd":
        raise ApiError(409, "Conflict", "this server uses SQLite (started without cluster-init); "
                                        "servers cannot join it")
    state["etcd_members"][body["name"]] = {"address": body["address"], "joined": time.time()}
    return {"ca": state["cluster"]["ca"], "state": state}
