"""The k3s stand-in's pure parts and its release builder (its server/agent run in the lab:
tests/integration/test_standin_lab.py)."""

import hashlib
import json
import subprocess
import sys

import pytest

from ansible_collections.edgeclu.cluster.plugins.module_utils import k3s as edgeclu_k3s
from tests.k3s_standin.release import build_release, standin_binary
from tests.k3s_standin.standin import config, etcd, join, kube, objects, util

NOW = 1_700_000_000.0


# -- release builder ---------------------------------------------------------------
def test_release_has_the_github_layout_and_valid_checksums(tmp_path):
    out = build_release(tmp_path, "v1.31.4+k3s1")
    assert out == tmp_path / "v1.31.4+k3s1"
    # the real release's names: k3s-io/k3s scripts/package-airgap (k3s-airgap-images-${ARCH}.tar, .tar.zst,
    # .tar.gz, their `sha256sum` lines) and .github/workflows/release.yml (appended to sha256sum-${ARCH}.txt)
    assert sorted(p.name for p in out.iterdir()) == [
        "k3s", "k3s-airgap-images-amd64.tar.zst", "k3s-airgap-images-arm.tar.zst", "k3s-airgap-images-arm64.tar.zst",
        "k3s-arm64", "k3s-armhf", "sha256sum-amd64.txt", "sha256sum-arm.txt", "sha256sum-arm64.txt"]
    for machine in ("x86_64", "aarch64", "armv7l"):
        files = edgeclu_k3s.release_files(machine)
        data = (out / files["binary"]).read_bytes()
        sums = (out / files["checksums"]).read_text()
        assert edgeclu_k3s.sha256_for(sums, files["binary"]) == hashlib.sha256(data).hexdigest()
        images = edgeclu_k3s.images_names(files["arch"])[0]
        assert edgeclu_k3s.sha256_for(sums, images) == hashlib.sha256((out / images).read_bytes()).hexdigest()
        assert data.startswith(b"#!/usr/bin/python3\n")
        assert f'ARCH = "{files["arch"]}"'.encode() in data
        assert (out / files["binary"]).stat().st_mode & 0o111
    # the per-arch files differ, like real binaries
    assert len({(out / n).read_bytes() for n in ("k3s", "k3s-arm64", "k3s-armhf")}) == 3


def test_tampered_file_no_longer_matches_its_checksum(tmp_path):
    out = build_release(tmp_path, "v1.31.4+k3s1", tamper=("k3s",))
    sums = (out / "sha256sum-amd64.txt").read_text()
    assert edgeclu_k3s.sha256_for(sums, "k3s") != hashlib.sha256((out / "k3s").read_bytes()).hexdigest()
    arm = (out / "sha256sum-arm64.txt").read_text()
    assert edgeclu_k3s.sha256_for(arm, "k3s-arm64") == hashlib.sha256((out / "k3s-arm64").read_bytes()).hexdigest()


