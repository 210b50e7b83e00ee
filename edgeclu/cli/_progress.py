"""Progress of long runs on stderr, and the summary in words at their end.

:class:`PhaseProgress` (the default): on a terminal a live view, one row per phase (state, a bar
across the nodes, elapsed time, each node's state); elsewhere (CI, pipes) one line per phase per
node that changed or failed. It feeds :class:`edgeclu.phases.Board`, which does the bookkeeping.
:class:`PlaybookProgress` (``--verbose``): per host, per task, as Ansible names them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from rich.live import Live
from rich.table import Table
from rich.text import Text

from edgeclu import phases as ph
from edgeclu.cli._console import err, plain, safe, say
from edgeclu.playbook import PlaybookResult, TaskEvent
from edgeclu.summary import NodeSummary, words_line

_CELL_STYLE = {ph.WAITING: "dim", ph.WORKING: "bold cyan", ph.DONE: "green", ph.CHANGED: "yellow",
               ph.FAILED: "bold red", ph.UNREACHABLE: "bold red", ph.SKIPPED: "dim"}
_MARK = {ph.WAITING: " ", ph.WORKING: "▶", ph.DONE: "✓", ph.CHANGED: "✓", ph.FAILED: "✗",
         ph.UNREACHABLE: "✗", ph.SKIPPED: "-"}


def render_board(board: ph.Board, title: str, now: float, started: float) -> Table:
    """The live view: a row per phase, a column per node (pure: the board and the clock in)."""
    t = Table(title=f"{title}  {now - started:.0f}s", title_justify="left", box=None, pad_edge=False,
              header_style="bold")
    for col in ("", "phase", "progress", "", "time", *board.cells):
        t.add_column(col, no_wrap=True)
    for p in board.phases:
        state = board.phase_state(p.key)
        done, total = board.progress(p.key)
        span = board.phase_span(p.key, now)
        cells = [Text(c.state, style=_CELL_STYLE[c.state]) if (c := board.cell(h, p.key)) else Text("")
                 for h in board.cells]
        t.add_row(Text(_MARK[state], style=_CELL_STYLE[state]), Text(p.title, style=_CELL_STYLE[state]),
                  Text(ph.bar(done, total), style=_CELL_STYLE[state]), f"{done}/{total}",
                  "" if span is None else f"{span:.1f}s", *cells)
    return t


class PhaseProgress:
    """Feed with task events (``on_event``) and :meth:`step`; ends with :meth:`finish`."""

    def __init__(self, board: ph.Board, title: str, *, verbose: bool = False,
                 clock: Callable[[], float] = time.monotonic):
        self.board, self.title, self.clock = board, title, clock
        self.lock = threading.Lock()
        self.t0 = clock()
        # --verbose: today's task-level view shows; the board still keeps count for the summary
        self.tasks = PlaybookProgress(list(board.cells), title) if verbose else None
        self.live = Live(console=err, get_renderable=self._render, refresh_per_second=4, transient=False) \
            if err.is_terminal and not verbose else None

    def _render(self) -> Table:
        with self.lock:
            return render_board(self.board, self.title, self.clock(), self.t0)

    def __enter__(self) -> PhaseProgress:
        if self.tasks:
            self.tasks.__enter__()
        elif self.live:
            self.live.__enter__()
        else:
            say(f"{self.title}: {len(self.board.cells)} node(s)" if self.board.cells else self.title)
        return self

    def __exit__(self, *exc) -> None:
        if self.tasks:
            self.tasks.__exit__(*exc)
        elif self.live:
            self.live.refresh()
            self.live.__exit__(*exc)

    def __call__(self, ev: TaskEvent | ph.Step) -> None:
        if self.tasks and isinstance(ev, TaskEvent):
            self.tasks(ev)
        with self.lock:
            closed = self.board.apply(ev, self.clock())
        self._log(closed)

    step = __call__

    def finish(self, result: PlaybookResult) -> None:
        with self.lock:
            closed = self.board.finish(result, self.clock())
        self._log(closed)

    def _log(self, closed: list[tuple[str, str]]) -> None:
        """Off a terminal: a line per cell that ended changed or failed."""
        if self.live or self.tasks:
            return
        titles = {p.key: p.title for p in self.board.phases}
        for host, key in closed:
            cell = self.board.cells[host][key]
            if cell.state in (ph.CHANGED, *ph.BAD):
                why = f": {plain(cell.reason)}" if cell.reason else ""
                err.print(f"  {host}: {titles[key]}: {cell.state}{why}", markup=False, highlight=False)


def print_words(lines: list[str], status: str, ok: bool, steps: list[str]) -> None:
    """A summary that is not per node (upgrade, remove, restore): its lines, the outcome, what next."""
    if lines:
        say("[bold]summary[/]")
    for line in lines:
        err.print(Text(f"  {plain(line)}"), highlight=False)
    err.print(Text(status, style="bold green" if ok else "bold red"), highlight=False)
    _next(steps)


def _next(steps: list[str]) -> None:
    if steps:
        say("[bold]next[/]")
        for s in steps:
            err.print(Text(f"  {plain(s)}"), highlight=False)


def print_summary(nodes: list[NodeSummary], status: str, steps: list[str]) -> None:
    """Per node what changed in words (or why it failed and what to try), the outcome, what to run next."""
    width = max((len(n.name) for n in nodes), default=0)
    if nodes:
        say("[bold]summary[/]")
    for n in nodes:
        line = Text(f"  {n.name.ljust(width)}  ")
        if n.status in (*ph.BAD, "skipped"):
            line.append(f"{n.status.upper()}", style="bold red")
            line.append((f" at {n.phase}" if n.phase else "") + f": {plain(n.reason)}")
            if n.changes:
                line.append(f" (before that: {'; '.join(n.changes)})", style="dim")
            err.print(line, highlight=False)
            err.print(Text(f"  {' ' * width}  try: {n.hint}", style="yellow"), highlight=False)
        else:
            line.append(words_line(n), style="green" if n.status == "changed" else "dim")
            err.print(line, highlight=False)
    bad = any(n.status in (*ph.BAD, "skipped") for n in nodes)
    err.print(Text(status, style="bold red" if bad else "bold green"), highlight=False)
    _next(steps)

_STYLE = {"failed": "red", "unreachable": "red", "changed": "yellow", "ok": "green", "skipped": "dim"}


class PlaybookProgress:
    def __init__(self, hosts: list[str], title: str):
        self.title = title
        self.rows = {h: {"task": "waiting", "ok": 0, "changed": 0, "failed": 0, "state": "…"} for h in hosts}
        self.lock = threading.Lock()
        self.t0 = time.monotonic()
        self.live = Live(self._table(), console=err, refresh_per_second=8, transient=False) \
            if err.is_terminal else None

    def __enter__(self) -> PlaybookProgress:
        if self.live:
            self.live.__enter__()
        else:
            say(f"{self.title}: {len(self.rows)} host(s)" if self.rows else self.title)
        return self

    def __exit__(self, *exc) -> None:
        if self.live:
            self.live.update(self._table())
            self.live.__exit__(*exc)

    def __call__(self, ev: TaskEvent) -> None:
        if not ev.host:
            return
        with self.lock:
            row = self.rows.setdefault(ev.host, {"task": "", "ok": 0, "changed": 0, "failed": 0, "state": ""})
            row["task"] = ev.task
            if ev.status == "started":
                row["state"] = "running"
            elif ev.status in ("ok", "skipped"):
                row["ok"] += ev.status == "ok"
            elif ev.status == "changed":
                row["changed"] += 1
            elif ev.status in ("failed", "unreachable") and not ev.ignored:
                row["failed"] += 1
                row["state"] = ev.status
        if self.live:
            self.live.update(self._table())
        elif ev.status in ("changed", "failed", "unreachable") and not ev.ignored:
            detail = f": {ev.message}" if ev.message else ""
            say(f"  {ev.host}: {ev.status}: {safe(ev.task + detail)}")

    def _table(self) -> Table:
        t = Table(title=f"{self.title} ({time.monotonic() - self.t0:.0f}s)", title_justify="left", expand=False)
        for col in ("host", "task", "ok", "changed", "failed"):
            t.add_column(col)
        for host, r in self.rows.items():
            style = "red" if r["failed"] else ""
            t.add_row(host, Text(plain(r["task"])[:50]), str(r["ok"]), str(r["changed"]), str(r["failed"]), style=style)
        return t


def print_recap(result: PlaybookResult) -> None:
    """One line per host, then the failures with their reasons (stderr)."""
    for host, h in result.hosts.items():
        state = "[red]FAILED[/]" if h.failed else "[red]UNREACHABLE[/]" if h.unreachable else "[green]ok[/]"
        say(f"  {host}: {state}  ok={h.ok} changed={h.changed} failed={h.failed} "
            f"unreachable={h.unreachable} skipped={h.skipped}")
    for host, h in result.failed_hosts.items():
        for reason in h.failures[:3]:
            say(f"  [red]✗ {host}[/]: {safe(reason)}")
