"""Certificates, laid out as k3s keeps them in ``<data-dir>/server/tls/``.

At first start a server makes two CAs, ``server-ca`` (signs the serving certificate on 6443) and
``client-ca`` (signs client certificates; the API accepts no other), ECDSA P-256 like k3s's. Each
server issues its own ``serving-kube-apiserver`` certificate, whose SANs are its node IP,
``127.0.0.1``, its node name, ``localhost``, ``kubernetes*`` and every ``tls-san``, and an admin
client certificate (``client-admin``: CN ``system:admin``, O ``system:masters``) for k3s.yaml.
Joining servers get the CA keys from the cluster, as k3s's do from its bootstrap data.

Lifetimes, as k3s's: CAs 10 years; leaf certificates 365 days unless
``CATTLE_NEW_SIGNED_CERT_EXPIRATION_DAYS`` says otherwise (k3s signs leaves with rancher/dynamiclistener's
``cert.NewSignedCert``, which reads that variable and falls back to 365 on a value that is not an
integer; users set it in ``/etc/default/k3s``, which the unit's ``EnvironmentFile=`` reads). At start,
the admin certificate is issued again when it is missing or within :data:`RENEW_DAYS` of its end (k3s
docs, cli/certificate.md: "within 120 days of expiring are automatically renewed every time K3s starts");
the stand-in's serving certificate is issued at every start anyway (its SANs follow the config).
``k3s certificate rotate`` (:func:`rotate`, k3s pkg/cli/cert/cert.go): with k3s stopped, copy
``server/tls`` to ``server/tls-<unix time>`` and remove the leaf certificates (never the CAs), so the
next start issues new ones.

etcd's, as k3s lays them out in ``server/tls/etcd/``: ``server-ca`` and ``peer-ca``; each server's
``server-client`` (etcd's serving certificate, also good as a client: what ``etcdctl`` users pass),
``client`` (the stand-in's own etcd client) and ``peer-server-client`` (etcd peer TLS), all for the
node IP, ``127.0.0.1``, ``localhost`` and the node name.

Uses python3-cryptography (in the lab's node image).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import shutil
import ssl

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .util import log, read_file, write_file

CAS = ("server-ca", "client-ca", "etcd/server-ca", "etcd/peer-ca")
SERVING = "serving-kube-apiserver"
ADMIN = "client-admin"
DEFAULT_LIFETIME_DAYS = 365
RENEW_DAYS = 120
LIFETIME_ENV = "CATTLE_NEW_SIGNED_CERT_EXPIRATION_DAYS"
DEFAULT_SANS = ("127.0.0.1", "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local", "10.43.0.1")


def tls_dir(data_dir: str) -> str:
    return os.path.join(data_dir, "server", "tls")


def lifetime_days(env=os.environ) -> int:
    """Days a new leaf certificate lasts: ``$CATTLE_NEW_SIGNED_CERT_EXPIRATION_DAYS``, else 365."""
    text = env.get(LIFETIME_ENV, "")
    if not text:
        return DEFAULT_LIFETIME_DAYS
    try:
        return int(text)
    except ValueError:
        log("info", f"[NewSignedCert] expiration days from ENV ({text}) could not be converted to int "
                    f"(falling back to default value: {DEFAULT_LIFETIME_DAYS})")
        return DEFAULT_LIFETIME_DAYS


def _key_pem(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _cert(subject: x509.Name, key, issuer: x509.Name, signer, *, ca: bool, days: int,
          sans: list[str] = (), usage=()) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(now)
         .not_valid_after(now + dt.timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=not ca, key_cert_sign=ca,
                                      crl_sign=ca, content_commitment=False, data_encipherment=False,
                                      key_agreement=False, encipher_only=False, decipher_only=False),
                        critical=True))
    if usage:
        b = b.add_extension(x509.ExtendedKeyUsage(list(usage)), critical=False)
    if sans:
        names = []
        for s in sans:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(s)))
            except ValueError:
                names.append(x509.DNSName(s))
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return b.sign(signer, hashes.SHA256())


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = ([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)] if org else []) + [
        x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    return x509.Name(attrs)


def ensure_cas(directory: str) -> None:
    """Make the two CAs unless they exist (first start)."""
    for ca in CAS:
        if os.path.exists(os.path.join(directory, f"{ca}.crt")):
            continue
        key = ec.generate_private_key(ec.SECP256R1())
        name = _name(f"{'etcd-' + ca.split('/')[1] if '/' in ca else 'k3s-' + ca}"
                     f"@{int(dt.datetime.now(dt.UTC).timestamp())}")
        cert = _cert(name, key, name, key, ca=True, days=3650)
        write_file(os.path.join(directory, f"{ca}.key"), _key_pem(key), 0o600)
        write_file(os.path.join(directory, f"{ca}.crt"), cert.public_bytes(serialization.Encoding.PEM).decode(),
                   0o644)


def ca_bundle(directory: str, ca: str = "server-ca") -> str:
    """The CA certificate PEM as stored on disk (what /cacerts serves and the token hashes)."""
    return read_file(os.path.join(directory, f"{ca}.crt")) or ""


def export_cas(directory: str) -> dict:
    """The CA certificates and keys, for a joining server."""
    return {f"{ca}.{ext}": read_file(os.path.join(directory, f"{ca}.{ext}")) for ca in CAS for ext in ("crt", "key")}


def import_cas(directory: str, files: dict) -> None:
    for name, text in files.items():
        if name not in {f"{ca}.{ext}" for ca in CAS for ext in ("crt", "key")} or not text:
            raise ValueError(f"unexpected CA file {name!r}")
        write_file(os.path.join(directory, name), text, 0o600 if name.endswith(".key") else 0o644)


def issue(directory: str, ca: str, name: str, cn: str, *, org: str | None = None, sans: list[str] = (),
          client: bool = False, server: bool | None = None) -> tuple[str, str]:
    """Write ``name.crt``/``name.key`` signed by ``ca`` (for TLS servers, clients or both); returns their paths."""
    ca_cert = x509.load_pem_x509_certificate(ca_bundle(directory, ca).encode())
    ca_key = serialization.load_pem_private_key(read_file(os.path.join(directory, f"{ca}.key")).encode(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    server = not client if server is None else server
    usage = [u for u, on in ((ExtendedKeyUsageOID.SERVER_AUTH, server), (ExtendedKeyUsageOID.CLIENT_AUTH, client))
             if on]
    cert = _cert(_name(cn, org), key, ca_cert.subject, ca_key, ca=False, days=lifetime_days(), sans=sans,
                 usage=usage)
    crt, keyfile = os.path.join(directory, f"{name}.crt"), os.path.join(directory, f"{name}.key")
    write_file(keyfile, _key_pem(key), 0o600)
    write_file(crt, cert.public_bytes(serialization.Encoding.PEM).decode() + ca_bundle(directory, ca), 0o644)
    return crt, keyfile


def serving_sans(node_ip: str, node_name: str, tls_sans: list[str]) -> list[str]:
    """The serving certificate's SANs: node IP and name, k3s's defaults, every tls-san (once each)."""
    return list(dict.fromkeys([node_ip, node_name, *DEFAULT_SANS, *tls_sans]))


def issue_server_certs(directory: str, node_ip: str, node_name: str, tls_sans: list[str]) -> None:
    """This server's serving certificate (every start: SANs follow the config) and its admin client cert."""
    issue(directory, "server-ca", SERVING, "kube-apiserver", sans=serving_sans(node_ip, node_name, tls_sans))
    # none yet, the CAs were replaced (cluster-reset), or near its end (k3s renews at start)
    if not signed_by(directory, ADMIN, "client-ca") or expiring(directory, ADMIN):
        issue(directory, "client-ca", ADMIN, "system:admin", org="system:masters", client=True)


