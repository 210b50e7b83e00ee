"""mDNS announcement of ``<hostname>._edgeclu._tcp.local.`` (zeroconf >= 0.47.3 API only).

TXT keys (all strings): ``hostname``, ``arch``, ``model``, ``ram`` (bytes), ``agent``
(agent version), ``role`` (k3s role, ``none`` without k3s), ``ssh_fp`` (the ed25519 host
key's OpenSSH SHA256 fingerprint) and ``schema`` (health schema version).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import sys
import threading

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
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


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


class Announcer:
    """Registers the service in a background thread (probing takes ~1.5 s); :meth:`close` says goodbye."""

    def __init__(self, hostname: str, port: int, addresses: list[str], txt: dict[str, str]):
        self.hostname, self.port, self.addresses, self.txt = hostname, port, addresses, txt
        self._zc = None
        self._lock = threading.Lock()
        self._closed = False
        self.registered = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._register, name="mdns", daemon=True).start()

    def _register(self) -> None:
        from zeroconf import IPVersion, ServiceInfo, Zeroconf

        try:
            with self._lock:
                if self._closed:
                    return
                self._zc = Zeroconf(interfaces=self.addresses, ip_version=IPVersion.V4Only)
            info = ServiceInfo(SERVICE_TYPE, f"{self.hostname}.{SERVICE_TYPE}", port=self.port,
                               properties=self.txt, server=f"{self.hostname}.local.",
                               parsed_addresses=self.addresses)
            self._zc.register_service(info, allow_name_change=True)
            self.registered.set()
        except Exception as e:  # noqa: BLE001 - no mDNS must not stop /health
            sys.stderr.write(f"edgeclu-agent: mDNS announcement failed: {e!r}\n")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            zc, self._zc = self._zc, None
        if zc is not None:
            zc.close()  # unregisters (goodbye packets), then stops its threads
