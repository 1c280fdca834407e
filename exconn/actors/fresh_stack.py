"""Run the market-data hot path on a thread with a shallow Python frame stack.

CPython 3.11 keeps Python frames in per-thread chunks of 16 KiB. A call that starts a new
chunk allocates it, and returning from that call frees it again; a hot loop whose calls sit
right at a chunk boundary pays that on every call. Thespian forks each actor process from
inside its parent's message handler, so the stack depth the actor runs at depends on how
deep the engine called ``exconn.start`` and how the parents created their children; with
one extra frame at the call site, the connection actor was measured 5x slower
(scripts/bench_marketdata.py: ~120k -> ~22k book updates/s). A thread's frame stack starts
empty, so the hot path run there is as fast whatever the depth of the actor's own thread.

Thespian calls actors from one thread and its guide warns against threads inside actors:
only pure computation runs here (decode, book sync, encode: no Thespian, socket or logging
calls that could interleave), and the actor thread waits for it, so nothing runs
concurrently.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

_STOP = object()


class FreshStack:
    """``call(fn, ...)`` runs ``fn`` on a daemon worker thread and returns its result (or
    raises its exception) in the caller's thread."""

    def __init__(self, name: str = "exconn-hot-path") -> None:
        self._name = name
        self._requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._replies: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
            self._thread.start()
        self._requests.put((fn, args, kwargs))
        ok, value = self._replies.get()
        if ok:
            return value
        raise value

    def close(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._requests.put(_STOP)
            self._thread.join(timeout=5)
        self._thread = None

    def _serve(self) -> None:
        while True:
            request = self._requests.get()
            if request is _STOP:
                return
            fn, args, kwargs = request
            try:
                self._replies.put((True, fn(*args, **kwargs)))
            except BaseException as exc:  # handed to the caller, which decides
                self._replies.put((False, exc))
