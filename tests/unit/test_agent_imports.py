"""The agent runs on nodes with python3 + psutil only, and its memory budget (node_exporter's RSS)
leaves no room for heavy imports: check what loading and running it really imports."""

import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
# each of these costs MiBs (asyncio pulls ssl; http.server pulls email; hashlib loads libcrypto)
HEAVY = {"zeroconf", "asyncio", "ssl", "http.server", "http.client", "email", "hashlib", "_hashlib",
         "dataclasses", "inspect", "typer", "rich", "paramiko", "fabric", "yaml", "jinja2", "ansible_runner"}
SCRIPT = """
import json, sys

def edgeclu_from_zip(zip_path):
    import edgeclu
    return edgeclu.__file__.startswith(zip_path)

sys.path[:0] = [sys.argv[1], sys.argv[2]]
assert edgeclu_from_zip(sys.argv[1])
import edgeclu.agent.main, edgeclu.agent.server, edgeclu.agent.mdns, edgeclu.agent.announce, edgeclu.agent.prom
from edgeclu.agent.config import AgentConfig
sample = edgeclu.agent.main.once(AgentConfig())
edgeclu.agent.prom.render(sample)
print(json.dumps({"modules": sorted(sys.modules), "hostname": sample["host"]["hostname"]}))
"""


def _zip_builder():
    """The edgeclu_agent role's lookup plugin: it builds the zip that nodes run."""
    from ansible_collections.edgeclu.cluster.plugins.lookup import edgeclu_agent_zip

    return edgeclu_agent_zip


def test_the_zip_is_deterministic_and_holds_exactly_the_agent(tmp_path):
    builder = _zip_builder()
    src = tmp_path / "src"
    shutil.copytree(ROOT / "edgeclu", src, ignore=shutil.ignore_patterns("__pycache__"))
    first = builder.build(str(src))
    with zipfile.ZipFile(io.BytesIO(first)) as zf:
        names = zf.namelist()
        assert {zf.getinfo(n).date_time for n in names} == {(1980, 1, 1, 0, 0, 0)}
    want = ["edgeclu/__init__.py"] + sorted(f"edgeclu/agent/{p.name}" for p in (ROOT / "edgeclu/agent").glob("*.py"))
    assert names == sorted(want)
    os.utime(src / "agent/main.py", (1e9, 1e9))  # a new checkout: other mtimes, same code
    assert builder.build(str(src)) == first
    with open(src / "agent/main.py", "a") as f:
        f.write("# changed\n")
    assert builder.build(str(src)) != first


def test_only_stdlib_and_psutil_and_nothing_heavy(tmp_path):
    zip_path = tmp_path / "edgeclu-agent.zip"
    zip_path.write_bytes(_zip_builder().build(str(ROOT / "edgeclu")))
    psutil_dir = str(Path(psutil.__file__).parent.parent)
    # -I: no site-packages, no PYTHONPATH: only the zipped package and psutil can be found
    r = subprocess.run([sys.executable, "-I", "-c", SCRIPT, str(zip_path), psutil_dir],
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
