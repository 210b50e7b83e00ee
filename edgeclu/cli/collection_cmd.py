"""``edgeclu collection build``: the edgeclu.cluster Ansible collection as a tarball."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from edgeclu.cli._console import say

app = typer.Typer(help="The edgeclu.cluster Ansible collection (edgeclu's roles and playbooks).", no_args_is_help=True)


@app.command("build", epilog="Example: edgeclu collection build --output-path dist/")
def build(output_path: Annotated[Path, typer.Option(
        "--output-path", "-o", help="Directory the tarball goes to (made if missing).")] = Path(".")) -> None:
    """Build edgeclu-cluster-<version>.tar.gz with ansible-galaxy.

    Install it with `ansible-galaxy collection install <tarball> -p <dir>` and run
    `ANSIBLE_COLLECTIONS_PATH=<dir> ansible-playbook -i inventory.yml edgeclu.cluster.site`: the
    same playbook `edgeclu up` runs. Exit code: 0 built, 1 ansible-galaxy failed.
    """
    from edgeclu.collection import build as build_tarball

    say(f"built {escape(str(build_tarball(output_path)))}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="collection")
