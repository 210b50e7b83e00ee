"""The summary in words (edgeclu.summary): each kind of change and failure, the outcome, the next step.

``look`` is what the k3s_node_state module answered before the run (its ``k3s_version_output`` is
``k3s --version``'s first line, as k3s prints it: ``k3s version v1.31.4+k3s1 (a1b2c3d4)``)."""

from pathlib import Path

import pytest

from edgeclu import phases as ph
from edgeclu import summary as sm
from edgeclu.playbook import HostRecap, PlaybookResult, TaskEvent

V1, V2 = "v1.31.4+k3s1", "v1.31.5+k3s1"
CTX = sm.Context("inv.yml", "lab", V2)


def ev(host, where, status="changed", action="ansible.builtin.raw", res=None, message=""):
    return TaskEvent(host, "t", status, message, role=where.split("/")[0], where=where, action=action,
                     res=res or {})


def look(host, role, version=None, service="k3s", active="inactive", enabled="disabled"):
    out = f"k3s version {version} (a1b2c3d4)\ngo version go1.22.9\n" if version else ""
    return ev(host, f"{role}/main.yml", "ok", "k3s_node_state",
              {"k3s_version_output": out, "services": {service: {"active": active, "enabled": enabled}}})


def summarize(events, roles=None, recap=None, ctx=CTX):
    roles = roles or {"s1": "server", "s2": "server", "a1": "agent"}
    b = ph.Board(ph.UP_PHASES, roles, first=next(iter(roles)))
    for i, e in enumerate(events):
        b.apply(e, float(i))
    hosts = {h: HostRecap() for h in roles} | (recap or {})
    b.finish(PlaybookResult("site.yml", 0, "x", hosts), 99.0)
    return {n.name: n for n in sm.summarize(b, ctx)}


FETCH = ("k3s_install/binary.yml", "changed", "k3s_fetch")
START = ("k3s_install/start.yml",)


