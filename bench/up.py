"""Benchmark `edgeclu up` on lab nodes: 1+1 vs 1+8 nodes, and a no-change re-run.

    sudo python bench/up.py [--agents-small 1] [--agents-large 8]

Everything is measured in this one run, side by side, with the real CLI over real SSH into lab nodes
(k3s is the lab's stand-in, served from a mirror). Prints wall times, the CPU time the whole machine
spent in each run (controller and lab nodes share its CPUs), and the ratios:
  (1+8)/(1+1)  goal <= 1.5   (agents join in parallel)
  re-run/first goal <= 0.25  (a converged cluster is only checked: the nodes' converged stamps)
and, for reference, a re-run with --full (the whole playbook on a converged cluster).

    sudo python bench/up.py --against REF

measures this checkout and git revision REF (checked out beside it, in a temporary worktree) the same
way, one after the other on fresh labs, and prints new/old for the first run, the re-run and --full. Each
tree is measured by this script run with that tree first on sys.path (EDGECLU_BENCH_TREE), so each uses its
own edgeclu, playbooks, lab harness and k3s stand-in: the old code is measured as it was tested then.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

#: the tree measured: this checkout, or the one compare() names (its edgeclu, its lab harness, its stand-in)
TREE = Path(os.environ.get("EDGECLU_BENCH_TREE") or Path(__file__).resolve().parents[1])
sys.path.insert(0, str(TREE))

from edgeclu.playbook import ssh_args  # noqa: E402
from tests.k3s_standin.fixtures import V1  # noqa: E402
from tests.k3s_standin.mirror import serve  # noqa: E402
from tests.k3s_standin.release import build_release  # noqa: E402
from tests.lab.fixtures import running_lab  # noqa: E402


def cpu_busy() -> float:
    """Seconds of CPU time the whole machine (controller and every lab node) has spent busy."""
    with open("/proc/stat") as f:
        ticks = [int(v) for v in f.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # minus idle and iowait


@dataclass(frozen=True)
class Run:
    """Wall time and machine CPU time of one `edgeclu up`."""

    wall: float
    cpu: float

    def __str__(self) -> str:
        return f"{self.wall:.1f}s ({self.cpu:.1f} CPU-s, {self.cpu / self.wall:.1f} of {os.cpu_count()} CPUs busy)"


def up(inv: Path, kubeconfig: Path, *args: str) -> Run:
    """One `edgeclu up` of the measured tree: run in TREE (``-m`` puts the working directory first on sys.path),
    with TREE on PYTHONPATH too (before site-packages, where this checkout's editable install is)."""
    env = dict(os.environ, KUBECONFIG=str(kubeconfig), PYTHONPATH=str(TREE))
    cpu0, t0 = cpu_busy(), time.monotonic()
    r = subprocess.run([sys.executable, "-m", "edgeclu", "up", "-i", str(inv), *args], env=env, cwd=TREE,
                       capture_output=True, text=True)
    wall, cpu = time.monotonic() - t0, cpu_busy() - cpu0
    if r.returncode != 0:
        raise SystemExit(f"up failed:\n{r.stderr[-4000:]}")
    return Run(wall, cpu)


def timed_noop(inv: Path, known_hosts: Path, forks: int) -> float:
    """The reference: bench/noop.yml (20 no-op module calls per node) over the same lab."""
    env = dict(os.environ, ANSIBLE_SSH_ARGS=ssh_args(known_hosts), ANSIBLE_HOST_KEY_CHECKING="True",
               ANSIBLE_PIPELINING="True", ANSIBLE_FORKS=str(forks))
    t0 = time.monotonic()
    r = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inv),
                        str(Path(__file__).with_name("noop.yml"))], env=env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if r.returncode != 0:
        raise SystemExit(f"noop.yml failed:\n{r.stdout[-4000:]}")
    return wall


