"""Report building: statuses per node, cells of the table, JSON and the exit code."""

import json

import pytest

from edgeclu.health import kube, report
from edgeclu.health.collect import KubeResult, NodeResult
from edgeclu.health.thresholds import Finding, Thresholds
from edgeclu.inventory import Host

SAMPLE = {
    "schema": 1, "agent_version": "0.1.0", "time": 1700000100.25,
    "host": {"hostname": "pi-1", "arch": "aarch64", "kernel": "6.6.51+rpt-rpi-v8",
             "model": "Raspberry Pi 4 Model B Rev 1.4", "boot_time": 1699900000.0, "uptime_seconds": 100100.25},
    "cpu": {"count": 4, "percent": 12.5, "seconds": []},
    "load": [0.42, 0.3, 0.2],
    "memory": {"total_bytes": 8 * 2**30, "available_bytes": 6 * 2**30, "free_bytes": 5 * 2**30, "used_percent": 25.0},
    "swap": {"total_bytes": 0, "free_bytes": 0, "used_percent": 0.0},
    "disks": [{"mountpoint": "/", "device": "/dev/mmcblk0p2", "fstype": "ext4", "readonly": False,
               "total_bytes": 64e9, "free_bytes": 30e9, "avail_bytes": 27e9, "used_percent": 56.5},
              {"mountpoint": "/boot/firmware", "device": "/dev/mmcblk0p1", "fstype": "vfat", "readonly": False,
               "total_bytes": 5e8, "free_bytes": 4e8, "avail_bytes": 4e8, "used_percent": 20.0}],
    "root_readonly": False,
    "network": [],
    "temperature": {"max_celsius": 61.3, "sensors": []},
    "throttled": {"raw": "0x50000", "now": {"under_voltage": False, "freq_capped": False, "throttled": False,
                                            "soft_temp_limit": False},
                  "since_boot": {"under_voltage": True, "freq_capped": False, "throttled": True,
                                 "soft_temp_limit": False},
                  "source": "/sys/devices/platform/soc/soc:firmware/get_throttled"},
    "k3s": {"role": "server", "unit": "k3s.service", "installed": True, "active_state": "active",
            "sub_state": "running", "active": True, "version": "v1.31.4+k3s1"},
    "errors": [],
}


def host(name, role="agent", address=None):
    return Host(name, role, address or f"10.0.0.{len(name)}", "root", 22, None)


def kube_nodes(*specs):
    return {n: kube.KubeNode(n, ready=r, cordoned=c, version="v1.31.4+k3s1") for n, r, c in specs}


def test_all_fine():
    rep = report.build([NodeResult(host("pi-1", "server"), SAMPLE, "agent")],
                       KubeResult(kube_nodes(("pi-1", True, False)), "pi-1"), Thresholds())
    [n] = rep.nodes
    assert n.findings == [Finding("warning", "power", "under-voltage since boot")]
    assert (n.status, rep.status, rep.exit_code) == ("warning", "warning", 1)
    assert report.row(n) == {
        "NODE": "pi-1", "STATUS": "warning", "ROLE": "server", "VIA": "agent", "CPU": "12%", "LOAD": "0.42",
        "MEM": "25%", "DISK": "56% /", "TEMP": "61°C", "MODEL": "Raspberry Pi 4 Model B Rev 1.4",
        "PI": "under-voltage since boot, throttled since boot", "UPTIME": "1d 3h", "K3S": "server active v1.31.4+k3s1",
        "K8S": "Ready", "CERT": "-", "NOTES": "under-voltage since boot",
    }