@pytest.mark.parametrize(("host", "events", "words"), [
    ("s1", [look("s1", "k3s_install"), ev("s1", *FETCH), ev("s1", *START)],
     ["installed k3s v1.31.5+k3s1", "started the cluster (first server)"]),
    ("s2", [look("s2", "k3s_install"), ev("s2", *FETCH), ev("s2", *START)],
     ["installed k3s v1.31.5+k3s1", "joined as server"]),
    ("a1", [look("a1", "k3s_install", service="k3s-agent"), ev("a1", *FETCH), ev("a1", *START)],
     ["installed k3s v1.31.5+k3s1", "joined as agent"]),
    ("s1", [look("s1", "k3s_install", V1, active="active", enabled="enabled"), ev("s1", *FETCH), ev("s1", *START)],
     ["upgraded k3s v1.31.4+k3s1 → v1.31.5+k3s1", "restarted k3s: new version"]),
    ("a1", [look("a1", "k3s_install", V2, "k3s-agent", "active", "enabled"),
            ev("a1", "k3s_install/write.yml", action="edgeclu_files"), ev("a1", *START)],
     ["restarted k3s-agent: config changed"]),
    ("s1", [look("s1", "k3s_install", V2, active="failed", enabled="enabled"), ev("s1", *START)],
     ["started k3s (it was stopped)"]),
    ("s1", [look("s1", "k3s_install", V2, active="active", enabled="disabled"), ev("s1", *START)],
     ["enabled k3s at boot"]),
    ("s1", [look("s1", "k3s_install", V2, active="active", enabled="enabled"),
            ev("s1", "k3s_install/write.yml", action="edgeclu_files")],
     ["k3s scripts updated"]),
    ("a1", [ev("a1", "prereq/apply.yml", action="edgeclu_files")], ["kernel modules, sysctls and swap set for k3s"]),
    ("a1", [ev("a1", "raspberrypi/apply.yml", action="ansible.builtin.copy"),
            ev("a1", "raspberrypi/apply.yml", action="ansible.builtin.reboot")], ["memory cgroup enabled (rebooted)"]),
    ("a1", [ev("a1", "raspberrypi/apply.yml", action="ansible.builtin.systemd_service")], ["Pi swap file stopped"]),
    ("a1", [ev("a1", "addons/storage.yml", action="ansible.builtin.package")], ["storage prerequisites installed"]),
    ("s1", [ev("s1", "addons/manifests.yml", action="edgeclu_files",
               res={"paths": ["/var/lib/rancher/k3s/server/manifests",
                              "/var/lib/rancher/k3s/server/manifests/edgeclu-metallb.yaml"]})],
     ["add-on manifests written: edgeclu-metallb.yaml"]),
    ("s1", [ev("s1", "addons/manifests.yml", action="ansible.builtin.file")], ["add-ons no longer selected removed"]),
    ("a1", [look("a1", "edgeclu_agent", service="edgeclu-agent.service", active="active"),
            ev("a1", "edgeclu_agent/install.yml", action="edgeclu_files"), ev("a1", "edgeclu_agent/install.yml")],
     ["node agent updated"]),
    ("a1", [look("a1", "edgeclu_agent", service="edgeclu-agent.service"),
            ev("a1", "edgeclu_agent/install.yml", action="edgeclu_files"), ev("a1", "edgeclu_agent/install.yml")],
     ["node agent installed"]),
    ("a1", [look("a1", "edgeclu_agent", service="edgeclu-agent.service"), ev("a1", "edgeclu_agent/install.yml")],
     ["node agent started"]),
    ("a1", [ev("a1", "edgeclu_agent/install.yml", action="ansible.builtin.apt"),
            ev("a1", "edgeclu_agent/install.yml", action="edgeclu_files")],
     ["python3-psutil installed", "node agent installed"]),
    ("a1", [look("a1", "k3s_install", V2, "k3s-agent", "active", "enabled"),
            ev("a1", "k3s_install/main.yml", "ok", "ansible.builtin.set_fact")], []),
])
def test_each_kind_of_change_in_words(host, events, words):
    node = summarize(events)[host]
    assert node.changes == words
    assert node.status == ("changed" if words else "unchanged")
    assert sm.words_line(node) == ("; ".join(words) or "nothing to change")


@pytest.mark.parametrize(("host", "event", "at", "hint"), [
    ("a1", ev("a1", "k3s_install/start.yml", "failed", message="k3s-agent on a1 did not start: token is wrong"),
     "join agents", "`edgeclu exec -i inv.yml --limit a1 --sudo -- journalctl -u k3s-agent -n 50`"),
    ("s2", ev("s2", "k3s_install/start.yml", "failed", message="k3s on s2 did not start"),
     "start servers one by one", "journalctl -u k3s -n 50"),
    ("a1", ev("a1", "k3s_install/binary.yml", "failed", "k3s_fetch", message="sha256 mismatch"),
     "install k3s", "check k3s_version and k3s_mirror / k3s_airgap_dir in inv.yml"),
    ("a1", ev("a1", "k3s_server/ready.yml", "failed", message="a1 is not Ready: Ready=False: kubelet stopped"),
     "wait for Ready", "`kubectl --context lab describe node a1`"),
    ("a1", ev("a1", "edgeclu_agent/install.yml", "failed", message="no python3"),
     "node agent", "journalctl -u edgeclu-agent"),
    ("s1", ev("s1", "addons/manifests.yml", "failed", message="bad chart"),
     "add-ons", "check storage / ingress / loadbalancer in inv.yml"),
    ("a1", ev("a1", "prereq/main.yml", "unreachable", message="ssh: connect to host 10.0.0.3 port 22: No route"),
     "prepare nodes", "check that a1 is on and reachable over SSH (`edgeclu preflight -i inv.yml`)"),
])
def test_each_kind_of_failure_has_the_nodes_reason_and_what_to_try(host, event, at, hint):
    nodes = summarize([event], recap={host: HostRecap(failed=1)})
    node = nodes[host]
    assert node.status == event.status and node.phase == at
    assert node.reason == event.message
    assert hint in node.hint and "then run `edgeclu up -i inv.yml` again" in node.hint
    assert node.as_dict() == {"status": event.status, "changes": [], "failed_at": at, "reason": event.message,
                              "try": node.hint}
    assert {n.status for name, n in nodes.items() if name != host} == {"unchanged"}


