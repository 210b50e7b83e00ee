"""Where the bundled playbooks/ and templates/ are: inside the wheel, or the source tree."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """``playbooks`` or ``templates``: ``edgeclu/_data/<name>`` when installed, else ``<repo>/<name>``."""
    for candidate in (_PKG / "_data" / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"edgeclu data directory {name!r} not found (broken install?)")
