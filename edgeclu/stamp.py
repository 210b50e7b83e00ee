"""The converged stamp: lets ``edgeclu up`` skip the playbook when nothing can have changed.

After a run in which a node converged, edgeclu writes ``/var/lib/edgeclu/converged`` on it
(root, 0600): a digest of what the run was given (:func:`inputs_digest`: the inventory file and
any group_vars/host_vars beside it, the token files, edgeclu's own playbooks, templates and code)
and a digest of what the node then had (:data:`FINGERPRINT`: content, mode and owner of every
file the roles write, the binary's size and time, the services' states, swap, kernel modules,
packages). The next ``up`` looks again, in one SSH command per node, and runs nothing more when
every node's stamp still matches both and the first server reports every node Ready. Anything
else (an edited file, a stopped service, another inventory or edgeclu version, a node without a
stamp) runs the playbook as usual. ``edgeclu up --full`` always runs it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from edgeclu import tokens
from edgeclu.fleet import on_all
from edgeclu.inventory import Host, Inventory
from edgeclu.k3s import nodes_not_ready

STAMP = "/var/lib/edgeclu/converged"
# the fingerprint looks at the default paths; with another one set, drift there would go unseen
PATH_VARS = ("k3s_install_dir", "k3s_config_dir", "agent_prefix", "agent_zip", "addons_manifests_dir",
             "addons_k3s_bin")

# What the roles manage, as root; its output is hashed on the node (sha256sum).
FINGERPRINT = r"""
for f in /etc/modules-load.d/k3s.conf /etc/sysctl.d/90-k3s.conf /boot/firmware/cmdline.txt /boot/cmdline.txt \
  /etc/rancher/k3s /etc/rancher/k3s/config.yaml /etc/systemd/system/k3s.service \
  /etc/systemd/system/k3s-agent.service /usr/local/bin/k3s-killall.sh /usr/local/bin/k3s-uninstall.sh \
  /usr/local/bin/k3s-agent-uninstall.sh /opt/edgeclu /opt/edgeclu/edgeclu-agent.zip /etc/edgeclu \
  /etc/edgeclu/agent.json /etc/systemd/system/edgeclu-agent.service \
  /var/lib/rancher/k3s/server/manifests/edgeclu-*.yaml; do
  if [ -e "$f" ]; then stat -c '%n %F %a %U %G' "$f"; if [ -f "$f" ]; then sha1sum < "$f"; fi
  else echo "$f absent"; fi
done
stat -c '%n %s %Y %a %U' /usr/local/bin/k3s 2>&1; readlink /usr/local/bin/kubectl
grep -E '^[^#[:space:]]+[[:space:]]+[^[:space:]]+[[:space:]]+swap[[:space:]]' /etc/fstab
tail -n +2 /proc/swaps | cut -d' ' -f1
ls -d /sys/module/br_netfilter /sys/module/overlay 2>&1
for s in k3s k3s-agent edgeclu-agent dphys-swapfile iscsid; do
  echo "$s $(systemctl is-active $s 2>/dev/null) $(systemctl is-enabled $s 2>/dev/null)"
done
dpkg-query -W -f '${Package} ${Status}\n' python3-psutil open-iscsi nfs-common 2>&1
"""


def _state_command() -> str:
    return f"state=$( {{ {FINGERPRINT} }} 2>&1 | sha256sum | cut -c1-64 )"


def check_command(first_server: bool) -> str:
    """Prints ``state=<digest of now>``, ``stamp=<what the last run left>``, and on the first
    server the nodes as ``kubectl get nodes -o json``."""
    nodes = "\necho nodes=; /usr/local/bin/k3s kubectl get nodes -o json 2>/dev/null" if first_server else ""
    return f'{_state_command()}\necho "state=$state"\necho "stamp=$(cat {STAMP} 2>/dev/null)"{nodes}\n'


def write_command(inputs: str) -> str:
    """Writes the stamp: ``<inputs digest> <digest of the node now>``."""
    stamp = shlex.quote(STAMP)
    return (f"{_state_command()}\nmkdir -p -m 0700 {shlex.quote(os.path.dirname(STAMP))}\n"
            f"umask 077; printf '%s %s\\n' {shlex.quote(inputs)} \"$state\" > {stamp}.new && mv {stamp}.new {stamp}\n")


def parse_check(stdout: str) -> tuple[str, str, str | None]:
    """``(state, stamp, nodes JSON or None)`` from :func:`check_command`'s output."""
    head, sep, nodes = stdout.partition("nodes=\n")
    fields = dict(line.partition("=")[::2] for line in head.splitlines() if "=" in line)
    return fields.get("state", "").strip(), fields.get("stamp", "").strip(), nodes if sep else None


