"""Every add-on manifest edgeclu can render, validated offline for the Kubernetes minor of k3s_version.

What is validated, and how:

* Built-in kinds (Namespace): kubernetes-validate in strict mode (unknown fields rejected) for
  exactly that minor; the test fails if it fell back to another version's schemas.
* CRD kinds (HelmChart, HelmChartConfig from k3s's helm-controller; IPAddressPool, L2Advertisement
  from MetalLB): kubernetes-validate has no schemas for them. It raises SchemaNotFoundError,
  which its CLI turns into a WARN line and exit code 0 (silenced entirely by --no-warn), so an
  unknown kind would pass unnoticed. Here that exception routes the document to jsonschema with the
  schema in tests/fixtures/crds/ (transcribed from the upstream CRD, stricter: no unknown fields),
  and metadata is checked against the same minor's strict ObjectMeta.
* A kind in neither set fails the test.
* valuesContent must parse as a YAML mapping. The Helm values are NOT validated against the
  charts' own values schemas (the charts are not available offline).
"""

import functools
import itertools
import json
from importlib.resources import files
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import SchemaNotFoundError
from referencing import Registry, Resource

from ansible_collections.edgeclu.cluster.plugins.module_utils import addons

CRDS = Path(__file__).resolve().parents[1] / "fixtures" / "crds"
VERSIONS = ["v1.29.12+k3s1", "v1.31.4+k3s1", "v1.33.1+k3s1"]
CHOICES = list(itertools.product(("local-path", "nfs", "longhorn", "none"), ("traefik", "nginx", "none"),
                                 ("servicelb", "metallb", "none")))


def crd_schema(doc: dict) -> dict:
    group_version = doc["apiVersion"].replace("/", "-")
    path = CRDS / f"{doc['kind'].lower()}-{group_version}.json"
    if not path.exists():
        pytest.fail(f"no schema for {doc['kind']} ({doc['apiVersion']}): neither built in nor in {CRDS}")
    return json.loads(path.read_text())


@functools.cache
def object_meta_registry(k8s: str) -> Registry:
    defs = files("kubernetes_validate") / "kubernetes-json-schema" / f"v{k8s}.0-local-strict" / "_definitions.json"
    return Resource.from_contents(json.loads(defs.read_text())) @ Registry()


def validate(doc: dict, k8s: str) -> str:
    """``"builtin"`` or ``"crd"``: how ``doc`` was validated; raises on any violation."""
    try:
        validated_for = kubernetes_validate.validate(doc, k8s, strict=True)
    except SchemaNotFoundError:
        jsonschema.Draft202012Validator(crd_schema(doc), registry=object_meta_registry(k8s)).validate(doc)
        return "crd"
    assert validated_for == k8s, f"validated against {validated_for}, not {k8s}"
    return "builtin"


