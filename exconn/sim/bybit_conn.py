"""One Bybit WebSocket client: its channel, topics, auth state and single writer task.

The queue and writer task are the shared `QueuedWriter`. What is Bybit's own: a stalled
connection keeps its frames queued (as a stuck TCP peer would) until the stall ends, the
writer re-checking every `STALL_POLL_S` because a stall is a time window, and every frame
is pre-encoded bytes (Bybit pings are JSON ops from the client, not WebSocket pings). A
flood (`OutFlood`, benchmarks) is written straight to the TCP transport, as on Binance spot.
"""

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable

from aiohttp import web

from exconn.sim.connection import OutFlood
from exconn.sim.ws_writer import QueuedWriter

STALL_POLL_S = 0.02


class BybitConnection(QueuedWriter[bytes | OutFlood]):
    # The writer may be parked polling a STALL window seconds long, and the core stops it
    # only once the socket is gone, so nothing it still holds could be delivered: waiting
    # for it would only delay the close.
    _drain_on_stop = False

    def __init__(
        self,
        conn_id: int,
        channel: str,  # "spot", "linear" or "private"
        ws: web.WebSocketResponse,
        request: web.Request,
        stats: Counter[str],
        stalled: Callable[["BybitConnection"], bool],
    ) -> None:
        super().__init__(conn_id, ws, request, stats)
        self.channel = channel
        self.conn_id = f"sim{conn_id:06d}-{channel}"  # the wire's conn_id / connId
        self.topics: dict[str, None] = {}
        self.authed_account: str | None = None
        self.malformed_pending = 0
        self._stalled = stalled

    def send(self, data: bytes | OutFlood) -> bool:
        return self._enqueue(data)

    async def stop_writer(self) -> None:
        if self._writer is None:
            return
        await super().stop_writer()
        # A flood still queued must report back, or the market would stay frozen for it.
        for _ in range(self._queue.qsize()):
            item = self._queue.get_nowait()
            if isinstance(item, OutFlood):
                item.on_done(False)

    async def close(self, code: int, message: bytes) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(code=code, message=message), 1.0)
        self.abort()

    async def _write(self, item: bytes | OutFlood) -> bool:
        # Bounded by the fault's own deadline or count; stop_writer cancels it too.
        while self._stalled(self) and not self.ws.closed:
            await asyncio.sleep(STALL_POLL_S)
        if isinstance(item, OutFlood):
            # Even on a closed socket, so the flood reports back and the market unfreezes.
            completed = False
            try:
                completed = not self.ws.closed and await self._write_raw(item)
            finally:
                item.on_done(completed)
            return completed
        if self.ws.closed:
            return False
        if self.malformed_pending > 0:
            self.malformed_pending -= 1
            await self.ws.send_str('{"topic": "orderbook", "data": {bad json')
            self._stats["malformed_sent"] += 1
        await self.ws.send_str(item.decode())
        self._stats["frames_sent"] += 1
        return True

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
