"""Air-gap images and private registries, end to end: the real `edgeclu up` CLI, real SSH, real
ansible-runner, lab nodes (which have no route to the internet: the lab has no NAT), the k3s stand-in.

The images archive names and checksum file are a real k3s release's (k3s-io/k3s scripts/package-airgap:
``k3s-airgap-images-${ARCH}.tar`` / ``.tar.zst`` / ``.tar.gz`` and their sha256sum lines, which
.github/workflows/release.yml appends to ``sha256sum-${ARCH}.txt``); the stand-in logs k3s's
``Imported images from <path> in <duration>`` (pkg/agent/containerd/containerd.go, preloadImages) and
wharfie's ``Using registry config file at <path>`` (pkg/registries/registries.go) as it starts.
"""

import hashlib
import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.k3s_standin.fixtures import V1, k3s_mirror, k3s_releases  # noqa: F401
from tests.k3s_standin.release import build_release

pytestmark = pytest.mark.lab

IMAGES = "/var/lib/rancher/k3s/agent/images"
ARCHIVE = "k3s-airgap-images-amd64.tar.zst"  # the lab nodes are x86_64
# runs the CLI, keeping a copy of each ansible-runner private data directory (its artifacts: stdout,
# job events, env) before edgeclu removes it, so a test can read everything a run wrote
KEEP_RUN_DIRS = """
import os, runpy, shutil, sys
keep = sys.argv.pop(1)
real = shutil.rmtree
def rmtree(path, *args, **kwargs):
    if os.path.basename(str(path)).startswith("run-") and os.path.isdir(path):
        shutil.copytree(path, os.path.join(keep, os.path.basename(str(path))), dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("cp"))
    return real(path, *args, **kwargs)
shutil.rmtree = rmtree
sys.argv[0] = "edgeclu"
runpy.run_module("edgeclu", run_name="__main__")
"""


def _inventory(tmp_path, lab, servers, agents, **cluster_vars):
    path = tmp_path / "inventory.yml"
    path.write_text(lab.inventory_yaml(servers, agents, user="edge", extra_vars={
        "k3s_version": V1, "token_file": str(tmp_path / "secrets" / "token"), "cluster_name": "lab",
        **cluster_vars}))
    return path


def _up(inv, tmp_path, *args, keep=None):
    env = dict(os.environ, KUBECONFIG=str(tmp_path / "kube" / "config"), COLUMNS="200")
    cmd = [sys.executable, "-c", KEEP_RUN_DIRS, str(keep)] if keep else [sys.executable, "-m", "edgeclu"]
    return subprocess.run([*cmd, "up", "-i", str(inv), *args], env=env, capture_output=True, text=True,
                          timeout=900)


def _images(lab, node):
    """``{name: (sha256, inode, mtime_ns)}`` of the node's images directory."""
    out = {}
    for name in lab.exec(node, f"ls -A {IMAGES} 2>/dev/null || true").split():
        data = (lab.nodes[node].upper / IMAGES.lstrip("/") / name)
        st = data.stat()
        out[name] = (hashlib.sha256(data.read_bytes()).hexdigest(), st.st_ino, st.st_mtime_ns)
    return out


def _journal(lab, node, unit):
    return lab.exec(node, f"journalctl -u {unit} -o cat --no-pager")


