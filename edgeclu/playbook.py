"""Run the bundled playbooks through ansible-runner; the only module importing ansible_runner.

Events are reduced to :class:`TaskEvent` (host, task, status, message) for progress
display, and to a :class:`PlaybookResult` with per-host recaps, changed tasks and
failures. Host keys are checked strictly (``UserKnownHostsFile`` from the inventory),
and task output marked ``no_log`` never reaches us.

A run stopped before its end (SIGINT/SIGTERM, a lost cluster lock, a timeout) counts as
failed on every host; every process it started is gone before :func:`run_playbook`
returns or raises (see :mod:`edgeclu.interrupt`).
"""

from __future__ import annotations

import os
import shlex
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgeclu import interrupt, rundir
from edgeclu.errors import EdgecluError
from edgeclu.resources import collections_path, playbook_fqcn

STATUS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "unreachable",
    "runner_on_skipped": "skipped",
    "runner_item_on_failed": "failed",
}


@dataclass(frozen=True)
class TaskEvent:
    host: str
    task: str
    status: str  # started | ok | changed | failed | unreachable | skipped
    message: str = ""
    ignored: bool = False
    # where the task is (edgeclu.phases places it from these): its role, its tasks file
    # ("k3s_install/start.yml"), its module; and its result (already censored for no_log)
    role: str = ""
    where: str = ""
    action: str = ""
    res: dict = field(default_factory=dict, compare=False, repr=False)


@dataclass
class HostRecap:
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    changed_tasks: list[str] = field(default_factory=list)
    diffs: list[dict] = field(default_factory=list)  # Ansible's diffs of the changed tasks (--diff), node text raw
    failures: list[str] = field(default_factory=list)
    finished: bool = True  # False: the play stopped before this host's recap

    @property
    def healthy(self) -> bool:
        return self.finished and not self.failed and not self.unreachable


@dataclass
class PlaybookResult:
    playbook: str
    rc: int
    status: str
    hosts: dict[str, HostRecap]

    @property
    def ok(self) -> bool:
        return self.rc == 0 and all(h.healthy for h in self.hosts.values())

    @property
    def changed(self) -> int:
        return sum(h.changed for h in self.hosts.values())

    @property
    def failed_hosts(self) -> dict[str, HostRecap]:
        return {n: h for n, h in self.hosts.items() if not h.healthy}

    def failures_of(self, hosts: list[str] | tuple[str, ...]) -> dict[str, str]:
        """Why each of ``hosts`` did not converge (a host the run never reached included), in order."""
        failed = {}
        for n in hosts:
            rec = self.hosts.get(n)
            if rec is None or not rec.healthy:
                failed[n] = "; ".join(rec.failures[:2]) if rec and rec.failures else "the playbook did not finish on it"
        return failed


# Whatever the user's environment or ansible.cfg says: no debug output (it prints secrets despite
# no_log), no log file on the controller, no module files (with their arguments) left on nodes.
SECRET_SAFE_ENV = {
    "ANSIBLE_DEBUG": "0",
    "ANSIBLE_LOG_PATH": os.devnull,  # an empty value would mean the working directory
    "ANSIBLE_KEEP_REMOTE_FILES": "0",
}


def ssh_args(known_hosts: Path, accept_new: bool = False) -> str:
    """OpenSSH options for ansible: strict host keys against our known_hosts, connection reuse."""
    policy = "accept-new" if accept_new else "yes"
    return " ".join([
        "-o ControlMaster=auto", "-o ControlPersist=30s",
        f"-o UserKnownHostsFile={shlex.quote(str(known_hosts))}",
        f"-o StrictHostKeyChecking={policy}",
        "-o ConnectTimeout=5", "-o ServerAliveInterval=2", "-o ServerAliveCountMax=3",
        "-o BatchMode=yes",
    ])


def ssh_policy_vars(known_hosts: Path, accept_new: bool = False) -> dict:
    """edgeclu's ssh policy as Ansible variables, passed as extra-vars: the highest precedence, so no
    inventory, group_vars or host_vars file can replace the options or switch host-key checks off.
    OpenSSH takes the first value of an option and Ansible puts ``ansible_ssh_args`` first."""
    return {"ansible_ssh_args": ssh_args(known_hosts, accept_new), "ansible_ssh_extra_args": "",
            "ansible_host_key_checking": True, "ansible_ssh_host_key_checking": True}


