"""Load YAML a user wrote, with bounds: one pass over libyaml's events, no traceback on any input.

``yaml.safe_load`` gives a traceback on a non-UTF-8 byte or on deeply nested input
(RecursionError), and builds an alias bomb happily (its shared objects are small here, but
whatever walks them later, Ansible for one, expands them). :func:`load` builds the same Python
values as ``safe_load`` (YAML 1.1 scalars, merge keys ``<<``, aliases as shared objects), and refuses:

* bytes that are not UTF-8, more than one document, tags other than the YAML core ones;
* a duplicate key, a key that is not a plain value (a mapping or a list);
* nesting deeper than ``max_depth``;
* an alias that stands for more than ``MAX_ALIAS_VALUES`` values, or aliases that make the whole
  document stand for more than ``max_values`` values once expanded (counted, never expanded).

Each refusal is a :class:`YamlProblem` with the line and the key path where it was found, so the
caller can name the host and field. Building from the event stream (libyaml's C parser) is also
several times faster than PyYAML's composer and constructor, which matters for a 20,000-host inventory.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from yaml.nodes import ScalarNode

MAX_DEPTH = 32
MAX_ALIAS_VALUES = 10_000
MAX_VALUES = 2_000_000

_Parser = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_MERGE_KEY = object()  # the pending key of a mapping while a merge (<<) value is read
_SCALAR_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "timestamp", "binary")}
_MAP_TAGS = {None, "!", "tag:yaml.org,2002:map"}
_SEQ_TAGS = {None, "!", "tag:yaml.org,2002:seq"}
_resolver = yaml.resolver.Resolver()
_RESOLVE_FIRST = frozenset(k for k in _resolver.yaml_implicit_resolvers if k)  # a plain scalar's first
# character decides whether it can be anything but a string (YAML 1.1's implicit resolvers)
_constructor = SafeConstructor()


class YamlProblem(Exception):
    """Why a document was refused; ``line`` is 1-based (0: unknown), ``path`` the keys down to it."""

    def __init__(self, message: str, line: int = 0, path: tuple = ()):
        super().__init__(message)
        self.message, self.line, self.path = message, line, tuple(path)


class _Frame:
    __slots__ = ("value", "is_map", "key", "has_key", "anchor", "size", "lines", "merges", "line")

    def __init__(self, value, is_map: bool, anchor: str | None, line: int):
        self.value, self.is_map, self.anchor, self.line = value, is_map, anchor, line
        self.key, self.has_key, self.size = None, False, 1
        self.lines: dict = {}
        self.merges: list = []


def decode(data: bytes) -> str:
    """``data`` as text; a :class:`YamlProblem` naming the line (and key path) of the first byte that is
    not UTF-8."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        start = data.rfind(b"\n", 0, e.start) + 1
        column = len(data[start: e.start].decode("utf-8", "replace"))
        where = path_at(data.decode("utf-8", "replace"), line, column)
        raise YamlProblem(f"not UTF-8 text (byte 0x{data[e.start]:02x})", line, where) from None


def _scalar(ev: ScalarEvent) -> tuple[Any, bool]:
    """(value, is_merge_key) for one scalar event, as SafeLoader would construct it."""
    tag = ev.tag
    if tag is None or tag == "!":
        v = ev.value
        if tag == "!" or not ev.implicit[0] or (v and v[0] not in _RESOLVE_FIRST) or v.count(".") > 1:
            return v, False  # quoted, a non-specific "!", or plain text that can only be a string (an
            # address: no YAML 1.1 int, float or timestamp has two dots)
        tag = _resolver.resolve(ScalarNode, ev.value, (True, False))
        if tag == _STR:
            return ev.value, False
        if tag == _MERGE:
            return "<<", True
    elif tag not in _SCALAR_TAGS:
        raise YamlProblem(f"tag {tag} is not supported here", ev.start_mark.line + 1)
    if tag == _STR or tag not in _constructor.yaml_constructors:  # e.g. YAML 1.1's "=" (value): a string
        return ev.value, False
    try:
        return _constructor.yaml_constructors[tag](_constructor, ScalarNode(tag, ev.value, ev.start_mark)), False
    except (yaml.YAMLError, ValueError, TypeError) as e:
        raise YamlProblem(f"{ev.value!r} is not a valid {tag.rsplit(':', 1)[-1]}: {str(e).splitlines()[0]}",
                          ev.start_mark.line + 1) from None


def _path(stack: list[_Frame]) -> tuple:
    out = []
    for f in stack:
        if f.is_map:
            if f.has_key:
                out.append("<<" if f.key is _MERGE_KEY else f.key)
        else:
            out.append(len(f.value))
    return tuple(out)


def path_at(text: str, line: int, column: int) -> tuple:
    """The key path of the last value that starts at or before ``line``:``column`` (1-based line,
    0-based column) of ``text``, as far as it can be read: names the host and field of a byte that is
    not UTF-8 (``text`` then has U+FFFD in its place)."""
    try:
        load(text, _stop=(line - 1, column))
    except _Found as f:
        return f.path
    except YamlProblem as e:
        return e.path
    return ()


class _Found(Exception):
    def __init__(self, path: tuple):
        self.path = path