def test_offline_up_from_the_airgap_dir_copies_each_nodes_images_once_and_refuses_a_bad_one(fresh_lab, tmp_path):
    lab = fresh_lab(3)
    airgap = tmp_path / "airgap"
    release = build_release(airgap, V1)
    sums = (release / "sha256sum-amd64.txt").read_text()
    want = next(line.split()[0] for line in sums.splitlines() if line.endswith(f"  {ARCHIVE}"))
    inv = _inventory(tmp_path, lab, ["node1"], ["node2", "node3"], k3s_airgap_dir=str(airgap))
    units = {"node1": "k3s", "node2": "k3s-agent", "node3": "k3s-agent"}

    first = _up(inv, tmp_path)
    assert first.returncode == 0, first.stderr[-6000:]
    seen = {}
    for node, unit in units.items():
        seen[node] = _images(lab, node)
        # exactly one archive, the node's arch's, with the release's sha256; k3s found it as it started
        assert list(seen[node]) == [ARCHIVE] and seen[node][ARCHIVE][0] == want
        assert lab.exec(node, f"stat -c '%a %U' {IMAGES}/{ARCHIVE}").split() == ["644", "root"]
        assert f"Imported images from {IMAGES}/{ARCHIVE} in " in _journal(lab, node, unit)
    assert first.stderr.count("air-gap images archive copied") == 3

    # run again (the whole playbook): nothing is copied again, the files are the very same
    again = _up(inv, tmp_path, "--full")
    assert again.returncode == 0, again.stderr[-6000:]
    assert "air-gap images archive copied" not in again.stderr
    assert {node: _images(lab, node) for node in units} == seen

    # another arch's or another format's archive on a node goes (k3s would import it too), ours stays
    lab.exec("node2", f"cp {IMAGES}/{ARCHIVE} {IMAGES}/k3s-airgap-images-amd64.tar.gz && "
                      f"echo x > {IMAGES}/k3s-airgap-images-arm64.tar.zst && echo img > {IMAGES}/mine.tar")
    tidy = _up(inv, tmp_path, "--full")
    assert tidy.returncode == 0, tidy.stderr[-6000:]
    assert sorted(_images(lab, "node2")) == [ARCHIVE, "mine.tar"]  # the user's own archive is theirs
    assert _images(lab, "node2")[ARCHIVE] == seen["node2"][ARCHIVE]

    # the archive in the air-gap directory no longer matches the release's checksum file: the node that needs
    # it (node3 lost its copy) stops with both hashes on one line; the others, whose archive matches, converge
    bad = (release / ARCHIVE).read_bytes() + b"tampered\n"
    (release / ARCHIVE).write_bytes(bad)
    lab.exec("node3", f"rm {IMAGES}/{ARCHIVE}")
    refused = _up(inv, tmp_path, "--full", "--json")
    assert refused.returncode == 1, refused.stderr[-6000:]
    nodes = json.loads(refused.stdout)["nodes"]
    assert nodes["node3"]["status"] == "failed" and nodes["node1"]["status"] == nodes["node2"]["status"] == "unchanged"
    line = (f"{release}/{ARCHIVE} does not match {release}/sha256sum-amd64.txt: expected sha256 {want}, "
            f"got {hashlib.sha256(bad).hexdigest()}; refusing to copy it to node3")
    assert line in nodes["node3"]["reason"] and "\n" not in nodes["node3"]["reason"]
    assert line in refused.stderr
    assert _images(lab, "node3") == {}


