"""Baked in by tests/k3s_standin/release.py: the release this file belongs to."""

from __future__ import annotations

VERSION = "v1.31.4+k3s1"  # rewritten by release.py

ARCH = "amd64"  # rewritten by release.py