def test_each_kind_of_node():
    hot = {**SAMPLE, "temperature": {"max_celsius": 83.0, "sensors": []}, "throttled": None}
    calm = {**SAMPLE, "throttled": None, "k3s": None}
    results = [
        NodeResult(host("pi-1", "server"), hot, "agent"),
        NodeResult(host("pi-2"), calm, "ssh", agent_error="port 9101: Connection refused"),
        NodeResult(host("pi-3"), None, None, reachable=False, agent_error="no answer on port 9101 within 2.0s",
                   error="10.0.0.4:22 timed out after 2s"),
        NodeResult(host("pi-4"), None, None, agent_error="port 9101: Connection refused",
                   error="agent not installed on the node"),
    ]
    rep = report.build(results, KubeResult(), Thresholds())
    assert [(n.name, n.status) for n in rep.nodes] == [
        ("pi-1", "critical"), ("pi-2", "warning"), ("pi-3", "down"), ("pi-4", "warning")]
    assert rep.exit_code == 3
    rows = {n.name: report.row(n) for n in rep.nodes}
    assert rows["pi-1"]["NOTES"] == "83.0°C (limit 80°C)"
    assert rows["pi-2"]["VIA"] == "ssh"
    assert rows["pi-2"]["NOTES"] == "agent not answering (port 9101: Connection refused); sampled over SSH"
    assert rows["pi-3"] == {**{c: "-" for c in report.COLUMNS}, "NODE": "pi-3", "STATUS": "down", "ROLE": "agent",
                            "NOTES": "10.0.0.4:22 timed out after 2s"}
    assert rows["pi-4"]["NOTES"] == "agent not installed on the node" and rows["pi-4"]["CPU"] == "-"
    assert rows["pi-2"]["K8S"] == "-" and rows["pi-2"]["K3S"] == "-"


def test_kubernetes_status_joins_the_rows():
    not_ready = {**SAMPLE, "throttled": None}
    results = [NodeResult(host("pi-1", "server"), not_ready, "agent"),
               NodeResult(host("pi-2"), not_ready, "agent"),
               NodeResult(host("pi-3"), not_ready, "agent")]
    nodes = kube_nodes(("pi-1", True, False), ("pi-2", False, True))
    rep = report.build(results, KubeResult(nodes, "pi-1"), Thresholds())
    assert [(n.name, n.status, report.row(n)["K8S"]) for n in rep.nodes] == [
        ("pi-1", "ok", "Ready"), ("pi-2", "critical", "NotReady,cordoned"), ("pi-3", "warning", "-")]
    assert [f.message for f in rep.nodes[2].findings] == ["not a node of the cluster"]
    assert rep.kube_source == "pi-1"


def test_kubectl_failure_is_a_cluster_warning():
    calm = {**SAMPLE, "throttled": None}
    rep = report.build([NodeResult(host("pi-1", "server"), calm, "agent")],
                       KubeResult(error="pi-1: kubectl failed: connection refused"), Thresholds())
    assert rep.nodes[0].status == "ok"
    assert rep.cluster == [Finding("warning", "kubernetes",
                                   "cannot read node status: pi-1: kubectl failed: connection refused")]
    assert rep.exit_code == 1


def test_json_document():
    rep = report.build([NodeResult(host("pi-1", "server", "192.168.1.10"), SAMPLE, "agent")],
                       KubeResult(kube_nodes(("pi-1", True, False)), "pi-1"), Thresholds(temp_warn=60))
    doc = json.loads(json.dumps(rep.as_dict()))
    assert doc["status"] == "warning" and doc["exit_code"] == 1
    assert doc["thresholds"]["temp_warn"] == 60
    [n] = doc["nodes"]
    assert (n["name"], n["address"], n["via"], n["error"]) == ("pi-1", "192.168.1.10", "agent", None)
    assert n["findings"] == [{"level": "warning", "check": "temperature", "message": "61.3°C (limit 60°C)"},
                             {"level": "warning", "check": "power", "message": "under-voltage since boot"}]
    assert n["kubernetes"]["ready"] is True and n["sample"]["host"]["model"].startswith("Raspberry Pi 4")


@pytest.mark.parametrize(("throttled", "cell"), [
    (None, "-"),
    ({"raw": "0x0", "now": {}, "since_boot": {}}, "ok"),
    ({"now": {"under_voltage": True}, "since_boot": {"under_voltage": True, "freq_capped": True}},
     "under-voltage now, freq capped since boot"),
    ({"now": {"soft_temp_limit": True}, "since_boot": {}}, "soft temp limit now"),
])
def test_pi_cell(throttled, cell):
    assert report.pi_cell(throttled) == cell


@pytest.mark.parametrize(("seconds", "text"), [
    (None, "-"), (59, "0m"), (61, "1m"), (3600 * 5 + 60 * 7, "5h 7m"), (86400 * 3 + 3600 * 2 + 5, "3d 2h")])
def test_duration(seconds, text):
    assert report.duration(seconds) == text
