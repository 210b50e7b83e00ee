"""What the prereq role does on a node (kernel modules, kernel settings, swap), from one look at it (pure).

:func:`probe` is what the role asks ``k3s_node_state`` for; :func:`plan` decides from its answer. The
``prereq_probe`` / ``prereq_plan`` filters (plugins/filter/edgeclu_prereq.py) expose them; the role's
tasks only read the plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.edgeclu.cluster.plugins.module_utils.k3s import stale_files
from ansible_collections.edgeclu.cluster.plugins.module_utils.paths import (
    FSTAB,
    K3S_MODULES_CONF,
    PI_SWAPFILE_SERVICE,
)


def files(modules: Iterable[str], sysctls: Mapping[str, Any], sysctl_path: str) -> list[dict[str, str]]:
    """The boot-time files: the modules to load (modules-load.d) and the kernel settings (sysctl.d)."""
    return [
        {"path": K3S_MODULES_CONF, "mode": "0644", "content": "".join(f"{m}\n" for m in modules) or "\n"},
        {"path": sysctl_path, "mode": "0644", "content": "".join(f"{k} = {v}\n" for k, v in sysctls.items())},
    ]


def probe(modules: Iterable[str], sysctls: Mapping[str, Any], sysctl_path: str) -> dict[str, list[str]]:
    """The ``k3s_node_state`` arguments the plan needs (the raspberrypi role reads the same answer)."""
    modules = list(modules)
    return {"paths": [f["path"] for f in files(modules, sysctls, sysctl_path)], "modules": modules,
            "services": [PI_SWAPFILE_SERVICE]}


def plan(state: Mapping[str, Any], *, modules: Iterable[str], sysctls: Mapping[str, Any], sysctl_path: str,
         disable_swap: bool) -> dict[str, Any]:
    """What to write, run and edit on a node, from its ``k3s_node_state`` answer.

    A container (the edgeclu lab, LXC) shares the host's kernel: loading modules and applying sysctls is
    the host's job there, so neither is run (their boot-time files are still written). ``now`` names
    what runs at once besides writing files; ``todo``: anything at all.
    """
    wanted = files(modules, sysctls, sysctl_path)
    stale = stale_files(wanted, state["files"])
    container = str(state.get("container") or "")
    missing = [m for m, loaded in (state.get("modules") or {}).items() if not loaded]
    swap = state.get("swap") or {}
    modprobe = [] if container else missing
    sysctl_apply = sysctl_path if sysctl_path in stale and not container else ""
    swapoff = bool(disable_swap) and (swap.get("active") or 0) > 0
    fstab = FSTAB if disable_swap and (swap.get("fstab") or 0) > 0 else ""
    now = (["load kernel modules"] if modprobe else []) + (["apply kernel settings"] if sysctl_apply else []) \
        + (["turn swap off"] if swapoff else [])
    return {
        "container": container,
        "write": [f for f in wanted if f["path"] in stale],
        "modprobe": modprobe,
        "sysctl_apply": sysctl_apply,
        "swapoff": swapoff,
        "fstab": fstab,
        "now": now,
        "todo": bool(stale or modprobe or swapoff or fstab),
    }
