"""Golden samples of what the real programs print, and edgeclu reading each (tests/fixtures/golden/).

kubectl/: written by real kubectl 1.31 (the binary ``k3s kubectl`` runs in the lab) from a lab run of
  tests/integration/test_standin_lab.py::test_real_kubectl_output_is_what_edgeclu_parses, which re-checks
  the live output on every CI run (EDGECLU_UPDATE_GOLDEN=1 rewrites them).
k3s/: real k3s output quoted in k3s's own issue tracker (k3s cannot run here):
  version.txt             k3s-io/k3s#11366 (`k3s --version` of v1.30.6+k3s1)
  journal-fatal.txt       k3s-io/k3s#5423 (journalctl -u k3s: a token that does not parse)
  snapshot-save-1.20.txt  k3s-io/k3s#2758 (v1.20: the CLI saves and logs the path)
  snapshot-save-1.30.txt  k3s-io/k3s#10513 (v1.30: the CLI asks the server and logs only the name)
"""

import json
from pathlib import Path

from ansible_collections.edgeclu.cluster.plugins.module_utils import k3s
from edgeclu.health.kube import parse_nodes
from edgeclu.lifecycle import backup
from edgeclu.lifecycle.kubectl import eviction_errors

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden"


def _read(name: str) -> str:
    return (GOLDEN / name).read_text()


def test_k3s_version():
    assert k3s.parse_version_output(_read("k3s/version.txt")) == "v1.30.6+k3s1"


def test_k3s_journal_fatal_line():
    assert k3s.journal_error(_read("k3s/journal-fatal.txt")) == (
        "starting kubernetes: preparing server: failed to normalize token; must be in format "
        "K10<CA-HASH>::<USERNAME>:<PASSWORD> or <PASSWORD>")


def test_k3s_snapshot_save_lines_old_and_new():
    assert backup.snapshot_path(_read("k3s/snapshot-save-1.20.txt")) == \
        "/var/lib/rancher/k3s/server/db/snapshots/snapshot1-1612980495"
    assert backup.snapshot_path(_read("k3s/snapshot-save-1.30.txt")) == \
        "/var/lib/rancher/k3s/server/db/snapshots/on-demand-ip-172-test1.us-east-2.compute.internal-1721316392"


def test_kubectl_drain_refused_by_a_budget_until_the_timeout():
    assert eviction_errors(_read("kubectl/drain-pdb-timeout.txt")) == ["default/db-0"]


def test_kubectl_drain_refusing_an_unmanaged_pod_names_no_eviction():
    text = _read("kubectl/drain-unmanaged.txt")
    assert eviction_errors(text) == []
    assert [line for line in text.splitlines() if line.startswith("error")][-1].startswith(
        'error: unable to drain node "node2"')  # what ClusterApi.drain shows when no pod explains it


def test_kubectl_get_nodes_json():
    nodes = parse_nodes(_read("kubectl/get-nodes.json"))
    assert {n: (k.ready, k.cordoned, k.roles, k.version) for n, k in nodes.items()} == {
        "node1": (True, False, ("control-plane", "master"), "v1.31.4+k3s1"),
        "node2": (True, False, (), "v1.31.4+k3s1")}
    assert k3s.nodes_not_ready(json.loads(_read("kubectl/get-nodes.json")), ["node1", "node2"]) == {}
