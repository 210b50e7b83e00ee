"""What `upgrade`, `remove`, `restore` and `reset` did, in a user's words (pure: outcomes in, lines out).

Each function returns ``(lines, next)``: one line per node (or per fact) and what to run next.
Reasons that came from a node are kept as they came: escape them where they are displayed.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence

from edgeclu.node import K3S_UNINSTALL


def upgrade_words(*, target: str, before: Mapping[str, str | None], order: Sequence[tuple[str, Sequence[str]]],
                  upgraded: Sequence[str], failed: Mapping[str, str], not_started: Sequence[str],
                  inventory: str, cluster: str) -> tuple[list[str], list[str]]:
    """Per node in upgrade order: upgraded from/to, already on the target, failed and why, or left;
    ``order``: the steps as (``server`` | ``agent``, nodes)."""
    lines = []
    for i, (role, nodes) in enumerate(order, 1):
        label = f"step {i}/{len(order)}, {'server' if role == 'server' else 'agents'}"
        for n in nodes:
            if n in upgraded:
                lines.append(f"✓ {n}  upgraded {before.get(n) or 'k3s'} → {target} ({label}: drained, upgraded, "
                             "uncordoned, Ready)")
            elif n in failed:
                lines.append(f"✗ {n}  FAILED ({label}): {failed[n]}")
            else:
                lines.append(f"· {n}  left: not upgraded yet ({label})")
    for n, v in before.items():
        if v == target and not any(n in nodes for _, nodes in order):
            lines.append(f"= {n}  already on {target}")
    inv = shlex.quote(inventory)
    if failed or not_started:
        nxt = [f"fix {', '.join(failed) or 'the node named above'}, then run "
               f"`edgeclu upgrade --k3s-version {target} -i {inv}` again: it resumes, the nodes already on "
               f"{target} are skipped"]
    else:
        nxt = [f"kubectl --context {cluster} get nodes", f"edgeclu health -i {inv}"]
    return lines, nxt


def remove_words(*, name: str, role: str, reachable: bool, quorum: str | None, drained: bool | None,
                 stuck: Sequence[str], node_deleted: bool, uninstalled: bool, inventory_backup: str | None,
                 inventory: str) -> tuple[list[str], list[str]]:
    lines = []
    if quorum:
        lines.append(f"etcd: {quorum}")
    if not reachable:
        lines.append(f"{name} was unreachable: not drained, k3s is still installed on it (wipe it before "
                     "reusing it)")
    elif drained is not None:
        lines.append("drained" if drained and not stuck else
                     f"drained with --force: {len(stuck)} pod(s) would not move and went with it")
    if node_deleted:
        lines.append("Node object deleted" + (" (k3s removes its etcd member)" if role == "server" else ""))
    if uninstalled:
        lines.append("k3s and the edgeclu agent uninstalled")
    elif reachable:
        lines.append(f"uninstall FAILED (see above); run {K3S_UNINSTALL[role]} on it by hand")
    if inventory_backup:
        lines.append(f"dropped from {inventory} (previous version: {inventory_backup})")
    return lines, [f"edgeclu health -i {shlex.quote(inventory)}"]


def reset_words(*, nodes: Mapping[str, str], backup: str | None, inventory: str) -> tuple[list[str], list[str]]:
    """``nodes``: node -> its words (from :func:`edgeclu.summary.summarize`)."""
    lines = [f"{n}: {w}" for n, w in nodes.items()]
    inv = shlex.quote(inventory)
    if backup:
        lines.append(f"backup: {backup}")
        return lines, [f"edgeclu restore {backup} -i {inv}   (brings this cluster back)",
                       f"edgeclu up -i {inv}   (a new, empty cluster)"]
    return lines, [f"edgeclu up -i {inv}   (a new, empty cluster)"]


def restore_words(*, backup: str, token_replaced: bool, passwords: Sequence[str], installed_first: str | None
                  ) -> list[str]:
    lines = [f"datastore restored from {backup}"]
    if installed_first:
        lines.append(f"k3s installed on {installed_first} first (it had none)")
    if token_replaced:
        lines.append("the token file now holds the backup's token (the old one is kept beside it)")
    if passwords:
        lines.append(f"node passwords put back on: {', '.join(passwords)}")
    return lines
