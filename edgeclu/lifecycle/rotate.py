"""``edgeclu token rotate [--agent|--server]``: new k3s tokens, then every node's config, rolling.

k3s's own mechanisms (docs.k3s.io/cli/token): the server token is rotated by ``k3s token
rotate`` on a server (k3s re-encrypts its bootstrap data with the new one and rewrites
``/var/lib/rancher/k3s/server/token``; run without ``--token``/``--new-token`` it reads the
old one there and makes the new one itself, so no secret is ever on a command line); the
agent token is static configuration, changed by restarting every server with the new
``agent-token``. Running nodes are not disturbed (after joining they use their own
credentials); what matters is that each node's config.yaml has the new token before its next
start, and that the old one is then refused.

The run, under the cluster lock, every node Ready first: the server token (``k3s token
rotate`` on a server, the new token read back into ``token_file``) and/or a new agent token
(written to ``k3s_agent_token_file`` first, so an interrupted run is finished by ``edgeclu
up``); then ``site.yml --limit`` one server at a time, each waited for until Ready, then the
agents in batches of ``upgrade_batch_percent`` (only when the agent token changed: agents do
not hold the server token).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgeclu import tokens
from edgeclu.cluster import Cluster
from edgeclu.errors import EdgecluError
from edgeclu.inventory import Inventory
from edgeclu.lifecycle.kubectl import ClusterApi
from edgeclu.lifecycle.plan import Step, rolling_steps
from edgeclu.node import K3S_CONFIG, SERVER_TOKEN
from edgeclu.playbook import TaskEvent

Report = Callable[[str], None]


def which_tokens(agent: bool, server: bool) -> tuple[bool, bool]:
    """``(agent, server)`` to rotate: the flags given, or both when neither is (pure)."""
    return (True, True) if not agent and not server else (agent, server)


def rotation_steps(servers: list[str], agents: list[str], percent: int, *, agent_token: bool) -> list[Step]:
    """Servers one at a time (each restarts with its new config.yaml), then, when the agent
    token changed, the agents in batches of ``percent`` % (pure)."""
    return rolling_steps(servers, agents if agent_token else [], percent)


def unreachable_advice(name: str, role: str, inventory: Path) -> tuple[str, list[str]]:
    """What to tell about a node removed while unreachable, and the rotate flags to offer (pure):
    k3s stays on it, so whoever holds the machine (or its SD card: config.yaml is readable
    offline) holds its token, which the cluster still accepts until it is rotated."""
    held = "the server and agent tokens" if role == "server" else "the agent token"
    flags = [] if role == "server" else ["--agent"]
    command = " ".join(["edgeclu token rotate", *flags, "-i", str(inventory)])
    return (f"{name} still holds {held} in {K3S_CONFIG}, and the cluster still accepts "
            f"{'them' if role == 'server' else 'it'}: whoever has the machine or its SD card can join "
            f"{'as a server' if role == 'server' else 'an agent'} with it. Rotate: {command}"), flags


@dataclass
class RotateOutcome:
    agent: bool
    server: bool
    steps: list[Step] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    not_started: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.not_started


def _check_files(inv: Inventory, agent: bool, server: bool) -> None:
    wanted = ([tokens.server_token(inv.vars)] if server else []) + ([tokens.agent_token(inv.vars)] if agent else [])
    for s in wanted:
        if s.env:
            raise EdgecluError(f"{s.what} comes from ${s.env}: edgeclu rotates tokens kept in files "
                               f"(set {s.key.replace('_env', '_file')} instead)")
    current = tokens.agent_token(inv.vars)
    if current.path is not None and not current.path.exists():
        raise EdgecluError(f"{current.path} does not exist: this cluster still uses one token for servers and "
                           "agents; run `edgeclu up` first (it moves it to two)")
    for key in ("k3s_token", "k3s_agent_token"):
        if key in inv.vars or any(key in h.vars for h in inv.hosts):
            raise EdgecluError(f"{inv.path}: {key} is set in the inventory, so the rotated token would not be "
                               "used; remove it (keep tokens in their files)")


def _rotate_server_token(api: ClusterApi, inv: Inventory, report: Report) -> None:
    """``k3s token rotate`` on a server, then the new token into ``token_file``."""
    report(f"server token: `k3s token rotate` on {api.server}")
    api.run("k3s token rotate", timeout=120)  # the old token from its data dir, a new random one
    new = api.run(f"cat {SERVER_TOKEN}").stdout.strip()
    if "::server:" not in new:
        raise EdgecluError(f"{api.server}:{SERVER_TOKEN} does not hold a server token after the rotation")
    tokens.write(tokens.server_token(inv.vars), new)
    report(f"server token: rotated; the new one is in {tokens.server_token(inv.vars).path} "
           "(backups keep the token they were taken with)")


def rotate_tokens(cluster: Cluster, *, agent: bool, server: bool, ready_timeout: float = 300,
                  on_event: Callable[[TaskEvent], None] | None = None) -> RotateOutcome:
    inv, report = cluster.inv, cluster.report
    agent, server = which_tokens(agent, server)
    _check_files(inv, agent, server)
    outcome = RotateOutcome(agent, server)
    outcome.steps = rotation_steps([h.name for h in inv.servers], [h.name for h in inv.agents],
                                   inv.vars["upgrade_batch_percent"], agent_token=agent)
    with cluster.locked("token rotate"):
        api = cluster.api()
        try:
            api.require_ready([h.name for h in inv.hosts], "to take the new token")
            if server:
                _rotate_server_token(api, inv, report)
            if agent:
                tokens.write(tokens.agent_token(inv.vars), tokens.new_token())
                report(f"agent token: a new one is in {tokens.agent_token(inv.vars).path}")
            for i, step in enumerate(outcome.steps):
                if not _step(cluster, api, step, f"[{i + 1}/{len(outcome.steps)}]", outcome,
                             ready_timeout=ready_timeout, on_event=on_event):
                    outcome.not_started = [n for s in outcome.steps[i + 1:] for n in s.nodes]
                    if outcome.not_started:
                        report(f"stopped: still to get the new token: {', '.join(outcome.not_started)} "
                               "(`edgeclu up` finishes the job)")
                    break
        finally:
            api.close()
    return outcome


def _step(cluster: Cluster, api: ClusterApi, step: Step, label: str, outcome: RotateOutcome, *,
          ready_timeout: float, on_event) -> bool:
    report = cluster.report
    names = ", ".join(step.nodes)
    report(f"{label} {names}: new config.yaml, restart")
    result = cluster.playbook("site.yml", limit=step.nodes, on_event=on_event)
    failed = result.failures_of(step.nodes)
    waiting = api.wait_nodes([n for n in step.nodes if n not in failed], ready_timeout)
    failed.update({n: f"not Ready after {ready_timeout:g}s ({why})" for n, why in waiting.items()})
    for n in step.nodes:
        if n in failed:
            report(f"{label} {n}: FAILED: {failed[n]}")
        else:
            outcome.done.append(n)
            report(f"{label} {n}: new token, Ready")
    outcome.failed.update(failed)
    return not failed
