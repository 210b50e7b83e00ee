"""Cluster add-ons as k3s auto-deploy manifests: which ones an inventory asks for, and their text.

Pure: no I/O except reading the role's templates (``roles/addons/templates/<file>.j2``, each named
after the manifest it produces) and its defaults (``roles/addons/defaults/main.yml``, generated from its
``meta/argument_specs.yml``). The ``addons`` Ansible role writes the result into ``addons_manifests_dir``
on the first server; the k3s components an add-on replaces are disabled in each server's config.yaml by
:func:`module_utils.k3s.node_config`.

====================  ====================================================================
inventory var         what it selects
====================  ====================================================================
storage               ``local-path`` (k3s built-in; path via ``default-local-storage-path``),
                      ``nfs`` (nfs-subdir-external-provisioner), ``longhorn``, ``none``
ingress               ``traefik`` (k3s built-in, configured by HelmChartConfig),
                      ``nginx`` (ingress-nginx; Traefik disabled), ``none``
loadbalancer          ``servicelb`` (k3s built-in), ``metallb`` (L2, ``metallb_pool``;
                      ServiceLB disabled), ``none``
====================  ====================================================================
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from ansible_collections.edgeclu.cluster.plugins.module_utils.k3s import stale_files


class AddonsError(ValueError):
    """An inventory's add-on settings that cannot be rendered (one line: what is missing or wrong)."""


#: the addons role's templates, in this collection
TEMPLATES = Path(__file__).resolve().parents[2] / "roles" / "addons" / "templates"
#: the addons role's defaults (generated from its argument spec), in this collection
DEFAULTS_FILE = Path(__file__).resolve().parents[2] / "roles" / "addons" / "defaults" / "main.yml"


@cache
def role_defaults() -> dict[str, Any]:
    """The addons role's defaults, as Ansible applies them before the role's filters run."""
    return dict(yaml.safe_load(DEFAULTS_FILE.read_text()) or {})

#: k3s serves the files in its static charts directory (module_utils/paths.py: STATIC_CHARTS_DIR) to the cluster at
#: https://%{KUBERNETES_API}%/static/charts/<file> (its own packaged Traefik HelmChart points there), so a
#: HelmChart installs from it without internet
STATIC_CHARTS_URL = "https://%{KUBERNETES_API}%/static/charts/"
#: every manifest edgeclu writes starts with this, so stale ones can be found and removed
MANIFEST_PREFIX = "edgeclu-"
_MINOR_RE = re.compile(r"^v?1\.(\d+)\.")


@dataclass(frozen=True)
class Chart:
    repo: str
    name: str
    version: str
    namespace: str  # the release's target namespace


CHARTS = {
    "nfs": Chart("https://kubernetes-sigs.github.io/nfs-subdir-external-provisioner/",
                 "nfs-subdir-external-provisioner", "4.0.18", "nfs-provisioner"),
    "longhorn": Chart("https://charts.longhorn.io", "longhorn", "1.7.2", "longhorn-system"),
    "metallb": Chart("https://metallb.github.io/metallb", "metallb", "0.14.9", "metallb-system"),
    # the project's only supported chart repository (cert-manager.io/docs/installation/helm)
    "cert-manager": Chart("https://charts.jetstack.io", "cert-manager", "v1.16.2", "cert-manager"),
}
INGRESS_NGINX_REPO = "https://kubernetes.github.io/ingress-nginx"
#: ingress-nginx chart per Kubernetes minor: (highest minor it supports, chart version), from the
#: project's support matrix; newer minors get the last entry
INGRESS_NGINX_BY_MINOR = ((30, "4.11.3"), (32, "4.12.1"), (33, "4.13.0"), (99, "4.14.0"))
METALLB_POOL_NAME = "edgeclu-pool"
METALLB_L2_NAME = "edgeclu-l2"


def k8s_minor(k3s_version: str) -> int:
    """``v1.31.4+k3s1`` -> 31: the Kubernetes minor a k3s release ships."""
    m = _MINOR_RE.match(str(k3s_version))
    if not m:
        raise AddonsError(f"k3s_version {k3s_version!r} is not like v1.31.4+k3s1")
    return int(m.group(1))


def k8s_version(k3s_version: str) -> str:
    """``v1.31.4+k3s1`` -> ``1.31``: the version manifests are validated against."""
    return f"1.{k8s_minor(k3s_version)}"


def _settings(cluster_vars: Mapping[str, Any]) -> dict[str, Any]:
    v = {**role_defaults(), **{k: x for k, x in cluster_vars.items() if x is not None}}
    if "k3s_version" not in v:
        raise AddonsError("add-ons: k3s_version is not set")
    if v["storage"] == "nfs":
        missing = [k for k in ("nfs_server", "nfs_path") if not v.get(k)]
        if missing:
            raise AddonsError(f"add-ons: storage is nfs but {' and '.join(missing)} not set")
    if v["loadbalancer"] == "metallb" and not v.get("metallb_pool"):
        raise AddonsError("add-ons: loadbalancer is metallb but metallb_pool is not set")
    unknown = [a for a in v.get("addons") or [] if a not in named()]
    if unknown:
        raise AddonsError(f"add-ons: unknown add-on {unknown[0]!r} in addons (known: {', '.join(named())})")
    return v