def expiring(directory: str, name: str, now: dt.datetime | None = None) -> bool:
    """``name.crt`` ends within :data:`RENEW_DAYS` (or has ended)."""
    text = read_file(os.path.join(directory, f"{name}.crt"))
    if not text:
        return True
    cert = x509.load_pem_x509_certificate(text.encode())
    # (cryptography 38, Debian bookworm's: no not_valid_after_utc yet)
    end = getattr(cert, "not_valid_after_utc", None) or cert.not_valid_after.replace(tzinfo=dt.UTC)
    return end - (now or dt.datetime.now(dt.UTC)) <= dt.timedelta(days=RENEW_DAYS)


LEAVES = (SERVING, ADMIN)


def rotate(data_dir: str, now: float | None = None) -> str | None:
    """``k3s certificate rotate``: back up ``server/tls`` and remove the leaf certificates and keys; the
    CAs stay. Returns the backup directory (None on an agent: the stand-in's agent keeps no
    certificates, it authenticates with its node password)."""
    directory = tls_dir(data_dir)
    if not os.path.isdir(directory):
        log("info", "Agent detected, rotating agent certificates")
        return None
    log("info", "Server detected, rotating agent and server certificates")
    stamp = int(now if now is not None else dt.datetime.now(dt.UTC).timestamp())
    backup = os.path.join(data_dir, "server", f"tls-{stamp}")
    shutil.copytree(directory, backup, symlinks=True, dirs_exist_ok=True)
    os.chmod(backup, 0o700)
    for name in LEAVES:
        log("info", f"Rotating certificates for {name}")
        for ext in ("crt", "key"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(directory, f"{name}.{ext}"))
    return backup


