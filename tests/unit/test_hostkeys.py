"""known_hosts as OpenSSH reads it (ssh-keygen is the oracle), appended to, never re-written; first contact."""

import base64
import struct
import subprocess
import threading

import pytest

from edgeclu import hostkeys as hk
from edgeclu.errors import EdgecluError, HostKeyError
from edgeclu.transport import _paramiko_host_keys


def keygen(tmp_path, name, kind="ed25519"):
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", name, "-f", str(tmp_path / name)], check=True)
    keytype, b64 = (tmp_path / f"{name}.pub").read_text().split()[:2]
    return keytype, b64


def sk_line(host):
    """A FIDO (sk-) key line: paramiko cannot load it, OpenSSH can; it must survive untouched."""
    def s(b):
        return struct.pack(">I", len(b)) + b
    blob = s(b"sk-ssh-ed25519@openssh.com") + s(bytes(range(32))) + s(b"ssh:")
    return f"{host} sk-ssh-ed25519@openssh.com {base64.b64encode(blob).decode()} yubikey"


def fp(b64):
    return hk.fingerprint_of(base64.b64decode(b64))


@pytest.fixture
def keys(tmp_path):
    return {n: keygen(tmp_path, n) for n in ("a", "b", "c", "d")} | {"e": keygen(tmp_path, "e", "ecdsa")}


def test_fingerprint_is_what_ssh_keygen_prints(tmp_path, keys):
    out = subprocess.run(["ssh-keygen", "-lf", str(tmp_path / "a.pub")], capture_output=True, text=True,
                         check=True).stdout
    assert fp(keys["a"][1]) == out.split()[1]


def test_lookup_agrees_with_ssh_keygen_F(tmp_path, keys):
    """Patterns, negation, ports, markers and hashed names, checked against OpenSSH's own lookup."""
    (a, ka), (b, kb), (c, kc), (d, kd), (e, ke) = (keys[n] for n in "abcde")
    plain = tmp_path / "plain"
    plain.write_text(f"10.0.0.1 {a} {ka}\n")
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(plain)], check=True, capture_output=True)  # hashes it
    hashed = plain.read_text().splitlines()[0]
    kh = tmp_path / "known_hosts"
    kh.write_text("\n".join([
        "# my comment", "",
        hashed,
        f"10.0.0.2,node2 {b} {kb}",
        f"10.0.1.*,!10.0.1.66 {c} {kc}",
        f"[10.0.0.3]:2222 {d} {kd}",
        f"@cert-authority *.lan {e} {ke}",
        f"@revoked 10.0.0.9 {d} {kd}",
        sk_line("10.0.0.7"),
        "garbage line", "10.0.0.8 ssh-ed25519 !!notbase64!!",
    ]) + "\n")
    entries = hk.parse(kh.read_text())
    for host, port in [("10.0.0.1", 22), ("10.0.0.2", 22), ("NODE2", 22), ("10.0.1.5", 22), ("10.0.1.66", 22),
                       ("10.0.0.3", 2222), ("10.0.0.3", 22), ("10.0.0.9", 22), ("x.lan", 22), ("10.0.0.7", 22)]:
        name = hk.host_field(host, port)
        oracle = subprocess.run(["ssh-keygen", "-F", name, "-f", str(kh)], capture_output=True, text=True).stdout
        # ssh-keygen -F lists plain entries and @revoked lines for a name (not @cert-authority)
        want = sorted(line.split()[3 if line.startswith("@") else 2] for line in oracle.splitlines()
                      if line and not line.startswith(("#", "@cert-authority")))
        found = hk.lookup(entries, host, port)
        got = sorted([base64.b64encode(x.blob).decode() for x in found.known] +
                     [base64.b64encode(r).decode() for r in found.revoked])
        assert got == want, name
    assert hk.lookup(entries, "10.0.0.9", 22).revoked == {base64.b64decode(kd)}
    assert hk.lookup(entries, "10.0.0.9", 22).usable() == []


