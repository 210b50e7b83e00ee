"""Real clients on the controller, as a user has them: the machine's kubectl (the cluster's minor version)
with the kubeconfig ``edgeclu up`` merged, TLS verified; and a real Prometheus scraping the node agents
with the scrape config the README gives. Call them from the test thread (inside the lab's controller netns).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from tests.lab.nodelab import KUBECTL_DIR


def kubectl_binary(k3s_version: str) -> str:
    """The real kubectl of ``k3s_version``'s minor (``v1.31.4+k3s1`` -> ``kubectl.1.31``)."""
    minor = re.match(r"v1\.(\d+)\.", k3s_version).group(1)
    path = KUBECTL_DIR / f"kubectl.1.{minor}"
    assert path.exists(), f"no real kubectl 1.{minor} at {path}"
    return str(path)


def kubectl(kubeconfig: Path, context: str, k3s_version: str, *args: str,
            check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run([kubectl_binary(k3s_version), "--kubeconfig", str(kubeconfig), "--context", context,
                        "--request-timeout=10s", *args], capture_output=True, text=True, timeout=60)
    assert not check or r.returncode == 0, f"kubectl {' '.join(args)} -> {r.returncode}: {r.stderr}"
    return r


def ready_nodes(kubeconfig: Path, context: str, k3s_version: str) -> dict[str, bool]:
    """``{node: Ready}`` as the user's own kubectl sees them (TLS verified against the cluster CA)."""
    doc = json.loads(kubectl(kubeconfig, context, k3s_version, "get", "nodes", "-o", "json").stdout)
    return {i["metadata"]["name"]: any(c["type"] == "Ready" and c["status"] == "True"
                                       for c in i["status"]["conditions"]) for i in doc["items"]}


def wait_ready_nodes(kubeconfig: Path, context: str, k3s_version: str, want: set[str],
                     timeout: float = 30) -> dict[str, bool]:
    deadline = time.monotonic() + timeout
    while True:
        nodes = ready_nodes(kubeconfig, context, k3s_version)
        if set(nodes) == want and all(nodes.values()) or time.monotonic() > deadline:
            return nodes
        time.sleep(1)


# -- Prometheus ---------------------------------------------------------------------------------
def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def prometheus(config_yaml: str, host: str):
    """A real Prometheus (Debian's ``prometheus``) on ``host`` with ``config_yaml``; yields its base URL."""
    binary = shutil.which("prometheus")
    assert binary, "prometheus is not installed (apt-get install prometheus; .ci/run does)"
    with tempfile.TemporaryDirectory(prefix="edgeclu-prom-") as d, open(Path(d) / "log", "w") as log:
        (Path(d) / "prometheus.yml").write_text(config_yaml)
        port = _free_port(host)
        proc = subprocess.Popen([binary, f"--config.file={d}/prometheus.yml", f"--storage.tsdb.path={d}/data",
                                 f"--web.listen-address={host}:{port}", "--log.level=warn"],
                                stdout=subprocess.DEVNULL, stderr=log)
        url = f"http://{host}:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(f"{url}/-/ready", timeout=2).read()
                    break
                except OSError:
                    assert proc.poll() is None, (Path(d) / "log").read_text()[-2000:]
                    assert time.monotonic() < deadline, "prometheus not ready in 30 s"
                    time.sleep(0.3)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def query(url: str, expr: str) -> list[dict]:
    """An instant query through Prometheus's HTTP API: the result vector."""
    with urllib.request.urlopen(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}), timeout=10) as r:
        doc = json.loads(r.read())
    assert doc["status"] == "success", doc
    return doc["data"]["result"]


def readme_scrape_config(targets: list[str]) -> str:
    """The README's Prometheus block (under ``# prometheus.yml``) with its example targets replaced by ours."""
    import yaml

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("# prometheus.yml\n", 1)[1].split("```", 1)[0]
    doc = yaml.safe_load(block)
    (job,) = doc["scrape_configs"]
    (static,) = job["static_configs"]
    static["targets"] = targets
    return yaml.safe_dump(doc)