ETCD_SERVER = "etcd/server-client"
ETCD_CLIENT = "etcd/client"
ETCD_PEER = "etcd/peer-server-client"


def issue_etcd_certs(directory: str, node_ip: str, node_name: str) -> None:
    """This server's etcd certificates (every start: the CAs may have been restored from a snapshot)."""
    sans = list(dict.fromkeys([node_ip, "127.0.0.1", "localhost", node_name]))
    issue(directory, "etcd/server-ca", ETCD_SERVER, "etcd-server", sans=sans, client=True, server=True)
    issue(directory, "etcd/server-ca", ETCD_CLIENT, "etcd-client", client=True)
    issue(directory, "etcd/peer-ca", ETCD_PEER, "etcd-peer", sans=sans, client=True, server=True)


def etcd_client_context(directory: str) -> ssl.SSLContext:
    """The stand-in as an etcd client: trust etcd's server CA, present ``etcd/client``."""
    ctx = ssl.create_default_context(cafile=os.path.join(directory, "etcd/server-ca.crt"))
    ctx.load_cert_chain(os.path.join(directory, f"{ETCD_CLIENT}.crt"), os.path.join(directory, f"{ETCD_CLIENT}.key"))
    return ctx


def signed_by(directory: str, name: str, ca: str) -> bool:
    text = read_file(os.path.join(directory, f"{name}.crt"))
    if not text:
        return False
    cert = x509.load_pem_x509_certificate(text.encode())
    ca_cert = x509.load_pem_x509_certificate(ca_bundle(directory, ca).encode())
    try:  # (cryptography 38, Debian bookworm's: no verify_directly_issued_by yet)
        ca_cert.public_key().verify(cert.signature, cert.tbs_certificate_bytes,
                                    ec.ECDSA(cert.signature_hash_algorithm))
    except (ValueError, TypeError, InvalidSignature):
        return False
    return cert.issuer == ca_cert.subject


def server_context(directory: str) -> ssl.SSLContext:
    """TLS on 6443: our serving cert; a client cert is asked for and, if sent, must chain to client-ca."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(directory, f"{SERVING}.crt"), os.path.join(directory, f"{SERVING}.key"))
    ctx.load_verify_locations(os.path.join(directory, "client-ca.crt"))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def client_context(ca_pem: str | None, directory: str | None = None) -> ssl.SSLContext:
    """A client: trust ``ca_pem`` (None: trust nothing, for the first /cacerts fetch, as k3s does);
    with ``directory``, present its admin client certificate."""
    if ca_pem is None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    ctx = ssl.create_default_context(cadata=ca_pem)
    if directory:
        ctx.load_cert_chain(os.path.join(directory, f"{ADMIN}.crt"), os.path.join(directory, f"{ADMIN}.key"))
    return ctx
