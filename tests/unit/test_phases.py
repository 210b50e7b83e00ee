"""The phase model: task events in, per-node phase states out (edgeclu.phases), and the live view drawn
from it (edgeclu.cli._progress.render_board). The events are shaped as edgeclu.playbook makes them from
ansible-runner's (role, tasks file from task_path, resolved_action), as recorded from a lab run."""

import pytest
from rich.console import Console

from edgeclu import phases as ph
from edgeclu.cli._progress import render_board
from edgeclu.playbook import HostRecap, PlaybookResult, TaskEvent, event_to_task_event, task_file


def ev(host, status, where, action="ansible.builtin.raw", task="a task", message="", res=None, ignored=False):
    role = where.split("/")[0] if "/" in where else ""
    return TaskEvent(host, task, status, message, ignored, role=role, where=where, action=action, res=res or {})


def run(host, where, status="ok", **kw):
    """A task as the runner reports it: started, then its outcome."""
    return [ev(host, "started", where, **kw), ev(host, status, where, **kw)]


def board(**roles):
    return ph.Board(ph.UP_PHASES, roles or {"n1": "server", "n2": "agent"}, first=next(iter(roles or {"n1": 0})))


def feed(b, events):
    for i, e in enumerate(events):
        b.apply(e, float(i))
    return b


def states(b):
    return {h: {k: c.state for k, c in row.items()} for h, row in b.cells.items()}


def result(**hosts):
    return PlaybookResult("site.yml", 0 if all(h.healthy for h in hosts.values()) else 2, "x", hosts)


# -- where a task belongs -------------------------------------------------------------------------
@pytest.mark.parametrize(("role", "where", "host_role", "phase"), [
    ("prereq", "prereq/apply.yml", "agent", "prepare"),
    ("raspberrypi", "raspberrypi/apply.yml", "server", "prepare"),
    ("k3s_install", "k3s_install/token_create.yml", "server", "install"),
    ("k3s_install", "k3s_install/binary.yml", "agent", "install"),
    ("k3s_server", "k3s_server/start.yml", "server", "servers"),  # the include_role task itself
    ("k3s_install", "k3s_install/start.yml", "server", "servers"),
    ("k3s_install", "k3s_install/start.yml", "agent", "agents"),  # the same file, on an agent
    ("k3s_agent", "k3s_agent/start.yml", "agent", "agents"),
    ("k3s_server", "k3s_server/ready.yml", "agent", "ready"),
    ("addons", "addons/manifests.yml", "server", "addons"),
    ("edgeclu_agent", "edgeclu_agent/install.yml", "agent", "agent"),
    ("", "site.yml", "agent", None),
    ("k3s_server", "site.yml", "server", None),  # a role's input check starting (no entry point named yet)
])
def test_a_task_is_placed_by_its_role_and_file_not_its_name(role, where, host_role, phase):
    e = TaskEvent("n1", "Fail with k3s's own message", "ok", role=role, where=where)
    assert ph.locate_site(e, host_role) == phase


@pytest.mark.parametrize(("path", "where"), [
    ("/x/ansible_collections/edgeclu/cluster/roles/k3s_install/tasks/start.yml:12", "k3s_install/start.yml"),
    ("/x/cluster/roles/addons/tasks/main.yml:4", "addons/main.yml"),
    ("/x/ansible_collections/edgeclu/cluster/playbooks/reset.yml:20", "reset.yml"),
    ("", ""),
])
def test_task_file(path, where):
    assert task_file(path) == where


def test_runner_events_carry_where_the_task_is_and_censored_changes_count():
    data = {"host": "n1", "task": "Write config.yaml", "role": "k3s_install", "resolved_action": "edgeclu_files",
            "task_path": "/p/roles/k3s_install/tasks/write.yml:3", "res": {"censored": "hidden"}}
    te = event_to_task_event({"event": "runner_on_ok", "event_data": data, "stdout": "changed: [n1]"})
    assert (te.status, te.role, te.where, te.action) == ("changed", "k3s_install", "k3s_install/write.yml",
                                                         "edgeclu_files")
    te = event_to_task_event({"event": "runner_on_ok", "event_data": data, "stdout": "ok: [n1]"})
    assert te.status == "ok"


