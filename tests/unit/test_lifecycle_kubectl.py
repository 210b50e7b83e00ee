"""kubectl commands and the reading of `kubectl drain` failures (pure)."""

import json
import shlex
from pathlib import Path

import pytest

from ansible_collections.edgeclu.cluster.plugins.module_utils.kubenodes import from_doc
from edgeclu.lifecycle.kubectl import (
    drain_command,
    eviction_errors,
    explain_stuck,
    mark_command,
    marked_cordons,
    node_command,
    pods_on_command,
)


@pytest.mark.parametrize(("fn", "args", "want"), [
    (drain_command, ("pi-3", 120.0),
     "k3s kubectl drain pi-3 --ignore-daemonsets --delete-emptydir-data --timeout=120s"),
    (drain_command, ("pi-3", 7.9), "k3s kubectl drain pi-3 --ignore-daemonsets --delete-emptydir-data --timeout=7s"),
    (node_command, ("cordon", "pi-3"), "k3s kubectl cordon pi-3"),
    (node_command, ("uncordon", "pi-3"), "k3s kubectl uncordon pi-3"),
    (node_command, ("delete", "pi-3"), "k3s kubectl delete node pi-3"),
    (pods_on_command, ("pi-3",), "k3s kubectl get pods -A --field-selector spec.nodeName=pi-3 -o json"),
    (drain_command, ("a b", 1), "k3s kubectl drain 'a b' --ignore-daemonsets --delete-emptydir-data --timeout=1s"),
])
def test_commands(fn, args, want):
    assert fn(*args) == want


def test_unknown_verb():
    with pytest.raises(ValueError):
        node_command("drain", "x")


# kubectl 1.31 output when a PDB blocks two pods until --timeout
REFUSED = "(will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget."
DRAIN_TIMEOUT = "\n".join([
    "node/pi-3 cordoned",
    "evicting pod default/web-7c9f-abcde",
    "evicting pod shop/db-0",
    f'error when evicting pods/"web-7c9f-abcde" -n "default" {REFUSED}',
    f'error when evicting pods/"db-0" -n "shop" {REFUSED}',
    f'error when evicting pods/"web-7c9f-abcde" -n "default" {REFUSED}',
    'There are pending pods in node "pi-3" when an error occurred: [error when evicting pods/"web-7c9f-abcde" '
    '-n "default": global timeout reached: 20s, error when evicting pods/"db-0" -n "shop": global timeout '
    "reached: 20s]",
])


def test_eviction_errors_lists_each_refused_pod_once_in_order():
    assert eviction_errors(DRAIN_TIMEOUT) == ["default/web-7c9f-abcde", "shop/db-0"]
    assert eviction_errors("node/pi-3 cordoned\nnode/pi-3 drained\n") == []


def _pod(name, ns="default", owner="ReplicaSet", labels=None):
    meta = {"name": name, "namespace": ns, "labels": labels or {"app": "web"}}
    if owner:
        meta["ownerReferences"] = [{"kind": owner, "name": "x"}]
    return {"metadata": meta}


def _pdb(name, ns="default", allowed=0, **spec):
    return {"metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec},
            "status": {"disruptionsAllowed": allowed, "currentHealthy": 2, "expectedPods": 2}}


def test_explain_stuck_names_the_blocking_budget_and_other_reasons():
    pods = {"items": [_pod("web-1"), _pod("web-2", ns="other"), _pod("bare", owner=None, labels={"app": "tool"}),
                      _pod("svclb-x", ns="kube-system", owner="DaemonSet"), _pod("slow", labels={"app": "slow"})]}
    pdbs = {"items": [_pdb("web", minAvailable=2), _pdb("web", ns="other", allowed=1, maxUnavailable=1)]}
    assert explain_stuck(pods, pdbs, refused=["other/web-2"]) == [
        "default/web-1: PodDisruptionBudget default/web allows 0 disruptions (minAvailable 2; 2 healthy of 2)",
        "other/web-2: its eviction was refused until the timeout",
        "default/bare: not managed by a controller: it would be deleted, not moved (kubectl drain refuses)",
        "default/slow: still on the node when the drain timed out",
    ]
    assert explain_stuck({"items": []}, pdbs) == []


def test_explain_stuck_reads_real_json_shapes():
    pods = json.loads('{"items": [{"metadata": {"name": "w", "namespace": "default", "labels": {"app": "web"},'
                      ' "ownerReferences": [{"kind": "ReplicaSet", "name": "w-1"}]}, "spec": {"nodeName": "n"}}]}')
    pdbs = json.loads('{"items": [{"metadata": {"name": "p", "namespace": "default"}, "spec": {"maxUnavailable":'
                      ' 0, "selector": {"matchLabels": {"app": "web"}}}, "status": {"disruptionsAllowed": 0,'
                      ' "currentHealthy": 1, "expectedPods": 1}}]}')
    assert explain_stuck(pods, pdbs) == [
        "default/w: PodDisruptionBudget default/p allows 0 disruptions (maxUnavailable 0; 1 healthy of 1)"]


# -- the cordon mark ---------------------------------------------------------------------
REAL_KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.31"


def _real_annotate(node_doc: dict, command: str, tmp_path) -> dict:
    """Apply what ``command`` asks to ``node_doc`` with the real kubectl, offline (``--local``)."""
    import subprocess

    argv = shlex.split(command)
    assert argv[:5] == ["k3s", "kubectl", "annotate", "node", node_doc["metadata"]["name"]]
    path = tmp_path / "node.json"
    path.write_text(json.dumps(node_doc))
    r = subprocess.run([REAL_KUBECTL, "annotate", "--local", "-f", str(path), "-o", "json", *argv[5:]],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.skipif(not Path(REAL_KUBECTL).exists(), reason="no real kubectl here")
def test_the_cordon_mark_is_set_and_removed_the_way_real_kubectl_reads_it(tmp_path):
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "pi-2", "annotations": {"k3s.io/x": "y"}}}
    marked = _real_annotate(node, mark_command("pi-2", "upgrade"), tmp_path)
    other = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "pi-3"}}  # cordoned by hand, say
    assert marked_cordons(from_doc({"items": [marked, other]})) == {"pi-2": "upgrade"}
    again = _real_annotate(marked, mark_command("pi-2", "remove"), tmp_path)  # --overwrite: a new owner
    assert marked_cordons(from_doc({"items": [again]})) == {"pi-2": "remove"}
    cleared = _real_annotate(again, mark_command("pi-2", None), tmp_path)
    assert marked_cordons(from_doc({"items": [cleared]})) == {}
    assert cleared["metadata"]["annotations"] == {"k3s.io/x": "y"}


def test_require_ready_names_each_node_that_is_not_and_why():
    from edgeclu.errors import EdgecluError
    from edgeclu.lifecycle.kubectl import ClusterApi
    from tests.fakes import FakeKube, FakeRemote

    server = FakeRemote("s1")
    FakeKube(server, {"s1": {"version": "v1.31.4+k3s1"}, "a1": {"version": "v1.31.4+k3s1", "ready": "Unknown"}})
    api = ClusterApi(server)
    with pytest.raises(EdgecluError, match=r"^every node must be Ready to take the new token "
                                           r"\(a1: Unknown, v1\.31\.4\+k3s1\); bring it back, or take it out "
                                           r"first \(`edgeclu remove --force NODE`\)\. Nothing was changed$"):
        api.require_ready(["s1", "a1"], "to take the new token")
    api.require_ready(["s1"], "to take the new token")  # all Ready: no error
