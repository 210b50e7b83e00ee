"""`edgeclu health` on lab nodes: real agents (agent.yml, real hardened unit), a simulated Pi, SSH fallback,
a bearer token, and a node that loses power."""

import json
import time

import pytest
from typer.testing import CliRunner

from edgeclu.cli import app
from edgeclu.playbook import run_playbook
from tests.k3s_standin.fixtures import k3s_mirror, k3s_releases  # noqa: F401 - pytest fixtures

pytestmark = pytest.mark.lab

K3S = "v1.31.4+k3s1"
PI_MODEL = "Raspberry Pi 4 Model B Rev 1.4"
# get_throttled 0x50005: under-voltage now + throttled now, and both since boot
PI_FILES = ("mkdir -p /opt/pi-sim/thermal/thermal_zone0 && "
            f"printf '{PI_MODEL}\\000' > /opt/pi-sim/model && echo 50005 > /opt/pi-sim/get_throttled && "
            "echo cpu-thermal > /opt/pi-sim/thermal/thermal_zone0/type && "
            "echo 82000 > /opt/pi-sim/thermal/thermal_zone0/temp")
PI_SETTINGS = {"model_paths": ["/opt/pi-sim/model"], "throttled_path": "/opt/pi-sim/get_throttled",
               "thermal_dir": "/opt/pi-sim/thermal"}
# the lab's disks and memory are this machine's: keep their levels out of what these tests assert
CALM = ["--disk-warn", "99.9", "--disk-crit", "100", "--mem-warn", "99.9"]


@pytest.fixture(scope="module")
def cluster(lab3, tmp_path_factory):
    """Agents on node1..3 with a token; node2 is a Raspberry Pi (model, throttling, 82 °C) by its files."""
    d = tmp_path_factory.mktemp("health")
    token = d / "agent-token"
    token.write_text("s3cret-agent-token\n")
    inv = d / "inventory.yml"
    inv.write_text(lab3.inventory_yaml(servers=["node1"], agents=["node2", "node3"], user="edge",
                                       extra_vars={"k3s_version": K3S, "agent_token_file": str(token)}))
    lab3.exec("node2", PI_FILES)
    assert run_playbook(inv, "agent.yml", known_hosts=lab3.known_hosts).ok
    assert run_playbook(inv, "agent.yml", known_hosts=lab3.known_hosts, limit="node2",
                        extravars={"agent_config_extra": PI_SETTINGS}).ok
    return lab3, inv, d


def _health(inv, *args):
    t0 = time.monotonic()
    r = CliRunner().invoke(app, ["health", "-i", str(inv), *args])
    return r, time.monotonic() - t0


def test_simulated_pi_is_critical_and_shows_model_and_throttling(cluster):
    lab, inv, _ = cluster
    r, wall = _health(inv, "--json", *CALM)
    assert r.exit_code == 2, r.output
    doc = json.loads(r.stdout)
    nodes = {n["name"]: n for n in doc["nodes"]}
    assert {n: (v["status"], v["via"]) for n, v in nodes.items()} == {
        "node1": ("ok", "agent"), "node2": ("critical", "agent"), "node3": ("ok", "agent")}
    assert nodes["node2"]["findings"] == [
        {"level": "critical", "check": "temperature", "message": "82.0°C (limit 80°C)"},
        {"level": "critical", "check": "power", "message": "under-voltage now"},
        {"level": "warning", "check": "throttling", "message": "throttled now"},
    ]
    sample = nodes["node2"]["sample"]
    assert sample["host"]["model"] == PI_MODEL and sample["host"]["hostname"] == "node2"
    assert sample["throttled"]["raw"] == "0x50005"
    assert nodes["node1"]["sample"]["host"]["model"] is None and nodes["node1"]["sample"]["throttled"] is None
    assert (doc["status"], doc["exit_code"]) == ("critical", 2)
    assert wall < 3, f"health of 3 healthy agents took {wall:.2f}s (no per-node timeout should be hit)"

    # the table shows the same, one row per node
    r, _ = _health(inv, *CALM)
    assert r.exit_code == 2
    rows = {line.split()[0]: line for line in r.stdout.splitlines()[1:]}
    assert sorted(rows) == ["node1", "node2", "node3"]
    assert PI_MODEL in rows["node2"] and "under-voltage now, throttled now" in rows["node2"]
    assert " critical " in rows["node2"] and " 82°C " in rows["node2"]
    assert rows["node1"].split()[1] == "ok"


def test_thresholds_are_configurable(cluster):
    _, inv, _ = cluster
    r, _ = _health(inv, "--json", *CALM, "--temp-warn", "85", "--temp-crit", "90", "--limit", "node2")
    nodes = {n["name"]: n for n in json.loads(r.stdout)["nodes"]}
    assert [f["check"] for f in nodes["node2"]["findings"]] == ["power", "throttling"]  # 82 °C is fine now
    r, _ = _health(inv, "--temp-warn", "90", "--temp-crit", "80")
    assert r.exit_code == 1 and "--temp-warn 90 is above --temp-crit 80" in r.stderr


def test_wrong_token_falls_back_to_ssh(cluster):
    _, inv, d = cluster
    wrong = d / "wrong-token"
    wrong.write_text("guess")
    r, _ = _health(inv, "--json", *CALM, "--token-file", str(wrong), "--limit", "node1,node3")
    assert r.exit_code == 1, r.output
    for n in json.loads(r.stdout)["nodes"]:
        assert (n["status"], n["via"]) == ("warning", "ssh")
        assert n["findings"] == [{"level": "warning", "check": "agent",
                                  "message": "agent not answering (agent refused our token); sampled over SSH"}]
        assert n["sample"]["host"]["hostname"] == n["name"]


