"""`edgeclu up --dry-run` shows what would change in the files edgeclu writes: Ansible's diffs (from
edgeclu_files with --diff, secret values masked on the node) collected per host from the events and printed
as unified diffs, the node's text escaped."""

from pathlib import Path

from typer.testing import CliRunner

import edgeclu.cli.up as up_cli
from edgeclu import summary
from edgeclu.cli import app
from edgeclu.converge import Outcome
from edgeclu.playbook import HostRecap, PlaybookResult, diffs_of, event_to_task_event

EXAMPLE = Path(__file__).resolve().parents[2] / "inventory.example.yml"
CONF = "/etc/rancher/k3s/config.yaml"
TEXT = {"before_header": CONF, "after_header": CONF, "before": "node-ip: 10.0.0.1\ntoken: <secret>\n",
        "after": "node-ip: 10.0.0.2\ntoken: <secret, changed>\n"}
ATTRS = {"before_header": CONF, "after_header": CONF,
         "before": {"path": CONF, "state": "file", "mode": "0644", "owner": "root", "group": "root"},
         "after": {"path": CONF, "state": "file", "mode": "0600", "owner": "root", "group": "root"}}


def test_diffs_of_a_result_one_or_a_list_or_per_item():
    assert diffs_of({"diff": TEXT}) == [TEXT]
    assert diffs_of({"diff": [ATTRS, TEXT]}) == [ATTRS, TEXT]
    assert diffs_of({"results": [{"diff": {"before": "a", "after": "b"}}, {"diff": {}}]}) == [
        {"before": "a", "after": "b"}]
    assert diffs_of({"changed": True}) == []


def test_diff_lines_unified_per_file_and_attributes_in_one_line():
    lines = summary.diff_lines([ATTRS, TEXT, {"before_header": "/z", "after_header": "/z", "src_binary": 1}])
    assert lines == [f"{CONF}: mode 0644 -> 0600",
                     f"--- {CONF} (now)", f"+++ {CONF} (would be)", "@@ -1,2 +1,2 @@",
                     "-node-ip: 10.0.0.1", "-token: <secret>", "+node-ip: 10.0.0.2", "+token: <secret, changed>",
                     "/z: content not shown (binary)"]


def test_the_changed_events_diffs_reach_the_host_recap():
    event = {"event": "runner_on_ok", "event_data": {"host": "n1", "task": "Write", "res": {
        "changed": True, "diff": [TEXT]}}}
    te = event_to_task_event(event)
    assert te.status == "changed" and diffs_of(te.res) == [TEXT]


def test_up_dry_run_prints_the_diffs_with_the_nodes_text_escaped(monkeypatch):
    hostile = dict(TEXT, before="node-ip: \x1b]8;;http://evil\x07x\x1b]8;;\x07 [bold]1[/bold]\n")
    recap = HostRecap(changed=1, changed_tasks=["Write the k3s files"], diffs=[ATTRS, hostile])
    monkeypatch.setattr(up_cli, "cluster_for", lambda *a, **k: None)
    monkeypatch.setattr(up_cli, "converge", lambda *a, **k: Outcome(PlaybookResult(
        "site.yml", 0, "successful", {"pi-master": recap})))
    r = CliRunner().invoke(app, ["up", "-i", str(EXAMPLE), "--dry-run"])
    assert r.exit_code == 0, r.output
    assert "pi-master: 1 change(s)" in r.stdout and "  ~ Write the k3s files" in r.stdout
    assert f"    {CONF}: mode 0644 -> 0600" in r.stdout
    assert "    -node-ip: x [bold]1[/bold]" in r.stdout and "    +token: <secret, changed>" in r.stdout
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout
