"""Prometheus text output, parsed back with prometheus_client's own parser."""

import copy

from prometheus_client.parser import text_string_to_metric_families

from edgeclu.agent import pi, prom

SAMPLE = {
    "schema": 1,
    "agent_version": "0.1.0",
    "time": 1700000100.25,
    "host": {"hostname": "pi-1", "arch": "aarch64", "kernel": "6.6.51+rpt-rpi-v8",
             "model": 'Raspberry Pi 4 Model B "Rev" 1.4\\x', "boot_time": 1700000000.0,
             "uptime_seconds": 100.2},
    "cpu": {"count": 2, "percent": 12.5, "seconds": [
        {"user": 10.5, "system": 2.0, "idle": 100.0}, {"user": 11.0, "system": 3.25, "idle": 90.0}]},
    "load": [0.5, 0.25, 0.1],
    "memory": {"total_bytes": 4000000000, "available_bytes": 3000000000, "free_bytes": 2500000000,
               "used_percent": 25.0},
    "swap": {"total_bytes": 0, "free_bytes": 0, "used_percent": 0.0},
    "disks": [
        {"mountpoint": "/", "device": "/dev/mmcblk0p2", "fstype": "ext4", "readonly": False,
         "total_bytes": 31000000000, "free_bytes": 20000000000, "avail_bytes": 18000000000, "used_percent": 40.1},
        {"mountpoint": "/boot/firmware", "device": "/dev/mmcblk0p1", "fstype": "vfat", "readonly": True,
         "total_bytes": 500000000, "free_bytes": 400000000, "avail_bytes": 400000000, "used_percent": 20.0},
    ],
    "root_readonly": False,
    "network": [{"device": "eth0", "rx_bytes": 123456, "tx_bytes": 654321},
                {"device": "wlan0", "rx_bytes": 0, "tx_bytes": 7}],
    "temperature": {"max_celsius": 81.2, "sensors": [
        {"name": "cpu_thermal", "sensor": "temp1", "celsius": 81.2, "source": "hwmon"},
        {"name": "cpu-thermal", "zone": "0", "celsius": 80.5, "source": "thermal"}]},
    "throttled": dict(pi.decode_throttled(0x50005), source="/sys/devices/platform/soc/soc:firmware/get_throttled"),
    "k3s": {"role": "server", "unit": "k3s.service", "installed": True, "active_state": "active",
            "sub_state": "running", "active": True, "version": "v1.31.4+k3s1"},
    "errors": [],
}


def _parse(text):
    """{(sample name, frozenset(labels)): value} and {family name: type}."""
    values, types = {}, {}
    for fam in text_string_to_metric_families(text):
        types[fam.name] = fam.type
        for s in fam.samples:
            values[(s.name, frozenset(s.labels.items()))] = s.value
    return values, types


def test_node_exporter_names_and_values():
    values, types = _parse(prom.render(SAMPLE))
    v = lambda name, **labels: values[(name, frozenset(labels.items()))]  # noqa: E731
    assert v("node_load1") == 0.5 and v("node_load5") == 0.25 and v("node_load15") == 0.1
    assert v("node_memory_MemAvailable_bytes") == 3e9
    assert v("node_memory_MemTotal_bytes") == 4e9
    assert v("node_filesystem_avail_bytes", device="/dev/mmcblk0p2", fstype="ext4", mountpoint="/") == 18e9
    assert v("node_filesystem_readonly", device="/dev/mmcblk0p1", fstype="vfat", mountpoint="/boot/firmware") == 1
    assert v("node_network_receive_bytes_total", device="eth0") == 123456
    assert v("node_network_transmit_bytes_total", device="wlan0") == 7
    assert v("node_boot_time_seconds") == 1700000000
    assert v("node_cpu_seconds_total", cpu="1", mode="system") == 3.25
    assert v("node_hwmon_temp_celsius", chip="cpu_thermal", sensor="temp1") == 81.2
    assert v("node_thermal_zone_temp", type="cpu-thermal", zone="0") == 80.5
    assert types["node_cpu_seconds"] == "counter" and types["node_network_receive_bytes"] == "counter"
    assert types["node_load1"] == "gauge"


def test_edgeclu_metrics_throttling_and_k3s():
    values, _ = _parse(prom.render(SAMPLE))
    v = lambda name, **labels: values[(name, frozenset(labels.items()))]  # noqa: E731
    assert v("edgeclu_rpi_throttled_bits") == 0x50005
    assert v("edgeclu_rpi_throttled", condition="under_voltage", when="now") == 1
    assert v("edgeclu_rpi_throttled", condition="freq_capped", when="now") == 0
    assert v("edgeclu_rpi_throttled", condition="throttled", when="since_boot") == 1
    assert v("edgeclu_k3s_up", role="server", unit="k3s.service", state="active") == 1
    assert v("edgeclu_k3s_info", version="v1.31.4+k3s1") == 1
    assert v("edgeclu_root_readonly") == 0
    assert v("edgeclu_sample_errors") == 0


def test_label_values_are_escaped_and_round_trip():
    values, _ = _parse(prom.render(SAMPLE))
    info = [labels for (name, labels) in values if name == "edgeclu_node_info"]
    assert dict(info[0])["model"] == 'Raspberry Pi 4 Model B "Rev" 1.4\\x'


def test_missing_parts_are_left_out_not_invented():
    s = copy.deepcopy(SAMPLE)
    s.update(throttled=None, k3s={"role": None}, root_readonly=None)
    s["temperature"] = {"max_celsius": None, "sensors": []}
    s["host"]["model"] = None
    text = prom.render(s)
    _, types = _parse(text)
    for absent in ("edgeclu_rpi_throttled", "edgeclu_rpi_throttled_bits", "edgeclu_k3s_up",
                   "node_hwmon_temp_celsius", "node_thermal_zone_temp", "edgeclu_root_readonly"):
        assert absent not in types, absent
    assert 'model=""' in text


def test_every_family_has_help_and_type_once():
    text = prom.render(SAMPLE)
    helps = [line.split()[2] for line in text.splitlines() if line.startswith("# HELP")]
    types = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
    assert helps == types and len(set(helps)) == len(helps)
    assert text.endswith("\n")
