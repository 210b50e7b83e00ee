"""Controller-side helpers of the edgeclu_agent role: the address the agent binds, and its code as one zip.

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
