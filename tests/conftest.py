"""Shared fixtures; the test tiers (unit everywhere, lab as root) are in :mod:`tests.tiers`."""

import pytest

from tests.lab.fixtures import running_lab

pytest_plugins = ["tests.tiers", "pytester"]


@pytest.fixture(scope="module")
def lab3():
    """Three booted lab nodes shared by a test module; tests that power nodes off use their own lab."""
    with running_lab(3) as lab:
        yield lab


@pytest.fixture
def fresh_lab():
    """A factory for a private lab, torn down after the test: ``lab = fresh_lab(3)``."""
    stack = []

    def make(count: int):
        cm = running_lab(count)
        stack.append(cm)
        return cm.__enter__()

    yield make
    while stack:
        stack.pop().__exit__(None, None, None)
