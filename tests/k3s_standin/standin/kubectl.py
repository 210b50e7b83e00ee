"""``k3s kubectl``: the stand-in's own small kubectl (to be replaced by a real kubectl)."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time

import yaml

from .config import parse_flags
from .join import http_url, request
from .objects import ApiError, node_object, node_status_word, pdb_object, pod_object
from .util import KUBECONFIG, parse_duration, read_file


def kubeconfig_target(flags: dict) -> tuple[str, str]:
    path = flags.get("kubeconfig") or os.environ.get("KUBECONFIG") or KUBECONFIG
    text = read_file(path)
    if text is None:
        print(f"error: open {path}: no such file or directory", file=sys.stderr)
        sys.exit(1)
    doc = yaml.safe_load(text)
    ctx_name = doc.get("current-context")
    ctx = next(c["context"] for c in doc["contexts"] if c["name"] == ctx_name)
    cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == ctx["cluster"])
    user = next(u["user"] for u in doc["users"] if u["name"] == ctx["user"])
    return cluster["server"], "Bearer " + str(user.get("token", ""))

def cmd_kubectl(argv: list[str]) -> int:
    switches = ("--ignore-daemonsets", "--delete-emptydir-data", "--delete-local-data", "--force",
                "--disable-eviction", "-A", "--all-namespaces")
    present = {a for a in argv if a in switches}
    argv = [a for a in argv if a not in switches]
    for short, long in (("-n", "--namespace"), ("-f", "--filename")):
        if short in argv[:-1]:
            i = argv.index(short)
            argv[i:i + 2] = [f"{long}={argv[i + 1]}"]
    flags, args = parse_flags(argv)
    namespace = flags.get("namespace")
    output = flags.get("output") or ""
    if "-o" in args:
        i = args.index("-o")
        output = args[i + 1] if i + 1 < len(args) else ""
        del args[i:i + 2]
    output = next((a[2:].lstrip("=") for a in args if a.startswith("-o") and len(a) > 2), output)
    args = [a for a in args if not a.startswith("-")]
    server, auth = kubeconfig_target(flags)
    url = http_url(server)

    def api(method: str, path: str, body: dict | None = None):
        try:
            return request(url, method, path, body, auth)
        except ApiError as e:
            if e.status == 401:
                print("error: You must be logged in to the server (Unauthorized)", file=sys.stderr)
            else:
                print(f"Error from server ({e.reason}): {e.message}", file=sys.stderr)
            sys.exit(1)
        except OSError:
            hostport = server.split("://", 1)[-1]
            print(f"The connection to the server {hostport} was refused - did you specify the right host "
                  "or port?", file=sys.stderr)
            sys.exit(1)

    verb = args[0] if args else ""
    if verb == "get" and len(args) >= 2 and args[1] in ("nodes", "node", "no"):
        state = api("GET", "/v1-standin/state")
        grace = float(state.get("cluster", {}).get("grace") or 40)
        now = time.time()
        nodes = state.get("nodes", {})
        names = args[2:] or sorted(nodes)
        missing = [n for n in names if n not in nodes]
        if missing:
            print(f'Error from server (NotFound): nodes "{missing[0]}" not found', file=sys.stderr)
            return 1
        objs = [node_object(nodes[n], now, grace) for n in names]
        single = len(args) > 2 and len(names) == 1
        if output in ("json", "yaml"):
            doc = objs[0] if single else {"apiVersion": "v1", "kind": "List", "items": objs,
                                          "metadata": {"resourceVersion": ""}}
            print(json.dumps(doc, indent=4) if output == "json" else yaml.safe_dump(doc, sort_keys=False),
                  end="\n" if output == "json" else "")
        elif output == "name":
            print("".join(f"node/{o['metadata']['name']}\n" for o in objs), end="")
        else:
            print(node_table(objs, now, wide=output == "wide"), end="")
        return 0
    if verb in ("cordon", "uncordon") and len(args) == 2:
        api("POST", f"/v1-standin/nodes/{args[1]}/{verb}")
        print(f"node/{args[1]} {verb}ed")
        return 0
    if verb == "drain" and len(args) == 2:
        return kubectl_drain(api, url, auth, args[1], flags, present)
    if verb == "get" and len(args) >= 2 and args[1] in ("pods", "pod", "po", "pdb", "poddisruptionbudgets",
                                                         "poddisruptionbudget"):
        state = api("GET", "/v1-standin/state")
        grace, now = float(state.get("cluster", {}).get("grace") or 40), time.time()
        ns = None if "-A" in present or "--all-namespaces" in present else (namespace or "default")
        if args[1] in ("pods", "pod", "po"):
            on_node = (flags.get("field-selector") or "").removeprefix("spec.nodeName=") or None
            objs = [pod_object(p, state.get("nodes") or {}, now, grace)
                    for _, p in sorted((state.get("pods") or {}).items())
                    if (ns is None or p["namespace"] == ns) and (on_node is None or p["node"] == on_node)]
        else:
            objs = [pdb_object(state, b, now, grace) for _, b in sorted((state.get("pdbs") or {}).items())
                    if ns is None or b["namespace"] == ns]
        if output == "json":
            print(json.dumps({"apiVersion": "v1", "kind": "List", "items": objs,
                              "metadata": {"resourceVersion": ""}}, indent=4))
        else:  # a short table: NAMESPACE/NAME, then STATUS and NODE, or ALLOWED DISRUPTIONS
            for o in objs:
                m, st = o["metadata"], o["status"]
                cols = [st["phase"], o["spec"].get("nodeName", "<none>")] if o["kind"] == "Pod" \
                    else [str(st["disruptionsAllowed"])]
                print(" ".join([f"{m['namespace']}/{m['name']}", *cols]))
        return 0
    if verb in ("create", "apply") and flags.get("filename"):
        path = flags["filename"]
        text = sys.stdin.read() if path == "-" else read_file(path)
        if text is None:
            print(f'error: the path "{path}" does not exist', file=sys.stderr)
            return 1
        docs = []
        for doc in yaml.safe_load_all(text):
            if isinstance(doc, dict):
                docs += doc.get("items", []) if doc.get("kind") == "List" else [doc]
        if namespace:
            for doc in docs:
                doc.setdefault("metadata", {}).setdefault("namespace", namespace)
        for line in api("POST", "/v1-standin/objects", {"items": docs}):
            print(line)
        return 0
    if verb == "delete" and len(args) == 3 and args[1] in ("pdb", "poddisruptionbudget", "poddisruptionbudgets"):
        print(api("DELETE", f"/v1-standin/pdbs/{namespace or 'default'}/{args[2]}"))
        return 0
    if verb == "delete" and len(args) == 3 and args[1] in ("node", "nodes", "no"):
        api("DELETE", f"/v1-standin/nodes/{args[2]}")
        print(f'node "{args[2]}" deleted')
        return 0
    print(f"error: the k3s stand-in's kubectl does not support: {' '.join(argv)}", file=sys.stderr)
    return 1

def kubectl_drain(api, url: str, auth: str, node: str, flags: dict, present: set[str]) -> int:
    """``kubectl drain``: cordon, then evict every pod through the Eviction API (so PDBs are
    respected), retrying refused evictions every 5 s until ``--timeout`` (0: forever)."""
    timeout = parse_duration(flags["timeout"]) if flags.get("timeout") not in (None, "0") else 0
    api("POST", f"/v1-standin/nodes/{node}/cordon")
    print(f"node/{node} cordoned")
    state = api("GET", "/v1-standin/state")
    pods = [p for _, p in sorted((state.get("pods") or {}).items()) if p["node"] == node]
    daemons = [p for p in pods if (p.get("owner") or {}).get("kind") == "DaemonSet"]
    bare = [p for p in pods if not p.get("owner")]
    problems = []
    if daemons and "--ignore-daemonsets" not in present:
        problems.append("cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): "
                        + ", ".join(f"{p['namespace']}/{p['name']}" for p in daemons))
    if bare and "--force" not in present:
        problems.append("cannot delete Pods that declare no controller (use --force to override): "
                        + ", ".join(f"{p['namespace']}/{p['name']}" for p in bare))
    if problems:
        text = ", ".join(problems)
        print(f'error: unable to drain node "{node}" due to error: {text}, continuing command...\n'
              f"There are pending nodes to be drained:\n {node}\n{text}", file=sys.stderr)
        return 1
    if daemons:
        print("Warning: ignoring DaemonSet-managed Pods: "
              + ", ".join(f"{p['namespace']}/{p['name']}" for p in daemons), file=sys.stderr)
    pending = [p for p in pods if p not in daemons]
    for p in pending:
        print(f"evicting pod {p['namespace']}/{p['name']}")
    deadline = time.monotonic() + timeout if timeout else None
    while pending:
        waiting = []
        for p in pending:
            try:
                request(url, "POST", f"/v1-standin/pods/{p['namespace']}/{p['name']}/eviction", {}, auth)
                print(f"pod/{p['name']} evicted")
            except ApiError as e:
                if e.status == 404:
                    continue
                if e.status != 429:
                    print(f"error: {e.message}", file=sys.stderr)
                    return 1
                print(f'error when evicting pods/"{p["name"]}" -n "{p["namespace"]}" (will retry after 5s): '
                      f"{e.message}", file=sys.stderr)
                waiting.append(p)
        pending = waiting
        if not pending:
            break
        if deadline is not None and time.monotonic() + 5 > deadline:
            time.sleep(max(deadline - time.monotonic(), 0))
            errs = [f'error when evicting pods/"{p["name"]}" -n "{p["namespace"]}": global timeout reached: '
                    f"{flags['timeout']}" for p in pending]
            text = errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]"
            print(f'There are pending pods in node "{node}" when an error occurred: {text}\n'
                  f'error: unable to drain node "{node}" due to error: {text}, continuing command...\n'
                  f"There are pending nodes to be drained:\n {node}\n{text}", file=sys.stderr)
            return 1
        time.sleep(5)
    print(f"node/{node} drained")
    return 0

def human_age(seconds: float) -> str:
    """kubectl's AGE column (k8s.io/apimachinery HumanDuration, simplified)."""
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

def node_table(objs: list[dict], now: float, wide: bool = False) -> str:
    head = ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    if wide:
        head += ["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"]
    rows = [head]
    for o in objs:
        roles = sorted(k.split("/", 1)[1] for k in o["metadata"]["labels"]
                       if k.startswith("node-role.kubernetes.io/"))
        created = dt.datetime.strptime(o["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")
        age = now - created.replace(tzinfo=dt.UTC).timestamp()
        row = [o["metadata"]["name"], node_status_word(o), ",".join(roles) or "<none>", human_age(age),
               o["status"]["nodeInfo"]["kubeletVersion"]]
        if wide:
            info = o["status"]["nodeInfo"]
            row += [o["status"]["addresses"][0]["address"], "<none>", info["osImage"], info["kernelVersion"],
                    info["containerRuntimeVersion"]]
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "".join("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n"
                   for r in rows)
