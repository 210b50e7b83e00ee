"""Ansible filters over module_utils/addons.py, so the role and ``edgeclu up`` render the very same
manifests (the unit tests validate exactly what these return).

``{{ settings | edgeclu_addons(node_count) }}`` -> ``{manifests: {file: text}, packages: [...],
services: [...]}``; ``edgeclu_addons_files`` / ``edgeclu_addons_stale``: what the first server should
have, and which of it differs.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.edgeclu.cluster.plugins.module_utils import addons
from ansible_collections.edgeclu.cluster.plugins.module_utils.k3s import stale_files


def _plain(value):
    """Ansible's tagged/lazy containers and strings as plain Python types (for yaml.safe_dump)."""
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    return str.__str__(value) if isinstance(value, str) else value


def _call(fn, *args):
    try:
        return fn(*args)
    except addons.AddonsError as e:
        raise AnsibleFilterError(str(e)) from None


def edgeclu_addons(settings, node_count=1, available_charts=()):
    """``available_charts``: the packaged charts in the air-gap directory's charts/ (file names)."""
    v = _plain(settings)
    available = [str(f) for f in available_charts or ()]
    return {
        "manifests": _call(addons.render_manifests, v, int(node_count), available),
        "charts": _call(addons.offline_charts, v, available),
        "packages": _call(addons.node_packages, v),
        "services": _call(addons.node_services, v),
    }


def edgeclu_addons_files(manifests, directory):
    """What the first server should have: the manifests directory (0700) and each manifest (0600)."""
    directory = str(directory).rstrip("/")
    return [{"path": directory, "directory": True, "mode": "0700"}] + [
        {"path": f"{directory}/{name}", "content": str(text), "mode": "0600"}
        for name, text in sorted(_plain(manifests).items())]


def edgeclu_addons_stale(wanted, state):
    """Paths of ``wanted`` that differ on the node (``k3s_node_state`` files): module_utils/k3s.py's stale_files."""
    return stale_files(_plain(wanted), _plain(state))


class FilterModule:
    def filters(self):
        return {"edgeclu_addons": edgeclu_addons, "edgeclu_addons_files": edgeclu_addons_files,
                "edgeclu_addons_stale": edgeclu_addons_stale}
