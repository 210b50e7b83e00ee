"""Benchmark: `edgeclu health` over N lab nodes vs. the same report gathered over plain SSH.

    sudo /path/to/venv/bin/python bench/health.py [--nodes 10] [--rounds 5] [--k3s]

Boots N lab nodes, installs the agent with edgeclu.cluster.agent (the user's path), then,
in the same run, alternately times:

- ``edgeclu health -i inventory.yml --json``: a fresh process each round (CLI start-up
  included), agents polled over HTTP in parallel, kubectl asked on the server over SSH;
- plain SSH, one command per node, all nodes in parallel (OpenSSH, a new connection
  each, no multiplexing): ``sudo python3 -m edgeclu.agent --once`` on every node, plus
  ``sudo k3s kubectl get nodes -o json`` on the server -- the same data, no agent daemon.

With ``--k3s`` the cluster first gets k3s (the lab's stand-in, tests/k3s_standin: NOT
k3s) through site.yml, so kubectl has nodes to list; without it there is no k3s and
``edgeclu health`` skips kubectl because the servers' agents say so.

Prints the median wall time of each and their ratio. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgeclu.health.collect import ONCE_COMMAND  # noqa: E402
from edgeclu.health.kube import COMMAND as KUBECTL  # noqa: E402
from edgeclu.playbook import run_playbook  # noqa: E402
from tests.k3s_standin.mirror import serve  # noqa: E402
from tests.k3s_standin.release import build_release  # noqa: E402
from tests.lab.fixtures import running_lab  # noqa: E402

K3S = "v1.31.4+k3s1"


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def edgeclu_health(inv: Path) -> tuple[float, float, dict]:
    cpu0, t0 = _children_cpu(), time.monotonic()
    p = subprocess.run([sys.executable, "-m", "edgeclu", "health", "-i", str(inv), "--json"],
                       capture_output=True, text=True)
    wall, cpu = time.monotonic() - t0, _children_cpu() - cpu0
    doc = json.loads(p.stdout)
    assert all(n["via"] == "agent" for n in doc["nodes"]), p.stdout
    return wall, cpu, doc


def plain_ssh(lab, user: str) -> tuple[float, float]:
    base = ["ssh", "-q", "-i", str(lab.key), "-o", f"UserKnownHostsFile={lab.known_hosts}",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ControlMaster=no",
            "-o", "ConnectTimeout=4"]
    cpu0, t0 = _children_cpu(), time.monotonic()
    procs = [subprocess.Popen([*base, f"{user}@{n.ip}", f"sudo -n sh -c '{ONCE_COMMAND}'"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in lab.nodes.values()]
    server = next(iter(lab.nodes.values()))
    kube = subprocess.Popen([*base, f"{user}@{server.ip}", f"sudo -n sh -c '{KUBECTL}'"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples = [json.loads(p.communicate()[0]) for p in procs]
    kube.communicate()
    wall, cpu = time.monotonic() - t0, _children_cpu() - cpu0
    assert all(s["host"]["hostname"] for s in samples)
    return wall, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--k3s", action="store_true", help="install the k3s stand-in first (site.yml)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgeclu-bench-"))
    with running_lab(args.nodes) as lab, contextlib.ExitStack() as stack:
        names = list(lab.nodes)
        inv = work / "inventory.yml"
        extra = {"k3s_version": K3S, "token_file": str(work / "token")}
        if args.k3s:
            build_release(work / "releases", K3S)
            extra.update(stack.enter_context(serve(work / "releases", lab.ctl_ip)).vars)
        inv.write_text(lab.inventory_yaml(servers=names[:1], agents=names[1:], user="edge", extra_vars=extra))
        for playbook in (["site.yml"] if args.k3s else []) + ["agent.yml"]:
            t0 = time.monotonic()
            result = run_playbook(inv, playbook, known_hosts=lab.known_hosts)
            assert result.ok, result.failed_hosts
            print(f"{playbook} on {len(names)} nodes: {time.monotonic() - t0:.1f}s")
        _, _, doc = edgeclu_health(inv)  # warm the page cache on both sides once
        print("kubernetes status from:", doc["kubernetes"]["source"] or "- (no k3s)",
              "| statuses:", sorted({n["status"] for n in doc["nodes"]}))
        plain_ssh(lab, "edge")
        a, b, ca, cb = [], [], [], []
        load0 = os.getloadavg()[0]
        for _ in range(args.rounds):
            wall, cpu, _ = edgeclu_health(inv)
            a.append(wall)
            ca.append(cpu)
            wall, cpu = plain_ssh(lab, "edge")
            b.append(wall)
            cb.append(cpu)
        load1 = os.getloadavg()[0]
    ma, mb = statistics.median(a), statistics.median(b)
    print(f"\n{args.nodes} nodes, {'k3s stand-in' if args.k3s else 'no k3s'}, {args.rounds} rounds "
          f"(load average {load0:.1f} -> {load1:.1f} on {os.cpu_count()} CPUs); median wall time, "
          "and CPU time spent on this controller:")
    print(f"  edgeclu health (agents over HTTP, new process each time) {ma:6.3f}s   cpu {statistics.median(ca):.3f}s"
          "   all: " + " ".join(f"{x:.3f}" for x in a))
    print(f"  plain SSH, one command per node, in parallel             {mb:6.3f}s   cpu {statistics.median(cb):.3f}s"
          "   all: " + " ".join(f"{x:.3f}" for x in b))
    print(f"  ratio plain SSH / edgeclu health: {mb / ma:.2f}x"
          f"   (goal: edgeclu health under 1 s: {'met' if ma < 1 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
