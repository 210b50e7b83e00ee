"""Faults on lab nodes, through the real CLI: an interrupted `up`, a lease lost mid-run, a controller
killed mid-upgrade, a node ahead of the inventory, unreachable nodes, and task names.

The rule for each: edgeclu finishes, or stops in a state it names, that a re-run repairs.
"""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edgeclu.playbook import run_playbook
from tests.integration.lifecycle_util import (
    edgeclu,
    env_for,
    inventory_hosts,
    kube_nodes,
    ok,
    service_marks,
    wait_for,
    write_inventory,
)
from tests.k3s_standin.ansible_run import run_playbook as plain_ansible
from tests.k3s_standin.fixtures import V1, V2, k3s_mirror, k3s_releases  # noqa: F401

pytestmark = pytest.mark.lab

STAMP = "/var/lib/edgeclu/converged"
LOCK = "/var/lib/edgeclu/cluster.lock"
SLOW_START = "/etc/systemd/system/k3s.service.d/slow-start.conf"


class Run:
    """``edgeclu ARGS`` in the background; its stderr is read line by line as it comes."""

    def __init__(self, tmp_path: Path, *args: str, **env: str):
        self.proc = subprocess.Popen([sys.executable, "-m", "edgeclu", *args], env={**env_for(tmp_path), **env},
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.stdout = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.on_line = None

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)
            if self.on_line:
                self.on_line(line)

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    def wait(self, timeout: float = 300) -> int:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"edgeclu did not stop within {timeout:g}s:\n{self.stderr[-4000:]}") from None
        self.stdout = self.proc.stdout.read()
        self._reader.join(10)
        return rc


def processes_of(tmp_path: Path) -> list[str]:
    """Processes left by a run for this test: their environment has this test's KUBECONFIG."""
    needle = f"KUBECONFIG={tmp_path / 'kubeconfig'}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")[:120]
                    found.append(f"{entry.name}: {cmdline!r}")
    return found


def exists(lab, node: str, path: str) -> bool:
    return lab.exec(node, f"test -e {path} && echo yes || echo no").strip() == "yes"


def link(lab, node: str, up: bool) -> None:
    subprocess.run(["ip", "-n", lab.lan_netns, "link", "set", lab._veth(lab.nodes[node]), "up" if up else "down"],
                   check=True)


# -- point 2: interrupted means interrupted ----------------------------------------------
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_in_the_middle_of_the_k3s_start_stops_everything_and_a_rerun_converges(
        fresh_lab, k3s_mirror, tmp_path, signum):  # noqa: F811
    lab = fresh_lab(2)
    inv = write_inventory(tmp_path, lab, k3s_mirror(lab), ["node1"], ["node2"])
    # the first server's k3s takes 20 s to start: the signal lands while `systemctl start k3s` waits
    lab.exec("node1", f"mkdir -p {SLOW_START.rsplit('/', 1)[0]} && "
                      f"printf '[Service]\\nExecStartPre=/bin/sleep 20\\n' > {SLOW_START}")
    run = Run(tmp_path, "up", "-i", str(inv))
    wait_for(lambda: lab.exec("node1", "systemctl is-active k3s || true").strip() == "activating", timeout=120,
             what="k3s starting on node1")
    run.proc.send_signal(signum)
    t0 = time.monotonic()
    rc = run.wait(60)
    err = run.stderr
    assert rc == 128 + signum, err[-4000:]
    assert time.monotonic() - t0 < 15, "the run took too long to stop"
    name = {signal.SIGINT: "SIGINT (Ctrl-C)", signal.SIGTERM: "SIGTERM"}[signum]
    assert re.search(rf"error: interrupted by {re.escape(name)}: stopped site.yml and every process it started; "
                     r"it was running 'Enable and start or restart k3s: (re)?start k3s and wait until it is up' "
                     "on node1: that step may be half-done there", err), err[-3000:]
    assert "Run the same command again: it resumes" in err
    assert "converged" not in err.replace("no node was marked converged", "")
    assert processes_of(tmp_path) == [], "processes of the interrupted run are left"
    assert not exists(lab, "node1", STAMP) and not exists(lab, "node2", STAMP)
    assert not exists(lab, "node1", LOCK), "the lock was not released"

    lab.exec("node1", f"rm -f {SLOW_START} && systemctl daemon-reload")
    again = ok(edgeclu(tmp_path, "up", "-i", str(inv)))
    assert "converged" in again.stderr
    assert all(n["ready"] for n in kube_nodes(lab).values())
    assert exists(lab, "node1", STAMP) and exists(lab, "node2", STAMP)


