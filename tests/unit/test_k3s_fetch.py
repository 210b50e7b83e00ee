"""plugins/modules/k3s_fetch.py (what installs the k3s binary on a node), run here as the node runs it:
its ``raw_main`` against a real HTTP server on this machine, writing real files. The sha256
comes from the controller; whatever checksum file the mirror serves is never read."""

import functools
import hashlib
import http.server
import os
import runpy
import threading

import pytest

from ansible_collections.edgeclu.cluster.plugins.module_utils import k3s
from edgeclu.resources import collection_dir

FETCH = runpy.run_path(str(collection_dir() / "plugins/modules/k3s_fetch.py"))
BINARY = b"#!/bin/sh\necho 'k3s version v1.31.4+k3s1 (abcdef12)'\n"
GOOD = hashlib.sha256(BINARY).hexdigest()

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="installs root:root files (CI runs as root)")


@pytest.fixture()
def release(tmp_path):
    root = tmp_path / "mirror"
    root.mkdir()
    (root / "k3s").write_bytes(BINARY)
    (root / "sha256sum-amd64.txt").write_text(f"{GOOD}  k3s\n")
    seen = []

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def send_head(self):
            seen.append(self.path)
            return super().send_head()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_port}", seen
    httpd.shutdown()


def _fetch(url, dest, sha256=GOOD, check_mode=False, version="v1.31.4+k3s1"):
    return FETCH["raw_main"]({"url": f"{url}/k3s", "sha256": sha256, "sha256_from": "k3s_sha256 for v1.31.4+k3s1 amd64",
                              "dest": str(dest), "version": version, "check_mode": check_mode})


def test_installs_the_checked_binary_and_reports_its_version(release, tmp_path):
    _, url, seen = release
    dest = tmp_path / "bin" / "k3s"
    assert _fetch(url, dest, check_mode=True)["changed"] and not dest.exists()  # check mode: nothing written
    assert seen == []  # nor downloaded
    out = _fetch(url, dest)
    assert out["changed"] and out["sha256"] == GOOD
    assert dest.read_bytes() == BINARY and oct(dest.stat().st_mode & 0o777) == "0o755" and dest.stat().st_uid == 0
    assert k3s.parse_version_output(out["version_output"]) == "v1.31.4+k3s1"
    assert [p.name for p in dest.parent.iterdir()] == ["k3s"]  # no temporary file left
    assert seen == ["/k3s"]  # the node fetched the bytes, not the mirror's checksum file
    # a binary that does not say it is the pinned version fails the node
    out = _fetch(url, dest, version="v1.32.0+k3s1")
    assert out["failed"] and "does not run as k3s v1.32.0+k3s1: `k3s --version` said 'k3s version v1.31.4" in out["msg"]


def test_a_swapped_binary_with_a_matching_checksum_file_is_refused(release, tmp_path):
    # the attack an http mirror allows: another binary, and a checksum file that lists it
    root, url, seen = release
    evil = BINARY + b"# not k3s\n"
    (root / "k3s").write_bytes(evil)
    (root / "sha256sum-amd64.txt").write_text(f"{hashlib.sha256(evil).hexdigest()}  k3s\n")
    dest = tmp_path / "k3s"
    dest.write_bytes(b"old")
    out = _fetch(url, dest)
    assert out == {"failed": True, "msg": (
        f"k3s from {url}/k3s does not match the sha256 from k3s_sha256 for v1.31.4+k3s1 amd64 (expected {GOOD}, "
        f"got {hashlib.sha256(evil).hexdigest()}); refusing to install it")}
    assert dest.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["k3s", "mirror"]
    assert seen == ["/k3s"]


def test_refuses_without_a_sha256_and_reports_what_cannot_be_fetched(release, tmp_path):
    _, url, _ = release
    for bad in ("", "0" * 63, "A" * 64, None):
        out = _fetch(url, tmp_path / "k3s", sha256=bad)
        assert out == {"failed": True, "msg": f"no valid sha256 to check {url}/k3s against; refusing to install k3s"}
    out = FETCH["raw_main"]({"url": f"{url}/missing", "sha256": GOOD, "dest": str(tmp_path / "k3s")})
    assert out["failed"] and out["msg"].startswith(f"cannot download {url}/missing: HTTP Error 404")
    assert not (tmp_path / "k3s").exists()
    out = FETCH["raw_main"]({"url": "file:///etc/passwd", "sha256": GOOD, "dest": str(tmp_path / "k3s")})
    assert out == {"failed": True, "msg": "cannot download file:///etc/passwd: not an http(s) URL"}


def test_fetches_another_release_file_with_its_mode_and_name(release, tmp_path):
    # the images archive: 0644, no `--version` to run, and the messages name what it is
    root, url, _ = release
    data = b"images archive\n"
    (root / "k3s-airgap-images-amd64.tar.zst").write_bytes(data)
    dest = tmp_path / "images" / "k3s-airgap-images-amd64.tar.zst"
    args = {"url": f"{url}/k3s-airgap-images-amd64.tar.zst", "sha256": hashlib.sha256(data).hexdigest(),
            "sha256_from": "/srv/sha256sum-amd64.txt", "dest": str(dest), "mode": "0644", "what": "the images archive"}
    out = FETCH["raw_main"](args)
    assert out["changed"] and "version_output" not in out and dest.read_bytes() == data
    assert dest.stat().st_mode & 0o7777 == 0o644
    out = FETCH["raw_main"]({**args, "sha256": GOOD})
    assert out == {"failed": True, "msg": (
        f"the images archive from {url}/k3s-airgap-images-amd64.tar.zst does not match the sha256 from "
        f"/srv/sha256sum-amd64.txt (expected {GOOD}, got {hashlib.sha256(data).hexdigest()}); refusing to install it")}
