"""Build a directory laid out like a k3s GitHub release, with the stand-in as the binaries.

``build_release(root, "v1.31.4+k3s1")`` writes ``root/v1.31.4+k3s1/`` with ``k3s`` (amd64),
``k3s-arm64``, ``k3s-armhf`` and ``sha256sum-{amd64,arm64,arm}.txt``: the layout a user's
mirror (``k3s_mirror``) or air-gap directory (``k3s_airgap_dir``) has. Each "binary" is the
stand-in package (``standin/``) as one executable Python zipapp, with its version and arch baked
into ``standin/build.py``, so the files differ per arch like real ones do.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from pathlib import Path

from edgeclu.k3s import sha256_for

PACKAGE = Path(__file__).with_name("standin")
ARCH_FILES = {"amd64": ("k3s", "sha256sum-amd64.txt"), "arm64": ("k3s-arm64", "sha256sum-arm64.txt"),
              "arm": ("k3s-armhf", "sha256sum-arm.txt")}
MAIN = '''import contextlib
import sys

from standin.cli import main

with contextlib.suppress(BrokenPipeError):
    sys.exit(main(sys.argv))
'''


def build_module(version: str, arch: str) -> str:
    """``standin/build.py`` with VERSION and ARCH set."""
    text = (PACKAGE / "build.py").read_text()
    text, n1 = re.subn(r'^VERSION = ".*?"', f'VERSION = "{version}"', text, count=1, flags=re.M)
    text, n2 = re.subn(r'^ARCH = ".*?"', f'ARCH = "{arch}"', text, count=1, flags=re.M)
    assert n1 == n2 == 1, "standin/build.py lost its VERSION/ARCH lines"
    return text


def standin_binary(version: str, arch: str) -> bytes:
    """The stand-in as one executable file: a shebang line, then a zip (stored, fixed dates: reproducible)."""
    out = io.BytesIO()
    out.write(b"#!/usr/bin/python3\n")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        def add(name: str, text: str) -> None:
            z.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), text)
        add("__main__.py", MAIN)
        for path in sorted(PACKAGE.glob("*.py")):
            add(f"standin/{path.name}", build_module(version, arch) if path.name == "build.py" else path.read_text())
    return out.getvalue()


def build_release(root: Path, version: str, *, tamper: tuple[str, ...] = ()) -> Path:
    """Write the release for ``version`` under ``root``; returns the version directory.

    ``tamper`` names files changed *after* their checksum was recorded (a corrupt
    download or a tampered mirror), so checksum verification must fail for them.
    """
    out = Path(root) / version
    out.mkdir(parents=True, exist_ok=True)
    for arch, (binary, sums) in ARCH_FILES.items():
        data = standin_binary(version, arch)
        digest = hashlib.sha256(data).hexdigest()
        if binary in tamper:
            data += b"# tampered after release\n"
        path = out / binary
        path.write_bytes(data)
        path.chmod(0o755)
        (out / sums).write_text(f"{digest}  {binary}\n")
    return out


def release_pins(root: Path) -> dict[str, dict[str, str]]:
    """``k3s_sha256`` for every release under ``root``, from its checksum files: the test that
    built the release is the trusted origin here (a user pins the hashes from the real release's
    ``sha256sum-<arch>.txt``, fetched over https), so a lab mirror on plain http can be used."""
    pins: dict[str, dict[str, str]] = {}
    for version_dir in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        for arch, (binary, sums) in ARCH_FILES.items():
            digest = sha256_for((version_dir / sums).read_text(), binary) if (version_dir / sums).exists() else None
            if digest:
                pins.setdefault(version_dir.name, {})[arch] = digest
    return pins