def test_registries_yaml_on_every_node_secret_never_shown_restart_only_on_change(fresh_lab, k3s_mirror, tmp_path):  # noqa: F811
    lab = fresh_lab(3)
    mirror = k3s_mirror(lab)
    units = {"node1": "k3s", "node2": "k3s-agent", "node3": "k3s-agent"}
    secret = "pull-through-s3cr3t-" + hashlib.sha256(str(tmp_path).encode()).hexdigest()[:12]
    auth = tmp_path / "secrets" / "registry-auth.yml"
    auth.parent.mkdir(mode=0o700)
    auth.write_text(f"username: robot\npassword: {secret}\n")
    auth.chmod(0o600)

    def registries(endpoint):
        return {"mirrors": {"docker.io": {"endpoint": [endpoint], "rewrite": {"^rancher/(.*)": "mirror/rancher/$1"}},
                            "registry.k8s.io": None},
                "configs": {"registry.lan:5000": {"auth_file": str(auth), "tls": {"insecure_skip_verify": True}}}}

    # the images archive from the mirror too (pinned, as the binary is: the mirror is plain http)
    cluster = dict(**mirror.vars, k3s_airgap_images=True, embedded_registry=True,
                   registries=registries("https://registry.lan:5000"))
    inv = _inventory(tmp_path, lab, ["node1"], ["node2", "node3"], **cluster)
    keep = tmp_path / "runs"
    first = _up(inv, tmp_path, keep=keep)
    assert first.returncode == 0, first.stderr[-6000:]

    def starts():
        return {n: _journal(lab, n, u).count("Using registry config file at /etc/rancher/k3s/registries.yaml")
                for n, u in units.items()}

    for node in units:
        assert lab.exec(node, "stat -c '%a %U' /etc/rancher/k3s/registries.yaml").split() == ["600", "root"]
        text = lab.exec(node, "cat /etc/rancher/k3s/registries.yaml")
        assert yaml.safe_load(text)["configs"]["registry.lan:5000"]["auth"] == {"username": "robot",
                                                                                 "password": secret}
        # the stand-in parsed it as k3s does and saw these registries
        seen = json.loads(lab.exec(node, "cat /var/lib/rancher/k3s/agent/standin-registries.json"))
        assert sorted(seen["mirrors"]) == ["docker.io", "registry.k8s.io"]
        assert seen["configs"] == {"registry.lan:5000": {"auth": ["password", "username"],
                                                         "tls": ["insecure_skip_verify"]}}
        assert list(_images(lab, node)) == [ARCHIVE]
    assert starts() == dict.fromkeys(units, 1)
    assert yaml.safe_load(lab.exec("node1", "cat /etc/rancher/k3s/config.yaml"))["embedded-registry"] is True
    archive = f"/{V1.replace('+', '%2B')}/{ARCHIVE}"
    assert mirror.requests.count(archive) == 3  # downloaded once per node

    # nothing changed (the whole playbook runs): nothing restarts, nothing is downloaded again
    same = _up(inv, tmp_path, "--full", keep=keep)
    assert same.returncode == 0, same.stderr[-6000:]
    assert starts() == dict.fromkeys(units, 1)
    assert mirror.requests.count(archive) == 3

    # another mirror endpoint: registries.yaml rewritten and k3s restarted once on each node
    inv = _inventory(tmp_path, lab, ["node1"], ["node2", "node3"],
                     **{**cluster, "registries": registries("https://registry.lan:5443")})
    changed = _up(inv, tmp_path, keep=keep)
    assert changed.returncode == 0, changed.stderr[-6000:]
    assert starts() == dict.fromkeys(units, 2)
    for node in units:
        assert yaml.safe_load(lab.exec(node, "cat /etc/rancher/k3s/registries.yaml"))["mirrors"]["docker.io"][
            "endpoint"] == ["https://registry.lan:5443"]
        assert "restarted" in changed.stderr.split(f"  {node}  ", 1)[1].split("\n", 1)[0]

    # the credentials were never in any output, nor in anything a run wrote on the controller
    runs = list(keep.iterdir())
    assert len(runs) >= 3 and any((r / "artifacts").is_dir() for r in runs)
    for run in (first, same, changed):
        assert secret not in run.stdout + run.stderr
    for path in keep.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_an_add_ons_packaged_chart_from_the_airgap_dir_is_on_every_server_and_its_helmchart_points_there(
        fresh_lab, tmp_path):
    # k3s serves <data-dir>/server/static/charts at https://<api>/static/charts/ and its own packaged
    # Traefik HelmChart names its chart as https://%{KUBERNETES_API}%/static/charts/<file> (k3s-io/k3s
    # manifests/traefik.yaml); helm pull names a packaged chart <name>-<version>.tgz
    lab = fresh_lab(2)
    airgap = tmp_path / "airgap"
    build_release(airgap, V1)
    (airgap / "charts").mkdir()
    chart = airgap / "charts" / "metallb-0.14.9.tgz"
    chart.write_bytes(os.urandom(4096))  # its bytes are only copied: the stand-in runs no Helm job
    inv = _inventory(tmp_path, lab, ["node1", "node2"], [], k3s_airgap_dir=str(airgap), loadbalancer="metallb",
                     metallb_pool=["10.77.0.200 - 10.77.0.210"])
    first = _up(inv, tmp_path)
    assert first.returncode == 0, first.stderr[-6000:]
    static = "/var/lib/rancher/k3s/server/static/charts/metallb-0.14.9.tgz"
    for node in ("node1", "node2"):
        assert (lab.nodes[node].upper / static.lstrip("/")).read_bytes() == chart.read_bytes()
        assert lab.exec(node, f"stat -c '%a %U' {static}").split() == ["644", "root"]
    manifest = lab.exec("node1", "cat /var/lib/rancher/k3s/server/manifests/edgeclu-metallb.yaml")
    helmchart = next(d for d in yaml.safe_load_all(manifest) if d and d.get("kind") == "HelmChart")
    assert helmchart["spec"]["chart"] == "https://%{KUBERNETES_API}%/static/charts/metallb-0.14.9.tgz"
    assert "repo" not in helmchart["spec"]  # nothing is fetched from the chart's repository

    # without the file, the HelmChart names the chart's repository again
    chart.unlink()
    again = _up(inv, tmp_path, "--full")
    assert again.returncode == 0, again.stderr[-6000:]
    manifest = lab.exec("node1", "cat /var/lib/rancher/k3s/server/manifests/edgeclu-metallb.yaml")
    helmchart = next(d for d in yaml.safe_load_all(manifest) if d and d.get("kind") == "HelmChart")
    assert helmchart["spec"]["repo"] == "https://metallb.github.io/metallb" and helmchart["spec"]["chart"] == "metallb"
