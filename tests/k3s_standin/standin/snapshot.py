"""``k3s etcd-snapshot save/ls/delete`` and ``k3s server --cluster-reset [--cluster-reset-restore-path]``.

Like k3s (pkg/cli/etcdsnapshot/etcd_snapshot.go), the CLI asks the running server (``POST /db/snapshot``
with the server token) and logs what it answers; the server saves a real etcd snapshot (``etcdctl
snapshot save``). The cluster-reset runs with k3s stopped (k3s: pkg/etcd/etcd.go, ``Reset``/``Restore``):
a restore moves ``db/etcd`` aside and ``etcdctl snapshot restore``s the file into a fresh one; then etcd
starts as a new one-member cluster (``--force-new-cluster``, on loopback only), the cluster's CAs are
taken back from the datastore, and it exits 0 asking to restart without the flag.
"""

from __future__ import annotations

import base64
import os
import socket
import sys
import time

from . import etcd, tls
from .config import load_config, parse_flags
from .join import fetch_ca, request, split_token
from .objects import ApiError
from .store import EtcdStore
from .util import DATA_DIR, default_ip, fatal, log, read_file, sha256

# k3s pkg/etcd/etcd.go, Reset: the line it logs before os.Exit(0)
RESET_DONE = ("Managed etcd cluster membership has been reset, restart without --cluster-reset flag now. "
              "Backup and delete ${datadir}/server/db on each peer etcd server and rejoin the nodes")


def cmd_etcd_snapshot(argv: list[str]) -> int:
    flags, args = parse_flags(argv)
    config = load_config(flags)
    verb = args[0] if args else "save"
    ops = {"save": "save", "ls": "list", "list": "list", "delete": "delete", "prune": "prune"}
    if verb not in ops or (verb == "delete" and len(args) < 2):
        print(f"error: unsupported etcd-snapshot command {' '.join(args)!r}", file=sys.stderr)
        return 1
    body = {"operation": ops[verb], "name": args[1:] if verb == "delete" else [config.get("name") or "on-demand"]}
    if flags.get("etcd-snapshot-dir"):
        body["dir"] = flags["etcd-snapshot-dir"]
    token = str(config.get("token") or "").strip() or (read_file(os.path.join(
        config.get("data-dir") or DATA_DIR, "server", "token")) or "").strip()
    if not token:
        fatal("open /var/lib/rancher/k3s/server/token: no such file or directory")
    token_hash, secret = split_token(token)
    url = flags.get("etcd-server") or "https://127.0.0.1:6443"
    try:
        _, ctx = fetch_ca(url, token_hash, 10)
        reply = request(url, "POST", "/db/snapshot", body,
                        "Basic " + base64.b64encode(f"server:{secret}".encode()).decode(), timeout=300, ctx=ctx)
    except ApiError as e:
        fatal(f"see server log for details: {e.message}")
    if verb in ("ls", "list"):
        rows = [["Name", "Location", "Size", "Created"]] + [
            [i["name"], i["location"], str(i["size"]), i["created"]] for i in reply.get("items") or []]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]  # k3s: a tabwriter, padding 1
        print("".join(" ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n"
                      for r in rows), end="")
        return 0
    for name in reply.get("created") or []:
        log("info", f"Snapshot {name} saved.")
    for name in reply.get("deleted") or []:
        log("info", f"Snapshot {name} deleted.")
    for name in body["name"] if verb == "delete" else []:
        if name not in (reply.get("deleted") or []):
            log("warning", f"Snapshot {name} not found.")
    return 0


def cluster_reset(config: dict) -> int:
    """``k3s server --cluster-reset``: this server becomes the only etcd member (restoring a snapshot)."""
    data_dir = config.get("data-dir") or DATA_DIR
    node = config.get("node-name") or socket.gethostname()
    member = etcd.Etcd(data_dir, node, config.get("node-ip") or default_ip())
    restore = config.get("cluster-reset-restore-path")
    if restore:
        if not os.path.exists(restore):
            fatal(f"etcd: snapshot path does not exist: {restore}")
        if os.path.isdir(restore):
            fatal(f"etcd: snapshot path must be a file, not a directory: {restore}")
    elif not etcd.initialized(data_dir):
        fatal("etcd: no etcd data to reset in " + etcd.db_dir(data_dir) + " (this server does not use etcd)")
    name = etcd.new_name(node)
    if restore:
        if os.path.exists(etcd.db_dir(data_dir)):
            old = f"{etcd.db_dir(data_dir)}-old-{int(time.time())}"
            os.rename(etcd.db_dir(data_dir), old)
            log("info", f"Pre-restore etcd database moved to {old}")
        try:
            etcd.restore(restore, data_dir, name, member.peer_url)
        except etcd.EtcdError as e:
            fatal(f"etcd: failed to restore {restore}: {e.message}")
    etcd.save_name(data_dir, name)
    log("info", "Starting etcd for new cluster, cluster-reset=true")
    member.start(name, f"{name}={member.peer_url}", "new", reset=True)
    try:
        member.wait_ready(120)
        state = EtcdStore(member).read()
        if not state.get("cluster"):
            fatal("etcd: the datastore holds no k3s stand-in cluster")
        token = str(config.get("token") or "")
        if token and sha256(split_token(token)[1]) != state["cluster"]["token_hash"]:
            fatal("bootstrap data already found and encrypted with different token")
        tls.import_cas(tls.tls_dir(data_dir), state["cluster"]["ca_files"])  # k3s: "rebootstrap"
        if [m.get("name") for m in member.members()] != [name]:
            fatal("etcd: the reset cluster has more than this member")
    except etcd.EtcdError as e:
        fatal(f"etcd: {e.message}")
    finally:
        member.stop()
    log("info", RESET_DONE)
    return 0