def matches(inputs: str, state: str, stamp: str) -> bool:
    return bool(inputs and len(state) == 64) and stamp == f"{inputs} {state}"


def _beside(inv: Inventory) -> list[Path]:
    """The group_vars/host_vars files beside the inventory (Ansible reads them; edgeclu does not)."""
    dirs = [inv.path.parent / d for d in ("group_vars", "host_vars")]
    return [f for d in dirs if d.is_dir() for f in sorted(d.rglob("*")) if f.is_file()]


def blockers(inv: Inventory) -> list[str]:
    """Why this inventory cannot use the stamp (an empty list: it can): a role path moved, in the
    inventory or in group_vars/host_vars beside it (Ansible reads those; edgeclu does not)."""
    found = {k for v in [inv.vars, *(h.vars for h in inv.hosts)] for k in v if k in PATH_VARS}
    for f in _beside(inv):
        found |= {k for k in PATH_VARS if k in f.read_text(errors="replace")}
    return [f"{k} is set (the stamp looks at the default paths)" for k in sorted(found)]


def _files(h: Any, root: Path, paths: Iterable[Path]) -> None:
    for path in paths:
        h.update(f"\0{path.relative_to(root)}\0".encode())
        h.update(path.read_bytes())


def _tree(h: Any, root: Path) -> None:
    _files(h, root, sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts))


def _file(h: Any, label: str, path: str | None) -> None:
    p = Path(os.path.expanduser(path)) if path else None
    h.update(f"\0{label}\0".encode())
    h.update(p.read_bytes() if p is not None and p.is_file() else b"(absent)")


def cluster_digest(inv: Inventory, trees: Iterable[Path]) -> str:
    """What a run is given, for every node: the inventory file and any group_vars/host_vars beside
    it, and ``trees`` (edgeclu's playbooks, templates and package)."""
    h = hashlib.sha256(b"edgeclu converged stamp 1\0")
    _file(h, "inventory", str(inv.path))
    _files(h, inv.path.parent, _beside(inv))
    for tree in trees:
        _tree(h, tree)
    return h.hexdigest()


def inputs_digest(cluster: str, inv: Inventory, host: Host) -> str:
    """:func:`cluster_digest` for ``host``, with the token it gets (from its file or environment
    variable: hashed, never stored) and the agent's token file."""
    h = hashlib.sha256(f"{cluster}\0{host.name}\0{host.role}\0".encode())
    v = {**inv.vars, **host.vars}
    for secret in tokens.controller_secrets(v):
        if secret.env:
            h.update(f"\0{secret.key}\0".encode() + os.environ.get(str(secret.env), "").encode())
        else:
            _file(h, secret.key, str(secret.path))
    return h.hexdigest()


# -- on the nodes ------------------------------------------------------------------
def _cluster(inv: Inventory) -> str:
    from edgeclu.resources import data_dir

    return cluster_digest(inv, [data_dir("playbooks"), data_dir("templates"), Path(__file__).resolve().parent])


def unchanged(inv: Inventory, remotes: dict[str, Any]) -> str | None:
    """None when every node still has what the last run left (and every node is Ready), else why not."""
    if why := blockers(inv):
        return why[0]
    first = inv.servers[0].name
    cluster = _cluster(inv)
    looks = on_all(list(inv.hosts), lambda h: remotes[h.name].run(check_command(h.name == first), sudo=True,
                                                                    check=False, timeout=60))
    if looks.failed:
        return f"{sorted(looks.failed)[0]} could not be looked at"
    seen = {name: parse_check(r.stdout) for name, r in looks.items()}
    for h in inv.hosts:
        state, stamp, _ = seen[h.name]
        if not matches(inputs_digest(cluster, inv, h), state, stamp):
            return f"{h.name} is not as the last run left it" if stamp else f"{h.name} has no stamp yet"
    nodes = seen[first][2]
    try:
        not_ready = nodes_not_ready(json.loads(nodes or ""), [h.name for h in inv.hosts])
    except ValueError:
        return f"{first} did not list the nodes"
    return f"{sorted(not_ready)[0]} is not Ready" if not_ready else None


def write(inv: Inventory, hosts: Iterable[Host], remotes: dict[str, Any]) -> dict[str, BaseException]:
    """Stamp ``hosts`` (those that converged in this run); the nodes that could not be stamped."""
    cluster = _cluster(inv)
    done = on_all(list(hosts), lambda h: remotes[h.name].run(write_command(inputs_digest(cluster, inv, h)),
                                                             sudo=True, timeout=60))
    return dict(done.failed)
