"""Ansible filters over module_utils/addons.py, so the role and ``edgeclu up`` render the very same
manifests (the unit tests validate exactly what these return).

``{{ settings | edgeclu_addons(node_count) }}`` -> ``{manifests: {file: text}, packages: [...],
services: [...]}``; ``edgeclu_addons_probe`` / ``edgeclu_addons_plan``: what to look at on the first
server, and what to write and remove there.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.edgeclu.cluster.plugins.module_utils import addons


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


def edgeclu_addons_probe(manifests, directory, k3s_bin):
    """``_addons.manifests | edgeclu_addons_probe(addons_manifests_dir, addons_k3s_bin)``: the first
    server's k3s_node_state arguments (module_utils/addons.py's first_server_probe)."""
    return addons.first_server_probe(_plain(manifests), str(directory), str(k3s_bin))


def edgeclu_addons_plan(state, manifests, directory, k3s_bin):
    """``_addons_node | edgeclu_addons_plan(_addons.manifests, addons_manifests_dir, addons_k3s_bin)``: what
    to write and remove there (module_utils/addons.py's first_server_plan)."""
    return addons.first_server_plan(_plain(state), manifests=_plain(manifests), directory=str(directory),
                                    k3s_bin=str(k3s_bin))


class FilterModule:
    def filters(self):
        return {"edgeclu_addons": edgeclu_addons, "edgeclu_addons_probe": edgeclu_addons_probe,
                "edgeclu_addons_plan": edgeclu_addons_plan}
