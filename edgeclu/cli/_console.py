"""Stdout is data, stderr is chatter: two consoles, one per stream."""

from __future__ import annotations

from rich.console import Console

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def say(message: str) -> None:
    err.print(message, highlight=False)
