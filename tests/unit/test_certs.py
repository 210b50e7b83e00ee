"""Certificates: when they end (health), and the rotation's plan and per-node command (certs rotate)."""

import base64
import datetime as dt
import os
import socket
import ssl
import subprocess
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edgeclu import certs
from edgeclu.health import report
from edgeclu.health.collect import CertResult, KubeResult, NodeResult, kubeconfig_cert, read_serving_cert
from edgeclu.health.thresholds import Finding, Thresholds, cert_findings
from edgeclu.lifecycle.certs import done_before, failure_reason, rotate_command
from edgeclu.lifecycle.plan import Step, rolling_steps, upgrade_steps
from tests.unit.test_health_report import SAMPLE, host, kube_nodes

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def make_cert(days: float, start: dt.datetime = NOW, cn: str = "kube-apiserver"):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=days)).sign(key, hashes.SHA256()))
    return cert, key


def pem(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


# -- the rule: one default (30 days), in thresholds ----------------------------------------------------
@pytest.mark.parametrize(("days_left", "warn", "level"), [
    (365, 30, None), (31, 30, None), (30, 30, "warning"), (20, 30, "warning"), (0.2, 30, "warning"),
    (0, 30, "critical"), (-3, 30, "critical"), (20, 10, None), (9, 10, "warning"), (20, 0, None),
])
def test_a_certificate_warns_within_the_threshold_and_is_critical_once_ended(days_left, warn, level):
    found = cert_findings("serving certificate", NOW + dt.timedelta(days=days_left), NOW,
                          Thresholds(cert_warn_days=warn))
    assert [f.level for f in found] == ([level] if level else [])
    if level:
        assert found[0].check == "certificate" and "edgeclu certs rotate" in found[0].message


def test_the_message_says_when():
    [f] = cert_findings("serving certificate", NOW + dt.timedelta(days=20), NOW)
    assert f == Finding("warning", "certificate", "serving certificate expires in 20 day(s), on 2026-12-21; "
                                                  "run `edgeclu certs rotate`")
    [f] = cert_findings("x", NOW - dt.timedelta(days=1), NOW)
    assert f.message == "x expired on 2026-11-30; run `edgeclu certs rotate`"


def test_the_default_is_30_days_and_a_negative_one_is_refused():
    assert Thresholds().cert_warn_days == 30
    assert Thresholds(cert_warn_days=-1).problems() == ["--cert-warn -1 is not a number of days (0 or more)"]


# -- health: the report ---------------------------------------------------------------------------
def test_a_server_near_its_certificate_end_is_a_warning_in_table_and_json():
    dates = certs.CertDates(NOW - dt.timedelta(days=345), NOW + dt.timedelta(days=20))
    calm = {**SAMPLE, "throttled": None}
    results = [NodeResult(host("pi-1", "server"), calm, "agent", cert=CertResult(dates, source="10.0.0.4:6443")),
               NodeResult(host("pi-2"), calm, "agent"),
               NodeResult(host("pi-3", "server"), calm, "agent",
                          cert=CertResult(error="port 6443: Connection refused", source="10.0.0.4:6443"))]
    rep = report.build(results, KubeResult(kube_nodes(("pi-1", True, False), ("pi-2", True, False),
                                                      ("pi-3", True, False)), "pi-1"), Thresholds(), now=NOW)
    assert [(n.name, n.status) for n in rep.nodes] == [("pi-1", "warning"), ("pi-2", "ok"), ("pi-3", "ok")]
    assert (rep.status, rep.exit_code) == ("warning", 1)
    rows = {n.name: report.row(n, NOW) for n in rep.nodes}
    assert [rows[n]["CERT"] for n in ("pi-1", "pi-2", "pi-3")] == ["20d", "-", "?"]
    assert rows["pi-1"]["NOTES"].startswith("serving certificate expires in 20 day(s), on 2026-12-21")
    doc = rep.as_dict()
    assert doc["nodes"][0]["serving_cert"] == {"source": "10.0.0.4:6443", "error": None,
                                               "not_before": "2025-12-21T12:00:00+00:00",
                                               "not_after": "2026-12-21T12:00:00+00:00", "days_left": 20.0}
    assert doc["nodes"][1]["serving_cert"] is None
    assert doc["nodes"][2]["serving_cert"]["error"] == "port 6443: Connection refused"
    assert doc["kubeconfig_cert"] is None and doc["thresholds"]["cert_warn_days"] == 30


def test_the_kubeconfig_client_certificate_counts_for_the_cluster():
    calm = {**SAMPLE, "throttled": None}
    ended = CertResult(certs.CertDates(NOW - dt.timedelta(days=400), NOW - dt.timedelta(days=35)),
                       source="/home/u/.kube/config")
    rep = report.build([NodeResult(host("pi-1", "server"), calm, "agent")], KubeResult(), Thresholds(), ended, NOW)
    assert rep.nodes[0].status == "ok" and (rep.status, rep.exit_code) == ("critical", 2)
    assert [f.message for f in rep.cluster] == [
        "the client certificate in /home/u/.kube/config expired on 2026-10-27; run `edgeclu certs rotate`"]
    assert rep.as_dict()["kubeconfig_cert"]["days_left"] == -35.0
    unreadable = CertResult(error="user 'lab': client-certificate-data is not base64", source="k")
    rep = report.build([], KubeResult(), Thresholds(), unreadable, NOW)
    assert [(f.level, f.check) for f in rep.cluster] == [("warning", "certificate")]


# -- reading certificates -----------------------------------------------------------------------------
def test_the_kubeconfig_client_certificate_is_read_from_data_or_a_relative_file(tmp_path):
    cert, _ = make_cert(20)
    bundle = pem(cert) + pem(make_cert(3650, cn="k3s-client-ca")[0])  # leaf first, as k3s writes it
    data = base64.b64encode(bundle).decode()
    (tmp_path / "admin.crt").write_bytes(bundle)
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers:\n"
        f"- name: lab\n  user: {{client-certificate-data: {data}, client-key-data: c2VjcmV0}}\n"
        "- name: other\n  user: {client-certificate: admin.crt}\n"
        "- name: token-user\n  user: {token: abc}\n"
        "- name: broken\n  user: {client-certificate-data: '%%%'}\n")
    for user in ("lab", "other"):
        got = kubeconfig_cert(kubeconfig, user)
        assert got.dates.not_after == cert.not_valid_after_utc and got.source == str(kubeconfig)
    assert kubeconfig_cert(kubeconfig, "token-user") is None and kubeconfig_cert(kubeconfig, "nobody") is None
    assert kubeconfig_cert(tmp_path / "missing", "lab") is None
    broken = kubeconfig_cert(kubeconfig, "broken")
    assert broken.dates is None and broken.error == "user 'broken': client-certificate-data is not base64"
    assert "c2VjcmV0" not in repr(kubeconfig_cert(kubeconfig, "lab"))  # the key never leaves the file


