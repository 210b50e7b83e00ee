"""The k3s stand-in's pods and PodDisruptionBudgets (what `kubectl drain` needs), pure parts.

The drain itself (kubectl client + eviction API) runs in the lab: test_lifecycle_nodes_lab.py.
"""

import pytest

from tests.k3s_standin.standin import objects

NOW = 1_700_000_000.0
GRACE = 40.0


def _state(*nodes, stale=(), cordoned=()):
    return {"nodes": {n: {"name": n, "heartbeat": NOW - (100 if n in stale else 1),
                          "unschedulable": n in cordoned} for n in nodes}}


def _pod(name, node, owner=None, labels=None, ns="default"):
    meta = {"name": name, "namespace": ns, "labels": labels or {"app": "web"}}
    if owner:
        meta["ownerReferences"] = [{"kind": owner[0], "name": owner[1]}]
    return {"kind": "Pod", "metadata": meta, "spec": {"nodeName": node}}


def _pdb(name, ns="default", **budget):
    return {"kind": "PodDisruptionBudget", "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, **budget}}


def test_create_objects_and_their_errors():
    st = _state("node1", "node2")
    assert objects.create_object(st, _pod("web-a", "node2", ("ReplicaSet", "web")), NOW) == "pod/web-a created"
    assert objects.create_object(st, _pdb("web", minAvailable=1), NOW) == "poddisruptionbudget.policy/web created"
    assert st["pods"]["default/web-a"]["owner"] == {"kind": "ReplicaSet", "name": "web"}
    cases = [
        (_pod("web-a", "node2"), 409, 'pods "web-a" already exists'),
        (_pod("x", "node9"), 422, "spec.nodeName: 'node9' is not a node"),
        (_pdb("two", minAvailable=1, maxUnavailable=1), 422, "set one of minAvailable, maxUnavailable"),
        (_pdb("pct", minAvailable="50%"), 422, "no percentages"),
        ({"kind": "Deployment", "metadata": {"name": "d"}}, 400, "cannot create kind 'Deployment'"),
    ]
    for doc, status, message in cases:
        with pytest.raises(objects.ApiError) as e:
            objects.create_object(st, doc, NOW)
        assert e.value.status == status and message in e.value.message, doc


@pytest.mark.parametrize(("budget", "pods", "want"), [
    # pods: (node, labels app) ; want: (healthy, desired, expected, allowed)
    ({"minAvailable": 2}, [("node1", "web"), ("node2", "web")], (2, 2, 2, 0)),
    ({"minAvailable": 1}, [("node1", "web"), ("node2", "web")], (2, 1, 2, 1)),
    ({"maxUnavailable": 1}, [("node1", "web"), ("node2", "web"), ("node2", "web")], (3, 2, 3, 1)),
    ({"maxUnavailable": 0}, [("node1", "web")], (1, 1, 1, 0)),
    # a pod on a node that stopped reporting is not healthy; other apps do not count
    ({"minAvailable": 1}, [("node3", "web"), ("node1", "db")], (0, 1, 1, 0)),
])
def test_pdb_status(budget, pods, want):
    st = _state("node1", "node2", "node3", stale=("node3",))
    for i, (node, app) in enumerate(pods):
        objects.create_object(st, _pod(f"p{i}", node, ("ReplicaSet", "rs"), {"app": app}), NOW)
    objects.create_object(st, _pdb("web", **budget), NOW)
    status = objects.pdb_status(st, st["pdbs"]["default/web"], NOW, GRACE)
    assert (status["currentHealthy"], status["desiredHealthy"], status["expectedPods"],
            status["disruptionsAllowed"]) == want


def test_eviction_respects_the_budget_and_the_controller_recreates_the_pod_elsewhere():
    st = _state("node1", "node2", "node3", "node4", stale=("node4",), cordoned=("node3",))
    objects.create_object(st, _pod("web-a", "node2", ("ReplicaSet", "web")), NOW)
    objects.create_object(st, _pod("web-b", "node1", ("ReplicaSet", "web")), NOW)
    objects.create_object(st, _pdb("web", minAvailable=2), NOW)
    with pytest.raises(objects.ApiError) as e:
        objects.evict_pod(st, "default", "web-a", NOW, GRACE)
    assert e.value.status == 429
    assert e.value.message == "Cannot evict pod as it would violate the pod's disruption budget."
    assert set(st["pods"]) == {"default/web-a", "default/web-b"}

    st["pdbs"]["default/web"]["minAvailable"] = 1
    objects.evict_pod(st, "default", "web-a", NOW, GRACE)
    # the replacement: not on node2 (drained), node3 (cordoned) or node4 (not Ready) -> node1
    assert {k: p["node"] for k, p in st["pods"].items()} == {"default/web-b": "node1", "default/web-00001": "node1"}
    with pytest.raises(objects.ApiError) as e:
        objects.evict_pod(st, "default", "web-a", NOW, GRACE)
    assert e.value.status == 404


def test_bare_pods_are_deleted_statefulset_pods_keep_their_name_and_nowhere_to_go_is_pending():
    st = _state("node1", "node2")
    objects.create_object(st, _pod("bare", "node1"), NOW)
    objects.create_object(st, _pod("db-0", "node1", ("StatefulSet", "db")), NOW)
    objects.evict_pod(st, "default", "bare", NOW, GRACE)
    objects.evict_pod(st, "default", "db-0", NOW, GRACE)
    assert {k: p["node"] for k, p in st["pods"].items()} == {"default/db-0": "node2"}
    objects.evict_pod(st, "default", "db-0", NOW, GRACE)
    objects.evict_pod(st, "default", "db-0", NOW, GRACE)  # back to node1, then node2 again
    st["nodes"]["node1"]["unschedulable"] = True
    objects.evict_pod(st, "default", "db-0", NOW, GRACE)
    assert st["pods"]["default/db-0"]["node"] is None
    obj = objects.pod_object(st["pods"]["default/db-0"], st["nodes"], NOW, GRACE)
    assert obj["status"]["phase"] == "Pending" and obj["spec"] == {}
    assert obj["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"


def test_deleting_a_node_removes_its_pods():
    st = _state("node1", "node2")
    objects.create_object(st, _pod("web-a", "node2", ("ReplicaSet", "web")), NOW)
    objects.create_object(st, _pod("ds-x", "node2", ("DaemonSet", "ds")), NOW)
    objects.delete_node(st, "node2", NOW, GRACE)
    assert list(st["nodes"]) == ["node1"]
    assert {k: p["node"] for k, p in st["pods"].items()} == {"default/web-00001": "node1"}


def test_pod_and_pdb_objects_look_like_kubectl_json():
    st = _state("node1", stale=())
    objects.create_object(st, _pod("web-a", "node1", ("ReplicaSet", "web")), NOW)
    objects.create_object(st, _pdb("web", maxUnavailable=0), NOW)
    pod = objects.pod_object(st["pods"]["default/web-a"], st["nodes"], NOW, GRACE)
    assert pod["spec"] == {"nodeName": "node1"} and pod["status"] == {"phase": "Running"}
    pdb = objects.pdb_object(st, st["pdbs"]["default/web"], NOW, GRACE)
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"] == {"selector": {"matchLabels": {"app": "web"}}, "maxUnavailable": 0}
    assert pdb["status"] == {"currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1, "disruptionsAllowed": 0}


def test_delete_pdb():
    st = _state("node1")
    objects.create_object(st, _pdb("web", minAvailable=1), NOW)
    assert objects.delete_pdb(st, "default", "web") == 'poddisruptionbudget.policy "web" deleted'
    with pytest.raises(objects.ApiError) as e:
        objects.delete_pdb(st, "default", "web")
    assert e.value.status == 404 and st["pdbs"] == {}
