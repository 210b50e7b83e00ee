"""The lab: N real Debian test nodes on this machine.

Each node is a network namespace on a private bridge, an overlayfs over a cached
debootstrap rootfs, booted with ``systemd-nspawn -b``: its own hostname, IP,
systemd, sshd and avahi. The controller lives in its own namespace (``<prefix>-ctl``);
a test process joins it with :func:`enter_netns` before it opens sockets.

Recipe and pitfalls: ``../shared/LAB.md``. Everything a lab creates carries its
prefix, so several labs (and parallel test runs) can coexist; teardown removes
every namespace, cgroup, process and per-node directory it made.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

LAB_ROOT = Path(os.environ.get("EDGECLU_LAB_DIR", "/var/tmp/edgeclu-lab"))
SUITE = "bookworm"
PACKAGES = (
    "systemd,systemd-sysv,dbus,openssh-server,python3,iproute2,procps,sudo,"
    "avahi-daemon,libnss-mdns,python3-psutil,python3-zeroconf,python3-yaml,kmod,"
    "python3-cryptography,python3-cffi-backend,"  # the k3s stand-in makes its CA and certs with it (debootstrap
    # does not resolve the virtual package python3-cryptography needs: name its provider)
    "etcd-server,etcd-client"  # real etcd (3.4) and etcdctl: the stand-in runs one etcd member per HA server, as
    # k3s embeds one (its etcd.service is masked: the stand-in starts etcd itself)
)
LAB_USER = "edge"  # non-root login with passwordless sudo, like a Pi's default user
RECIPE_VERSION = "4"  # bump when build_base changes, so caches are rebuilt
#: real kubectl binaries, one per minor (``kubectl.1.31``); bound read-only into every node at KUBECTL_IN_NODE,
#: where the k3s stand-in's ``k3s kubectl`` runs the one of its own minor version, as k3s runs its embedded one
KUBECTL_DIR = Path(os.environ.get("EDGECLU_LAB_KUBECTL_DIR", "/usr/lib/google-cloud-sdk/bin"))
KUBECTL_IN_NODE = "/opt/standin-kubectl"
CG_HIERARCHIES = ("/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified")
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL("libc.so.6", use_errno=True)


def _sh(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=check, capture_output=True, text=True, **kw)


def apt_mirror() -> str:
    if os.environ.get("EDGECLU_LAB_MIRROR"):
        return os.environ["EDGECLU_LAB_MIRROR"]
    for path in Path("/etc/apt/sources.list.d").glob("*.sources"):
        for line in path.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    with contextlib.suppress(OSError):
        for line in Path("/etc/apt/sources.list").read_text().splitlines():
            if line.startswith("deb ") and "security" not in line:
                return line.split()[1]
    return "http://deb.debian.org/debian"


def base_dir() -> Path:
    key = hashlib.sha256(f"{SUITE}|{PACKAGES}|{RECIPE_VERSION}".encode()).hexdigest()[:12]
    return LAB_ROOT / f"base-{key}"


def ensure_base(log=print) -> Path:
    """Return the cached rootfs, building it once (debootstrap, ~1 min)."""
    base = base_dir()
    rootfs = base / "rootfs"
    LAB_ROOT.mkdir(parents=True, exist_ok=True)
    with open(LAB_ROOT / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (rootfs / ".edgeclu-lab-ready").exists():
            return rootfs
        tarball = base / "rootfs.tar.zst"
        tmp = base / "rootfs.new"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if tarball.exists():
            subprocess.run(f"zstd -dc {tarball} | tar -C {tmp} -xf -", shell=True, check=True)
        else:
            log(f"lab: building base rootfs with debootstrap into {tmp} (once)")
            _build_rootfs(tmp)
            subprocess.run(f"tar -C {tmp} -cf - . | zstd -q -T0 -f -o {tarball}.part && mv {tarball}.part {tarball}",
                           shell=True, check=True)
        (tmp / ".edgeclu-lab-ready").touch()
        shutil.rmtree(rootfs, ignore_errors=True)
        tmp.rename(rootfs)
        return rootfs


def _build_rootfs(r: Path) -> None:
    _sh("debootstrap", "--variant=minbase", f"--include={PACKAGES}", SUITE, str(r), apt_mirror())
    (r / "etc/hostname").unlink(missing_ok=True)
    for key in (r / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (r / "etc/machine-id").write_text("")
    dbus_id = r / "var/lib/dbus/machine-id"
    dbus_id.unlink(missing_ok=True)
    dbus_id.symlink_to("/etc/machine-id")
    (r / "etc/ssh/sshd_config.d/nodelab.conf").write_text(
        "HostKey /etc/ssh/ssh_host_ed25519_key\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nUseDNS no\n"
    )
    for unit in ("console-getty.service", "apt-daily.timer", "apt-daily-upgrade.timer",
                 "dpkg-db-backup.timer", "e2scrub_all.timer", "e2scrub_reap.service",
                 "systemd-timesyncd.service", "etcd.service"):
        link = r / "etc/systemd/system" / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    _sh("chroot", str(r), "useradd", "-m", "-s", "/bin/bash", LAB_USER)
    (r / f"etc/sudoers.d/{LAB_USER}").write_text(f"{LAB_USER} ALL=(ALL) NOPASSWD:ALL\n")
    (r / f"etc/sudoers.d/{LAB_USER}").chmod(0o440)
    _sh("chroot", str(r), "apt-get", "clean")
    shutil.rmtree(r / "var/lib/apt/lists", ignore_errors=True)
    (r / "var/lib/apt/lists/partial").mkdir(parents=True)


def kubectl_binds() -> list[str]:
    """systemd-nspawn options binding each real ``kubectl.1.NN`` into a node."""
    return [f"--bind-ro={p}:{KUBECTL_IN_NODE}/{p.name}" for p in sorted(KUBECTL_DIR.glob("kubectl.1.[0-9]*"))]


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def enter_netns(name: str):
    """Move the calling thread into netns ``name``; threads, sockets and
    subprocesses it creates afterwards live there too. Restored on exit."""
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        _setns(target)
        yield
    finally:
        _setns(own)
        os.close(own)
        os.close(target)


@dataclass
class LabNode:
    name: str
    ip: str
    dir: Path
    netns: str
    pid: int | None = None

    @property
    def upper(self) -> Path:
        """This node's writes, readable from the host."""
        return self.dir / "upper"


