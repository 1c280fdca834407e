"""One USD-M WebSocket client: route, streams, limits, and the single task writing to it.

The queue and writer task are the shared `QueuedWriter`. What is USD-M's own: frames are
str (the core builds malformed frames itself, as separate texts), and once a close frame is
queued the connection is `closing` and takes nothing more.
"""

from collections import Counter
from dataclasses import dataclass

from aiohttp import web

from exconn.sim.limits import WsConnectionLimits
from exconn.sim.ws_writer import OutClose, OutPing, QueuedWriter

__all__ = ["OutClose", "OutPing", "OutText", "Outbound", "UsdmConnection"]


@dataclass(frozen=True, slots=True)
class OutText:
    text: str


Outbound = OutText | OutPing | OutClose


class UsdmConnection(QueuedWriter[Outbound]):
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
        super().__init__(conn_id, ws, request, stats)
        self.route = route  # "public", "market" or "private"
        self.combined = combined
        self.streams: dict[str, None] = dict.fromkeys(streams)  # ordered set
        self.limits = limits
        self.listen_key = listen_key
        self.events = events  # private: event types wanted (None: all)
        self.last_ping_ms = limits.opened_ms
        self.closing = False

    def send(self, item: Outbound) -> bool:
        """Queue a frame; False when the client is too far behind (the caller drops it)."""
        # After a close frame (lifetime, shutdown, rate limit) Binance sends nothing more;
        # swallowing here also keeps the caller from dropping a socket that is going anyway.
        if self.closing:
            return True
        if self._queue.qsize() >= self._max_queue:
            return False
        if isinstance(item, OutClose):
            self.closing = True
        self._queue.put_nowait(item)
        return True

    def abort(self) -> None:
        self.closing = True
        super().abort()

    async def _write(self, item: Outbound) -> bool:
        if self.ws.closed:
            return False
        if isinstance(item, OutText):
            await self.ws.send_str(item.text)
            self._stats["frames_sent"] += 1
            return True
        return await self._write_control(item)
