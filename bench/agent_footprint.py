"""Footprint of the edgeclu agent vs Debian's prometheus-node-exporter, side by side on one lab node.

Run by hand, as root, from the repository root:  /tmp/venv/bin/python bench/agent_footprint.py [--scrapes 20]

Both run in the same booted lab node (Debian bookworm): the agent as installed by agent.yml (the
real hardened unit, python3 + Debian's psutil/zeroconf), node_exporter 1.5 from Debian's package
(fetched with `apt-get download` on the controller, copied in) with its default collectors, under
`systemd-run`. The controller scrapes GET /metrics of each N times (sequentially, a new
connection each time, like Prometheus), then reads VmRSS and utime+stime from /proc/<pid>.
The agent's sample cache is set to 0 s so every scrape really samples.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgeclu.playbook import run_playbook  # noqa: E402
from edgeclu.transport import SSHRemote  # noqa: E402
from tests.lab.fixtures import running_lab  # noqa: E402

NE_PORT = 9100
AGENT_PORT = 9101
TICK = os.sysconf("SC_CLK_TCK")


def node_exporter_binary(work: Path) -> Path:
    """Debian's prometheus-node-exporter binary, extracted from the package (nothing installed here)."""
    subprocess.run(["apt-get", "download", "prometheus-node-exporter"], cwd=work, check=True,
                   capture_output=True)
    deb = next(work.glob("prometheus-node-exporter_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(work / "x")], check=True)
    print(f"node_exporter package: {deb.name}")
    return work / "x/usr/bin/prometheus-node-exporter"


def proc_stats(lab, node: str, pid: int) -> tuple[int, float]:
    """(VmRSS in KiB, CPU seconds user+system) of a process in the node."""
    status = lab.exec(node, f"cat /proc/{pid}/status")
    rss = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
    fields = lab.exec(node, f"cat /proc/{pid}/stat").rsplit(")", 1)[1].split()
    return rss, (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def scrape(url: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=10) as r:
        body = r.read()
    return time.perf_counter() - t0, body.count(b"\n")


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            scrape(url)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def measure(lab, node: str, name: str, pid: int, url: str, scrapes: int) -> dict:
    wait_http(url)
    rss0, cpu0 = proc_stats(lab, node, pid)  # after one scrape
    walls, lines = [], 0
    for _ in range(scrapes):
        wall, lines = scrape(url)
        walls.append(wall)
    rss1, cpu1 = proc_stats(lab, node, pid)
    walls.sort()
    return {"name": name, "rss_start_mib": rss0 / 1024, "rss_mib": rss1 / 1024,
            "cpu_ms_per_scrape": (cpu1 - cpu0) * 1000 / scrapes,
            "median_ms": walls[len(walls) // 2] * 1000, "lines": lines}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scrapes", type=int, default=20)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgeclu-bench-"))
    try:
        binary = node_exporter_binary(work)
        with running_lab(1) as lab:
            node = lab.nodes["node1"]
            inv = work / "inventory.yml"
            inv.write_text(lab.inventory_yaml(servers=["node1"], agents=[], user="root",
                                              extra_vars={"k3s_version": "v1.31.4+k3s1"}))
            result = run_playbook(inv, "agent.yml", known_hosts=lab.known_hosts,
                                  extravars={"agent_config_extra": {"cache_seconds": 0}})
            assert result.ok, result.hosts
            r = SSHRemote("node1", node.ip, key_file=str(lab.key), known_hosts=lab.known_hosts)
            r.put(binary, "/usr/local/bin/prometheus-node-exporter", mode=0o755)
            r.run("systemd-run --unit=node-exporter --property=Restart=no "
                  "/usr/local/bin/prometheus-node-exporter")
            r.close()
            agent_pid = int(lab.exec("node1", "systemctl show -p MainPID --value edgeclu-agent").strip())
            ne_pid = int(lab.exec("node1", "systemctl show -p MainPID --value node-exporter").strip())
            time.sleep(2)  # both idle and settled (the agent's mDNS probing is done)
            rows = [
                measure(lab, "node1", "edgeclu-agent", agent_pid, f"http://{node.ip}:{AGENT_PORT}/metrics",
                        args.scrapes),
                measure(lab, "node1", "node_exporter", ne_pid, f"http://{node.ip}:{NE_PORT}/metrics",
                        args.scrapes),
            ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{args.scrapes} scrapes of /metrics each, same lab node, same run\n")
    print(f"{'':16}{'RSS start':>11}{'RSS after':>11}{'CPU/scrape':>12}{'median wall':>13}{'lines':>7}")
    for row in rows:
        print(f"{row['name']:16}{row['rss_start_mib']:>8.1f}MiB{row['rss_mib']:>8.1f}MiB"
              f"{row['cpu_ms_per_scrape']:>10.1f}ms{row['median_ms']:>11.1f}ms{row['lines']:>7}")
    a, n = rows
    print(f"\nratio agent/node_exporter: RSS {a['rss_mib'] / n['rss_mib']:.2f}x, "
          f"CPU per scrape {a['cpu_ms_per_scrape'] / max(n['cpu_ms_per_scrape'], 1e-9):.2f}x, "
          f"median wall {a['median_ms'] / n['median_ms']:.2f}x")
    print(f"goal (RSS at or below node_exporter's after {args.scrapes} scrapes): "
          + ("met" if a["rss_mib"] <= n["rss_mib"] else "NOT met"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
