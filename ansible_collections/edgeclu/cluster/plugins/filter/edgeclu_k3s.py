"""Ansible filters over module_utils/k3s.py, so the roles and edgeclu's Python share one builder."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.edgeclu.cluster.plugins.module_utils import k3s, registries


def k3s_config(params: dict) -> dict:
    """``{role: server, token: ..., node_name: ...} | k3s_config`` -> config.yaml data."""
    params = dict(params)
    return k3s.node_config(params.pop("role"), **params)


def _fail(e: Exception, prefix: str = ""):
    raise AnsibleFilterError(f"{prefix}{e}") from None


def k3s_plan(state: dict, config_file: dict, files: list, version: str, service: str,
             secret_files: list | None = None) -> dict:
    """``k3s_state | k3s_plan(config_file, files, version, service, secret_files)``: see
    module_utils/k3s.py's install_plan."""
    try:
        return k3s.install_plan(state, config_file=config_file, files=files, version=version, service=service,
                                secret_files=[f for f in secret_files or [] if f])
    except k3s.UnsupportedArch as e:
        _fail(e)


def k3s_images_plan(state: dict, wanted=None, airgap_files: list | None = None, where: str = "") -> dict:
    """``k3s_state | k3s_images_plan(k3s_airgap_images, names in the air-gap version dir or none)``: see
    module_utils/k3s.py's images_plan (``state.sha256``: the node's images archives)."""
    try:
        return k3s.images_plan(state["machine"], wanted=None if wanted in (None, "") else bool(wanted),
                               airgap_files=airgap_files, on_node=state.get("sha256") or {}, where=where)
    except ValueError as e:
        _fail(e, "refusing to install k3s: ")


def k3s_registries_file(value, embedded=False, path: str = registries.REGISTRIES_FILE) -> dict | None:
    """``registries | k3s_registries_file(embedded_registry)``: ``{path, mode, content}`` of
    registries.yaml (the auth files are read here, on the controller), or None when it is not managed.
    Use under no_log: the content holds the credentials; check first with k3s_registries_problem."""
    try:
        text = registries.render_text(_plain(value), bool(embedded))
    except registries.RegistriesError as e:
        _fail(e)
    return None if text is None else {"path": path, "mode": "0600", "content": text}


def k3s_registries_problem(value, embedded=False) -> str:
    """What is wrong with ``registries`` or its auth files (one line, no secret in it), or ''."""
    try:
        registries.render(_plain(value), bool(embedded))
    except registries.RegistriesError as e:
        return str(e)
    return ""


def _plain(value):
    """Ansible's lazy containers and tagged strings as plain Python (for the pure builders)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    return str.__str__(value) if isinstance(value, str) else value


def k3s_checksum_source(arch: str, version: str, pins: dict | None = None, mirror: str | None = None,
                        airgap_dir: str | None = None, filename: str | None = None) -> dict:
    """``arch | k3s_checksum_source(version, k3s_sha256, k3s_mirror, k3s_airgap_dir[, file])``: see
    module_utils/k3s.py's checksum_source; a refusal fails the node with its reason."""
    try:
        return k3s.checksum_source(version, arch, pins=pins or {}, mirror=mirror or None,
                                   airgap_dir=airgap_dir or None, filename=filename or None)
    except ValueError as e:
        _fail(e, "refusing to install k3s: ")


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
            "k3s_paths": lambda service: k3s.node_paths(str(service)),
            "k3s_images_plan": k3s_images_plan,
            "k3s_registries_file": k3s_registries_file,
            "k3s_registries_problem": k3s_registries_problem,
            "k3s_release_url": k3s_release_url,
            "k3s_checksum_source": k3s_checksum_source,
            "k3s_sha256_for": k3s_sha256_for,
            "k3s_installed_version": k3s_installed_version,
            "k3s_api_url": k3s.api_url,
            "k3s_disabled_addons": k3s.disabled_addons,
            "k3s_journal_error": lambda text: k3s.journal_error(text) or "",
            "k3s_nodes_not_ready": k3s.nodes_not_ready,
        }
