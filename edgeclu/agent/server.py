"""The agent's HTTP server (stdlib): ``GET /health`` (JSON), ``GET /metrics`` (Prometheus text).

Bad requests get a 4xx and a short JSON body; nothing a client sends can stop the
server. One sample is shared by requests arriving within ``cache_seconds``.
"""

from __future__ import annotations

import hmac
import json
import socket
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from edgeclu import __version__
from edgeclu.agent import prom


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
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


class Handler(BaseHTTPRequestHandler):
    server_version = f"edgeclu-agent/{__version__}"
    timeout = 10  # seconds a client may take to send its request
    default_request_version = "HTTP/1.0"  # error replies to garbage still carry a status line
    server: AgentHTTPServer

    def version_string(self) -> str:
        return self.server_version

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # an HTTP version we do not speak is the client's mistake: 400, not 505
        super().send_error(400 if code == 505 else code, message, explain)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._route(body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._route(body=False)

    def _not_allowed(self) -> None:
        self._send(405, {"error": "method not allowed"}, headers={"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed  # noqa: N815

    def _route(self, body: bool) -> None:
        path = urlsplit(self.path).path
        if path == "/health":
            if not token_ok(self.headers.get("Authorization"), self.server.token):
                self._send(401, {"error": "bearer token required"}, body=body,
                           headers={"WWW-Authenticate": 'Bearer realm="edgeclu"'})
                return
            self._sampled(lambda s: (json.dumps(s).encode(), "application/json"), body)
        elif path == "/metrics":
            self._sampled(lambda s: (prom.render(s).encode(), prom.CONTENT_TYPE), body)
        elif path == "/":
            self._send(200, {"agent": "edgeclu", "version": __version__, "endpoints": ["/health", "/metrics"]},
                       body=body)
        else:
            self._send(404, {"error": "not found", "endpoints": ["/health", "/metrics"]}, body=body)

    def _sampled(self, encode: Callable[[dict], tuple[bytes, str]], body: bool) -> None:
        try:
            data, ctype = encode(self.server.cache.get())
        except Exception as e:  # noqa: BLE001 - report, keep serving
            self.log_error("sample failed: %r", e)
            self._send(500, {"error": f"sample failed: {type(e).__name__}"}, body=body)
            return
        self._raw(200, data, ctype, body)

    def _send(self, code: int, doc: dict, body: bool = True, headers: dict | None = None) -> None:
        self._raw(code, json.dumps(doc).encode(), "application/json", body, headers)

    def _raw(self, code: int, data: bytes, ctype: str, body: bool, headers: dict | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet: no log line per scrape
        pass

    def log_error(self, format: str, *args) -> None:  # noqa: A002
        sys.stderr.write(f"edgeclu-agent: {self.address_string()}: {(format % args)[:200]!r}\n")


class AgentHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, listen: str, port: int, cache: SampleCache, token: str):
        self.address_family = socket.AF_INET6 if ":" in listen else socket.AF_INET
        self.cache, self.token = cache, token
        super().__init__((listen, port), Handler)

    def handle_error(self, request, client_address) -> None:
        # a client hanging up mid-response (BrokenPipe, reset) is not worth a traceback
        exc = sys.exc_info()[1]
        if not isinstance(exc, ConnectionError | TimeoutError):
            sys.stderr.write(f"edgeclu-agent: error serving {client_address[0]}: {exc!r}\n")
