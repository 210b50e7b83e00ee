"""The agent's HTTP server: ``GET /health`` (JSON), ``GET /metrics`` (Prometheus text).

Deliberately small HTTP/1.0 (``http.server`` drags in ``http.client`` and ``email``, several
MiB). It is built to survive hostile clients on the LAN:

* one thread (:meth:`AgentHTTPServer.serve_forever`) accepts connections and reads request
  heads without blocking, so a client that sends nothing, or a byte at a time, holds no thread;
* a request line and its headers must arrive within :attr:`Limits.request_seconds` of the
  connection, as a whole (not per byte); a late one gets 408 and is closed;
* a fixed pool of :attr:`Limits.workers` threads answers complete requests (``TasksMax`` is
  never reached, however many clients come; two are enough, as samples are taken one at a time);
* one source address may hold :attr:`Limits.per_source` connections at once; more are closed at
  once. When :attr:`Limits.max_open` connections are open, the oldest unfinished one is dropped
  for a new one, so a flood from many sources cannot lock out a fresh, fast client.

Bad requests get a 4xx and a short JSON body; nothing a client sends can stop the server. One
sample is shared by requests within ``cache_seconds``.
"""

from __future__ import annotations

import contextlib
import json
import queue
import selectors
import socket
import sys
import threading
import time
from _operator import _compare_digest  # what hmac.compare_digest is, without loading hashlib
from collections.abc import Callable

from edgeclu import __version__
from edgeclu.agent import prom

MAX_LINE = 8192
MAX_HEADERS = 100
MAX_HEAD = 65536  # request line + headers
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
           408: "Request Timeout", 414: "URI Too Long", 431: "Request Header Fields Too Large",
           500: "Internal Server Error", 503: "Service Unavailable"}
ENDPOINTS = ["/health", "/metrics"]
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)  # Linux: bind an address that is not up yet


class Limits:
    """How much the server gives to clients (the defaults are what the agent uses)."""

    def __init__(self, *, workers: int = 2, per_source: int = 8, max_open: int = 256,
                 request_seconds: float = 5.0, write_seconds: float = 5.0, backlog: int = 128):
        self.workers, self.per_source, self.max_open = workers, per_source, max_open
        self.request_seconds, self.write_seconds, self.backlog = request_seconds, write_seconds, backlog


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


def parse_head(buf: bytes, eof: bool = False) -> tuple[str, str, dict[str, str]] | None:
    """(method, path, headers) once ``buf`` holds a whole request head; None while more is needed
    (or, at ``eof``, when the client sent nothing); BadRequest when it is malformed or too big."""
    lines = buf.split(b"\n")
    complete, partial = lines[:-1], lines[-1]
    if len(partial) > MAX_LINE or len(buf) > MAX_HEAD:
        raise BadRequest(414, "request line too long") if not complete else BadRequest(
            431, "header line too long" if len(partial) > MAX_LINE else "request head too large")
    if not complete:
        if eof and buf:
            complete = [partial]  # a client that stopped mid-line: judge what it sent
        else:
            return None
    if len(complete[0]) > MAX_LINE:
        raise BadRequest(414, "request line too long")
    parts = complete[0].decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[1].startswith("/"):
        raise BadRequest(400, "bad request line")
    method, path = parts[0], parts[1].split("?", 1)[0].split("#", 1)[0]
    headers: dict[str, str] = {}
    for n, h in enumerate(complete[1:]):
        if h in (b"\r", b""):
            return method, path, headers
        if len(h) > MAX_LINE:
            raise BadRequest(431, "header line too long")
        if n >= MAX_HEADERS:
            raise BadRequest(431, "too many headers")
        name, sep, value = h.decode("latin-1").partition(":")
        if not sep or not name.strip():
            raise BadRequest(400, "bad header line")
        headers[name.strip().lower()] = value.strip()
    return (method, path, headers) if eof else None  # at eof: closed before the blank line, answer it


