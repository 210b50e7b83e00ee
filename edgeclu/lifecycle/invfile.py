"""Edit the inventory file: atomic replace, previous version kept as ``<file>.bak``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from edgeclu.inventory import parse_inventory, parse_yaml


def write_inventory(path: Path, text: str, *, backup: bool = True) -> Path | None:
    """Replace ``path`` with ``text`` atomically (same mode); returns the backup's path."""
    path = Path(path)
    saved = None
    mode = path.stat().st_mode & 0o777
    if backup:
        saved = path.with_name(path.name + ".bak")
        saved.write_text(path.read_text())
        os.chmod(saved, mode)
    tmp = path.with_name(f".{path.name}.edgeclu-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    return saved


def set_cluster_var(path: Path, key: str, value: Any) -> str:
    """The inventory text with ``k3s_cluster.vars[key] = value`` (validated, not written)."""
    data = parse_yaml(Path(path).read_text(), str(path))
    cluster = data["k3s_cluster"]
    if not isinstance(cluster.get("vars"), dict):
        cluster["vars"] = {}
    cluster["vars"][key] = value
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
    parse_inventory(text, str(path))
    return text
