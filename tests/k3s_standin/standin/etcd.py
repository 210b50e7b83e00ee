"""``k3s etcd-snapshot`` and ``k3s server --cluster-reset``."""

from __future__ import annotations

import json
import os
import socket
import sys
import time

from . import tls
from .config import load_config, parse_flags
from .join import split_token
from .store import Store
from .util import DATA_DIR, default_ip, fatal, log, read_file, rfc3339, sha256, write_file


def cmd_etcd_snapshot(argv: list[str]) -> int:
    flags, args = parse_flags(argv)
    config = load_config(flags)
    data_dir = config.get("data-dir") or DATA_DIR
    store = Store(data_dir)
    snap_dir = config.get("etcd-snapshot-dir") or os.path.join(store.dir, "snapshots")
    verb = args[0] if args else "save"
    if verb == "save":
        state = store.read()
        if state.get("cluster", {}).get("datastore") != "etcd":
            fatal("etcd datastore disabled")
        node = config.get("node-name") or socket.gethostname()
        name = f"{config.get('name') or 'on-demand'}-{node}-{int(time.time())}"
        path = os.path.join(snap_dir, name)
        os.makedirs(snap_dir, mode=0o700, exist_ok=True)
        write_file(path, json.dumps(state, sort_keys=True), 0o600)
        # k3s >= 1.27's CLI asks the server to save and logs only this (k3s-io/k3s#10513)
        log("info", f"Snapshot {name} saved.")
        return 0
    if verb in ("ls", "list"):
        rows = [["Name", "Location", "Size", "Created"]]
        for name in sorted(os.listdir(snap_dir)) if os.path.isdir(snap_dir) else []:
            st = os.stat(os.path.join(snap_dir, name))
            rows.append([name, "file://" + os.path.join(snap_dir, name), str(st.st_size), rfc3339(st.st_mtime)])
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        print("".join(" ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n"
                      for r in rows), end="")
        return 0
    if verb in ("delete", "prune") and len(args) >= 2:
        for name in args[1:]:
            os.remove(os.path.join(snap_dir, os.path.basename(name)))
            log("info", f"Snapshot {name} deleted.")
        return 0
    print(f"error: unsupported etcd-snapshot command {verb!r}", file=sys.stderr)
    return 1


def cluster_reset(config: dict) -> int:
    """``k3s server --cluster-reset``: this server becomes the only etcd member (restoring a snapshot)."""
    data_dir = config.get("data-dir") or DATA_DIR
    store = Store(data_dir)
    restore = config.get("cluster-reset-restore-path")
    text = read_file(restore) if restore else read_file(store.path)
    if not text:
        fatal(f"no etcd data to reset{' in ' + restore if restore else ''}")
    state = json.loads(text)
    token = str(config.get("token") or "")
    if token and sha256(split_token(token)[1]) != state["cluster"]["token_hash"]:
        fatal("bootstrap data already found and encrypted with different token")
    name = config.get("node-name") or socket.gethostname()
    state["cluster"]["datastore"] = "etcd"
    state["etcd_members"] = {name: {"address": config.get("node-ip") or default_ip(), "joined": time.time()}}
    store.write(state)
    tls.import_cas(tls.tls_dir(data_dir), state["cluster"]["ca_files"])
    store.set_role({"leader": True})
    log("info", "Managed etcd cluster membership has been reset, restart without --cluster-reset flag now. "
        "Backup and delete ${datadir}/server/db on each peer etcd server and rejoin the nodes")
    return 0
