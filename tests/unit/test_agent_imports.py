"""The agent runs on nodes with python3 + psutil only, and its memory budget (node_exporter's RSS)
leaves no room for heavy imports: check what loading and running it really imports."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
# each of these costs MiBs (asyncio pulls ssl; http.server pulls email; hashlib loads libcrypto)
HEAVY = {"zeroconf", "asyncio", "ssl", "http.server", "http.client", "email", "hashlib", "_hashlib",
         "dataclasses", "inspect", "typer", "rich", "paramiko", "fabric", "yaml", "jinja2", "ansible_runner"}
SCRIPT = """
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import edgeclu.agent.main, edgeclu.agent.server, edgeclu.agent.mdns, edgeclu.agent.announce, edgeclu.agent.prom
from edgeclu.agent.config import AgentConfig
sample = edgeclu.agent.main.once(AgentConfig())
edgeclu.agent.prom.render(sample)
print(json.dumps({"modules": sorted(sys.modules), "hostname": sample["host"]["hostname"]}))
"""


def test_only_stdlib_and_psutil_and_nothing_heavy(tmp_path):
    pkg = tmp_path / "edgeclu"
    (pkg / "agent").mkdir(parents=True)
    shutil.copy(ROOT / "edgeclu/__init__.py", pkg)
    for f in (ROOT / "edgeclu/agent").glob("*.py"):
        shutil.copy(f, pkg / "agent")
    psutil_dir = str(Path(psutil.__file__).parent.parent)
    # -I: no site-packages, no PYTHONPATH: only the copied package and psutil can be found
    r = subprocess.run([sys.executable, "-I", "-c", SCRIPT, str(tmp_path), psutil_dir],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    modules = set(doc["modules"])
    assert {m for m in modules if m.startswith("edgeclu")} == {
        "edgeclu", "edgeclu.agent", "edgeclu.agent.main", "edgeclu.agent.config", "edgeclu.agent.sample",
        "edgeclu.agent.k3s", "edgeclu.agent.pi", "edgeclu.agent.server", "edgeclu.agent.prom",
        "edgeclu.agent.mdns", "edgeclu.agent.announce"}
    assert not {m.split(".")[0] for m in modules} & {"typer", "rich", "paramiko", "fabric", "yaml", "zeroconf"}
    assert not modules & HEAVY, sorted(modules & HEAVY)
