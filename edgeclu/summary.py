"""What a run did, per node, in a user's words; and what to do next (pure: a board in, words out).

The words come from where each change happened (phase, role, tasks file, module) and from what
the node looked like before (the ``k3s_node_state`` answers the board kept), never from task
names. Text from a node (a failure reason) is kept as it came: escape it where it is displayed.
"""

from __future__ import annotations

import difflib
import json
import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from ansible_collections.edgeclu.cluster.plugins.module_utils.k3s import parse_version_output
from edgeclu import node
from edgeclu.phases import BAD, SKIPPED, Board, Cell
from edgeclu.playbook import TaskEvent

NOTHING = "nothing to change"


@dataclass(frozen=True)
class Context:
    """What the words need to know about the run: the inventory file, the cluster, the target version."""
    inventory: str
    cluster: str
    version: str
    command: str = "up"


@dataclass
class NodeSummary:
    name: str
    status: str  # changed | unchanged | failed | unreachable | skipped
    changes: list[str] = field(default_factory=list)
    phase: str | None = None  # the phase's title where it failed
    reason: str | None = None  # from the node (raw)
    hint: str | None = None

    def as_dict(self) -> dict:
        return {"status": self.status, "changes": self.changes, "failed_at": self.phase, "reason": self.reason,
                "try": self.hint}


def _changed(cell: Cell | None, where: str = "", action: str = "") -> list[TaskEvent]:
    if cell is None:
        return []
    return [e for e in cell.changes if e.where.startswith(where) and e.action.endswith(action)]


def _service(look: dict) -> dict:
    """The one service a look asked about: ``{active, enabled}``."""
    return next(iter((look.get("services") or {}).values()), {})


def k3s_words(board: Board, host: str, version: str) -> list[str]:
    row = board.cells[host]
    look = board.looks.get((host, "k3s_install"), {})
    before = parse_version_output(look.get("k3s_version_output")) or ""
    svc = _service(look)
    words = []
    binary = _changed(row.get("install"), "k3s_install/binary.yml") + _changed(row.get("install"),
                                                                                 "k3s_install/airgap.yml")
    if binary:
        words.append(f"upgraded k3s {before} → {version}" if before else f"installed k3s {version}")
    if _changed(row.get("install"), "k3s_install/images.yml", "copy") + _changed(row.get("install"),
                                                                                 "k3s_install/images.yml", "fetch"):
        words.append("air-gap images archive copied")
    started = _changed(row.get("servers"), "k3s_install/start.yml") + _changed(row.get("agents"),
                                                                                "k3s_install/start.yml")
    service = node.service(board.roles[host])
    if started:
        if svc.get("active") != "active":
            if before:
                words.append(f"started {service} (it was stopped)")
            elif board.roles[host] == "agent":
                words.append("joined as agent")
            elif host == board.first:
                words.append("started the cluster (first server)")
            else:
                words.append("joined as server")
        elif svc.get("enabled") == "enabled":  # running and enabled: it only runs again to restart
            words.append(f"restarted {service}: " + ("new version" if binary else "config changed"))
        else:
            words.append(f"enabled {service} at boot")
    elif _changed(row.get("install"), "k3s_install/write.yml"):
        words.append("k3s scripts updated")
    return words


def node_words(board: Board, host: str, version: str) -> list[str]:
    """Each change on ``host`` as a user would say it, in the order it happened."""
    row = board.cells[host]
    words = []
    if _changed(row.get("prepare"), "prereq/"):
        words.append("kernel modules, sysctls and swap set for k3s")
    if _changed(row.get("prepare"), "raspberrypi/", "reboot"):
        words.append("memory cgroup enabled (rebooted)")
    elif _changed(row.get("prepare"), "raspberrypi/"):
        words.append("Pi swap file stopped")
    words += k3s_words(board, host, version)
    if _changed(row.get("addons"), "addons/storage.yml"):
        words.append("storage prerequisites installed")
    written = [PurePath(p).name for e in _changed(row.get("addons"), "addons/manifests.yml", "edgeclu_files")
               for p in e.res.get("paths") or [] if str(p).endswith(".yaml")]
    if written:
        words.append("add-on manifests written: " + ", ".join(written))
    if len(_changed(row.get("addons"), "addons/manifests.yml")) > len(
            _changed(row.get("addons"), "addons/manifests.yml", "edgeclu_files")):
        words.append("add-ons no longer selected removed")
    agent = row.get("agent")
    if _changed(agent):
        if _changed(agent, "", "apt"):
            words.append("python3-psutil installed")
        if _service(board.looks.get((host, "edgeclu_agent"), {})).get("active") == "active":
            words.append("node agent updated")
        elif _changed(agent, "edgeclu_agent/install.yml", "edgeclu_files"):
            words.append("node agent installed")
        else:
            words.append("node agent started")
    if _changed(row.get("uninstall"), "", "command"):
        words.append("k3s uninstalled")
    if len(_changed(row.get("uninstall"))) > len(_changed(row.get("uninstall"), "", "command")):
        words.append("node agent removed")
    return words


SKIPPED_DIFF = {"src_binary": "binary", "dst_binary": "binary on the node",
                "src_larger": "too big to show", "dst_larger": "too big to show on the node"}


