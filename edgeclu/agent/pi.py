"""Raspberry Pi facts: board model and the firmware's get_throttled bits.

The bits (Raspberry Pi documentation, ``vcgencmd get_throttled``)::

    0  under-voltage detected          16  under-voltage has occurred
    1  arm frequency capped            17  arm frequency capping has occurred
    2  currently throttled             18  throttling has occurred
    3  soft temperature limit active   19  soft temperature limit has occurred
"""

from __future__ import annotations

import shutil
import subprocess

CONDITIONS = ("under_voltage", "freq_capped", "throttled", "soft_temp_limit")


def parse_throttled(text: str) -> int | None:
    """``50005`` (sysfs, hex without 0x) or ``throttled=0x50005`` (vcgencmd) -> 0x50005."""
    value = text.strip().rpartition("=")[2].strip()
    if not value:
        return None
    try:
        return int(value, 16)
    except ValueError:
        return None


def decode_throttled(raw: int) -> dict:
    """``{"raw": "0x50005", "now": {"under_voltage": True, ...}, "since_boot": {...}}``."""
    return {
        "raw": f"0x{raw:x}",
        "now": {name: bool(raw >> bit & 1) for bit, name in enumerate(CONDITIONS)},
        "since_boot": {name: bool(raw >> (16 + bit) & 1) for bit, name in enumerate(CONDITIONS)},
    }


def clean_model(raw: bytes) -> str:
    """Device-tree strings end in NUL: ``b'Raspberry Pi 4 Model B Rev 1.4\\x00'``."""
    return raw.replace(b"\x00", b"").decode("utf-8", "replace").strip()


def read_model(paths: list[str]) -> str | None:
    for path in paths:
        try:
            with open(path, "rb") as f:
                model = clean_model(f.read(256))
        except OSError:
            continue
        if model:
            return model
    return None


def read_throttled(path: str, vcgencmd: str, is_pi: bool) -> tuple[int | None, str | None]:
    """(bits, where they came from): sysfs first; ``vcgencmd`` only on a Pi."""
    try:
        with open(path) as f:
            return parse_throttled(f.read(64)), path
    except OSError:
        pass
    exe = shutil.which(vcgencmd) if is_pi else None
    if not exe:
        return None, None
    try:
        out = subprocess.run([exe, "get_throttled"], capture_output=True, text=True, timeout=2, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None, None
    return (parse_throttled(out.stdout), "vcgencmd") if out.returncode == 0 else (None, None)
