"""The roles' decisions, table-tested: module_utils/prereq.py, raspberrypi.py, agent.py and addons.py's
first-server plan decide from one k3s_node_state answer what a role writes, runs, reboots, installs and
(re)starts; the roles' tasks only read the plan (their wiring is what the lab tests run)."""

import hashlib

import pytest

from ansible_collections.edgeclu.cluster.plugins.filter.edgeclu_addons import FilterModule as AddonsFilters
from ansible_collections.edgeclu.cluster.plugins.filter.edgeclu_agent import FilterModule as AgentFilters
from ansible_collections.edgeclu.cluster.plugins.filter.edgeclu_prereq import FilterModule as PrereqFilters
from ansible_collections.edgeclu.cluster.plugins.module_utils import addons, agent, paths, prereq, raspberrypi

MODULES = ["br_netfilter", "overlay"]
SYSCTLS = {"net.ipv4.ip_forward": 1, "net.bridge.bridge-nf-call-iptables": 1}
SYSCTL = "/etc/sysctl.d/90-k3s.conf"


def as_on_node(wanted, **override):
    """k3s_node_state's answer for a node that has exactly ``wanted`` (``override``: path -> answer)."""
    out = {}
    for f in wanted:
        if f.get("directory"):
            out[f["path"]] = {"exists": True, "isdir": True, "sha1": None, "mode": f["mode"], "owner": "root",
                              "group": "root"}
        else:
            sha1 = f.get("sha1") or hashlib.sha1(f["content"].encode()).hexdigest()  # noqa: S324
            out[f["path"]] = {"exists": True, "isdir": False, "sha1": sha1, "mode": f["mode"], "owner": "root",
                              "group": "root"}
    out.update(override)
    return out


# -- prereq ---------------------------------------------------------------------------------------
def prereq_state(*, stale=(), container="", missing=(), swap_active=0, swap_fstab=0):
    files = prereq.files(MODULES, SYSCTLS, SYSCTL)
    return {"files": as_on_node(files, **{p: {"exists": False} for p in stale}), "container": container,
            "modules": {m: m not in missing for m in MODULES}, "swap": {"active": swap_active, "fstab": swap_fstab},
            "services": {"dphys-swapfile": {"active": "inactive", "enabled": "disabled"}}}


MOD = paths.K3S_MODULES_CONF


@pytest.mark.parametrize("state, disable_swap, want", [
    # converged: nothing at all
    (prereq_state(), True, {"todo": False, "write": [], "modprobe": [], "sysctl_apply": "", "swapoff": False,
                            "fstab": "", "now": []}),
    # a stale sysctl file is written and applied at once
    (prereq_state(stale=[SYSCTL]), True, {"todo": True, "write": [SYSCTL], "sysctl_apply": SYSCTL,
                                          "now": ["apply kernel settings"]}),
    # a stale modules file is written, nothing is loaded when every module is
    (prereq_state(stale=[MOD]), True, {"todo": True, "write": [MOD], "modprobe": [], "sysctl_apply": "", "now": []}),
    # a missing module is loaded (only that one)
    (prereq_state(missing=["overlay"]), True, {"todo": True, "write": [], "modprobe": ["overlay"],
                                               "now": ["load kernel modules"]}),
    # a container: no modprobe, no sysctl (the host's job), but the files are still written
    (prereq_state(container="systemd-nspawn", missing=MODULES, stale=[MOD, SYSCTL]), True,
     {"todo": True, "container": "systemd-nspawn", "write": [MOD, SYSCTL], "modprobe": [], "sysctl_apply": "",
      "now": []}),
    # a container with nothing to write and modules "missing" (the host's): nothing to do
    (prereq_state(container="lxc", missing=MODULES), True, {"todo": False, "modprobe": []}),
    # swap on and disable_swap: swapoff now, fstab edited
    (prereq_state(swap_active=1, swap_fstab=1), True, {"todo": True, "swapoff": True, "fstab": paths.FSTAB,
                                                       "now": ["turn swap off"]}),
    # swap only in fstab: the edit, no swapoff
    (prereq_state(swap_fstab=2), True, {"todo": True, "swapoff": False, "fstab": paths.FSTAB, "now": []}),
    # swap off in a container too (swap is the node's, not the kernel's settings)
    (prereq_state(container="lxc", swap_active=1), True, {"todo": True, "swapoff": True, "now": ["turn swap off"]}),
    # disable_swap false: swap is left alone
    (prereq_state(swap_active=1, swap_fstab=1), False, {"todo": False, "swapoff": False, "fstab": ""}),
])
def test_prereq_plan(state, disable_swap, want):
    plan = prereq.plan(state, modules=MODULES, sysctls=SYSCTLS, sysctl_path=SYSCTL, disable_swap=disable_swap)
    got = {**plan, "write": [f["path"] for f in plan["write"]]}
    assert {k: got[k] for k in want} == want


