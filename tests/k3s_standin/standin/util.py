"""Small helpers: k3s-style log lines, systemd notify, files, durations, addresses."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import socket
import sys

CONFIG = "/etc/rancher/k3s/config.yaml"

DATA_DIR = "/var/lib/rancher/k3s"

KUBECONFIG = "/etc/rancher/k3s/k3s.yaml"

NODE_PASSWORD = "/etc/rancher/node/password"


def log(level: str, msg: str) -> None:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    escaped = msg.replace('"', '\\"')
    print(f'time="{now}" level={level} msg="{escaped}"', file=sys.stderr, flush=True)


def fatal(msg: str, code: int = 1):
    log("fatal", msg)
    sys.exit(code)


def sd_notify(message: str) -> None:
    """Tell systemd (Type=notify) we are ready, like k3s does once it is up."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.connect(address)
        s.sendall(message.encode())


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def parse_duration(text: str) -> float:
    """Go-style durations: ``40s``, ``1m30s``, ``500ms``."""
    total, pos = 0.0, 0
    for m in re.finditer(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(f"invalid duration {text!r}")
    return total


def component_arg(config: dict, key: str, name: str, default: float) -> float:
    """``kubelet-arg: [node-status-update-frequency=2s]`` style settings."""
    for item in config.get(key) or []:
        k, _, v = str(item).lstrip("-").partition("=")
        if k == name:
            return parse_duration(v)
    return default


def write_file(path: str, text: str, mode: int) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def read_file(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None


def default_ip(towards: str = "192.0.2.1") -> str:
    """The source address of the route to ``towards`` (the default route if it is not local)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect((towards, 6443))
            return s.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def os_image() -> str:
    for line in (read_file("/etc/os-release") or "").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return "Linux"


def rfc3339(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
