"""The CLI imports only the module of the command being run (issue 10.5: a 20,000-host `inventory check` under
2 s, of which importing every command's dependencies was a third)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer

from edgeclu.cli import COMMANDS, build, command_named


@pytest.mark.parametrize("argv, expected", [
    (["up", "-i", "inventory.yml"], "up"),
    (["--version"], None),
    (["-h"], None),
    ([], None),
    (["inventory", "check", "x.yml"], "inventory"),
    (["--help", "health"], "health"),
])
def test_the_command_an_argument_list_runs(argv, expected):
    assert command_named(argv) == expected


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_alone_registers_that_command(name):
    group = typer.main.get_group(build(name))
    assert list(group.commands) == [name]


def test_a_mistyped_command_gets_the_whole_cli_and_its_suggestion():
    group = typer.main.get_group(build("upp"))
    assert set(group.commands) == set(COMMANDS)


def test_inventory_check_imports_neither_discovery_nor_the_lifecycle(tmp_path):
    inv = tmp_path / "inventory.yml"
    inv.write_text("k3s_cluster:\n  children:\n    server:\n      hosts:\n        s1: {ansible_host: 10.0.0.1}\n"
                   "  vars: {k3s_version: v1.31.4+k3s1}\n")
    code = ("import sys\nfrom edgeclu.cli import main\nsys.argv = ['edgeclu', 'inventory', 'check', sys.argv[1]]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(' '.join(sorted(m for m in sys.modules if m.startswith(('edgeclu', 'zeroconf', 'ansible')))))")
    out = subprocess.run([sys.executable, "-c", code, str(inv)], capture_output=True, text=True, check=True).stdout
    loaded = out.split()
    assert "edgeclu.cli.inventory_cmd" in loaded
    assert not [m for m in loaded if m.startswith(("edgeclu.cli.discover", "edgeclu.lifecycle", "zeroconf",
                                                    "ansible_runner", "edgeclu.health"))], loaded
