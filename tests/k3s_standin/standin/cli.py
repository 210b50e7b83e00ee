"""The ``k3s`` command line: ``--version``, ``server``, ``agent``, ``kubectl``, ``etcd-snapshot``, ``token``,
``certificate``."""

from __future__ import annotations

import base64
import contextlib
import os
import platform
import signal
import socket
import sys
import threading

from .api import Server
from .build import ARCH, VERSION
from .config import load_config, parse_flags
from .join import ensure_node_password, fetch_ca, kubelet_auth, request, split_token
from .node_files import on_start
from .objects import ApiError
from .snapshot import cluster_reset, cmd_etcd_snapshot
from .tls import rotate as rotate_certificates
from .util import (
    DATA_DIR,
    KUBECONFIG,
    component_arg,
    default_ip,
    fatal,
    log,
    os_image,
    read_file,
    sd_notify,
    write_file,
)

KUBECTL_DIR = "/opt/standin-kubectl"  # real kubectl binaries, kubectl.1.<minor>
MACHINE_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}


def install_signal_handlers(stop: threading.Event) -> None:
    def handler(signum, _frame):
        log("info", f"Received signal {signal.Signals(signum).name}, shutting down")
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def cmd_server(argv: list[str]) -> int:
    flags, _ = parse_flags(argv)
    config = load_config(flags)
    if config.get("cluster-reset"):
        return cluster_reset(config)
    if config.get("cluster-init") and config.get("server"):
        log("warning", "cluster-init is ignored when joining a server")
    on_start(config)
    server = Server(config)
    install_signal_handlers(server.stop)
    server.run()
    return 0


def cmd_agent(argv: list[str]) -> int:
    flags, _ = parse_flags(argv)
    config = load_config(flags)
    if not config.get("server"):
        fatal("--server is required")
    if not config.get("token"):
        fatal("--token is required")
    on_start(config)
    url = config["server"]
    token_hash, secret = split_token(str(config["token"]))
    _, ctx = fetch_ca(url, token_hash, float(os.environ.get("K3S_STANDIN_JOIN_TIMEOUT", "60")))
    name = config.get("node-name") or socket.gethostname()
    # like k3s: the user named in a full token (a server token joins agents too), else "node"
    token = str(config["token"]).strip()
    user = token.split("::", 1)[1].partition(":")[0] if token.startswith("K10") and "::" in token else "node"
    auth = "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()
    host = url.split("://", 1)[1].rsplit(":", 1)[0].strip("[]")
    info = {"name": name, "address": config.get("node-ip") or default_ip(socket.gethostbyname(host)),
            "password": ensure_node_password(), "roles": [], "labels": config.get("node-label") or [],
            "taints": config.get("node-taint") or [], "version": VERSION, "arch": ARCH,
            "os_image": os_image(), "kernel": platform.release()}
    try:
        request(url, "POST", "/v1-standin/register", info, auth, ctx=ctx)
    except ApiError as e:
        if e.status == 401:
            fatal(f"Error: the server at {config['server']} rejected the token (401 Unauthorized): "
                  "it is not this cluster's token")
        fatal(f"Error: failed to register node {name} with {config['server']}: {e.message}")
    except OSError as e:
        fatal(f"Error: failed to reach {config['server']}: {e}")
    write_file(os.path.join(config.get("data-dir") or DATA_DIR, "agent", "standin-server"),
               config["server"] + "\n", 0o600)
    stop = threading.Event()
    install_signal_handlers(stop)
    sd_notify("READY=1")
    log("info", f"k3s agent {name} joined {config['server']} ({VERSION})")
    interval = component_arg(config, "kubelet-arg", "node-status-update-frequency", 10)
    while not stop.wait(interval):
        try:
            request(url, "POST", f"/v1-standin/heartbeat/{name}", {"password": info["password"]},
                    kubelet_auth(name, info["password"]), ctx=ctx)
        except (ApiError, OSError) as e:
            log("error", f"Error updating node status, will retry: {e}")
    return 0


