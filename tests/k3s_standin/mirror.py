"""A small HTTP server for a release directory, as a user's k3s mirror would be.

Started on the controller (inside the lab's controller netns, so nodes reach it at
10.77.0.1); it records the raw request paths so tests can check what nodes fetched.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.k3s_standin.release import release_pins


@dataclass
class Mirror:
    url: str
    requests: list[str] = field(default_factory=list)
    pins: dict = field(default_factory=dict)  # k3s_sha256 for the releases served (the mirror is plain http)

    @property
    def vars(self) -> dict:
        """The inventory's cluster vars for installing from this mirror."""
        return {"k3s_mirror": self.url, "k3s_sha256": self.pins}


@contextlib.contextmanager
def serve(root: Path, host: str, port: int = 0) -> Iterator[Mirror]:
    """Serve ``root`` on ``host`` (the socket is bound in the calling thread's netns)."""
    seen: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def send_head(self):
            seen.append(self.path)
            return super().send_head()

    httpd = http.server.ThreadingHTTPServer((host, port), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, name="k3s-mirror", daemon=True)
    thread.start()
    try:
        yield Mirror(url=f"http://{host}:{httpd.server_address[1]}", requests=seen, pins=release_pins(root))
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
