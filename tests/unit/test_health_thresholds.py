"""Health threshold rules, table-style: one sample fragment in, exact findings out."""

import pytest

from edgeclu.health.thresholds import Finding, Thresholds, evaluate, worst

W, C = "warning", "critical"


def thr(now=(), boot=()):
    names = ("under_voltage", "freq_capped", "throttled", "soft_temp_limit")
    return {"throttled": {"raw": "0x0", "now": {n: n in now for n in names},
                          "since_boot": {n: n in boot for n in names}}}


@pytest.mark.parametrize(("sample", "expected"), [
    ({}, []),
    ({"temperature": {"max_celsius": None}}, []),
    ({"temperature": {"max_celsius": 74.9}}, []),
    ({"temperature": {"max_celsius": 75.0}}, [Finding(W, "temperature", "75.0°C (limit 75°C)")]),
    ({"temperature": {"max_celsius": 79.9}}, [Finding(W, "temperature", "79.9°C (limit 75°C)")]),
    ({"temperature": {"max_celsius": 80.0}}, [Finding(C, "temperature", "80.0°C (limit 80°C)")]),
    ({"disks": [{"mountpoint": "/", "used_percent": 84.9}]}, []),
    ({"disks": [{"mountpoint": "/", "used_percent": 85.0}]}, [Finding(W, "disk", "/ 85% used (limit 85%)")]),
    ({"disks": [{"mountpoint": "/", "used_percent": 40.0}, {"mountpoint": "/boot/firmware", "used_percent": 95.0}]},
     [Finding(C, "disk", "/boot/firmware 95% used (limit 95%)")]),
    ({"memory": {"used_percent": 89.9}}, []),
    ({"memory": {"used_percent": 90.0}}, [Finding(W, "memory", "memory 90% used (limit 90%)")]),
    ({"memory": {"used_percent": 99.9}}, [Finding(W, "memory", "memory 100% used (limit 90%)")]),
    (thr(), []),
    (thr(now=["under_voltage"], boot=["under_voltage"]), [Finding(C, "power", "under-voltage now")]),
    (thr(boot=["under_voltage"]), [Finding(W, "power", "under-voltage since boot")]),
    (thr(boot=["throttled", "freq_capped", "soft_temp_limit"]), []),
    (thr(now=["throttled", "soft_temp_limit"]),
     [Finding(W, "throttling", "throttled now"), Finding(W, "throttling", "soft temperature limit now")]),
    ({"throttled": None}, []),
    ({"root_readonly": True}, [Finding(C, "rootfs", "root filesystem is read-only")]),
    ({"root_readonly": None}, []),
    ({"k3s": {"installed": True, "active": False, "unit": "k3s-agent.service", "active_state": "failed"}},
     [Finding(C, "k3s", "k3s-agent.service is failed")]),
    ({"k3s": {"installed": True, "active": True, "unit": "k3s.service", "active_state": "active"}}, []),
    ({"k3s": {"installed": False, "active": False}}, []),
    ({"k3s": None}, []),
])
def test_default_rules(sample, expected):
    assert evaluate(sample) == expected


def test_findings_are_sorted_most_severe_first():
    sample = {"memory": {"used_percent": 95.0}, "temperature": {"max_celsius": 85.0}, **thr(boot=["under_voltage"])}
    assert [f.level for f in evaluate(sample)] == [C, W, W]


@pytest.mark.parametrize(("t", "sample", "level"), [
    (Thresholds(temp_warn=60, temp_crit=70), {"temperature": {"max_celsius": 65.0}}, W),
    (Thresholds(temp_warn=60, temp_crit=70), {"temperature": {"max_celsius": 70.0}}, C),
    (Thresholds(disk_warn=50, disk_crit=60), {"disks": [{"mountpoint": "/", "used_percent": 55.0}]}, W),
    (Thresholds(mem_warn=80, mem_crit=95), {"memory": {"used_percent": 96.0}}, C),
    (Thresholds(mem_warn=80, mem_crit=95), {"memory": {"used_percent": 81.0}}, W),
    (Thresholds(mem_warn=100), {"memory": {"used_percent": 99.0}}, None),
])
def test_thresholds_are_configurable(t, sample, level):
    found = evaluate(sample, t)
    assert [f.level for f in found] == ([level] if level else [])


@pytest.mark.parametrize(("t", "problems"), [
    (Thresholds(), []),
    (Thresholds(temp_warn=90, temp_crit=80), ["--temp-warn 90 is above --temp-crit 80"]),
    (Thresholds(disk_warn=96), ["--disk-warn 96 is above --disk-crit 95"]),
    (Thresholds(mem_warn=120), ["--mem-warn 120 is not a percentage (0-100]"]),
    (Thresholds(mem_warn=95, mem_crit=90), ["--mem-warn 95 is above --mem-crit 90"]),
])
def test_inconsistent_thresholds_are_reported(t, problems):
    assert t.problems() == problems


@pytest.mark.parametrize(("levels", "expected"), [
    ([], "ok"),
    (["ok", "ok"], "ok"),
    (["ok", "warning"], "warning"),
    (["warning", "critical", "ok"], "critical"),
    (["critical", "down", "warning"], "down"),
])
def test_worst(levels, expected):
    assert worst(levels) == expected
