"""What the raspberrypi role does on a node (the memory cgroup, the swap file), from one look at it (pure).

The role reads the prereq role's ``k3s_node_state`` answer when it has one, else asks for :func:`probe`
itself; the ``rpi_probe`` / ``rpi_plan`` filters (plugins/filter/edgeclu_prereq.py) expose both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible_collections.edgeclu.cluster.plugins.module_utils.k3s import cmdline_with_cgroups
from ansible_collections.edgeclu.cluster.plugins.module_utils.paths import PI_SWAPFILE_SERVICE


def probe() -> dict[str, list[str]]:
    """The ``k3s_node_state`` arguments the plan needs (it always reports the Pi's cmdline.txt)."""
    return {"services": [PI_SWAPFILE_SERVICE]}


def plan(state: Mapping[str, Any], *, disable_swap: bool) -> dict[str, Any]:
    """``cmdline``: ``{path, content}`` to write when the node's Pi kernel command line lacks the memory
    cgroup (then ``reboot``: before k3s is installed), else None (also on a node that is no Pi);
    ``swapfile_off``: the service to stop and disable (Raspberry Pi OS's swap file), or ''."""
    found = state.get("rpi_cmdline") or None
    cmdline = None
    if found:
        wanted = cmdline_with_cgroups(found["content"])
        if wanted != found["content"]:
            cmdline = {"path": found["path"], "content": wanted}
    service = (state.get("services") or {}).get(PI_SWAPFILE_SERVICE) or {}
    swapfile_on = service.get("active") == "active" or service.get("enabled") == "enabled"
    swapfile_off = PI_SWAPFILE_SERVICE if disable_swap and swapfile_on else ""
    return {"cmdline": cmdline, "reboot": cmdline is not None, "swapfile_off": swapfile_off,
            "todo": cmdline is not None or bool(swapfile_off)}
