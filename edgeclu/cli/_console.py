"""Stdout is data, stderr is chatter: two consoles, one per stream.

Text from elsewhere (a node's stderr or journal, an agent's JSON, mDNS TXT) is data, never
markup or terminal control: :func:`plain` strips control characters and escape sequences,
:func:`safe` also escapes Rich markup for embedding in a ``say()`` message, and :func:`tell`
prints a whole message as plain text (the ``report`` callback handed to lower layers).
"""

from __future__ import annotations

import re

from rich.console import Console
from rich.markup import escape

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

# whole escape sequences first (CSI, OSC such as hyperlinks ``ESC ] 8 ;; url ESC \``, DCS/SOS/PM/APC,
# their 8-bit C1 forms), then every remaining C0/C1 control but tab and newline, and the Unicode
# format characters that reorder or hide text (bidi overrides and isolates, zero-width joiners)
_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def plain(text: object) -> str:
    """``text`` as it may reach a terminal: no control characters or escape sequences (tab, newline kept)."""
    return _CONTROL.sub("", _SEQUENCE.sub("", str(text)))


def safe(text: object) -> str:
    """External text to embed in a Rich markup message: :func:`plain`, then markup escaped."""
    return escape(plain(text))


def say(message: str) -> None:
    """A message of ours, with Rich markup; embed external parts with :func:`safe`."""
    err.print(message, highlight=False)


def tell(message: object) -> None:
    """A message that may hold external text, printed as it is: no markup, no control characters."""
    err.print(plain(message), markup=False, highlight=False)
