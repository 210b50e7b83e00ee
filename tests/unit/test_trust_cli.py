"""--trust sits beside --accept-new on every command, and a bad pin is one line, before any connection."""

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from edgeclu.cli import app

EXAMPLE = Path(__file__).resolve().parents[2] / "inventory.example.yml"


def _commands(group, prefix=()):
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, (*prefix, name))
        else:
            yield (*prefix, name), cmd


WITH_ACCEPT_NEW = [(p, c) for p, c in _commands(typer.main.get_command(app))
                   if any("--accept-new" in o.opts for o in c.params)]


def test_every_command_that_reaches_nodes_has_both():
    assert len(WITH_ACCEPT_NEW) >= 12


@pytest.mark.parametrize(("path", "cmd"), WITH_ACCEPT_NEW, ids=[" ".join(p) for p, _ in WITH_ACCEPT_NEW])
def test_trust_beside_accept_new(path, cmd):
    trust = next((o for o in cmd.params if "--trust" in o.opts), None)
    assert trust is not None and trust.multiple, f"edgeclu {' '.join(path)} has --accept-new but no --trust"


@pytest.mark.parametrize("args", [
    ["exec", "-i", str(EXAMPLE), "--trust", "pi-master", "--", "true"],
    ["preflight", "-i", str(EXAMPLE), "--trust", "pi-master=SHA256:short"],
    ["up", "-i", str(EXAMPLE), "--dry-run", "--trust", "pi-master=MD5:aa:bb"],
])
def test_a_bad_pin_is_one_line(args, tmp_path):
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 1
    assert r.stderr.startswith("error: --trust ") and "expected NAME=SHA256:" in r.stderr
    assert len(r.stderr.splitlines()) == 1


def test_a_pin_for_a_host_not_in_the_inventory_is_refused():
    r = CliRunner().invoke(app, ["exec", "-i", str(EXAMPLE), "--trust", "pi-9=SHA256:" + "a" * 43, "--", "true"])
    assert r.exit_code == 1 and "error: --trust pi-9: not one of the hosts (nuc1, pi-master, " in r.stderr
