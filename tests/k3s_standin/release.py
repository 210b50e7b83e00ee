"""Build a directory laid out like a k3s GitHub release, with the stand-in as the binaries.

``build_release(root, "v1.31.4+k3s1")`` writes ``root/v1.31.4+k3s1/`` with ``k3s`` (amd64),
``k3s-arm64``, ``k3s-armhf``, ``k3s-airgap-images-{amd64,arm64,arm}.tar.zst`` and
``sha256sum-{amd64,arm64,arm}.txt``: the layout a user's mirror (``k3s_mirror``) or air-gap directory
(``k3s_airgap_dir``) has. The images archives are small fake ones (a few bytes naming version and
arch: the stand-in has no containerd to import them into), listed in the checksum file after the
binary as the real release lists its ``k3s-airgap-images-<arch>.tar*`` (k3s's scripts/package-airgap
writes their sha256sum lines, the release workflow appends them to ``sha256sum-<arch>.txt``). Each "binary" is the
stand-in package (``standin/``) as one executable Python zipapp, with its version and arch baked
into ``standin/build.py``, so the files differ per arch like real ones do.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from pathlib import Path

from ansible_collections.edgeclu.cluster.plugins.module_utils.k3s import sha256_for

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


def images_name(arch: str, ext: str = ".tar.zst") -> str:
    return f"k3s-airgap-images-{arch}{ext}"


def fake_images(version: str, arch: str) -> bytes:
    """A small stand-in for the release's images archive (not a real one: nothing imports it)."""
    return f"k3s stand-in air-gap images {version} {arch}\n".encode()


def build_release(root: Path, version: str, *, tamper: tuple[str, ...] = (), images: bool = True) -> Path:
    """Write the release for ``version`` under ``root``; returns the version directory.

    ``tamper`` names files changed *after* their checksum was recorded (a corrupt
    download or a tampered mirror), so checksum verification must fail for them.
    ``images``: also the (fake) images archive per arch.
    """
    out = Path(root) / version
    out.mkdir(parents=True, exist_ok=True)
    for arch, (binary, sums) in ARCH_FILES.items():
        files = {binary: standin_binary(version, arch)}
        if images:
            files[images_name(arch)] = fake_images(version, arch)
        lines = []
        for name, data in files.items():
            lines.append(f"{hashlib.sha256(data).hexdigest()}  {name}\n")
            if name in tamper:
                data += b"# tampered after release\n"
            (out / name).write_bytes(data)
        (out / binary).chmod(0o755)
        (out / sums).write_text("".join(lines))
    return out


def release_pins(root: Path) -> dict[str, dict[str, str]]:
    """``k3s_sha256`` for every release under ``root``, from its checksum files: the test that
    built the release is the trusted origin here (a user pins the hashes from the real release's
    ``sha256sum-<arch>.txt``, fetched over https), so a lab mirror on plain http can be used."""
    pins: dict[str, dict[str, str]] = {}
    for version_dir in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        for arch, (binary, sums) in ARCH_FILES.items():
            text = (version_dir / sums).read_text() if (version_dir / sums).exists() else ""
            for key, name in ((arch, binary), (images_name(arch), images_name(arch))):
                if digest := sha256_for(text, name):  # the binary by arch, the images archive by name
                    pins.setdefault(version_dir.name, {})[key] = digest
    return pins
