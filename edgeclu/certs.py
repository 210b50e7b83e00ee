"""When the cluster's certificates end: a server's serving certificate and the kubeconfig's client one.

k3s's leaf certificates last 365 days (``CATTLE_NEW_SIGNED_CERT_EXPIRATION_DAYS`` changes it) and are
renewed only when k3s starts within 120 days of their end (docs.k3s.io/cli/certificate); a server that
runs for a year, or a kubeconfig copied off a server a year ago, stops working on that day.

* :func:`serving_cert`: the certificate a server presents on its API port, read over TLS from its
  inventory address. Nothing is trusted or sent: no client certificate, no request, only the handshake,
  and only the dates of the certificate are kept.
* :func:`client_cert`: the client certificate of one user of a kubeconfig (``client-certificate-data``,
  or the ``client-certificate`` file), parsed here. Only its dates leave this module: never the key.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509


class CertError(Exception):
    """No certificate could be read; the message says why, in our words."""


@dataclass(frozen=True)
class CertDates:
    not_before: dt.datetime  # aware, UTC
    not_after: dt.datetime

    def days_left(self, now: dt.datetime) -> float:
        return (self.not_after - now).total_seconds() / 86400

    def as_dict(self, now: dt.datetime) -> dict:
        return {"not_before": self.not_before.isoformat(), "not_after": self.not_after.isoformat(),
                "days_left": round(self.days_left(now), 1)}


def _dates(cert: x509.Certificate) -> CertDates:
    return CertDates(cert.not_valid_before_utc, cert.not_valid_after_utc)


def from_der(der: bytes) -> CertDates:
    try:
        return _dates(x509.load_der_x509_certificate(der))
    except ValueError:
        raise CertError("not an X.509 certificate") from None


def from_pem(pem: bytes) -> CertDates:
    """The first certificate of a PEM bundle (the leaf: k3s writes leaf, then its CA)."""
    try:
        return _dates(x509.load_pem_x509_certificates(pem)[0])
    except (ValueError, IndexError):
        raise CertError("no PEM certificate") from None


def serving_cert(address: str, port: int, timeout: float) -> CertDates:
    """The dates of the certificate ``address:port`` presents (a TLS handshake, nothing verified or sent)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # only its dates are read; it decides nothing
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock, \
                ctx.wrap_socket(sock) as tls:
            der = tls.getpeercert(binary_form=True)
    except TimeoutError:
        raise CertError(f"no TLS answer on port {port} within {timeout:.1f}s") from None
    except ssl.SSLError as e:
        raise CertError(f"TLS on port {port} failed ({e.reason or 'handshake'})") from None
    except OSError as e:
        raise CertError(f"port {port}: {e.strerror or type(e).__name__}") from None
    if not der:
        raise CertError(f"port {port} presented no certificate")
    return from_der(der)


def user_entry(doc: Mapping, name: str) -> Mapping | None:
    for entry in doc.get("users") or []:
        if isinstance(entry, Mapping) and entry.get("name") == name and isinstance(entry.get("user"), Mapping):
            return entry["user"]
    return None


def client_cert(doc: Mapping, user: str, base: Path) -> CertDates | None:
    """The dates of ``user``'s client certificate in the kubeconfig ``doc`` (None: no such user, or it
    logs in another way); a relative ``client-certificate`` path is taken from ``base`` (the file's
    directory), as kubectl does."""
    entry = user_entry(doc, user)
    if entry is None:
        return None
    if entry.get("client-certificate-data"):
        try:
            pem = base64.b64decode(str(entry["client-certificate-data"]), validate=True)
        except (binascii.Error, ValueError):
            raise CertError(f"user '{user}': client-certificate-data is not base64") from None
        return from_pem(pem)
    if entry.get("client-certificate"):
        path = base / Path(str(entry["client-certificate"])).expanduser()
        try:
            return from_pem(path.read_bytes())
        except OSError as e:
            raise CertError(f"user '{user}': {path}: {e.strerror}") from None
    return None
