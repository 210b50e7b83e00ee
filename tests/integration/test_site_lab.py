"""edgeclu.cluster.site with plain ansible-playbook over SSH into lab nodes, k3s = the stand-in.

Converge + idempotence + upgrade + a wrong token; three servers from an air-gap directory;
checksum failures; check mode; the Raspberry Pi cmdline.txt reboot.
"""

import hashlib
import json
import threading
import time
from pathlib import Path

import pytest
import yaml

from ansible_collections.edgeclu.cluster.plugins.module_utils.k3s import nodes_not_ready
from tests.integration.lifecycle_util import etcd_members
from tests.k3s_standin.ansible_run import run_playbook
from tests.k3s_standin.fixtures import V1, V2, k3s_mirror, k3s_releases  # noqa: F401
from tests.k3s_standin.release import build_release, release_pins

pytestmark = pytest.mark.lab


def _inventory(tmp_path, lab, servers, agents, host_vars=None, **cluster_vars):
    text = lab.inventory_yaml(servers, agents, user="edge",
                              extra_vars={"k3s_version": V1, "token_file": str(tmp_path / "token"), **cluster_vars})
    data = yaml.safe_load(text)
    for name, hv in (host_vars or {}).items():
        for group in data["k3s_cluster"]["children"].values():
            if name in group["hosts"]:
                group["hosts"][name].update(hv)
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _kubectl_nodes(lab, server="node1"):
    return json.loads(lab.exec(server, "k3s kubectl get nodes -o json"))


def _ok(run):
    assert run.rc == 0, run.output[-6000:]
    return run


def test_one_server_two_agents_converge_idempotent_upgrade_and_wrong_token(fresh_lab, k3s_mirror, tmp_path):  # noqa: F811
    lab = fresh_lab(3)
    mirror = k3s_mirror(lab)
    inv = _inventory(tmp_path, lab, ["node1"], ["node2", "node3"], **mirror.vars)

    first = _ok(run_playbook(inv, lab.known_hosts))
    assert set(first.recap) == {"node1", "node2", "node3"}
    assert all(c > 0 for c in first.changed().values())
    assert nodes_not_ready(_kubectl_nodes(lab), ["node1", "node2", "node3"]) == {}
    assert lab.exec("node1", "systemctl is-active k3s").strip() == "active"
    for agent in ("node2", "node3"):
        assert lab.exec(agent, "systemctl is-active k3s-agent; systemctl is-enabled k3s-agent").split() == [
            "active", "enabled"]
        cfg = yaml.safe_load(lab.exec(agent, "cat /etc/rancher/k3s/config.yaml"))
        assert cfg["server"] == f"https://{lab.nodes['node1'].ip}:6443" and cfg["node-name"] == agent
        assert cfg["node-ip"] == lab.nodes[agent].ip
    for name in lab.nodes:
        assert lab.exec(name, "stat -c '%a %U' /etc/rancher/k3s/config.yaml").split() == ["600", "root"]
        assert lab.exec(name, "test -x /usr/local/bin/k3s-killall.sh && echo ok").strip() == "ok"
    assert lab.exec("node2", "ls /usr/local/bin").split() == [
        "k3s", "k3s-agent-uninstall.sh", "k3s-killall.sh"]
    server_cfg = yaml.safe_load(lab.exec("node1", "cat /etc/rancher/k3s/config.yaml"))
    assert "cluster-init" not in server_cfg and "server" not in server_cfg  # a single server: SQLite
    # two tokens: generated on the controller, 0600 in a 0700 dir, never printed; the server gets
    # both, an agent only the agent token (a stolen agent's SD card holds no server token)
    token = (tmp_path / "token").read_text().strip()
    agent_token = (tmp_path / "agent-token").read_text().strip()
    assert len(token) == len(agent_token) == 48 and token != agent_token
    for f in (tmp_path / "token", tmp_path / "agent-token"):
        assert f.stat().st_mode & 0o777 == 0o600
    assert token not in first.output and agent_token not in first.output
    assert server_cfg["token"] == token and server_cfg["agent-token"] == agent_token
    for agent in ("node2", "node3"):
        text = lab.exec(agent, "cat /etc/rancher/k3s/config.yaml")
        assert yaml.safe_load(text)["token"] == agent_token and token not in text
        assert token not in lab.exec(agent, "grep -rs . /etc/rancher /var/lib/rancher || true")
    # the binary came from the mirror, version URL-encoded, checked against the pinned sha256 (the
    # mirror's own checksum file is never read: it would come from the same unauthenticated place)
    assert f"/{V1.replace('+', '%2B')}/k3s" in mirror.requests
    assert not [p for p in mirror.requests if "sha256sum" in p]
    # lab nodes are containers: modprobe/sysctl are skipped, visibly
    assert "node2 is a container (systemd-nspawn): kernel modules and sysctls come from the host" \
        in first.output

    fetched = len(mirror.requests)
    second = _ok(run_playbook(inv, lab.known_hosts))
    assert second.changed() == {"node1": 0, "node2": 0, "node3": 0}
    assert len(mirror.requests) == fetched  # version gate: nothing downloaded

    # upgrade: a new k3s_version replaces the binary and restarts every service
    upgraded = _ok(run_playbook(inv, lab.known_hosts, extra_vars={"k3s_version": V2}))
    assert all(c > 0 for c in upgraded.changed().values())
    doc = _kubectl_nodes(lab)
    assert {i["metadata"]["name"]: i["status"]["nodeInfo"]["kubeletVersion"] for i in doc["items"]} == {
        "node1": V2, "node2": V2, "node3": V2}
    assert nodes_not_ready(doc, ["node1", "node2", "node3"]) == {}

    # an agent given a wrong token fails, named, with k3s's reason; the others converge
    bad = _inventory(tmp_path, lab, ["node1"], ["node2", "node3"], host_vars={"node3": {"k3s_agent_token": "wrong"}},
                     **mirror.vars, k3s_version=V2)
    run = run_playbook(bad, lab.known_hosts)
    assert run.rc != 0
    assert run.failed_hosts() == {"node3"}, run.output[-6000:]
    assert ("k3s-agent on node3 did not start: Error: the server at "
            f"https://{lab.nodes['node1'].ip}:6443 rejected the token (401 Unauthorized)") in run.output
    assert run.recap["node1"]["failed"] == run.recap["node2"]["failed"] == 0
    assert "wrong" not in lab.exec("node2", "cat /etc/rancher/k3s/config.yaml")

    # the agent uninstall script the role wrote removes k3s from an agent
    lab.exec("node2", "/usr/local/bin/k3s-agent-uninstall.sh >/dev/null 2>&1")
    assert lab.exec("node2", "ls /usr/local/bin /etc/rancher; systemctl cat k3s-agent >/dev/null 2>&1 || echo gone"
                    ).split() == ["/etc/rancher:", "/usr/local/bin:", "gone"]


