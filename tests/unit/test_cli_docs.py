"""Every CLI command has help, an example, and a place in the README."""

import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from edgeclu.cli import app

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _commands(group, prefix=()):
    for name, cmd in group.commands.items():
        path = (*prefix, name)
        if hasattr(cmd, "commands"):  # a group (typer vendors its own click)
            yield from _commands(cmd, path)
        else:
            yield path, cmd


COMMANDS = list(_commands(typer.main.get_command(app)))


def test_there_are_commands():
    assert {" ".join(p) for p, _ in COMMANDS} >= {"inventory check", "exec"}


@pytest.mark.parametrize(("path", "cmd"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_command_has_help_example_and_readme_entry(path, cmd):
    r = CliRunner().invoke(app, [*path, "--help"])
    assert r.exit_code == 0, r.output
    assert cmd.help and cmd.help.strip(), "no help text"
    assert cmd.epilog and "edgeclu " in cmd.epilog, "no Example epilog"
    assert f"edgeclu {' '.join(path)}" in README, "not documented in README.md"


def test_unknown_command_is_a_usage_error():
    r = CliRunner().invoke(app, ["frobnicate"])
    assert r.exit_code == 2 and "No such command" in r.output


def _layout_modules() -> set[str]:
    """The modules README's Layout names: the first column of its block, under each directory line."""
    block = README.split("\n## Layout\n", 1)[1].split("```")[1]
    stack: list[tuple[int, str]] = []
    found = set()
    for line in block.splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        names = re.split(r"\s{2,}", line.strip())[0].split()
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if names[0].endswith("/"):
            stack.append((indent, names[0]))
            found.add("".join(d for _, d in stack) + "__init__.py")
        found |= {"".join(d for _, d in stack) + n for n in names if n.endswith(".py")}
    return found


def test_the_readme_layout_names_every_module():
    package = Path(__file__).resolve().parents[2] / "edgeclu"
    modules = {f"edgeclu/{p.relative_to(package).as_posix()}" for p in package.rglob("*.py")
               if "__pycache__" not in p.parts}
    assert sorted(modules - _layout_modules()) == []
    assert sorted(m for m in _layout_modules() - modules if m.startswith("edgeclu/")) == []
