"""Collecting samples: HTTP against the real agent server on loopback, SSH fallback branches, budgets."""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from edgeclu.agent.server import AgentHTTPServer, SampleCache
from edgeclu.errors import EdgecluError, Unreachable
from edgeclu.health import collect
from edgeclu.inventory import Host, parse_inventory
from edgeclu.transport import Result

SAMPLE = {"schema": 1, "agent_version": "0.1.0", "host": {"hostname": "n1"}}


@pytest.fixture
def agent_server():
    servers = []

    def start(token="", sample=SAMPLE):
        srv = AgentHTTPServer("127.0.0.1", 0, SampleCache(lambda: sample, 0), token)
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(srv)
        return srv.server_address[1]

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def odd_server():
    """A server answering /health with whatever the test says (status, body)."""
    servers = []

    def start(status, body):
        class H(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(srv)
        return srv.server_address[1]

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def test_fetch_from_the_real_agent_server(agent_server):
    port = agent_server()
    assert collect.fetch_agent("127.0.0.1", port, None, 2) == SAMPLE


def test_token_is_sent_and_required(agent_server):
    port = agent_server(token="s3cret")
    assert collect.fetch_agent("127.0.0.1", port, "s3cret", 2) == SAMPLE
    with pytest.raises(collect.AgentError, match="^agent refused our token$"):
        collect.fetch_agent("127.0.0.1", port, "wrong", 2)
    with pytest.raises(collect.AgentError, match=r"agent wants a token \(set agent_token_file\)"):
        collect.fetch_agent("127.0.0.1", port, None, 2)


@pytest.mark.parametrize(("status", "body", "message"), [
    (200, "{not json", "agent answered with invalid JSON"),
    (200, "[1, 2]", "answer is not a JSON object"),
    (200, json.dumps({"schema": 2}), "unsupported /health schema 2"),
    (500, json.dumps({"error": "sample failed"}), "HTTP 500 from the agent"),
])
def test_bad_answers(odd_server, status, body, message):
    port = odd_server(status, body)
    with pytest.raises(collect.AgentError, match=message.replace("(", r"\(").replace(")", r"\)")):
        collect.fetch_agent("127.0.0.1", port, None, 2)


def test_nothing_listening_fails_fast():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(collect.AgentError, match=f"port {port}: Connection refused"):
        collect.fetch_agent("127.0.0.1", port, None, 5)
    assert time.monotonic() - t0 < 1


def test_silent_agent_times_out_within_budget():
    with socket.socket() as s:  # accepts (backlog) but never answers
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        t0 = time.monotonic()
        with pytest.raises(collect.AgentError, match=r"no answer on port \d+ within 0.5s"):
            collect.fetch_agent("127.0.0.1", s.getsockname()[1], None, 0.5)
        assert 0.4 < time.monotonic() - t0 < 1.5


class ScriptedRemote:
    """Test double for edgeclu.transport.Remote: replays one canned outcome for the one-shot agent."""

    def __init__(self, name, outcome):
        self.name, self.outcome, self.commands, self.closed = name, outcome, [], False

    def run(self, command, *, sudo=False, check=True, timeout=None):
        self.commands.append((command, sudo, timeout))
        if isinstance(self.outcome, Exception):
            raise self.outcome
        code, out, err = self.outcome
        return Result(self.name, command, code, out, err)

    def close(self):
        self.closed = True


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


HOST = Host("n1", "agent", "127.0.0.1", "root", 22, None)


@pytest.mark.parametrize(("outcome", "expected"), [
    ((0, json.dumps(SAMPLE), ""), {"sample": SAMPLE, "via": "ssh", "reachable": True, "error": None}),
    ((1, "", "/usr/bin/python3: Error while finding module specification for 'edgeclu.agent' "
             "(ModuleNotFoundError: No module named 'edgeclu')\n"),
     {"sample": None, "via": None, "reachable": True, "error": "agent not installed on the node"}),
    ((0, "garbage", ""), {"sample": None, "via": None, "reachable": True,
                          "error": "one-shot agent printed invalid JSON"}),
    (Unreachable("n1", "127.0.0.1:22 timed out after 2s"),
     {"sample": None, "via": None, "reachable": False, "error": "127.0.0.1:22 timed out after 2s"}),
])
def test_ssh_fallback(outcome, expected):
    remotes = []

    def factory(host, budget):
        remotes.append(ScriptedRemote(host.name, outcome))
        assert 0 < budget <= 3
        return remotes[-1]

    r = collect.poll_node(HOST, port=_free_port(), token=None, timeout=3, remote_factory=factory)
    assert {k: getattr(r, k) for k in expected} == expected
    assert r.agent_error.endswith("Connection refused")
    [remote] = remotes
    assert remote.commands[0][:2] == (collect.ONCE_COMMAND, True) and remote.closed


def test_no_ssh_fallback_means_down(agent_server):
    r = collect.poll_node(HOST, port=_free_port(), token=None, timeout=1, remote_factory=None, ssh_fallback=False)
    assert (r.reachable, r.sample, r.error.endswith("Connection refused")) == (False, None, True)
    good = collect.poll_node(HOST, port=agent_server(), token=None, timeout=1, remote_factory=None)
    assert (good.via, good.sample) == ("agent", SAMPLE)


def test_kube_status_first_answering_server_wins():
    doc = json.dumps({"items": [{"metadata": {"name": "s1"}, "status": {"conditions": [
        {"type": "Ready", "status": "True"}]}}]})
    outcomes = {"s1": Unreachable("s1", "down"), "s2": (0, doc, ""), "s3": (0, doc, "")}
    servers = [Host(n, "server", n, "root", 22, None) for n in outcomes]
    res = collect.kube_status(servers, timeout=2, remote_factory=lambda h, b: ScriptedRemote(h.name, outcomes[h.name]))
    assert (res.source, list(res.nodes), res.error) == ("s2", ["s1"], None)
    assert res.errors == {"s1": "down"}


@pytest.mark.parametrize(("outcomes", "error"), [
    ({"s1": (127, "", "")}, None),  # k3s not installed: no Kubernetes column, not an error
    ({"s1": (127, "", ""), "s2": Unreachable("s2", "down")}, None),
    ({"s1": (1, "", "The connection to the server 127.0.0.1:6443 was refused\n")},
     "s1: kubectl failed: The connection to the server 127.0.0.1:6443 was refused"),
    ({"s1": (0, "oops", "")}, "s1: kubectl printed something unexpected: Expecting value: line 1 column 1 (char 0)"),
])
def test_kube_status_without_an_answer(outcomes, error):
    servers = [Host(n, "server", n, "root", 22, None) for n in outcomes]
    res = collect.kube_status(servers, timeout=2, remote_factory=lambda h, b: ScriptedRemote(h.name, outcomes[h.name]))
    assert (res.nodes, res.error) == (None, error)


def test_read_token(tmp_path):
    inv_text = ("k3s_cluster:\n  children: {server: {hosts: {s1: {}}}}\n"
                "  vars: {k3s_version: v1.31.4+k3s1, agent_token_file: %s}\n")
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    assert collect.read_token(parse_inventory(inv_text % token)) == "s3cret"
    other = tmp_path / "other"
    other.write_text("from-the-cli")
    assert collect.read_token(parse_inventory(inv_text % token), other) == "from-the-cli"
    no_token = parse_inventory("k3s_cluster:\n  children: {server: {hosts: {s1: {}}}}\n"
                               "  vars: {k3s_version: v1.31.4+k3s1}\n")
    assert collect.read_token(no_token) is None
    with pytest.raises(EdgecluError, match="No such file"):
        collect.read_token(parse_inventory(inv_text % (tmp_path / "missing")))
    token.write_text("\n")
    with pytest.raises(EdgecluError, match="is empty"):
        collect.read_token(parse_inventory(inv_text % token))


@pytest.mark.parametrize(("samples", "needed"), [
    ([{"k3s": None}], False),
    ([{"k3s": {"installed": False}}, {"k3s": None}], False),
    ([{"k3s": {"installed": True, "active": False}}], True),
    ([{"k3s": None}, None], True),  # a server whose agent did not answer may well run k3s
    ([None], True),
])
def test_kubectl_is_skipped_only_when_every_server_agent_says_no_k3s(samples, needed):
    assert collect.kube_needed(samples) is needed


def test_gather_asks_no_server_over_ssh_when_their_agents_say_no_k3s(agent_server):
    port = agent_server(sample={**SAMPLE, "k3s": {"installed": False}})
    server = Host("n1", "server", "127.0.0.1", "root", 22, None)

    def no_ssh(host, budget):
        raise AssertionError("no SSH expected")

    results, kube_result = collect.gather([server], [server], port=port, token=None, timeout=2,
                                          remote_factory=no_ssh)
    assert (results[0].via, kube_result.nodes, kube_result.error) == ("agent", None, None)
    port = agent_server(sample={**SAMPLE, "k3s": {"installed": True}})
    asked = []
    results, kube_result = collect.gather(
        [server], [server], port=port, token=None, timeout=2,
        remote_factory=lambda h, b: asked.append(h.name) or ScriptedRemote(h.name, (127, "", "")))
    assert asked == ["n1"] and kube_result.error is None
