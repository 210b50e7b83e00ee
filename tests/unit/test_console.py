"""Remote text is data: what nodes, agents and mDNS say is shown as text, never as markup or terminal control."""

import io

import pytest
from rich.console import Console
from typer.testing import CliRunner

from edgeclu.cli import _console, app
from edgeclu.cli._progress import print_recap
from edgeclu.cli.discover import table
from edgeclu.cli.health import render
from edgeclu.discovery import EDGECLU, Sighting, merge
from edgeclu.errors import EdgecluError
from edgeclu.health import report
from edgeclu.health.thresholds import Thresholds
from edgeclu.playbook import HostRecap, PlaybookResult

HYPERLINK = "\x1b]8;;https://evil.example/\x1b\\click me\x1b]8;;\x1b\\"


@pytest.mark.parametrize(("raw", "shown"), [
    ("cannot open [/etc/x]", "cannot open [/etc/x]"),
    (HYPERLINK, "click me"),
    ("\x1b]8;;https://evil.example/\x07bell-terminated\x1b]8;;\x07", "bell-terminated"),
    ("\x1b[31mred\x1b[0m \x1b[2J\x1b[Hcleared", "red cleared"),
    ("\x9b31mC1 CSI", "C1 CSI"),
    ("progress\r\x08\x08overwritten\x07", "progressoverwritten"),
    ("tab\tand\nnewline stay", "tab\tand\nnewline stay"),
    ("abc\u202edcba\u2066x\u2069\u200b", "abcdcbax"),  # bidi override, isolate, zero-width space
    ("\x1b", ""),
    (42, "42"),
])
def test_plain(raw, shown):
    assert _console.plain(raw) == shown


def _rendered(renderable) -> str:
    console = Console(file=io.StringIO(), width=1000, color_system=None)
    console.print(renderable)
    return console.file.getvalue()


def _captured(fn) -> str:
    with _console.err.capture() as cap:
        fn()
    return cap.get()


def test_a_failure_message_with_brackets_is_printed_not_parsed():
    result = PlaybookResult("site.yml", 2, "failed", {"node1": HostRecap(failed=1, failures=[
        "k3s: cannot stat [/etc/x]: no such file", f"unit: {HYPERLINK} [bold]loud[/bold]"])})
    shown = _captured(lambda: print_recap(result))  # raised rich.errors.MarkupError before
    assert "cannot stat [/etc/x]: no such file" in shown
    assert "unit: click me [bold]loud[/bold]" in shown
    assert "\x1b" not in shown


def test_tell_prints_external_text_as_it_is():
    assert _captured(lambda: _console.tell(f"node1: [/etc/x] {HYPERLINK}")) == "node1: [/etc/x] click me\n"


def test_say_keeps_our_markup_and_safe_escapes_theirs():
    shown = _captured(lambda: _console.say(f"[red]x[/]: {_console.safe('[/etc/x] [link=https://e]y[/link]')}"))
    assert shown == "x: [/etc/x] [link=https://e]y[/link]\n"


def test_txt_cannot_inject_markup_or_escapes_into_the_discover_table():
    txt = {"hostname": "pi-1", "arch": "aarch64", "model": f"Pi {HYPERLINK}", "ram": "1024",
           "agent": "[link=https://evil.example/]0.1[/link]", "role": "[/]", "ssh_fp": "\x1b[2Jfp"}
    hosts = merge([Sighting(EDGECLU, f"pi-1.{EDGECLU}", "pi-1.local.", ("10.0.0.1",), 9101, txt)])
    shown = _rendered(table(hosts, []))
    assert "\x1b" not in shown
    assert "Pi click me" in shown and "[link=https://evil.example/]0.1[/link]" in shown and "[/]" in shown


def test_agent_text_in_the_health_table_is_plain():
    node = report.NodeReport("node1", "agent", "10.0.0.1", "down", None, None, error=f"agent said {HYPERLINK} [/x]")
    rep = report.Report([node], [], None, Thresholds())
    shown = _rendered(render(rep))
    assert "\x1b" not in shown and "agent said click me [/x]" in shown


def test_an_error_line_loses_its_control_characters(monkeypatch):
    from edgeclu.cli import inventory_cmd

    def boom(path):
        raise EdgecluError(f"node1: stderr: {HYPERLINK}\x1b[2J")
    monkeypatch.setattr(inventory_cmd, "load_inventory", boom)
    r = CliRunner().invoke(app, ["inventory", "check", "x.yml"])
    assert r.exit_code == 1 and r.stderr == "error: node1: stderr: click me\n"