def test_version_output_is_parsed_like_real_k3s(tmp_path):
    out = build_release(tmp_path, "v1.31.5+k3s1")
    proc = subprocess.run([sys.executable, str(out / "k3s"), "--version"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("k3s version v1.31.5+k3s1 (standin)\ngo version ")
    assert edgeclu_k3s.parse_version_output(proc.stdout) == "v1.31.5+k3s1"


def test_binary_for_another_arch_refuses_to_run(tmp_path):
    out = build_release(tmp_path, "v1.31.4+k3s1")
    proc = subprocess.run([sys.executable, str(out / "k3s-armhf"), "--version"], capture_output=True, text=True)
    assert proc.returncode == 126
    assert proc.stdout == ""
    assert "cannot execute binary file: Exec format error (stand-in built for arm, this machine is x86_64)" \
        in proc.stderr


def test_standin_binary_bakes_version_and_arch():
    data = standin_binary("v1.29.0+k3s3", "arm64")
    assert b'\nVERSION = "v1.29.0+k3s3"' in data and b'\nARCH = "arm64"' in data
    assert standin_binary("v1.29.0+k3s3", "arm64") == data  # reproducible: same inputs, same checksum


# -- flags, config, tokens ---------------------------------------------------------
def test_parse_flags():
    flags, rest = config.parse_flags([
        "--cluster-init", "--token=abc", "--node-label", "a=b", "--node-label=c=d,e=f",
        "--data-dir", "/d", "-c", "/cfg.yaml", "extra", "--cluster-reset=false"])
    assert flags == {"cluster-init": True, "token": "abc", "node-label": ["a=b", "c=d", "e=f"],
                     "data-dir": "/d", "config": "/cfg.yaml", "cluster-reset": False}
    assert rest == ["extra"]


def test_load_config_merges_flags_and_warns_about_unknown_keys(tmp_path, capsys):
    cfg = tmp_path / "config.yaml"
    cfg.write_text("token: fromfile\nnode-label: single=1\nno-such-flag: 1\ntls-san: [a]\n")
    loaded = config.load_config({"config": str(cfg), "tls-san": ["b"]})
    assert loaded == {"token": "fromfile", "node-label": ["single=1"], "tls-san": ["b"], "config": str(cfg)}
    assert 'level=warning msg="Unknown flag --no-such-flag found in config.yaml, skipping"' in capsys.readouterr().err


@pytest.mark.parametrize("token, expected", [
    ("plainsecret", (None, "plainsecret")),
    ("K10abc123::server:pw", ("abc123", "pw")),
    ("K10abc123::node:pw:with:colons", ("abc123", "pw:with:colons")),
])
def test_split_token(token, expected):
    assert join.split_token(token) == expected


@pytest.mark.parametrize("text, seconds", [("40s", 40), ("1m30s", 90), ("500ms", 0.5), ("2h", 7200)])
def test_parse_duration(text, seconds):
    assert util.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "40", "s40", "1x"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError):
        util.parse_duration(text)


def test_component_arg():
    config = {"kube-controller-manager-arg": ["node-monitor-grace-period=20s", "other=1"]}
    assert util.component_arg(config, "kube-controller-manager-arg", "node-monitor-grace-period", 40) == 20
    assert util.component_arg(config, "kubelet-arg", "node-status-update-frequency", 10) == 10


# -- the node model ----------------------------------------------------------------
def _info(name="node2", password="pw", **kw):
    return {"name": name, "address": "10.77.0.12", "password": password, "roles": [], "labels": ["zone=a"],
            "taints": ["gpu=yes:NoSchedule"], "version": "v1.31.4+k3s1", "arch": "amd64",
            "os_image": "Debian GNU/Linux 12 (bookworm)", "kernel": "6.1.0", **kw}


def test_register_checks_the_node_password():
    state = {}
    objects.register_node(state, _info(), NOW)
    objects.register_node(state, _info(), NOW + 5)  # same node restarting: fine
    with pytest.raises(objects.ApiError) as e:
        objects.register_node(state, _info(password="other"), NOW + 6)
    assert e.value.status == 403 and "duplicate hostname" in e.value.message
    assert state["nodes"]["node2"]["created"] == NOW and state["nodes"]["node2"]["heartbeat"] == NOW + 5


def test_heartbeat_of_a_deleted_node_is_not_found():
    state = {}
    objects.register_node(state, _info(), NOW)
    objects.heartbeat(state, "node2", "pw", NOW + 1, 40)
    objects.delete_node(state, "node2")
    with pytest.raises(objects.ApiError) as e:
        objects.heartbeat(state, "node2", "pw", NOW + 2, 40)
    assert (e.value.status, e.value.message) == (404, 'nodes "node2" not found')


def test_a_server_node_carries_its_etcd_member_and_its_delete_is_reported():
    """k3s annotates an etcd node with its member name and address (pkg/etcd: NodeNameAnnotation,
    NodeAddressAnnotation), and its member controller removes that member when the Node is deleted."""
    state = {"cluster": {"created": NOW}}
    etcd_ann = {"etcd.k3s.cattle.io/node-name": "node2-0a1b2c3d", "etcd.k3s.cattle.io/node-address": "10.77.0.12"}
    objects.register_node(state, _info(roles=["control-plane", "master", "etcd"], annotations=etcd_ann), NOW)
    objects.register_node(state, _info(roles=["control-plane", "master", "etcd"]), NOW + 1)  # a restart keeps them
    deleted = []
    status, obj = kube.handle("DELETE", "/api/v1/nodes/node2", b"", {}, lambda: state, lambda fn: fn(state), 40,
                              NOW + 2, on_node_deleted=deleted.append)
    assert status == 200 and deleted == [obj] and obj["metadata"]["annotations"] == {
        "k3s.io/node-args": "[]", "k3s.io/internal-ip": "10.77.0.12", **etcd_ann}
    assert state["nodes"] == {} and state["node_passwords"] == {}


@pytest.mark.parametrize(("member", "node"), [("node2-0a1b2c3d", "node2"), ("pi-4-ffffffff", "pi-4"),
                                              ("node2", "node2"), ("node-2", "node-2")])
def test_the_node_of_an_etcd_member_name(member, node):
    assert etcd.node_of(member) == node
    assert etcd.node_of(etcd.new_name(node)) == node


def test_node_object_has_the_kubernetes_shape():
    state = {}
    node = objects.register_node(state, _info(roles=["control-plane", "master"]), NOW)
    obj = objects.node_object(node, NOW + 10, grace=40)
    assert obj["kind"] == "Node" and obj["metadata"]["name"] == "node2"
    assert obj["metadata"]["labels"]["node-role.kubernetes.io/control-plane"] == "true"
    assert obj["metadata"]["labels"]["zone"] == "a"
    assert obj["metadata"]["labels"]["kubernetes.io/hostname"] == "node2"
    assert obj["status"]["addresses"] == [{"type": "InternalIP", "address": "10.77.0.12"},
                                          {"type": "Hostname", "address": "node2"}]
    assert obj["status"]["nodeInfo"]["kubeletVersion"] == "v1.31.4+k3s1"
    ready = [c for c in obj["status"]["conditions"] if c["type"] == "Ready"]
    assert ready[0]["status"] == "True" and ready[0]["reason"] == "KubeletReady"
    assert obj["spec"]["taints"] == [{"key": "gpu", "value": "yes", "effect": "NoSchedule"}]
    assert "unschedulable" not in obj["spec"]
    # what edgeclu reads from it
    assert edgeclu_k3s.nodes_not_ready({"items": [obj]}, ["node2"]) == {}


def test_stale_heartbeat_is_not_ready_and_cordon_shows():
    state = {}
    node = objects.register_node(state, _info(), NOW)
    node["unschedulable"] = True
    obj = objects.node_object(node, NOW + 41, grace=40)
    ready = [c for c in obj["status"]["conditions"] if c["type"] == "Ready"][0]
    assert (ready["status"], ready["message"]) == ("Unknown", "Kubelet stopped posting node status.")
    assert obj["spec"]["unschedulable"] is True
    assert [t["key"] for t in obj["spec"]["taints"]] == [
        "gpu", "node.kubernetes.io/unschedulable", "node.kubernetes.io/unreachable"]
    assert objects.node_status_word(obj) == "NotReady,SchedulingDisabled"
    # a fresh heartbeat after the grace period makes it Ready again, with a new transition time
    objects.heartbeat(state, "node2", "pw", NOW + 50, 40)
    obj = objects.node_object(state["nodes"]["node2"], NOW + 51, grace=40)
    assert objects.node_status_word(obj) == "Ready,SchedulingDisabled"
    assert obj["status"]["conditions"][0]["lastTransitionTime"] == util.rfc3339(NOW + 50)


def test_node_table_has_kubectls_columns():
    state = {}
    a = objects.register_node(state, _info("node1", roles=["control-plane", "etcd", "master"]), NOW - 300)
    b = objects.register_node(state, _info("node10"), NOW - 30)
    doc = kube.table("Node", [objects.node_object(n, NOW, 40) for n in (a, b)], NOW)
    assert doc["kind"] == "Table" and doc["apiVersion"] == "meta.k8s.io/v1"
    assert [(c["name"], c["priority"]) for c in doc["columnDefinitions"]][:5] == [
        ("Name", 0), ("Status", 0), ("Roles", 0), ("Age", 0), ("Version", 0)]
    assert [r["cells"][:5] for r in doc["rows"]] == [
        ["node1", "NotReady", "control-plane,etcd,master", "5m", "v1.31.4+k3s1"],
        ["node10", "Ready", "<none>", "30s", "v1.31.4+k3s1"]]
    assert doc["rows"][0]["object"]["metadata"]["name"] == "node1"


@pytest.mark.parametrize("seconds, text", [
    (5, "5s"), (119, "119s"), (150, "2m30s"), (600, "10m"), (7200, "120m"), (3 * 3600 + 60, "3h1m"),
    (30 * 3600, "30h"), (3 * 86400 + 3600, "3d1h"), (10 * 86400, "10d"),
])
def test_human_age(seconds, text):
    assert kube.human_age(seconds) == text


def test_json_output_round_trips():
    state = {}
    node = objects.register_node(state, _info(), NOW)
    doc = {"apiVersion": "v1", "kind": "List", "items": [objects.node_object(node, NOW, 40)]}
    assert json.loads(json.dumps(doc)) == doc


# -- certificates ----------------------------------------------------------------------
def test_certificates_sans_and_admin_cert_follow_the_cas(tmp_path):
    from cryptography import x509

    from tests.k3s_standin.standin import tls

    d = str(tmp_path)
    tls.ensure_cas(d)
    tls.issue_server_certs(d, "10.77.0.11", "node1", ["k3s.example", "10.77.0.11"])
    serving = x509.load_pem_x509_certificate((tmp_path / "serving-kube-apiserver.crt").read_bytes())
    sans = [str(n.value) for n in serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value]
    assert sans[:3] == ["10.77.0.11", "node1", "127.0.0.1"] and "k3s.example" in sans
    assert sans.count("10.77.0.11") == 1
    admin = (tmp_path / "client-admin.crt").read_bytes()
    assert tls.signed_by(d, "client-admin", "client-ca") and not tls.signed_by(d, "client-admin", "server-ca")
    # the CAs replaced (cluster-reset from another cluster's snapshot): the admin cert is issued again
    other = tmp_path / "other"
    tls.ensure_cas(str(other))
    tls.import_cas(d, tls.export_cas(str(other)))
    assert not tls.signed_by(d, "client-admin", "client-ca")
    tls.issue_server_certs(d, "10.77.0.11", "node1", [])
    assert (tmp_path / "client-admin.crt").read_bytes() != admin and tls.signed_by(d, "client-admin", "client-ca")
    # the token's CA hash is the sha256 of the CA PEM as stored (k3s docs, cli/token.md)
    assert join.ca_hash(tls.ca_bundle(d)) == hashlib.sha256((tmp_path / "server-ca.crt").read_bytes()).hexdigest()
# -- two tokens (docs.k3s.io/cli/token: the server token joins servers and agents, the agent
# token agents only; `k3s token rotate` replaces the server token, and the agent token with it
# when none was set: k3s pkg/server/handlers/token.go) -------------------------------------
def test_the_agent_token_joins_agents_only():
    state = {"cluster": {"token_hash": util.sha256("srv"), "agent_token_hash": util.sha256("agt")}}
    assert join.token_user(state, "server", "srv") == "server"
    assert join.token_user(state, "node", "agt") == "node"
    assert join.token_user(state, "server", "agt") is None  # a server join with the agent token
    assert join.token_user(state, "node", "srv") is None    # a bare server token is checked as "node"
    assert join.token_user(state, "node", "other") is None


def test_without_an_agent_token_agents_use_the_server_token_and_it_follows_a_rotation():
    state = {"cluster": {"token_hash": util.sha256("old"), "agent_token_hash": None}}
    assert join.token_user(state, "node", "old") == "node"
    join.rotate_token(state, "new")
    assert join.token_user(state, "server", "old") is None and join.token_user(state, "node", "old") is None
    assert join.token_user(state, "server", "new") == "server" and join.token_user(state, "node", "new") == "node"
    # a separate agent token is not touched by a server-token rotation
    state["cluster"]["agent_token_hash"] = util.sha256("agt")
    join.rotate_token(state, "newer")
    assert join.token_user(state, "node", "agt") == "node"


# -- certificate lifetime and rotation (k3s: leaf certificates last $CATTLE_NEW_SIGNED_CERT_EXPIRATION_DAYS
# days, read by rancher/dynamiclistener's cert.NewSignedCert, else 365; renewed at start within 120 days
# of their end, docs.k3s.io/cli/certificate; `k3s certificate rotate` backs up server/tls to
# server/tls-<unix time> and removes the leaf files, CAs untouched, k3s pkg/cli/cert/cert.go) ----------
def _leaf(d, name):
    from cryptography import x509

    return x509.load_pem_x509_certificate((d / f"{name}.crt").read_bytes())


def test_leaf_certificates_last_as_long_as_the_environment_says(tmp_path, monkeypatch):
    import datetime as dt

    from tests.k3s_standin.standin import tls

    assert tls.lifetime_days({}) == 365 and tls.lifetime_days({tls.LIFETIME_ENV: "20"}) == 20
    assert tls.lifetime_days({tls.LIFETIME_ENV: "twenty"}) == 365  # k3s: logged, the default
    monkeypatch.setenv(tls.LIFETIME_ENV, "20")
    d = str(tmp_path)
    tls.ensure_cas(d)
    tls.issue_server_certs(d, "10.77.0.11", "node1", [])
    for name in ("serving-kube-apiserver", "client-admin"):
        cert = _leaf(tmp_path, name)
        assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=20)
    ca = _leaf(tmp_path, "server-ca")
    assert ca.not_valid_after_utc - ca.not_valid_before_utc == dt.timedelta(days=3650)  # CAs: 10 years
    # within 120 days of its end: the next start renews the admin certificate, with today's lifetime
    monkeypatch.delenv(tls.LIFETIME_ENV)
    tls.issue_server_certs(d, "10.77.0.11", "node1", [])
    admin = _leaf(tmp_path, "client-admin")
    assert admin.not_valid_after_utc - admin.not_valid_before_utc == dt.timedelta(days=365)
    tls.issue_server_certs(d, "10.77.0.11", "node1", [])  # a year left: kept
    assert _leaf(tmp_path, "client-admin").serial_number == admin.serial_number


