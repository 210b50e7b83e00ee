"""The node agent on real lab nodes: installed by agent.yml as a non-root SSH user, running as an unprivileged
user under the real hardened systemd unit, idempotent, token-protected, robust to bad requests and floods,
bound to the node's own address, answering mDNS on its link only, and a simulated Pi."""

import json
import re
import socket
import struct
import subprocess
import threading
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
SECRETS = ("mkdir -p /etc/rancher/k3s /var/lib/rancher/k3s/server && umask 077 && "
           "echo 'token: K10secret' > /etc/rancher/k3s/config.yaml && "
           "echo K10secret > /var/lib/rancher/k3s/server/token")
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
    for node in lab3.nodes:  # what k3s keeps there (its token): the agent must not reach it
        lab3.exec(node, SECRETS)
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


def _main_pid(lab, node):
    return _unit(lab, node, "MainPID")["MainPID"]


def test_runs_as_an_unprivileged_user_that_cannot_reach_cluster_secrets(agents):
    lab, _, _ = agents
    for node in lab.nodes:
        pid = _main_pid(lab, node)
        assert lab.exec(node, f"ps -o user= -p {pid}").strip() == "edgeclu-agent"
        status = dict(line.split(":\t", 1) for line in lab.exec(node, f"cat /proc/{pid}/status").splitlines())
        uid = status["Uid"].split()
        assert len(set(uid)) == 1 and uid[0] != "0", status["Uid"]  # real, effective, saved, fs: all the same
        # PrivateUsers=yes: its user namespace maps only root and itself
        assert len(lab.exec(node, f"cat /proc/{pid}/uid_map").strip().splitlines()) == 2
        # inside its mount namespace, as its user: the token files, /etc/shadow, other processes are out of reach
        as_agent = f"nsenter -t {pid} -m -U --preserve-credentials -S {uid[0]} -G {uid[0]} sh -c"
        for path in ("/etc/rancher/k3s/config.yaml", "/var/lib/rancher/k3s/server/token", "/etc/shadow",
                     "/etc/edgeclu/agent.json"):
            out = lab.exec(node, f"{as_agent} 'cat {path} 2>&1 || true'")
            assert "K10secret" not in out and "Permission denied" in out, (node, path, out)
        # ProtectProc=invisible: PID 1 (root's) is not even there
        assert lab.exec(node, f"{as_agent} 'test -e /proc/1 && echo seen || echo hidden'").strip() == "hidden"
        # ... while the agent reads its credential
        cred = lab.exec(node, f"{as_agent} 'cat /run/credentials/edgeclu-agent.service/agent.json'")
        assert json.loads(cred)["token"] == TOKEN


def test_systemd_analyze_security_scores_at_most_1_5(agents):
    """The lab runs Debian 12's systemd 252: `systemd-analyze security` (and its --threshold) exist."""
    lab, _, _ = agents
    out = lab.exec("node1", "systemd-analyze security edgeclu-agent.service")
    level = float(re.search(r"Overall exposure level for edgeclu-agent\.service: (\d+\.\d+)", out).group(1))
    assert level <= 1.5, out
    lab.exec("node1", "systemd-analyze security --threshold=15 edgeclu-agent.service >/dev/null")  # exits 0


def test_it_binds_the_nodes_own_address_only(agents):
    lab, _, _ = agents
    for node in lab.nodes:
        listening = lab.exec(node, "ss -Hltn 'sport = :9101'").split()
        assert f"{lab.nodes[node].ip}:9101" in listening and "0.0.0.0:9101" not in listening, listening
        assert json.loads(lab.exec(node, "cat /etc/edgeclu/agent.json"))["listen"] == lab.nodes[node].ip
    with pytest.raises(RuntimeError):  # not on loopback: only the inventory's address
        lab.exec("node1", "python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", 9101), 2)'")


def test_the_sandboxed_agent_reports_the_disks_root_reports(agents):
    lab, _, _ = agents
    served = json.loads(_get(lab, "node1", "/health", token=TOKEN)[1])
    as_root = json.loads(lab.exec("node1", f"{collect.ONCE_COMMAND} --config /etc/edgeclu/agent.json"))
    assert [(d["mountpoint"], d["device"], d["readonly"]) for d in served["disks"]] == [
        (d["mountpoint"], d["device"], d["readonly"]) for d in as_root["disks"]]
    assert served["root_readonly"] is as_root["root_readonly"] is False
    assert served["k3s"] == as_root["k3s"]  # systemd asked over D-Bus as a non-root user: the same answer


