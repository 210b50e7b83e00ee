"""module_utils/addons.py: which manifests and k3s config keys an inventory's add-on choices produce."""

import jinja2
import pytest
import yaml

from ansible_collections.edgeclu.cluster.plugins.module_utils import addons
from edgeclu.inventory import parse_inventory

BASE = {"k3s_version": "v1.31.4+k3s1"}


def settings(**kw):
    return {**BASE, **kw}


@pytest.mark.parametrize("version, minor, k8s", [
    ("v1.31.4+k3s1", 31, "1.31"),
    ("v1.29.12+k3s1", 29, "1.29"),
    ("v1.33.0-rc1+k3s1", 33, "1.33"),
    ("v1.9.0+k3s1", 9, "1.9"),
])
def test_k8s_minor_from_k3s_version(version, minor, k8s):
    assert addons.k8s_minor(version) == minor
    assert addons.k8s_version(version) == k8s


@pytest.mark.parametrize("bad", ["1.31", "v2.0.0+k3s1", "latest", ""])
def test_k8s_minor_rejects_non_versions(bad):
    with pytest.raises(addons.AddonsError, match="is not like v1.31.4"):
        addons.k8s_minor(bad)


@pytest.mark.parametrize("choice, files", [
    ({}, ["edgeclu-traefik-config.yaml"]),
    ({"ingress": "nginx"}, ["edgeclu-ingress-nginx.yaml"]),
    ({"ingress": "none"}, []),
    ({"loadbalancer": "metallb", "metallb_pool": ["10.0.0.0/29"]},
     ["edgeclu-traefik-config.yaml", "edgeclu-metallb.yaml", "edgeclu-metallb-pool.yaml"]),
    ({"loadbalancer": "none", "ingress": "none"}, []),
    ({"storage": "nfs", "nfs_server": "nas", "nfs_path": "/k8s", "ingress": "none"},
     ["edgeclu-nfs-provisioner.yaml"]),
    ({"storage": "longhorn", "ingress": "none"}, ["edgeclu-longhorn.yaml"]),
    ({"storage": "none", "ingress": "none"}, []),
])
def test_selected_manifests(choice, files):
    assert addons.selected(settings(**choice)) == files


def test_an_add_on_the_addons_list_names_must_be_one_edgeclu_knows():
    with pytest.raises(addons.AddonsError, match=r"add-ons: unknown add-on 'cert-manger' in addons \(known: "):
        addons.selected(settings(addons=["cert-manger"]))
    assert addons.selected(settings(addons=[], ingress="none")) == []


def test_inventory_defaults_select_the_k3s_builtins():
    inv = parse_inventory("k3s_cluster:\n  children: {server: {hosts: {pi-1: {}}}}\n"
                          "  vars: {k3s_version: v1.31.4+k3s1}\n")
    assert list(addons.render_manifests(inv.vars)) == ["edgeclu-traefik-config.yaml"]
    assert addons.node_packages(inv.vars) == addons.node_services(inv.vars) == []


@pytest.mark.parametrize("storage, packages, services", [
    ("local-path", [], []),
    ("none", [], []),
    ("nfs", ["nfs-common"], []),
    ("longhorn", ["open-iscsi", "nfs-common"], ["iscsid"]),
])
def test_node_prerequisites(storage, packages, services):
    v = settings(storage=storage, nfs_server="nas", nfs_path="/k8s")
    assert addons.node_packages(v) == packages
    assert addons.node_services(v) == services


@pytest.mark.parametrize("choice, message", [
    ({"storage": "nfs"}, "storage is nfs but nfs_server and nfs_path not set"),
    ({"storage": "nfs", "nfs_server": "nas"}, "storage is nfs but nfs_path not set"),
    ({"loadbalancer": "metallb"}, "loadbalancer is metallb but metallb_pool is not set"),
    ({"loadbalancer": "metallb", "metallb_pool": []}, "loadbalancer is metallb but metallb_pool is not set"),
])
def test_missing_settings_are_named(choice, message):
    with pytest.raises(addons.AddonsError, match=message):
        addons.render_manifests(settings(**choice))


def test_k3s_version_is_required():
    with pytest.raises(addons.AddonsError, match="k3s_version is not set"):
        addons.selected({"storage": "local-path"})


@pytest.mark.parametrize("pool, expected", [
    (["192.168.1.240-192.168.1.250"], ["192.168.1.240-192.168.1.250"]),
    (["192.168.1.240 - 192.168.1.250", "10.0.0.0/28"], ["192.168.1.240-192.168.1.250", "10.0.0.0/28"]),
    (["fd00::10-fd00::20"], ["fd00::10-fd00::20"]),
])
def test_pool_addresses(pool, expected):
    assert addons.pool_addresses(pool) == expected