def node_packages(cluster_vars: Mapping[str, Any]) -> list[str]:
    """OS packages every node needs for the chosen storage (the kubelet mounts the volumes)."""
    storage = _settings(cluster_vars)["storage"]
    return {"longhorn": ["open-iscsi", "nfs-common"], "nfs": ["nfs-common"]}.get(storage, [])


def node_services(cluster_vars: Mapping[str, Any]) -> list[str]:
    """Services to enable and start on every node for the chosen storage."""
    return ["iscsid"] if _settings(cluster_vars)["storage"] == "longhorn" else []


# -- the manifests ---------------------------------------------------------------
def _service_type(v: Mapping[str, Any]) -> str:
    # without any load balancer a LoadBalancer Service stays <pending> forever
    return "NodePort" if v["loadbalancer"] == "none" else "LoadBalancer"


def chart_file(chart: Chart) -> str:
    """The chart's packaged file name, as ``helm pull`` names it: ``<name>-<version>.tgz``."""
    return f"{chart.name}-{chart.version}.tgz"


def ingress_nginx_chart(minor: int) -> Chart:
    version = next(ver for top, ver in INGRESS_NGINX_BY_MINOR if minor <= top)
    return Chart(INGRESS_NGINX_REPO, "ingress-nginx", version, "ingress-nginx")


def pool_addresses(pool: list[str]) -> list[str]:
    """MetalLB address ranges, ``a - b`` written as ``a-b``; CIDRs unchanged."""
    return ["-".join(part.strip() for part in item.split("-")) for item in pool]


def _traefik(v, minor, nodes):
    return {"values": {"ingressClass": {"enabled": True, "isDefaultClass": True},
                       "service": {"type": _service_type(v)}}}


def _ingress_nginx(v, minor, nodes):
    return {"chart": ingress_nginx_chart(minor),
            "values": {"controller": {"ingressClassResource": {"default": True},
                                      "service": {"type": _service_type(v)}}}}


def _metallb(v, minor, nodes):
    # L2 mode only: no FRR (BGP) sidecars, which matters on a Pi
    return {"chart": CHARTS["metallb"], "values": {"speaker": {"frr": {"enabled": False}}}}


def _metallb_pool(v, minor, nodes):
    return {"namespace": CHARTS["metallb"].namespace, "pool_name": METALLB_POOL_NAME,
            "advertisement_name": METALLB_L2_NAME, "addresses": pool_addresses(v["metallb_pool"])}


def _nfs(v, minor, nodes):
    return {"chart": CHARTS["nfs"],
            "values": {"nfs": {"server": v["nfs_server"], "path": v["nfs_path"]},
                       "storageClass": {"name": "nfs-client", "defaultClass": True}}}


def _longhorn(v, minor, nodes):
    replicas = max(1, min(3, nodes))  # a volume cannot have more replicas than nodes
    return {"chart": CHARTS["longhorn"],
            "values": {"persistence": {"defaultClass": True, "defaultClassReplicaCount": replicas},
                       "defaultSettings": {"defaultReplicaCount": replicas}}}


