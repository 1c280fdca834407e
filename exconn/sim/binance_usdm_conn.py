"""One USD-M WebSocket client: route, streams, limits, and the single task writing to it.

Every outbound frame goes through one queue so acks and events keep their order and a slow
client never stalls the others.
"""

import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass

from aiohttp import web

from exconn.sim.limits import WsConnectionLimits

MAX_QUEUED_FRAMES = 100_000


@dataclass(frozen=True, slots=True)
class OutText:
    text: str


@dataclass(frozen=True, slots=True)
class OutPing:
    payload: bytes


@dataclass(frozen=True, slots=True)
class OutClose:
    code: int
    message: bytes


Outbound = OutText | OutPing | OutClose | None  # None stops the writer


class UsdmConnection:
    def __init__(
        self,
        conn_id: int,
        ws: web.WebSocketResponse,
        request: web.Request,
        route: str,
        combined: bool,
        streams: list[str],
        limits: WsConnectionLimits,
        stats: Counter[str],
        listen_key: str | None = None,
        events: frozenset[str] | None = None,
    ) -> None:
        self.id = conn_id
        self.ws = ws
        self.route = route  # "public", "market" or "private"
        self.combined = combined
        self.streams: dict[str, None] = dict.fromkeys(streams)  # ordered set
        self.limits = limits
        self.listen_key = listen_key
        self.events = events  # private: event types wanted (None: all)
        self.last_ping_ms = limits.opened_ms
        self._request = request
        self._stats = stats
        self._queue: asyncio.Queue[Outbound] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self.closing = False

    def start_writer(self) -> None:
        self._writer = asyncio.get_running_loop().create_task(self._run())

    def send(self, item: OutText | OutPing | OutClose) -> bool:
        """Queue a frame; False when the client is too far behind (the caller drops it)."""
        if self.closing:
            return True
        if self._queue.qsize() >= MAX_QUEUED_FRAMES:
            return False
        if isinstance(item, OutClose):
            self.closing = True
        self._queue.put_nowait(item)
        return True

    def abort(self) -> None:
        """Close the TCP connection without a close frame, as a network failure would."""
        self.closing = True
        transport = self._request.transport
        if transport is not None:
            transport.abort()

    async def stop(self) -> None:
        if self._writer is None:
            return
        self._queue.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(self._writer), timeout=1.0)
        except (TimeoutError, asyncio.CancelledError, ConnectionError):
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await self._writer

    async def _run(self) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            while (item := await self._queue.get()) is not None:
                if self.ws.closed:
                    return
                if isinstance(item, OutText):
                    await self.ws.send_str(item.text)
                    self._stats["frames_sent"] += 1
                elif isinstance(item, OutPing):
                    await self.ws.ping(item.payload)
                    self._stats["pings_sent"] += 1
                else:
                    await self.ws.close(code=item.code, message=item.message)
                    return