def load(text: str, *, max_depth: int = MAX_DEPTH, max_values: int = MAX_VALUES, _stop: tuple | None = None) -> Any:
    """The one document in ``text`` (``None`` if empty); :class:`YamlProblem` when it is refused."""
    stack: list[_Frame] = []
    anchors: dict[str, tuple[Any, int]] = {}
    total = 0
    root: Any = None
    documents = 0
    last: tuple = ()

    def add(value: Any, size: int, line: int, merge: bool = False) -> None:
        nonlocal root
        if not stack:
            root = value
            return
        top = stack[-1]
        top.size += size
        if not top.is_map:
            top.value.append(value)
            return
        if not top.has_key:
            if merge:
                top.key, top.has_key = _MERGE_KEY, True
                return
            try:
                hash(value)
            except TypeError:
                raise YamlProblem("a key must be a plain value", line, _path(stack)) from None
            if value in top.lines:
                raise YamlProblem(f"duplicate key {value!r} (first on line {top.lines[value]})", line, _path(stack))
            top.lines[value] = line
            top.key, top.has_key = value, True
            return
        if top.key is _MERGE_KEY:
            sources = value if isinstance(value, list) else [value]
            if not all(isinstance(s, dict) for s in sources):
                raise YamlProblem("a merge key (<<) takes a mapping or a list of mappings", line, _path(stack))
            top.merges.extend(sources)
        else:
            top.value[top.key] = value
        top.key, top.has_key = None, False

    parser = _Parser(text)
    try:
        while parser.check_event():
            ev = parser.get_event()
            cls = ev.__class__
            if _stop is not None:
                if (ev.start_mark.line, ev.start_mark.column) > _stop:
                    raise _Found(last)
                if cls is ScalarEvent and stack:
                    last = _path(stack) + ((ev.value,) if stack[-1].is_map and not stack[-1].has_key else ())
            if cls is ScalarEvent:
                total += 1
                v = ev.value
                if ev.tag is None and not ev.anchor and stack and (not ev.implicit[0] or (
                        v and v[0] not in _RESOLVE_FIRST)):  # the common case: a string, no anchor
                    top = stack[-1]
                    if top.is_map and top.has_key and top.key is not _MERGE_KEY:
                        top.value[top.key] = v
                        top.size += 1
                        top.key, top.has_key = None, False
                        continue
                    if top.is_map and not top.has_key and v not in top.lines:
                        top.lines[v] = ev.start_mark.line + 1
                        top.key, top.has_key = v, True
                        top.size += 1
                        continue
                    if not top.is_map:
                        top.value.append(v)
                        top.size += 1
                        continue
                try:
                    value, merge = _scalar(ev)
                except YamlProblem as e:
                    raise YamlProblem(e.message, e.line, _path(stack)) from None
                if ev.anchor:
                    anchors[ev.anchor] = (value, 1)
                add(value, 1, ev.start_mark.line + 1, merge)
            elif cls is MappingStartEvent or cls is SequenceStartEvent:
                is_map = cls is MappingStartEvent
                if ev.tag not in (_MAP_TAGS if is_map else _SEQ_TAGS):
                    raise YamlProblem(f"tag {ev.tag} is not supported here", ev.start_mark.line + 1, _path(stack))
                if stack and stack[-1].is_map and not stack[-1].has_key:
                    raise YamlProblem("a key must be a plain value", ev.start_mark.line + 1, _path(stack))
                if len(stack) >= max_depth:
                    raise YamlProblem(f"nested deeper than {max_depth} levels", ev.start_mark.line + 1,
                                      _path(stack))
                total += 1
                stack.append(_Frame({} if is_map else [], is_map, ev.anchor, ev.start_mark.line + 1))
            elif cls is MappingEndEvent or cls is SequenceEndEvent:
                f = stack.pop()
                if f.merges:  # explicit keys win, then the first source that has a key (as SafeLoader)
                    merged: dict = {}
                    for src in reversed(f.merges):
                        merged.update(src)
                    merged.update(f.value)
                    f.value.clear()
                    f.value.update(merged)
                if f.anchor:
                    anchors[f.anchor] = (f.value, f.size)
                add(f.value, f.size, f.line)
            elif cls is AliasEvent:
                line = ev.start_mark.line + 1
                if ev.anchor not in anchors:
                    open_ = any(f.anchor == ev.anchor for f in stack)
                    raise YamlProblem(f"alias *{ev.anchor} " + ("refers to a value that contains it" if open_
                                      else "is not defined"), line, _path(stack))
                value, size = anchors[ev.anchor]
                if size > MAX_ALIAS_VALUES:
                    raise YamlProblem(f"alias *{ev.anchor} stands for {size} values (more than "
                                      f"{MAX_ALIAS_VALUES}): an alias bomb? write the values out", line, _path(stack))
                total += size
                if total > max_values:
                    raise YamlProblem(f"aliases make the document more than {max_values} values: an alias bomb? "
                                      "write the values out", line, _path(stack))
                add(value, size, line)
            elif cls is DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise YamlProblem("more than one YAML document (---)", ev.start_mark.line + 1)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise YamlProblem(f"invalid YAML: {e.problem or e.context}", mark.line + 1 if mark else 0,
                          _path(stack)) from None
    except yaml.reader.ReaderError as e:
        line = text[: e.position].count("\n") + 1 if isinstance(e.position, int) else 0
        raise YamlProblem(f"invalid YAML: {e.reason}", line, _path(stack)) from None
    except yaml.YAMLError as e:
        raise YamlProblem(f"invalid YAML: {str(e).splitlines()[0] if str(e) else type(e).__name__}", 0,
                          _path(stack)) from None
    finally:
        parser.dispose()
    if _stop is not None:
        raise _Found(last)
    return root
