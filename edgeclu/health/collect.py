"""Gather one health sample per node, in parallel, each within its own time budget.

Per node: ``GET http://<address>:<agent_port>/health`` (bearer token if configured);
if the agent does not answer, SSH in (through :mod:`edgeclu.transport`) and run the
agent once (:data:`ONCE_COMMAND`). A node that answers neither within ``timeout``
seconds is *down*. Meanwhile every server is asked for ``k3s kubectl get nodes -o json``
over SSH (the first answer wins), and every server's serving certificate is read over TLS from
its inventory address (:func:`edgeclu.certs.serving_cert`: only its dates). The kubeconfig's
client certificate is read from the local file (:func:`kubeconfig_cert`).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgeclu import certs
from edgeclu.errors import AuthFailed, EdgecluError, HostKeyError, Unreachable
from edgeclu.fleet import on_all
from edgeclu.health import kube
from edgeclu.inventory import Host, Inventory
from edgeclu.node import AGENT_ZIP

ONCE_COMMAND = f"PYTHONPATH={AGENT_ZIP} python3 -m edgeclu.agent --once"
SCHEMAS = (1,)  # /health schema versions this controller understands


class AgentError(Exception):
    """The agent did not give us a usable sample (down, refused, wrong token, bad answer)."""


@dataclass
class CertResult:
    """The dates of one certificate, or why they could not be read."""

    dates: certs.CertDates | None = None
    error: str | None = None
    source: str | None = None  # where it was read: "10.0.0.5:6443", a kubeconfig path


@dataclass
class NodeResult:
    host: Host
    sample: dict | None = None
    via: str | None = None  # "agent" | "ssh" | None (no sample)
    reachable: bool = True
    agent_error: str | None = None  # why the HTTP agent was not used
    error: str | None = None  # why there is no sample at all
    elapsed: float = 0.0
    cert: CertResult | None = None  # a server's serving certificate (None: not read)


@dataclass
class KubeResult:
    nodes: dict[str, kube.KubeNode] | None = None
    source: str | None = None  # the server that answered
    error: str | None = None  # k3s is there but kubectl failed / no server reachable
    errors: dict[str, str] = field(default_factory=dict)


def read_token(inv: Inventory, override: Path | None = None) -> str | None:
    """The agents' bearer token: ``--token-file`` or the inventory's ``agent_token_file``."""
    path = override or inv.vars.get("agent_token_file")
    if not path:
        return None
    p = Path(path).expanduser()
    try:
        token = p.read_text().strip()
    except OSError as e:
        raise EdgecluError(f"agent token file {p}: {e.strerror}") from None
    if not token:
        raise EdgecluError(f"agent token file {p} is empty")
    return token


def check_sample(doc) -> dict:
    if not isinstance(doc, dict):
        raise AgentError("answer is not a JSON object")
    if doc.get("schema") not in SCHEMAS:
        raise AgentError(f"unsupported /health schema {doc.get('schema')!r} (this edgeclu reads {SCHEMAS})")
    return doc


def fetch_agent(address: str, port: int, token: str | None, timeout: float) -> dict:
    """``GET /health`` from one agent; raises :class:`AgentError` on anything but a good sample."""
    host = f"[{address}]" if ":" in address else address
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        conn.request("GET", "/health", headers=headers)
        resp = conn.getresponse()
        body = resp.read(4 * 1024 * 1024)
    except TimeoutError:
        raise AgentError(f"no answer on port {port} within {timeout:.1f}s") from None
    except (OSError, http.client.HTTPException) as e:
        raise AgentError(f"port {port}: {getattr(e, 'strerror', None) or e or type(e).__name__}") from None
    finally:
        conn.close()
    if resp.status == 401:
        raise AgentError("agent refused our token" if token else "agent wants a token (set agent_token_file)")
    if resp.status != 200:
        raise AgentError(f"HTTP {resp.status} from the agent")
    try:
        return check_sample(json.loads(body))
    except ValueError:
        raise AgentError("agent answered with invalid JSON") from None


def ssh_sample(remote, timeout: float) -> dict:
    """One sample by running the agent once over SSH (needs the agent's files on the node)."""
    res = remote.run(ONCE_COMMAND, sudo=True, check=False, timeout=timeout)
    if res.exit_code != 0:
        if "No module named" in res.stderr:
            raise AgentError("agent not installed on the node")
        tail = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else f"exit {res.exit_code}"
        raise AgentError(f"one-shot agent failed: {tail}")
    try:
        return check_sample(json.loads(res.stdout))
    except ValueError:
        raise AgentError("one-shot agent printed invalid JSON") from None


def poll_node(host: Host, *, port: int, token: str | None, timeout: float,
              remote_factory: Callable[[Host, float], object], ssh_fallback: bool = True) -> NodeResult:
    """Agent first, then SSH; never takes (much) longer than ``timeout``."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    result = NodeResult(host)
    try:
        result.sample, result.via = fetch_agent(host.address, port, token, timeout / 2), "agent"
    except AgentError as e:
        result.agent_error = str(e)
    if result.sample is None and ssh_fallback:
        remaining = max(deadline - time.monotonic(), 0.5)
        remote = remote_factory(host, remaining)
        try:
            result.sample, result.via = ssh_sample(remote, remaining), "ssh"
        except (Unreachable, AuthFailed, HostKeyError) as e:
            result.reachable, result.error = False, str(e).removeprefix(f"{host.name}: ")
        except AgentError as e:
            result.error = str(e)
        except EdgecluError as e:
            result.error = str(e).removeprefix(f"{host.name}: ")
        finally:
            remote.close()
    elif result.sample is None:
        result.reachable, result.error = False, result.agent_error
    result.elapsed = time.monotonic() - t0
    return result


def read_serving_cert(host: Host, port: int, timeout: float) -> CertResult:
    """The serving certificate ``host`` presents at its inventory address (never an announced one)."""
    source = f"{host.address}:{port}"
    try:
        return CertResult(certs.serving_cert(host.address, port, timeout), source=source)
    except certs.CertError as e:
        return CertResult(error=str(e), source=source)


def kubeconfig_cert(path: Path, user: str) -> CertResult | None:
    """``user``'s client certificate in the kubeconfig at ``path``; None when there is no such file or
    user (nothing merged yet) or it logs in without a certificate."""
    from edgeclu import kubeconfig

    try:
        doc = kubeconfig.read(path)
        dates = certs.client_cert(doc, user, path.parent) if doc else None
    except (kubeconfig.KubeconfigError, certs.CertError) as e:
        return CertResult(error=str(e), source=str(path))
    return CertResult(dates, source=str(path)) if dates else None


def kube_status(servers: list[Host], *, timeout: float,
                remote_factory: Callable[[Host, float], object]) -> KubeResult:
    """Ask every server at once; the first (in inventory order) that answers wins."""
    if not servers:
        return KubeResult()

    def ask(host: Host) -> dict[str, kube.KubeNode] | None:
        remote = remote_factory(host, timeout)
        try:
            res = remote.run(kube.COMMAND, sudo=True, check=False, timeout=timeout)
        finally:
            remote.close()
        if res.exit_code == kube.NO_K3S:
            return None
        if res.exit_code != 0:
            tail = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else f"exit {res.exit_code}"
            raise EdgecluError(f"kubectl failed: {tail}")
        try:
            return kube.parse_nodes(res.stdout)
        except ValueError as e:
            raise EdgecluError(f"kubectl printed something unexpected: {e}") from None

    answers = on_all(servers, ask)
    result = KubeResult()
    no_k3s = False
    for host in servers:
        value = answers[host.name]
        if isinstance(value, BaseException):
            result.errors[host.name] = str(value).removeprefix(f"{host.name}: ")
        elif value is None:
            no_k3s = True  # a server without k3s: the cluster is not installed (yet)
        else:
            result.nodes, result.source = value, host.name
            return result
    if result.errors and not no_k3s:
        result.error = "; ".join(f"{n}: {e}" for n, e in result.errors.items())
    return result


def kube_needed(server_samples: list[dict | None]) -> bool:
    """Ask kubectl unless every server's agent answered and says k3s is not installed there."""
    return any(s is None or (s.get("k3s") or {}).get("installed") for s in server_samples)


@dataclass(frozen=True)
class _CertProbe:
    """A server's serving-certificate read, polled in the same pool as the nodes."""

    host: Host

    @property
    def name(self) -> str:
        return f"{self.host.name} (serving certificate)"


def _try_agent(host: Host, port: int, token: str | None, timeout: float) -> dict | None:
    try:
        return fetch_agent(host.address, port, token, timeout)
    except AgentError:
        return None


def gather(hosts: list[Host], servers: list[Host], *, port: int, token: str | None, timeout: float,
           remote_factory: Callable[[Host, float], object], ssh_fallback: bool = True,
           kubernetes: bool = True, cert_port: int | None = None) -> tuple[list[NodeResult], KubeResult]:
    """Poll all nodes and the cluster at the same time; with ``cert_port``, also read every server's
    serving certificate there."""
    kube_box: list[KubeResult] = []
    kube_thread = None
    if kubernetes and servers:
        def run_kube() -> None:
            try:
                # the servers' own agents may already say there is no k3s: then no SSH round at all
                if not kube_needed([_try_agent(h, port, token, min(timeout / 2, 1.0)) for h in servers]):
                    kube_box.append(KubeResult())
                    return
                kube_box.append(kube_status(servers, timeout=timeout, remote_factory=remote_factory))
            except Exception as e:  # noqa: BLE001 - reported, never fatal
                kube_box.append(KubeResult(error=str(e)))
        kube_thread = threading.Thread(target=run_kube, name="kube", daemon=True)
        kube_thread.start()
    def poll(h: Host) -> NodeResult | CertResult:
        if isinstance(h, _CertProbe):
            return read_serving_cert(h.host, cert_port, timeout / 2)
        return poll_node(h, port=port, token=token, timeout=timeout, remote_factory=remote_factory,
                         ssh_fallback=ssh_fallback)

    probes = [_CertProbe(h) for h in hosts if h.role == "server"] if cert_port else []
    polled = on_all([*hosts, *probes], poll)
    results = []
    for h in hosts:
        value = polled[h.name]
        results.append(value if isinstance(value, NodeResult)
                       else NodeResult(h, reachable=False, error=f"internal error: {value!r}"))
        cert = polled.get(_CertProbe(h).name)
        if cert is not None:
            results[-1].cert = cert if isinstance(cert, CertResult) else CertResult(error=f"internal error: {cert!r}")
    if kube_thread is None:
        return results, KubeResult()
    kube_thread.join(timeout + 2)
    if not kube_box:
        return results, KubeResult(error=f"no server answered within {timeout + 2:g}s")
    return results, kube_box[0]
