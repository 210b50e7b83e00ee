"""Build a directory laid out like a k3s GitHub release, with the stand-in as the binaries.

``build_release(root, "v1.31.4+k3s1")`` writes ``root/v1.31.4+k3s1/`` with ``k3s`` (amd64),
``k3s-arm64``, ``k3s-armhf`` and ``sha256sum-{amd64,arm64,arm}.txt``: the layout a user's
mirror (``k3s_mirror``) or air-gap directory (``k3s_airgap_dir``) has. Each binary has its
version and arch baked in, so the files differ per arch like real ones do.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

SOURCE = Path(__file__).with_name("k3s.py")
ARCH_FILES = {"amd64": ("k3s", "sha256sum-amd64.txt"), "arm64": ("k3s-arm64", "sha256sum-arm64.txt"),
              "arm": ("k3s-armhf", "sha256sum-arm.txt")}


def standin_binary(version: str, arch: str) -> str:
    """The stand-in's source with VERSION and ARCH set."""
    text = SOURCE.read_text()
    text, n1 = re.subn(r'^VERSION = ".*?"', f'VERSION = "{version}"', text, count=1, flags=re.M)
    text, n2 = re.subn(r'^ARCH = ".*?"', f'ARCH = "{arch}"', text, count=1, flags=re.M)
    assert n1 == n2 == 1, "k3s.py lost its VERSION/ARCH lines"
    return text


def build_release(root: Path, version: str, *, tamper: tuple[str, ...] = ()) -> Path:
    """Write the release for ``version`` under ``root``; returns the version directory.

    ``tamper`` names files changed *after* their checksum was recorded (a corrupt
    download or a tampered mirror), so checksum verification must fail for them.
    """
    out = Path(root) / version
    out.mkdir(parents=True, exist_ok=True)
    for arch, (binary, sums) in ARCH_FILES.items():
        data = standin_binary(version, arch).encode()
        digest = hashlib.sha256(data).hexdigest()
        if binary in tamper:
            data += b"# tampered after release\n"
        path = out / binary
        path.write_bytes(data)
        path.chmod(0o755)
        (out / sums).write_text(f"{digest}  {binary}\n")
    return out