FLOOD = """
import json, socket, sys, time
target, slow_n, idle_n, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
t0 = time.monotonic()
def connect():
    s = socket.create_connection((target, 9101), 5)
    s.setblocking(False)
    return s
slow = [[connect(), None] for _ in range(slow_n)]  # first: they take slots under the per-source cap
idle = [[connect(), None] for _ in range(idle_n)]
req = b"GET /health HTTP/1.1\\r\\nX-Slow: " + b"y" * 200
def ended(pair):  # the server answered (408) or closed: when, since the flood began
    if pair[1] is None:
        try:
            pair[0].recv(100, socket.MSG_PEEK)
            pair[1] = round(time.monotonic() - t0, 2)
        except BlockingIOError:
            pass
        except OSError:
            pair[1] = round(time.monotonic() - t0, 2)
i = 0
while time.monotonic() - t0 < seconds:
    for pair in slow:
        if pair[1] is None:
            try:
                pair[0].send(req[i % len(req):i % len(req) + 1])  # a byte a second
            except OSError:
                pass
        ended(pair)
    for pair in idle:
        ended(pair)
    i += 1
    time.sleep(1)
print(json.dumps({"slow_ended": [p[1] for p in slow], "idle_ended": [p[1] for p in idle]}))
"""


def test_a_flood_from_one_source_does_not_stop_health_for_another(agents):
    """node2 floods node1's agent (80 idle connections, more than the unit's TasksMax, and 6 clients
    sending a byte a second); the controller, another source, still gets /health within 1 s throughout."""
    lab, _, _ = agents
    target = lab.nodes["node1"].ip
    lab.exec("node2", f"cat > /tmp/flood.py <<'EOF'\n{FLOOD}\nEOF")
    result = {}
    attacker = threading.Thread(target=lambda: result.update(json.loads(lab.exec(
        "node2", f"python3 /tmp/flood.py {target} 6 80 9"))))
    attacker.start()
    try:
        time.sleep(1.5)  # the flood is in place
        took = []
        while attacker.is_alive() and len(took) < 40:
            t0 = time.monotonic()
            status, body = _get(lab, "node1", "/health", token=TOKEN, timeout=3)
            took.append(time.monotonic() - t0)
            assert status == 200 and json.loads(body)["host"]["hostname"] == "node1"
            time.sleep(0.2)
    finally:
        attacker.join(30)
    assert len(took) >= 10 and max(took) < 1.0, f"/health under the flood: {len(took)} requests, max {max(took):.2f}s"
    # what the attacker saw: the 6 slow clients and 2 idle ones filled its per-source cap (8) and were
    # cut at the deadline for a whole request (5 s), not after the 9 s they went on; the other 78 idle
    # connections were closed at once
    assert all(t is not None and 4 <= t < 7 for t in result["slow_ended"]), result
    ended = sorted(result["idle_ended"])
    assert None not in ended and ended[77] < 2 and ended[78] >= 4, result
    u = _unit(lab, "node1", "NRestarts", "ActiveState", "MainPID")
    assert (u["NRestarts"], u["ActiveState"]) == ("0", "active"), u
    threads = re.search(r"^Threads:\s+(\d+)", lab.exec("node1", f"cat /proc/{u['MainPID']}/status"), re.M)
    assert int(threads.group(1)) <= 8  # main, the HTTP loop, 2 workers, mDNS: however many clients came


def _mdns_query(name: str, qtype: int) -> bytes:
    return struct.pack("!HHHHHH", 7, 0, 1, 0, 0, 0) + b"".join(
        bytes((len(p),)) + p.encode() for p in name.rstrip(".").split(".")) + b"\0" + struct.pack("!HH", qtype, 1)


def test_mdns_answers_on_link_queries_only(agents):
    """RFC 6762 section 11: a unicast query to port 5353 from an address off the LAN is not answered."""
    lab, _, _ = agents
    off_link = "10.78.5.1"  # an extra address of the controller, on no subnet node1 has (its route: via ctl)
    subprocess.run(["ip", "addr", "add", f"{off_link}/24", "dev", "eth0"], check=True)
    try:
        def ask(source):  # a one-shot (legacy) query to the group, which is answered by unicast to its sender
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind((source, 0))
                s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(source))
                s.settimeout(1.5)
                s.sendto(_mdns_query("node1._edgeclu._tcp.local.", 16), ("224.0.0.251", 5353))
                try:
                    return s.recv(9000)
                except TimeoutError:
                    return None
        reply = ask("10.77.0.1")  # on the link: answered
        assert reply is not None and b"node1" in reply
        assert ask(off_link) is None
    finally:
        subprocess.run(["ip", "addr", "del", f"{off_link}/24", "dev", "eth0"], check=True)