def test_prereq_writes_what_k3s_reads_where_the_input_says():
    plan = prereq.plan(prereq_state(stale=[MOD]) | {"files": {}}, modules=MODULES, sysctls=SYSCTLS,
                       sysctl_path="/srv/sysctl.conf", disable_swap=True)
    assert plan["write"] == [
        {"path": paths.K3S_MODULES_CONF, "mode": "0644", "content": "br_netfilter\noverlay\n"},
        {"path": "/srv/sysctl.conf", "mode": "0644",
         "content": "net.ipv4.ip_forward = 1\nnet.bridge.bridge-nf-call-iptables = 1\n"}]
    assert plan["sysctl_apply"] == "/srv/sysctl.conf"
    probe = PrereqFilters().filters()["prereq_probe"](MODULES, SYSCTLS, "/srv/sysctl.conf")
    assert probe == {"paths": [paths.K3S_MODULES_CONF, "/srv/sysctl.conf"], "modules": MODULES,
                     "services": [paths.PI_SWAPFILE_SERVICE]}


# -- raspberrypi ----------------------------------------------------------------------------------
PI = "/boot/firmware/cmdline.txt"
PLAIN = "console=tty1 root=PARTUUID=1234-02 rootwait\n"
CGROUPS = "console=tty1 root=PARTUUID=1234-02 rootwait cgroup_memory=1 cgroup_enable=memory\n"


def pi_state(cmdline=None, active="inactive", enabled="disabled"):
    return {"rpi_cmdline": cmdline, "services": {"dphys-swapfile": {"active": active, "enabled": enabled}}}


@pytest.mark.parametrize("state, disable_swap, want", [
    # the cmdline lacks the memory cgroup: write it and reboot
    (pi_state({"path": PI, "content": PLAIN}), True,
     {"cmdline": {"path": PI, "content": CGROUPS}, "reboot": True, "swapfile_off": "", "todo": True}),
    # it has it: nothing
    (pi_state({"path": PI, "content": CGROUPS}), True, {"cmdline": None, "reboot": False, "todo": False}),
    # the firmware's cgroup_disable=memory in the file is dropped (it would win): a write
    (pi_state({"path": "/boot/cmdline.txt", "content": "cgroup_disable=memory " + CGROUPS}), True,
     {"cmdline": {"path": "/boot/cmdline.txt", "content": CGROUPS}, "reboot": True}),
    # no Pi: nothing to write, no reboot
    (pi_state(None), True, {"cmdline": None, "reboot": False, "todo": False}),
    # the swap file service running or merely enabled: stop and disable it
    (pi_state(None, active="active", enabled="enabled"), True, {"swapfile_off": "dphys-swapfile", "todo": True}),
    (pi_state(None, active="inactive", enabled="enabled"), True, {"swapfile_off": "dphys-swapfile", "todo": True}),
    # ... unless swap is to stay
    (pi_state(None, active="active", enabled="enabled"), False, {"swapfile_off": "", "todo": False}),
])
def test_rpi_plan(state, disable_swap, want):
    plan = PrereqFilters().filters()["rpi_plan"](state, disable_swap)
    assert {k: plan[k] for k in want} == want


