"""The edgeclu_agent role's decisions: the address the agent binds, its code as one zip, where it lives on a
node and what to write and (re)start there (:func:`plan`, pure).

The zip holds ``edgeclu/__init__.py`` and ``edgeclu/agent/*.py`` of the edgeclu package on the
controller; the node runs it with ``PYTHONPATH=<zip> python3 -m edgeclu.agent`` (zipimport). It is
deterministic (sorted names, fixed timestamps and modes, stored, not deflated: zipimport then needs
no zlib), so the same code always gives the same bytes and an unchanged agent is never copied or
restarted again.
"""

from __future__ import annotations

import importlib.util
import io
import os
import zipfile
from collections.abc import Mapping
from typing import Any

from ansible_collections.edgeclu.cluster.plugins.module_utils.k3s import stale_files
from ansible_collections.edgeclu.cluster.plugins.module_utils.paths import (
    AGENT_CONFIG,
    AGENT_CONFIG_DIR,
    AGENT_DIR,
    AGENT_SERVICE,
    AGENT_SYSUSERS,
    AGENT_UNIT,
    AGENT_ZIP_NAME,
    STAMP,
    SYSUSERS_DIR,
)

FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def agent_files(src: str) -> list[tuple[str, str]]:
    """``(name in the zip, path)`` for the package's ``__init__.py`` and the agent's modules, sorted."""
    agent = os.path.join(src, "agent")
    if not os.path.isfile(os.path.join(agent, "__main__.py")):
        raise ValueError(f"{src} is not the edgeclu package (no agent/__main__.py)")
    files = [("edgeclu/__init__.py", os.path.join(src, "__init__.py"))]
    files += [(f"edgeclu/agent/{f}", os.path.join(agent, f)) for f in os.listdir(agent) if f.endswith(".py")]
    return sorted(files)


def build(src: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, path in agent_files(src):
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.external_attr = 0o100644 << 16
            info.create_system = 3  # unix
            with open(path, "rb") as f:
                zf.writestr(info, f.read())
    return buf.getvalue()


def package_dir(src: str = "") -> str:
    """The edgeclu package directory the agent's code comes from: ``src`` if given (the role's
    ``edgeclu_agent_src``), else the edgeclu package installed beside this Ansible (found, not imported)."""
    if src:
        return src
    spec = importlib.util.find_spec("edgeclu")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("the edgeclu package is not installed beside this Ansible "
                         "(pip install edgeclu, or set edgeclu_agent_src to its directory)")
    return next(iter(spec.submodule_search_locations))


def default_listen(address: str, node_ip: str = "") -> str:
    """The address the agent binds unless told otherwise: the node's inventory address (``ansible_host``,
    which ``edgeclu health`` connects to) when it is an IP address, else ``node_ip``, else every address
    (a name may resolve to something else on the node than on the controller)."""
    import ipaddress

    for candidate in (address, node_ip):
        try:
            return str(ipaddress.ip_address((candidate or "").strip().strip("[]")))
        except ValueError:
            continue
    return "0.0.0.0"


# -- what the edgeclu_agent role does on a node (pure) ---------------------------------------------
def paths(prefix: str = AGENT_DIR) -> dict[str, Any]:
    """Where the agent lives on a node, its code under ``prefix`` (the role's ``agent_prefix``): what its
    unit template, its look at the node and its uninstall name."""
    prefix = str(prefix).rstrip("/") or "/"
    zip_path = f"{prefix}/{AGENT_ZIP_NAME}"
    return {"prefix": prefix, "zip": zip_path, "config_dir": AGENT_CONFIG_DIR, "config": AGENT_CONFIG,
            "unit": AGENT_UNIT, "sysusers_dir": SYSUSERS_DIR, "sysusers": AGENT_SYSUSERS,
            "service": f"{AGENT_SERVICE}.service",
            # reset.yml: the unit, the sysusers.d file (the system user stays, as a package's would), the
            # code, the settings and the converged stamp (STATE_DIR itself may hold the cluster lock)
            "remove": [AGENT_UNIT, AGENT_SYSUSERS, prefix, AGENT_CONFIG_DIR, STAMP]}


def probe(prefix: str, python: str) -> dict[str, Any]:
    """The ``k3s_node_state`` arguments :func:`plan` needs."""
    p = paths(prefix)
    return {"paths": [p["prefix"], p["config_dir"], p["sysusers_dir"], p["zip"], p["config"], p["unit"],
                      p["sysusers"]],
            "services": [p["service"]], "python": python, "imports": ["psutil"]}


def plan(state: Mapping[str, Any], *, prefix: str, zip_sha1: str, config: str, unit: str,
         sysusers: str) -> dict[str, Any]:
    """What to install, write and (re)start, from the node's ``k3s_node_state`` answer to :func:`probe`.

    ``config``: agent.json's text (it may hold the bearer token: it goes in ``secret_contents``, never in
    ``write``); ``zip_sha1``: the code zip's digest (its bytes are added to ``write`` by the
    ``edgeclu_agent_write`` filter, only when it is written). Anything written means a restart; an agent
    that is not running and enabled is started; a node without psutil gets ``python3-psutil``.
    """
    p = paths(prefix)
    dirs = [{"path": p["prefix"], "directory": True, "mode": "0755"},
            {"path": p["config_dir"], "directory": True, "mode": "0700"},
            {"path": p["sysusers_dir"], "directory": True, "mode": "0755"}]
    plain = [{"path": p["unit"], "content": unit, "mode": "0644"},
             {"path": p["sysusers"], "content": sysusers, "mode": "0644"}]
    wanted = [*dirs, {"path": p["zip"], "sha1": zip_sha1, "mode": "0644"},
              {"path": p["config"], "content": config, "mode": "0600"}, *plain]
    stale = stale_files(wanted, state["files"])
    writes = [*dirs, {"path": p["zip"], "mode": "0644"}, {"path": p["config"], "mode": "0600"}, *plain]
    service = (state.get("services") or {}).get(p["service"]) or {}
    running = service.get("active") == "active" and service.get("enabled") == "enabled"
    packages = [] if (state.get("imports") or {}).get("psutil") else ["python3-psutil"]
    action = "restart" if stale else "start"
    return {
        "paths": p,
        "stale": stale,
        "write": [f for f in writes if f["path"] in stale],
        "write_zip": p["zip"] in stale,
        "secret_contents": {p["config"]: config} if p["config"] in stale else {},
        "packages": packages,
        "action": action,
        # edgeclu_systemd's arguments (install.yml): in check mode that task reports the start as a change
        "start": {"service": p["service"], "sysusers": [p["sysusers"]], "daemon_reload": p["unit"] in stale,
                  "action": action},
        "todo": bool(stale) or not running or bool(packages),
    }


def with_zip(plan_: Mapping[str, Any], content_b64: str) -> list[dict[str, Any]]:
    """The plan's ``write`` with the zip's bytes (base64) on its entry."""
    zip_path = plan_["paths"]["zip"]
    return [{**f, "content_b64": content_b64} if f["path"] == zip_path else dict(f) for f in plan_["write"]]
