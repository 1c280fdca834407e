"""One Bybit WebSocket client: its channel, topics, auth state and single writer task.

All frames go through one queue so an ack never overtakes or is overtaken by data. A
stalled connection keeps its frames queued (as a stuck TCP peer would) until the stall
ends; the writer re-checks every `STALL_POLL_S` because a stall is a time window.
"""

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable

from aiohttp import web

STALL_POLL_S = 0.02
MAX_QUEUED = 100_000


class BybitConnection:
    def __init__(
        self,
        conn_id: int,
        channel: str,  # "spot", "linear" or "private"
        ws: web.WebSocketResponse,
        request: web.Request,
        stats: Counter[str],
        stalled: Callable[["BybitConnection"], bool],
    ) -> None:
        self.id = conn_id
        self.channel = channel
        self.conn_id = f"sim{conn_id:06d}-{channel}"  # the wire's conn_id / connId
        self.ws = ws
        self.topics: dict[str, None] = {}
        self.authed_account: str | None = None
        self.malformed_pending = 0
        self._request = request
        self._stats = stats
        self._stalled = stalled
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    def start_writer(self) -> None:
        self._writer = asyncio.get_running_loop().create_task(self._run())

    def send(self, data: bytes) -> bool:
        if self._queue.qsize() >= MAX_QUEUED:
            return False
        self._queue.put_nowait(data)
        return True

    def abort(self) -> None:
        """Cut the TCP connection without a close frame, as a network failure does."""
        transport = self._request.transport
        if transport is not None:
            transport.abort()

    async def close(self, code: int, message: bytes) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(code=code, message=message), 1.0)
        self.abort()

    async def stop_writer(self) -> None:
        if self._writer is None:
            return
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError, RuntimeError):
            await self._writer

    async def _run(self) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            while (data := await self._queue.get()) is not None:
                # Bounded by the fault's own deadline or count; stop_writer cancels it too.
                while self._stalled(self) and not self.ws.closed:
                    await asyncio.sleep(STALL_POLL_S)
                if self.ws.closed:
                    return
                if self.malformed_pending > 0:
                    self.malformed_pending -= 1
                    await self.ws.send_str('{"topic": "orderbook", "data": {bad json')
                    self._stats["malformed_sent"] += 1
                await self.ws.send_str(data.decode())
                self._stats["frames_sent"] += 1
