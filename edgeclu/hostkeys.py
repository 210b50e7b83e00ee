"""known_hosts is the user's file; first contact with a host is the user's decision.

Reading is tolerant and follows OpenSSH (sshd(8), "SSH_KNOWN_HOSTS FILE FORMAT"): comments,
blank and unparseable lines are skipped, host fields may be comma lists with ``*``/``?``
wildcards and ``!`` negations or hashed (``|1|salt|hmac``), ``[host]:port`` for other ports,
and ``@cert-authority`` / ``@revoked`` markers. A ``@revoked`` key is refused on every path.
Writing is one appended line under a lock: the file is never re-serialised, so comments,
``sk-`` keys and entries edgeclu does not understand stay as they are.

First contact (:func:`first_contact`): a host not in known_hosts is trusted only by the
user: ``--trust NAME=SHA256:...`` pins its fingerprint, a terminal asks once with every
unknown host and fingerprint listed, or ``--accept-new`` (for scripts) records it on first use.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import hmac
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgeclu.errors import EdgecluError, HostKeyError

MARKERS = ("@cert-authority", "@revoked")
_FP_RE = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}$")


def fingerprint_of(blob: bytes) -> str:
    """OpenSSH's ``SHA256:...`` fingerprint of a public key blob (as ``ssh-keygen -l`` prints it)."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


@dataclass(frozen=True)
class Entry:
    """One key line of known_hosts."""

    marker: str  # "", "@cert-authority" or "@revoked"
    patterns: str
    keytype: str
    blob: bytes

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self.blob)


def parse(text: str) -> list[Entry]:
    """Every line that names hosts, a key type and a base64 key; anything else is skipped, never an error."""
    entries = []
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        marker = fields.pop(0) if fields[0] in MARKERS else ""
        if len(fields) < 3 or fields[0].startswith("@"):
            continue
        try:
            blob = base64.b64decode(fields[2], validate=True)
        except (binascii.Error, ValueError):
            continue
        entries.append(Entry(marker, fields[0], fields[1], blob))
    return entries


def host_field(host: str, port: int) -> str:
    """How OpenSSH names a host in known_hosts: ``host``, or ``[host]:port`` off port 22."""
    return host if port == 22 else f"[{host}]:{port}"


def _pattern_matches(pattern: str, name: str) -> bool:
    if pattern.startswith("|1|"):
        try:
            _, _, salt, digest = pattern.split("|", 3)
            want = base64.b64decode(digest)
            got = hmac.new(base64.b64decode(salt), name.encode(), hashlib.sha1).digest()
        except (ValueError, binascii.Error):
            return False
        return hmac.compare_digest(want, got)
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern.lower())
    return re.fullmatch(regex, name.lower()) is not None


def matches(patterns: str, host: str, port: int) -> bool:
    """Does a host field (``a,b,!c,*.lan,|1|...``) name ``host`` on ``port``? A negated match wins."""
    name = host_field(host, port)
    hit = False
    for pattern in patterns.split(","):
        if pattern.startswith("!"):
            if _pattern_matches(pattern[1:], name):
                return False
        elif _pattern_matches(pattern, name):
            hit = True
    return hit


@dataclass(frozen=True)
class HostKeys:
    """What known_hosts says about one host: its keys and the keys that are revoked."""

    known: tuple[Entry, ...]
    revoked: frozenset[bytes]

    def usable(self) -> list[Entry]:
        return [e for e in self.known if e.blob not in self.revoked]


def lookup(entries: list[Entry], host: str, port: int) -> HostKeys:
    known = tuple(e for e in entries if not e.marker and matches(e.patterns, host, port))
    revoked = frozenset(e.blob for e in entries if e.marker == "@revoked" and matches(e.patterns, host, port))
    return HostKeys(known, revoked)


def read(path: Path) -> list[Entry]:
    """The entries of a known_hosts file; none if it does not exist. HostKeyError if it cannot be read."""
    try:
        return parse(path.read_text(encoding="utf-8", errors="replace"))
    except FileNotFoundError:
        return []
    except OSError as e:
        raise EdgecluError(f"cannot read {path}: {e.strerror or e}") from None