@pytest.fixture
def tls_server(tmp_path):
    """A TLS server on loopback presenting a 20-day certificate (and asking for, not requiring, a client's)."""
    cert, key = make_cert(20, start=dt.datetime.now(dt.UTC))
    (tmp_path / "s.crt").write_bytes(pem(cert))
    (tmp_path / "s.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "s.crt", tmp_path / "s.key")
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                with ctx.wrap_socket(conn, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                pass

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1], cert
    stop.set()
    listener.close()


def test_the_serving_certificate_is_what_the_server_presents(tls_server):
    port, cert = tls_server
    got = read_serving_cert(host("pi-1", "server", "127.0.0.1"), port, 2)
    assert got.error is None and got.source == f"127.0.0.1:{port}"
    assert (got.dates.not_before, got.dates.not_after) == (cert.not_valid_before_utc, cert.not_valid_after_utc)


def test_no_tls_there_is_a_reason_not_a_hang():
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    got = read_serving_cert(host("pi-1", "server", "127.0.0.1"), port, 1)
    assert got.dates is None and got.error.startswith(f"port {port}: ")
    plain = socket.create_server(("127.0.0.1", 0))  # accepts, never speaks TLS
    try:
        with pytest.raises(certs.CertError, match="within 0.5s|TLS on port"):
            certs.serving_cert("127.0.0.1", plain.getsockname()[1], 0.5)
    finally:
        plain.close()


# -- certs rotate: the plan ---------------------------------------------------------------------------
@pytest.mark.parametrize(("servers", "agents", "percent", "done", "steps"), [
    (["s1"], ["a1"], 25, [], [("server", ("s1",)), ("agent", ("a1",))]),
    (["s1", "s2", "s3"], [], 25, [], [("server", ("s1",)), ("server", ("s2",)), ("server", ("s3",))]),
    (["s1"], ["a1", "a2", "a3", "a4", "a5"], 40, [],
     [("server", ("s1",)), ("agent", ("a1", "a2")), ("agent", ("a3", "a4")), ("agent", ("a5",))]),
    # resumed: what an earlier run finished is left out, batches keep their size
    (["s1", "s2"], ["a1", "a2", "a3"], 50, ["s1", "a1"],
     [("server", ("s2",)), ("agent", ("a2", "a3"))]),
    (["s1"], ["a1"], 25, ["s1", "a1"], []),
])
def test_servers_one_at_a_time_then_agents_in_batches(servers, agents, percent, done, steps):
    assert rolling_steps(servers, agents, percent, done) == [Step(r, n) for r, n in steps]


def test_an_upgrade_of_a_cluster_without_agents_has_steps():  # range() with a step of 0 raised before
    assert upgrade_steps(["s1", "s2"], [], 25, {"s1": "v2"}, "v2") == [Step("server", ("s2",))]


@pytest.mark.parametrize(("record", "done"), [
    (None, []), ({}, []), ({"done": "s1"}, []), ({"done": ["s1", 3, None, "gone", "a1"]}, ["s1", "a1"]),
])
def test_a_record_names_only_nodes_of_this_inventory(record, done):
    assert done_before(record, {"s1", "a1"}) == done


@pytest.fixture
def fake_node(tmp_path):
    """``systemctl`` and ``k3s`` stand-ins on PATH that log what they were asked, with exit codes to choose."""
    log = tmp_path / "log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("systemctl", "k3s"):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\necho "{name} $*" >> {log}\n'
                          f'code=$(cat {tmp_path}/{name}-$1.code 2>/dev/null || echo 0)\n'
                          f'echo "{name} said $1" >&2\nexit $code\n')
        script.chmod(0o755)

    def run(role, **codes):
        for key, code in codes.items():
            (tmp_path / f"{key.replace('_', '-')}.code").write_text(str(code))
        r = subprocess.run(["sh", "-c", rotate_command(role)], capture_output=True, text=True,
                           env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
        return r.returncode, log.read_text().splitlines() if log.exists() else []
    return run


def test_the_node_command_stops_rotates_and_always_starts_again(fake_node):
    assert fake_node("server") == (0, ["systemctl stop k3s", "k3s certificate rotate", "systemctl start k3s"])


def test_a_failed_rotation_still_starts_k3s_and_fails(fake_node):
    code, calls = fake_node("agent", k3s_certificate=1)
    assert code == 1 and calls == ["systemctl stop k3s-agent", "k3s certificate rotate", "systemctl start k3s-agent"]


def test_nothing_is_rotated_when_k3s_does_not_stop(fake_node):
    code, calls = fake_node("server", systemctl_stop=5)
    assert code == 5 and calls == ["systemctl stop k3s"]


def test_a_start_that_fails_fails_the_node(fake_node):
    code, _ = fake_node("server", systemctl_start=1)
    assert code == 1


def test_the_reason_is_k3s_last_line():
    err = ('time="2026-12-01T12:00:00Z" level=info msg="Server detected"\n'
           'time="2026-12-01T12:00:01Z" level=fatal msg="open /var/lib/rancher/k3s/server/tls: permission denied"\n')
    assert failure_reason("", err, 1).endswith('permission denied"')
    assert failure_reason("", "", 3) == "exit 3"