def _journal_times(lab, node, unit, marker):
    lines = lab.exec(node, f"journalctl -u {unit} -o short-unix --no-pager").splitlines()
    return [float(line.split()[0]) for line in lines if marker in line]


def test_three_servers_join_one_at_a_time_from_an_airgap_dir(fresh_lab, k3s_releases, tmp_path):  # noqa: F811
    lab = fresh_lab(4)
    servers, agents = ["node1", "node2", "node3"], ["node4"]
    cluster = dict(k3s_airgap_dir=str(k3s_releases), api_endpoint="k3s.lab.example", tls_san=["10.77.0.100"])
    # the API endpoint's DNS name points at the second server (any server answers the API)
    lab.exec("node4", f"echo '{lab.nodes['node2'].ip} k3s.lab.example' >> /etc/hosts")
    # node3 cannot join (wrong token): it fails alone; the other servers and the agent converge
    bad = _inventory(tmp_path, lab, servers, agents, host_vars={"node3": {"k3s_token": "wrong"}}, **cluster)
    run = run_playbook(bad, lab.known_hosts)
    assert run.rc != 0 and run.failed_hosts() == {"node3"}
    assert (f"k3s on node3 did not start: failed to join https://{lab.nodes['node1'].ip}:6443: "
            "the server rejected the token (401 Unauthorized)") in run.output
    assert nodes_not_ready(_kubectl_nodes(lab), ["node1", "node2", "node4"]) == {}
    # one at a time: each server started only once the previous one was up (Type=notify)
    up1 = _journal_times(lab, "node1", "k3s", "Started k3s.service")[0]
    start2, up2 = (_journal_times(lab, "node2", "k3s", m)[0] for m in ("Starting k3s.service", "Started k3s"))
    start3 = _journal_times(lab, "node3", "k3s", "Starting k3s.service")[0]
    assert up1 <= start2 and up2 <= start3

    inv = _inventory(tmp_path, lab, servers, agents, **cluster)
    run = _ok(run_playbook(inv, lab.known_hosts))
    assert run.changed()["node1"] == run.changed()["node2"] == 0
    cfgs = {n: yaml.safe_load(lab.exec(n, "cat /etc/rancher/k3s/config.yaml")) for n in servers}
    assert cfgs["node1"].get("cluster-init") is True and "server" not in cfgs["node1"]
    for n in ("node2", "node3"):
        assert cfgs[n]["server"] == f"https://{lab.nodes['node1'].ip}:6443" and "cluster-init" not in cfgs[n]
    assert all(c["tls-san"] == ["k3s.lab.example", "10.77.0.100"] for c in cfgs.values())
    agent_cfg = yaml.safe_load(lab.exec("node4", "cat /etc/rancher/k3s/config.yaml"))
    assert agent_cfg["server"] == "https://k3s.lab.example:6443"  # agents use the API endpoint
    doc = _kubectl_nodes(lab, "node3")
    assert nodes_not_ready(doc, ["node1", "node2", "node3"]) == {}
    # three real etcd members (`etcdctl member list` on the last one to join)
    assert etcd_members(lambda c: lab.exec("node3", c)) == ["node1", "node2", "node3"]

    # the controller lost its token file: it is recovered from the first server, not replaced
    (tmp_path / "token").unlink()
    again = _ok(run_playbook(inv, lab.known_hosts))
    recovered = (tmp_path / "token").read_text().strip()
    assert recovered == lab.exec("node1", "cat /var/lib/rancher/k3s/server/token").strip()
    assert recovered not in again.output
    assert nodes_not_ready(_kubectl_nodes(lab), ["node1", "node2", "node3"]) == {}

    # the uninstall script the role wrote removes k3s from a server
    lab.exec("node3", "/usr/local/bin/k3s-uninstall.sh >/dev/null 2>&1")
    assert lab.exec("node3", "systemctl is-active k3s || true").strip() in ("inactive", "unknown")
    assert lab.exec("node3", "ls /usr/local/bin; ls -d /etc/rancher/k3s /var/lib/rancher/k3s 2>&1 || true") == (
        "ls: cannot access '/etc/rancher/k3s': No such file or directory\n"
        "ls: cannot access '/var/lib/rancher/k3s': No such file or directory\n")
    assert not lab.exec("node3", "ls /etc/systemd/system/ | grep k3s || true").strip()


