"""The agent's HTTP server on 127.0.0.1: routes, bearer token, bad requests never kill it, and hostile
clients (slow, idle, many) cost it neither threads nor other clients' answers."""

import contextlib
import http.client
import json
import socket
import threading
import time

import pytest

from edgeclu.agent import sample
from edgeclu.agent.config import AgentConfig
from edgeclu.agent.server import AgentHTTPServer, BadRequest, Limits, SampleCache, parse_head, token_ok


@pytest.fixture
def agent():
    calls = []

    def take():
        calls.append(1)
        return sample.take_sample(AgentConfig())

    httpd = AgentHTTPServer("127.0.0.1", 0, SampleCache(take, seconds=60), token="s3cret")
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    httpd.calls = calls
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _get(httpd, path, method="GET", headers=None):
    c = http.client.HTTPConnection("127.0.0.1", httpd.server_address[1], timeout=5)
    c.request(method, path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, dict(r.getheaders()), body


def test_health_needs_the_token(agent):
    status, headers, body = _get(agent, "/health")
    assert status == 401 and headers["WWW-Authenticate"] == 'Bearer realm="edgeclu"'
    assert json.loads(body) == {"error": "bearer token required"}
    assert _get(agent, "/health", headers={"Authorization": "Bearer wrong"})[0] == 401
    assert _get(agent, "/health", headers={"Authorization": "Basic s3cret"})[0] == 401
    status, headers, body = _get(agent, "/health", headers={"Authorization": "Bearer s3cret"})
    assert status == 200 and headers["Content-Type"] == "application/json"
    doc = json.loads(body)
    assert doc["schema"] == 1 and doc["host"]["hostname"] == socket.gethostname()


def test_metrics_and_sample_sharing(agent):
    status, headers, body = _get(agent, "/metrics?x=1")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert b"\nnode_load1 " in body
    _get(agent, "/metrics")
    _get(agent, "/health", headers={"Authorization": "Bearer s3cret"})
    assert len(agent.calls) == 1  # within cache_seconds one sample serves everyone


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/nope", 404), ("GET", "/health/../etc/passwd", 404), ("POST", "/health", 405),
    ("DELETE", "/metrics", 405), ("PUT", "/", 405),
])
def test_wrong_requests_get_4xx(agent, method, path, status):
    assert _get(agent, path, method)[0] == status


@pytest.mark.parametrize("raw", [
    b"garbage\r\n\r\n",
    b"GET /health HTTP/9.9\r\n\r\n",
    b"GET " + b"/a" * 40000 + b" HTTP/1.1\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(100),  # a TLS ClientHello
    b"",
])
def test_malformed_requests_get_4xx_and_the_server_survives(agent, raw):
    s = socket.create_connection(agent.server_address, timeout=5)
    try:
        s.sendall(raw)
        s.shutdown(socket.SHUT_WR)
        reply = s.recv(200)
    except OSError:
        # the server answered 414 and closed before reading the whole oversized line: the client then
        # sees a reset, a broken pipe, or (at shutdown) "not connected", depending on timing
        assert len(raw) > 65536
        reply = b"HTTP/1.0 414"
    finally:
        s.close()
    if raw:
        assert reply.startswith(b"HTTP/1.") and reply.split(b" ")[1][:1] == b"4", reply
    assert _get(agent, "/metrics")[0] == 200


def test_head_has_no_body(agent):
    status, headers, body = _get(agent, "/metrics", "HEAD")
    assert status == 200 and int(headers["Content-Length"]) > 100 and body == b""


@pytest.mark.parametrize(("header", "token", "ok"), [
    (None, "", True), ("Bearer x", "", True), (None, "t", False), ("Bearer t", "t", True),
    ("bearer t", "t", True), ("Bearer  t ", "t", True), ("Bearer tt", "t", False), ("t", "t", False),
])
def test_token_ok(header, token, ok):
    assert token_ok(header, token) is ok


# -- hostile clients -------------------------------------------------------------------------------

@pytest.mark.parametrize(("buf", "eof", "want"), [
    (b"", False, None),
    (b"", True, None),
    (b"GET /health HT", False, None),
    (b"GET /health HTTP/1.1\r\nHost: x\r\n", False, None),  # no blank line yet
    (b"GET /health?a=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\r\n", False,
     ("GET", "/health", {"host": "x", "authorization": "Bearer t"})),
    (b"GET / HTTP/1.0\n\n", False, ("GET", "/", {})),
    (b"GET /metrics HTTP/1.0\r\nX: y\r\n", True, ("GET", "/metrics", {"x": "y"})),  # closed early: answer it
    (b"GET /metrics HTTP/1.0", True, ("GET", "/metrics", {})),
    (b"garbage\r\n\r\n", False, 400),
    (b"garbage", True, 400),
    (b"GET /a HTTP/1.1\r\nno-colon\r\n\r\n", False, 400),
    (b"GET /" + b"a" * 9000, False, 414),  # too long before the line even ends
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", False, 414),
    (b"GET / HTTP/1.1\r\nX: " + b"y" * 9000, False, 431),
    (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 101 + b"\r\n", False, 431),  # the same name 101 times counts 101
    (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 100 + b"\r\n", False, ("GET", "/", {"x": "y"})),
    (b"GET / HTTP/1.1\r\n" + (b"X: " + b"y" * 8000 + b"\r\n") * 9, False, 431),  # the whole head > 64 KiB
])
def test_parse_head(buf, eof, want):
    if isinstance(want, int):
        with pytest.raises(BadRequest) as e:
            parse_head(buf, eof)
        assert e.value.code == want
    else:
        assert parse_head(buf, eof) == want


