"""The agent's JSON config: defaults, validation, loading (pure except :func:`load_config`).

Every file the agent reads is a setting whose default is the real location, so a
test (or an unusual board) can point it elsewhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields

DEFAULT_PATH = "/etc/edgeclu/agent.json"


@dataclass(frozen=True)
class AgentConfig:
    listen: str = "0.0.0.0"  # address the HTTP server binds to
    port: int = 9101
    token: str = ""  # bearer token required for /health when set
    announce: bool = True  # mDNS _edgeclu._tcp
    announce_addresses: list[str] = field(default_factory=list)  # [] = this host's LAN IPv4 addresses
    hostname: str = ""  # "" = the system hostname
    k3s_role: str = ""  # server | agent | "" (detect from the installed unit)
    k3s_bin: str = "/usr/local/bin/k3s"
    model_paths: list[str] = field(default_factory=lambda: [
        "/proc/device-tree/model", "/sys/firmware/devicetree/base/model"])
    throttled_path: str = "/sys/devices/platform/soc/soc:firmware/get_throttled"
    vcgencmd: str = "vcgencmd"
    thermal_dir: str = "/sys/class/thermal"
    ssh_host_key: str = "/etc/ssh/ssh_host_ed25519_key.pub"
    cache_seconds: float = 1.0  # requests within this window share one sample


_TYPES = {"str": str, "int": int, "bool": bool, "float": (int, float), "list[str]": list}


def config_from_dict(data: object, source: str = "config") -> AgentConfig:
    """Validate a parsed JSON object into an :class:`AgentConfig`; ValueError lists every problem."""
    if not isinstance(data, dict):
        raise ValueError(f"{source}: must be a JSON object")
    known = {f.name: f for f in fields(AgentConfig)}
    problems = []
    for key, value in data.items():
        f = known.get(key)
        if f is None:
            problems.append(f"{source}: unknown key {key!r}")
            continue
        want = _TYPES[str(f.type)]
        bad_bool = isinstance(value, bool) and f.type in ("int", "float")
        if not isinstance(value, want) or bad_bool:
            problems.append(f"{source}: {key!r} must be {f.type}, got {type(value).__name__}")
        elif f.type == "list[str]" and not all(isinstance(v, str) for v in value):
            problems.append(f"{source}: {key!r} must be a list of strings")
    if isinstance(data.get("port"), int) and not 1 <= data["port"] <= 65535:
        problems.append(f"{source}: 'port' must be 1-65535")
    if data.get("k3s_role", "") not in ("", "server", "agent"):
        problems.append(f"{source}: 'k3s_role' must be server, agent or empty")
    if problems:
        raise ValueError("\n".join(problems))
    return AgentConfig(**data)


def load_config(path: str | None, *, must_exist: bool = False) -> AgentConfig:
    """Read ``path`` (default :data:`DEFAULT_PATH`); a missing file means all defaults."""
    target = path or DEFAULT_PATH
    try:
        with open(target, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        if must_exist:
            raise ValueError(f"{target}: no such file") from None
        return AgentConfig()
    except OSError as e:
        raise ValueError(f"{target}: cannot read: {e.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{target}: invalid JSON: {e}") from None
    return config_from_dict(data, target)
