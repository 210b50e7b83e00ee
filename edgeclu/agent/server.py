"""The agent's HTTP server: ``GET /health`` (JSON), ``GET /metrics`` (Prometheus text).

Deliberately small HTTP/1.0 on :mod:`socketserver` (``http.server`` drags in ``http.client``
and ``email``, several MiB). Bad requests get a 4xx and a short JSON body; nothing a
client sends can stop the server. One sample is shared by requests within ``cache_seconds``.
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import sys
import threading
import time
from _operator import _compare_digest  # what hmac.compare_digest is, without loading hashlib
from collections.abc import Callable

from edgeclu import __version__
from edgeclu.agent import prom

MAX_LINE = 8192
MAX_HEADERS = 100
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
           408: "Request Timeout", 414: "URI Too Long", 431: "Request Header Fields Too Large",
           500: "Internal Server Error"}
ENDPOINTS = ["/health", "/metrics"]


class SampleCache:
    """Calls ``take`` at most once per ``seconds``; concurrent callers share the result."""

    def __init__(self, take: Callable[[], dict], seconds: float):
        self.take, self.seconds = take, seconds
        self._lock = threading.Lock()
        self._at = float("-inf")
        self._value: dict | None = None

    def get(self) -> dict:
        with self._lock:
            if self._value is None or time.monotonic() - self._at >= self.seconds:
                self._value = self.take()
                self._at = time.monotonic()
            return self._value


def token_ok(header: str | None, token: str) -> bool:
    """Is ``Authorization: Bearer <token>`` right (constant-time)? Always true when no token is set."""
    if not token:
        return True
    if not header:
        return False
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and _compare_digest(given.strip().encode(), token.encode())


class BadRequest(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def read_request(rfile) -> tuple[str, str, dict[str, str]] | None:
    """(method, path, headers) from a stream, None if the client sent nothing; BadRequest if malformed."""
    line = rfile.readline(MAX_LINE + 1)
    if not line:
        return None
    if len(line) > MAX_LINE:
        raise BadRequest(414, "request line too long")
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[1].startswith("/"):
        raise BadRequest(400, "bad request line")
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        h = rfile.readline(MAX_LINE + 1)
        if h in (b"\r\n", b"\n", b""):
            return parts[0], parts[1].split("?", 1)[0].split("#", 1)[0], headers
        if len(h) > MAX_LINE:
            raise BadRequest(431, "header line too long")
        name, sep, value = h.decode("latin-1").partition(":")
        if not sep or not name.strip():
            raise BadRequest(400, "bad header line")
        headers[name.strip().lower()] = value.strip()
    raise BadRequest(431, "too many headers")


class Handler(socketserver.StreamRequestHandler):
    timeout = 10  # seconds a client may take to send its request
    server: AgentHTTPServer

    def handle(self) -> None:
        try:
            request = read_request(self.rfile)
        except BadRequest as e:
            self._json(e.code, {"error": str(e)})
            return
        except (TimeoutError, OSError):
            return
        if request is None:
            return
        method, path, headers = request
        body = method != "HEAD"
        if method not in ("GET", "HEAD"):
            self._json(405, {"error": "method not allowed"}, extra={"Allow": "GET, HEAD"})
        elif path == "/health":
            if not token_ok(headers.get("authorization"), self.server.token):
                self._json(401, {"error": "bearer token required"}, body,
                           extra={"WWW-Authenticate": 'Bearer realm="edgeclu"'})
            else:
                self._sampled(lambda s: (json.dumps(s).encode(), "application/json"), body)
        elif path == "/metrics":
            self._sampled(lambda s: (prom.render(s).encode(), prom.CONTENT_TYPE), body)
        elif path == "/":
            self._json(200, {"agent": "edgeclu", "version": __version__, "endpoints": ENDPOINTS}, body)
        else:
            self._json(404, {"error": "not found", "endpoints": ENDPOINTS}, body)

    def _sampled(self, encode: Callable[[dict], tuple[bytes, str]], body: bool) -> None:
        try:
            data, ctype = encode(self.server.cache.get())
        except Exception as e:  # noqa: BLE001 - report, keep serving
            sys.stderr.write(f"edgeclu-agent: sample failed: {e!r}\n")
            self._json(500, {"error": f"sample failed: {type(e).__name__}"}, body)
            return
        self._send(200, data, ctype, body)

    def _json(self, code: int, doc: dict, body: bool = True, extra: dict | None = None) -> None:
        self._send(code, json.dumps(doc).encode(), "application/json", body, extra)

    def _send(self, code: int, data: bytes, ctype: str, body: bool, extra: dict | None = None) -> None:
        head = [f"HTTP/1.0 {code} {REASONS.get(code, '')}", f"Server: edgeclu-agent/{__version__}",
                f"Content-Type: {ctype}", f"Content-Length: {len(data)}", "Cache-Control: no-store",
                "Connection: close", *(f"{k}: {v}" for k, v in (extra or {}).items())]
        with contextlib.suppress(OSError):  # the client went away
            self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (data if body else b""))


class AgentHTTPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, listen: str, port: int, cache: SampleCache, token: str):
        self.address_family = socket.AF_INET6 if ":" in listen else socket.AF_INET
        self.cache, self.token = cache, token
        super().__init__((listen, port), Handler)

    def handle_error(self, request, client_address) -> None:
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):
            sys.stderr.write(f"edgeclu-agent: error serving {client_address[0]}: {exc!r}\n")
