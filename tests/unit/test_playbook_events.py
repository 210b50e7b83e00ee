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
