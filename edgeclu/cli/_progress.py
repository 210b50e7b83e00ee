"""Per-host, per-task progress for playbook runs, on stderr.

On a terminal: a live table (one row per host: current task, counts, state).
Elsewhere (CI, pipes): one line per changed or failed task, so logs stay readable.
"""

from __future__ import annotations

import threading
import time

from rich.live import Live
from rich.table import Table
from rich.text import Text

from edgeclu.cli._console import err, plain, safe, say
from edgeclu.playbook import PlaybookResult, TaskEvent

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