def measure(agents: int, releases: Path) -> tuple[Run, Run, Run, float]:
    with running_lab(1 + agents) as lab, serve(releases, lab.ctl_ip) as mirror:
        names = list(lab.nodes)
        work = Path(tempfile.mkdtemp(prefix="bench-up-"))
        inv = work / "inventory.yml"
        inv.write_text(lab.inventory_yaml(names[:1], names[1:], user="edge", extra_vars={
            "k3s_version": V1, "token_file": str(work / "token"), **mirror.vars}))
        noop = timed_noop(inv, lab.known_hosts, 1 + agents)
        first = up(inv, work / "kubeconfig")
        # the whole playbook again, on a converged cluster
        full = up(inv, work / "kubeconfig", "--full")
        # what `up` does then: the nodes' stamps say nothing changed
        rerun = up(inv, work / "kubeconfig")
        return first, rerun, full, noop


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents-small", type=int, default=1)
    ap.add_argument("--agents-large", type=int, default=8)
    ap.add_argument("--against", metavar="REF", help="also measure git revision REF and print new/old")
    ap.add_argument("--measure-json", type=int, metavar="AGENTS", help=argparse.SUPPRESS)  # compare()'s one run
    args = ap.parse_args()
    releases = Path(tempfile.mkdtemp(prefix="bench-releases-"))
    build_release(releases, V1)
    if args.measure_json is not None:
        first, rerun, full, _ = measure(args.measure_json, releases)
        print(json.dumps([[r.wall, r.cpu] for r in (first, rerun, full)]))
        return
    if args.against:
        compare(args.against, args.agents_small)
        return
    small_first, small_rerun, small_full, small_noop = measure(args.agents_small, releases)
    large_first, large_rerun, large_full, large_noop = measure(args.agents_large, releases)
    print(f"up 1+{args.agents_small}: first {small_first}, re-run {small_rerun}, re-run --full {small_full}")
    print(f"up 1+{args.agents_large}: first {large_first}, re-run {large_rerun}, re-run --full {large_full}")
    print(f"ratio (1+{args.agents_large})/(1+{args.agents_small}) first run: "
          f"{large_first.wall / small_first.wall:.2f}  (goal <= 1.5)")
    print(f"reference, 20 no-op Ansible module calls per node: 1+{args.agents_small} {small_noop:.1f}s, "
          f"1+{args.agents_large} {large_noop:.1f}s, ratio {large_noop / small_noop:.2f} (this machine's "
          f"{os.cpu_count()} CPU(s) run the controller and every node)")
    print(f"ratio re-run/first, 1+{args.agents_small}: {small_rerun.wall / small_first.wall:.2f}; "
          f"1+{args.agents_large}: {large_rerun.wall / large_first.wall:.2f}  (goal <= 0.25)")
    print(f"ratio re-run --full/first, 1+{args.agents_small}: {small_full.wall / small_first.wall:.2f}; "
          f"1+{args.agents_large}: {large_full.wall / large_first.wall:.2f}  (the playbook on a converged cluster)")


def measure_tree(tree: Path, agents: int) -> list[Run]:
    """First run, re-run and --full of ``tree``, by this script run with that tree first on sys.path."""
    r = subprocess.run([sys.executable, __file__, "--measure-json", str(agents)], capture_output=True, text=True,
                       env=dict(os.environ, EDGECLU_BENCH_TREE=str(tree)))
    if r.returncode != 0:
        raise SystemExit(f"measuring {tree} failed:\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}")
    return [Run(wall, cpu) for wall, cpu in json.loads(r.stdout.splitlines()[-1])]


def compare(ref: str, agents: int) -> None:
    """This checkout against ``ref``, 1+``agents`` nodes, old and new alternately (twice each)."""
    old = Path(tempfile.mkdtemp(prefix="bench-old-")) / "tree"
    subprocess.run(["git", "-C", str(TREE), "worktree", "add", "--detach", str(old), ref], check=True,
                   capture_output=True)
    try:
        runs: dict[str, list] = {"old": [], "new": []}
        for _ in range(2):
            runs["old"].append(measure_tree(old, agents))
            runs["new"].append(measure_tree(TREE, agents))
        for label, rs in runs.items():
            for first, rerun, full in rs:
                print(f"{label} ({ref if label == 'old' else 'this checkout'}) 1+{agents}: first {first}, "
                      f"re-run {rerun}, re-run --full {full}")
        for i, what in enumerate(("first run", "re-run", "re-run --full")):
            best = {label: min(r[i].wall for r in rs) for label, rs in runs.items()}
            print(f"new/old {what}: {best['new'] / best['old']:.2f} (best of 2: {best['new']:.1f}s vs "
                  f"{best['old']:.1f}s; goal <= 1.10)")
    finally:
        subprocess.run(["git", "-C", str(TREE), "worktree", "remove", "--force", str(old)], capture_output=True)


if __name__ == "__main__":
    main()
