"""The roles' inputs, read from their own ``meta/argument_specs.yml`` (Ansible's role argument validation).

Every role of the collection (``ansible_collections/edgeclu/cluster/roles``) declares each variable it
reads from outside (the inventory, the command line) in ``meta/argument_specs.yml``: its type, elements,
choices, default and what it is for.
Ansible checks them before the role's first task (a ``validate_argument_spec`` task it adds itself, per
entry point: ``main``, or the ``tasks_from`` file's name). edgeclu reads the same files, so that

* ``edgeclu inventory check`` knows every key a role reads, its type and its default
  (:mod:`edgeclu.inventory`), and a role's knob (``k3s_start_timeout``) is legal in the inventory;
* each role's ``defaults/main.yml`` is generated from its spec: Ansible takes a role's defaults from
  ``defaults/main.yml`` only, never from the spec. After changing a spec, run
  ``python -m edgeclu.rolespecs --write``; a unit test fails while a defaults file is out of date.

An input several roles read (``storage``, ``disable_swap``, ...) is declared by each of them, the same way
(each role stays self-describing for ``ansible-doc``); :func:`options` refuses two declarations that differ.
Variables a role hands to another (``prereq_state``, ``k3s_plan``: registered facts) are not inputs.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import yaml

from edgeclu.errors import EdgecluError

SPEC_FILE = Path("meta") / "argument_specs.yml"
DEFAULTS_FILE = Path("defaults") / "main.yml"
#: what an option's definition may hold that matters to a value (description and the like do not)
_MEANING = ("type", "elements", "choices", "default", "required", "no_log")
_HEADER = ("---\n# Generated from meta/argument_specs.yml by `python -m edgeclu.rolespecs --write`: edit the spec,\n"
           "# not this file (Ansible takes a role's defaults from here, never from its argument spec).\n")


def roles_dir() -> Path:
    from edgeclu.resources import collection_dir

    return collection_dir() / "roles"


def _load(path: Path) -> dict:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data = yaml.load(path.read_text(), Loader=loader)  # noqa: S506 - a safe loader; edgeclu's own files
    specs = (data or {}).get("argument_specs")
    if not isinstance(specs, dict):
        raise EdgecluError(f"{path}: no argument_specs mapping")
    return specs


def meaning(spec: dict) -> dict:
    """The parts of an option's definition that decide which values it takes, and its default."""
    return {k: spec[k] for k in _MEANING if k in spec}


@functools.cache
def role_options(root: Path | None = None) -> dict[str, dict[str, dict]]:
    """``{role: {option: definition}}`` over every entry point of each role's spec, in file order. An option
    of two entry points of one role must be defined the same way in both."""
    root = root or roles_dir()
    out: dict[str, dict[str, dict]] = {}
    for path in sorted(root.glob(f"*/{SPEC_FILE}")):
        role = path.parent.parent.name
        opts: dict[str, dict] = {}
        for entry, spec in _load(path).items():
            for name, definition in ((spec or {}).get("options") or {}).items():
                if name in opts and meaning(opts[name]) != meaning(definition):
                    raise EdgecluError(f"{path}: option {name!r} of entry point {entry!r} differs from an earlier one")
                opts.setdefault(name, definition)
        out[role] = opts
    return out


@functools.cache
def options(root: Path | None = None) -> dict[str, dict]:
    """``{option: definition}`` over all roles; :class:`EdgecluError` when two roles define one differently."""
    merged: dict[str, dict] = {}
    owner: dict[str, str] = {}
    for role, opts in role_options(root).items():
        for name, definition in opts.items():
            if name in merged and meaning(merged[name]) != meaning(definition):
                raise EdgecluError(f"roles {owner[name]!r} and {role!r} define input {name!r} differently: "
                                   f"{meaning(merged[name])} / {meaning(definition)}")
            merged.setdefault(name, definition)
            owner.setdefault(name, role)
    return merged


def defaults(root: Path | None = None) -> dict[str, Any]:
    """Every input's default, as the roles have it."""
    return {name: d["default"] for name, d in options(root).items() if d.get("default") is not None}


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:  # noqa: ARG002
        super().increase_indent(flow, False)  # list items indented under their key, as yamllint wants


def role_defaults(role: str, root: Path | None = None) -> dict[str, Any]:
    """One role's inputs' defaults."""
    return {name: d["default"] for name, d in role_options(root)[role].items() if d.get("default") is not None}


def defaults_text(role: str, root: Path | None = None) -> str:
    """The ``defaults/main.yml`` that ``role``'s spec gives."""
    values = role_defaults(role, root)
    body = yaml.dump(values, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120) if values else ""
    return _HEADER + body


def stale_defaults(root: Path | None = None) -> list[Path]:
    """The roles' ``defaults/main.yml`` files that differ from what their specs give."""
    root = root or roles_dir()
    return [root / role / DEFAULTS_FILE for role in role_options(root)
            if not (root / role / DEFAULTS_FILE).is_file()
            or (root / role / DEFAULTS_FILE).read_text() != defaults_text(role, root)]


def main(argv: list[str]) -> int:
    """``--write``: regenerate every role's defaults/main.yml from its spec; ``--check`` (the default):
    exit 1 naming the files that are out of date."""
    root = roles_dir()
    stale = stale_defaults(root)
    if "--write" in argv:
        for path in stale:
            path.parent.mkdir(exist_ok=True)
            path.write_text(defaults_text(path.parent.parent.name, root))
            print(f"wrote {path}")
        return 0
    for path in stale:
        print(f"{path}: out of date with ../meta/argument_specs.yml (python -m edgeclu.rolespecs --write)",
              file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