def event_to_task_event(event: dict) -> TaskEvent | None:
    """Reduce one ansible-runner event to what progress and results need (pure)."""
    name = event.get("event", "")
    data = event.get("event_data") or {}
    host = data.get("host")
    if not host:
        return None
    task = data.get("task") or data.get("task_action") or "?"
    place = {"role": data.get("role") or "", "where": task_file(data.get("task_path") or ""),
             "action": data.get("resolved_action") or data.get("task_action") or ""}
    if name == "runner_on_start":
        return TaskEvent(host, task, "started", **place)
    status = STATUS.get(name)
    if status is None:
        return None
    res = data.get("res") or {}
    checked = res.get("validate_args_context") if isinstance(res, dict) else None
    if isinstance(checked, dict) and checked.get("type") == "role" and place["role"]:
        # Ansible's check of a role's inputs (meta/argument_specs.yml), before its entry point's tasks: the
        # task_path is the play's; where it belongs is the entry point's tasks file (main, tasks_from)
        place["where"] = f"{place['role']}/{checked.get('argument_spec_name') or 'main'}.yml"
    if status == "ok" and (res.get("changed") or _censored_changed(event, res)):
        status = "changed"
    message = ""
    if status in ("failed", "unreachable"):
        message = _failure_message(res)
        if status == "unreachable":  # ssh's own last line says it best
            message = message.replace("\r", "").strip().splitlines()[-1]
    return TaskEvent(host, task, status, message, ignored=bool(data.get("ignore_errors")), **place,
                     res=res if isinstance(res, dict) else {})


def diffs_of(res: dict) -> list[dict]:
    """Ansible's ``diff`` of a task result (one dict or a list; a loop's per item) as a list (pure)."""
    found = []
    for r in [res, *(res.get("results") or [])]:
        diff = r.get("diff") if isinstance(r, dict) else None
        found += [d for d in (diff if isinstance(diff, list) else [diff]) if isinstance(d, dict) and d]
    return found


def task_file(task_path: str) -> str:
    """``.../roles/k3s_install/tasks/start.yml:12`` -> ``k3s_install/start.yml``; a playbook's own
    task -> its file name (``reset.yml``) (pure)."""
    path = task_path.rsplit(":", 1)[0] if task_path[-1:].isdigit() else task_path
    parts = path.replace("\\", "/").split("/")
    if len(parts) >= 4 and parts[-2] == "tasks" and parts[-4] == "roles":
        return f"{parts[-3]}/{parts[-1]}"
    return parts[-1]


def _censored_changed(event: dict, res: dict) -> bool:
    """A no_log result reaches us as ``{"censored": ...}`` only; whether it changed is in the line
    Ansible's default callback printed for it (``changed: [host]``, ansible/plugins/callback/default.py)."""
    return bool(res.get("censored")) and str(event.get("stdout") or "").lstrip().startswith("changed: [")


STOPPED = {"canceled": "the playbook was stopped before it finished",
           "timeout": "the playbook timed out before it finished"}


def apply_stats(hosts: dict[str, HostRecap], stats: dict | None, status: str) -> None:
    """Fill the recaps from ansible's final stats (pure). A host missing from them (it had only
    a start event, say) did not finish; after a canceled or timed-out run none did."""
    stats = stats or {}
    for key, attr in (("ok", "ok"), ("changed", "changed"), ("failures", "failed"),
                      ("dark", "unreachable"), ("skipped", "skipped")):
        for host, count in (stats.get(key) or {}).items():
            setattr(hosts.setdefault(host, HostRecap()), attr, count)
    seen = {h for key in ("processed", "ok", "changed", "failures", "dark", "skipped")
            for h in (stats.get(key) or {})}
    for host, recap in hosts.items():
        why = STOPPED.get(status) or (None if host in seen else "the playbook did not finish on it")
        if why:
            recap.finished = False
            recap.failures.append(why)


def in_flight(running: dict[str, str]) -> str:
    """``'Start the k3s servers' on node1, node2; 'X' on node3`` (pure)."""
    by_task: dict[str, list[str]] = {}
    for host, task in running.items():
        by_task.setdefault(task, []).append(host)
    return "; ".join(f"{task!r} on {', '.join(hosts)}" for task, hosts in by_task.items())


def stopped_message(playbook: str, why: str, running: dict[str, str]) -> str:
    """What an interrupted run tells the user: what may be half-done, and that a re-run resumes."""
    doing = (f"it was running {in_flight(running)}: that step may be half-done there"
             if running else "no task was running on a node")
    return (f"{why}: stopped {playbook} and every process it started; {doing}. Nothing after it ran and "
            "no node was marked converged. Run the same command again: it resumes from what the nodes have")


