"""Run one function on many nodes in parallel; collect a result or an error per node.

One dead node never hides the others: every node gets an entry in the
:class:`FleetResult`, either its value or the exception it raised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")
N = TypeVar("N")


class FleetResult(dict, Generic[T]):
    """``{node name: value or Exception}`` in the order the nodes were given."""

    @property
    def succeeded(self) -> dict[str, T]:
        return {k: v for k, v in self.items() if not isinstance(v, BaseException)}

    @property
    def failed(self) -> dict[str, BaseException]:
        return {k: v for k, v in self.items() if isinstance(v, BaseException)}

    @property
    def ok(self) -> bool:
        return not self.failed


def on_all(nodes: Iterable[N], fn: Callable[[N], T], *, name: Callable[[N], str] = lambda n: n.name,
           workers: int | None = None,
           on_done: Callable[[str, T | BaseException], None] | None = None) -> FleetResult[T]:
    """Call ``fn(node)`` for every node at once (a thread each, up to ``workers``)."""
    nodes = list(nodes)
    result: FleetResult[T] = FleetResult({name(n): None for n in nodes})
    if not nodes:
        return result

    def one(node: N) -> None:
        try:
            value: T | BaseException = fn(node)
        except Exception as e:  # noqa: BLE001 - stored per node, by design
            value = e
        result[name(node)] = value
        if on_done:
            on_done(name(node), value)

    with ThreadPoolExecutor(max_workers=workers or len(nodes), thread_name_prefix="fleet") as pool:
        list(pool.map(one, nodes))
    return result