def test_rpi_probe_asks_for_the_swap_file_service():
    assert raspberrypi.probe() == {"services": ["dphys-swapfile"]}


# -- edgeclu_agent --------------------------------------------------------------------------------
PREFIX = "/opt/edgeclu"
UNIT, SYSUSERS, JSON, SHA1 = "[Unit]\n", "u edgeclu-agent -\n", '{"token": "T"}\n', "a" * 40


def agent_state(*, stale=(), active="active", enabled="enabled", psutil=True):
    p = agent.paths(PREFIX)
    wanted = [{"path": p["prefix"], "directory": True, "mode": "0755"},
              {"path": p["config_dir"], "directory": True, "mode": "0700"},
              {"path": p["sysusers_dir"], "directory": True, "mode": "0755"},
              {"path": p["zip"], "sha1": SHA1, "mode": "0644"},
              {"path": p["config"], "content": JSON, "mode": "0600"},
              {"path": p["unit"], "content": UNIT, "mode": "0644"},
              {"path": p["sysusers"], "content": SYSUSERS, "mode": "0644"}]
    return {"files": as_on_node(wanted, **{path: {"exists": False} for path in stale}),
            "services": {"edgeclu-agent.service": {"active": active, "enabled": enabled}},
            "imports": {"psutil": psutil}}


def agent_plan(state, prefix=PREFIX):
    return AgentFilters().filters()["edgeclu_agent_plan"](state, prefix, SHA1, JSON, UNIT, SYSUSERS)


CONF, AUNIT, ZIP = paths.AGENT_CONFIG, paths.AGENT_UNIT, paths.AGENT_ZIP
START = {"service": "edgeclu-agent.service", "sysusers": [paths.AGENT_SYSUSERS], "daemon_reload": False}


@pytest.mark.parametrize("state, want", [
    # converged and running: nothing
    (agent_state(), {"todo": False, "stale": [], "packages": [], "action": "start"}),
    # agent.json stale: written as a secret (never in write's content), then a restart
    (agent_state(stale=[CONF]), {"todo": True, "stale": [CONF], "action": "restart",
                                 "write": [{"path": CONF, "mode": "0600"}], "secret_contents": {CONF: JSON},
                                 "start": {**START, "action": "restart"}}),
    # inactive (or not enabled) with nothing stale: start, write nothing
    (agent_state(active="inactive"), {"todo": True, "write": [], "action": "start",
                                      "start": {**START, "action": "start"}}),
    (agent_state(enabled="disabled"), {"todo": True, "action": "start"}),
    # a new unit: daemon-reload before the restart
    (agent_state(stale=[AUNIT]), {"action": "restart", "secret_contents": {},
                                  "start": {**START, "daemon_reload": True, "action": "restart"}}),
    # new code: the zip is written (its bytes added by edgeclu_agent_write), a restart
    (agent_state(stale=[ZIP]), {"write_zip": True, "write": [{"path": ZIP, "mode": "0644"}], "action": "restart"}),
    # no psutil: install it (and start, which is a no-op on a running agent)
    (agent_state(psutil=False), {"todo": True, "packages": ["python3-psutil"], "stale": []}),
])
def test_agent_plan(state, want):
    plan = agent_plan(state)
    assert {k: plan[k] for k in want} == want


def test_agent_write_adds_the_zip_bytes_only_to_the_zip():
    plan = agent_plan(agent_state(stale=[ZIP, paths.AGENT_CONFIG_DIR]))
    assert AgentFilters().filters()["edgeclu_agent_write"](plan, "QUJD") == [
        {"path": paths.AGENT_CONFIG_DIR, "directory": True, "mode": "0700"},
        {"path": ZIP, "mode": "0644", "content_b64": "QUJD"}]


