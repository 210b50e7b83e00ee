"""``edgeclu collection build``: the edgeclu.cluster collection as a tarball, for ``ansible-galaxy collection install``.

The tarball is what ``ansible-galaxy collection build`` makes of edgeclu's own copy of the collection
(:func:`edgeclu.resources.collection_dir`): ``edgeclu-cluster-<version>.tar.gz``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from edgeclu.errors import EdgecluError
from edgeclu.playbook import SECRET_SAFE_ENV, path_with_ansible
from edgeclu.resources import collection_dir


def build(output_dir: Path) -> Path:
    """Build the tarball into ``output_dir`` (made if missing; an older tarball of the same version is
    replaced) and return its path."""
    galaxy = shutil.which("ansible-galaxy", path=path_with_ansible())
    if galaxy is None:
        raise EdgecluError("ansible-galaxy not found (it comes with ansible-core, an edgeclu dependency)")
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EdgecluError(f"{output_dir}: cannot create: {e.strerror}") from None
    proc = subprocess.run([galaxy, "collection", "build", "--force", "--output-path", str(output_dir),
                           str(collection_dir())], capture_output=True, text=True,
                          env={"PATH": path_with_ansible(), "HOME": str(Path.home()), **SECRET_SAFE_ENV})
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()
        raise EdgecluError(f"ansible-galaxy collection build failed: {tail[-1] if tail else f'rc={proc.returncode}'}")
    tarball = output_dir / f"edgeclu-cluster-{galaxy_version()}.tar.gz"
    if not tarball.is_file():
        raise EdgecluError(f"ansible-galaxy collection build made no {tarball.name} in {output_dir}")
    return tarball


def galaxy_version() -> str:
    """The collection's version, as its galaxy.yml says (the tarball's name carries it)."""
    import yaml

    return str(yaml.safe_load((collection_dir() / "galaxy.yml").read_text())["version"])