def test_check_mode_changes_nothing_and_a_swapped_binary_is_refused(fresh_lab, k3s_mirror, k3s_releases,  # noqa: F811
                                                                   tmp_path):
    lab = fresh_lab(1)
    # what a LAN attacker does to a plain-http mirror: another binary, with a checksum file that
    # matches it; the hash that decides is the one the controller pinned (from the real release)
    bad_root = tmp_path / "bad-release"
    build_release(bad_root, V1)
    evil = (bad_root / V1 / "k3s").read_bytes() + b"# swapped on the mirror\n"
    (bad_root / V1 / "k3s").write_bytes(evil)
    (bad_root / V1 / "sha256sum-amd64.txt").write_text(f"{hashlib.sha256(evil).hexdigest()}  k3s\n")
    mirror = k3s_mirror(lab, root=bad_root)
    inv = _inventory(tmp_path, lab, ["node1"], [], k3s_mirror=mirror.url, k3s_sha256=release_pins(k3s_releases))

    dry = _ok(run_playbook(inv, lab.known_hosts, check=True))
    assert dry.recap["node1"]["changed"] > 0  # it reports what it would do ...
    assert lab.exec("node1", "ls /usr/local/bin /etc/rancher 2>&1 || true").split() == [
        "ls:", "cannot", "access", "'/etc/rancher':", "No", "such", "file", "or", "directory", "/usr/local/bin:"]
    assert not (tmp_path / "token").exists()  # ... and does nothing
    assert mirror.requests == []

    # with nothing pinned, an http mirror is refused before anything is downloaded
    unpinned = _inventory(tmp_path, lab, ["node1"], [], k3s_mirror=mirror.url)
    run = run_playbook(unpinned, lab.known_hosts)
    assert run.rc != 0 and run.failed_hosts() == {"node1"}
    assert f"refusing to install k3s: {mirror.url} is plain HTTP and nothing pins the k3s binary" in run.output
    assert mirror.requests == []
    inv = _inventory(tmp_path, lab, ["node1"], [], k3s_mirror=mirror.url, k3s_sha256=release_pins(k3s_releases))

    run = run_playbook(inv, lab.known_hosts)
    assert run.rc != 0 and run.failed_hosts() == {"node1"}
    url = f"{mirror.url}/{V1.replace('+', '%2B')}/k3s"
    pinned = release_pins(k3s_releases)[V1]["amd64"]
    assert (f"k3s from {url} does not match the sha256 from k3s_sha256 for {V1} amd64 (expected {pinned}, "
            f"got {hashlib.sha256(evil).hexdigest()}); refusing to install it") in run.output
    assert [p for p in mirror.requests if "sha256sum" in p] == []  # the mirror's checksum file is never read
    assert lab.exec("node1", "test -e /usr/local/bin/k3s && echo present || echo absent").strip() == "absent"

    # a corrupt file in an air-gap directory is refused on the controller, before any copy
    tampered = tmp_path / "tampered-release"
    build_release(tampered, V1, tamper=("k3s",))
    airgap = _inventory(tmp_path, lab, ["node1"], [], k3s_airgap_dir=str(tampered))
    run = run_playbook(airgap, lab.known_hosts)
    assert run.rc != 0
    assert f"{tampered}/{V1}/k3s does not match {tampered}/{V1}/sha256sum-amd64.txt: expected sha256 " in run.output
    assert lab.exec("node1", "test -e /usr/local/bin/k3s && echo present || echo absent").strip() == "absent"


