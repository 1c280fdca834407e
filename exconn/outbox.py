"""Per-subscriber batching of events produced in one I/O cycle.

Crossing a process boundary costs far more than producing an event, so every event of a drain
goes to each subscriber in one ``EventBatch`` message, in production order.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from exconn.messages import Encodable, EventBatch

# One subscriber as routed: (str(address), address). Addresses are unhashable, so keyed by str.
Route = tuple[str, Any]


def routes_of(subscribers: Sequence[Any]) -> tuple[Route, ...]:
    return tuple((str(s), s) for s in subscribers)


class Outbox:
    __slots__ = ("_batches", "received_ns")

    def __init__(self) -> None:
        self._batches: dict[str, tuple[Any, list[Encodable]]] = {}
        # Created when a drain starts: stamps the batches with when their frames were read.
        self.received_ns = time.monotonic_ns()

    def add(self, routes: tuple[Route, ...], event: Encodable) -> None:
        batches = self._batches
        for key, address in routes:
            entry = batches.get(key)
            if entry is None:
                batches[key] = (address, [event])
            else:
                entry[1].append(event)

    def __bool__(self) -> bool:
        return bool(self._batches)

    def take(self) -> list[tuple[str, Any, list[Encodable]]]:
        """(key, address, events) per subscriber, unencoded; empties the outbox (for flow
        control, which may hold a subscriber's events back and merge them)."""
        batches, self._batches = self._batches, {}
        return [(key, address, events) for key, (address, events) in batches.items()]

    def drain(self) -> list[tuple[Any, EventBatch]]:
        """(address, batch) pairs to send; empties the outbox."""
        stamp = self.received_ns
        out = [(a, EventBatch.of(events, stamp)) for a, events in self._batches.values()]
        self._batches = {}
        return out

    def events_for(self, key: str) -> list[Encodable]:
        entry = self._batches.get(key)
        return list(entry[1]) if entry else []