def test_paramiko_gets_only_the_keys_it_can_check(keys):
    (a, ka), (e, ke) = keys["a"], keys["e"]
    entries = hk.parse(f"h {a} {ka}\nh {e} {ke}\n{sk_line('h')}\n")
    loaded = _paramiko_host_keys(entries, "h")
    assert sorted(loaded["h"].keys()) == sorted([a, e])


def test_append_adds_one_line_and_keeps_everything_else(tmp_path, keys):
    (a, ka), (b, kb) = keys["a"], keys["b"]
    kh = tmp_path / "ssh" / "known_hosts"
    kh.parent.mkdir(mode=0o700)
    before = f"# do not lose me\n{sk_line('10.0.0.7')}\n@cert-authority *.lan {a} {ka}\n|1|x|y ssh-rsa AAAA"
    kh.write_text(before)  # no final newline
    assert hk.append(kh, "10.0.0.2", 22, b, base64.b64decode(kb)) is True
    assert kh.read_text() == before + f"\n10.0.0.2 {b} {kb}\n"
    assert hk.append(kh, "10.0.0.2", 22, b, base64.b64decode(kb)) is False  # already there
    assert hk.append(kh, "10.0.0.3", 2222, b, base64.b64decode(kb)) is True
    assert kh.read_text().endswith(f"\n10.0.0.2 {b} {kb}\n[10.0.0.3]:2222 {b} {kb}\n")


def test_append_creates_a_private_file(tmp_path, keys):
    b, kb = keys["b"]
    kh = tmp_path / "new" / "known_hosts"
    hk.append(kh, "h", 22, b, base64.b64decode(kb))
    assert (kh.stat().st_mode & 0o777, kh.parent.stat().st_mode & 0o777) == (0o600, 0o700)