def test_raspberry_pi_cmdline_gets_cgroups_and_one_reboot(fresh_lab, k3s_mirror, tmp_path):  # noqa: F811
    lab = fresh_lab(1)
    mirror = k3s_mirror(lab)
    # a user's cgroup_disable=memory in the file would win over ours: it goes
    original = "console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 rootwait\n"
    written = original.rstrip("\n") + " cgroup_disable=memory\n"
    lab.exec("node1", f"mkdir -p /boot/firmware && printf '%s' '{written}' > /boot/firmware/cmdline.txt"
                      " && printf 'has moved to /boot/firmware/cmdline.txt\\n' > /boot/cmdline.txt"
                      " && echo '/var/swap none swap sw 0 0' >> /etc/fstab")
    boot_id = lab.exec("node1", "cat /proc/sys/kernel/random/boot_id")

    # systemd-nspawn powers the node off on reboot; power it on again like the hardware would
    stop = threading.Event()

    def power_button():
        while not stop.is_set():
            proc = lab._procs.get("node1")
            if proc is not None and proc.poll() is not None:
                lab.stop("node1")
                lab.start("node1")
            time.sleep(0.2)

    watcher = threading.Thread(target=power_button, daemon=True)
    watcher.start()
    try:
        inv = _inventory(tmp_path, lab, ["node1"], [], **mirror.vars)
        first = _ok(run_playbook(inv, lab.known_hosts))
        # a handler, flushed right after the write (before k3s is installed on the node)
        banner = "RUNNING HANDLER [edgeclu.cluster.raspberrypi : Reboot so the kernel picks up the new command line]"
        assert banner in first.output, first.output[-6000:]
        install = "TASK [edgeclu.cluster.k3s_install : Check the k3s settings]"
        assert first.output.index(banner) < first.output.index(install)
        assert "changed: [node1]" in first.output.split("Reboot so the kernel picks up")[1].split("TASK")[0]
        assert lab.exec("node1", "cat /proc/sys/kernel/random/boot_id") != boot_id
        assert lab.exec("node1", "cat /boot/firmware/cmdline.txt") == original.rstrip("\n") + \
            " cgroup_memory=1 cgroup_enable=memory\n"
        backups = lab.exec("node1", "ls /boot/firmware").split()
        assert len(backups) == 2 and any(b.startswith("cmdline.txt.") for b in backups)
        assert lab.exec("node1", "cat /boot/cmdline.txt").startswith("has moved to")
        assert "# /var/swap none swap sw 0 0  # disabled for k3s by edgeclu" in lab.exec("node1", "cat /etc/fstab")
        boot_id = lab.exec("node1", "cat /proc/sys/kernel/random/boot_id")

        second = _ok(run_playbook(inv, lab.known_hosts))
        assert second.changed() == {"node1": 0}
        assert lab.exec("node1", "cat /proc/sys/kernel/random/boot_id") == boot_id  # no second reboot
    finally:
        stop.set()
        watcher.join(5)
    assert Path(lab.known_hosts).exists()
