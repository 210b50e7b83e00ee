"""``edgeclu restore BACKUP``: put a backup back, the way k3s documents it.

1. The controller's token must be the backup's (a datastore is encrypted with it).
2. Each node gets its saved ``/etc/rancher/node/password`` back where it differs.
3. The first server gets k3s if it has none (after ``edgeclu reset``: ``site.yml --limit``).
4. k3s stops on every server. The first server restores: embedded etcd with
   ``k3s server --cluster-reset --cluster-reset-restore-path=<snapshot>``, SQLite by
   replacing ``server/db`` (the old one is kept as ``server/db.before-restore``).
5. k3s starts on the first server; the other servers drop their ``server/db`` and
   rejoin one at a time.
6. ``site.yml`` on every node (like ``edgeclu up``) installs what is missing, and waits
   until every node is Ready; the kubeconfig is merged again (the restored cluster
   has the backup's credentials).
"""

from __future__ import annotations

import os
import shlex
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgeclu import node
from edgeclu.cluster import Cluster
from edgeclu.converge import Outcome, converge, refuse_pending_upgrade
from edgeclu.errors import EdgecluError, RemoteError
from edgeclu.fleet import on_all
from edgeclu.guards import downgrade_refusal
from edgeclu.inventory import Inventory
from edgeclu.lifecycle.backup import Backup
from edgeclu.node import NODE_PASSWORD, SERVER_DIR
from edgeclu.playbook import TaskEvent

Report = Callable[[str], None]
STAGE = f"{node.STATE_DIR}/restore"
K3S = node.service("server")


def token_secret(token: str) -> str:
    """The secret part of a k3s token: ``K10<ca hash>::server:<secret>`` or a bare secret (pure)."""
    token = token.strip()
    if token.startswith("K10") and "::" in token:
        return token.rsplit(":", 1)[-1]
    return token


def restore_commands(datastore: str, staged: str) -> list[str]:
    """What the first server runs, k3s stopped, to take the backup's datastore (pure)."""
    if datastore == "etcd":
        return [f"k3s server --cluster-reset --cluster-reset-restore-path={shlex.quote(staged)}"]
    return [f"rm -rf {SERVER_DIR}/db.before-restore",
            f"if [ -d {SERVER_DIR}/db ]; then mv {SERVER_DIR}/db {SERVER_DIR}/db.before-restore; fi",
            f"mkdir -p {SERVER_DIR} && tar -xzf {shlex.quote(staged)} -C {SERVER_DIR}"]


@dataclass
class RestoreOutcome:
    backup: str
    token_replaced: bool = False
    passwords_restored: list[str] = field(default_factory=list)
    installed_first: bool = False
    converge: Outcome | None = None

    @property
    def ok(self) -> bool:
        return self.converge is not None and self.converge.result.ok