def test_agent_prefix_moves_the_code_not_the_settings():
    p = agent.paths("/srv/agent/")
    assert (p["prefix"], p["zip"], p["config"]) == ("/srv/agent", "/srv/agent/edgeclu-agent.zip", paths.AGENT_CONFIG)
    assert p["remove"] == [paths.AGENT_UNIT, paths.AGENT_SYSUSERS, "/srv/agent", paths.AGENT_CONFIG_DIR, paths.STAMP]
    probe = agent.probe("/srv/agent", "/usr/bin/python3")
    assert probe["paths"][0] == "/srv/agent" and "/srv/agent/edgeclu-agent.zip" in probe["paths"]
    # a node whose agent lives under the default prefix has everything stale under another one
    plan = agent_plan(agent_state(), prefix="/srv/agent")
    assert {"/srv/agent", "/srv/agent/edgeclu-agent.zip"} <= set(plan["stale"]) and plan["action"] == "restart"


# -- addons (the first server) ----------------------------------------------------------------------
MDIR, K3S = paths.MANIFESTS_DIR, paths.K3S_BIN
MANIFESTS = {"edgeclu-traefik-config.yaml": "a: 1\n", "edgeclu-cert-manager.yaml": "b: 2\n"}


def server_state(manifests, present=(), k3s=True, stale=()):
    files = as_on_node(addons.manifest_files(manifests, MDIR), **{f"{MDIR}/{n}": {"exists": False} for n in stale})
    return {"files": files, "globs": {f"{MDIR}/edgeclu-*.yaml": [f"{MDIR}/{n}" for n in present],
                                      K3S: [K3S] if k3s else []}}


@pytest.mark.parametrize("state, want", [
    (server_state(MANIFESTS, present=list(MANIFESTS)), {"todo": False, "write": [], "remove": []}),
    # a manifest that differs is written
    (server_state(MANIFESTS, present=list(MANIFESTS), stale=["edgeclu-cert-manager.yaml"]),
     {"todo": True, "write": [f"{MDIR}/edgeclu-cert-manager.yaml"], "remove": []}),
    # edgeclu's manifest of an add-on no longer chosen is removed (sorted), with kubectl when k3s is there
    (server_state(MANIFESTS, present=[*MANIFESTS, "edgeclu-metallb.yaml", "edgeclu-longhorn.yaml"]),
     {"todo": True, "remove": ["edgeclu-longhorn.yaml", "edgeclu-metallb.yaml"],
      "remove_paths": [f"{MDIR}/edgeclu-longhorn.yaml", f"{MDIR}/edgeclu-metallb.yaml"], "k3s_found": True}),
    # nothing chosen any more, k3s gone: the files go, no kubectl
    (server_state({}, present=["edgeclu-metallb.yaml"], k3s=False), {"remove": ["edgeclu-metallb.yaml"],
                                                                     "k3s_found": False, "write": []}),
])
def test_addons_first_server_plan(state, want):
    manifests = {n: t for n, t in MANIFESTS.items() if f"{MDIR}/{n}" in state["files"]}
    plan = AddonsFilters().filters()["edgeclu_addons_plan"](state, manifests, MDIR, K3S)
    got = {**plan, "write": [f["path"] for f in plan["write"]]}
    assert {k: got[k] for k in want} == want


def test_addons_probe_looks_for_edgeclus_manifests_and_k3s():
    probe = AddonsFilters().filters()["edgeclu_addons_probe"](MANIFESTS, MDIR + "/", K3S)
    assert probe == {"paths": [MDIR, f"{MDIR}/edgeclu-cert-manager.yaml", f"{MDIR}/edgeclu-traefik-config.yaml"],
                     "globs": [f"{MDIR}/edgeclu-*.yaml", K3S]}
