"""Certificates that do not expire silently, on lab nodes (k3s = the stand-in, tests/k3s_standin: NOT k3s).

A 1 server + 1 agent cluster is installed with 20-day leaf certificates (k3s reads
CATTLE_NEW_SIGNED_CERT_EXPIRATION_DAYS, through rancher/dynamiclistener's cert.NewSignedCert, from the
unit's EnvironmentFile /etc/default/k3s); `edgeclu health` warns about the server's serving
certificate and the kubeconfig's client certificate; with the normal lifetime back, `edgeclu certs
rotate` (k3s certificate rotate on each node, k3s stopped: docs.k3s.io/cli/certificate) leaves no
warning, every node Ready, the CA unchanged, and the user's real kubectl working with the refreshed
kubeconfig, TLS verified.
"""

import base64
import json

import pytest
import yaml

from tests.integration.lifecycle_util import edgeclu, kube_nodes, ok, write_inventory
from tests.integration.real_clients import wait_ready_nodes
from tests.k3s_standin.fixtures import V1, k3s_mirror, k3s_releases  # noqa: F401

pytestmark = pytest.mark.lab

# the lab's disks and memory are this machine's: keep their levels out of what this test asserts
CALM = ["--disk-warn", "99.9", "--disk-crit", "100", "--mem-warn", "99.9"]


def _health(tmp_path, inv):
    r = edgeclu(tmp_path, "health", "-i", str(inv), "--json", *CALM)
    return r.returncode, json.loads(r.stdout)


def test_a_certificate_near_its_end_warns_until_certs_rotate(fresh_lab, k3s_mirror, tmp_path):  # noqa: F811
    lab = fresh_lab(2)
    mirror = k3s_mirror(lab)
    inv = write_inventory(tmp_path, lab, mirror, ["node1"], ["node2"])
    lab.exec("node1", "echo CATTLE_NEW_SIGNED_CERT_EXPIRATION_DAYS=20 > /etc/default/k3s")
    ok(edgeclu(tmp_path, "up", "-i", str(inv)))
    kubeconfig = tmp_path / "kubeconfig"
    ca = lab.exec("node1", "sha256sum /var/lib/rancher/k3s/server/tls/server-ca.crt "
                           "/var/lib/rancher/k3s/server/tls/client-ca.crt")

    code, doc = _health(tmp_path, inv)
    nodes = {n["name"]: n for n in doc["nodes"]}
    assert (code, doc["status"]) == (1, "warning"), doc
    serving = nodes["node1"]["serving_cert"]
    assert serving["source"] == f"{lab.nodes['node1'].ip}:6443" and 19 < serving["days_left"] <= 20
    [finding] = nodes["node1"]["findings"]
    assert finding["level"] == "warning" and finding["check"] == "certificate"
    assert finding["message"].startswith("serving certificate expires in 20 day(s), on ")
    assert nodes["node2"]["serving_cert"] is None and nodes["node2"]["status"] == "ok"
    assert 19 < doc["kubeconfig_cert"]["days_left"] <= 20 and doc["kubeconfig_cert"]["source"] == str(kubeconfig)
    assert [f["message"].split(" expires")[0] for f in doc["kubernetes"]["findings"]] == [
        f"the client certificate in {kubeconfig}"]
    table = edgeclu(tmp_path, "health", "-i", str(inv), *CALM)
    assert table.returncode == 1
    header, *rows = table.stdout.splitlines()
    row = next(r for r in rows if r.startswith("node1 "))
    assert row[header.index("CERT"):].split()[0] == "20d" and "run `edgeclu certs rotate`" in row
    assert "cluster: the client certificate in" in " ".join(table.stderr.split())

    # back to k3s's default lifetime, then the rotation
    lab.exec("node1", "rm /etc/default/k3s")
    plan = ok(edgeclu(tmp_path, "certs", "rotate", "-i", str(inv), "--dry-run", "--json"))
    assert json.loads(plan.stdout)["steps"] == [{"role": "server", "nodes": ["node1"]},
                                                {"role": "agent", "nodes": ["node2"]}]
    old_key = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]["client-key-data"]
    rotated = ok(edgeclu(tmp_path, "certs", "rotate", "-i", str(inv)))
    said = " ".join(rotated.stderr.split())
    assert "rotated: new certificates on 2 node(s), all Ready" in said, rotated.stderr
    assert "[1/2] node1: new certificates, Ready" in said and "[2/2] node2: new certificates, Ready" in said
    new_user = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]
    assert new_user["client-key-data"] != old_key
    for secret in (old_key, new_user["client-key-data"], base64.b64decode(new_user["client-key-data"]).decode()):
        assert secret not in rotated.stdout + rotated.stderr
    assert kubeconfig.stat().st_mode & 0o777 == 0o600 and list(tmp_path.glob("kubeconfig.bak-*"))
    # k3s's way: the old certificates copied aside, the CAs untouched, no record of a run left
    assert lab.exec("node1", "ls -d /var/lib/rancher/k3s/server/tls-*").strip()
    assert lab.exec("node1", "sha256sum /var/lib/rancher/k3s/server/tls/server-ca.crt "
                             "/var/lib/rancher/k3s/server/tls/client-ca.crt") == ca
    assert lab.exec("node1", "test -e /var/lib/edgeclu/certs-rotate.json || echo gone").strip() == "gone"

    code, doc = _health(tmp_path, inv)
    nodes = {n["name"]: n for n in doc["nodes"]}
    assert (code, doc["status"]) == (0, "ok"), doc
    assert nodes["node1"]["serving_cert"]["days_left"] > 364 and doc["kubeconfig_cert"]["days_left"] > 364
    assert all(f["check"] != "certificate" for n in doc["nodes"] for f in n["findings"])
    assert doc["kubernetes"]["findings"] == []
    assert all(n["ready"] for n in kube_nodes(lab).values())
    # the user's own kubectl, TLS verified against the cluster CA, with the refreshed client certificate
    assert wait_ready_nodes(kubeconfig, "lab", V1, {"node1", "node2"}) == {"node1": True, "node2": True}

    # a run that stopped after node1 (its record says so): the next one resumes with node2 only
    serving = nodes["node1"]["serving_cert"]
    lab.exec("node1", "umask 077; echo '{\"started\": 1, \"who\": \"an earlier run\", \"done\": [\"node1\"]}' "
                      "> /var/lib/edgeclu/certs-rotate.json")
    plan = json.loads(ok(edgeclu(tmp_path, "certs", "rotate", "-i", str(inv), "--dry-run", "--json")).stdout)
    assert (plan["steps"], plan["skipped"]) == ([{"role": "agent", "nodes": ["node2"]}], ["node1"])
    resumed = json.loads(ok(edgeclu(tmp_path, "certs", "rotate", "-i", str(inv), "--json")).stdout)
    assert (resumed["done"], resumed["skipped"], resumed["ok"]) == (["node2"], ["node1"], True)
    code, doc = _health(tmp_path, inv)
    again = {n["name"]: n for n in doc["nodes"]}["node1"]["serving_cert"]
    assert code == 0 and (again["not_before"], again["not_after"]) == (serving["not_before"], serving["not_after"])
    assert lab.exec("node1", "test -e /var/lib/edgeclu/certs-rotate.json || echo gone").strip() == "gone"
