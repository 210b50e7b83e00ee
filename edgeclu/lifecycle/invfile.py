"""Edit the user's inventory file round-trip: comments, order, quoting, anchors and indentation kept.

``add``, ``remove`` and ``upgrade`` change one host or one variable through ruamel.yaml's round-trip
loader, so the rest of the file stays byte for byte what the user wrote. Every edit is validated
(with the group_vars/host_vars beside the file) before it can be written; callers compute it while
they hold the cluster lock, and :func:`write_inventory` keeps a timestamped backup, fsyncs and
replaces the file atomically (through a symlink).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.tokens import CommentToken
from ruamel.yaml.util import load_yaml_guess_indent

from edgeclu import userfile
from edgeclu.errors import InventoryError
from edgeclu.inventory import load_inventory, parse_yaml, read_text


def _load(path: Path) -> tuple[Any, YAML]:
    text = read_text(path)
    parse_yaml(text, str(path))  # bounded first: no alias bomb or deep nesting reaches ruamel
    _, indent, seq_indent = load_yaml_guess_indent(text)
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 1 << 16  # never re-wrap a user's long line
    y.indent(mapping=indent or 2, sequence=indent or 2, offset=seq_indent or 0)
    data = y.load(text)
    if not isinstance(data, CommentedMap) or not isinstance(data.get("k3s_cluster"), dict):
        raise InventoryError([f"{path}: top level: field 'k3s_cluster': missing"])
    _keep_anchors(data)
    return data, y


def _keep_anchors(node: Any, seen: set | None = None) -> None:
    """ruamel writes an anchor back only when something still refers to it; keep every one."""
    seen = set() if seen is None else seen
    if id(node) in seen:
        return
    seen.add(id(node))
    anchor = getattr(node, "anchor", None)
    if anchor is not None and getattr(anchor, "value", None):
        anchor.always_dump = True
    if isinstance(node, dict):
        for v in node.values():
            _keep_anchors(v, seen)
    elif isinstance(node, list):
        for v in node:
            _keep_anchors(v, seen)


def _dump(path: Path, data: Any, y: YAML) -> str:
    buf = io.StringIO()
    y.dump(data, buf)
    text = buf.getvalue()
    load_inventory(path, text=text)  # a bad edit never reaches disk
    return text


def _child(parent: CommentedMap, key: str) -> CommentedMap:
    if not isinstance(parent.get(key), dict):
        parent[key] = CommentedMap()
    return parent[key]


def _tail(container: Any, key: Any) -> tuple[Any, Any, int]:
    """Where ruamel keeps the comment lines after ``container[key]``: (holder, key in it, slot). A block
    mapping or list keeps them on its last item, a scalar or flow value on its own entry."""
    value = container[key]
    while isinstance(value, CommentedMap | CommentedSeq) and len(value) and not value.fa.flow_style():
        container, key = value, (next(reversed(value)) if isinstance(value, dict) else len(value) - 1)
        value = container[key]
    return container, key, (0 if isinstance(container, list) else 2)


def _drop(hosts: CommentedMap, name: str) -> None:
    """Remove ``name`` but keep the full-line comments that followed it (they are about the next entry)."""
    keys = list(hosts)
    i = keys.index(name)
    holder, key, slot = _tail(hosts, name)
    item = holder.ca.items.get(key) or []
    token = item[slot] if len(item) > slot else None
    del hosts[name]
    keep = token.value.split("\n", 1)[1] if token is not None and "\n" in token.value else ""
    if not keep.strip():  # the first line was the removed entry's own end-of-line comment
        return
    if i > 0:
        holder, key, slot = _tail(hosts, keys[i - 1])
        entry = holder.ca.items.setdefault(key, [None] * (2 if slot == 0 else 4))
        if entry[slot] is None:
            entry[slot] = CommentToken("\n" + keep, CommentMark(0), None)
        else:
            entry[slot].value = entry[slot].value.rstrip("\n") + "\n" + keep
    elif len(keys) > 1:
        lines = [ln.strip().lstrip("#").lstrip() for ln in keep.splitlines() if ln.strip()]
        first = next(ln for ln in keep.splitlines() if ln.strip())
        hosts.yaml_set_comment_before_after_key(keys[1], before="\n".join(lines),
                                                indent=len(first) - len(first.lstrip()))


def edit_hosts(path: Path, add: tuple[str, str, dict] | None = None, remove: str | None = None) -> str:
    """The inventory's text with ``(name, role, vars)`` added and/or host ``remove`` removed (validated,
    not written); everything else as the user wrote it."""
    path = Path(path)
    data, y = _load(path)
    children = _child(data["k3s_cluster"], "children")
    if remove:
        for group in children.values():
            hosts = group.get("hosts") if isinstance(group, dict) else None
            if isinstance(hosts, dict) and remove in hosts:
                _drop(hosts, remove)
    if add:
        name, role, hvars = add
        hosts = _child(_child(children, role), "hosts")
        new = CommentedMap(hvars)
        sibling = next((v for v in hosts.values() if isinstance(v, CommentedMap)), None)
        if sibling is not None and sibling.fa.flow_style():
            new.fa.set_flow_style()
        hosts[name] = new
    return _dump(path, data, y)


def set_cluster_var(path: Path, key: str, value: Any) -> str:
    """The inventory's text with cluster variable ``key`` set to ``value`` where it is defined
    (``k3s_cluster.vars``, else ``all.vars``; new keys go to ``k3s_cluster.vars``). Validated, not written."""
    path = Path(path)
    data, y = _load(path)
    cluster_vars = data["k3s_cluster"].get("vars")
    all_vars = data.get("all", {}).get("vars") if isinstance(data.get("all"), dict) else None
    if isinstance(all_vars, dict) and key in all_vars and not (isinstance(cluster_vars, dict) and key in cluster_vars):
        all_vars[key] = value
    else:
        _child(data["k3s_cluster"], "vars")[key] = value
    return _dump(path, data, y)


def write_inventory(path: Path, text: str, *, backup: bool = True, now: float | None = None) -> Path | None:
    """Replace ``path`` with ``text`` atomically (same mode, through a symlink); returns the
    timestamped backup (``<file>.bak-YYYYmmdd-HHMMSS``) of what it held."""
    path = Path(path)
    saved = userfile.backup(path, now=now) if backup else None
    userfile.replace(path, text)
    return saved
