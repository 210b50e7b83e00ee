"""The node agent on real lab nodes: installed by agent.yml as a non-root SSH user, running under the
real hardened systemd unit, idempotent, token-protected, robust to bad requests, and a simulated Pi."""

import json
import socket
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from edgeclu.health import collect
from edgeclu.playbook import run_playbook
from edgeclu.transport import SSHRemote

pytestmark = pytest.mark.lab

TOKEN = "agent-lab-token"
PI_MODEL = "Raspberry Pi 4 Model B Rev 1.4"
# files the agent is pointed at; only node2 has them, so only node2 is a "Pi"
PI_FILES = ("mkdir -p /run/pi/thermal/thermal_zone0 && "
            f"printf '{PI_MODEL}\\000' > /run/pi/model && echo 50005 > /run/pi/get_throttled && "
            "echo cpu-thermal > /run/pi/thermal/thermal_zone0/type && "
            "echo 81500 > /run/pi/thermal/thermal_zone0/temp")
PI_CONFIG = {"model_paths": ["/run/pi/model"], "throttled_path": "/run/pi/get_throttled",
             "thermal_dir": "/run/pi/thermal"}


@pytest.fixture(scope="module")
def agents(lab3, tmp_path_factory):
    d = tmp_path_factory.mktemp("agent")
    (d / "token").write_text(TOKEN + "\n")
    inv = d / "inventory.yml"
    inv.write_text(lab3.inventory_yaml(servers=["node1"], agents=["node2", "node3"], user="edge", extra_vars={
        "k3s_version": "v1.31.4+k3s1", "agent_token_file": str(d / "token")}))
    lab3.exec("node2", PI_FILES)
    first = run_playbook(inv, "agent.yml", known_hosts=lab3.known_hosts,
                         extravars={"agent_config_extra": PI_CONFIG})
    assert first.ok, {h: r.failures for h, r in first.hosts.items()}
    return lab3, inv, first


def _get(lab, node, path, token=None, timeout=5):
    req = urllib.request.Request(f"http://{lab.nodes[node].ip}:9101{path}")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _unit(lab, node, *props):
    out = lab.exec(node, f"systemctl show edgeclu-agent.service -p {','.join(props)}")
    return dict(line.split("=", 1) for line in out.splitlines())


def test_second_run_changes_nothing(agents):
    lab, inv, first = agents
    assert all(h.changed > 0 for h in first.hosts.values())
    again = run_playbook(inv, "agent.yml", known_hosts=lab.known_hosts,
                         extravars={"agent_config_extra": PI_CONFIG})
    assert again.ok
    assert {h: r.changed for h, r in again.hosts.items()} == {"node1": 0, "node2": 0, "node3": 0}


def test_config_holds_the_token_and_is_root_only(agents):
    lab, _, _ = agents
    for node in lab.nodes:
        assert lab.exec(node, "stat -c '%a %U %G' /etc/edgeclu /etc/edgeclu/agent.json").split("\n")[:2] == [
            "700 root root", "600 root root"]
    cfg = json.loads(lab.exec("node1", "cat /etc/edgeclu/agent.json"))
    assert cfg["token"] == TOKEN and cfg["k3s_role"] == "server" and cfg["port"] == 9101
    assert json.loads(lab.exec("node3", "cat /etc/edgeclu/agent.json"))["k3s_role"] == "agent"
    # the edge user cannot read it
    with pytest.raises(RuntimeError):
        lab.exec("node1", "runuser -u edge -- cat /etc/edgeclu/agent.json")


def test_runs_under_the_hardened_unit_without_capabilities(agents):
    lab, _, _ = agents
    for node in lab.nodes:
        u = _unit(lab, node, "ActiveState", "SubState", "UnitFileState", "ProtectSystem", "NoNewPrivileges",
                  "MemoryDenyWriteExecute", "RestrictAddressFamilies", "MainPID", "NRestarts")
        assert (u["ActiveState"], u["SubState"], u["UnitFileState"]) == ("active", "running", "enabled")
        assert (u["ProtectSystem"], u["NoNewPrivileges"], u["MemoryDenyWriteExecute"]) == ("strict", "yes", "yes")
        assert u["NRestarts"] == "0"
        status = lab.exec(node, f"cat /proc/{u['MainPID']}/status")
        caps = dict(line.split(":\t", 1) for line in status.splitlines() if line.startswith("Cap"))
        assert caps["CapEff"].strip() == "0000000000000000" and caps["CapBnd"].strip() == "0000000000000000"
        # the sandbox really is read-only for the agent
        assert "Read-only file system" in lab.exec(
            node, f"nsenter -t {u['MainPID']} -m sh -c 'touch /etc/x 2>&1 || true'")


def test_health_needs_the_token_and_describes_the_node(agents):
    lab, _, _ = agents
    for node, role in (("node1", "server"), ("node2", "agent"), ("node3", "agent")):
        status, body = _get(lab, node, "/health")
        assert status == 401 and json.loads(body) == {"error": "bearer token required"}
        assert _get(lab, node, "/health", token="wrong")[0] == 401
        status, body = _get(lab, node, "/health", token=TOKEN)
        assert status == 200
        doc = json.loads(body)
        assert doc["schema"] == 1 and doc["host"]["hostname"] == node
        assert doc["k3s"]["role"] == role and doc["k3s"]["active"] is False  # no k3s installed here
        assert doc["root_readonly"] is False  # PID 1's view, not the sandbox's read-only one
        assert "/" in [d["mountpoint"] for d in doc["disks"]]
        assert doc["errors"] == []


