"""The converged stamp: what lets ``edgeclu up`` skip the playbook, and ``edgeclu status`` say what drifted.

The roles decide what to write, restart or install from one read-only probe, ``k3s_node_state``
(paths, services, kernel modules, globs, Python imports, the k3s binary's version, swap, the Pi
command line). During a run edgeclu records the probe requests each node's roles actually made
(:class:`Recorder`, from the run's events), and after a run in which the node converged it asks the
same probe once more and writes ``/var/lib/edgeclu/converged`` on the node (root, 0600): the
requests, the answer, and a digest of what the run was given (:func:`inputs_digest`: the inventory
file and any group_vars/host_vars beside it, the token files, edgeclu's own collection
and code). Nothing here lists paths, services or packages: a role that probes one more file puts it
in the next stamp.

The next ``up`` (or ``status``) replays the recorded requests, in one SSH command per node, and
compares the answers (:func:`drift`). The two costly answers, ``k3s --version`` and an images
archive's sha256, are taken from the stamp when the file is the very same one (device, inode, size,
mtime, ctime: the probe's ``remembered``), so a re-run neither starts k3s nor reads hundreds of MB on
an SD card; a new stamp takes them from the one it replaces the same way (``up --full`` on a converged
node). ``up`` runs nothing more when every node's stamp has the same inputs and no drift and the first
server reports every node Ready. Anything else (an edited file, a stopped service, another inventory or
edgeclu version, a node without a stamp) runs the playbook as usual; ``edgeclu up --full`` always runs
it. What the roles do without asking the probe first (a
package the storage add-on installs with apt, say) is not replayed: drift there is seen by ``--full``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ansible_collections.edgeclu.cluster.plugins.module_utils import kubenodes, node_loader
from edgeclu import node, tokens
from edgeclu.fleet import on_all
from edgeclu.inventory import Host, Inventory

STAMP = node.STAMP
FORMAT = 2
PROBE = "k3s_node_state"  # the module whose requests are recorded
LISTS = ("paths", "services", "modules", "globs", "sha256_globs", "imports")
SCALARS = ("k3s_bin", "iface", "python")

# Appended to the probe's own source and run by the node's python3 as root: write the stamp
# (``inputs`` given) or replay it; ``raw_main`` is what the loader calls.
_NODE = r'''
def raw_main(a):
    import json, os, subprocess
    path = a["stamp"]
    try:
        with open(path) as f:
            old = json.load(f)
    except (OSError, ValueError):
        old = None
    old = old if isinstance(old, dict) else {}
    was = old.get("memo") if isinstance(old.get("memo"), dict) else {}
    if a.get("inputs") is not None:  # write; a file that is the very same one as at the last stamp keeps its memo
        memo = {}
        answer = gather(a["request"], memo_in=was, memo_out=memo)
        record = json.dumps({"format": a["format"], "inputs": a["inputs"], "request": a["request"],
                             "answer": answer, "memo": memo}, sort_keys=True)
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        tmp = path + ".new"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(record)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return {"written": True}
    request = old.get("request")
    if not isinstance(request, dict):
        return {"stamp": None}
    out = {"stamp": {k: v for k, v in old.items() if k != "memo"}, "now": gather(request, memo_in=was)}
    if a.get("nodes") and request.get("k3s_bin"):
        p = subprocess.run([request["k3s_bin"], "kubectl", "get", "nodes", "-o", "json"], capture_output=True,
                           text=True)
        out["nodes"] = p.stdout if p.returncode == 0 else ""
    return out
'''

# -- what the roles asked --------------------------------------------------------
def merge(requests: Iterable[Mapping[str, Any]]) -> dict:
    """One probe request asking everything ``requests`` asked (lists in first-seen order; for a
    scalar, the first one set) (pure)."""
    merged: dict[str, Any] = {k: [] for k in LISTS}
    for req in requests:
        for k in LISTS:
            merged[k] += [v for v in req.get(k) or [] if v not in merged[k]]
        for k in SCALARS:
            if merged.get(k) is None and req.get(k) is not None:
                merged[k] = req[k]
    return {k: v for k, v in merged.items() if v not in (None, [])}


@dataclass
class Recorder:
    """Collects, from a run's task events, each host's probe requests (the answer echoes its request)."""

    requests: dict[str, list[dict]] = field(default_factory=dict)

    def __call__(self, event) -> None:
        req = event.res.get("request") if event.action.endswith(PROBE) and event.status == "ok" else None
        if isinstance(req, dict):
            self.requests.setdefault(event.host, []).append(req)

    def request(self, host: str) -> dict | None:
        return merge(self.requests[host]) if host in self.requests else None


# -- what changed ----------------------------------------------------------------
def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _file_drift(path: str, was: dict, now: dict) -> list[str]:
    if was.get("exists") != now.get("exists"):
        return [f"{path}: {'appeared' if now.get('exists') else 'is gone'}"]
    out = []
    if was.get("sha1") != now.get("sha1"):
        out.append(f"{path}: content changed")
    if was.get("mode") != now.get("mode"):
        out.append(f"{path}: mode {was.get('mode')} -> {now.get('mode')}")
    if (was.get("owner"), was.get("group")) != (now.get("owner"), now.get("group")):
        out.append(f"{path}: owner {was.get('owner')}:{was.get('group')} -> {now.get('owner')}:{now.get('group')}")
    return out


def _first_line(value: Any) -> str:
    return (str(value or "").splitlines() or ["(nothing)"])[0][:80]


def drift(was: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """What differs between two answers of the probe to the same request, one line each (pure).
    Both come from the node: every value is shown as text, never acted on."""
    out: list[str] = []
    if _first_line(was.get("k3s_version_output")) != _first_line(now.get("k3s_version_output")):
        out.append(f"k3s --version: {_first_line(was.get('k3s_version_output'))} -> "
                   f"{_first_line(now.get('k3s_version_output'))}")
    wf, nf = _dict(was.get("files")), _dict(now.get("files"))
    for path in sorted(set(wf) | set(nf)):
        out += _file_drift(path, _dict(wf.get(path)), _dict(nf.get(path)))
    ws, ns = _dict(was.get("services")), _dict(now.get("services"))
    for name in sorted(set(ws) | set(ns)):
        a, b = _dict(ws.get(name)), _dict(ns.get(name))
        if (a.get("active"), a.get("enabled")) != (b.get("active"), b.get("enabled")):
            out.append(f"service {name}: {a.get('active')}/{a.get('enabled')} -> {b.get('active')}/{b.get('enabled')}")
    for key, what, yes, no in (("modules", "kernel module", "loaded", "not loaded"),
                               ("imports", "python module", "importable", "not importable")):
        a, b = _dict(was.get(key)), _dict(now.get(key))
        out += [f"{what} {n}: {yes if a.get(n) else no} -> {yes if b.get(n) else no}"
                for n in sorted(set(a) | set(b)) if bool(a.get(n)) != bool(b.get(n))]
    wg, ng = _dict(was.get("globs")), _dict(now.get("globs"))
    for pattern in sorted(set(wg) | set(ng)):
        a, b = set(wg.get(pattern) or []), set(ng.get(pattern) or [])
        if a != b:
            out.append(f"{pattern}: " + ", ".join([f"+{p}" for p in sorted(b - a)] + [f"-{p}" for p in sorted(a - b)]))
    wd, nd = _dict(was.get("sha256")), _dict(now.get("sha256"))  # the images archives
    out += [f"{path}: " + ("removed" if path not in nd else "added" if path not in wd else "content changed")
            for path in sorted(set(wd) | set(nd)) if wd.get(path) != nd.get(path)]
    a, b = _dict(was.get("swap")), _dict(now.get("swap"))
    if a != b:
        out.append(f"swap: {a.get('active')} active, {a.get('fstab')} in fstab -> "
                   f"{b.get('active')} active, {b.get('fstab')} in fstab")
    if was.get("rpi_cmdline") != now.get("rpi_cmdline"):
        out.append(f"{_dict(now.get('rpi_cmdline')).get('path') or 'the Pi kernel command line'}: changed")
    for key, what in (("machine", "machine"), ("default_ipv4", "default address"), ("iface_ipv4", "interface address")):
        if was.get(key) != now.get(key):
            out.append(f"{what}: {was.get(key)} -> {now.get(key)}")
    return out


# -- the inputs ------------------------------------------------------------------
def _beside(inv: Inventory) -> list[Path]:
    """The group_vars/host_vars files beside the inventory (Ansible reads them too)."""
    dirs = [inv.path.parent / d for d in ("group_vars", "host_vars")]
    return [f for d in dirs if d.is_dir() for f in sorted(d.rglob("*")) if f.is_file()]


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
    it, and ``trees`` (edgeclu's collection and package)."""
    h = hashlib.sha256(b"edgeclu converged stamp 2\0")
    _file(h, "inventory", str(inv.path))
    _files(h, inv.path.parent, _beside(inv))
    if inv.vars.get("k3s_airgap_dir"):  # its checksum files name what the nodes get from it
        release = Path(inv.vars["k3s_airgap_dir"]).expanduser() / inv.vars["k3s_version"]
        for sums in sorted(release.glob("sha256sum-*.txt")):
            _file(h, sums.name, str(sums))
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


