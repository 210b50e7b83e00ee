"""Every process of a playbook run is found by its mark and killed, even those that left the
process group (ansible's workers and their ssh call setsid)."""

import os
import signal
import subprocess
import sys
import time
import uuid

from edgeclu import interrupt


def _spawn(run_id, *, detach):
    """A sleeper like an ansible worker: own session (setsid), the run's mark in its environment."""
    env = dict(os.environ, **{interrupt.RUN_MARK: run_id})
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env,
                            start_new_session=detach)


def test_kill_run_kills_every_marked_process_and_nothing_else():
    run_id, other_id = uuid.uuid4().hex, uuid.uuid4().hex
    mine = [_spawn(run_id, detach=True), _spawn(run_id, detach=False)]
    other = _spawn(other_id, detach=True)
    try:
        deadline = time.monotonic() + 5
        while len(interrupt.marked(run_id)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(interrupt.marked(run_id)) == sorted(p.pid for p in mine)
        assert interrupt.kill_run(run_id) == []
        for p in mine:
            assert p.wait(5) == -signal.SIGKILL
        assert other.poll() is None and interrupt.marked(other_id) == [other.pid]
    finally:
        for p in [*mine, other]:
            p.kill()
            p.wait()


def test_signals_only_set_a_flag_inside_the_block_and_come_back_after():
    before = signal.getsignal(signal.SIGINT)
    with interrupt.Signals() as sig:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        assert sig.received == signal.SIGTERM  # the first one counts
    assert signal.getsignal(signal.SIGINT) is before
    assert interrupt.Interrupted(signal.SIGINT, "x").exit_code == 130
    assert interrupt.Interrupted(signal.SIGTERM, "x").exit_code == 143