def _server(limits=None):
    """A server with the agent's own limits unless ``limits`` is given."""
    extra = {"limits": limits} if limits else {}
    httpd = AgentHTTPServer("127.0.0.1", 0, SampleCache(lambda: sample.take_sample(AgentConfig()), 60),
                            token="", **extra)
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    assert _timed_get("127.0.0.3", httpd)[0] == b"200"  # up, with its worker pool started
    return httpd


def _from(source, httpd, timeout=5):
    """A connection to the server from another loopback address (a different source)."""
    s = socket.socket()
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(httpd.server_address)
    return s


def _timed_get(source, httpd):
    t0 = time.monotonic()
    s = _from(source, httpd)
    try:
        s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    finally:
        s.close()
    return reply.split(b" ", 2)[1], time.monotonic() - t0


def test_a_slow_client_gets_408_at_the_deadline_for_the_whole_request():
    httpd = _server()  # the agent's limits: 5 s for the request line and headers
    try:
        s = _from("127.0.0.1", httpd)
        t0, reply = time.monotonic(), b""
        for ch in b"GET /metrics HTTP/1.0\r\nX: " + b"y" * 40:  # a byte every 0.5 s: each recv is in time
            try:
                s.send(bytes([ch]))
            except OSError:
                break
            time.sleep(0.5)
            if time.monotonic() - t0 > 8:
                break
        with contextlib.suppress(OSError):
            reply = s.recv(200)
        held = time.monotonic() - t0
        s.close()
        assert reply.startswith(b"HTTP/1.0 408 "), reply
        assert held < 6.5, f"a trickling client held its connection {held:.1f}s (deadline 5s)"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_idle_connections_from_one_source_are_capped_and_hold_no_threads():
    httpd = _server()  # the agent's limits: 8 connections per source
    idle = []
    try:
        threads_before = threading.active_count()
        for _ in range(80):
            idle.append(_from("127.0.0.1", httpd))
        time.sleep(0.3)
        closed = 0
        for s in idle:
            s.setblocking(False)
            try:
                closed += s.recv(1) == b""
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
        assert closed == 72, f"{closed} of 80 idle connections from one source were closed (cap 8)"
        assert httpd.open_connections() == {"127.0.0.1": 8}
        assert threading.active_count() == threads_before, "idle connections must not hold threads"
        status, took = _timed_get("127.0.0.2", httpd)  # another source is served at once
        assert status == b"200" and took < 1, (status, took)
    finally:
        for s in idle:
            s.close()
        httpd.shutdown()
        httpd.server_close()


def test_when_full_the_oldest_unfinished_connection_makes_room():
    httpd = _server(Limits(per_source=4, max_open=8, request_seconds=30))
    idle = []
    try:
        for i in range(8):  # 8 sources x 1 idle connection: the server is full
            idle.append(_from(f"127.0.1.{i + 1}", httpd))
        time.sleep(0.2)
        status, took = _timed_get("127.0.0.2", httpd)
        assert status == b"200" and took < 1
        idle[0].settimeout(2)
        assert idle[0].recv(1) == b""  # the oldest was dropped for it
    finally:
        for s in idle:
            s.close()
        httpd.shutdown()
        httpd.server_close()


def test_the_pool_answers_many_clients_with_a_fixed_number_of_threads():
    httpd = _server(Limits(workers=2))
    try:
        names_before = {t.name for t in threading.enumerate()}
        results = []
        clients = [threading.Thread(target=lambda i=i: results.append(_timed_get(f"127.0.2.{i + 1}", httpd)))
                   for i in range(20)]
        for c in clients:
            c.start()
        for c in clients:
            c.join(10)
        assert [r[0] for r in results] == [b"200"] * 20
        server_threads = {t.name for t in threading.enumerate()} - names_before
        assert not server_threads, server_threads  # only the pool started at serve_forever (http-0, http-1)
        assert {"http-0", "http-1"} <= names_before
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_it_can_bind_its_address_before_the_address_is_up():
    """At boot the agent may start before DHCP gives the node its inventory address (IP_FREEBIND)."""
    httpd = AgentHTTPServer("10.255.77.7", 0, SampleCache(dict, 1), token="")
    try:
        assert httpd.server_address[0] == "10.255.77.7"
    finally:
        httpd.server_close()