# -- on the nodes ----------------------------------------------------------------
def _probe_source() -> bytes:
    from edgeclu.resources import collection_dir

    return (collection_dir() / "plugins" / "modules" / f"{PROBE}.py").read_bytes() + _NODE.encode()


def node_stdin(args: Mapping[str, Any]) -> bytes:
    """What the probe with :data:`_NODE` gets on stdin (the collection's framing, ``node_loader``): the script
    and ``args``. Nothing of it is on a command line, and no secret is in it (the inputs digest is a hash)."""
    return node_loader.stdin(_probe_source(), {"stamp": STAMP, "format": FORMAT, **args})


def _on_node(remote: Any, host: Host, args: Mapping[str, Any], **kw: Any):
    """Run the probe with :data:`_NODE` on ``remote`` (inventory host ``host``, with its interpreter), as root."""
    return remote.run(node_loader.command(node_loader.node_python(host.vars)), sudo=True, timeout=60,
                      stdin=node_stdin(args), **kw)


@dataclass
class Look:
    """One node against its stamp: ``error`` (it could not be looked at), else whether it has a stamp,
    whether the run inputs are the same, and what drifted."""

    stamped: bool = False
    inputs_same: bool = False
    drift: list[str] = field(default_factory=list)
    nodes: str | None = None  # the first server's `kubectl get nodes -o json`
    error: str = ""

    @property
    def as_left(self) -> bool:
        return not self.error and self.stamped and self.inputs_same and not self.drift


