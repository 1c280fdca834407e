"""One client WebSocket: its subscriptions and the single task that writes to it.

Every outbound frame goes through one queue so a control-message ack can never overtake
or be overtaken by market events, and a slow client never stalls the others.
"""

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from exconn.sim.faults import malformed_frame


@dataclass(frozen=True, slots=True)
class OutText:
    data: bytes
    stream: str | None = None  # set on market events: malformed frames mimic their stream


@dataclass(frozen=True, slots=True)
class OutPing:
    payload: bytes


@dataclass(frozen=True, slots=True)
class OutFlood:
    chunks: Iterable[bytes]  # complete pre-encoded frames, concatenated
    frames: int
    on_done: Callable[[bool], None]  # called with True when every chunk was written


@dataclass(frozen=True, slots=True)
class OutClose:
    """Close with a close frame after everything queued before it has been written."""

    code: int
    message: bytes = b""


Outbound = OutText | OutPing | OutFlood | OutClose | None  # None stops the writer


class Connection:
    def __init__(
        self, conn_id: int, ws: web.WebSocketResponse, request: web.Request, combined: bool,
        streams: Iterable[str], stats: Counter[str], max_queue: int,
    ) -> None:
        self.id = conn_id
        self.ws = ws
        self.combined = combined
        self.streams: dict[str, None] = dict.fromkeys(streams)  # ordered set
        self.malformed_pending = 0
        self.pongs = 0
        self._request = request
        self._stats = stats
        self._max_queue = max_queue
        self._queue: asyncio.Queue[Outbound] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self.path = request.path
        self.ip = request.remote or ""
        self.opened_ms = 0
        self.limits: Any = None  # WsConnectionLimits, set by the core
        self.wsapi: Any = None  # WS API session state, set by the WS API handler
        self.lifetime_handle: asyncio.TimerHandle | None = None
        # Cleared while a STALL fault holds this socket: frames queue up, nothing is sent.
        self.flowing = asyncio.Event()
        self.flowing.set()

    def start_writer(self) -> None:
        self._writer = asyncio.get_running_loop().create_task(self._run_writer())

    def send(self, item: OutText | OutPing | OutFlood | OutClose) -> bool:
        """Queue a frame; False means the client fell too far behind and should be dropped."""
        if self._queue.qsize() >= self._max_queue:
            return False
        self._queue.put_nowait(item)
        return True

    def abort(self) -> None:
        """Close the TCP connection without a close frame, as a network failure would."""
        transport = self._request.transport
        if transport is not None:
            transport.abort()

    async def stop_writer(self) -> None:
        if self._writer is None:
            return
        self._queue.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(self._writer), timeout=1.0)
        except (TimeoutError, asyncio.CancelledError, ConnectionError):
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await self._writer
        # A flood still queued must report back, or the market would stay frozen for it.
        for _ in range(self._queue.qsize()):
            item = self._queue.get_nowait()
            if isinstance(item, OutFlood):
                item.on_done(False)

    async def _run_writer(self) -> None:
        # The loop ends on the None sentinel or when the socket goes away.
        with contextlib.suppress(ConnectionError, RuntimeError):
            while (item := await self._queue.get()) is not None:
                await self.flowing.wait()
                if isinstance(item, OutFlood):
                    await self._flood(item)
                elif self.ws.closed:
                    return
                elif isinstance(item, OutText):
                    await self._send_text(item)
                elif isinstance(item, OutClose):
                    await self.ws.close(code=item.code, message=item.message)
                    return
                else:
                    await self.ws.ping(item.payload)
                    self._stats["pings_sent"] += 1

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