def diff_lines(diffs: list[dict]) -> list[str]:
    """Ansible's diffs (``--diff``: edgeclu_files', secrets already masked on the node) as the lines of a
    unified diff per file, headers first; a change of mode, owner or state as one line (pure). The
    text is the node's (the before side): escape it where it is displayed."""
    lines: list[str] = []
    for d in diffs:
        path = str(d.get("after_header") or d.get("before_header") or "?")
        skipped = [why for key, why in SKIPPED_DIFF.items() if d.get(key)]
        before, after = d.get("before", ""), d.get("after", "")
        if skipped:
            lines.append(f"{path}: content not shown ({skipped[0]})")
        elif isinstance(before, str) and isinstance(after, str):
            lines += [line.rstrip("\n") for line in difflib.unified_diff(
                before.splitlines(keepends=True), after.splitlines(keepends=True),
                f"{d.get('before_header') or path} (now)", f"{path} (would be)")]
        elif isinstance(before, dict) and isinstance(after, dict):
            changed = [f"{k} {before.get(k, '-')} -> {after.get(k)}" for k in after if before.get(k) != after.get(k)]
            lines.append(f"{path}: {', '.join(changed)}" if changed else f"{path}: as it is")
        else:
            lines.append(f"{path}: {json.dumps(before, default=str)} -> {json.dumps(after, default=str)}")
    return lines


def hint(phase: str, state: str, host: str, role: str, ctx: Context) -> str:
    """What to try after a failure in ``phase`` (pure)."""
    inv = shlex.quote(ctx.inventory)
    again = f"then run `edgeclu {ctx.command} -i {inv}` again"
    exec_ = f"edgeclu exec -i {inv} --limit {host} --sudo --"
    if state == "unreachable":
        return f"check that {host} is on and reachable over SSH (`edgeclu preflight -i {inv}`), {again}"
    service = node.service(role)
    return {
        "preflight": f"fix what preflight reports (`edgeclu preflight -i {inv}`), {again}",
        "prepare": f"check sudo and the package sources on {host}, {again}",
        "install": f"check k3s_version and k3s_mirror / k3s_airgap_dir in {ctx.inventory}, {again}",
        "servers": f"read k3s's log on the node: `{exec_} journalctl -u {service} -n 50`, {again}",
        "agents": f"read k3s's log on the node: `{exec_} journalctl -u {service} -n 50`, {again}",
        "ready": f"it runs but is not Ready: `kubectl --context {ctx.cluster} describe node {host}`, {again}",
        "addons": f"check storage / ingress / loadbalancer in {ctx.inventory}, {again}",
        "agent": f"read the agent's log: `{exec_} journalctl -u edgeclu-agent -n 50`, {again}",
        "kubeconfig": f"check that the first server answers (`{exec_} k3s kubectl get nodes`), {again}",
        "backup": f"`edgeclu backup -i {inv}` shows why, or use --no-backup, {again}",
        "uninstall": f"{again}, or run {node.K3S_UNINSTALL[role]} on {host}",
    }.get(phase, again)


def summarize(board: Board, ctx: Context) -> list[NodeSummary]:
    titles = {p.key: p.title for p in board.phases}
    out = []
    for host, row in board.cells.items():
        bad = board.failed(host)
        if bad:
            key, cell = bad
            out.append(NodeSummary(host, cell.state, node_words(board, host, ctx.version), titles[key],
                                   cell.reason or cell.state, hint(key, cell.state, host, board.roles[host], ctx)))
        elif row and all(c.state == SKIPPED for c in row.values()):
            out.append(NodeSummary(host, "skipped", [], None, "not part of this run",
                                   f"run `edgeclu {ctx.command} -i {shlex.quote(ctx.inventory)}` again once it "
                                   "is reachable"))
        else:
            words = node_words(board, host, ctx.version)
            out.append(NodeSummary(host, "changed" if words else "unchanged", words))
    return out


def status_line(nodes: list[NodeSummary], changes: int) -> str:
    """The last words of ``up``: converged, or which nodes did not (pure)."""
    bad = [n.name for n in nodes if n.status in (*BAD, "skipped")]
    if not bad:
        return f"converged: {len(nodes)} node(s), {changes} change(s)"
    good = len(nodes) - len(bad)
    return (f"{len(bad)} node(s) did not converge: {', '.join(bad)}"
            + (f"; the others converged ({good} node(s), {changes} change(s))" if good else ""))


def next_steps(ctx: Context, kubeconfig: str | None, *, backup: str | None = None, default: bool = True,
               cluster_up: bool = True) -> list[str]:
    """What to run next (pure): the context merged and how to use it, then ``edgeclu health``.
    ``default``: kubectl reads ``kubeconfig`` without being told (it is in $KUBECONFIG, or the default)."""
    steps = []
    if kubeconfig:
        steps.append(f"context {ctx.cluster!r} merged into {kubeconfig}" + (f" (backup: {backup})" if backup else ""))
        if cluster_up:
            where = "" if default else f" --kubeconfig {shlex.quote(kubeconfig)}"
            steps.append(f"kubectl{where} --context {ctx.cluster} get nodes")
    steps.append(f"edgeclu health -i {shlex.quote(ctx.inventory)}")
    return steps


def kubectl_reads(path: str, env: Mapping[str, str], home: Path) -> bool:
    """Whether plain ``kubectl`` reads ``path``: every file in $KUBECONFIG, else ~/.kube/config (pure)."""
    listed = [p for p in env.get("KUBECONFIG", "").split(os.pathsep) if p] or [str(home / ".kube" / "config")]
    want = os.path.abspath(os.path.expanduser(path))
    return any(os.path.abspath(os.path.expanduser(p)) == want for p in listed)


def words_line(n: NodeSummary) -> str:
    return "; ".join(n.changes) or NOTHING
