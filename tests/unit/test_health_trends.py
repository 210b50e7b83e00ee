"""health --watch trends: per node, sparklines of CPU, memory, temperature and the fullest disk (pure)."""

import copy

import pytest

from edgeclu.health import report
from edgeclu.health.collect import KubeResult, NodeResult
from edgeclu.health.thresholds import Thresholds
from tests.unit.test_health_report import SAMPLE, host


def rep(temps, cpu=10.0, down=()):
    results = []
    for name, temp in temps.items():
        if name in down:
            results.append(NodeResult(host(name), reachable=False, error="timed out"))
            continue
        s = copy.deepcopy(SAMPLE)
        s["temperature"]["max_celsius"], s["cpu"]["percent"] = temp, cpu
        results.append(NodeResult(host(name), s, via="agent"))
    return report.build(results, KubeResult(), Thresholds())


@pytest.mark.parametrize(("values", "lo", "hi", "line"), [
    ([0, 25, 50, 75, 100], 0, 100, "▁▃▅▇█"),
    ([10, None, 10], 0, 100, "▁ ▁"),
    ([30, 55, 80], 30, 80, "▁▅█"),
    ([], 0, 100, ""),
    ([-5, 120], 0, 100, "▁█"),  # off the scale: clamped
])
def test_sparkline(values, lo, hi, line):
    assert report.sparkline(values, lo, hi) == line


def test_a_pi_heating_up_climbs_and_a_node_down_leaves_a_gap():
    history = report.History(size=4)
    for i, t in enumerate([40.0, 55.0, 70.0, 80.0, 82.0]):
        history.add(rep({"pi-1": t, "pi-2": 45.0}, cpu=20.0 * i, down=("pi-2",) if i == 2 else ()))
    th = Thresholds()
    hot, cool = history.cells("pi-1", th), history.cells("pi-2", th)
    assert len(history.rounds["pi-1"]) == 4  # the last `size` rounds
    assert hot["TEMP"] == "▄▇██ 82°C"  # 55..82 on 30..82 (the hottest seen is above temp_crit 80)
    assert cool["TEMP"] == "▃ ▃▃ 45°C"  # down in the second of the four rounds kept
    assert hot["CPU"] == "▂▄▅▇ 80%"
    assert hot["DISK"] == "▅▅▅▅ 56%" and hot["MEM"] == "▃▃▃▃ 25%"
