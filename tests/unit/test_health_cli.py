"""`edgeclu health` end to end against real agent HTTP servers on loopback (no SSH, no Kubernetes)."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from typer.testing import CliRunner

from edgeclu.agent.server import AgentHTTPServer, SampleCache
from edgeclu.cli import app
from tests.unit.test_health_report import SAMPLE


@pytest.fixture
def agents():
    """Two agents on 127.0.0.1 and 127.0.0.2 (same port), the second one a hot Pi."""
    hot = {**SAMPLE, "host": {**SAMPLE["host"], "hostname": "pi-2"}, "temperature": {"max_celsius": 81.0}}
    cool = {**SAMPLE, "throttled": None}
    first = AgentHTTPServer("127.0.0.1", 0, SampleCache(lambda: cool, 0), "")
    port = first.server_address[1]
    second = AgentHTTPServer("127.0.0.2", port, SampleCache(lambda: hot, 0), "")
    for srv in (first, second):
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield port
    for srv in (first, second):
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def inventory(tmp_path, agents):
    p = tmp_path / "inventory.yml"
    p.write_text("k3s_cluster:\n  children:\n"
                 "    server: {hosts: {pi-1: {ansible_host: 127.0.0.1}}}\n"
                 "    agent: {hosts: {pi-2: {ansible_host: 127.0.0.2}}}\n"
                 f"  vars: {{k3s_version: v1.31.4+k3s1, agent_port: {agents}}}\n")
    return p


ARGS = ["--no-ssh", "--no-kubernetes"]


def test_json_and_exit_code(inventory):
    r = CliRunner().invoke(app, ["health", "-i", str(inventory), "--json", *ARGS])
    assert r.exit_code == 2, r.output
    doc = json.loads(r.stdout)
    assert [(n["name"], n["status"], n["via"]) for n in doc["nodes"]] == [
        ("pi-1", "ok", "agent"), ("pi-2", "critical", "agent")]
    assert doc["nodes"][1]["findings"][0] == {"level": "critical", "check": "temperature",
                                              "message": "81.0°C (limit 80°C)"}
    assert r.stderr == ""


def test_table_and_threshold_options(inventory):
    r = CliRunner().invoke(app, ["health", "-i", str(inventory), *ARGS, "--temp-crit", "85"])
    assert r.exit_code == 1, r.output
    header, *rows = r.stdout.splitlines()
    assert header.split() == ["NODE", "STATUS", "ROLE", "VIA", "CPU", "LOAD", "MEM", "DISK", "TEMP", "MODEL", "PI",
                              "UPTIME", "K3S", "K8S", "CERT", "NOTES"]
    assert [row.split()[:4] for row in rows] == [["pi-1", "ok", "server", "agent"],
                                                  ["pi-2", "warning", "agent", "agent"]]
    assert rows[1].rstrip().endswith("81.0°C (limit 75°C); under-voltage since boot")
    assert "1 ok, 1 warning → warning" in r.stderr


def test_limit_and_bad_options(inventory):
    r = CliRunner().invoke(app, ["health", "-i", str(inventory), "--json", *ARGS, "--limit", "pi-1"])
    assert (r.exit_code, [n["name"] for n in json.loads(r.stdout)["nodes"]]) == (0, ["pi-1"])
    r = CliRunner().invoke(app, ["health", "-i", str(inventory), "--limit", "pi-9"])
    assert r.exit_code == 1 and "no such host(s): pi-9" in r.stderr
    r = CliRunner().invoke(app, ["health", "-i", str(inventory), "--disk-warn", "99", "--disk-crit", "90"])
    assert r.exit_code == 1 and "--disk-warn 99 is above --disk-crit 90" in r.stderr


def test_watch_prints_a_json_line_per_round_until_interrupted(inventory):
    proc = subprocess.Popen([sys.executable, "-m", "edgeclu", "health", "-i", str(inventory), "--json", *ARGS,
                             "--watch", "0.3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    lines = []
    try:
        for _ in range(3):
            lines.append(proc.stdout.readline())
    finally:
        time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    docs = [json.loads(line) for line in lines]
    assert [d["status"] for d in docs] == ["critical"] * 3
    assert proc.returncode == 2, err


def test_watch_on_a_terminal_draws_a_trend_per_node(tmp_path):
    """A Pi heating up round after round: its TEMP sparkline climbs (pseudo-terminal, real agent HTTP)."""
    import itertools
    import re

    import pexpect

    temps = itertools.count(40, 10)
    hot = AgentHTTPServer("127.0.0.1", 0, SampleCache(lambda: {**SAMPLE, "temperature": {
        "max_celsius": float(min(next(temps), 90))}}, 0), "")
    threading.Thread(target=hot.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    inv = tmp_path / "inventory.yml"
    inv.write_text("k3s_cluster:\n  children:\n    server: {hosts: {pi-1: {ansible_host: 127.0.0.1}}}\n"
                   f"  vars: {{k3s_version: v1.31.4+k3s1, agent_port: {hot.server_address[1]}}}\n")
    child = pexpect.spawn(sys.executable, ["-m", "edgeclu", "health", "-i", str(inv), *ARGS, "--watch", "0.2"],
                          env={**os.environ, "TERM": "xterm", "COLUMNS": "200"}, dimensions=(40, 200), timeout=20)
    try:
        child.expect(r"the last 5 round\(s\)")
        child.expect(r"pi-1\s.*\n")
        row = re.sub(r"\x1b\[[0-?]*[ -/]*[@-~]", "", child.after.decode())
    finally:
        child.sendintr()
        child.expect(pexpect.EOF)
        hot.shutdown()
        hot.server_close()
    # 40, 50, 60, 70, 80 °C on 30..80: each round a step up the scale
    assert re.search(r"pi-1\s+\S+ \d+%\s+\S+ 25%\s+▂▄▅▇█ 80°C\s+\S+ 56%", row), row