def sync_token(inv: Inventory, backup: Backup, report: Report) -> bool:
    """Make the controller's token the backup's; True if it had to be replaced."""
    want = token_secret(backup.token())
    v = inv.vars
    if v.get("token_env"):
        if token_secret(os.environ.get(v["token_env"], "")) != want:
            raise EdgecluError(f"${v['token_env']} is not the token this backup was taken with; set it to the "
                               f"secret in {backup.path / 'token'} (the part after the last ':')")
        return False
    path = Path(v["token_file"]).expanduser()
    have = path.read_text().strip() if path.exists() else ""
    if have and token_secret(have) == want:
        return False
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if have:
        old = path.with_name(path.name + ".before-restore")
        fd = os.open(old, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(have + "\n")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(want + "\n")
    os.chmod(path, 0o600)
    report(f"{path}: now the backup's token" + (f" (the previous one is in {old})" if have else ""))
    return True


def _run(remote, command: str, what: str, timeout: float = 300) -> None:
    r = remote.run(command, sudo=True, check=False, timeout=timeout)
    if r.exit_code != 0:
        tail = (r.stderr.strip() or r.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise EdgecluError(f"{remote.name}: {what} failed (exit {r.exit_code}): {tail[0]}")


def restore_backup(cluster: Cluster, backup: Backup, *,
                   on_event: Callable[[TaskEvent], None] | None = None) -> RestoreOutcome:
    inv, report = cluster.inv, cluster.report
    multi = len(inv.servers) > 1
    if (backup.datastore == "etcd") != multi:
        raise EdgecluError(
            f"backup {backup.name} is of a{'n embedded-etcd' if backup.datastore == 'etcd' else ' SQLite'} cluster, "
            f"but {inv.path} has {len(inv.servers)} server(s), which means "
            f"{'embedded etcd' if multi else 'SQLite'}; restore it into a cluster of the same kind")
    outcome = RestoreOutcome(backup.name)
    remotes = cluster.remotes()
    first = inv.servers[0]
    try:
        with cluster.locked("restore", remote=remotes[first.name]) as lk:
            refuse_pending_upgrade(lk, inv)
            probed = on_all(inv.hosts, lambda h: node.gather(remotes[h.name], h))
            facts = probed.succeeded
            refusal = downgrade_refusal({n: f.k3s_version for n, f in facts.items()}, inv.vars["k3s_version"])
            if refusal:
                raise EdgecluError(refusal)
            for h in inv.servers:  # every server takes part: one that does not answer stops it here
                if h.name not in facts:
                    raise EdgecluError(f"{h.name}: {probed.failed[h.name]}; nothing was changed")
            outcome.token_replaced = sync_token(inv, backup, report)
            outcome.passwords_restored = _put_node_passwords(inv, backup, remotes, report)
            if not facts[first.name].k3s_installed:
                report(f"{first.name}: no k3s; installing it first (site.yml --limit {first.name})")
                result = cluster.playbook("site.yml", limit=first.name, on_event=on_event)
                if not result.ok:
                    why = "; ".join(f for h in result.hosts.values() for f in h.failures[:2])
                    raise EdgecluError(f"{first.name}: installing k3s failed: {why}")
                outcome.installed_first = True
            servers = [h for h in inv.servers if h == first or facts[h.name].k3s_installed]
            lk.confirm("stopping k3s on the servers")
            for h in servers:
                report(f"{h.name}: stopping k3s")
                _run(remotes[h.name], f"systemctl stop {K3S}", f"systemctl stop {K3S}")
            lk.confirm(f"restoring the datastore on {first.name}")
            _restore_first(remotes[first.name], backup, report)
            for h in servers[1:]:
                report(f"{h.name}: removing {SERVER_DIR}/db and rejoining")
                _run(remotes[h.name], f"rm -rf {SERVER_DIR}/db && timeout 300 systemctl start {K3S}", "rejoin")
            lk.confirm("converging every node")
            report("converging every node (site.yml)")
            outcome.converge = converge(cluster, preflight=False, on_event=on_event, lock=False)
            remotes[first.name].run(f"rm -rf {STAGE}", sudo=True, check=False)
        return outcome
    finally:
        for r in remotes.values():
            r.close()


def _restore_first(remote, backup: Backup, report: Report) -> None:
    staged = f"{STAGE}/{backup.data_file.name}"
    _run(remote, f"mkdir -p {STAGE} && chmod 700 {STAGE}", "staging")
    remote.put(backup.data_file, staged, sudo=True, mode=0o600)
    for command in restore_commands(backup.datastore, staged):
        report(f"{remote.name}: {command}")
        _run(remote, command, command.split(" --cluster-reset-restore-path")[0], timeout=600)
    report(f"{remote.name}: starting k3s on the restored datastore")
    _run(remote, f"timeout 300 systemctl start {K3S}", f"systemctl start {K3S}")


def _put_node_passwords(inv: Inventory, backup: Backup, remotes: dict, report: Report) -> list[str]:
    saved = backup.node_passwords()
    changed = []
    for h in inv.hosts:
        pw = saved.get(h.name)
        if not pw:
            continue
        remote = remotes[h.name]
        try:
            have = remote.run(f"cat {NODE_PASSWORD} 2>/dev/null", sudo=True, check=False, timeout=30).stdout.strip()
            if have == pw:
                continue
            remote.run(f"mkdir -p -m 700 {os.path.dirname(NODE_PASSWORD)}", sudo=True, timeout=30)
            with tempfile.NamedTemporaryFile("w", prefix="edgeclu-pw-") as f:  # created 0600
                f.write(pw + "\n")
                f.flush()
                remote.put(f.name, NODE_PASSWORD, sudo=True, mode=0o600)
            changed.append(h.name)
        except RemoteError as e:
            report(f"warning: {h.name}: node password not restored: {e}")
    if changed:
        report(f"node passwords restored on: {', '.join(changed)}")
    return changed