@dataclass
class Lab:
    prefix: str = field(default_factory=lambda: f"el{os.getpid() % 100000}")
    net: str = "10.77.0"
    nodes: dict[str, LabNode] = field(default_factory=dict)
    #: per-node extra systemd-nspawn options (e.g. ``--bind-ro=``), applied at start
    nspawn_extra: dict[str, list[str]] = field(default_factory=dict)
    _procs: dict[str, subprocess.Popen] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.dir = LAB_ROOT / "labs" / self.prefix
        self.keys = self.dir / "keys"
        self.key = self.keys / "id_ed25519"
        self.known_hosts = self.dir / "known_hosts"
        self.ctl_netns = f"{self.prefix}-ctl"
        self.lan_netns = f"{self.prefix}-lan"
        self.ctl_ip = f"{self.net}.1"
        self.rootfs: Path | None = None

    # -- lifecycle ---------------------------------------------------------
    def up(self, count: int, wait: bool = True) -> list[LabNode]:
        self.rootfs = ensure_base()
        self.keys.mkdir(parents=True, exist_ok=True)
        if not self.key.exists():
            _sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "edgeclu-lab", "-f", str(self.key))
        self._net_up()
        new = [self.add_node() for _ in range(count)]
        if wait:
            self.wait_ssh(new)
        return new

    def _net_up(self) -> None:
        if Path(f"/run/netns/{self.lan_netns}").exists():
            return
        _sh("ip", "netns", "add", self.lan_netns)
        _sh("ip", "-n", self.lan_netns, "link", "set", "lo", "up")
        _sh("ip", "-n", self.lan_netns, "link", "add", "br0", "type", "bridge")
        _sh("ip", "-n", self.lan_netns, "link", "set", "br0", "up")
        _sh("ip", "netns", "add", self.ctl_netns)
        _sh("ip", "-n", self.ctl_netns, "link", "set", "lo", "up")
        _sh("ip", "link", "add", "eth0", "netns", self.ctl_netns, "type", "veth",
            "peer", "name", "v-ctl", "netns", self.lan_netns)
        _sh("ip", "-n", self.lan_netns, "link", "set", "v-ctl", "master", "br0", "up")
        _sh("ip", "-n", self.ctl_netns, "addr", "add", f"{self.ctl_ip}/24", "dev", "eth0")
        _sh("ip", "-n", self.ctl_netns, "link", "set", "eth0", "up")

    def add_node(self, name: str | None = None) -> LabNode:
        index = len(self.nodes) + 1
        name = name or f"node{index}"
        node = LabNode(name=name, ip=f"{self.net}.{10 + index}", dir=self.dir / "nodes" / name,
                       netns=f"{self.prefix}-{name}")
        node.dir.mkdir(parents=True, exist_ok=True)
        hostkey = node.dir / "ssh_host_ed25519_key"
        _sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{name}", "-f", str(hostkey))
        self.nodes[name] = node
        ns, lan = node.netns, self.lan_netns
        _sh("ip", "netns", "add", ns)
        _sh("ip", "-n", ns, "link", "set", "lo", "up")
        _sh("ip", "link", "add", "eth0", "netns", ns, "type", "veth",
            "peer", "name", f"v-{index}", "netns", lan)
        _sh("ip", "-n", lan, "link", "set", f"v-{index}", "master", "br0", "up")
        _sh("ip", "-n", ns, "addr", "add", f"{node.ip}/24", "dev", "eth0")
        _sh("ip", "-n", ns, "link", "set", "eth0", "up")
        _sh("ip", "-n", ns, "route", "add", "default", "via", self.ctl_ip)
        self._write_known_hosts()
        self.start(name)
        return node

    def _cgroup(self, node: LabNode) -> list[Path]:
        return [Path(h) / self.prefix / node.name for h in CG_HIERARCHIES if Path(h).is_dir()]

    def start(self, name: str) -> None:
        """Boot (or re-boot) a node; its disk (the overlay upper dir) persists."""
        node = self.nodes[name]
        assert node.pid is None, f"{name} is running"
        d = node.dir
        for sub in ("upper", "work", "merged"):
            (d / sub).mkdir(exist_ok=True)
        cgroups = self._cgroup(node)
        for cg in cgroups:
            cg.mkdir(parents=True, exist_ok=True)
        script = f"""
set -e
for cg in {' '.join(str(c) for c in cgroups)}; do echo $$ > $cg/cgroup.procs; done
mount -t overlay overlay -o lowerdir={self.rootfs},upperdir={d}/upper,workdir={d}/work {d}/merged
R={d}/merged
echo {name} > $R/etc/hostname
printf '127.0.0.1 localhost\\n127.0.1.1 {name}\\n' > $R/etc/hosts
install -m600 {d}/ssh_host_ed25519_key $R/etc/ssh/ssh_host_ed25519_key
install -m644 {d}/ssh_host_ed25519_key.pub $R/etc/ssh/ssh_host_ed25519_key.pub
install -d -m700 $R/root/.ssh; install -m600 {self.key}.pub $R/root/.ssh/authorized_keys
install -d -m700 -o 1000 -g 1000 $R/home/{LAB_USER}/.ssh
install -m600 -o 1000 -g 1000 {self.key}.pub $R/home/{LAB_USER}/.ssh/authorized_keys
exec systemd-nspawn -q -D $R -M {node.netns} --hostname={name} --register=no --keep-unit \\
  --network-namespace-path=/run/netns/{node.netns} --console=read-only $NSPAWN_EXTRA -b
"""
        _sh("ip", "-n", self.lan_netns, "link", "set", self._veth(node), "up", check=False)
        env = dict(os.environ, NSPAWN_EXTRA=" ".join(kubectl_binds() + self.nspawn_extra.get(name, [])))
        with open(d / "nspawn.log", "ab") as log:
            proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "bash", "-c", script],
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env, start_new_session=True)
        node.pid = proc.pid
        self._procs[name] = proc

    def stop(self, name: str, hard: bool = False, timeout: float = 10) -> None:
        """Power a node off: SIGTERM is a clean shutdown, ``hard`` pulls the plug."""
        node = self.nodes[name]
        if node.pid is None:
            return
        proc = self._procs.pop(name)
        if hard:
            # cut the cable first, so peers see the node vanish at once
            _sh("ip", "-n", self.lan_netns, "link", "set", self._veth(node), "down", check=False)
        with contextlib.suppress(ProcessLookupError):
            os.kill(node.pid, signal.SIGKILL if hard else signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(node.pid, signal.SIGKILL)
            proc.wait(5)
        self._reap_cgroup(node)
        node.pid = None
        # a powered-off machine answers nothing, not even ARP: keep its link down until start()
        _sh("ip", "-n", self.lan_netns, "link", "set", self._veth(node), "down", check=False)

    def _veth(self, node: LabNode) -> str:
        return f"v-{list(self.nodes).index(node.name) + 1}"

    def _reap_cgroup(self, node: LabNode) -> None:
        for cg in self._cgroup(node):
            _reap_cgroup_tree(cg)

    def down(self) -> None:
        for node in self.nodes.values():
            if node.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(node.pid, signal.SIGTERM)
        for name in list(self.nodes):
            self.stop(name)
        for h in CG_HIERARCHIES:
            _reap_cgroup_tree(Path(h) / self.prefix)
        for ns in [n.netns for n in self.nodes.values()] + [self.ctl_netns, self.lan_netns]:
            _sh("ip", "netns", "del", ns, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
        for n in self.nodes.values():
            shutil.rmtree(f"/run/systemd/nspawn/propagate/{n.netns}", ignore_errors=True)
        self.nodes.clear()

    # -- helpers -----------------------------------------------------------
    def _write_known_hosts(self) -> None:
        lines = []
        for n in self.nodes.values():
            pub = (n.dir / "ssh_host_ed25519_key.pub").read_text().split()
            lines.append(f"{n.ip} {pub[0]} {pub[1]}\n")
        self.known_hosts.write_text("".join(lines))

    def wait_ssh(self, nodes: list[LabNode] | None = None, timeout: float = 60) -> None:
        nodes = nodes or list(self.nodes.values())
        deadline = time.monotonic() + timeout
        with enter_netns(self.ctl_netns):
            for node in nodes:
                while True:
                    try:
                        with socket.create_connection((node.ip, 22), timeout=0.5) as s:
                            s.settimeout(2)
                            if s.recv(4).startswith(b"SSH"):
                                break
                    except OSError:
                        pass
                    if time.monotonic() > deadline:
                        log = (node.dir / "nspawn.log").read_text(errors="replace")[-2000:]
                        raise TimeoutError(f"lab: sshd on {node.name} not up in {timeout}s\n{log}")
                    time.sleep(0.05)

    def exec(self, name: str, cmd: str) -> str:
        """Run a command inside a node without SSH (for test set-up and checks)."""
        node = self.nodes[name]
        leader = _container_leader(node.pid)
        out = _sh("nsenter", "-t", str(leader), "-a", "sh", "-c", cmd, check=False)
        if out.returncode:
            raise RuntimeError(f"{name}: {cmd!r} -> {out.returncode}: {out.stderr}")
        return out.stdout

    def inventory_yaml(self, servers: list[str], agents: list[str], user: str = "root",
                       extra_vars: dict | None = None) -> str:
        import yaml

        def hosts(names):
            return {n: {"ansible_host": self.nodes[n].ip} for n in names}

        data = {"k3s_cluster": {
            "children": {"server": {"hosts": hosts(servers)}, "agent": {"hosts": hosts(agents)}},
            "vars": {"ansible_user": user, "ansible_ssh_private_key_file": str(self.key),
                     "edgeclu_known_hosts": str(self.known_hosts), **(extra_vars or {})},
        }}
        if not agents:
            del data["k3s_cluster"]["children"]["agent"]
        return yaml.safe_dump(data, sort_keys=False)


def _rmdir_tree(top: Path) -> None:
    """Remove an (empty) cgroup directory tree, deepest first."""
    if not top.exists():
        return
    for sub in sorted(top.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if sub.is_dir():
            with contextlib.suppress(OSError):
                sub.rmdir()
    with contextlib.suppress(OSError):
        top.rmdir()


def _reap_cgroup_tree(cg: Path, timeout: float = 10) -> None:
    """Kill what is left in a lab cgroup tree and remove it. A node's processes outlive its
    nspawn for a moment (a hard power-off leaves orphans; the kernel tears a PID namespace
    down asynchronously), and a cgroup with members cannot be removed: so kill, wait and
    retry until the tree is gone or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while cg.exists():
        with contextlib.suppress(OSError):
            pids = [p for f in cg.rglob("cgroup.procs") for p in f.read_text().split()]
            for p in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(p), signal.SIGKILL)
        _rmdir_tree(cg)
        if not cg.exists() or time.monotonic() > deadline:
            return
        time.sleep(0.1)


def _container_leader(nspawn_pid: int) -> int:
    """PID of the node's init (the child of systemd-nspawn)."""
    # unshare/bash exec into nspawn, so nspawn_pid is nspawn itself
    for _ in range(100):
        children = Path(f"/proc/{nspawn_pid}/task/{nspawn_pid}/children")
        kids = children.read_text().split() if children.exists() else []
        if kids:
            return int(kids[0])
        time.sleep(0.05)
    raise RuntimeError(f"no container init under nspawn pid {nspawn_pid}")


def leftovers(prefix: str) -> list[str]:
    """What a lab with ``prefix`` left behind: netns, cgroups, processes, mounts."""
    found = []
    found += [f"netns {n}" for n in _sh("ip", "netns", "list").stdout.split() if n.startswith(prefix + "-")]
    found += [f"cgroup {h}/{prefix}" for h in CG_HIERARCHIES if (Path(h) / prefix).exists()]
    found += [f"mount {line.split()[1]}" for line in Path("/proc/mounts").read_text().splitlines()
              if f"/labs/{prefix}/" in line]
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if f"-M {prefix}-" in cmd or f"/run/netns/{prefix}-" in cmd:
                found.append(f"process {proc.name}: {cmd[:80]}")
    return found


def sweep(prefix: str) -> list[str]:
    """Tear down what a lab with ``prefix`` left (its test process was killed before ``down``):
    node processes, mounts, cgroups, namespaces, files. Returns what is still left."""
    def procs() -> list[int]:
        pids = []
        for proc in Path("/proc").glob("[0-9]*"):
            with contextlib.suppress(OSError):
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                if f"-M {prefix}-" in cmd or f"/run/netns/{prefix}-" in cmd:
                    pids.append(int(proc.name))
        return pids

    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in procs():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 10
        while procs() and time.monotonic() < deadline:
            time.sleep(0.2)
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines() if f"/labs/{prefix}/" in line]
    for mnt in sorted(mounts, key=len, reverse=True):
        _sh("umount", "-l", mnt, check=False)
    for h in CG_HIERARCHIES:
        _reap_cgroup_tree(Path(h) / prefix)
    for ns in _sh("ip", "netns", "list").stdout.split():
        if ns.startswith(prefix + "-"):
            _sh("ip", "netns", "del", ns, check=False)
    shutil.rmtree(LAB_ROOT / "labs" / prefix, ignore_errors=True)
    return leftovers(prefix)