def cmd_token(argv: list[str]) -> int:
    """``k3s token rotate [--token OLD] [--new-token NEW] [--server URL] [--data-dir DIR]``."""
    flags, args = parse_flags(argv)
    if args[:1] != ["rotate"]:
        print(f"error: the k3s stand-in's token supports only rotate, not {' '.join(args)!r}", file=sys.stderr)
        return 1
    # like k3s: the old token from the flag, $K3S_TOKEN or the server's token file
    token = flags.get("token") or os.environ.get("K3S_TOKEN") or (
        read_file(os.path.join(flags.get("data-dir") or DATA_DIR, "server", "token")) or "").strip()
    if not token:
        fatal("no token: pass --token or run on a server")
    print("\033[33mWARNING\033[0m: Recommended to keep a record of the old token. If restoring from a snapshot, "
          "you must use the token associated with that snapshot.")
    token_hash, secret = split_token(token)
    url = flags.get("server") or "https://127.0.0.1:6443"
    try:
        _, ctx = fetch_ca(url, token_hash, 30)
        request(url, "POST", "/v1-standin/token", {"newToken": flags.get("new-token") or ""},
                "Basic " + base64.b64encode(f"server:{secret}".encode()).decode(), ctx=ctx)
    except ApiError as e:
        fatal(f"failed to rotate the token: {e.status} {e.message}")
    except OSError as e:
        fatal(f"failed to reach the server: {e}")
    print("Token rotated, restart k3s nodes with new token")
    return 0


def cmd_certificate(argv: list[str]) -> int:
    """``k3s certificate rotate [--data-dir DIR]``: run with k3s stopped; the next start issues new
    certificates (k3s pkg/cli/cert/cert.go: it backs up and removes the leaf files, CAs untouched)."""
    flags, args = parse_flags(argv)
    if args[:1] != ["rotate"]:
        print(f"error: the k3s stand-in's certificate supports only rotate, not {' '.join(args)!r}",
              file=sys.stderr)
        return 1
    if flags.get("service"):
        fatal("the k3s stand-in rotates every certificate: --service is not supported")
    backup = rotate_certificates(flags.get("data-dir") or DATA_DIR)
    where = backup or os.path.join(flags.get("data-dir") or DATA_DIR, "agent")
    log("info", f"Successfully backed up certificates to {where}, please restart k3s server or agent to "
                "rotate certificates")
    return 0


def cmd_kubectl(argv: list[str]) -> int:
    """``k3s kubectl``: k3s embeds kubectl; the stand-in runs a real one of its minor version (the lab binds
    it read-only into each node), with k3s.yaml unless the caller names a kubeconfig."""
    minor = VERSION.split(".")[1]
    binary = os.path.join(KUBECTL_DIR, f"kubectl.1.{minor}")
    if not os.access(binary, os.X_OK):
        print(f"k3s stand-in: no real kubectl 1.{minor} at {binary} (the lab binds one in)", file=sys.stderr)
        return 1
    env = dict(os.environ)
    if "KUBECONFIG" not in env and not any(a == "--kubeconfig" or a.startswith("--kubeconfig=") for a in argv):
        env["KUBECONFIG"] = KUBECONFIG
    os.execve(binary, ["kubectl", *argv], env)
    return 1


def main(argv: list[str]) -> int:
    machine = platform.machine()
    if MACHINE_ARCH.get(machine, machine) != ARCH:
        print(f"{argv[0]}: cannot execute binary file: Exec format error "
              f"(stand-in built for {ARCH}, this machine is {machine})", file=sys.stderr)
        return 126
    prog = os.path.basename(argv[0])
    args = argv[1:]
    if prog == "kubectl":
        return cmd_kubectl(args)
    if not args or args[0] in ("--version", "-v", "version"):
        print(f"k3s version {VERSION} (standin)\ngo version go1.22.9 (stand-in: python {platform.python_version()})")
        return 0
    commands = {"server": cmd_server, "agent": cmd_agent, "kubectl": cmd_kubectl,
                "etcd-snapshot": cmd_etcd_snapshot, "token": cmd_token, "certificate": cmd_certificate}
    if args[0] not in commands:
        print(f"k3s stand-in: unknown command {args[0]!r} (supported: {', '.join(commands)})", file=sys.stderr)
        return 1
    return commands[args[0]](args[1:])


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main(sys.argv))
