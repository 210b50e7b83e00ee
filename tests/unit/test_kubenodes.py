"""The one reader of `kubectl get nodes -o json` (the collection's module_utils/kubenodes.py): what a server says
is checked."""

import json
from pathlib import Path

import pytest

from ansible_collections.edgeclu.cluster.plugins.module_utils import kubenodes
from edgeclu.lifecycle.kubectl import CORDON_MARK, marked_cordons

# a capture of real `k3s kubectl get nodes -o json` (k3s v1.31.4+k3s1)
DOC = (Path(__file__).parent / "data" / "kubectl_get_nodes.json").read_text()


def test_the_real_listing():
    nodes = kubenodes.parse_nodes(DOC)
    assert kubenodes.not_ready(nodes, nodes) == {
        "nuc": "Ready=Unknown: Kubelet stopped posting node status.",
        "pi-3": "Ready=False: container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
                "message:Network plugin returns error: cni plugin not initialized"}
    assert marked_cordons(nodes) == {}
    first = next(iter(nodes.values()))
    assert first.annotations["k3s.io/hostname"] == first.name and first.ready_status == "True"


def test_hostile_or_broken_items_are_skipped_not_crashed_on():
    doc = {"items": [1, "x", None, {"metadata": "nope"}, {"metadata": {"name": 7}},
                     {"metadata": {"name": "ok", "labels": ["not", "a", "map"], "annotations": {CORDON_MARK: 5}},
                      "spec": {"taints": ["junk"]}, "status": {"conditions": ["junk", {"type": "Ready"}],
                                                               "addresses": ["junk"]}}]}
    nodes = kubenodes.from_doc(json.loads(json.dumps(doc)))
    assert list(nodes) == ["ok"]
    assert nodes["ok"].annotations == {} and nodes["ok"].roles == () and marked_cordons(nodes) == {}
    assert kubenodes.not_ready(nodes, ["ok", "gone"]) == {"ok": "no Ready condition yet",
                                                           "gone": "not registered with the cluster"}


@pytest.mark.parametrize("text", ['{"kind": "Status"}', "[]", '{"items": {}}'])
def test_what_is_not_a_list_is_an_error(text):
    with pytest.raises(ValueError, match="not a kubectl list"):
        kubenodes.parse_nodes(text)
