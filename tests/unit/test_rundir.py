"""No secret left behind by a playbook run: ansible-runner's private data dir (it holds the
environment, so with ``token_env`` the token) lives in a 0700 per-user directory, a run
killed with SIGKILL is swept by the next one, and no debug output or log file is written
whatever the user's environment says. Real ansible-runner runs (on this machine, local
connection) and a real SIGKILL."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from edgeclu import rundir
from edgeclu.errors import EdgecluError
from edgeclu.playbook import run_playbook

ROOT = Path(__file__).resolve().parents[2]
PING = str(ROOT / "tests/fixtures/ping.yml")  # a test playbook: SSH, Python and sudo


@pytest.fixture()
def runtime(tmp_path, monkeypatch):
    run = tmp_path / "xdg"
    run.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    return run


def test_a_run_keeps_its_private_dir_in_the_runtime_dir_and_writes_no_log(runtime, tmp_path, monkeypatch):
    inventory = tmp_path / "inventory.yml"
    inventory.write_text("k3s_cluster:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
                         f"      ansible_become: false\n      ansible_python_interpreter: {sys.executable}\n")
    log = tmp_path / "ansible.log"
    monkeypatch.setenv("ANSIBLE_LOG_PATH", str(log))  # the user's own settings must not apply to edgeclu's runs
    monkeypatch.setenv("ANSIBLE_DEBUG", "1")
    monkeypatch.setenv("EDGECLU_TEST_TOKEN", "s3cret-token-value")
    seen = []

    def on_event(_event):
        for d in (runtime / "edgeclu").iterdir():
            seen.append((d, d.stat().st_mode & 0o777))

    result = run_playbook(inventory, PING, known_hosts=tmp_path / "known_hosts", on_event=on_event)
    assert result.ok, result
    assert seen and all(d.parent == runtime / "edgeclu" and mode == 0o700 for d, mode in seen)
    assert (runtime / "edgeclu").stat().st_mode & 0o777 == 0o700
    assert list((runtime / "edgeclu").iterdir()) == []  # removed after the run
    assert not log.exists()


def test_a_run_killed_with_sigkill_is_swept_by_the_next(runtime):
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys, time
        from edgeclu import rundir
        d = rundir.new_run_dir()
        (d / "env").write_text("TOKEN=s3cret")
        print(d, flush=True)
        time.sleep(120)
    """)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        left = Path(child.stdout.readline().strip())
        assert left.parent == runtime / "edgeclu" and (left / "env").exists()
        # a live run's directory is not touched by another run
        mine = rundir.new_run_dir()
        assert left.exists()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        child.stdout.close()
    assert left.exists()  # SIGKILL: nothing could clean up
    other = rundir.new_run_dir()
    assert not left.exists() and mine.exists() and other.exists()


def test_without_a_runtime_dir_a_private_dir_in_tmp(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    root = rundir.root_dir()
    assert root == tmp_path / f"edgeclu-{os.getuid()}" and root.stat().st_mode & 0o777 == 0o700
    # one made by someone else's hand, readable by others, or a symlink, is refused
    root.chmod(0o755)
    with pytest.raises(EdgecluError, match="is not a directory of yours with mode 0700"):
        rundir.root_dir()
    root.rmdir()
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    root.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(EdgecluError, match="is not a directory of yours"):
        rundir.root_dir()
    # a runtime dir that is not private is not used
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    root.unlink()
    assert rundir.root_dir({"XDG_RUNTIME_DIR": str(shared)}) == root


def test_stale_is_a_dead_pid_or_a_reused_one():
    me = rundir.owner_tag()
    assert not rundir.is_stale(f"run-{me}-abc123")
    pid = os.getpid()
    assert rundir.is_stale(f"run-{pid}-1-abc123")  # same pid, another start time: reused
    dead = subprocess.Popen(["true"])
    dead.wait()
    time.sleep(0.05)
    assert rundir.is_stale(f"run-{dead.pid}-{rundir.owner_tag(dead.pid).split('-')[1]}-abc")
    assert not rundir.is_stale("something-else")
    assert not rundir.is_stale("run-notapid-1-x")