def test_stopped_agent_is_sampled_over_ssh_with_its_config(cluster):
    lab, inv, _ = cluster
    lab.exec("node2", "systemctl stop edgeclu-agent")
    try:
        r, _ = _health(inv, "--json", *CALM, "--limit", "node2")
        [n] = json.loads(r.stdout)["nodes"]
        assert n["via"] == "ssh" and n["status"] == "critical"
        assert n["sample"]["host"]["model"] == PI_MODEL  # the one-shot agent read /etc/edgeclu/agent.json
        assert "agent not answering (port 9101: Connection refused); sampled over SSH" in \
            [f["message"] for f in n["findings"]]
        # without the SSH fallback the node counts as down
        r, _ = _health(inv, "--json", *CALM, "--limit", "node2", "--no-ssh")
        assert r.exit_code == 3 and json.loads(r.stdout)["nodes"][0]["status"] == "down"
    finally:
        lab.exec("node2", "systemctl start edgeclu-agent")


def test_node_without_power_is_down_within_the_timeout(cluster):
    """Runs last in this module: node3 stays off."""
    lab, inv, _ = cluster
    lab.stop("node3", hard=True)
    r, wall = _health(inv, "--json", *CALM, "--timeout", "2")
    assert r.exit_code == 3, r.output
    nodes = {n["name"]: n for n in json.loads(r.stdout)["nodes"]}
    assert nodes["node3"]["status"] == "down" and nodes["node3"]["sample"] is None
    assert lab.nodes["node3"].ip in nodes["node3"]["error"]
    assert (nodes["node1"]["status"], nodes["node2"]["status"]) == ("ok", "critical")
    assert wall < 2 + 1.5, f"a dead node held the report for {wall:.2f}s (timeout 2s)"
    r, _ = _health(inv, *CALM, "--timeout", "2")
    assert r.exit_code == 3
    row = next(line for line in r.stdout.splitlines() if line.startswith("node3"))
    assert row.split()[1] == "down"


def test_kubernetes_columns_from_the_k3s_stand_in(fresh_lab, k3s_mirror, tmp_path):  # noqa: F811
    """site.yml installs the k3s stand-in (tests/k3s_standin: NOT k3s) from a mirror; health reads kubectl."""
    lab = fresh_lab(3)
    mirror = k3s_mirror(lab)
    inv = tmp_path / "inventory.yml"
    inv.write_text(lab.inventory_yaml(servers=["node1"], agents=["node2", "node3"], user="edge", extra_vars={
        "k3s_version": K3S, **mirror.vars, "token_file": str(tmp_path / "token"),
        # heartbeats every second; the status turns Unknown 4 s after the last one (as k8s does, only sooner)
        "k3s_extra_config": {"kubelet-arg": ["node-status-update-frequency=1s"],
                             "kube-controller-manager-arg": ["node-monitor-grace-period=4s"]}}))
    for playbook in ("site.yml", "agent.yml"):
        result = run_playbook(inv, playbook, known_hosts=lab.known_hosts)
        assert result.ok, (playbook, result.failed_hosts)

    r, _ = _health(inv, "--json", *CALM)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["kubernetes"] == {"source": "node1", "findings": []}
    for n in doc["nodes"]:
        role = "server" if n["name"] == "node1" else "agent"
        assert (n["status"], n["kubernetes"]["ready"], n["kubernetes"]["cordoned"]) == ("ok", True, False)
        assert n["sample"]["k3s"]["role"] == role and n["sample"]["k3s"]["active"] is True
        assert n["sample"]["k3s"]["version"] == K3S
    rows = {line.split()[0]: line for line in _health(inv, *CALM)[0].stdout.splitlines()[1:]}
    # K8S, then CERT: the days the server's serving certificate has left (k3s's default: 365), none for agents
    assert "server active v1.31.4+k3s1" in rows["node1"] and rows["node1"].split()[-2:] == ["Ready", "365d"]
    assert rows["node2"].split()[-2:] == ["Ready", "-"]

    # cordon node2, stop k3s on node3: one warning, one critical (unit stopped, kubelet silent)
    lab.exec("node1", "k3s kubectl cordon node2")
    lab.exec("node3", "systemctl stop k3s-agent")
    time.sleep(5)
    r, _ = _health(inv, "--json", *CALM)
    assert r.exit_code == 2, r.output
    nodes = {n["name"]: n for n in json.loads(r.stdout)["nodes"]}
    assert nodes["node2"]["status"] == "warning"
    assert nodes["node2"]["findings"] == [
        {"level": "warning", "check": "kubernetes", "message": "cordoned (unschedulable)"}]
    assert nodes["node3"]["status"] == "critical"
    assert nodes["node3"]["findings"] == [
        {"level": "critical", "check": "k3s", "message": "k3s-agent.service is inactive"},
        {"level": "warning", "check": "kubernetes", "message": "Ready condition unknown"}]
    rows = {line.split()[0]: line for line in _health(inv, *CALM)[0].stdout.splitlines()[1:]}
    assert "Ready,cordoned" in rows["node2"] and " Unknown " in rows["node3"]
