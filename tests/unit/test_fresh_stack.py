from __future__ import annotations

import threading

import pytest

from exconn.actors.fresh_stack import FreshStack


def test_call_runs_on_another_thread_and_returns_or_raises() -> None:
    fresh = FreshStack()
    try:
        assert fresh.call(lambda a, b=0: a + b, 2, b=3) == 5
        assert fresh.call(threading.get_ident) != threading.get_ident()
        with pytest.raises(ValueError, match="boom"):
            fresh.call(_raise, ValueError("boom"))
        assert fresh.call(len, [1, 2]) == 2  # the worker survives an exception
    finally:
        fresh.close()
    assert fresh.call(int, "7") == 7  # restarts after close
    fresh.close()


def _raise(exc: Exception) -> None:
    raise exc
