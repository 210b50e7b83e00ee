"""module_utils/k3s.py: the pure builders behind the k3s roles, table-style with exact expected values."""

import hashlib
import re

import pytest

from ansible_collections.edgeclu.cluster.plugins.module_utils import k3s

TOKEN = "s3cret"
AGENT = "agent-pw-42"


def _tokens(role):
    """What the roles pass: a server both tokens, an agent the agent token only."""
    return {"token": TOKEN, "agent_token": AGENT} if role == "server" else {"agent_token": AGENT}


@pytest.mark.parametrize("role, kwargs, expected", [
    # single server: no cluster-init, no server; both tokens
    ("server", dict(node_name="pi-1", node_ip="10.0.0.1"),
     {"token": TOKEN, "agent-token": AGENT, "node-name": "pi-1", "node-ip": "10.0.0.1",
      "write-kubeconfig-mode": "0600"}),
    # first of several servers: cluster-init, tls-san with the API endpoint first, deduplicated
    ("server", dict(node_name="pi-1", node_ip="10.0.0.1", cluster_init=True,
                    tls_san=["k3s.home.arpa", "k3s.lan", "k3s.home.arpa"]),
     {"token": TOKEN, "agent-token": AGENT, "node-name": "pi-1", "node-ip": "10.0.0.1", "cluster-init": True,
      "write-kubeconfig-mode": "0600", "tls-san": ["k3s.home.arpa", "k3s.lan"]}),
    # joining server: server URL, add-ons disabled, local-path storage path
    ("server", dict(node_name="pi-2", server_url="https://10.0.0.1:6443", disable=["traefik"],
                    local_storage_path="/srv/k3s"),
     {"token": TOKEN, "agent-token": AGENT, "node-name": "pi-2", "server": "https://10.0.0.1:6443",
      "write-kubeconfig-mode": "0600", "disable": ["traefik"], "default-local-storage-path": "/srv/k3s"}),
    # agent: the agent token as its token, and no server token anywhere; labels, taints, interface
    ("agent", dict(node_name="nuc", node_ip="10.0.0.9", node_iface="eth1",
                   server_url="https://k3s.lan:6443", labels=["zone=garage"], taints=["gpu=true:NoSchedule"]),
     {"token": AGENT, "node-name": "nuc", "server": "https://k3s.lan:6443", "node-ip": "10.0.0.9",
      "flannel-iface": "eth1", "node-label": ["zone=garage"], "node-taint": ["gpu=true:NoSchedule"]}),
    # k3s_extra_config is merged last
    ("agent", dict(node_name="nuc", server_url="https://a:6443", extra={"kubelet-arg": ["max-pods=50"]}),
     {"token": AGENT, "node-name": "nuc", "server": "https://a:6443", "kubelet-arg": ["max-pods=50"]}),
])
def test_node_config(role, kwargs, expected):
    cfg = k3s.node_config(role, **_tokens(role), **kwargs)
    assert cfg == expected
    if role == "agent":
        assert TOKEN not in repr(cfg)


def test_a_server_without_an_agent_token_is_a_single_token_server():
    assert k3s.node_config("server", token=TOKEN, node_name="n") == {
        "token": TOKEN, "node-name": "n", "write-kubeconfig-mode": "0600"}


@pytest.mark.parametrize("role, kwargs, message", [
    ("server", dict(cluster_init=True, server_url="https://a:6443"), "either starts the cluster"),
    ("agent", {}, "an agent needs server_url"),
    ("agent", dict(server_url="https://a:6443", tls_san=["x"]), "are server settings"),
    ("agent", dict(server_url="https://a:6443", extra={"token": "x"}), "may not set token"),
    ("agent", dict(server_url="https://a:6443", extra={"token-file": "/x"}), "may not set token-file"),
    ("server", dict(extra={"agent-token": "x"}), "may not set agent-token"),
    ("server", dict(extra={"server": "https://b:6443", "cluster-init": True}),
     "may not set cluster-init, server"),
    ("worker", {}, "role must be server or agent"),
])
def test_node_config_refuses(role, kwargs, message):
    with pytest.raises(ValueError, match=message):
        k3s.node_config(role, **_tokens(role if role == "agent" else "server"), node_name="n", **kwargs)


