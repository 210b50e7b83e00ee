"""Two k3s tokens on lab nodes (k3s = the stand-in, tests/k3s_standin: NOT k3s), through the CLI:
a cluster installed with one token moves to two with `edgeclu up`, then `edgeclu token rotate`
replaces both; nodes stay Ready all along (watched every half second), agents never hold the
server token, and the stand-in, like k3s, refuses a server join with the agent token and any
join with a rotated-out token."""

import json
import shlex
import threading
import time

import pytest
import yaml

from tests.integration.lifecycle_util import edgeclu, ok, write_inventory
from tests.k3s_standin.fixtures import V1, k3s_mirror, k3s_releases  # noqa: F401

pytestmark = pytest.mark.lab

SERVERS, AGENTS = ["node1", "node2"], ["node3"]
# heartbeats every second, NotReady after 8 s without one (k3s: 10 s / 40 s)
GRACE = {"kubelet-arg": ["node-status-update-frequency=1s"],
         "kube-controller-manager-arg": ["node-monitor-grace-period=8s"]}


class ReadyWatch:
    """Polls `kubectl get nodes` on a server every 0.5 s and records every node seen not Ready."""

    def __init__(self, lab, names):
        self.lab, self.names, self.seen, self.polls = lab, names, [], 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.5):
            for server in SERVERS:
                try:
                    doc = json.loads(self.lab.exec(server, "k3s kubectl get nodes -o json"))
                    break
                except (RuntimeError, ValueError):
                    continue  # this server is restarting: ask the other
            else:
                continue
            self.polls += 1
            ready = {i["metadata"]["name"]: next(c["status"] for c in i["status"]["conditions"]
                                                 if c["type"] == "Ready") for i in doc["items"]}
            self.seen += [(time.monotonic(), n, ready.get(n)) for n in self.names if ready.get(n) != "True"]

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)


def _config(lab, node):
    return yaml.safe_load(lab.exec(node, "cat /etc/rancher/k3s/config.yaml"))


def _probe_join(lab, mirror, verb, token):
    """Try to join the cluster from the spare node (node4) as `k3s server`/`k3s agent` with
    ``token``; returns (exit code, journal-like stderr)."""
    url = f"{mirror.url}/{V1.replace('+', '%2B')}/k3s"
    lab.exec("node4", "test -x /usr/local/bin/k3s || python3 -c " + shlex.quote(
        f"import urllib.request, os; urllib.request.urlretrieve({url!r}, '/usr/local/bin/k3s'); "
        "os.chmod('/usr/local/bin/k3s', 0o755)"))
    cfg = {"server": f"https://{lab.nodes['node1'].ip}:6443", "token": token, "node-name": "probe",
           "data-dir": "/tmp/probe-data"}
    lab.exec("node4", "rm -rf /tmp/probe-data; umask 077; cat > /tmp/probe.yaml <<'EOF'\n"
                      f"{yaml.safe_dump(cfg)}EOF")
    return lab.exec("node4", f"timeout 60 k3s {verb} --config /tmp/probe.yaml >/dev/null 2>/tmp/probe.err; "
                             "echo $?; cat /tmp/probe.err").split("\n", 1)


def test_one_token_cluster_moves_to_two_then_rotation_keeps_every_node_ready(fresh_lab, k3s_mirror, tmp_path):  # noqa: F811
    lab = fresh_lab(4)  # node4 is not in the cluster: it tries to join with the tokens
    mirror = k3s_mirror(lab)
    inv = write_inventory(tmp_path, lab, mirror, SERVERS, AGENTS, k3s_extra_config=GRACE)
    ok(edgeclu(tmp_path, "up", "-i", str(inv)))
    secrets = tmp_path / "secrets"
    server_token = (secrets / "token").read_text().strip()

    # make it the cluster an older edgeclu installed: one token for servers and agents
    for s in SERVERS:
        lab.exec(s, "sed -i '/^agent-token:/d' /etc/rancher/k3s/config.yaml && systemctl restart k3s")
    for a in AGENTS:
        lab.exec(a, f"sed -i 's/^token: .*/token: {server_token}/' /etc/rancher/k3s/config.yaml && "
                    "systemctl restart k3s-agent")
    (secrets / "agent-token").unlink()
    assert lab.exec("node1", "readlink /var/lib/rancher/k3s/server/agent-token").strip() == "token"
    assert _config(lab, "node3")["token"] == server_token

    names = SERVERS + AGENTS
    with ReadyWatch(lab, names) as watch:
        moved = ok(edgeclu(tmp_path, "up", "-i", str(inv)))
        time.sleep(2)
    assert watch.polls > 10 and watch.seen == [], watch.seen
    agent_token = (secrets / "agent-token").read_text().strip()
    assert agent_token != server_token and (secrets / "agent-token").stat().st_mode & 0o777 == 0o600
    assert agent_token not in moved.stdout + moved.stderr and server_token not in moved.stdout + moved.stderr
    for s in SERVERS:
        assert _config(lab, s)["token"] == server_token and _config(lab, s)["agent-token"] == agent_token
    # an agent's config.yaml (readable from its SD card) holds the agent token, and no server token
    text = lab.exec("node3", "cat /etc/rancher/k3s/config.yaml")
    assert yaml.safe_load(text)["token"] == agent_token and server_token not in text
    assert lab.exec("node1", "cat /var/lib/rancher/k3s/server/agent-token").strip().endswith(f"::node:{agent_token}")

    # like k3s: the agent token does not join a server, the server token does not join as "node"
    code, err = _probe_join(lab, mirror, "server", agent_token)
    assert code != "0" and "the server rejected the token (401 Unauthorized)" in err, err

    # rotate both: k3s token rotate on a server, a new agent token, every node restarted, all Ready
    with ReadyWatch(lab, names) as watch:
        rotated = ok(edgeclu(tmp_path, "token", "rotate", "-i", str(inv)))
        time.sleep(2)
    assert watch.polls > 10 and watch.seen == [], watch.seen
    assert "rotated: the agent and server token(s); 3 node(s) restarted with the new one, all Ready" in \
        " ".join(rotated.stderr.split())
    new_server = (secrets / "token").read_text().strip()
    new_agent = (secrets / "agent-token").read_text().strip()
    assert new_server.endswith("::server:" + new_server.rsplit(":", 1)[1]) and server_token not in new_server
    assert new_agent not in (agent_token, server_token)
    for secret in (new_server, new_agent, server_token, agent_token):
        assert secret not in rotated.stdout + rotated.stderr
    for s in SERVERS:
        assert _config(lab, s)["token"] == new_server and _config(lab, s)["agent-token"] == new_agent
    assert _config(lab, "node3")["token"] == new_agent
    # the old tokens are refused, the new agent token joins an agent
    code, err = _probe_join(lab, mirror, "server", server_token)
    assert code != "0" and "the server rejected the token (401 Unauthorized)" in err, err
    code, err = _probe_join(lab, mirror, "agent", agent_token)
    assert code != "0" and "rejected the token (401 Unauthorized)" in err, err
    code, err = _probe_join(lab, mirror, "server", new_agent)
    assert code != "0" and "the server rejected the token (401 Unauthorized)" in err, err
    # every node survives a restart with what its config.yaml now says
    for s in SERVERS:
        lab.exec(s, "systemctl restart k3s")
    lab.exec("node3", "systemctl restart k3s-agent")
    ready = json.loads(lab.exec("node1", "k3s kubectl get nodes -o json"))
    assert {i["metadata"]["name"] for i in ready["items"]} >= set(names)
    assert ok(edgeclu(tmp_path, "up", "-i", str(inv), "--json"))