def docs_of(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d is not None]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("storage, ingress, lb", CHOICES, ids=["-".join(c) for c in CHOICES])
def test_every_rendered_manifest_validates(version, storage, ingress, lb):
    cluster = {"k3s_version": version, "storage": storage, "ingress": ingress, "loadbalancer": lb,
               "nfs_server": "192.168.1.5", "nfs_path": "/export/k8s",
               "metallb_pool": ["192.168.1.240-192.168.1.250", "192.168.2.0/28"], "addons": addons.named()}
    k8s = addons.k8s_version(version)
    rendered = addons.render_manifests(cluster, node_count=3)
    assert list(rendered) == addons.selected(cluster)
    for name, text in rendered.items():
        docs = docs_of(text)
        assert docs, f"{name} is empty"
        for doc in docs:
            how = validate(doc, k8s)
            assert how == ("builtin" if doc["apiVersion"] == "v1" else "crd"), (name, doc["kind"])
            assert doc["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "edgeclu"
            values = doc.get("spec", {}).get("valuesContent")
            if values is not None:
                assert isinstance(yaml.safe_load(values), dict), f"{name}: valuesContent is not a mapping"


def test_the_combinations_cover_every_manifest():
    seen = set()
    for storage, ingress, lb in CHOICES:
        seen.update(addons.selected({"k3s_version": VERSIONS[0], "storage": storage, "ingress": ingress,
                                     "loadbalancer": lb, "nfs_server": "n", "nfs_path": "/p",
                                     "metallb_pool": ["10.0.0.0/29"], "addons": addons.named()}))
    assert seen == set(addons.ADDONS)


# -- the validators can fail ---------------------------------------------------------
def _one(name: str, **cluster) -> list[dict]:
    return docs_of(addons.render_manifests({"k3s_version": VERSIONS[1], **cluster})[name])


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["spec"].update(valuesContnt="x"), "'valuesContnt' was unexpected"),
    (lambda d: d["spec"].update(createNamespace="yes"), "'yes' is not of type 'boolean'"),
    (lambda d: d["spec"].update(failurePolicy="retry-forever"), "is not one of"),
    (lambda d: d.update(apiVersion="helm.cattle.io/v2"), None),
    (lambda d: d["metadata"].update(lables={}), "'lables' was unexpected"),
])
def test_a_broken_helmchart_is_rejected(mutate, message):
    doc = _one("edgeclu-ingress-nginx.yaml", ingress="nginx")[0]
    mutate(doc)
    if message is None:  # no schema at all for that apiVersion: the test fails, it does not pass
        with pytest.raises(pytest.fail.Exception, match="no schema for HelmChart"):
            validate(doc, "1.31")
        return
    with pytest.raises(jsonschema.ValidationError, match=message):
        validate(doc, "1.31")


def test_a_pool_without_addresses_is_rejected():
    pool = _one("edgeclu-metallb-pool.yaml", loadbalancer="metallb", metallb_pool=["10.0.0.0/29"])[0]
    del pool["spec"]["addresses"]
    with pytest.raises(jsonschema.ValidationError, match="'addresses' is a required property"):
        validate(pool, "1.31")


def test_a_namespace_with_an_unknown_field_is_rejected_strictly():
    ns = _one("edgeclu-metallb.yaml", loadbalancer="metallb", metallb_pool=["10.0.0.0/29"])[0]
    assert validate(ns, "1.31") == "builtin"
    ns["spec"] = {"finalizerz": []}
    with pytest.raises(jsonschema.ValidationError, match="'finalizerz' was unexpected"):
        validate(ns, "1.31")


@pytest.mark.parametrize("storage, ingress, lb", CHOICES, ids=["-".join(c) for c in CHOICES])
def test_offline_helmcharts_point_at_k3s_static_charts_and_validate(storage, ingress, lb):
    # charts in the air-gap directory's charts/ (named as `helm pull` names them): the HelmChart takes its
    # chart from the server's static charts, as k3s's own packaged Traefik HelmChart does
    # (chart: https://%{KUBERNETES_API}%/static/charts/traefik-<version>.tgz), with no repo or version
    cluster = {"k3s_version": VERSIONS[-1], "storage": storage, "ingress": ingress, "loadbalancer": lb,
               "nfs_server": "192.168.1.5", "nfs_path": "/export/k8s", "metallb_pool": ["192.168.1.240/28"]}
    online = addons.render_manifests(cluster)
    charts = {doc["metadata"]["name"]: doc["spec"] for text in online.values() for doc in docs_of(text)
              if doc["kind"] == "HelmChart"}
    available = [f"{spec['chart']}-{spec['version']}.tgz" for spec in charts.values()] + ["unrelated-1.0.0.tgz"]
    assert addons.offline_charts(cluster, available) == sorted(available[:-1])
    offline = addons.render_manifests(cluster, available_charts=available)
    for text in offline.values():
        for doc in docs_of(text):
            validate(doc, addons.k8s_version(VERSIONS[-1]))
            if doc["kind"] == "HelmChart":
                was = charts[doc["metadata"]["name"]]
                assert doc["spec"]["chart"] == f"https://%{{KUBERNETES_API}}%/static/charts/{was['chart']}-{was['version']}.tgz"
                assert "repo" not in doc["spec"] and "version" not in doc["spec"]
                assert doc["spec"]["valuesContent"] == was["valuesContent"]
    # without the chart files: the very same manifests as online
    assert addons.render_manifests(cluster, available_charts=["unrelated-1.0.0.tgz"]) == online
