"""The single-writer queue behind every simulated WebSocket, whatever the venue.

Every outbound frame of a connection goes through one queue drained by one task, so a reply
can never overtake or be overtaken by market events, and a slow client never stalls the
others: when its queue is full the core drops it as the real venues drop slow consumers.
"""

import abc
import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass
from typing import Generic, TypeVar

from aiohttp import web

MAX_QUEUED_FRAMES = 100_000  # per connection; beyond this the client is a lost cause
ItemT = TypeVar("ItemT")


@dataclass(frozen=True, slots=True)
class OutPing:
    payload: bytes


@dataclass(frozen=True, slots=True)
class OutClose:
    """Close with a close frame after everything queued before it has been written."""

    code: int
    message: bytes = b""


@dataclass(frozen=True, slots=True)
class _Flushed:
    """Not a frame: set once everything queued before it has been written."""

    done: asyncio.Event


class QueuedWriter(abc.ABC, Generic[ItemT]):
    # On stop, let the writer flush what is queued (1 s at most) before cancelling it.
    _drain_on_stop = True

    def __init__(
        self,
        conn_id: int,
        ws: web.WebSocketResponse,
        request: web.Request,
        stats: Counter[str],
        max_queue: int = MAX_QUEUED_FRAMES,
    ) -> None:
        self.id = conn_id
        self.ws = ws
        self._request = request
        self._stats = stats
        self._max_queue = max_queue
        # None stops the writer.
        self._queue: asyncio.Queue[ItemT | _Flushed | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    def start_writer(self) -> None:
        self._writer = asyncio.get_running_loop().create_task(self._run_writer())

    def _enqueue(self, item: ItemT) -> bool:
        """Queue a frame; False means the client fell too far behind and should be dropped."""
        if self._queue.qsize() >= self._max_queue:
            return False
        self._queue.put_nowait(item)
        return True

    async def flushed(self, timeout: float) -> bool:
        """Wait until every frame queued so far is on the wire (False: not within `timeout`,
        the socket stalled or went away first)."""
        if self._writer is None or self._writer.done():
            return False
        done = asyncio.Event()
        self._queue.put_nowait(_Flushed(done))
        try:
            await asyncio.wait_for(done.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def abort(self) -> None:
        """Close the TCP connection without a close frame, as a network failure would."""
        transport = self._request.transport
        if transport is not None:
            transport.abort()

    async def stop_writer(self) -> None:
        if self._writer is None:
            return
        if not self._drain_on_stop:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, RuntimeError):
                await self._writer
            return
        self._queue.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(self._writer), timeout=1.0)
        except (TimeoutError, asyncio.CancelledError, ConnectionError):
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await self._writer

    async def _run_writer(self) -> None:
        # The loop ends on the None sentinel, when `_write` says so, or when the socket goes.
        with contextlib.suppress(ConnectionError, RuntimeError):
            while (item := await self._queue.get()) is not None:
                if isinstance(item, _Flushed):
                    item.done.set()
                    continue
                if not await self._write(item):
                    return

    @abc.abstractmethod
    async def _write(self, item: ItemT) -> bool:
        """Put one queued item on the wire; False ends the writer."""

    async def _write_control(self, item: OutPing | OutClose) -> bool:
        if isinstance(item, OutClose):
            await self.ws.close(code=item.code, message=item.message)
            return False
        await self.ws.ping(item.payload)
        self._stats["pings_sent"] += 1
        return True
