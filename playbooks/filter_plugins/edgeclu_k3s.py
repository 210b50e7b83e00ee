"""Ansible filters over edgeclu.k3s, so the roles and the Python code share one builder.

Works from the source tree (``<repo>/playbooks``) and from an installed wheel
(``site-packages/edgeclu/_data/playbooks``) even when ansible-playbook runs with a
Python that has not imported edgeclu yet.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    from edgeclu import k3s
except ImportError:  # plain ansible-playbook from a checkout or an unpacked wheel
    _here = Path(__file__).resolve()
    for _root in (_here.parents[2], _here.parents[4] if len(_here.parents) > 4 else None):
        if _root is not None and (_root / "edgeclu" / "k3s.py").is_file():
            sys.path.insert(0, str(_root))
            break
    from edgeclu import k3s


def k3s_config(params: dict) -> dict:
    """``{role: server, token: ..., node_name: ...} | k3s_config`` -> config.yaml data."""
    params = dict(params)
    return k3s.node_config(params.pop("role"), **params)


def k3s_plan(state: dict, config_file: dict, files: list, version: str, service: str) -> dict:
    """``k3s_state | k3s_plan(config_file, files, version, service)``: see edgeclu.k3s.install_plan."""
    try:
        return k3s.install_plan(state, config_file=config_file, files=files, version=version, service=service)
    except k3s.UnsupportedArch as e:
        from ansible.errors import AnsibleFilterError

        raise AnsibleFilterError(str(e)) from None


def k3s_checksum_source(arch: str, version: str, pins: dict | None = None, mirror: str | None = None,
                        airgap_dir: str | None = None) -> dict:
    """``arch | k3s_checksum_source(version, k3s_sha256, k3s_mirror, k3s_airgap_dir)``: see
    edgeclu.k3s.checksum_source; a refusal fails the node with its reason."""
    try:
        return k3s.checksum_source(version, arch, pins=pins or {}, mirror=mirror or None, airgap_dir=airgap_dir or None)
    except ValueError as e:
        from ansible.errors import AnsibleFilterError

        raise AnsibleFilterError(f"refusing to install k3s: {e}") from None


def k3s_release_url(filename: str, version: str, mirror: str | None = None) -> str:
    return k3s.release_url(version, filename, mirror or None)


def k3s_sha256_for(checksums: str, filename: str) -> str:
    return k3s.sha256_for(checksums, filename) or ""


def k3s_installed_version(version_output: str) -> str:
    return k3s.parse_version_output(version_output) or ""


class FilterModule:
    def filters(self):
        return {
            "k3s_config": k3s_config,
            "k3s_plan": k3s_plan,
            "k3s_release_url": k3s_release_url,
            "k3s_checksum_source": k3s_checksum_source,
            "k3s_sha256_for": k3s_sha256_for,
            "k3s_installed_version": k3s_installed_version,
            "k3s_api_url": k3s.api_url,
            "k3s_disabled_addons": k3s.disabled_addons,
            "k3s_journal_error": lambda text: k3s.journal_error(text) or "",
            "k3s_cmdline_cgroups": k3s.cmdline_with_cgroups,
            "k3s_version_compare": k3s.compare_versions,
            "k3s_stale_files": k3s.stale_files,
            "k3s_nodes_not_ready": k3s.nodes_not_ready,
        }
