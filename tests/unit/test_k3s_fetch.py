"""library/k3s_fetch.py (what installs the k3s binary on a node), run here as the node runs it:
its ``raw_main`` against a real HTTP server on this machine, writing real files."""

import functools
import hashlib
import http.server
import os
import runpy
import threading
from pathlib import Path

import pytest

from edgeclu import k3s

ROOT = Path(__file__).resolve().parents[2]
FETCH = runpy.run_path(str(ROOT / "playbooks/library/k3s_fetch.py"))
BINARY = b"#!/bin/sh\necho 'k3s version v1.31.4+k3s1 (abcdef12)'\n"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="installs root:root files (CI runs as root)")


@pytest.fixture()
def release(tmp_path):
    root = tmp_path / "mirror"
    root.mkdir()
    (root / "k3s").write_bytes(BINARY)
    (root / "sha256sum-amd64.txt").write_text(f"{hashlib.sha256(BINARY).hexdigest()}  k3s\n{'0' * 64}  k3s-arm64\n")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(
        type("Quiet", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *a: None}), directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


def _fetch(url, dest, check_mode=False, name="k3s", version="v1.31.4+k3s1"):
    return FETCH["raw_main"]({"url": f"{url}/{name}", "name": name, "sums_url": f"{url}/sha256sum-amd64.txt",
                              "dest": str(dest), "version": version, "check_mode": check_mode})


def test_installs_the_checked_binary_and_reports_its_version(release, tmp_path):
    _, url = release
    dest = tmp_path / "bin" / "k3s"
    assert _fetch(url, dest, check_mode=True)["changed"] and not dest.exists()  # check mode: nothing written
    out = _fetch(url, dest)
    assert out["changed"] and out["sha256"] == hashlib.sha256(BINARY).hexdigest()
    assert dest.read_bytes() == BINARY and oct(dest.stat().st_mode & 0o777) == "0o755" and dest.stat().st_uid == 0
    assert k3s.parse_version_output(out["version_output"]) == "v1.31.4+k3s1"
    assert [p.name for p in dest.parent.iterdir()] == ["k3s"]  # no temporary file left
    # a binary that does not say it is the pinned version fails the node
    out = _fetch(url, dest, version="v1.32.0+k3s1")
    assert out["failed"] and "does not run as k3s v1.32.0+k3s1: `k3s --version` said 'k3s version v1.31.4" in out["msg"]


def test_refuses_a_binary_that_does_not_match_and_keeps_the_old_one(release, tmp_path):
    root, url = release
    (root / "k3s").write_bytes(BINARY + b"# tampered\n")
    dest = tmp_path / "k3s"
    dest.write_bytes(b"old")
    out = _fetch(url, dest)
    assert out["failed"] and out["msg"].startswith(
        f"k3s from {url}/k3s does not match sha256sum-amd64.txt (expected sha256 {hashlib.sha256(BINARY).hexdigest()}")
    assert out["msg"].endswith("refusing to install it")
    assert dest.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["k3s", "mirror"]


def test_refuses_a_release_without_a_checksum_and_reports_what_cannot_be_fetched(release, tmp_path):
    root, url = release
    out = _fetch(url, tmp_path / "k3s", name="k3s-armhf")
    assert out == {"failed": True, "msg": f"{url}/sha256sum-amd64.txt lists no sha256 for k3s-armhf; "
                                          "refusing to install k3s"}
    (root / "sha256sum-amd64.txt").unlink()
    out = _fetch(url, tmp_path / "k3s")
    assert out["failed"] and out["msg"].startswith(f"cannot download {url}/sha256sum-amd64.txt: HTTP Error 404")
    assert not (tmp_path / "k3s").exists()
    out = FETCH["raw_main"]({"url": "file:///etc/passwd", "name": "k3s", "sums_url": "file:///etc/hostname",
                             "dest": str(tmp_path / "k3s")})
    assert out == {"failed": True, "msg": "cannot download file:///etc/hostname: not an http(s) URL"}


@pytest.mark.parametrize("sums, name", [
    ("a" * 64 + "  k3s\n" + "b" * 64 + "  k3s-arm64\n", "k3s-arm64"),
    ("a" * 64 + " *k3s\n", "k3s"),             # binary mode marker
    ("A" * 64 + "  k3s\n", "k3s"),             # not lower-case hex
    ("a" * 63 + "  k3s\n", "k3s"),             # too short
    ("a" * 64 + "  k3s extra\n", "k3s"),       # not two fields
    ("", "k3s"),
])
def test_the_node_side_parse_is_the_controllers(sums, name):
    # the node has no edgeclu: k3s_fetch carries its own copy of edgeclu.k3s.sha256_for
    assert FETCH["sha256_listed"](sums, name) == k3s.sha256_for(sums, name)
