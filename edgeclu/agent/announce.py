"""What the agent announces over mDNS as ``<hostname>._edgeclu._tcp.local.`` (see :mod:`.mdns`).

TXT keys (all strings): ``hostname``, ``arch``, ``model``, ``ram`` (bytes), ``agent``
(agent version), ``role`` (k3s role, ``none`` without k3s), ``ssh_fp`` (the ed25519 host
key's OpenSSH SHA256 fingerprint) and ``schema`` (health schema version).
"""

from __future__ import annotations

import base64
import ipaddress

try:  # the C module without OpenSSL: hashlib would load libcrypto (~3 MiB) for one hash at start
    from _sha256 import sha256
except ImportError:  # Python >= 3.12
    from hashlib import sha256

SERVICE_TYPE = "_edgeclu._tcp.local."
SKIP_NICS = ("lo", "veth", "cni", "flannel", "docker", "kube-", "cali", "vxlan", "tunl")
TXT_MAX = 255


def ssh_fingerprint(pub_line: str) -> str | None:
    """``ssh-ed25519 AAAA... comment`` -> ``SHA256:...`` exactly as ``ssh-keygen -lf`` prints it."""
    parts = pub_line.split()
    if len(parts) < 2:
        return None
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except ValueError:
        return None
    return "SHA256:" + base64.b64encode(sha256(blob).digest()).decode().rstrip("=")


def txt_records(sample: dict, ssh_fp: str | None) -> dict[str, str]:
    host, k3s = sample["host"], sample.get("k3s") or {}
    txt = {
        "hostname": host["hostname"],
        "arch": host["arch"],
        "model": host["model"] or "",
        "ram": str(sample["memory"]["total_bytes"]),
        "agent": sample["agent_version"],
        "role": k3s.get("role") or "none",
        "ssh_fp": ssh_fp or "",
        "schema": str(sample["schema"]),
    }
    # a TXT string is at most 255 bytes including "key="
    return {k: v.encode()[: TXT_MAX - len(k) - 1].decode("utf-8", "ignore") for k, v in txt.items()}


def lan_ipv4(if_addrs: dict[str, list[tuple[int, str]]]) -> list[str]:
    """IPv4 addresses worth announcing: not loopback, link-local or container plumbing."""
    found = []
    for nic, addrs in sorted(if_addrs.items()):
        if nic.startswith(SKIP_NICS):
            continue
        for family, addr in addrs:
            if family != 2:  # AF_INET
                continue
            ip = ipaddress.IPv4Address(addr)
            if not (ip.is_loopback or ip.is_link_local or ip.is_unspecified):
                found.append(addr)
    return found


def announce_addresses(listen: str, configured: list[str], if_addrs: dict) -> list[str]:
    if configured:
        return list(configured)
    if listen not in ("", "0.0.0.0", "::"):
        return [listen]
    return lan_ipv4(if_addrs)


def link_networks(addresses: list[str], if_netmasks: dict[str, list[tuple[str, str | None]]]) -> list:
    """The IPv4 subnets of the interfaces holding ``addresses``: the local link mDNS answers
    (``{nic: [(address, netmask)]}``, as psutil reports them). An address without a known netmask
    counts as a /32: only itself."""
    nets = []
    for addr in addresses:
        masks = [mask for pairs in if_netmasks.values() for a, mask in pairs if a == addr]
        nets.append(ipaddress.IPv4Network(f"{addr}/{masks[0] if masks and masks[0] else 32}", strict=False))
    return nets


def responder(hostname: str, port: int, addresses: list[str], txt: dict[str, str], networks: list):
    """The mDNS responder announcing this node (started by the caller), answering only ``networks``."""
    from edgeclu.agent.mdns import Responder, Service

    return Responder(Service(hostname, SERVICE_TYPE, hostname, port, txt, addresses), networks=networks)