@pytest.mark.parametrize("role, tokens, message", [
    ("server", dict(token="", agent_token=AGENT), "a server needs the server token"),
    ("agent", dict(agent_token=""), "an agent needs the agent token"),
    # the server token never reaches an agent's config.yaml (readable from its SD card)
    ("agent", dict(token=TOKEN, agent_token=AGENT), "an agent gets the agent token only"),
])
def test_node_config_token_rules(role, tokens, message):
    with pytest.raises(ValueError, match=message):
        k3s.node_config(role, node_name="n", server_url="https://a:6443", **tokens)


@pytest.mark.parametrize("ingress, lb, storage, expected", [
    ("traefik", "servicelb", "local-path", []),
    ("nginx", "servicelb", "local-path", ["traefik"]),
    ("none", "metallb", "longhorn", ["traefik", "servicelb", "local-storage"]),
    ("traefik", "none", "nfs", ["servicelb", "local-storage"]),
])
def test_disabled_addons(ingress, lb, storage, expected):
    assert k3s.disabled_addons(ingress, lb, storage) == expected


@pytest.mark.parametrize("machine, expected", [
    ("x86_64", {"arch": "amd64", "binary": "k3s", "checksums": "sha256sum-amd64.txt"}),
    ("aarch64", {"arch": "arm64", "binary": "k3s-arm64", "checksums": "sha256sum-arm64.txt"}),
    ("armv7l", {"arch": "arm", "binary": "k3s-armhf", "checksums": "sha256sum-arm.txt"}),
])
def test_release_files(machine, expected):
    assert k3s.release_files(machine) == expected


@pytest.mark.parametrize("machine", ["armv6l", "riscv64", "i686", ""])
def test_unsupported_arch(machine):
    with pytest.raises(k3s.UnsupportedArch, match=f"no k3s release for architecture {machine!r}"):
        k3s.release_files(machine)


@pytest.mark.parametrize("version, filename, mirror, expected", [
    ("v1.31.4+k3s1", "k3s", None,
     "https://github.com/k3s-io/k3s/releases/download/v1.31.4%2Bk3s1/k3s"),
    ("v1.31.4+k3s1", "sha256sum-arm64.txt", "http://10.77.0.1:8080/",
     "http://10.77.0.1:8080/v1.31.4%2Bk3s1/sha256sum-arm64.txt"),
    ("v1.30.0-rc1+k3s2", "k3s-armhf", "https://mirror.lan/k3s",
     "https://mirror.lan/k3s/v1.30.0-rc1%2Bk3s2/k3s-armhf"),
])
def test_release_url(version, filename, mirror, expected):
    assert k3s.release_url(version, filename, mirror) == expected


SUMS = (
    "0" * 63 + "1  k3s-airgap-images-amd64.tar\n"
    + "ab" * 32 + "  k3s\n"
    + "cd" * 32 + " *k3s-arm64\n"
    + "not-a-hash  k3s-armhf\n"
)


@pytest.mark.parametrize("filename, expected", [
    ("k3s", "ab" * 32), ("k3s-arm64", "cd" * 32), ("k3s-armhf", None), ("k3s.exe", None),
])
def test_sha256_for(filename, expected):
    assert k3s.sha256_for(SUMS, filename) == expected


@pytest.mark.parametrize("text, expected", [
    ("k3s version v1.31.4+k3s1 (a8d6fd6d)\ngo version go1.22.9\n", "v1.31.4+k3s1"),
    ("k3s version v1.31.5+k3s1 (standin)\n", "v1.31.5+k3s1"),
    ("bash: k3s: command not found", None),
    # the node's word: only a k3s version is one
    ("k3s version v1.31.4+k3s1;rm (x)\n", None), ("k3s version latest\n", None),
    ("k3s version v1.32.0-rc1+k3s1 (abc)\n", "v1.32.0-rc1+k3s1"),
    ("", None),
    (None, None),
])
def test_parse_version_output(text, expected):
    assert k3s.parse_version_output(text) == expected


