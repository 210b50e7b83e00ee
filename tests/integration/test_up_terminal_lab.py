"""`edgeclu up` on a terminal, as a user sees it: the real CLI in a pseudo-terminal (pexpect), lab nodes.

The live view is read from what the terminal was sent, with the escape sequences (colours, cursor
moves of the redraws) taken out: every frame the view drew is in there, line by line.
"""

import os
import re
import sys
import time

import pexpect
import pytest

from tests.k3s_standin.fixtures import V1, k3s_mirror, k3s_releases  # noqa: F401

pytestmark = pytest.mark.lab

ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[=>]|\r")
# tasks of site.yml that a first run on healthy nodes skips (their `when:` is false)
SKIPPED_TASKS = ("Fail with k3s's own message", "Refuse an interface without an IPv4 address",
                 "Check that the node is Ready", "Copy k3s from the air-gap directory", "Insist on a token",
                 "Keep swap off after a reboot")
SITE_PHASE_ROW = re.compile(r"^\S?\s*(prepare nodes|install k3s|start servers one by one|join agents|wait for Ready|"
                            r"add-ons|node agent)\s+[█░]{10}\s+\d+/\d+\s.*\bworking\b", re.M)


def _screen(raw: bytes) -> str:
    return ANSI.sub("", raw.decode("utf-8", "replace"))


def test_live_view_shows_phases_then_the_summary(fresh_lab, k3s_mirror, tmp_path):  # noqa: F811
    lab = fresh_lab(3)
    mirror = k3s_mirror(lab)
    inv = tmp_path / "inventory.yml"
    inv.write_text(lab.inventory_yaml(["node1"], ["node2", "node3"], user="edge", extra_vars={
        "k3s_version": V1, "token_file": str(tmp_path / "token"), **mirror.vars, "cluster_name": "lab"}))
    kubeconfig = tmp_path / "kubeconfig"
    env = dict(os.environ, KUBECONFIG=str(kubeconfig), TERM="xterm-256color", COLUMNS="160", LINES="40")
    env.pop("NO_COLOR", None)
    child = pexpect.spawn(sys.executable, ["-m", "edgeclu", "up", "-i", str(inv)], env=env,
                          dimensions=(40, 160), timeout=5)
    raw, mid = b"", None
    deadline = time.monotonic() + 600
    while True:
        try:
            raw += child.read_nonblocking(65536, timeout=1)
        except pexpect.TIMEOUT:
            pass
        except pexpect.EOF:
            break
        if mid is None and SITE_PHASE_ROW.search(_screen(raw[-20000:])):
            mid = _screen(raw)  # captured while up still runs
            assert child.isalive()
        assert time.monotonic() < deadline, _screen(raw)[-3000:]
    child.close()
    screen = _screen(raw)
    (tmp_path.parent / "up-terminal.txt").write_text(screen)
    assert child.exitstatus == 0, screen[-4000:]
    assert mid is not None, f"no phase row with a node at work was drawn:\n{screen[-4000:]}"
    assert "install k3s" in mid and "preflight" in mid
    for name in SKIPPED_TASKS:
        assert name not in screen, f"skipped task {name!r} was shown"
    # the end: the last frame has every phase finished, then the summary in words and the next step
    summary = screen[screen.rindex("summary"):]
    assert re.search(r"node1\s+.*installed k3s v1\.31\.4\+k3s1; started the cluster \(first server\);", summary)
    assert re.search(r"node2\s+.*installed k3s v1\.31\.4\+k3s1; joined as agent; node agent installed", summary)
    assert "converged: 3 node(s)" in summary
    assert f"context 'lab' merged into {kubeconfig}" in summary
    assert "kubectl --context lab get nodes" in summary
    assert f"edgeclu health -i {inv}" in summary
    last_frame = screen[:screen.rindex("summary")]
    last_frame = last_frame[last_frame.rindex("edgeclu up "):]
    assert "working" not in last_frame and "waiting" not in last_frame, last_frame
    print(mid[mid.rindex("edgeclu up "):])
    print(screen[screen.rindex("edgeclu up "):])