def test_simulated_pi_model_throttling_and_temperature(agents):
    lab, _, _ = agents
    doc = json.loads(_get(lab, "node2", "/health", token=TOKEN)[1])
    assert doc["host"]["model"] == PI_MODEL
    assert doc["throttled"]["raw"] == "0x50005"
    assert doc["throttled"]["now"] == {"under_voltage": True, "freq_capped": False, "throttled": True,
                                       "soft_temp_limit": False}
    assert doc["throttled"]["since_boot"]["under_voltage"] is True
    assert doc["temperature"]["max_celsius"] == 81.5
    status, body = _get(lab, "node2", "/metrics")  # /metrics is open, like node_exporter
    assert status == 200
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(body.decode()) for s in fam.samples}
    assert samples[("edgeclu_rpi_throttled", (("condition", "under_voltage"), ("when", "now")))] == 1
    assert samples[("node_thermal_zone_temp", (("type", "cpu-thermal"), ("zone", "0")))] == 81.5
    # node1 has no Pi files: no model, no throttling metrics
    doc1 = json.loads(_get(lab, "node1", "/health", token=TOKEN)[1])
    assert doc1["host"]["model"] is None and doc1["throttled"] is None


BROWSE_ON_NODE = """
import time
from zeroconf import IPVersion, ServiceBrowser, Zeroconf
zc = Zeroconf(ip_version=IPVersion.V4Only)
names = set()
class L:
    def add_service(self, z, t, n): names.add(n)
    def update_service(self, z, t, n): pass
    def remove_service(self, z, t, n): pass
ServiceBrowser(zc, "_edgeclu._tcp.local.", L())
time.sleep(3)
for n in sorted(names):
    i = zc.get_service_info("_edgeclu._tcp.local.", n, 3000)
    # this zeroconf browses on lo too, where the avahi of node1 answers for node1.local with 127.0.0.1
    # (issue 11.6): a browser must drop loopback, as edgeclu.discovery does; the agent announces the LAN address
    lan = [a for a in i.parsed_addresses(IPVersion.V4Only) if not a.startswith("127.")]
    print(n, ",".join(lan), i.port, i.properties[b"role"].decode())
zc.close()
"""


def test_debians_old_zeroconf_on_a_node_finds_every_agent(agents):
    """Another mDNS stack than the controller's (python3-zeroconf 0.47.3 next to avahi on node1)."""
    lab, _, _ = agents
    out = lab.exec("node1", f"python3 -c '{BROWSE_ON_NODE}'")
    assert out.splitlines() == [f"{n}._edgeclu._tcp.local. {lab.nodes[n].ip} 9101 {role}"
                                for n, role in (("node1", "server"), ("node2", "agent"), ("node3", "agent"))]


def test_bad_requests_never_crash_it(agents):
    lab, _, _ = agents
    before = _unit(lab, "node3", "MainPID")["MainPID"]
    ip = lab.nodes["node3"].ip
    for raw in (b"garbage\r\n\r\n", b"\x16\x03\x01\x00\xff" + bytes(300), b"GET /health HTTP/1.1\r\n" +
                b"X: y\r\n" * 500 + b"\r\n", b"POST /health HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello"):
        with socket.create_connection((ip, 9101), timeout=5) as s:
            s.sendall(raw)
            s.shutdown(socket.SHUT_WR)
            assert s.recv(12)[9:10] == b"4"
    s = socket.create_connection((ip, 9101), timeout=5)  # a client that connects and says nothing
    assert _get(lab, "node3", "/metrics")[0] == 200  # ... does not block others
    s.close()
    assert _get(lab, "node3", "/nope")[0] == 404
    u = _unit(lab, "node3", "MainPID", "NRestarts", "ActiveState")
    assert (u["MainPID"], u["NRestarts"], u["ActiveState"]) == (before, "0", "active")


def test_once_over_ssh_as_the_fallback_runs_it(agents):
    lab, _, _ = agents
    r = SSHRemote("node3", lab.nodes["node3"].ip, user="edge", key_file=str(lab.key), known_hosts=lab.known_hosts)
    try:
        res = r.run(collect.ONCE_COMMAND, sudo=True, timeout=20)
    finally:
        r.close()
    doc = json.loads(res.stdout)
    assert doc["host"]["hostname"] == "node3" and doc["k3s"]["role"] == "agent"


def test_a_config_change_restarts_the_agent(agents):
    lab, inv, _ = agents
    before = _unit(lab, "node3", "MainPID")["MainPID"]
    r = run_playbook(inv, "agent.yml", known_hosts=lab.known_hosts, limit="node3",
                     extravars={"agent_config_extra": {**PI_CONFIG, "hostname": "renamed-node3"}})
    assert r.ok and r.hosts["node3"].changed == 2  # agent.json, then the restart handler
    assert _unit(lab, "node3", "MainPID")["MainPID"] != before
    deadline = time.monotonic() + 10
    while True:  # the restarted agent needs a moment to import and bind
        try:
            status, body = _get(lab, "node3", "/health", token=TOKEN)
            break
        except OSError:
            assert time.monotonic() < deadline, "agent did not come back after the restart"
            time.sleep(0.1)
    assert status == 200
    doc = json.loads(body)
    assert doc["host"]["hostname"] == "renamed-node3"