@pytest.mark.parametrize("a, b, expected", [
    ("v1.31.4+k3s1", "v1.31.4+k3s1", 0),
    ("v1.31.4+k3s1", "v1.31.5+k3s1", -1),
    ("v1.31.10+k3s1", "v1.31.9+k3s1", 1),
    ("v1.31.4+k3s2", "v1.31.4+k3s1", 1),
    ("v1.31.4-rc1+k3s1", "v1.31.4+k3s1", -1),
    ("v1.31.4-rc2+k3s1", "v1.31.4-rc1+k3s1", 1),
    ("v1.30.9+k3s1", "v1.31.0+k3s1", -1),
])
def test_compare_versions(a, b, expected):
    assert k3s.compare_versions(a, b) == expected


def test_version_key_rejects_garbage():
    with pytest.raises(ValueError, match="not a k3s version"):
        k3s.version_key("1.31.4")


def test_kubernetes_minor():
    assert k3s.kubernetes_minor("v1.29.12+k3s1") == "1.29"


@pytest.mark.parametrize("host, port, expected", [
    ("10.0.0.1", 6443, "https://10.0.0.1:6443"),
    ("k3s.lan", 443, "https://k3s.lan:443"),
    ("fd00::1", 6443, "https://[fd00::1]:6443"),
])
def test_api_url(host, port, expected):
    assert k3s.api_url(host, port) == expected


@pytest.mark.parametrize("before, after", [
    ("console=serial0,115200 root=PARTUUID=1-02 rootwait\n",
     "console=serial0,115200 root=PARTUUID=1-02 rootwait cgroup_memory=1 cgroup_enable=memory\n"),
    ("root=/dev/mmcblk0p2 cgroup_enable=memory rootwait",
     "root=/dev/mmcblk0p2 cgroup_enable=memory rootwait cgroup_memory=1\n"),
    ("root=/dev/sda2 cgroup_memory=0 quiet\n", "root=/dev/sda2 cgroup_memory=1 quiet cgroup_enable=memory\n"),
    ("root=/dev/sda2 cgroup_memory=1 cgroup_enable=memory\n", "root=/dev/sda2 cgroup_memory=1 cgroup_enable=memory\n"),
    # a cgroup_disable=memory in the file itself comes after ours would and wins: dropped
    ("root=/dev/sda2 cgroup_enable=memory cgroup_disable=memory rootwait\n",
     "root=/dev/sda2 cgroup_enable=memory rootwait cgroup_memory=1\n"),
    ("cgroup_disable=memory root=/dev/mmcblk0p2\n", "root=/dev/mmcblk0p2 cgroup_memory=1 cgroup_enable=memory\n"),
])
def test_cmdline_with_cgroups(before, after):
    assert k3s.cmdline_with_cgroups(before) == after
    assert k3s.cmdline_with_cgroups(after) == after  # idempotent


@pytest.mark.parametrize("journal, expected", [
    ('time="t" level=info msg="Starting"\ntime="t" level=fatal msg="Error: token rejected (401)"\n',
     "Error: token rejected (401)"),
    ('level=error msg="first"\nlevel=error msg="second \\"quoted\\""\n', 'second "quoted"'),
    ('level=fatal msg="the fatal one"\nlevel=error msg="a later error"\n', "the fatal one"),
    ("Started k3s.service\n", None),
])
def test_journal_error(journal, expected):
    assert k3s.journal_error(journal) == expected


def _sha1(text):
    return hashlib.sha1(text.encode()).hexdigest()


def test_stale_files():
    wanted = [
        {"path": "/same", "content": "a\n", "mode": "0644"},
        {"path": "/content", "content": "new\n", "mode": "0644"},
        {"path": "/mode", "content": "x", "mode": "0600"},
        {"path": "/owner", "content": "x", "mode": "0600"},
        {"path": "/missing", "content": "x", "mode": "0600"},
    ]
    ok = {"exists": True, "owner": "root", "group": "root"}
    state = {
        "/same": {**ok, "sha1": _sha1("a\n"), "mode": "0644"},
        "/content": {**ok, "sha1": _sha1("old\n"), "mode": "0644"},
        "/mode": {**ok, "sha1": _sha1("x"), "mode": "0644"},
        "/owner": {**ok, "sha1": _sha1("x"), "mode": "0600", "owner": "pi"},
        "/missing": {"exists": False},
    }
    assert k3s.stale_files(wanted, state) == ["/content", "/mode", "/owner", "/missing"]