# -- states ----------------------------------------------------------------------------------------
def test_a_first_run_server_and_agent():
    b = board()
    b.apply(ph.Step("preflight", ph.WORKING), 0.0)
    events = [
        *run("n1", "prereq/apply.yml", "changed"), *run("n2", "prereq/apply.yml", "changed"),
        *run("n1", "k3s_install/binary.yml", "changed", action="k3s_fetch"),
        *run("n2", "k3s_install/binary.yml", "changed", action="k3s_fetch"),
        *run("n1", "k3s_install/start.yml", "changed"), *run("n1", "k3s_install/start.yml", "skipped"),
        *run("n2", "k3s_install/start.yml", "changed"),
        *run("n1", "k3s_server/ready.yml"), *run("n2", "k3s_server/ready.yml", "skipped"),
        *run("n1", "addons/manifests.yml", "changed", action="edgeclu_files"),
        *run("n2", "addons/main.yml", "skipped"),
        *run("n1", "edgeclu_agent/install.yml", "changed"), *run("n2", "edgeclu_agent/install.yml", "changed"),
    ]
    feed(b, events)
    assert b.cell("n1", "agent").state == ph.WORKING  # until the run is over
    b.finish(result(n1=HostRecap(changed=5), n2=HostRecap(changed=4)), 99.0)
    b.apply(ph.Step("kubeconfig", ph.CHANGED), 100.0)
    assert states(b) == {
        "n1": {"preflight": "done", "prepare": "changed", "install": "changed", "servers": "changed",
               "ready": "done", "addons": "changed", "agent": "changed", "kubeconfig": "changed"},
        "n2": {"preflight": "done", "prepare": "changed", "install": "changed", "agents": "changed",
               "ready": "done", "addons": "done", "agent": "changed"},
    }
    assert b.phase_state("servers") == "changed" and b.progress("agents") == (1, 1)


def test_a_phase_a_node_has_no_task_in_is_done_when_the_node_moves_on():
    b = feed(board(), [*run("n2", "prereq/apply.yml"), *run("n2", "edgeclu_agent/main.yml")])
    assert states(b)["n2"] == {"preflight": "done", "prepare": "done", "install": "done", "agents": "done",
                               "ready": "done", "addons": "done", "agent": "working"}
    assert states(b)["n1"]["prepare"] == "waiting"  # not reached by the playbook (yet): left as it is


def test_the_servers_phase_is_over_for_every_node_once_agents_join():
    """Agents are not in the servers' play: their first task there ends the servers' start for all."""
    b = feed(board(), [*run("n1", "prereq/main.yml"), *run("n2", "prereq/main.yml"),
                       *run("n1", "k3s_install/start.yml", "changed")])
    assert b.cell("n1", "servers").state == "working"
    feed(b, [ev("n2", "started", "k3s_agent/start.yml")])
    assert b.cell("n1", "servers").state == "changed" and b.cell("n2", "agents").state == "working"
    assert b.cell("n1", "ready").state == "waiting"


def test_a_failure_fails_its_phase_and_skips_the_rest_with_the_reason():
    reason = "k3s-agent on n2 did not start: level=fatal msg=\"token is wrong\""
    b = feed(board(), [*run("n2", "k3s_install/start.yml", "changed"),
                       ev("n2", "started", "k3s_install/start.yml"),
                       ev("n2", "failed", "k3s_install/start.yml", message=reason)])
    b.finish(result(n1=HostRecap(), n2=HostRecap(failed=1, failures=[f"x: {reason}"])), 9.0)
    assert states(b)["n2"] == {"preflight": "done", "prepare": "done", "install": "done", "agents": "failed",
                               "ready": "skipped", "addons": "skipped", "agent": "skipped"}
    assert b.failed("n2")[0] == "agents" and b.failed("n2")[1].reason == reason
    assert b.phase_state("agents") == "failed"


def test_unreachable_mid_run():
    b = feed(board(), [*run("n2", "prereq/main.yml"),
                       ev("n2", "unreachable", "k3s_install/main.yml", message="ssh: connect to host: No route")])
    assert states(b)["n2"]["install"] == "unreachable"
    assert {s for k, s in states(b)["n2"].items() if k not in ("preflight", "prepare", "install")} == {"skipped"}


def test_an_ignored_failure_is_not_a_failure():
    b = feed(board(), [ev("n1", "failed", "k3s_install/token_create.yml", message="no file", ignored=True)])
    assert b.cell("n1", "install").state == "working" and b.failed("n1") is None


def test_a_node_the_playbook_never_reached_is_skipped():
    b = feed(board(), [*run("n1", "prereq/main.yml")])
    b.finish(result(n1=HostRecap()), 5.0)
    assert {k: s for k, s in states(b)["n2"].items() if k != "preflight"} == {
        k: "skipped" for k in ("prepare", "install", "agents", "ready", "addons", "agent")}


def test_a_failure_only_in_the_recap_fails_where_the_node_stood():
    b = feed(board(), [*run("n2", "k3s_install/main.yml")])
    b.finish(result(n1=HostRecap(), n2=HostRecap(unreachable=1, failures=["gone"])), 5.0)
    assert states(b)["n2"]["install"] == "unreachable" and states(b)["n2"]["agent"] == "skipped"
    assert b.failed("n2")[1].reason == "gone"


def test_a_task_outside_the_phases_belongs_to_the_current_one():
    b = feed(board(), [*run("n1", "k3s_install/main.yml"), ev("n1", "failed", "site.yml", message="boom")])
    assert b.cell("n1", "install").state == "failed"


