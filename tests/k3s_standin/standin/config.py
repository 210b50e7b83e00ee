"""k3s's configuration: ``/etc/rancher/k3s/config.yaml`` merged with command-line flags."""

from __future__ import annotations

import os

import yaml

from .util import CONFIG, fatal, log, read_file

LIST_FLAGS = {"tls-san", "node-label", "node-taint", "disable", "kubelet-arg",
              "kube-controller-manager-arg", "kube-apiserver-arg", "node-external-ip"}

BOOL_FLAGS = {"cluster-init", "cluster-reset", "disable-agent", "debug"}

KNOWN_FLAGS = LIST_FLAGS | BOOL_FLAGS | {
    "config", "token", "token-file", "server", "data-dir", "node-name", "node-ip", "write-kubeconfig",
    "write-kubeconfig-mode", "https-listen-port", "bind-address", "advertise-address",
    "cluster-reset-restore-path", "flannel-iface", "flannel-backend", "default-local-storage-path",
    "cluster-cidr", "service-cidr", "cluster-dns", "cluster-domain", "agent-token", "etcd-snapshot-dir",
    "etcd-snapshot-schedule-cron", "etcd-snapshot-retention", "secrets-encryption", "selinux",
    "protect-kernel-defaults", "system-default-registry", "embedded-registry", "prefer-bundled-bin",
    "name", "kubeconfig", "resolv-conf", "node-external-ip", "with-node-id", "lb-server-port",
    "disable-network-policy", "disable-kube-proxy", "disable-cloud-controller", "disable-helm-controller",
}


def parse_flags(argv: list[str]) -> tuple[dict, list[str]]:
    """``--key value`` / ``--key=value`` / ``--bool`` -> (flags, positional args)."""
    flags: dict = {}
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--") and len(arg) > 2:
            key, eq, value = arg[2:].partition("=")
            if key in BOOL_FLAGS and not eq:
                flags[key] = True
            else:
                if not eq:
                    i += 1
                    if i >= len(argv):
                        fatal(f"flag needs an argument: --{key}")
                    value = argv[i]
                if key in LIST_FLAGS:
                    flags.setdefault(key, []).extend(v for v in value.split(",") if v)
                elif key in BOOL_FLAGS:
                    flags[key] = value.lower() in ("1", "true", "yes")
                else:
                    flags[key] = value
        elif arg == "-c" and i + 1 < len(argv):
            flags["config"] = argv[i + 1]
            i += 1
        else:
            rest.append(arg)
        i += 1
    return flags, rest


def load_config(flags: dict) -> dict:
    """config.yaml merged with command-line flags (flags win), like k3s."""
    path = flags.get("config") or os.environ.get("K3S_CONFIG_FILE") or CONFIG
    text = read_file(path)
    config: dict = {}
    if text is not None:
        try:
            config = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            fatal(f"failed to parse {path}: {e}")
        if not isinstance(config, dict):
            fatal(f"{path}: expected a mapping of flags")
    elif "config" in flags:
        fatal(f"open {path}: no such file or directory")
    for key in list(config):
        if key.rstrip("+") not in KNOWN_FLAGS:
            log("warning", f"Unknown flag --{key} found in config.yaml, skipping")
            del config[key]
    for key in LIST_FLAGS:
        if isinstance(config.get(key), str):
            config[key] = [config[key]]
    config.update(flags)
    if "token" not in config and config.get("token-file"):
        config["token"] = (read_file(config["token-file"]) or "").strip()
    if "token" not in config and os.environ.get("K3S_TOKEN"):
        config["token"] = os.environ["K3S_TOKEN"]
    if "agent-token" not in config and os.environ.get("K3S_AGENT_TOKEN"):
        config["agent-token"] = os.environ["K3S_AGENT_TOKEN"]
    return config