UNIT = "/etc/systemd/system/k3s-agent.service"
CONFIG = {"path": "/etc/rancher/k3s/config.yaml", "mode": "0600", "content": "token: t\n"}
FILES = [{"path": UNIT, "mode": "0644", "content": "[Unit]\n"},
         {"path": "/usr/local/bin/k3s-killall.sh", "mode": "0755", "content": "#!/bin/sh\n"}]


def _installed(**changes):
    ok = {"exists": True, "owner": "root", "group": "root"}
    files = {f["path"]: {**ok, "mode": f["mode"], "sha1": _sha1(f["content"])} for f in [CONFIG, *FILES]}
    state = {"machine": "aarch64", "k3s_version_output": "k3s version v1.31.4+k3s1 (abc)\n", "files": files,
             "services": {"k3s-agent": {"active": "active", "enabled": "enabled"}}}
    for key, value in changes.items():
        if key in ("active", "enabled"):
            state["services"]["k3s-agent"][key] = value
        elif key == "version_output":
            state["k3s_version_output"] = value
        else:
            files[{"config": CONFIG["path"], "unit": UNIT}[key]] = value
    return state


@pytest.mark.parametrize("changes, plan", [
    # converged: nothing to install, write or start
    ({}, dict(install=False, write=False, restart=False, start_now=False, start_needed=False)),
    # a new config.yaml: written, and k3s restarted to read it
    ({"config": {"exists": False}}, dict(install=False, write=True, config_stale=True, restart=True,
                                         start_now=True, start_needed=True, stale_paths=[])),
    # a changed unit: written, daemon-reload, restart
    ({"unit": {"exists": True, "mode": "0600"}}, dict(write=True, config_stale=False, unit_changed=True,
                                                      restart=True, stale_paths=[UNIT])),
    # another version (or none): a new binary, then a restart
    ({"version_output": "k3s version v1.30.2+k3s1 (x)\n"}, dict(install=True, installed_version="v1.30.2+k3s1",
                                                               write=False, restart=True, start_now=True)),
    ({"version_output": ""}, dict(install=True, installed_version="", restart=True)),
    # a newer k3s (an upgrade stopped part-way): never replaced by the older one; the role refuses the node
    ({"version_output": "k3s version v1.31.5+k3s1 (x)\n"}, dict(install=False, downgrade=True, restart=False,
                                                               installed_version="v1.31.5+k3s1")),
    ({"version_output": "k3s version v1.30.2+k3s1 (x)\n"}, dict(install=True, downgrade=False)),
    # stopped: started, not restarted; only disabled: enabled, neither started nor restarted
    ({"active": "failed"}, dict(restart=False, start_now=True, start_needed=True)),
    ({"enabled": "disabled"}, dict(restart=False, start_now=False, start_needed=True)),
])
def test_install_plan(changes, plan):
    got = k3s.install_plan(_installed(**changes), config_file=CONFIG, files=FILES, version="v1.31.4+k3s1",
                           service="k3s-agent")
    assert {k: got[k] for k in plan} == plan
    assert got["release_files"] == k3s.release_files("aarch64")
    assert got["config_file"] == CONFIG and got["files"] == FILES


def test_install_plan_refuses_an_unsupported_arch():
    with pytest.raises(k3s.UnsupportedArch):
        k3s.install_plan({**_installed(), "machine": "mips"}, config_file=CONFIG, files=FILES,
                         version="v1.31.4+k3s1", service="k3s-agent")


def _node(name, status="True", message="kubelet is posting ready status"):
    return {"metadata": {"name": name},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                                      {"type": "Ready", "status": status, "message": message}]}}


