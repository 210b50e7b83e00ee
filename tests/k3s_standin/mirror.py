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


@dataclass
class Mirror:
    url: str
    requests: list[str] = field(default_factory=list)


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
        yield Mirror(url=f"http://{host}:{httpd.server_address[1]}", requests=seen)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