@pytest.mark.parametrize("minor, version", [(26, "4.11.3"), (30, "4.11.3"), (31, "4.12.1"), (32, "4.12.1"),
                                            (33, "4.13.0"), (34, "4.14.0"), (40, "4.14.0")])
def test_ingress_nginx_chart_follows_the_kubernetes_minor(minor, version):
    assert addons.ingress_nginx_chart(minor).version == version
    rendered = addons.render_manifests(settings(k3s_version=f"v1.{minor}.2+k3s1", ingress="nginx"))
    chart = yaml.safe_load(rendered["edgeclu-ingress-nginx.yaml"])
    assert chart["spec"]["version"] == version


def test_metallb_pool_manifest_exact_text():
    text = addons.render_manifests(settings(loadbalancer="metallb",
                                            metallb_pool=["192.168.1.240 - 192.168.1.250"]))
    assert text["edgeclu-metallb-pool.yaml"] == """\
# Managed by edgeclu: the addresses MetalLB hands out, announced on the LAN by ARP/NDP (L2).
# k3s retries this file until the MetalLB chart has installed the metallb.io CRDs.
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: "edgeclu-pool"
  namespace: "metallb-system"
  labels:
    app.kubernetes.io/managed-by: edgeclu
spec:
  addresses: ["192.168.1.240-192.168.1.250"]
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata:
  name: "edgeclu-l2"
  namespace: "metallb-system"
  labels:
    app.kubernetes.io/managed-by: edgeclu
spec:
  ipAddressPools: ["edgeclu-pool"]
"""


def test_traefik_config_exact_text_and_service_type_follows_the_load_balancer():
    text = addons.render_manifests(settings())["edgeclu-traefik-config.yaml"]
    assert text == """\
# Managed by edgeclu: configures the Traefik that k3s ships (packaged component "traefik").
apiVersion: helm.cattle.io/v1
kind: HelmChartConfig
metadata:
  name: traefik
  namespace: kube-system
  labels:
    app.kubernetes.io/managed-by: edgeclu
spec:
  valuesContent: |-
    ingressClass:
      enabled: true
      isDefaultClass: true
    service:
      type: LoadBalancer
"""
    no_lb = addons.render_manifests(settings(loadbalancer="none"))["edgeclu-traefik-config.yaml"]
    values = yaml.safe_load(yaml.safe_load(no_lb)["spec"]["valuesContent"])
    assert values["service"] == {"type": "NodePort"}


@pytest.mark.parametrize("nodes, replicas", [(1, 1), (2, 2), (3, 3), (9, 3)])
def test_longhorn_replicas_never_exceed_the_node_count(nodes, replicas):
    text = addons.render_manifests(settings(storage="longhorn"), node_count=nodes)["edgeclu-longhorn.yaml"]
    chart = list(yaml.safe_load_all(text))[1]
    values = yaml.safe_load(chart["spec"]["valuesContent"])
    assert values["persistence"] == {"defaultClass": True, "defaultClassReplicaCount": replicas}
    assert values["defaultSettings"] == {"defaultReplicaCount": replicas}


def test_nfs_values_carry_server_and_path_verbatim():
    text = addons.render_manifests(settings(storage="nfs", nfs_server="nas.home.arpa",
                                            nfs_path="/export/k8s: \"x\""))["edgeclu-nfs-provisioner.yaml"]
    values = yaml.safe_load(yaml.safe_load(text)["spec"]["valuesContent"])
    assert values["nfs"] == {"server": "nas.home.arpa", "path": "/export/k8s: \"x\""}
    assert values["storageClass"] == {"name": "nfs-client", "defaultClass": True}


def test_every_template_is_used_and_every_manifest_has_a_template():
    on_disk = sorted(p.name.removesuffix(".j2") for p in addons.TEMPLATES.glob("*.j2"))
    assert on_disk == sorted(addons.ADDONS)
    assert all(name.startswith(addons.MANIFEST_PREFIX) and name.endswith(".yaml") for name in on_disk)


def test_templates_render_with_strict_undefined(monkeypatch):
    wanted, _ = addons.ADDONS["edgeclu-metallb-pool.yaml"]
    monkeypatch.setitem(addons.ADDONS, "edgeclu-metallb-pool.yaml",
                        (wanted, lambda v, minor, nodes: {"namespace": "x", "pool_name": "p"}))
    with pytest.raises(jinja2.UndefinedError, match="addresses"):
        addons.render_manifests(settings(loadbalancer="metallb", metallb_pool=["10.0.0.0/29"]))