# -- point 3: a lock that fences -----------------------------------------------------------
def test_a_lease_lost_mid_run_stops_that_run_and_the_next_one_proceeds(fresh_lab, k3s_mirror, tmp_path):  # noqa: F811
    lab = fresh_lab(2)
    inv = write_inventory(tmp_path, lab, k3s_mirror(lab), ["node1"], ["node2"])
    ttl = 5
    run = Run(tmp_path, "up", "-i", str(inv), EDGECLU_LOCK_TTL=str(ttl))
    wait_for(lambda: "running the playbook" in run.stderr, timeout=120, what="the playbook to start")
    time.sleep(1)
    link(lab, "node1", False)  # the first server, which holds the lock, drops off the LAN
    cut = time.monotonic()
    try:
        rc = run.wait(60)  # it stops on its own, while node1 is still away
    finally:
        time.sleep(max(0.0, cut + ttl + 2 - time.monotonic()))  # away for longer than the ttl
        link(lab, "node1", True)
    err = run.stderr
    assert rc == 4, err[-4000:]
    assert "error: the cluster lock on node1 could not be renewed" in err
    assert "another run may have taken it over: stopped site.yml and every process it started" in err
    assert processes_of(tmp_path) == []
    second = ok(edgeclu(tmp_path, "up", "-i", str(inv), timeout=600))
    assert "took over a stale cluster lock left by" in second.stderr
    assert all(n["ready"] for n in kube_nodes(lab).values())


# -- points 1 and 4: killed mid-upgrade; no downgrade ----------------------------------------
def test_a_controller_killed_mid_upgrade_is_finished_by_a_rerun_and_up_refuses_to_downgrade(
        fresh_lab, k3s_mirror, tmp_path):  # noqa: F811
    lab = fresh_lab(3)
    inv = write_inventory(tmp_path, lab, k3s_mirror(lab), ["node1"], ["node2", "node3"], upgrade_batch_percent=50)
    ok(edgeclu(tmp_path, "up", "-i", str(inv)))
    ttl = "4"
    run = Run(tmp_path, "upgrade", "--k3s-version", V2, "-i", str(inv), EDGECLU_LOCK_TTL=ttl)
    installed = f"node1: k3s {V2} installed; uncordoning"

    def kill_after_the_playbook(line):
        if installed in line:
            run.proc.send_signal(signal.SIGKILL)

    run.on_line = kill_after_the_playbook
    assert run.wait(300) == -signal.SIGKILL, run.stderr[-4000:]
    nodes = kube_nodes(lab)
    assert nodes["node1"]["cordoned"] and nodes["node1"]["version"] == V2, "killed too late to test anything"
    assert {nodes[n]["version"] for n in ("node2", "node3")} == {V1}
    assert "edgeclu/cordoned-by" in lab.exec("node1", "k3s kubectl get node node1 -o json")
    assert V2 in lab.exec("node1", "cat /var/lib/edgeclu/upgrade.json")
    time.sleep(float(ttl) + 1)  # the killed run's lease goes stale

    # node1 runs V2 and the inventory still says V1: up refuses, by name, and touches nothing
    before = {n: service_marks(lab, n) for n in ("node1", "node2", "node3")}
    refused = edgeclu(tmp_path, "up", "-i", str(inv))
    assert refused.returncode == 1, refused.stderr[-3000:]
    assert (f"error: node1 runs k3s {V2}, newer than the inventory's k3s_version {V1}; k3s cannot be downgraded, "
            f"so nothing was changed. To finish the upgrade: `edgeclu upgrade --k3s-version {V2}`") in refused.stderr
    # without preflight, the lock node's upgrade record stops it
    refused = edgeclu(tmp_path, "up", "--skip-preflight", "-i", str(inv))
    assert refused.returncode == 1
    assert f"error: an upgrade to k3s {V2} was started by" in refused.stderr
    assert {n: service_marks(lab, n) for n in ("node1", "node2", "node3")} == before
    assert lab.exec("node1", "/usr/local/bin/k3s --version").split()[2] == V2

    again = ok(edgeclu(tmp_path, "upgrade", "--k3s-version", V2, "-i", str(inv)))
    assert f"resuming the upgrade to {V2}" in again.stderr
    assert "node1: uncordoned (an earlier `edgeclu upgrade` cordoned it and stopped before uncordoning it)" \
        in again.stderr
    nodes = kube_nodes(lab)
    assert {n: (v["version"], v["cordoned"], v["ready"]) for n, v in nodes.items()} == \
        dict.fromkeys(("node1", "node2", "node3"), (V2, False, True))
    assert "edgeclu/cordoned-by" not in lab.exec("node1", "k3s kubectl get nodes -o json")
    assert not exists(lab, "node1", "/var/lib/edgeclu/upgrade.json")
    assert f"k3s_version: {V2}" in inv.read_text()

    # the roles refuse a downgrade on their own too (plain ansible-playbook, older k3s_version)
    old = plain_ansible(inv, lab.known_hosts, extra_vars={"k3s_version": V1})
    assert old.failed_hosts() == {"node1", "node2", "node3"}
    assert (f"node2 runs k3s {V2}, newer than k3s_version {V1}; k3s cannot be downgraded, nothing was changed"
            in re.sub(r"\s+", " ", old.output))
    assert {lab.exec(n, "/usr/local/bin/k3s --version").split()[2] for n in ("node1", "node2", "node3")} == {V2}


