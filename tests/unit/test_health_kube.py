"""Kubernetes node status parsed from a realistic `kubectl get nodes -o json` (k3s, 4 nodes)."""

from pathlib import Path

import pytest

from edgeclu.health import kube
from edgeclu.health.thresholds import Finding

DOC = (Path(__file__).parent / "data" / "kubectl_get_nodes.json").read_text()


def test_parse_nodes():
    nodes = kube.parse_nodes(DOC)
    assert list(nodes) == ["pi-1", "pi-2", "nuc", "pi-3"]
    assert nodes["pi-1"] == kube.KubeNode("pi-1", ready=True, cordoned=False, version="v1.31.4+k3s1",
                                          roles=("control-plane", "etcd", "master"), addresses=("192.168.1.10",))
    assert (nodes["pi-2"].ready, nodes["pi-2"].cordoned, nodes["pi-2"].roles) == (True, True, ())
    assert (nodes["nuc"].ready, nodes["nuc"].cordoned, nodes["nuc"].version) == (None, False, "v1.30.8+k3s1")
    assert (nodes["pi-3"].ready, nodes["pi-3"].reason) == (False, "KubeletNotReady")
    assert [n.summary for n in nodes.values()] == ["Ready", "Ready,cordoned", "Unknown", "NotReady"]


def test_cordoned_by_taint_alone_counts():
    doc = '{"items": [{"metadata": {"name": "a"}, "spec": {"taints": [{"key": "node.kubernetes.io/unschedulable"}]}}]}'
    assert kube.parse_nodes(doc)["a"].cordoned is True


@pytest.mark.parametrize("text", ['{"kind": "Status"}', "[]", '{"items": {}}'])
def test_not_a_node_list_is_rejected(text):
    with pytest.raises(ValueError):
        kube.parse_nodes(text)


def test_garbage_is_rejected():
    with pytest.raises(ValueError):
        kube.parse_nodes("The connection to the server 127.0.0.1:6443 was refused")


def test_match_by_name_then_internal_ip():
    nodes = kube.parse_nodes(DOC)
    assert kube.match(nodes, "pi-2", "10.0.0.1").name == "pi-2"
    assert kube.match(nodes, "raspberry", "192.168.1.12").name == "pi-3"
    assert kube.match(nodes, "other", "10.9.9.9") is None


@pytest.mark.parametrize(("name", "expected", "findings"), [
    ("pi-1", True, []),
    ("pi-2", True, [Finding("warning", "kubernetes", "cordoned (unschedulable)")]),
    ("nuc", True, [Finding("warning", "kubernetes", "Ready condition unknown")]),
    ("pi-3", True, [Finding("critical", "kubernetes", "NotReady (KubeletNotReady)")]),
    (None, True, [Finding("warning", "kubernetes", "not a node of the cluster")]),
    (None, False, []),
])
def test_findings(name, expected, findings):
    node = kube.parse_nodes(DOC)[name] if name else None
    assert kube.findings(node, expected) == findings
