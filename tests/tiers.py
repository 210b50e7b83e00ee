"""Test tiers: the unit tier runs anywhere; the lab tier (``@pytest.mark.lab``) needs root and the lab's tools.

Without them (a contributor's plain ``pytest``) the lab tests are deselected and one line says why. CI sets
``EDGECLU_REQUIRE_LAB=1``: there a missing prerequisite is an error, not a skip, and the summary says how many
lab tests ran.
"""

import os

import pytest

from tests.lab.fixtures import lab_prerequisites

REQUIRE_LAB = "EDGECLU_REQUIRE_LAB"


def pytest_collection_modifyitems(config, items):
    lab = [item for item in items if item.get_closest_marker("lab")]
    config._edgeclu_lab = {"collected": len(lab), "skipped_because": None}
    if not lab:
        return
    missing = lab_prerequisites()
    if not missing:
        return
    why = "the lab needs " + ", ".join(missing)
    if os.environ.get(REQUIRE_LAB) == "1":
        raise pytest.UsageError(f"{REQUIRE_LAB}=1 but {why}: the lab tier cannot run here")
    config._edgeclu_lab["skipped_because"] = why
    config.hook.pytest_deselected(items=lab)
    items[:] = [item for item in items if not item.get_closest_marker("lab")]


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    info = getattr(config, "_edgeclu_lab", None)
    if not info or not info["collected"]:
        return
    if info["skipped_because"]:
        terminalreporter.write_line(f"lab tier skipped ({info['collected']} tests): {info['skipped_because']} "
                                    "(run as root; see README, 'Tests')")
        return
    ran: dict[str, int] = {}
    for outcome in ("passed", "failed", "error", "skipped"):
        for rep in terminalreporter.stats.get(outcome, []):
            if "lab" in getattr(rep, "keywords", {}) and (rep.when == "call" or rep.outcome != "passed"):
                ran[outcome] = ran.get(outcome, 0) + 1
    counts = ", ".join(f"{n} {o}" for o, n in ran.items()) or "none"
    terminalreporter.write_line(f"lab tier: {ran.get('passed', 0) + ran.get('failed', 0)} lab tests ran of "
                                f"{info['collected']} collected ({counts})")