# -- point 4: remove keeps what it could not finish ------------------------------------------
def test_remove_disables_k3s_and_keeps_the_inventory_entry_until_the_uninstall_finished(
        fresh_lab, k3s_mirror, tmp_path):  # noqa: F811
    lab = fresh_lab(2)
    inv = write_inventory(tmp_path, lab, k3s_mirror(lab), ["node1"], ["node2"])
    ok(edgeclu(tmp_path, "up", "-i", str(inv)))
    script = "/usr/local/bin/k3s-agent-uninstall.sh"
    lab.exec("node2", f"cp {script} /root/uninstall.sh && printf '#!/bin/sh\\nexit 1\\n' > {script}")
    first = edgeclu(tmp_path, "remove", "node2", "-i", str(inv))
    assert first.returncode == 1, first.stderr[-3000:]
    assert ("node2 is out of the cluster and its k3s is disabled and stopped, but it stays in "
            f"{inv} until the uninstall finishes: fix that and run `edgeclu remove node2` again") in first.stderr
    assert inventory_hosts(inv)["agent"] == ["node2"]
    assert lab.exec("node2", "systemctl is-enabled k3s-agent || true").strip() == "disabled"
    assert lab.exec("node2", "systemctl is-active k3s-agent || true").strip() == "inactive"
    assert "node2" not in kube_nodes(lab)

    lab.exec("node2", f"cp /root/uninstall.sh {script}")
    ok(edgeclu(tmp_path, "remove", "node2", "-i", str(inv)))
    assert "agent" not in inventory_hosts(inv) or inventory_hosts(inv)["agent"] == []
    assert not exists(lab, "node2", "/usr/local/bin/k3s")


# -- point 8: one dead node; task names ---------------------------------------------------
def test_task_names_render_and_up_skips_unreachable_agents_but_never_the_first_server(
        fresh_lab, k3s_mirror, tmp_path):  # noqa: F811
    lab = fresh_lab(3)
    inv = write_inventory(tmp_path, lab, k3s_mirror(lab), ["node1"], ["node2", "node3"])
    names: set[str] = set()

    def seen(ev):
        names.add(ev.task)

    for playbook in ("site.yml", "agent.yml", "addons.yml", "reset.yml"):
        result = run_playbook(inv, playbook, known_hosts=lab.known_hosts, on_event=seen, forks=10)
        assert result.ok, (playbook, {h: r.failures for h, r in result.failed_hosts.items()})
    assert "Uninstall k3s" in names
    broken = sorted(n for n in names if "<<" in n or "{{" in n)
    assert broken == [], f"task names with template errors: {broken}"

    lab.stop("node3", hard=True)
    refused = edgeclu(tmp_path, "up", "-i", str(inv))
    assert refused.returncode == 1
    assert "`edgeclu up --skip-unreachable` converges the others" in refused.stderr
    assert not exists(lab, "node1", "/usr/local/bin/k3s")  # the reset above left nothing; still nothing

    skipped = edgeclu(tmp_path, "up", "--skip-unreachable", "--json", "-i", str(inv))
    assert skipped.returncode == 3, skipped.stderr[-4000:]
    assert "skipped (unreachable): node3" in skipped.stderr
    assert json.loads(skipped.stdout)["skipped"] == ["node3"]
    nodes = kube_nodes(lab)
    assert sorted(nodes) == ["node1", "node2"] and all(n["ready"] for n in nodes.values())

    lab.stop("node1", hard=True)
    first_down = edgeclu(tmp_path, "up", "--skip-unreachable", "-i", str(inv))
    assert first_down.returncode == 1
    assert ("error: --skip-unreachable: the first server node1 is unreachable; it starts the cluster and holds its "
            "lock, so nothing can be converged without it; nothing was changed") in first_down.stderr
