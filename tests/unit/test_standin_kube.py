"""The k3s stand-in's Kubernetes REST subset (tests/k3s_standin/standin/kube.py), pure: the requests real
kubectl sends for get / cordon / annotate / drain / delete. In the lab, real kubectl drives it
(tests/integration/test_standin_lab.py)."""

import json

import pytest

from tests.k3s_standin.standin import kube, objects

NOW = 1_700_000_000.0
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def _info(name, roles=(), labels=()):
    return {"name": name, "password": "pw", "address": "10.77.0.12", "arch": "amd64", "version": "v1.31.4+k3s1",
            "roles": list(roles), "labels": list(labels)}


@pytest.fixture
def api():
    state = {"cluster": {"created": NOW}}
    objects.register_node(state, _info("node1", ["control-plane", "master"]), NOW)
    objects.register_node(state, _info("node2", labels=["zone=a"]), NOW)

    def call(method, path, body=None, **headers):
        raw = json.dumps(body).encode() if body is not None else b""
        return kube.handle(method, path, raw, headers, lambda: state, lambda fn: fn(state), 40, NOW)
    call.state = state
    return call


def test_discovery_lists_eviction_as_a_policy_v1_subresource(api):
    # kubectl drain: CheckEvictionSupport looks for pods/eviction with a group and version in /api/v1
    status, doc = api("GET", "/api/v1")
    ev = [r for r in doc["resources"] if r["name"] == "pods/eviction"]
    assert status == 200 and ev == [{"name": "pods/eviction", "singularName": "", "namespaced": True,
                                     "kind": "Eviction", "verbs": ["create"], "group": "policy", "version": "v1"}]
    assert api("GET", "/version")[1]["gitVersion"] == "v1.31.4+k3s1"
    assert [g["name"] for g in api("GET", "/apis")[1]["groups"]] == ["apps", "policy"]
    assert api("GET", "/apis/policy/v1")[1]["resources"][0]["kind"] == "PodDisruptionBudget"


def test_node_list_with_selectors_and_as_a_table(api):
    names = lambda doc: [i["metadata"]["name"] for i in doc["items"]]  # noqa: E731
    assert names(api("GET", "/api/v1/nodes")[1]) == ["node1", "node2"]
    assert names(api("GET", "/api/v1/nodes?labelSelector=zone%3Da")[1]) == ["node2"]
    assert names(api("GET", "/api/v1/nodes?labelSelector=%21zone")[1]) == ["node1"]
    assert names(api("GET", "/api/v1/nodes?labelSelector=zone+in+%28a%2Cb%29")[1]) == ["node2"]
    assert names(api("GET", "/api/v1/nodes?fieldSelector=metadata.name%3Dnode1")[1]) == ["node1"]
    status, table = api("GET", "/api/v1/nodes/node2", Accept=TABLE)
    assert table["kind"] == "Table" and table["rows"][0]["cells"][:3] == ["node2", "Ready", "<none>"]


def test_cordon_annotate_and_uncordon_are_patches(api):
    smp = "application/strategic-merge-patch+json"
    _, node = api("PATCH", "/api/v1/nodes/node2", {"spec": {"unschedulable": True}}, **{"Content-Type": smp})
    assert node["spec"]["unschedulable"] is True
    _, node = api("PATCH", "/api/v1/nodes/node2", {"metadata": {"annotations": {"edgeclu/cordoned-by": "upgrade"}}},
                  **{"Content-Type": "application/merge-patch+json"})
    assert node["metadata"]["annotations"]["edgeclu/cordoned-by"] == "upgrade"
    _, node = api("PATCH", "/api/v1/nodes/node2", {"spec": {"unschedulable": None}}, **{"Content-Type": smp})
    assert "unschedulable" not in node["spec"]
    assert node["metadata"]["annotations"]["edgeclu/cordoned-by"] == "upgrade"
    # a restart of the node's k3s (it registers again) keeps what kubectl set
    objects.register_node(api.state, _info("node2", labels=["zone=a"]), NOW + 1)
    assert api("GET", "/api/v1/nodes/node2")[1]["metadata"]["annotations"]["edgeclu/cordoned-by"] == "upgrade"
    with pytest.raises(objects.ApiError) as e:
        api("PATCH", "/api/v1/nodes/node2", [{"op": "remove"}], **{"Content-Type": "application/json-patch+json"})
    assert e.value.status == 415


def test_eviction_is_refused_with_429_while_a_budget_allows_no_disruption(api):
    pod = {"apiVersion": "v1", "kind": "Pod", "spec": {"nodeName": "node2"},
           "metadata": {"name": "db-0", "labels": {"app": "db"}, "ownerReferences": [{"kind": "StatefulSet",
                                                                                       "name": "db"}]}}
    assert api("POST", "/api/v1/namespaces/default/pods", pod)[0] == 201
    pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "db"},
           "spec": {"maxUnavailable": 0, "selector": {"matchLabels": {"app": "db"}}}}
    assert api("POST", "/apis/policy/v1/namespaces/default/poddisruptionbudgets", pdb)[0] == 201
    on2 = api("GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode2")[1]["items"]
    assert [p["metadata"]["name"] for p in on2] == ["db-0"]
    assert on2[0]["metadata"]["ownerReferences"][0]["controller"] is True  # drain's GetControllerOf
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "db-0", "namespace": "default"}}
    with pytest.raises(objects.ApiError) as e:
        api("POST", "/api/v1/namespaces/default/pods/db-0/eviction", eviction)
    # the apiserver's words (k8s.io/kubernetes pkg/registry/core/pod/storage/eviction.go)
    assert (e.value.status, e.value.message) == (429, "Cannot evict pod as it would violate the pod's "
                                                      "disruption budget.")
    api("DELETE", "/apis/policy/v1/namespaces/default/poddisruptionbudgets/db")
    uid = on2[0]["metadata"]["uid"]
    assert api("POST", "/api/v1/namespaces/default/pods/db-0/eviction", eviction)[0] == 201
    # a StatefulSet pod comes back under its name on another node, with a new uid (drain waits on that)
    moved = api("GET", "/api/v1/namespaces/default/pods/db-0")[1]
    assert moved["spec"]["nodeName"] == "node1" and moved["metadata"]["uid"] != uid


def test_daemonset_get_finds_the_owner_of_a_pod(api):
    pod = {"apiVersion": "v1", "kind": "Pod", "spec": {"nodeName": "node2"},
           "metadata": {"name": "svclb-x", "labels": {"app": "svclb"},
                        "ownerReferences": [{"kind": "DaemonSet", "name": "svclb"}]}}
    api("POST", "/api/v1/namespaces/kube-system/pods", pod)
    assert api("GET", "/apis/apps/v1/namespaces/kube-system/daemonsets/svclb")[1]["kind"] == "DaemonSet"
    with pytest.raises(objects.ApiError) as e:
        api("GET", "/apis/apps/v1/namespaces/default/daemonsets/svclb")
    assert e.value.status == 404 and e.value.message == 'daemonsets.apps "svclb" not found'


def test_delete_node_and_not_found(api):
    assert api("DELETE", "/api/v1/nodes/node2")[0] == 200
    with pytest.raises(objects.ApiError) as e:
        api("GET", "/api/v1/nodes/node2")
    assert (e.value.status, e.value.message) == (404, 'nodes "node2" not found')
    assert api("GET", "/api/v1/namespaces/kube-system")[1]["status"]["phase"] == "Active"
