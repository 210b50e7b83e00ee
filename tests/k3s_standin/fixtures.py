"""pytest fixtures: stand-in k3s releases, and a mirror serving them to lab nodes.

Use them from a test module with ``from tests.k3s_standin.fixtures import k3s_releases, k3s_mirror``.
"""

from __future__ import annotations

import contextlib

import pytest

from tests.k3s_standin.mirror import serve
from tests.k3s_standin.release import build_release

V1 = "v1.31.4+k3s1"
V2 = "v1.31.5+k3s1"


@pytest.fixture(scope="session")
def k3s_releases(tmp_path_factory):
    """A release root with two stand-in versions (``V1``, ``V2``): ``root/<version>/k3s`` ..."""
    root = tmp_path_factory.mktemp("k3s-releases")
    for version in (V1, V2):
        build_release(root, version)
    return root


@pytest.fixture
def k3s_mirror(k3s_releases):
    """Factory: ``mirror = k3s_mirror(lab)`` serves the releases at ``http://10.77.0.1:<port>``.

    Call it inside the lab (the test thread must be in the controller netns).
    """
    stack = contextlib.ExitStack()

    def start(lab, root=None):
        return stack.enter_context(serve(root or k3s_releases, lab.ctl_ip))

    with stack:
        yield start