def append(path: Path, host: str, port: int, keytype: str, blob: bytes) -> bool:
    """Add one ``host keytype key`` line, under an exclusive lock; False if that exact key was already there.

    The file (and its directory) are created 0600 (0700) if missing; nothing else in it is touched.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "r+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # threads and processes of ours; OpenSSH appends with one write
        current = f.read()
        hk = lookup(parse(current.decode("utf-8", "replace")), host, port)
        if any(e.blob == blob for e in hk.known):
            return False
        line = f"{host_field(host, port)} {keytype} {base64.b64encode(blob).decode()}\n".encode()
        f.write((b"\n" if current and not current.endswith(b"\n") else b"") + line)
        f.flush()
        os.fsync(f.fileno())
    return True


# -- first contact -------------------------------------------------------------------------
@dataclass(frozen=True)
class Contact:
    """A host edgeclu is about to reach: ``name`` is what ``--trust NAME=`` refers to (or its address)."""

    name: str
    host: str
    port: int = 22
    announced: str | None = None  # the fingerprint it announced over mDNS: a claim, not a proof


@dataclass(frozen=True)
class Seen:
    """The host key a contact presented."""

    contact: Contact
    keytype: str
    blob: bytes

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self.blob)


def parse_pins(values: list[str] | None) -> dict[str, str]:
    """``["node1=SHA256:...", ...]`` -> ``{"node1": "SHA256:..."}``; ValueError naming a bad one."""
    pins: dict[str, str] = {}
    for value in values or []:
        name, sep, fp = value.partition("=")
        name, fp = name.strip().lower(), fp.strip()
        if not sep or not name or not _FP_RE.match(fp):
            raise ValueError(f"--trust {value!r}: expected NAME=SHA256:<43 base64 characters> "
                             "(as `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` prints it on the node)")
        if pins.get(name, fp) != fp:
            raise ValueError(f"--trust {name}: given twice with different fingerprints")
        pins[name] = fp
    return pins


def pin_for(contact: Contact, pins: dict[str, str]) -> str | None:
    return pins.get(contact.name.lower()) or pins.get(contact.host.lower())


def verdict(seen: Seen, pin: str | None, revoked: frozenset[bytes]) -> tuple[str, str]:
    """``("trust" | "ask" | "refuse", why)`` for the key an unknown host presented (pure)."""
    c, fp = seen.contact, seen.fingerprint
    if seen.blob in revoked:
        return "refuse", f"host key {fp} is marked @revoked in known_hosts"
    if pin:
        if pin != fp:
            return "refuse", f"host key {seen.keytype} {fp} is not the one pinned with --trust ({pin})"
        return "trust", f"host key {seen.keytype} {fp} matches --trust"
    if c.announced and c.announced != fp:
        return "refuse", (f"host key {seen.keytype} {fp} is not the {c.announced} it announced over mDNS "
                          "(another machine may answer at that address); pin the right one with --trust")
    return "ask", f"{seen.keytype} {fp}"


def scan(contact: Contact, timeout: float = 5.0) -> Seen:
    """The host key a host presents: an SSH handshake without logging in."""
    import socket

    import paramiko

    from edgeclu.errors import Unreachable

    try:
        sock = socket.create_connection((contact.host, contact.port), timeout=timeout)
    except OSError as e:
        raise Unreachable(contact.name, f"{contact.host}:{contact.port}: {e.strerror or e}") from None
    t = paramiko.Transport(sock)
    try:
        t.banner_timeout = timeout
        t.start_client(timeout=timeout)
        key = t.get_remote_server_key()
        return Seen(contact, key.get_name(), key.asbytes())
    except (paramiko.SSHException, EOFError, OSError) as e:
        raise Unreachable(contact.name, f"{contact.host}:{contact.port}: {e}") from None
    finally:
        t.close()


Confirm = Callable[[list[Seen], Path], bool]


def first_contact(contacts: list[Contact], known_hosts: Path, *, pins: dict[str, str] | None = None,
                  confirm: Confirm | None = None, report: Callable[[str], None] = print,
                  scanner: Callable[[Contact], Seen] = scan) -> list[Seen]:
    """Record the keys of hosts not in known_hosts that the user trusts; returns what was recorded.

    A pinned host (``pins``, by name or address) is recorded when its key matches and refused when
    it does not, known or not. An unknown host presenting another key than the one it announced
    over mDNS is refused. Other unknown hosts are listed to ``confirm`` (a terminal), all at once;
    a "no" stops here. Without ``confirm`` they are left to the strict check, which refuses them
    with their fingerprint (or to ``--accept-new``, which records them).
    """
    from edgeclu.fleet import on_all

    pins = pins or {}
    names = {c.name.lower() for c in contacts} | {c.host.lower() for c in contacts}
    stray = sorted(set(pins) - names)
    if stray:
        raise EdgecluError(f"--trust {', '.join(stray)}: not one of the hosts "
                           f"({', '.join(sorted(c.name for c in contacts))})")
    entries = read(known_hosts)
    state = {c: lookup(entries, c.host, c.port) for c in contacts}
    # unknown hosts are looked at when someone decides now (a pin, a terminal), or to hold one to its announcement
    wanted = [c for c in contacts if pin_for(c, pins) or ((confirm or c.announced) and not state[c].usable())]
    if not wanted:
        return []
    seen = on_all(wanted, scanner, name=lambda c: c.name)
    ask, trust = [], []
    for c in wanted:
        s = seen[c.name]
        if isinstance(s, BaseException):
            continue  # unreachable: the real connection says so
        decision, why = verdict(s, pin_for(c, pins), state[c].revoked)
        known = state[c].usable()
        if decision == "refuse":
            raise HostKeyError(c.name, why)
        if known:  # a pinned host already in known_hosts: the pin matched; the strict check does the rest
            continue
        (trust if decision == "trust" else ask).append(s)
    if not confirm:
        ask = []  # nobody to ask: the strict check refuses them (or --accept-new records them)
    elif ask and not confirm(ask, known_hosts):
        raise EdgecluError(f"not trusted: {', '.join(s.contact.name for s in ask)}; nothing was changed")
    recorded = []
    for s in trust + ask:
        if append(known_hosts, s.contact.host, s.contact.port, s.keytype, s.blob):
            recorded.append(s)
            report(f"{s.contact.name}: trusted host key {s.keytype} {s.fingerprint} (added to {known_hosts})")
    return recorded