def test_nodes_not_ready():
    nodes = {"items": [_node("a"), _node("b", "Unknown", "Kubelet stopped posting node status."),
                       {"metadata": {"name": "c"}, "status": {}}]}
    assert k3s.nodes_not_ready(nodes, ["a", "b", "c", "d"]) == {
        "b": "Ready=Unknown: Kubelet stopped posting node status.",
        "c": "no Ready condition yet",
        "d": "not registered with the cluster",
    }
    assert k3s.nodes_not_ready(nodes, ["a"]) == {}


# -- where the sha256 that decides an install comes from (always the controller) ----------
PINS = {"v1.31.4+k3s1": {"amd64": "a" * 64, "arm64": "b" * 64}}


@pytest.mark.parametrize("arch, kwargs, expected", [
    ("amd64", dict(pins=PINS, mirror="http://m/k3s"),
     {"sha256": "a" * 64, "what": "k3s_sha256 for v1.31.4+k3s1 amd64"}),
    ("arm64", dict(pins=PINS, airgap_dir="/srv/k3s/"),
     {"sha256": "b" * 64, "what": "k3s_sha256 for v1.31.4+k3s1 arm64"}),
    ("arm", dict(airgap_dir="/srv/k3s/"), {"path": "/srv/k3s/v1.31.4+k3s1/sha256sum-arm.txt",
                                           "what": "/srv/k3s/v1.31.4+k3s1/sha256sum-arm.txt"}),
    ("amd64", {}, {"url": "https://github.com/k3s-io/k3s/releases/download/v1.31.4%2Bk3s1/sha256sum-amd64.txt",
                   "what": "https://github.com/k3s-io/k3s/releases/download/v1.31.4%2Bk3s1/sha256sum-amd64.txt"}),
    ("arm", dict(pins=PINS, mirror="https://m.lan/k3s"), {"url": "https://m.lan/k3s/v1.31.4%2Bk3s1/sha256sum-arm.txt",
                                                         "what": "https://m.lan/k3s/v1.31.4%2Bk3s1/sha256sum-arm.txt"}),
])
def test_checksum_source(arch, kwargs, expected):
    assert k3s.checksum_source("v1.31.4+k3s1", arch, **kwargs) == expected


