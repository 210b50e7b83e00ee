"""The agent's JSON config: defaults, validation, loading (pure except :func:`load_config`).

Every file the agent reads is a setting whose default is the real location, so a
test (or an unusual board) can point it elsewhere. (A plain class, not a dataclass:
``dataclasses`` imports ``inspect``, over 1 MiB of the agent's memory budget.)
"""

from __future__ import annotations

import json

DEFAULT_PATH = "/etc/edgeclu/agent.json"

# name -> (default, type name); the type names are what error messages say
FIELDS: dict[str, tuple[object, str]] = {
    "listen": ("0.0.0.0", "str"),  # address the HTTP server binds to (the role sets the node's own)
    "port": (9101, "int"),
    "token": ("", "str"),  # bearer token required for /health when set
    "announce": (True, "bool"),  # mDNS _edgeclu._tcp
    "announce_addresses": ([], "list[str]"),  # [] = this host's LAN IPv4 addresses
    "hostname": ("", "str"),  # "" = the system hostname
    "k3s_role": ("", "str"),  # server | agent | "" (detect from the installed unit)
    "k3s_bin": ("/usr/local/bin/k3s", "str"),
    "model_paths": (["/proc/device-tree/model", "/sys/firmware/devicetree/base/model"], "list[str]"),
    "throttled_path": ("/sys/devices/platform/soc/soc:firmware/get_throttled", "str"),
    "vcgencmd": ("vcgencmd", "str"),
    "thermal_dir": ("/sys/class/thermal", "str"),
    "ssh_host_key": ("/etc/ssh/ssh_host_ed25519_key.pub", "str"),
    "cache_seconds": (1.0, "float"),  # requests within this window share one sample
}
_TYPES = {"str": str, "int": int, "bool": bool, "float": (int, float), "list[str]": list}


class AgentConfig:
    """Settings as attributes; ``AgentConfig()`` is all defaults, keywords override."""

    def __init__(self, **values: object):
        unknown = set(values) - set(FIELDS)
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
        for name, (default, _) in FIELDS.items():
            value = values.get(name, default)
            setattr(self, name, list(value) if isinstance(value, list) else value)

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in FIELDS}

    def replace(self, **changes: object) -> AgentConfig:
        return AgentConfig(**{**self.as_dict(), **changes})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AgentConfig) and self.as_dict() == other.as_dict()

    def __repr__(self) -> str:
        shown = {k: ("***" if k == "token" and v else v) for k, v in self.as_dict().items()}
        return f"AgentConfig({shown})"


for _name, (_default, _) in FIELDS.items():  # class attributes hold the defaults
    setattr(AgentConfig, _name, _default)


def config_from_dict(data: object, source: str = "config") -> AgentConfig:
    """Validate a parsed JSON object into an :class:`AgentConfig`; ValueError lists every problem."""
    if not isinstance(data, dict):
        raise ValueError(f"{source}: must be a JSON object")
    problems = []
    for key, value in data.items():
        if key not in FIELDS:
            problems.append(f"{source}: unknown key {key!r}")
            continue
        tname = FIELDS[key][1]
        bad_bool = isinstance(value, bool) and tname in ("int", "float")
        if not isinstance(value, _TYPES[tname]) or bad_bool:
            problems.append(f"{source}: {key!r} must be {tname}, got {type(value).__name__}")
        elif tname == "list[str]" and not all(isinstance(v, str) for v in value):
            problems.append(f"{source}: {key!r} must be a list of strings")
    if isinstance(data.get("port"), int) and not 1 <= data["port"] <= 65535:
        problems.append(f"{source}: 'port' must be 1-65535")
    if data.get("k3s_role", "") not in ("", "server", "agent"):
        problems.append(f"{source}: 'k3s_role' must be server, agent or empty")
    if problems:
        raise ValueError("\n".join(problems))
    return AgentConfig(**data)


class ConfigUnreadable(ValueError):
    """The file exists but we may not read it (``agent.json`` is root-only)."""


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
        raise ConfigUnreadable(f"{target}: cannot read: {e.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{target}: invalid JSON: {e}") from None
    return config_from_dict(data, target)