def _failure_message(res: dict) -> str:
    if res.get("censored"):
        return "failed (output hidden: no_log)"
    msg = res.get("msg") or ""
    stderr = (res.get("stderr") or "").strip()
    if stderr:
        msg = f"{msg}: {stderr.splitlines()[-1]}" if msg else stderr.splitlines()[-1]
    return str(msg).strip() or "failed"


def run_playbook(
    inventory: str | Path,
    playbook: str,
    *,
    known_hosts: Path,
    accept_new: bool = False,
    extravars: dict | None = None,
    limit: str | None = None,
    check: bool = False,
    forks: int | None = None,
    on_event: Callable[[TaskEvent], None] | None = None,
    verbosity: int = 0,
) -> PlaybookResult:
    import ansible_runner

    try:  # one of the collection's playbooks by name, or a playbook file by its absolute path (tests)
        fqcn = playbook if Path(playbook).is_absolute() else playbook_fqcn(playbook)
    except FileNotFoundError as e:
        raise EdgecluError(str(e)) from None
    from edgeclu.lock import LockLost, lease_problem

    workdir = rundir.new_run_dir()  # 0700, per user, swept if this process dies (see edgeclu.rundir)
    hosts: dict[str, HostRecap] = {}
    running: dict[str, str] = {}  # host -> the task started there and not finished yet
    run_id = uuid.uuid4().hex

    def handler(event: dict) -> bool:
        if event.get("event") == "playbook_on_stats" and on_event:
            on_event(TaskEvent("", playbook, "finished"))  # the playbook is done; its recap is next
        te = event_to_task_event(event)
        if te is None:
            return True
        if te.status == "started":
            running[te.host] = te.task
        else:
            running.pop(te.host, None)
        recap = hosts.setdefault(te.host, HostRecap())
        if te.status == "changed":
            recap.changed_tasks.append(te.task)
            recap.diffs += diffs_of(te.res)
        if te.status in ("failed", "unreachable") and not te.ignored:
            recap.failures.append(f"{te.task}: {te.message}")
        if on_event:
            on_event(te)
        return True

    cmdline = ["--check", "--diff"] if check else []
    env = {
        "ANSIBLE_SSH_ARGS": ssh_args(known_hosts, accept_new),
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "True",
        # edgeclu's own copy of edgeclu.cluster first (another installed version must not shadow it)
        "ANSIBLE_COLLECTIONS_PATH": str(collections_path()),
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_INTERPRETER_PYTHON": "auto_silent",
        "ANSIBLE_LOCAL_TEMP": str(workdir / "tmp"),
        # per run: the same address may be another machine next time (and in the lab, another netns)
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(workdir / "cp"),
        "PATH": path_with_ansible(),
        interrupt.RUN_MARK: run_id,  # how kill_run finds every process of this run
        **SECRET_SAFE_ENV,
    }
    lost: list[str] = []

    def cancel() -> bool:  # polled by ansible-runner while the playbook runs
        if not lost and (why := lease_problem()):
            lost.append(why)
        return bool(signals.received or lost)

    try:
        with interrupt.Signals() as signals:
            try:
                r = ansible_runner.run(
                    private_data_dir=str(workdir),
                    playbook=fqcn,
                    inventory=str(Path(inventory).resolve()),
                    extravars={**(extravars or {}), **ssh_policy_vars(known_hosts, accept_new)},
                    limit=limit,
                    forks=forks or 10,
                    cmdline=" ".join(cmdline) or None,
                    envvars=env,
                    event_handler=handler,
                    quiet=True,
                    verbosity=verbosity,
                    suppress_env_files=True,
                    cancel_callback=cancel,
                    settings={"pexpect_timeout": 0.2},  # how often cancel() is asked
                )
            finally:
                interrupt.kill_run(run_id)  # before the lock can be released
        if signals.received:
            raise interrupt.Interrupted(signals.received, stopped_message(
                playbook, f"interrupted by {interrupt.SIGNAL_NAMES[signals.received]}", running))
        if lost:
            raise LockLost(stopped_message(playbook, lost[0], running))
        apply_stats(hosts, r.stats, r.status)
        if r.rc != 0 and not hosts:
            tail = r.stdout.read()[-1500:] if r.stdout else ""
            raise EdgecluError(f"ansible-playbook {playbook} failed before reaching any host (rc={r.rc}):\n"
                               + _redact(tail))
        return PlaybookResult(playbook, r.rc, r.status, hosts)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _redact(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if "token" not in line.lower())


def path_with_ansible() -> str:
    """Make sure the ansible-playbook next to this Python (the venv) is found first."""
    import sys

    bindir = str(Path(sys.executable).parent)
    return os.pathsep.join([bindir, os.environ.get("PATH", "")])
