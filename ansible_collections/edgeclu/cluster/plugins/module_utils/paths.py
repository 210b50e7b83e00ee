"""Node facts in one place: where k3s and edgeclu keep things on a node, and the units they run.

The collection's planners (module_utils/prereq.py, raspberrypi.py, agent.py, addons.py, k3s.py) put these
paths into their plans, so the roles' YAML and templates name none of them; edgeclu's Python
(``edgeclu/node.py``) re-exports them. Nothing here imports edgeclu: the collection works without it.

The k3s paths are k3s's defaults (docs.k3s.io: the install script puts the binary in ``/usr/local/bin``,
its config in ``/etc/rancher/k3s``, its data in ``/var/lib/rancher/k3s``; the units are ``k3s.service``
for a server and ``k3s-agent.service`` for an agent). The node agent (edgeclu.agent) is shipped alone and
keeps its own copy of its config path and of the k3s unit names.

A path a user may move is a role input (:data:`ROLE_INPUTS`): its default is in the roles'
``meta/argument_specs.yml`` (what Ansible reads), and a unit test keeps it equal to the value here.
"""

from __future__ import annotations

# -- k3s -----------------------------------------------------------------------------------
INSTALL_DIR = "/usr/local/bin"  # the k3s install script's
K3S_BIN = f"{INSTALL_DIR}/k3s"
K3S_KILLALL = f"{INSTALL_DIR}/k3s-killall.sh"
K3S_UNINSTALL = {"server": f"{INSTALL_DIR}/k3s-uninstall.sh", "agent": f"{INSTALL_DIR}/k3s-agent-uninstall.sh"}
K3S_CONFIG_DIR = "/etc/rancher/k3s"
K3S_CONFIG = f"{K3S_CONFIG_DIR}/config.yaml"
K3S_YAML = f"{K3S_CONFIG_DIR}/k3s.yaml"  # the admin kubeconfig k3s writes on a server, root-only
NODE_PASSWORD = "/etc/rancher/node/password"  # noqa: S105 - a path, not a password
RANCHER_DIR = "/var/lib/rancher"
DATA_DIR = f"{RANCHER_DIR}/k3s"  # k3s's --data-dir default
SERVER_DIR = f"{DATA_DIR}/server"
SERVER_TOKEN = f"{SERVER_DIR}/token"  # noqa: S105 - a path, k3s writes it
AGENT_TOKEN = f"{SERVER_DIR}/agent-token"  # noqa: S105 - a path, k3s writes it
SNAPSHOT_DIR = f"{SERVER_DIR}/db/snapshots"  # k3s's default etcd-snapshot-dir
MANIFESTS_DIR = f"{SERVER_DIR}/manifests"  # k3s applies what is here (its deploy controller)
STATIC_CHARTS_DIR = f"{SERVER_DIR}/static/charts"  # k3s serves these at https://<api>/static/charts/
IMAGES_DIR = f"{DATA_DIR}/agent/images"  # k3s imports every images archive here when it starts
STORAGE_DIR = f"{DATA_DIR}/storage"  # local-path-provisioner's default
SYSTEMD_DIR = "/etc/systemd/system"
SERVICES = {"server": "k3s", "agent": "k3s-agent"}


def unit_file(service: str) -> str:
    """The unit file of a service edgeclu writes (``k3s``, ``k3s-agent``, ``edgeclu-agent``)."""
    return f"{SYSTEMD_DIR}/{service}.service"


# -- edgeclu's own ---------------------------------------------------------------------------
STATE_DIR = "/var/lib/edgeclu"  # the cluster lock, the converged stamp, a restore's staging
STAMP = f"{STATE_DIR}/converged"
# the node agent, as the edgeclu_agent role installs it
AGENT_DIR = "/opt/edgeclu"
AGENT_ZIP_NAME = "edgeclu-agent.zip"
AGENT_ZIP = f"{AGENT_DIR}/{AGENT_ZIP_NAME}"
AGENT_CONFIG_DIR = "/etc/edgeclu"
AGENT_CONFIG = f"{AGENT_CONFIG_DIR}/agent.json"  # the agent's own default (edgeclu.agent.config) is the same
AGENT_SERVICE = "edgeclu-agent"
AGENT_UNIT = unit_file(AGENT_SERVICE)
SYSUSERS_DIR = "/etc/sysusers.d"
AGENT_SYSUSERS = f"{SYSUSERS_DIR}/{AGENT_SERVICE}.conf"

# -- what the prereq and raspberrypi roles look at and write --------------------------------------
K3S_MODULES_CONF = "/etc/modules-load.d/k3s.conf"
K3S_SYSCTL_CONF = "/etc/sysctl.d/90-k3s.conf"
FSTAB = "/etc/fstab"
PI_CMDLINES = ("/boot/firmware/cmdline.txt", "/boot/cmdline.txt")  # bookworm's place first
PI_SWAPFILE_SERVICE = "dphys-swapfile"  # Raspberry Pi OS's swap file

#: role inputs that move one of the paths above: their default (meta/argument_specs.yml) is this value
ROLE_INPUTS = {
    "k3s_install_dir": INSTALL_DIR,
    "k3s_config_dir": K3S_CONFIG_DIR,
    "k3s_images_dir": IMAGES_DIR,
    "storage_path": STORAGE_DIR,
    "prereq_sysctl_path": K3S_SYSCTL_CONF,
    "addons_manifests_dir": MANIFESTS_DIR,
    "addons_k3s_bin": K3S_BIN,
    "addons_static_charts_dir": STATIC_CHARTS_DIR,
    "agent_prefix": AGENT_DIR,
}


def node_paths() -> list[str]:
    """Every path above (sorted, longest first): what the roles' YAML and templates may not spell out."""
    found: set[str] = set()
    for name, value in globals().items():
        if name.startswith("_"):
            continue
        for v in value.values() if isinstance(value, dict) else value if isinstance(value, tuple) else (value,):
            if isinstance(v, str) and v.startswith("/"):
                found.add(v)
    return sorted(found, key=lambda p: (-len(p), p))
