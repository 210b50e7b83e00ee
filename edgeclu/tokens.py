"""The secrets edgeclu keeps on the controller: where they live, how they are written, what is wrong.

* the k3s **server token** (``token_file``, default ``~/.config/edgeclu/token``, or the
  environment variable ``token_env``): joins servers, encrypts the datastore's bootstrap data;
  whoever holds it is an administrator of the cluster. Only servers get it.
* the k3s **agent token** (``k3s_agent_token_file``, default ``agent-token`` beside the server
  token, or ``k3s_agent_token_env``): joins agents only. Agents get it, servers get it as
  ``agent-token``.
* the node agent's bearer token (``agent_token_file``, optional): read access to ``/health``.

Files are 0600 in a 0700 directory, written atomically; nothing here prints a secret.
"""

from __future__ import annotations

import os
import secrets
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeclu.errors import EdgecluError
from edgeclu.inventory import DEFAULTS

DEFAULT_TOKEN_FILE = DEFAULTS["token_file"]


@dataclass(frozen=True)
class Secret:
    key: str  # the inventory key naming the file (or the variable)
    what: str
    path: Path | None  # None: it comes from an environment variable
    env: str | None = None


def server_token(v: Mapping[str, Any]) -> Secret:
    if v.get("token_env"):
        return Secret("token_env", "the k3s server token", None, v["token_env"])
    return Secret("token_file", "the k3s server token", Path(v.get("token_file") or DEFAULT_TOKEN_FILE).expanduser())


def agent_token(v: Mapping[str, Any]) -> Secret:
    if v.get("k3s_agent_token_env"):
        return Secret("k3s_agent_token_env", "the k3s agent token", None, v["k3s_agent_token_env"])
    path = v.get("k3s_agent_token_file")
    beside = Path(v.get("token_file") or DEFAULT_TOKEN_FILE).expanduser().parent / "agent-token"
    return Secret("k3s_agent_token_file", "the k3s agent token", Path(path).expanduser() if path else beside)


def controller_secrets(v: Mapping[str, Any]) -> list[Secret]:
    found = [server_token(v), agent_token(v)]
    if v.get("agent_token_file"):
        found.append(Secret("agent_token_file", "the node agent's bearer token",
                            Path(v["agent_token_file"]).expanduser()))
    from ansible_collections.edgeclu.cluster.plugins.module_utils.registries import auth_files

    for name, path in auth_files(v.get("registries")).items():
        found.append(Secret(f"registries.configs.{name}.auth_file", f"the credentials for registry {name}",
                            Path(path).expanduser()))
    return found


def new_token() -> str:
    """A random token like the playbooks make (48 lowercase letters and digits)."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(48))


def read(s: Secret) -> str:
    if s.env:
        value = os.environ.get(s.env, "").strip()
        if not value:
            raise EdgecluError(f"{s.what}: environment variable {s.env} is empty")
        return value
    try:
        value = s.path.read_text().strip()
    except OSError as e:
        raise EdgecluError(f"{s.what}: {s.path}: {e.strerror}") from None
    if not value:
        raise EdgecluError(f"{s.what}: {s.path} is empty")
    return value


def write(s: Secret, value: str) -> None:
    """Replace the file atomically: 0600 in a 0700 directory (made if needed)."""
    if s.env:
        raise EdgecluError(f"{s.what} comes from ${s.env}: set it to the new token yourself "
                           f"(edgeclu cannot change your environment)")
    s.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=s.path.parent, prefix=f".{s.path.name}.")
    try:
        with os.fdopen(fd, "w") as f:  # mkstemp: 0600
            f.write(value + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, s.path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# -- what is wrong (warnings: edgeclu still runs) ------------------------------------------
def permission_warnings(v: Mapping[str, Any]) -> list[str]:
    """A line for each secret file (or its directory) that others than its owner may read."""
    lines = []
    for s in controller_secrets(v):
        if s.path is None:
            continue
        for path, kind in ((s.path, "file"), (s.path.parent, "directory")):
            try:
                mode = stat.S_IMODE(path.stat().st_mode)
            except OSError:
                break
            if mode & 0o077:
                lines.append(f"{path} ({s.what}{'' if kind == 'file' else ', its directory'}) is readable by "
                             f"{'group and others' if mode & 0o007 else 'its group'} (mode {mode:04o}): "
                             f"chmod {'600' if kind == 'file' else '700'} {path}")
    return lines


def inventory_warnings(inv) -> list[str]:
    """A line for each token written into the inventory itself (readable by whoever reads it)."""
    lines = []
    for key, what, instead in (("k3s_token", "the server token", "token_file"),
                               ("k3s_agent_token", "the agent token", "k3s_agent_token_file")):
        where = ["cluster vars"] if key in inv.vars else []
        where += [f"host {h.name!r}" for h in inv.hosts if key in h.vars and h.vars[key] != inv.vars.get(key)]
        if where:
            lines.append(f"{inv.path}: {', '.join(where)}: {key} puts {what} in the inventory, where whoever "
                         f"reads the file can use it; keep it in {instead} (0600) instead")
    return lines


def warnings(inv) -> list[str]:
    return inventory_warnings(inv) + permission_warnings(inv.vars)