def test_certificate_rotate_backs_up_and_removes_the_leaves_only(tmp_path):
    from tests.k3s_standin.standin import tls

    data = tmp_path / "k3s"
    d = data / "server" / "tls"
    tls.ensure_cas(str(d))
    tls.issue_server_certs(str(d), "10.77.0.11", "node1", [])
    files = lambda top: {str(p.relative_to(top)): p.read_bytes() for p in top.rglob("*") if p.is_file()}  # noqa: E731
    before = files(d)
    backup = tls.rotate(str(data), now=1764590400)
    assert backup == str(data / "server" / "tls-1764590400")
    assert files(data / "server" / "tls-1764590400") == before
    assert sorted(files(d)) == ["client-ca.crt", "client-ca.key", "etcd/peer-ca.crt", "etcd/peer-ca.key",
                                "etcd/server-ca.crt", "etcd/server-ca.key", "server-ca.crt", "server-ca.key"]
    tls.issue_server_certs(str(d), "10.77.0.11", "node1", [])  # the next start
    for name in ("serving-kube-apiserver", "client-admin"):
        assert (d / f"{name}.crt").read_bytes() != before[f"{name}.crt"]
        assert (d / f"{name}.key").read_bytes() != before[f"{name}.key"]
    assert (d / "server-ca.crt").read_bytes() == before["server-ca.crt"]
    assert tls.signed_by(str(d), "client-admin", "client-ca")
    # an agent (no server/tls): nothing to back up
    assert tls.rotate(str(tmp_path / "agent-data")) is None


def test_standin_imports_the_image_archives_it_finds_as_k3s_logs_it(tmp_path, capsys):
    # k3s (pkg/agent/containerd/containerd.go, preloadImages) logs `Imported images from <path> in <duration>`
    # for each supported file in <data-dir>/agent/images when it starts
    from tests.k3s_standin.standin.node_files import import_images

    images = tmp_path / "agent" / "images"
    images.mkdir(parents=True)
    (images / "k3s-airgap-images-amd64.tar.zst").write_bytes(b"x")
    (images / "notes.md").write_text("not an archive")
    found = import_images(str(tmp_path))
    assert found == [{"name": "k3s-airgap-images-amd64.tar.zst", "size": 1, "sha256": hashlib.sha256(b"x").hexdigest()}]
    err = capsys.readouterr().err
    assert f'level=info msg="Imported images from {images}/k3s-airgap-images-amd64.tar.zst in ' in err
    assert "notes.md" not in err
