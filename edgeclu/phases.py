"""The phases of a long run and each node's state in each: task events in, a board out (pure).

A task's phase comes from where it is (its role and tasks file, see :func:`locate_site`), never
from its name, so renaming a task or adding one changes nothing here. A cell (node x phase) is
``waiting`` until the node's first task of that phase starts, ``working`` while it runs, then
``done`` (nothing changed), ``changed``, ``failed`` or ``unreachable``; the phases after a failure
are ``skipped``. A phase that does not concern a node (agents do not start servers) has no cell.
Task names never reach the board: a task that is then skipped can never show as the current work.

Steps edgeclu does itself (preflight, the kubeconfig, a backup) are fed as :class:`Step` events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from edgeclu.playbook import PlaybookResult, TaskEvent

WAITING, WORKING, DONE, CHANGED, FAILED, UNREACHABLE, SKIPPED = (
    "waiting", "working", "done", "changed", "failed", "unreachable", "skipped")
FINAL = (DONE, CHANGED, FAILED, UNREACHABLE, SKIPPED)
BAD = (FAILED, UNREACHABLE)


@dataclass(frozen=True)
class Phase:
    key: str
    title: str
    applies: Callable[[str, bool], bool] = lambda role, first: True  # (node's role, first server?) -> bool
    own: bool = False  # a step edgeclu does itself (fed as Step events), not a playbook's


def _servers(role: str, first: bool) -> bool:
    return role == "server"


def _agents(role: str, first: bool) -> bool:
    return role == "agent"


def _first(role: str, first: bool) -> bool:
    return first


UP_PHASES = (
    Phase("preflight", "preflight", own=True),
    Phase("prepare", "prepare nodes"),
    Phase("install", "install k3s"),
    Phase("servers", "start servers one by one", _servers),
    Phase("agents", "join agents", _agents),
    Phase("ready", "wait for Ready"),
    Phase("addons", "add-ons"),
    Phase("agent", "node agent"),
    Phase("kubeconfig", "kubeconfig", _first, own=True),
)
ADD_PHASES = UP_PHASES[:-1]  # add merges no kubeconfig
RESTORE_PHASES = (Phase("restore", "restore the datastore", _servers, own=True), *UP_PHASES[1:])
RESET_PHASES = (
    Phase("backup", "backup", _first, own=True),
    Phase("uninstall", "uninstall k3s and the node agent"),
)
# edgeclu upgrade: its own steps per node, in the order it does them (lifecycle/upgrade.py)
UPGRADE_PHASES = (
    Phase("drain", "cordon and drain", own=True),
    Phase("install", "install the new k3s", own=True),
    Phase("uncordon", "uncordon", own=True),
    Phase("ready", "wait for Ready on the new version", own=True),
)
# edgeclu remove: its own steps on the one node (lifecycle/nodes.py)
REMOVE_PHASES = (
    Phase("quorum", "check etcd quorum", _servers, own=True),
    Phase("drain", "cordon and drain", own=True),
    Phase("stop", "disable and stop k3s", own=True),
    Phase("delete", "delete the Node object", own=True),
    Phase("uninstall", "uninstall k3s and the node agent", own=True),
    Phase("inventory", "drop it from the inventory", own=True),
)
ROLE_PHASE = {"prereq": "prepare", "raspberrypi": "prepare", "addons": "addons", "edgeclu_agent": "agent"}


def locate_site(ev: TaskEvent, host_role: str) -> str | None:
    """The phase of a site.yml task, from its role and tasks file (``k3s_install/start.yml``)."""
    if ev.role in ROLE_PHASE:
        return ROLE_PHASE[ev.role]
    if "/" not in ev.where:  # not in a role's tasks file: the start of the check of a role's inputs (its
        return None         # result names the entry point, see playbook.event_to_task_event)
    tasks_file = ev.where.split("/", 1)[-1]
    if ev.role == "k3s_server" and tasks_file == "ready.yml":
        return "ready"
    if ev.role in ("k3s_install", "k3s_server", "k3s_agent"):
        if tasks_file == "start.yml":  # the same file starts a server or an agent
            return "servers" if host_role == "server" else "agents"
        return "install"
    return None


def locate_reset(ev: TaskEvent, host_role: str) -> str | None:
    return "uninstall"


@dataclass(frozen=True)
class Step:
    """A step edgeclu does itself: ``hosts`` None means every node the phase concerns."""
    phase: str
    state: str  # working | done | changed | failed | unreachable | skipped
    hosts: tuple[str, ...] | None = None
    message: str = ""


@dataclass
class Cell:
    state: str = WAITING
    started: float | None = None
    ended: float | None = None
    changes: list[TaskEvent] = field(default_factory=list)
    reason: str = ""  # why it failed, from the node (raw: escape it before display)


@dataclass
class Board:
    """Per node, per phase: a :class:`Cell`. Feed it with :meth:`apply`; it never does I/O."""
    phases: tuple[Phase, ...]
    roles: dict[str, str]  # node -> server | agent, in inventory order
    first: str | None = None
    locate: Callable[[TaskEvent, str], str | None] = locate_site
    default_role: str = "agent"  # of a node first seen in an event (edgeclu add)
    cells: dict[str, dict[str, Cell]] = field(default_factory=dict)
    looks: dict[tuple[str, str], dict] = field(default_factory=dict)  # (node, role) -> what k3s_node_state saw
    seen: set[str] = field(default_factory=set)  # nodes the playbook has reached

    def __post_init__(self) -> None:
        for host in self.roles:
            self._add_host(host)

    def _add_host(self, host: str) -> None:
        role = self.roles.setdefault(host, self.default_role)
        self.cells[host] = {p.key: Cell() for p in self.phases if p.applies(role, host == self.first)}

    @property
    def keys(self) -> list[str]:
        return [p.key for p in self.phases]

    def cell(self, host: str, phase: str) -> Cell | None:
        return self.cells.get(host, {}).get(phase)

    def apply(self, ev: TaskEvent | Step, now: float) -> list[tuple[str, str]]:
        """Take one event; return the cells ``(node, phase)`` it brought to a final state."""
        if isinstance(ev, Step):
            return self._step(ev, now)
        if not ev.host:  # "finished": the playbook is over, its recap comes with finish()
            return []
        if ev.host not in self.cells:
            self._add_host(ev.host)
        row = self.cells[ev.host]
        phase = self.locate(ev, self.roles[ev.host])
        if phase not in row:  # a task outside any phase: it belongs to the node's current one
            phase = next((k for k in reversed(self.keys) if k in row and row[k].state != WAITING),
                         next(iter(row), None))
            if phase is None:
                return []
        cell = row[phase]
        if cell.state in FINAL:
            return []
        # Ansible's linear strategy runs a task on every host before the next task: once one node
        # is at a task of this phase, every node the playbook reached is done with the phases before
        self.seen.add(ev.host)
        closed = [c for host in self.seen for c in self._close_before(host, phase, now)]
        if cell.state == WAITING:
            cell.state, cell.started = WORKING, now
        if ev.status == "ok" and ev.action.endswith("k3s_node_state") and ev.role:
            self.looks[(ev.host, ev.role)] = ev.res
        elif ev.status == "changed":
            cell.changes.append(ev)
        elif ev.status in BAD and not ev.ignored:
            cell.state, cell.ended, cell.reason = ev.status, now, ev.message
            closed.append((ev.host, phase))
            closed += self._skip_after(ev.host, phase, now)
        return closed

    def _close_before(self, host: str, phase: str, now: float) -> list[tuple[str, str]]:
        closed = []
        order = self.keys
        for key, cell in self.cells[host].items():
            if order.index(key) >= order.index(phase):
                break
            if cell.state not in FINAL:
                cell.state = CHANGED if cell.changes else DONE
                cell.started = cell.started if cell.started is not None else now
                cell.ended = now
                closed.append((host, key))
        return closed

    def _skip_after(self, host: str, phase: str, now: float) -> list[tuple[str, str]]:
        keys = list(self.cells[host])
        closed = []
        for key in keys[keys.index(phase) + 1:]:
            cell = self.cells[host][key]
            if cell.state not in FINAL:
                cell.state, cell.ended = SKIPPED, now
                closed.append((host, key))
        return closed

    def _step(self, step: Step, now: float) -> list[tuple[str, str]]:
        closed = []
        for host in step.hosts if step.hosts is not None else list(self.cells):
            cell = self.cell(host, step.phase)
            if cell is None or cell.state in FINAL:
                continue
            if step.state == WORKING:
                if cell.state == WAITING:
                    cell.state, cell.started = WORKING, now
                continue
            closed += self._close_before(host, step.phase, now)
            cell.started = cell.started if cell.started is not None else now
            cell.state, cell.ended, cell.reason = step.state, now, step.message
            closed.append((host, step.phase))
            if step.state in BAD:
                closed += self._skip_after(host, step.phase, now)
        return closed

    def finish(self, result: PlaybookResult, now: float) -> list[tuple[str, str]]:
        """The playbook is over: close its phases from its recap. A node it never reached is
        ``skipped``; a node it failed without a failure event (a recap only) fails where it stood."""
        phases = [p.key for p in self.phases if not p.own]
        closed = []
        for host, row in self.cells.items():
            rec = result.hosts.get(host)
            blamed = rec is None or rec.healthy or self.failed(host) is not None
            for key in [k for k in phases if k in row]:
                cell = row[key]
                if cell.state in FINAL:
                    continue
                if rec is None:
                    cell.state = SKIPPED
                elif not rec.healthy:
                    cell.state = SKIPPED if blamed else UNREACHABLE if rec.unreachable else FAILED
                    if not blamed:
                        cell.reason = "; ".join(rec.failures[:2]) or "the playbook failed here"
                        blamed = True
                else:
                    cell.state = CHANGED if cell.changes else DONE
                cell.started = cell.started if cell.started is not None else now
                cell.ended = now
                closed.append((host, key))
        return closed

    # -- read-outs for the renderer and the summary -----------------------------------------
    def phase_span(self, phase: str, now: float) -> float | None:
        """Seconds from the phase's first start to its last end (or now, while it runs)."""
        cells = [row[phase] for row in self.cells.values() if phase in row and row[phase].started is not None]
        if not cells:
            return None
        start = min(c.started for c in cells)
        end = now if any(c.state not in FINAL for c in cells) else max(c.ended or now for c in cells)
        return max(end - start, 0.0)

    def progress(self, phase: str) -> tuple[int, int]:
        """(cells final, cells) of a phase, across nodes."""
        cells = [row[phase] for row in self.cells.values() if phase in row]
        return sum(c.state in FINAL for c in cells), len(cells)

    def phase_state(self, phase: str) -> str:
        """One word for the phase as a whole: the worst of its cells, else how far it is."""
        states = [row[phase].state for row in self.cells.values() if phase in row]
        if not states:
            return SKIPPED
        for s in (FAILED, UNREACHABLE, WORKING):
            if s in states:
                return s
        if all(s in FINAL for s in states):
            if all(s == SKIPPED for s in states):
                return SKIPPED
            return CHANGED if CHANGED in states else DONE
        return WORKING if any(s != WAITING for s in states) else WAITING

    def failed(self, host: str) -> tuple[str, Cell] | None:
        return next(((k, c) for k, c in self.cells.get(host, {}).items() if c.state in BAD), None)


def bar(done: int, total: int, width: int = 10) -> str:
    """``██████░░░░`` for done/total (pure)."""
    filled = round(width * done / total) if total else width
    return "█" * filled + "░" * (width - filled)
