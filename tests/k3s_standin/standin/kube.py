"""The Kubernetes REST subset that real kubectl drives (get, cordon, drain, uncordon, delete, create).

Discovery (``/version``, ``/api``, ``/apis``, ``/api/v1``, ``/apis/policy/v1``, ``/apis/apps/v1``; kubectl
falls back from aggregated discovery to these when the answer is plain JSON), nodes (get, list with label
and field selectors, merge and strategic-merge patch, delete), pods (list with ``fieldSelector``, get,
create, delete), ``pods/eviction`` (policy/v1; 429 while a PodDisruptionBudget allows no disruption),
PodDisruptionBudgets, namespaces and DaemonSet get (drain's owner check). Lists and gets answer with a
``meta.k8s.io/v1`` Table when kubectl asks for one (its human-readable output).

Everything here is pure on the state dict: :func:`handle` is called with the store's update function.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import urllib.parse

from .build import ARCH, VERSION
from .objects import (
    ApiError,
    create_object,
    delete_node,
    delete_pdb,
    evict_pod,
    node_object,
    node_status_word,
    patch_node,
    pdb_object,
    pod_object,
    remove_pod,
)
from .util import rfc3339

NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
PATCH_TYPES = ("application/merge-patch+json", "application/strategic-merge-patch+json")


def _res(name, kind, namespaced, verbs, short=(), group=None, version=None):
    r = {"name": name, "singularName": "" if "/" in name else kind.lower(), "namespaced": namespaced,
         "kind": kind, "verbs": list(verbs)}
    if short:
        r["shortNames"] = list(short)
    if group is not None:
        r["group"], r["version"] = group, version
    return r


DISCOVERY = {
    "/api/v1": [
        _res("namespaces", "Namespace", False, ["get", "list"], ["ns"]),
        _res("nodes", "Node", False, ["delete", "get", "list", "patch"], ["no"]),
        _res("pods", "Pod", True, ["create", "delete", "get", "list"], ["po"]),
        # drain finds the Eviction API here (k8s.io/kubectl/pkg/drain: CheckEvictionSupport)
        _res("pods/eviction", "Eviction", True, ["create"], group="policy", version="v1"),
    ],
    "/apis/policy/v1": [
        _res("poddisruptionbudgets", "PodDisruptionBudget", True, ["create", "delete", "get", "list"], ["pdb"]),
    ],
    "/apis/apps/v1": [_res("daemonsets", "DaemonSet", True, ["get", "list"], ["ds"])],
}


def version_info() -> dict:
    m = re.match(r"v(\d+)\.(\d+)\.", VERSION)
    return {"major": m.group(1), "minor": m.group(2), "gitVersion": VERSION, "gitCommit": "standin",
            "gitTreeState": "clean", "buildDate": "2024-01-01T00:00:00Z", "goVersion": "go1.22.9",
            "compiler": "gc", "platform": f"linux/{ARCH}"}


def discovery(path: str) -> dict | None:
    if path == "/version":
        return version_info()
    if path == "/api":
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]}
    if path == "/apis":
        groups = [{"name": g, "versions": [{"groupVersion": f"{g}/v1", "version": "v1"}],
                   "preferredVersion": {"groupVersion": f"{g}/v1", "version": "v1"}} for g in ("apps", "policy")]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
    if path in DISCOVERY:
        gv = path.removeprefix("/api/").removeprefix("/apis/")
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": DISCOVERY[path]}
    return None


# -- selectors (pure) --------------------------------------------------------------------
def _get(obj: dict, dotted: str):
    for part in dotted.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def field_selector_matches(selector: str, obj: dict) -> bool:
    """``metadata.name=x,spec.nodeName=y`` (``=``, ``==``, ``!=``)."""
    for term in filter(None, (selector or "").split(",")):
        m = re.fullmatch(r"([\w.]+)\s*(==|!=|=)\s*(.*)", term.strip())
        if not m:
            raise ApiError(400, "BadRequest", f'invalid field selector "{term}"')
        value = _get(obj, m.group(1))
        value = "" if value is None else str(value)
        if (value == m.group(3)) != (m.group(2) != "!="):
            return False
    return True


def label_selector_matches(selector: str, labels: dict) -> bool:
    """``a=b``, ``a!=b``, ``a``, ``!a``, ``a in (x,y)``, ``a notin (x)``, comma-joined."""
    for term in re.findall(r"[^,()]+(?:\([^)]*\))?", selector or ""):
        term = term.strip()
        if not term:
            continue
        if m := re.fullmatch(r"([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)", term):
            values = {v.strip() for v in m.group(3).split(",")}
            if (labels.get(m.group(1)) in values) != (m.group(2) == "in"):
                return False
        elif m := re.fullmatch(r"([\w./-]+)\s*(==|!=|=)\s*([\w./-]*)", term):
            if (labels.get(m.group(1)) == m.group(3)) != (m.group(2) != "!="):
                return False
        elif m := re.fullmatch(r"(!?)([\w./-]+)", term):
            if (m.group(2) in labels) == (m.group(1) == "!"):
                return False
        else:
            raise ApiError(400, "BadRequest", f"unable to parse requirement: {term}")
    return True


# -- tables: what `kubectl get` prints (server-side printing) ------------------------------------
def human_age(seconds: float) -> str:
    """The AGE column (k8s.io/apimachinery duration.HumanDuration)."""
    s = int(max(seconds, 0))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    d = h // 24
    return f"{d}d{h % 24}h" if d < 8 and h % 24 else f"{d}d"


def _age(obj: dict, now: float) -> str:
    created = dt.datetime.strptime(obj["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")
    return human_age(now - created.replace(tzinfo=dt.UTC).timestamp())


def _cols(*spec) -> list[dict]:
    return [{"name": n, "type": t, "format": "name" if n == "Name" else "", "description": "", "priority": p}
            for n, t, p in spec]


def table(kind: str, objs: list[dict], now: float) -> dict:
    if kind == "Node":
        cols = _cols(("Name", "string", 0), ("Status", "string", 0), ("Roles", "string", 0), ("Age", "string", 0),
                     ("Version", "string", 0), ("Internal-IP", "string", 1), ("External-IP", "string", 1),
                     ("OS-Image", "string", 1), ("Kernel-Version", "string", 1), ("Container-Runtime", "string", 1))

        def row(o):
            roles = sorted(k.split("/", 1)[1] for k in o["metadata"]["labels"]
                           if k.startswith("node-role.kubernetes.io/"))
            info = o["status"]["nodeInfo"]
            return [o["metadata"]["name"], node_status_word(o), ",".join(roles) or "<none>", _age(o, now),
                    info["kubeletVersion"], o["status"]["addresses"][0]["address"], "<none>", info["osImage"],
                    info["kernelVersion"], info["containerRuntimeVersion"]]
    elif kind == "Pod":
        cols = _cols(("Name", "string", 0), ("Ready", "string", 0), ("Status", "string", 0),
                     ("Restarts", "string", 0), ("Age", "string", 0), ("Node", "string", 1))

        def row(o):
            up = o["status"]["phase"] == "Running"
            return [o["metadata"]["name"], "1/1" if up else "0/1", o["status"]["phase"], "0", _age(o, now),
                    o["spec"].get("nodeName") or "<none>"]
    elif kind == "PodDisruptionBudget":
        cols = _cols(("Name", "string", 0), ("Min Available", "string", 0), ("Max Unavailable", "string", 0),
                     ("Allowed Disruptions", "integer", 0), ("Age", "string", 0))

        def row(o):
            return [o["metadata"]["name"], str(o["spec"].get("minAvailable", "N/A")),
                    str(o["spec"].get("maxUnavailable", "N/A")), o["status"]["disruptionsAllowed"], _age(o, now)]
    else:
        cols = _cols(("Name", "string", 0), ("Age", "string", 0))

        def row(o):
            return [o["metadata"]["name"], _age(o, now)]
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": ""},
            "columnDefinitions": cols,
            "rows": [{"cells": row(o), "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                                   "metadata": o["metadata"]}} for o in objs]}


def wants_table(accept: str) -> bool:
    return "as=Table" in (accept or "")


# -- objects ------------------------------------------------------------------------------
def _namespace(name: str, now: float) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "creationTimestamp": rfc3339(now), "uid": f"ns-{name}",
                         "labels": {"kubernetes.io/metadata.name": name}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}


def _daemonsets(state: dict, now: float) -> dict:
    """DaemonSets are not modelled; one exists while a pod says it owns it (drain looks its owner up)."""
    out = {}
    for p in (state.get("pods") or {}).values():
        owner = p.get("owner") or {}
        if owner.get("kind") == "DaemonSet":
            out[f"{p['namespace']}/{owner['name']}"] = {
                "apiVersion": "apps/v1", "kind": "DaemonSet",
                "metadata": {"name": owner["name"], "namespace": p["namespace"], "uid": f"ds-{owner['name']}",
                             "creationTimestamp": rfc3339(p["created"])},
                "spec": {"selector": {"matchLabels": p["labels"]}}, "status": {}}
    return out


def collection(state: dict, resource: str, now: float, grace: float) -> dict[str, dict]:
    """``{"ns/name" or "name": object}`` for one resource."""
    nodes = state.get("nodes") or {}
    if resource == "nodes":
        return {n: node_object(rec, now, grace) for n, rec in sorted(nodes.items())}
    if resource == "pods":
        return {k: pod_object(p, nodes, now, grace) for k, p in sorted((state.get("pods") or {}).items())}
    if resource == "poddisruptionbudgets":
        return {k: pdb_object(state, b, now, grace) for k, b in sorted((state.get("pdbs") or {}).items())}
    if resource == "namespaces":
        return {n: _namespace(n, state.get("cluster", {}).get("created", now)) for n in NAMESPACES}
    if resource == "daemonsets":
        return _daemonsets(state, now)
    raise ApiError(404, "NotFound", "the server could not find the requested resource")


KINDS = {"nodes": ("v1", "Node", ""), "pods": ("v1", "Pod", ""), "namespaces": ("v1", "Namespace", ""),
         "poddisruptionbudgets": ("policy/v1", "PodDisruptionBudget", ".policy"),
         "daemonsets": ("apps/v1", "DaemonSet", ".apps")}
CLUSTER_SCOPED = ("nodes", "namespaces")


def parse_path(path: str) -> tuple[str, str | None, str | None, str | None] | None:
    """``/api/v1/namespaces/ns/pods/name/eviction`` -> (resource, namespace, name, subresource)."""
    m = re.fullmatch(r"/(?:api/v1|apis/(?:policy|apps)/v1)(?:/namespaces/([^/]+)(?=/))?/([a-z]+)"
                     r"(?:/([^/]+))?(?:/([a-z]+))?", path)
    if not m:
        return None
    ns, resource, name, sub = m.groups()
    if resource not in KINDS or (ns and resource in CLUSTER_SCOPED):
        return None
    group = {"poddisruptionbudgets": "/apis/policy/v1", "daemonsets": "/apis/apps/v1"}.get(resource, "/api/v1")
    if not path.startswith(group):
        return None
    return resource, urllib.parse.unquote(ns) if ns else None, urllib.parse.unquote(name) if name else None, sub


def not_found(resource: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{resource}{KINDS[resource][2]} "{name}" not found')


def handle(method: str, raw_path: str, body: bytes, headers, read, update, grace: float,
           now: float | None = None, on_node_deleted=None):
    """One API request -> (status, JSON document). ``read()`` is the state; ``update(fn)`` runs ``fn(state)``
    under the store's lock and writes the state back; ``on_node_deleted(node object)`` runs after a Node is
    deleted (k3s's etcd member controller removes a server's member then)."""
    now = time.time() if now is None else now
    url = urllib.parse.urlsplit(raw_path)
    path, query = url.path.rstrip("/") or "/", dict(urllib.parse.parse_qsl(url.query))
    if method == "GET" and (doc := discovery(path)) is not None:
        return 200, doc
    parsed = parse_path(path)
    if parsed is None:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    resource, ns, name, sub = parsed
    api_version, kind, _ = KINDS[resource]
    accept = headers.get("Accept", "")

    def key() -> str:
        return name if resource in CLUSTER_SCOPED else f"{ns or 'default'}/{name}"

    if method == "GET" and name is None:
        def select(state):
            objs = [o for k, o in collection(state, resource, now, grace).items()
                    if (ns is None or resource in CLUSTER_SCOPED or k.startswith(f"{ns}/"))
                    and field_selector_matches(query.get("fieldSelector", ""), o)
                    and label_selector_matches(query.get("labelSelector", ""), o["metadata"].get("labels") or {})]
            return objs
        objs = select(read())
        if wants_table(accept):
            return 200, table(kind, objs, now)
        return 200, {"apiVersion": api_version, "kind": f"{kind}List", "metadata": {"resourceVersion": str(int(now))},
                     "items": objs}
    if method == "GET" and sub is None:
        obj = collection(read(), resource, now, grace).get(key())
        if obj is None:
            raise not_found(resource, name)
        return 200, table(kind, [obj], now) if wants_table(accept) else obj
    if method == "PATCH" and resource == "nodes" and sub is None and name:
        ctype = headers.get("Content-Type", "").split(";")[0].strip()
        if ctype not in PATCH_TYPES:
            raise ApiError(415, "UnsupportedMediaType", f"the stand-in does not support patch type {ctype!r} "
                                                        f"(only {', '.join(PATCH_TYPES)})")
        patch = json.loads(body or b"{}")
        return 200, update(lambda st: node_object(patch_node(st, name, patch, now, grace), now, grace))
    if method == "DELETE" and name and sub is None and resource in ("nodes", "pods", "poddisruptionbudgets"):
        def remove(state):
            obj = collection(state, resource, now, grace).get(key())
            if obj is None:
                raise not_found(resource, name)
            if resource == "nodes":
                delete_node(state, name, now, grace)
            elif resource == "pods":
                remove_pod(state, key(), now, grace)
            else:
                delete_pdb(state, ns or "default", name)
            return obj
        obj = update(remove)
        if resource == "nodes" and on_node_deleted is not None:
            on_node_deleted(obj)
        return 200, obj
    if method == "POST" and name is None and resource in ("pods", "poddisruptionbudgets"):
        doc = json.loads(body or b"{}")
        if (doc.get("kind"), doc.get("apiVersion")) != (kind, api_version):
            raise ApiError(400, "BadRequest", f"expected a {api_version} {kind}, got {doc.get('kind')!r}")
        doc.setdefault("metadata", {})["namespace"] = ns or "default"
        created = doc["metadata"].get("name")

        def create(state):
            create_object(state, doc, now)
            return collection(state, resource, now, grace)[f"{ns or 'default'}/{created}"]
        return 201, update(create)
    if method == "POST" and resource == "pods" and sub == "eviction" and name:
        update(lambda st: evict_pod(st, ns or "default", name, now, grace))
        return 201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
    raise ApiError(405, "MethodNotAllowed", f"the stand-in does not support {method} {path}")
