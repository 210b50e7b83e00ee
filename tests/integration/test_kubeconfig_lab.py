"""Kubeconfig from a real server over SSH (a non-root user with sudo): fetched, rewritten, merged."""

import stat

import pytest
import yaml

from edgeclu import kubeconfig as kc
from edgeclu.cluster import Cluster
from edgeclu.errors import CommandFailed
from edgeclu.inventory import parse_inventory

pytestmark = pytest.mark.lab

# the shape k3s writes (made-up certificate data)
K3S_YAML = """\
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0EgZGF0YQ==
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: default
  user:
    client-certificate-data: Y2VydA==
    client-key-data: a2V5
"""


def test_fetch_rewrite_merge_from_a_lab_server(lab3, tmp_path):
    lab3.exec("node1", "install -d -m 755 /etc/rancher/k3s && "
                       f"printf '%s' '{K3S_YAML}' > /etc/rancher/k3s/k3s.yaml && chmod 600 /etc/rancher/k3s/k3s.yaml")
    target = tmp_path / "kube" / "config"
    text = lab3.inventory_yaml(servers=["node1"], agents=["node2"], user="edge",
                               extra_vars={"k3s_version": "v1.31.4+k3s1", "cluster_name": "lab",
                                           "api_endpoint": "k3s.lab.arpa", "kubeconfig": str(target)})
    inv = parse_inventory(text)
    other = {"apiVersion": "v1", "kind": "Config", "current-context": "work",
             "clusters": [{"name": "work", "cluster": {"server": "https://10.0.0.1:6443"}}],
             "users": [{"name": "work", "user": {"token": "t"}}],
             "contexts": [{"name": "work", "context": {"cluster": "work", "user": "work"}}]}
    target.parent.mkdir()
    target.write_text(yaml.safe_dump(other))

    remote = Cluster(inv, lab3.known_hosts).remote("node1")
    try:
        r = kc.install_from_server(inv, remote)
        # the root-only file was fetched through sudo, and no copy is left in the user's /tmp
        assert remote.run("ls /tmp | grep -v '^systemd-private-' || true").stdout.split() == []
        with pytest.raises(CommandFailed, match="Permission denied"):
            remote.run(f"cat {kc.K3S_YAML}")
    finally:
        remote.close()

    assert r.path == target and r.changed and r.context == "lab" and r.backup is not None
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    merged = yaml.safe_load(target.read_text())
    assert [c["name"] for c in merged["contexts"]] == ["work", "lab"]
    assert merged["clusters"][1] == {"cluster": {"certificate-authority-data": "Q0EgZGF0YQ==",
                                                 "server": "https://k3s.lab.arpa:6443"}, "name": "lab"}
    assert merged["users"][1] == {"name": "lab", "user": {"client-certificate-data": "Y2VydA==",
                                                          "client-key-data": "a2V5"}}
    assert merged["current-context"] == "lab"
    assert yaml.safe_load(r.backup.read_text()) == other

    remote = Cluster(inv, lab3.known_hosts).remote("node1")
    try:
        again = kc.install_from_server(inv, remote)
    finally:
        remote.close()
    assert not again.changed and again.backup is None
