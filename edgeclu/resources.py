"""Where edgeclu's Ansible collection ``edgeclu.cluster`` is: the wheel's copy in site-packages, or the
source tree's (both ``<dir>/ansible_collections/edgeclu/cluster``), and how its playbooks are named."""

from __future__ import annotations

from pathlib import Path

import ansible_collections.edgeclu.cluster as _collection  # a namespace package: found, nothing runs

COLLECTION = "edgeclu.cluster"


def collection_dir() -> Path:
    """The collection's root (``galaxy.yml``, ``roles/``, ``plugins/``, ``playbooks/``)."""
    for candidate in _collection.__path__:
        if (Path(candidate) / "galaxy.yml").is_file():
            return Path(candidate).resolve()
    raise FileNotFoundError("the edgeclu.cluster collection has no galaxy.yml (broken install?)")


def collections_path() -> Path:
    """The directory holding ``ansible_collections/``: what ``ANSIBLE_COLLECTIONS_PATH`` names."""
    return collection_dir().parents[2]


def playbook_fqcn(name: str) -> str:
    """``site.yml`` -> ``edgeclu.cluster.site``, once the collection has ``playbooks/site.yml``."""
    if not (collection_dir() / "playbooks" / name).is_file():
        raise FileNotFoundError(f"playbook {name} not found in {collection_dir() / 'playbooks'}")
    return f"{COLLECTION}.{name.removesuffix('.yml')}"