def test_a_node_left_out_of_the_run_is_skipped():
    roles = {"s1": "server", "a1": "agent"}
    b = ph.Board(ph.UP_PHASES, roles, first="s1")
    b.apply(ph.Step("preflight", ph.SKIPPED, ("a1",)), 0.0)
    b.finish(PlaybookResult("site.yml", 0, "x", {"s1": HostRecap()}), 1.0)
    b.apply(ph.Step("preflight", ph.DONE), 1.0)
    nodes = {n.name: n for n in sm.summarize(b, CTX)}
    assert nodes["a1"].status == "skipped" and "again once it is reachable" in nodes["a1"].hint
    assert nodes["s1"].status == "unchanged"


def test_status_line():
    ok = [sm.NodeSummary("a", "changed", ["x"]), sm.NodeSummary("b", "unchanged")]
    assert sm.status_line(ok, 3) == "converged: 2 node(s), 3 change(s)"
    bad = [*ok, sm.NodeSummary("c", "failed", reason="r")]
    assert sm.status_line(bad, 3) == ("1 node(s) did not converge: c; the others converged (2 node(s), "
                                      "3 change(s))")
    assert sm.status_line([sm.NodeSummary("c", "unreachable")], 0) == "1 node(s) did not converge: c"


def test_next_steps_name_the_context_and_how_to_use_it():
    assert sm.next_steps(CTX, "/home/u/.kube/config", backup="/home/u/.kube/config.bak-1") == [
        "context 'lab' merged into /home/u/.kube/config (backup: /home/u/.kube/config.bak-1)",
        "kubectl --context lab get nodes", "edgeclu health -i inv.yml"]
    assert sm.next_steps(CTX, "/tmp/my kube", default=False)[1] == \
        "kubectl --kubeconfig '/tmp/my kube' --context lab get nodes"
    assert sm.next_steps(CTX, None) == ["edgeclu health -i inv.yml"]
    assert sm.next_steps(CTX, "/k", cluster_up=False) == ["context 'lab' merged into /k", "edgeclu health -i inv.yml"]


@pytest.mark.parametrize(("path", "env", "reads"), [
    ("/h/.kube/config", {}, True),
    ("/h/other", {}, False),
    ("/k/b", {"KUBECONFIG": "/k/a:/k/b"}, True),
    ("/h/.kube/config", {"KUBECONFIG": "/k/a"}, False),
])
def test_kubectl_reads(path, env, reads):
    assert sm.kubectl_reads(path, env, Path("/h")) is reads


def test_reset_in_words():
    roles = {"s1": "server", "a1": "agent"}
    b = ph.Board(ph.RESET_PHASES, roles, first="s1", locate=ph.locate_reset)
    b.apply(ph.Step("backup", ph.WORKING), 0.0)
    for i, e in enumerate([ev("s1", "reset.yml", "ok", "ansible.builtin.stat"),
                           ev("s1", "reset.yml", "changed", "ansible.builtin.command"),
                           ev("s1", "reset.yml", "changed", "ansible.builtin.systemd_service"),
                           ev("a1", "reset.yml", "ok", "ansible.builtin.stat")], 1):
        b.apply(e, float(i))
    b.finish(PlaybookResult("reset.yml", 0, "x", {h: HostRecap() for h in roles}), 9.0)
    assert b.cell("s1", "backup").state == "done"
    nodes = {n.name: n for n in sm.summarize(b, CTX)}
    assert nodes["s1"].changes == ["k3s uninstalled", "node agent removed"]
    assert sm.words_line(nodes["a1"]) == "nothing to change"
