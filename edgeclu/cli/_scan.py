"""``discover --scan``'s glue: check the ranges, scan in the background while mDNS listens, merge."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

from edgeclu import scan
from edgeclu.cli._console import safe, say
from edgeclu.discovery import FoundHost
from edgeclu.errors import EdgecluError


def start(cidrs: list[str] | None) -> Future:
    """The ranges (default: this machine's own subnets) checked before any packet is sent, then the scan
    started in a thread of this one's network namespace, so it runs while mDNS listens."""
    try:
        if cidrs:
            networks = scan.parse_ranges(cidrs)
        else:
            import ifaddr

            networks, skipped = scan.local_networks(ifaddr.get_adapters())
            for note in skipped:
                say(f"[yellow]scan[/]: {safe(note)}")
            if not networks:
                raise scan.ScanError("--scan: this machine has no IPv4 subnet to scan; give a range, "
                                     "e.g. --scan 192.168.1.0/24")
        addresses = scan.expand(networks)
    except scan.ScanError as e:
        raise EdgecluError(str(e)) from None
    say(f"scanning {len(addresses)} address(es) in {', '.join(map(str, networks))} for SSH (port {scan.SSH_PORT})…")
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edgeclu-scan")
    try:
        return pool.submit(scan.scan, addresses)
    finally:
        pool.shutdown(wait=False)


def finish(running: Future, hosts: list[FoundHost]) -> list[FoundHost]:
    """The scan's hits merged into the mDNS hosts; an SSH host with no name is only reported."""
    try:
        hits = running.result()
    except OSError as e:
        raise EdgecluError(f"--scan: {e}") from None
    hosts, unnamed = scan.merge(hosts, hits)
    for hit in unnamed:
        banner = f" ({hit.banner})" if hit.banner else ""
        vendor = f", {hit.vendor} MAC" if hit.vendor else ""
        say(safe(f"scan {hit.address}: SSH{banner}{vendor} but no name over mDNS: not listed; "
                   f"`edgeclu add {hit.address}` takes it by address"))
    say(f"scan: {len(hits)} address(es) with SSH open")
    return hosts


def model_cell(facts: dict) -> str:
    """The table's MODEL: the model a host reported, else the vendor its MAC says (marked as such)."""
    if facts.get("model"):
        return facts["model"]
    vendors = sorted({seen["mac_vendor"] for seen in facts.get("scan", []) if seen.get("mac_vendor")})
    return f"{' / '.join(vendors)} (by MAC)" if vendors else "-"