def test_parallel_appends_lose_nothing(tmp_path, keys):
    b, kb = keys["b"]
    kh = tmp_path / "known_hosts"
    threads = [threading.Thread(target=hk.append, args=(kh, f"10.0.{i}.1", 22, b, base64.b64decode(kb)))
               for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(kh.read_text().splitlines()) == sorted(f"10.0.{i}.1 {b} {kb}" for i in range(40))


@pytest.mark.parametrize(("values", "pins"), [
    (None, {}),
    (["Node1=SHA256:" + "a" * 43], {"node1": "SHA256:" + "a" * 43}),
    (["10.0.0.1=SHA256:" + "b" * 43, "10.0.0.1=SHA256:" + "b" * 43], {"10.0.0.1": "SHA256:" + "b" * 43}),
])
def test_parse_pins(values, pins):
    assert hk.parse_pins(values) == pins


@pytest.mark.parametrize("bad", ["node1", "node1=", "=SHA256:" + "a" * 43, "node1=SHA256:short",
                                 "node1=MD5:aa:bb", "node1=SHA256:" + "a" * 44])
def test_parse_pins_refuses(bad):
    with pytest.raises(ValueError, match="expected NAME=SHA256"):
        hk.parse_pins([bad])


def _seen(keys, name="a", contact=None):
    keytype, b64 = keys[name]
    return hk.Seen(contact or hk.Contact("node1", "10.0.0.1"), keytype, base64.b64decode(b64))


def test_verdict(keys):
    s = _seen(keys)
    other = fp(keys["b"][1])
    assert hk.verdict(s, None, frozenset())[0] == "ask"
    assert hk.verdict(s, s.fingerprint, frozenset())[0] == "trust"
    assert hk.verdict(s, other, frozenset()) == ("refuse", f"host key ssh-ed25519 {s.fingerprint} is not the one "
                                                           f"pinned with --trust ({other})")
    assert hk.verdict(s, s.fingerprint, frozenset({s.blob}))[0] == "refuse"  # revoked beats a pin
    lied = _seen(keys, contact=hk.Contact("node1", "10.0.0.1", announced=other))
    assert hk.verdict(lied, None, frozenset())[1].startswith(f"host key ssh-ed25519 {s.fingerprint} is not the "
                                                             f"{other} it announced over mDNS")
    assert hk.verdict(lied, s.fingerprint, frozenset())[0] == "trust"  # the user's pin is the word


class FakeScanner:
    """Test double for the SSH handshake (hk.scan talks to real sshd in the lab tests)."""

    def __init__(self, keys, which):
        self.keys, self.which, self.calls = keys, which, []

    def __call__(self, contact):
        self.calls.append(contact.name)
        return _seen(self.keys, self.which[contact.name], contact)


def test_first_contact(tmp_path, keys):
    kh = tmp_path / "known_hosts"
    kh.write_text("# mine\n")
    n1, n2, n3 = hk.Contact("node1", "10.0.0.1"), hk.Contact("node2", "10.0.0.2"), hk.Contact("node3", "10.0.0.3")
    scanner = FakeScanner(keys, {"node1": "a", "node2": "b", "node3": "c"})
    # nothing to decide without pins or a terminal: no handshake at all
    assert hk.first_contact([n1, n2], kh, scanner=scanner) == [] and scanner.calls == []
    # a pin (by name or address) records the host; the others are asked about, all at once
    asked = []
    recorded = hk.first_contact([n1, n2, n3], kh, pins={"10.0.0.1": fp(keys["a"][1])}, scanner=scanner,
                                confirm=lambda seen, path: asked.append([s.contact.name for s in seen]) or True,
                                report=lambda m: None)
    assert asked == [["node2", "node3"]] and [s.contact.name for s in recorded] == ["node1", "node2", "node3"]
    assert kh.read_text() == "# mine\n" + "".join(f"10.0.0.{i} {keys[k][0]} {keys[k][1]}\n"
                                                   for i, k in ((1, "a"), (2, "b"), (3, "c")))
    # known now: nothing is asked again; a pin that disagrees with what the host presents stops everything
    assert hk.first_contact([n1, n2, n3], kh, confirm=lambda *a: pytest.fail("asked"), scanner=scanner) == []
    with pytest.raises(HostKeyError, match="node2: host key .* is not the one pinned"):
        hk.first_contact([n1, n2], kh, pins={"node2": fp(keys["d"][1])}, scanner=scanner)


def test_first_contact_no_means_nothing_changes(tmp_path, keys):
    kh = tmp_path / "known_hosts"
    scanner = FakeScanner(keys, {"node1": "a"})
    with pytest.raises(EdgecluError, match="not trusted: node1; nothing was changed"):
        hk.first_contact([hk.Contact("node1", "10.0.0.1")], kh, confirm=lambda *a: False, scanner=scanner)
    assert not kh.exists()


def test_first_contact_refuses_a_revoked_key_and_a_stray_pin(tmp_path, keys):
    a, ka = keys["a"]
    kh = tmp_path / "known_hosts"
    kh.write_text(f"@revoked * {a} {ka}\n")
    scanner = FakeScanner(keys, {"node1": "a"})
    with pytest.raises(HostKeyError, match="marked @revoked"):
        hk.first_contact([hk.Contact("node1", "10.0.0.1")], kh, pins={"node1": fp(ka)}, scanner=scanner)
    with pytest.raises(EdgecluError, match=r"--trust nodex: not one of the hosts \(node1\)"):
        hk.first_contact([hk.Contact("node1", "10.0.0.1")], kh, pins={"nodex": fp(ka)}, scanner=scanner)


def test_first_contact_holds_an_unknown_host_to_its_announcement(tmp_path, keys):
    """With nobody to ask (a script, --accept-new), a host that announced its fingerprint over mDNS is still
    looked at: another key is refused; the announced one is left to the strict check or --accept-new."""
    kh = tmp_path / "known_hosts"
    scanner = FakeScanner(keys, {"node1": "a"})
    liar = hk.Contact("node1", "10.0.0.1", announced=fp(keys["b"][1]))
    with pytest.raises(HostKeyError, match="node1: host key .* is not the .* it announced over mDNS"):
        hk.first_contact([liar], kh, scanner=scanner)
    honest = hk.Contact("node1", "10.0.0.1", announced=fp(keys["a"][1]))
    assert hk.first_contact([honest], kh, scanner=scanner) == [] and not kh.exists()
    assert scanner.calls == ["node1", "node1"]
