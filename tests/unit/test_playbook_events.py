import pytest

from edgeclu.playbook import TaskEvent, event_to_task_event, ssh_args


def ev(name, **data):
    return {"event": name, "event_data": {"host": "n1", "task": "Install k3s", **data}}


@pytest.mark.parametrize(("event", "expected"), [
    (ev("runner_on_start"), TaskEvent("n1", "Install k3s", "started")),
    (ev("runner_on_ok", res={"changed": False}), TaskEvent("n1", "Install k3s", "ok")),
    (ev("runner_on_ok", res={"changed": True}), TaskEvent("n1", "Install k3s", "changed")),
    (ev("runner_on_skipped"), TaskEvent("n1", "Install k3s", "skipped")),
    (ev("runner_on_failed", res={"msg": "non-zero return code", "stderr": "x\nsha256 mismatch"}),
     TaskEvent("n1", "Install k3s", "failed", "non-zero return code: sha256 mismatch")),
    (ev("runner_on_failed", res={"censored": "the output has been hidden", "msg": "secret"}),
     TaskEvent("n1", "Install k3s", "failed", "failed (output hidden: no_log)")),
    (ev("runner_on_failed", res={"msg": "boom"}, ignore_errors=True),
     TaskEvent("n1", "Install k3s", "failed", "boom", ignored=True)),
    (ev("runner_on_unreachable", res={"msg": "Failed to connect:\r\nssh: connect to host 10.0.0.2 port 22: "
                                             "No route to host"}),
     TaskEvent("n1", "Install k3s", "unreachable", "ssh: connect to host 10.0.0.2 port 22: No route to host")),
    ({"event": "playbook_on_stats", "event_data": {}}, None),
    ({"event": "verbose", "stdout": "x"}, None),
])
def test_event_reduction(event, expected):
    assert event_to_task_event(event) == expected


def test_ssh_args_are_strict_unless_accept_new(tmp_path):
    kh = tmp_path / "known hosts"
    strict = ssh_args(kh)
    assert f"-o UserKnownHostsFile='{kh}'" in strict and "StrictHostKeyChecking=yes" in strict
    assert "StrictHostKeyChecking=accept-new" in ssh_args(kh, accept_new=True)


# -- a run that did not reach its end ---------------------------------------------------
from edgeclu.playbook import HostRecap, PlaybookResult, apply_stats, stopped_message  # noqa: E402

STATS = {"ok": {"n1": 5, "n2": 3}, "changed": {"n1": 2}, "failures": {}, "dark": {}, "skipped": {"n2": 1},
         "processed": {"n1": 1, "n2": 1}}


def _recaps(stats, status, started=("n1", "n2", "n3")):
    hosts = {h: HostRecap() for h in started}  # what the events created: a start event each
    apply_stats(hosts, stats, status)
    return PlaybookResult("site.yml", 0 if status == "successful" else 254, status, hosts)


@pytest.mark.parametrize(("stats", "status", "healthy"), [
    (STATS, "successful", {"n1": True, "n2": True, "n3": False}),  # n3 only ever started a task
    (STATS, "canceled", {"n1": False, "n2": False, "n3": False}),  # ansible-runner: rc 254, status canceled
    (STATS, "timeout", {"n1": False, "n2": False, "n3": False}),
    (None, "canceled", {"n1": False, "n2": False, "n3": False}),  # stopped before any recap
    (None, "failed", {"n1": False, "n2": False, "n3": False}),
])
def test_a_host_is_healthy_only_if_the_play_finished_on_it(stats, status, healthy):
    result = _recaps(stats, status)
    assert {h: r.healthy for h, r in result.hosts.items()} == healthy
    assert not result.ok or all(healthy.values())
    for h, ok in healthy.items():
        if not ok:
            assert result.hosts[h].failures[-1] in ("the playbook was stopped before it finished",
                                                    "the playbook timed out before it finished",
                                                    "the playbook did not finish on it")


def test_counts_come_from_the_recap():
    result = _recaps(STATS, "successful")
    assert (result.hosts["n1"].ok, result.hosts["n1"].changed, result.hosts["n2"].skipped) == (5, 2, 1)


def test_the_stop_message_says_what_may_be_half_done_and_that_a_rerun_resumes():
    msg = stopped_message("site.yml", "interrupted by SIGINT (Ctrl-C)",
                          {"n1": "Start the k3s servers", "n2": "Start the k3s servers", "n3": "Wait"})
    assert msg == ("interrupted by SIGINT (Ctrl-C): stopped site.yml and every process it started; it was running "
                   "'Start the k3s servers' on n1, n2; 'Wait' on n3: that step may be half-done there. Nothing "
                   "after it ran and no node was marked converged. Run the same command again: it resumes from "
                   "what the nodes have")
    assert "no task was running on a node" in stopped_message("reset.yml", "x", {})


def test_failures_of_names_why_each_host_did_not_converge_in_the_order_asked():
    result = _recaps(STATS, "successful")
    result.hosts["n2"] = HostRecap(failed=1, failures=["k3s-agent on n2 did not start", "second", "third"])
    assert result.failures_of(["n4", "n2", "n1", "n3"]) == {
        "n4": "the playbook did not finish on it",  # never reached
        "n2": "k3s-agent on n2 did not start; second",
        "n3": "the playbook did not finish on it",  # only ever started a task
    }
    assert result.failures_of(["n1"]) == {}


def test_the_check_of_a_roles_inputs_is_placed_at_its_entry_point():
    # Ansible's validate_argument_spec task prepended to a role: its task_path is the play's line, its result
    # names the entry point (as ansible-core 2.19 reports it through ansible-runner)
    context = {"type": "role", "name": "k3s_server", "argument_spec_name": "ready", "path": "/x/roles/k3s_server"}
    data = {"role": "k3s_server", "task_path": "/x/playbooks/site.yml:46",
            "resolved_action": "ansible.builtin.validate_argument_spec"}
    assert event_to_task_event(ev("runner_on_start", **data)).where == "site.yml"
    done = event_to_task_event(ev("runner_on_ok", res={"changed": False, "validate_args_context": context}, **data))
    assert (done.status, done.role, done.where) == ("ok", "k3s_server", "k3s_server/ready.yml")