@pytest.mark.parametrize("arch, kwargs, message", [
    # the mirror's own checksum file would come from the same (unauthenticated) place as the binary
    ("amd64", dict(mirror="http://m/k3s"), "http://m/k3s is plain HTTP and nothing pins the k3s binary"),
    ("amd64", dict(mirror="http://m/k3s", pins={"v1.31.5+k3s1": PINS["v1.31.4+k3s1"]}), "is plain HTTP"),
    ("arm", dict(mirror="http://m/k3s", pins=PINS), "pins v1.31.4+k3s1 for amd64, arm64 but not for arm"),
])
def test_checksum_source_refuses_an_unpinned_http_mirror(arch, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        k3s.checksum_source("v1.31.4+k3s1", arch, **kwargs)
    assert k3s.mirror_problem("HTTPS://m/k3s", None, "v1.31.4+k3s1") is None


# -- registries.yaml goes with config.yaml: a change restarts k3s, nothing else does ----------
REGISTRIES = {"path": "/etc/rancher/k3s/registries.yaml", "mode": "0600",
              "content": "mirrors:\n  docker.io:\n    endpoint: [https://m.lan]\n"}


@pytest.mark.parametrize("on_node, plan", [
    # converged: nothing written, no restart
    ({"exists": True, "owner": "root", "group": "root", "mode": "0600", "sha1": _sha1(REGISTRIES["content"])},
     dict(write=False, restart=False, start_now=False, secret_writes=[], secret_contents={})),
    # a new or changed registries.yaml: written 0600 with config.yaml's secrets, and k3s restarted (it reads it
    # at start)
    ({"exists": False}, dict(write=True, restart=True, start_now=True,
                             secret_writes=[{"path": REGISTRIES["path"], "mode": "0600"}],
                             secret_contents={REGISTRIES["path"]: REGISTRIES["content"]})),
    ({"exists": True, "owner": "root", "group": "root", "mode": "0600", "sha1": _sha1("mirrors: {}\n")},
     dict(write=True, restart=True, secret_writes=[{"path": REGISTRIES["path"], "mode": "0600"}])),
    ({"exists": True, "owner": "root", "group": "root", "mode": "0644", "sha1": _sha1(REGISTRIES["content"])},
     dict(write=True, restart=True)),
])
def test_install_plan_restarts_for_registries_yaml_only_when_it_changed(on_node, plan):
    state = _installed()
    state["files"][REGISTRIES["path"]] = on_node
    got = k3s.install_plan(state, config_file=CONFIG, files=FILES, version="v1.31.4+k3s1", service="k3s-agent",
                           secret_files=[REGISTRIES])
    assert {k: got[k] for k in plan} == plan


def test_install_plan_writes_a_changed_config_yaml_as_a_secret():
    got = k3s.install_plan(_installed(config={"exists": False}), config_file=CONFIG, files=FILES,
                           version="v1.31.4+k3s1", service="k3s-agent")
    assert got["secret_writes"] == [{"path": CONFIG["path"], "mode": "0600"}]
    assert got["secret_contents"] == {CONFIG["path"]: CONFIG["content"]}


def test_embedded_registry_is_a_server_option():
    cfg = k3s.node_config("server", token="t", node_name="s1", embedded_registry=True)
    assert cfg["embedded-registry"] is True
    assert "embedded-registry" not in k3s.node_config("server", token="t", node_name="s1")
    with pytest.raises(ValueError, match="server settings"):
        k3s.node_config("agent", agent_token="a", node_name="a1", server_url="https://s:6443", embedded_registry=True)


# -- the release's images archive ------------------------------------------------------------
IMG = k3s.IMAGES_DIR


@pytest.mark.parametrize("machine, kwargs, expected", [
    # an air-gap directory with archives: the node's arch's, .tar.zst before .tar.gz before .tar
    ("x86_64", dict(airgap_files=["k3s", "k3s-airgap-images-amd64.tar.gz", "k3s-airgap-images-amd64.tar.zst"]),
     dict(arch="amd64", file="k3s-airgap-images-amd64.tar.zst", dest=f"{IMG}/k3s-airgap-images-amd64.tar.zst")),
    ("armv7l", dict(airgap_files=["k3s-airgap-images-amd64.tar.zst", "k3s-airgap-images-arm.tar"]),
     dict(arch="arm", file="k3s-airgap-images-arm.tar")),
    ("aarch64", dict(airgap_files=["k3s-airgap-images-arm64.tar.gz"]), dict(file="k3s-airgap-images-arm64.tar.gz")),
    # none for this arch there (only another arch's): nothing, unless asked for (then refused, below)
    ("aarch64", dict(airgap_files=["k3s-airgap-images-amd64.tar.zst"]), dict(file=None, remove=[])),
    # k3s_airgap_images: false: never
    ("x86_64", dict(wanted=False, airgap_files=["k3s-airgap-images-amd64.tar.zst"]), dict(file=None)),
    # no air-gap directory: only when asked for, the .tar.zst from the mirror (or GitHub)
    ("x86_64", {}, dict(file=None)),
    ("aarch64", dict(wanted=True), dict(file="k3s-airgap-images-arm64.tar.zst", have=None)),
    # what the node has: its sha256 (the caller compares it with the controller's), and any other images
    # archive (another format, another arch) goes, so k3s imports exactly one
    ("x86_64", dict(wanted=True, on_node={f"{IMG}/k3s-airgap-images-amd64.tar.zst": "c" * 64,
                                          f"{IMG}/k3s-airgap-images-amd64.tar.gz": "d" * 64,
                                          f"{IMG}/k3s-airgap-images-arm64.tar.zst": "e" * 64}),
     dict(have="c" * 64, remove=[f"{IMG}/k3s-airgap-images-amd64.tar.gz", f"{IMG}/k3s-airgap-images-arm64.tar.zst"])),
    # the node's answer names only images archives in the images directory, or it is not acted on
    ("x86_64", dict(wanted=True, on_node={"/etc/passwd": "c" * 64, f"{IMG}/../../../../etc/shadow": "c" * 64,
                                          f"{IMG}/k3s-airgap-images-amd64.tar.gz; reboot": "c" * 64}),
     dict(have=None, remove=[])),
    # without an archive to give, the node's own are left alone
    ("x86_64", dict(on_node={f"{IMG}/k3s-airgap-images-amd64.tar": "c" * 64}), dict(file=None, remove=[])),
])
def test_images_plan(machine, kwargs, expected):
    got = k3s.images_plan(machine, **kwargs)
    assert {k: got[k] for k in expected} == expected


def test_images_plan_refuses_a_wanted_archive_the_airgap_dir_lacks():
    with pytest.raises(ValueError, match=re.escape(
            "k3s_airgap_images is true but /srv/k3s/v1.31.4+k3s1 has no k3s-airgap-images-arm64.tar.zst / "
            "k3s-airgap-images-arm64.tar.gz / k3s-airgap-images-arm64.tar")):
        k3s.images_plan("aarch64", wanted=True, airgap_files=["k3s-arm64"], where="/srv/k3s/v1.31.4+k3s1")
    with pytest.raises(k3s.UnsupportedArch):
        k3s.images_plan("armv6l", wanted=True)


IMAGES_PINS = {"v1.31.4+k3s1": {"amd64": "a" * 64, "k3s-airgap-images-amd64.tar.zst": "f" * 64}}


@pytest.mark.parametrize("kwargs, expected", [
    # pinned by its file name (the binary is pinned by arch)
    (dict(pins=IMAGES_PINS, mirror="http://m/k3s"),
     {"sha256": "f" * 64, "what": "k3s_sha256 for v1.31.4+k3s1 k3s-airgap-images-amd64.tar.zst"}),
    # else the release's checksum file for the arch, which lists the archives too
    (dict(airgap_dir="/srv"), {"path": "/srv/v1.31.4+k3s1/sha256sum-amd64.txt",
                               "what": "/srv/v1.31.4+k3s1/sha256sum-amd64.txt"}),
    (dict(mirror="https://m.lan"), {"url": "https://m.lan/v1.31.4%2Bk3s1/sha256sum-amd64.txt",
                                    "what": "https://m.lan/v1.31.4%2Bk3s1/sha256sum-amd64.txt"}),
])
def test_checksum_source_of_the_images_archive(kwargs, expected):
    assert k3s.checksum_source("v1.31.4+k3s1", "amd64", filename="k3s-airgap-images-amd64.tar.zst",
                               **kwargs) == expected


def test_checksum_source_refuses_an_unpinned_images_archive_from_an_http_mirror():
    # the binary is pinned, the archive is not: the http mirror's checksum file cannot vouch for it
    with pytest.raises(ValueError, match=re.escape(
            "k3s_sha256 pins v1.31.4+k3s1 for amd64 but not for k3s-airgap-images-amd64.tar.zst; add its sha256 "
            "(from the release's sha256sum-amd64.txt)")):
        k3s.checksum_source("v1.31.4+k3s1", "amd64", pins={"v1.31.4+k3s1": {"amd64": "a" * 64}},
                            mirror="http://m/k3s", filename="k3s-airgap-images-amd64.tar.zst")


def test_sha256_for_reads_the_release_checksum_file_with_the_images_archives():
    # sha256sum-<arch>.txt as k3s's release workflow writes it: the images archives' lines, then the binary's
    sums = (f"{'1' * 64}  k3s-airgap-images-arm64.tar\n{'2' * 64}  k3s-airgap-images-arm64.tar.gz\n"
            f"{'3' * 64}  k3s-airgap-images-arm64.tar.zst\n{'4' * 64}  k3s-arm64\n")
    assert [k3s.sha256_for(sums, n) for n in k3s.images_names("arm64")] == ["3" * 64, "2" * 64, "1" * 64]
    assert k3s.sha256_for(sums, "k3s-arm64") == "4" * 64
