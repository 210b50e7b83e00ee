import threading
import time

from edgeclu.errors import Unreachable
from edgeclu.fleet import on_all


def test_every_node_gets_a_value_or_its_error_in_order():
    def fn(n):
        if n == "b":
            raise Unreachable(n, "no route")
        return n.upper()

    r = on_all(["a", "b", "c"], fn, name=str)
    assert list(r) == ["a", "b", "c"]
    assert r.succeeded == {"a": "A", "c": "C"}
    assert list(r.failed) == ["b"] and str(r.failed["b"]) == "b: no route"
    assert not r.ok


def test_runs_in_parallel():
    barrier = threading.Barrier(4, timeout=2)  # deadlocks (BrokenBarrierError) unless all 4 run at once
    r = on_all(range(4), lambda n: barrier.wait() is not None, name=str)
    assert r.ok and len(r) == 4


def test_on_done_called_per_node_as_they_finish():
    seen = []
    on_all([0.2, 0.0], lambda d: time.sleep(d), name=str, on_done=lambda n, v: seen.append(n))
    assert seen == ["0.0", "0.2"]


def test_empty():
    assert on_all([], lambda n: n) == {}
