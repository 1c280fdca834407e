"""One Binance spot WebSocket client: its subscriptions, WS API session and writer.

The queue and writer task are the shared `QueuedWriter`; what is spot's own is the flood
(raw pre-encoded frames written straight to the transport), a STALL that parks the writer
on an Event, and malformed frames that mimic the stream they precede.
"""

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from exconn.sim.faults import malformed_frame
from exconn.sim.ws_writer import MAX_QUEUED_FRAMES, OutClose, OutPing, QueuedWriter

__all__ = ["Connection", "OutClose", "OutFlood", "OutPing", "OutText", "Outbound"]


@dataclass(frozen=True, slots=True)
class OutText:
    # Bytes, not str: most spot frames are pre-encoded once and shared by every subscriber.
    data: bytes
    stream: str | None = None  # set on market events: malformed frames mimic their stream


@dataclass(frozen=True, slots=True)
class OutFlood:
    chunks: Iterable[bytes]  # complete pre-encoded frames, concatenated
    frames: int
    on_done: Callable[[bool], None]  # called with True when every chunk was written


Outbound = OutText | OutPing | OutFlood | OutClose


class Connection(QueuedWriter[Outbound]):
    def __init__(
        self,
        conn_id: int,
        ws: web.WebSocketResponse,
        request: web.Request,
        combined: bool,
        streams: Iterable[str],
        stats: Counter[str],
        max_queue: int = MAX_QUEUED_FRAMES,
    ) -> None:
        super().__init__(conn_id, ws, request, stats, max_queue)
        self.combined = combined
        self.streams: dict[str, None] = dict.fromkeys(streams)  # ordered set
        self.malformed_pending = 0
        self.pongs = 0
        self.path = request.path
        self.ip = request.remote or ""
        self.opened_ms = 0
        self.limits: Any = None  # WsConnectionLimits, set by the core
        self.wsapi: Any = None  # WS API session state, set by the WS API handler
        self.lifetime_handle: asyncio.TimerHandle | None = None
        # Cleared while a STALL fault holds this socket: frames queue up, nothing is sent.
        self.flowing = asyncio.Event()
        self.flowing.set()

    def send(self, item: Outbound) -> bool:
        """Queue a frame; False means the client fell too far behind and should be dropped."""
        return self._enqueue(item)

    async def stop_writer(self) -> None:
        if self._writer is None:
            return
        await super().stop_writer()
        # A flood still queued must report back, or the market would stay frozen for it.
        for _ in range(self._queue.qsize()):
            item = self._queue.get_nowait()
            if isinstance(item, OutFlood):
                item.on_done(False)

    async def _write(self, item: Outbound) -> bool:
        await self.flowing.wait()
        if isinstance(item, OutFlood):
            # Even on a closed socket, so the flood reports back and the market unfreezes.
            await self._flood(item)
            return True
        if self.ws.closed:
            return False
        if isinstance(item, OutText):
            await self._send_text(item)
            return True
        return await self._write_control(item)

    async def _flood(self, item: OutFlood) -> None:
        completed = False
        try:
            completed = not self.ws.closed and await self._write_raw(item)
        finally:
            item.on_done(completed)

    async def _send_text(self, item: OutText) -> None:
        if item.stream is not None and self.malformed_pending > 0:
            self.malformed_pending -= 1
            await self.ws.send_str(malformed_frame(item.stream, self.combined))
            self._stats["malformed_sent"] += 1
            self._stats["frames_sent"] += 1
        await self.ws.send_str(item.data.decode())
        self._stats["frames_sent"] += 1

    async def _write_raw(self, flood: OutFlood) -> bool:
        transport = self._request.transport
        protocol = self._request.protocol
        for chunk in flood.chunks:
            if transport is None or transport.is_closing():
                return False
            transport.write(chunk)
            # aiohttp exposes transport flow control only through its protocol's drain helper.
            if protocol._paused:
                await protocol._drain_helper()
        self._stats["frames_sent"] += flood.frames
        return True