def test_nothing_to_change_closes_every_phase_done():
    b = board()
    b.apply(ph.Step("preflight", ph.WORKING), 0.0)
    b.apply(ph.Step("preflight", ph.DONE), 1.0)
    b.finish(result(n1=HostRecap(), n2=HostRecap()), 2.0)
    assert {s for row in states(b).values() for k, s in row.items() if k != "kubeconfig"} == {"done"}


def test_phase_time_and_bar():
    b = board()
    b.apply(ev("n1", "started", "prereq/main.yml"), 10.0)
    b.apply(ev("n2", "started", "prereq/main.yml"), 11.0)
    assert b.phase_span("prepare", 14.0) == 4.0
    assert b.progress("prepare") == (0, 2) and ph.bar(1, 2) == "█████░░░░░"
    b.apply(ev("n1", "started", "k3s_install/main.yml"), 15.0)
    # Ansible's linear strategy: n1 at the next phase's first task means n2 is done with this one too
    assert b.progress("prepare") == (2, 2) and b.cell("n2", "prepare").state == "done"
    assert b.phase_span("prepare", 30.0) == 5.0  # over: from the first start to the last end


def test_the_live_view_shows_phases_and_states_never_a_task_name():
    b = board()
    feed(b, [*run("n1", "prereq/apply.yml", "changed", task="Write the module and sysctl files"),
             ev("n1", "started", "k3s_install/start.yml", task="Fail with k3s's own message"),
             ev("n1", "skipped", "k3s_install/start.yml", task="Fail with k3s's own message")])
    console = Console(record=True, width=160)
    console.print(render_board(b, "edgeclu up", 5.0, 0.0))
    text = console.export_text()
    assert "Fail with" not in text and "Write the module" not in text
    row = next(line for line in text.splitlines() if "start servers one by one" in line)
    assert "working" in row and "0/1" in row
    assert "changed" in next(line for line in text.splitlines() if "prepare nodes" in line)


def test_a_failure_reason_from_a_node_reaches_the_terminal_as_plain_text(monkeypatch):
    import io

    from edgeclu.cli import _progress
    from edgeclu.summary import NodeSummary

    buf = io.StringIO()
    monkeypatch.setattr(_progress, "err", Console(file=buf, force_terminal=True, width=200))
    reason = "k3s did not start: \x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\ [bold red]fake[/] \x1b[2J"
    _progress.print_summary([NodeSummary("n1", "failed", [], "join agents", reason, "try this")],
                            "1 node(s) did not converge: n1", ["edgeclu health -i inv.yml"])
    text = buf.getvalue()
    assert "evil.example" not in text and "\x1b]8" not in text and "\x1b[2J" not in text
    assert "[bold red]fake[/]" in text  # shown as it came, not taken as markup


def test_upgrade_steps_a_stopped_upgrade_shows_what_failed_what_was_done_and_what_is_left():
    # the order lifecycle/upgrade.py feeds: node1 (server) done, node3 fails at its install, node5 never starts
    b = ph.Board(ph.UPGRADE_PHASES, {"node1": "server", "node3": "agent", "node5": "agent"}, first="node1")
    steps = [("drain", ph.WORKING, ("node1",)), ("drain", ph.CHANGED, ("node1",)),
             ("install", ph.WORKING, ("node1",)), ("install", ph.CHANGED, ("node1",)),
             ("uncordon", ph.CHANGED, ("node1",)), ("ready", ph.WORKING, ("node1",)), ("ready", ph.DONE, ("node1",)),
             ("drain", ph.WORKING, ("node3",)), ("drain", ph.CHANGED, ("node3",)),
             ("install", ph.WORKING, ("node3",))]
    for t, (phase, state, hosts) in enumerate(steps):
        b.apply(ph.Step(phase, state, hosts), float(t))
    assert b.cell("node3", "install").state == ph.WORKING and b.phase_state("install") == ph.WORKING
    b.apply(ph.Step("install", ph.FAILED, ("node3",), "k3s-agent on node3 did not start"), 20.0)
    for phase in ph.UPGRADE_PHASES:  # the stop: every step still waiting, on any node
        b.apply(ph.Step(phase.key, ph.SKIPPED, None, "the upgrade stopped first"), 21.0)
    assert {n: [c.state for c in row.values()] for n, row in b.cells.items()} == {
        "node1": [ph.CHANGED, ph.CHANGED, ph.CHANGED, ph.DONE],
        "node3": [ph.CHANGED, ph.FAILED, ph.SKIPPED, ph.SKIPPED],
        "node5": [ph.SKIPPED] * 4,
    }
    assert b.failed("node3")[1].reason == "k3s-agent on node3 did not start"
    assert b.progress("install") == (3, 3) and b.phase_state("install") == ph.FAILED
