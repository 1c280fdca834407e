"""Faults on the way back of an order request the venue has executed (issue 6: races, faults).

- ``STREAM_BEFORE_ACK``: the REST answer waits until every private-stream frame the order
  produced is on the wire, so a client reads its stream events before its acknowledgement.
- ``DROP_AFTER_ACCEPT``: the HTTP connection is closed without an answer, as a socket lost
  during submit: the client sees "server disconnected" and cannot know the order exists.

Both are asked for after the order has executed: every venue handler runs the matching engine
and queues the private-stream events synchronously, before it builds its answer. The venue's
own after-accept faults (5xx, timeout) are checked after these, so they compose.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from typing import Any, Protocol

from aiohttp import web

from exconn.sim.fault_registry import FaultKind, FaultRegistry

__all__ = ["FLUSH_TIMEOUT_S", "Flushable", "after_execution", "drop_answer"]

# A stalled or dead socket must not hold an answer forever: past this the answer goes anyway
# (the fault's ``max_hold_s`` parameter overrides it).
FLUSH_TIMEOUT_S = 5.0


class Flushable(Protocol):
    """A socket's writer (``exconn.sim.ws_writer.QueuedWriter``)."""

    async def flushed(self, timeout: float) -> bool: ...


async def after_execution(
    faults: FaultRegistry,
    now_ms: int,
    where: dict[str, Any],
    writers: Iterable[Flushable],
    stats: Counter[str],
) -> bool:
    """Apply ``STREAM_BEFORE_ACK`` (wait for the streams) for the executed request ``where``
    names (venue, endpoint, symbol); True when ``DROP_AFTER_ACCEPT`` says to answer nothing."""
    fault = faults.take(FaultKind.STREAM_BEFORE_ACK, now_ms, **where)
    if fault is not None:
        stats["streams_before_ack"] += 1
        limit = float(fault.params.get("max_hold_s", FLUSH_TIMEOUT_S))
        # Snapshot first: a socket that opens while we wait has nothing of this order queued.
        pending = list(writers)
        flushed = await asyncio.gather(*(w.flushed(limit) for w in pending))
        if not all(flushed):
            stats["streams_not_flushed"] += 1  # stalled past the limit, or closed
    if faults.take(FaultKind.DROP_AFTER_ACCEPT, now_ms, **where) is not None:
        stats["drops_after_accept"] += 1
        return True
    return False


def drop_answer(request: web.Request) -> web.Response:
    """Close the request's connection without a response. aiohttp writes the returned
    response to a closed transport, which sends nothing."""
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response(status=500)
