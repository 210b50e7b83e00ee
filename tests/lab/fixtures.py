"""pytest glue for the lab: ``running_lab(n)`` boots n nodes and moves the test into the controller netns."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil

from tests.lab.nodelab import Lab, enter_netns, leftovers

_counter = itertools.count(1)


def lab_prerequisites() -> list[str]:
    missing = []
    if os.geteuid() != 0:
        missing.append("root (network namespaces, mounts)")
    for tool in ("systemd-nspawn", "debootstrap", "unshare", "nsenter", "ip", "zstd", "ssh-keygen"):
        if not shutil.which(tool):
            missing.append(tool)
    return missing


def new_prefix() -> str:
    return f"e{os.getpid() % 100000}x{next(_counter)}"


@contextlib.contextmanager
def running_lab(count: int, prefix: str | None = None):
    """Boot ``count`` nodes; inside the block this thread lives on the lab LAN (controller netns)."""
    missing = lab_prerequisites()
    if missing:
        raise RuntimeError("the lab needs: " + ", ".join(missing) + " (see README, 'Tests')")
    lab = Lab(prefix=prefix or new_prefix())
    try:
        lab.up(count)
        with enter_netns(lab.ctl_netns):
            yield lab
    finally:
        lab.down()
        left = leftovers(lab.prefix)
        assert not left, f"lab teardown left: {left}"
