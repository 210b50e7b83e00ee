"""Run ``ansible-playbook`` the plain way against lab nodes, and read its recap.

This is the test harness; edgeclu's own runner is ``edgeclu.playbook``. Host keys are
checked strictly against the lab's known_hosts file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edgeclu.resources import collections_path

_RECAP_RE = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)"
                       r"\s+skipped=(\d+)\s+rescued=(\d+)\s+ignored=(\d+)", re.M)


@dataclass
class PlaybookRun:
    rc: int
    output: str
    recap: dict[str, dict[str, int]]

    def changed(self) -> dict[str, int]:
        return {h: r["changed"] for h, r in self.recap.items()}

    def failed_hosts(self) -> set[str]:
        return {h for h, r in self.recap.items() if r["failed"] or r["unreachable"]}


def parse_recap(output: str) -> dict[str, dict[str, int]]:
    keys = ("ok", "changed", "unreachable", "failed", "skipped", "rescued", "ignored")
    tail = output.rsplit("PLAY RECAP", 1)[-1]
    return {m.group(1): dict(zip(keys, map(int, m.groups()[1:]), strict=True))
            for m in _RECAP_RE.finditer(tail)}


def run_playbook(inventory: Path, known_hosts: Path, *, playbook: str = "site.yml",
                 extra_vars: dict | None = None, check: bool = False, forks: int = 20,
                 timeout: float = 900, collections: Path | None = None) -> PlaybookRun:
    """``ansible-playbook -i inventory edgeclu.cluster.<playbook>``, the collection from ``collections``
    (an ``ansible-galaxy collection install -p`` directory; default: this source tree's), nothing else."""
    bindir = str(Path(sys.executable).parent)
    tmp = Path(tempfile.mkdtemp(prefix="edgeclu-ans-"))
    env = dict(
        os.environ,
        PATH=f"{bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        ANSIBLE_HOME=str(tmp / "home"),
        ANSIBLE_LOCAL_TEMP=str(tmp / "local"),
        ANSIBLE_FORKS=str(forks),
        ANSIBLE_PIPELINING="True",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="False",
        ANSIBLE_PYTHON_INTERPRETER="auto_silent",
        ANSIBLE_SSH_CONTROL_PATH_DIR=str(tmp / "cp"),
        ANSIBLE_SSH_ARGS="-o ControlMaster=auto -o ControlPersist=60s",
        ANSIBLE_COLLECTIONS_PATH=str(collections or collections_path()),
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="False",  # not the source tree's copy behind an installed one
    )
    ssh_args = f"-o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=yes"
    cmd = ["ansible-playbook", "-i", str(inventory), f"edgeclu.cluster.{playbook.removesuffix('.yml')}",
           "-e", json.dumps({"ansible_ssh_common_args": ssh_args, **(extra_vars or {})})]
    if check:
        cmd.append("--check")
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    finally:
        for sock in (tmp / "cp").glob("*"):  # close the SSH masters ControlPersist keeps open
            subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "lab"], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    output = proc.stdout + proc.stderr
    return PlaybookRun(proc.returncode, output, parse_recap(output))
