"""The test tiers (tests/tiers.py): a contributor's plain pytest runs the unit tier and says in one line why the
lab tier did not run; CI (EDGECLU_REQUIRE_LAB=1) refuses to pass without it and says how many lab tests ran."""

import pytest

from tests import tiers

SUITE = """
import pytest

def test_unit():
    assert True

@pytest.mark.lab
def test_lab_one():
    assert True

@pytest.mark.lab
def test_lab_two():
    assert True
"""


@pytest.fixture
def suite(pytester):
    pytester.makeini("[pytest]\nmarkers =\n    lab: lab tier\n")
    pytester.makepyfile(test_suite=SUITE)
    return pytester


def test_without_root_the_lab_tier_is_deselected_with_one_line(suite, monkeypatch):
    monkeypatch.setattr(tiers, "lab_prerequisites", lambda: ["root (network namespaces, mounts)"])
    monkeypatch.delenv(tiers.REQUIRE_LAB, raising=False)
    result = suite.runpytest("-p", "tests.tiers", "-ra")
    result.assert_outcomes(passed=1, deselected=2)
    lines = [line for line in result.outlines if "lab tier" in line]
    assert lines == ["lab tier skipped (2 tests): the lab needs root (network namespaces, mounts) "
                     "(run as root; see README, 'Tests')"]
    assert result.ret == 0 and "error" not in result.outlines[-1]


def test_ci_refuses_a_lab_tier_that_cannot_run(suite, monkeypatch):
    monkeypatch.setattr(tiers, "lab_prerequisites", lambda: ["root (network namespaces, mounts)"])
    monkeypatch.setenv(tiers.REQUIRE_LAB, "1")
    result = suite.runpytest("-p", "tests.tiers")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "EDGECLU_REQUIRE_LAB=1 but the lab needs root" in result.stderr.str()


def test_with_the_lab_the_summary_counts_lab_tests_that_ran(suite, monkeypatch):
    monkeypatch.setattr(tiers, "lab_prerequisites", lambda: [])
    monkeypatch.setenv(tiers.REQUIRE_LAB, "1")
    result = suite.runpytest("-p", "tests.tiers")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["lab tier: 2 lab tests ran of 2 collected (2 passed)"])