class Asked:
    """An add-on wanted when the inventory's ``addons`` list names it."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, v: Mapping[str, Any]) -> bool:
        return self.name in (v.get("addons") or [])


def named() -> list[str]:
    """The add-ons ``addons`` may name: those registered in :data:`ADDONS` with :class:`Asked`."""
    return [wanted.name for wanted, _ in ADDONS.values() if isinstance(wanted, Asked)]


def _cert_manager(v, minor, nodes):
    # crds.enabled: the chart installs and upgrades its CRDs (installCRDs is its deprecated name)
    return {"chart": CHARTS["cert-manager"], "values": {"crds": {"enabled": True}}}


#: manifest file -> (is it wanted?, template context)
ADDONS: dict[str, tuple[Callable[[Mapping], bool], Callable[[Mapping, int, int], dict]]] = {
    "edgeclu-traefik-config.yaml": (lambda v: v["ingress"] == "traefik", _traefik),
    "edgeclu-ingress-nginx.yaml": (lambda v: v["ingress"] == "nginx", _ingress_nginx),
    "edgeclu-metallb.yaml": (lambda v: v["loadbalancer"] == "metallb", _metallb),
    "edgeclu-metallb-pool.yaml": (lambda v: v["loadbalancer"] == "metallb", _metallb_pool),
    "edgeclu-nfs-provisioner.yaml": (lambda v: v["storage"] == "nfs", _nfs),
    "edgeclu-longhorn.yaml": (lambda v: v["storage"] == "longhorn", _longhorn),
    "edgeclu-cert-manager.yaml": (Asked("cert-manager"), _cert_manager),
}


def selected(cluster_vars: Mapping[str, Any]) -> list[str]:
    """Names of the manifest files the inventory asks for (local-path and ServiceLB need none)."""
    v = _settings(cluster_vars)
    return [name for name, (wanted, _) in ADDONS.items() if wanted(v)]


def _contexts(v: Mapping[str, Any], node_count: int) -> dict[str, dict]:
    minor = k8s_minor(v["k3s_version"])
    return {name: ADDONS[name][1](v, minor, node_count) for name in selected(v)}


def offline_charts(cluster_vars: Mapping[str, Any], available: Collection[str] = ()) -> list[str]:
    """The packaged charts (``<name>-<version>.tgz``) of the selected add-ons found in ``available``
    (the files in the air-gap directory's ``charts/``): they go to k3s's static charts directory on the
    servers, and their HelmCharts install from there."""
    v = _settings(cluster_vars)
    wanted = [chart_file(c["chart"]) for c in _contexts(v, 1).values() if "chart" in c]
    return sorted(f for f in set(wanted) if f in set(available))


def render_manifests(cluster_vars: Mapping[str, Any], node_count: int = 1,
                     available_charts: Collection[str] = ()) -> dict[str, str]:
    """``{file name: YAML text}`` for every selected add-on, rendered with StrictUndefined. A HelmChart
    whose packaged chart is in ``available_charts`` (:func:`offline_charts`) points at k3s's static
    charts URL instead of the chart repository."""
    v = _settings(cluster_vars)
    offline = set(offline_charts(v, available_charts))
    env = _environment()
    out = {}
    for name, context in _contexts(v, node_count).items():
        if "chart" in context:
            file = chart_file(context["chart"])
            context = {**context, "chart_url": STATIC_CHARTS_URL + file if file in offline else None}
        out[name] = env.get_template(f"{name}.j2").render(**context)
    return out


def _to_yaml(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=False, default_flow_style=False).rstrip("\n")


def _strict(fn: Callable[[Any], str]) -> Callable[[Any], str]:
    """A filter that fails on an undefined value (filters see Undefined objects, not errors)."""
    import jinja2

    def apply(value: Any) -> str:
        if isinstance(value, jinja2.Undefined):
            value._fail_with_undefined_error()
        return fn(value)

    return apply


@cache
def _environment():
    import jinja2

    env = jinja2.Environment(  # noqa: S701 - renders YAML, not HTML
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["to_yaml"] = _strict(_to_yaml)
    env.filters["to_json"] = _strict(json.dumps)
    return env


# -- what the addons role does on the first server (pure) -------------------------------------------
def manifest_files(manifests: Mapping[str, str], directory: str) -> list[dict[str, Any]]:
    """What the first server should have: the manifests directory (0700) and each manifest (0600)."""
    directory = str(directory).rstrip("/")
    return [{"path": directory, "directory": True, "mode": "0700"}] + [
        {"path": f"{directory}/{name}", "content": str(text), "mode": "0600"}
        for name, text in sorted(manifests.items())]


def _glob(directory: str) -> str:
    return f"{str(directory).rstrip('/')}/{MANIFEST_PREFIX}*.yaml"


def first_server_probe(manifests: Mapping[str, str], directory: str, k3s_bin: str) -> dict[str, list[str]]:
    """The ``k3s_node_state`` arguments :func:`first_server_plan` needs: the wanted files, edgeclu's
    manifests present, and whether k3s (its kubectl) is there."""
    return {"paths": [f["path"] for f in manifest_files(manifests, directory)], "globs": [_glob(directory), k3s_bin]}


def first_server_plan(state: Mapping[str, Any], *, manifests: Mapping[str, str], directory: str,
                      k3s_bin: str) -> dict[str, Any]:
    """What to write and remove on the first server, from its answer to :func:`first_server_probe`:
    ``write``, the files that differ; ``remove``, edgeclu's manifests present but no longer selected
    (file names, sorted: k3s does not delete their resources, so ``kubectl delete`` runs first when k3s
    is there, ``k3s_found``)."""
    wanted = manifest_files(manifests, directory)
    stale = stale_files(wanted, state["files"])
    globs = state.get("globs") or {}
    present = sorted({str(p).rsplit("/", 1)[-1] for p in globs.get(_glob(directory)) or []})
    remove = [name for name in present if name not in manifests]
    directory = str(directory).rstrip("/")
    return {"write": [f for f in wanted if f["path"] in stale], "remove": remove,
            "remove_paths": [f"{directory}/{name}" for name in remove],
            "k3s_found": bool(globs.get(k3s_bin)), "todo": bool(stale or remove)}