def http_response(code: int, data: bytes, ctype: str, body: bool = True, extra: dict | None = None) -> bytes:
    head = [f"HTTP/1.0 {code} {REASONS.get(code, '')}", f"Server: edgeclu-agent/{__version__}",
            f"Content-Type: {ctype}", f"Content-Length: {len(data)}", "Cache-Control: no-store",
            "Connection: close", *(f"{k}: {v}" for k, v in (extra or {}).items())]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (data if body else b"")


def json_response(code: int, doc: dict, body: bool = True, extra: dict | None = None) -> bytes:
    return http_response(code, json.dumps(doc).encode(), "application/json", body, extra)


def respond(method: str, path: str, headers: dict[str, str], cache: SampleCache, token: str) -> bytes:
    """The whole response to one request."""
    body = method != "HEAD"
    if method not in ("GET", "HEAD"):
        return json_response(405, {"error": "method not allowed"}, extra={"Allow": "GET, HEAD"})
    if path == "/health":
        if not token_ok(headers.get("authorization"), token):
            return json_response(401, {"error": "bearer token required"}, body,
                                 extra={"WWW-Authenticate": 'Bearer realm="edgeclu"'})
        return _sampled(cache, lambda s: (json.dumps(s).encode(), "application/json"), body)
    if path == "/metrics":
        return _sampled(cache, lambda s: (prom.render(s).encode(), prom.CONTENT_TYPE), body)
    if path == "/":
        return json_response(200, {"agent": "edgeclu", "version": __version__, "endpoints": ENDPOINTS}, body)
    return json_response(404, {"error": "not found", "endpoints": ENDPOINTS}, body)


def _sampled(cache: SampleCache, encode: Callable[[dict], tuple[bytes, str]], body: bool) -> bytes:
    try:
        data, ctype = encode(cache.get())
    except Exception as e:  # noqa: BLE001 - report, keep serving
        sys.stderr.write(f"edgeclu-agent: sample failed: {e!r}\n")
        return json_response(500, {"error": f"sample failed: {type(e).__name__}"}, body)
    return http_response(200, data, ctype, body)


class _Conn:
    __slots__ = ("sock", "source", "buf", "deadline")

    def __init__(self, sock: socket.socket, source: str, deadline: float):
        self.sock, self.source, self.buf, self.deadline = sock, source, b"", deadline


