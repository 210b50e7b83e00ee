"""Entry point: ``python3 -m edgeclu.agent`` (serve) or ``--once`` (print one JSON sample)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from edgeclu import __version__
from edgeclu.agent.config import DEFAULT_PATH, AgentConfig, ConfigUnreadable, load_config


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="edgeclu-agent", description="edgeclu node health agent")
    p.add_argument("--config", help=f"JSON config (default {DEFAULT_PATH}; missing = defaults)")
    p.add_argument("--once", action="store_true", help="print one health sample as JSON and exit")
    p.add_argument("--listen", help="address to bind (overrides the config)")
    p.add_argument("--port", type=int, help="port (overrides the config)")
    p.add_argument("--no-announce", action="store_true", help="do not announce over mDNS")
    p.add_argument("--version", action="version", version=f"edgeclu-agent {__version__}")
    return p.parse_args(argv)


def effective_config(args: argparse.Namespace) -> AgentConfig:
    try:
        cfg = load_config(args.config, must_exist=args.config is not None)
    except ConfigUnreadable as e:
        if not args.once or args.config is not None:
            raise
        # a one-shot sample by a user who may not read the root-only config: defaults will do
        sys.stderr.write(f"edgeclu-agent: {e}; using defaults\n")
        cfg = AgentConfig()
    changes = {k: v for k, v in (("listen", args.listen), ("port", args.port)) if v is not None}
    if args.no_announce:
        changes["announce"] = False
    return cfg.replace(**changes)


def once(cfg: AgentConfig) -> dict:
    from edgeclu.agent.sample import take_sample

    return take_sample(cfg, cpu_interval=0.2)


def serve(cfg: AgentConfig, *, ready: threading.Event | None = None,
          stop: threading.Event | None = None) -> None:
    """Serve until SIGTERM/SIGINT (or ``stop`` is set, for in-process use)."""
    import psutil

    from edgeclu.agent import announce, sample
    from edgeclu.agent.server import AgentHTTPServer, SampleCache

    sample.prime_cpu()
    cache = SampleCache(lambda: sample.take_sample(cfg), cfg.cache_seconds)
    httpd = AgentHTTPServer(cfg.listen, cfg.port, cache, cfg.token)
    nics = psutil.net_if_addrs()
    if cfg.listen not in ("", "0.0.0.0", "::") and all(a.address.split("%")[0] != cfg.listen
                                                      for al in nics.values() for a in al):
        sys.stderr.write(f"edgeclu-agent: {cfg.listen} is not (yet) an address of this host; "
                         "listening on it for when it comes up\n")
    announcer = None
    if cfg.announce:
        first = cache.get()
        try:
            with open(cfg.ssh_host_key) as f:
                fp = announce.ssh_fingerprint(f.read())
        except OSError:
            fp = None
        addrs = announce.announce_addresses(
            cfg.listen, cfg.announce_addresses, {nic: [(a.family, a.address) for a in al] for nic, al in nics.items()})
        announcer = announce.responder(
            first["host"]["hostname"], cfg.port, addrs, announce.txt_records(first, fp),
            announce.link_networks(addrs, {nic: [(a.address, a.netmask) for a in al] for nic, al in nics.items()}))
        try:
            if not addrs:
                raise OSError("no LAN IPv4 address to announce on")
            announcer.start()
        except OSError as e:  # no mDNS must not cost /health
            sys.stderr.write(f"edgeclu-agent: not announcing over mDNS: {e}\n")
            announcer = None
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True)
    thread.start()
    sys.stderr.write(f"edgeclu-agent {__version__} listening on {cfg.listen}:{cfg.port}"
                     + (" (token required for /health)" if cfg.token else "") + "\n")
    if ready:
        ready.set()
    stop.wait()
    httpd.shutdown()
    httpd.server_close()
    if announcer:
        announcer.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = effective_config(args)
    except ValueError as e:
        sys.stderr.write(f"edgeclu-agent: {e}\n")
        return 2
    if args.once:
        json.dump(once(cfg), sys.stdout)
        sys.stdout.write("\n")
        return 0
    try:
        serve(cfg)
    except OSError as e:
        sys.stderr.write(f"edgeclu-agent: cannot listen on {cfg.listen}:{cfg.port}: {e.strerror or e}\n")
        return 1
    return 0
