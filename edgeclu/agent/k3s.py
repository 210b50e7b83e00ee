"""k3s service state from systemd, and the k3s version (cached per binary)."""

from __future__ import annotations

import os
import re
import subprocess

UNITS = {"server": "k3s.service", "agent": "k3s-agent.service"}
_version_cache: dict[tuple, str | None] = {}


def parse_systemctl_show(text: str) -> dict[str, dict[str, str]]:
    """``systemctl show -p Id,LoadState,ActiveState,SubState a b`` -> {Id: {prop: value}}."""
    units: dict[str, dict[str, str]] = {}
    for block in text.strip().split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if props.get("Id"):
            units[props["Id"]] = props
    return units


def k3s_state(units: dict[str, dict[str, str]], configured_role: str) -> dict:
    """Which k3s unit this node runs and its state; role from config, else the loaded unit."""
    role = configured_role or next(
        (r for r, u in UNITS.items() if units.get(u, {}).get("LoadState") == "loaded"), "")
    unit = units.get(UNITS[role], {}) if role else {}
    active_state = unit.get("ActiveState") or ("inactive" if role else None)
    return {
        "role": role or None,
        "unit": UNITS[role] if role else None,
        "installed": unit.get("LoadState") == "loaded",
        "active_state": active_state,
        "sub_state": unit.get("SubState"),
        "active": active_state == "active",
    }


def parse_version(text: str) -> str | None:
    """``k3s version v1.31.4+k3s1 (a562d090)`` -> ``v1.31.4+k3s1``."""
    m = re.search(r"\bv\d+\.\d+\.\d+(?:-rc\d+)?\+k3s\d+\b", text)
    return m.group(0) if m else None


def read_units() -> dict[str, dict[str, str]]:
    try:
        out = subprocess.run(
            ["systemctl", "show", "-p", "Id,LoadState,ActiveState,SubState", *UNITS.values()],
            capture_output=True, text=True, timeout=3, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return parse_systemctl_show(out.stdout)


def read_version(k3s_bin: str) -> str | None:
    """``k3s --version``, run once per binary (path, size, mtime): k3s is a big binary."""
    try:
        st = os.stat(k3s_bin)
    except OSError:
        return None
    key = (k3s_bin, st.st_size, st.st_mtime_ns)
    if key not in _version_cache:
        try:
            out = subprocess.run([k3s_bin, "--version"], capture_output=True, text=True, timeout=10,
                                 check=False)
            _version_cache.clear()
            _version_cache[key] = parse_version(out.stdout)
        except (OSError, subprocess.TimeoutExpired):
            return None
    return _version_cache[key]


def read_k3s(k3s_bin: str, configured_role: str) -> dict:
    state = k3s_state(read_units(), configured_role)
    state["version"] = read_version(k3s_bin)
    return state