class AgentHTTPServer:
    """Serves on ``(listen, port)``; ``serve_forever`` / ``shutdown`` / ``server_close`` as in socketserver."""

    def __init__(self, listen: str, port: int, cache: SampleCache, token: str, limits: Limits | None = None):
        self.cache, self.token, self.limits = cache, token, limits or Limits()
        family = socket.AF_INET6 if ":" in listen else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if listen not in ("", "0.0.0.0", "::"):
                with contextlib.suppress(OSError):  # at boot the address may come up after us
                    sock.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
            sock.bind((listen, port))
            sock.listen(self.limits.backlog)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.socket = sock
        self.server_address = sock.getsockname()
        self._open: dict[str, int] = {}  # source address -> connections held (reading or being answered)
        self._lock = threading.Lock()
        self._pending: dict[socket.socket, _Conn] = {}  # heads still being read (loop thread only)
        self._work: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()
        self._wake_r, self._wake_w = socket.socketpair()
        self._workers: list[threading.Thread] = []

    # -- the loop thread: accept, read heads, enforce deadlines and caps --------------------------

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        self._stopped.clear()
        self._workers = [threading.Thread(target=self._worker, name=f"http-{i}", daemon=True)
                         for i in range(self.limits.workers)]
        for w in self._workers:
            w.start()
        sel = selectors.DefaultSelector()
        sel.register(self.socket, selectors.EVENT_READ, "accept")
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                first = min((c.deadline for c in self._pending.values()), default=now + poll_interval)
                for key, _ in sel.select(max(0.0, min(first - now, poll_interval))):
                    if key.data == "accept":
                        self._accept(sel)
                    elif key.data == "wake":
                        self._wake_r.recv(64)
                    else:
                        self._read(sel, key.data)
                self._expire(sel, time.monotonic())
        finally:
            for conn in list(self._pending.values()):
                self._drop(sel, conn)
            sel.close()
            for _ in self._workers:
                self._work.put(None)
            self._stopped.set()

    def _accept(self, sel: selectors.BaseSelector) -> None:
        for _ in range(64):  # then let reads and deadlines have a turn
            try:
                sock, addr = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # e.g. EMFILE: shed the oldest unfinished request and go on
                sys.stderr.write(f"edgeclu-agent: accept failed: {e.strerror or e}\n")
                self._evict_oldest(sel)
                return
            source = addr[0]
            with self._lock:
                held, total = self._open.get(source, 0), sum(self._open.values())
                if held < self.limits.per_source:
                    self._open[source] = held + 1
            if held >= self.limits.per_source:
                _abort(sock)
                continue
            if total >= self.limits.max_open and not self._evict_oldest(sel):
                self._release(source)
                _abort(sock)
                continue
            sock.setblocking(False)
            conn = _Conn(sock, source, time.monotonic() + self.limits.request_seconds)
            self._pending[sock] = conn
            sel.register(sock, selectors.EVENT_READ, conn)

    def _read(self, sel: selectors.BaseSelector, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(sel, conn)
            return
        conn.buf += data
        try:
            request = parse_head(conn.buf, eof=not data)
        except BadRequest as e:
            self._finish(sel, conn, json_response(e.code, {"error": str(e)}))
            return
        if request is None and data:
            return  # more to come, within the deadline
        sel.unregister(conn.sock)
        del self._pending[conn.sock]
        if request is None:  # connected and closed without a word
            self._close(conn)
        else:
            self._work.put((conn, request))

    def _expire(self, sel: selectors.BaseSelector, now: float) -> None:
        for conn in [c for c in self._pending.values() if c.deadline <= now]:
            self._finish(sel, conn, json_response(408, {"error": "request not complete in time"}))

    def _evict_oldest(self, sel: selectors.BaseSelector) -> bool:
        if not self._pending:
            return False
        self._drop(sel, min(self._pending.values(), key=lambda c: c.deadline))
        return True

    def _finish(self, sel: selectors.BaseSelector, conn: _Conn, reply: bytes) -> None:
        """Answer from the loop thread without blocking (short error replies only), then close."""
        with contextlib.suppress(OSError):
            conn.sock.send(reply)
        self._drop(sel, conn)

    def _drop(self, sel: selectors.BaseSelector, conn: _Conn) -> None:
        self._pending.pop(conn.sock, None)
        with contextlib.suppress(KeyError, ValueError):
            sel.unregister(conn.sock)
        self._close(conn)

    def _close(self, conn: _Conn) -> None:
        try:
            conn.sock.close()
        finally:
            self._release(conn.source)

    def _release(self, source: str) -> None:
        with self._lock:
            left = self._open.get(source, 1) - 1
            if left > 0:
                self._open[source] = left
            else:
                self._open.pop(source, None)

    # -- the worker pool: answer complete requests ----------------------------------------------

    def _worker(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            conn, (method, path, headers) = item
            try:
                reply = respond(method, path, headers, self.cache, self.token)
                conn.sock.settimeout(self.limits.write_seconds)
                conn.sock.sendall(reply)
            except OSError:
                pass  # the client went away or would not read
            except Exception as e:  # noqa: BLE001 - one bad request must not cost a worker
                sys.stderr.write(f"edgeclu-agent: error serving {conn.source}: {e!r}\n")
            finally:
                self._close(conn)

    # -- control ---------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop :meth:`serve_forever` (from another thread) and wait for it and the workers."""
        self._stop.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        self._stopped.wait()
        for w in self._workers:
            w.join(self.limits.write_seconds + 1)

    def server_close(self) -> None:
        self.socket.close()
        self._wake_r.close()
        self._wake_w.close()

    def open_connections(self) -> dict[str, int]:
        """Connections held per source address (for tests and diagnostics)."""
        with self._lock:
            return dict(self._open)


def _abort(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()