def parse_look(stdout: str, inputs: str) -> Look:
    """A :class:`Look` from the node's answer to a replay (pure; the answer is the node's: checked)."""
    try:
        doc = json.loads(stdout)
    except ValueError:
        return Look(error="its answer is not JSON")
    old = _dict(doc).get("stamp")
    if not isinstance(old, dict) or old.get("format") != FORMAT:
        return Look()
    nodes = doc.get("nodes")
    return Look(stamped=True, inputs_same=old.get("inputs") == inputs,
                drift=drift(_dict(old.get("answer")), _dict(doc.get("now"))),
                nodes=nodes if isinstance(nodes, str) else None)


def look(inv: Inventory, remotes: Mapping[str, Any]) -> dict[str, Look]:
    """Every node against its stamp, in one SSH command per node."""
    cluster = _cluster(inv)
    first = inv.servers[0].name
    done = on_all(list(inv.hosts), lambda h: _on_node(remotes[h.name], h, {"nodes": h.name == first}, check=False))
    looks = {name: Look(error=str(err)) for name, err in done.failed.items()}
    for h in inv.hosts:
        if h.name in looks:
            continue
        r = done[h.name]
        looks[h.name] = (parse_look(r.stdout, inputs_digest(cluster, inv, h)) if r.ok
                         else Look(error=f"the probe failed (exit {r.exit_code})"))
    return looks


def why_not_as_left(name: str, lk: Look) -> str | None:
    """Why ``name`` is not as the last run left it (None: it is) (pure)."""
    if lk.error:
        return f"{name} could not be looked at ({lk.error})"
    if not lk.stamped:
        return f"{name} has no stamp yet"
    if not lk.inputs_same:
        return f"{name}: the inputs changed since the last run (the inventory, its vars files, a token or edgeclu)"
    if lk.drift:
        return f"{name} is not as the last run left it: {lk.drift[0]}"
    return None


def not_ready(inv: Inventory, looks: Mapping[str, Look]) -> dict[str, str]:
    """The nodes the first server does not report Ready (pure); every node if it listed none."""
    first = inv.servers[0].name
    try:
        return kubenodes.not_ready(kubenodes.parse_nodes(looks[first].nodes or ""), [h.name for h in inv.hosts])
    except ValueError:
        return {h.name: f"{first} did not list the nodes" for h in inv.hosts}


def _cluster(inv: Inventory) -> str:
    from edgeclu.resources import collection_dir

    return cluster_digest(inv, [collection_dir(), Path(__file__).resolve().parent])


def unchanged(inv: Inventory, remotes: Mapping[str, Any]) -> str | None:
    """None when every node still has what the last run left (and every node is Ready), else why not."""
    looks = look(inv, remotes)
    for h in inv.hosts:
        if why := why_not_as_left(h.name, looks[h.name]):
            return why
    problems = not_ready(inv, looks)
    return f"{sorted(problems)[0]} is not Ready" if problems else None


def write(inv: Inventory, hosts: Iterable[Host], remotes: Mapping[str, Any],
          recorder: Recorder) -> dict[str, str]:
    """Stamp ``hosts`` (those that converged in this run) with what their roles asked; the nodes that
    could not be stamped, and why."""
    cluster = _cluster(inv)
    hosts = list(hosts)
    unasked = {h.name: "its roles asked the node nothing" for h in hosts if recorder.request(h.name) is None}
    todo = [h for h in hosts if h.name not in unasked]
    done = on_all(todo, lambda h: _on_node(remotes[h.name], h, {
        "inputs": inputs_digest(cluster, inv, h), "request": recorder.request(h.name)}))
    return {**unasked, **{name: str(err) for name, err in done.failed.items()}}
