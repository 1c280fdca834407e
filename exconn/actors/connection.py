"""MarketDataConnection: owns one market-data WebSocket and delivers its events.

The socket is watched by Thespian (``ThespianWatch``), never by a thread: ``receiveMessage``
returns the watch on every path, or the feed would silently stall. Each readable event drains
everything available, runs it through the venue's ``StreamHandler`` and sends one ``EventBatch``
per subscriber.
"""

from __future__ import annotations

import os
import time
from typing import Any

from loguru import logger
from thespian.actors import (
    Actor,
    ActorExitRequest,
    ThespianWatch,
    WakeupMessage,
    WatchMessage,
)

from exconn import errors
from exconn.actors.lifeline import tie_to_parent
from exconn.actors.timers import Timers
from exconn.book.sync import SyncResult
from exconn.logs import configure
from exconn.messages import (
    ConnectionInfo,
    ConnectionInit,
    ConnectionStarted,
    GetStatus,
    SetRoute,
    SubscriptionError,
)
from exconn.model.enums import Market
from exconn.outbox import Outbox
from exconn.transport.backoff import Backoff
from exconn.transport.ratelimit import RollingWindow
from exconn.transport.rest import RestClient
from exconn.transport.ws import WsClosed, WsConnection
from exconn.venues.binance import endpoints, urls
from exconn.venues.binance.errors import error_for
from exconn.venues.binance.streams import StreamHandler
from exconn.venues.binance.wire import depth_snapshot_decoder, error_decoder

# Binance closes a connection above 5 incoming messages/s; stay clearly under it.
CONTROL_MESSAGES_PER_SECOND = 4
STREAMS_PER_CONTROL_MESSAGE = 200
SNAPSHOT_ATTEMPTS_PER_DRAIN = 3
# Frames handled per drain: bounds the batch size and the time between two looks at the
# mailbox (route changes, status requests) when a flood keeps the socket readable.
FRAMES_PER_DRAIN = 2048


class DrainAgain:
    """Sent to itself when a drain stopped at FRAMES_PER_DRAIN with more frames waiting."""


class MarketDataConnection(Actor):
    def __init__(self) -> None:
        super().__init__()
        self.init: ConnectionInit | None = None
        self.handler: StreamHandler | None = None
        self.conn: WsConnection | None = None
        self.rest: RestClient | None = None
        self.timers: Any = None
        self.backoff = Backoff()
        self.snapshot_backoff = Backoff(initial=0.5, maximum=30.0)
        self.pacer = RollingWindow(CONTROL_MESSAGES_PER_SECOND, 1.0)
        self.pending_control: list[tuple[str, list[str]]] = []
        self.request_id = 0
        self.frames = 0
        self.drains = 0
        self.log = logger

    # Every exit path returns the watch: a bare return or an exception would clear it.
    def receiveMessage(self, message: Any, sender: Any) -> Any:
        try:
            self._dispatch(message, sender)
        except Exception:
            self.log.exception("connection actor: unexpected error handling {}", type(message))
        return self._watch()

    def _watch(self) -> ThespianWatch | None:
        conn = self.conn
        if conn is not None and conn.connected:
            try:
                return ThespianWatch([conn.fileno()])
            except WsClosed:
                return None
        return None

    def _dispatch(self, message: Any, sender: Any) -> None:
        if isinstance(message, WatchMessage | DrainAgain):
            self._on_readable()
        elif isinstance(message, SetRoute):
            self._on_route(message, sender)
        elif isinstance(message, WakeupMessage):
            self._on_wakeup(message.payload)
        elif isinstance(message, ConnectionInit):
            self._on_init(message, sender)
        elif isinstance(message, GetStatus):
            self.send(sender, self._info())
        elif isinstance(message, ActorExitRequest):
            self._close()

    # -- set-up ---------------------------------------------------------------------------------
    def _on_init(self, msg: ConnectionInit, sender: Any) -> None:
        tie_to_parent()
        configure(msg.log_level)
        self.init = msg
        self.log = logger.bind(exchange=msg.exchange, market=msg.market, connection=msg.name)
        self.timers = Timers(self)
        self.handler = StreamHandler(Market(msg.market), msg.instruments)
        self.rest = RestClient(
            msg.rest_url, exchange=msg.exchange, error_for=error_for, error_decoder=error_decoder
        )
        self.send(sender, ConnectionStarted(name=msg.name, pid=os.getpid()))

    def _on_route(self, msg: SetRoute, sender: Any) -> None:
        if self.handler is None:
            return
        out = Outbox()
        try:
            change = self.handler.set_route(msg.topic, msg.subscribers, out)
        except (ValueError, KeyError, errors.ExconnError) as exc:
            for sub in msg.subscribers:
                self.send(sub, SubscriptionError(topic=msg.topic, reason=str(exc)))
            return
        self._publish(out)
        if self.conn is None or not self.conn.connected:
            if self.handler.streams and self.timers is not None:
                self.timers.ensure("reconnect", 0)
            return
        if change.subscribe:
            self.pending_control.append(("SUBSCRIBE", change.subscribe))
        if change.unsubscribe:
            self.pending_control.append(("UNSUBSCRIBE", change.unsubscribe))
        self._flush_control()

    # -- socket ---------------------------------------------------------------------------------
    def _connect(self) -> None:
        assert self.init is not None and self.handler is not None
        streams = sorted(self.handler.streams)
        if not streams:
            return
        url = urls.combined_url(self.init.ws_url, streams)
        conn = WsConnection(url)
        try:
            conn.connect()
        except WsClosed as exc:
            delay = self.backoff.next_delay()
            self.log.warning("connect failed ({}); retrying in {:.1f} s", exc, delay)
            self.timers.start("reconnect", delay)
            return
        self.conn = conn
        self.pending_control.clear()  # the URL carries every current stream
        self.log.info("connected with {} streams", len(streams))

    def _on_readable(self) -> None:
        conn, handler = self.conn, self.handler
        if conn is None or handler is None:
            return
        out = Outbox()
        try:
            frames, more = conn.read_available(FRAMES_PER_DRAIN)
        except WsClosed as exc:
            self._lost(str(exc), out)
            self._publish(out)
            return
        if frames:
            self.frames += len(frames)
            self.drains += 1
            self.backoff.reset()
            handler.on_frames(frames, out)
        if handler.shutdown_notices:
            handler.shutdown_notices = 0
            self._lost("serverShutdown", out)
        self._sync_books(out)
        self._publish(out)
        if more and self.conn is not None:
            self.send(self.myAddress, DrainAgain())

    def _lost(self, reason: str, out: Outbox) -> None:
        assert self.handler is not None
        self.log.warning("market-data socket lost: {}", reason)
        if self.conn is not None:
            self.conn.close()
        self.conn = None
        self.handler.on_disconnect(f"disconnected: {reason}", out)
        self.timers.start("reconnect", self.backoff.next_delay())

    def _sync_books(self, out: Outbox) -> None:
        """Fetch snapshots for books that are buffering. Blocking but bounded: frames that
        arrive meanwhile wait in the socket, which is exactly the buffering the rules ask for."""
        handler, rest, init = self.handler, self.rest, self.init
        assert handler is not None and rest is not None and init is not None
        path = endpoints.endpoints(Market(init.market))["depth"].path
        for venue_symbol in handler.symbols_needing_snapshot():
            for _ in range(SNAPSHOT_ATTEMPTS_PER_DRAIN):
                try:
                    snapshot = rest.get(
                        path,
                        endpoints.depth_params(venue_symbol, init.depth_limit),
                        depth_snapshot_decoder,
                    )
                    result = handler.on_snapshot(venue_symbol, snapshot, out)
                except (errors.ExconnError, ValueError) as exc:
                    delay = self.snapshot_backoff.next_delay()
                    self.log.bind(symbol=venue_symbol).warning(
                        "depth snapshot failed ({}); retrying in {:.1f} s", exc, delay
                    )
                    self.timers.ensure("snapshot", delay)
                    return
                if result is SyncResult.SYNCED:
                    self.snapshot_backoff.reset()
                    break
                if result is SyncResult.GAP:
                    continue
            else:
                self.timers.ensure("snapshot", self.snapshot_backoff.next_delay())

    # -- control messages -----------------------------------------------------------------------
    def _flush_control(self) -> None:
        conn = self.conn
        if conn is None or not conn.connected:
            return
        while self.pending_control:
            now = time.monotonic()
            wait = self.pacer.delay(now)
            if wait > 0:
                self.timers.ensure("pace", wait)
                return
            method, streams = self.pending_control[0]
            chunk, rest = (
                streams[:STREAMS_PER_CONTROL_MESSAGE],
                streams[STREAMS_PER_CONTROL_MESSAGE:],
            )
            if rest:
                self.pending_control[0] = (method, rest)
            else:
                self.pending_control.pop(0)
            self.request_id += 1
            body = f'{{"method":"{method}","params":{_json_list(chunk)},"id":{self.request_id}}}'
            try:
                conn.send_text(body)
            except WsClosed as exc:
                out = Outbox()
                self._lost(str(exc), out)
                self._publish(out)
                return
            self.pacer.record(now)

    def _on_wakeup(self, payload: Any) -> None:
        if self.timers is None:
            return
        purpose = self.timers.fire(payload)
        if purpose == "reconnect":
            if self.conn is None or not self.conn.connected:
                self._connect()
        elif purpose == "pace":
            self._flush_control()
        elif purpose == "snapshot":
            out = Outbox()
            self._sync_books(out)
            self._publish(out)

    # -- output ---------------------------------------------------------------------------------
    def _publish(self, out: Outbox) -> None:
        if out:
            for address, batch in out.drain():
                self.send(address, batch)

    def _info(self) -> ConnectionInfo:
        init, handler = self.init, self.handler
        return ConnectionInfo(
            exchange=init.exchange if init else "",
            market=init.market if init else "",
            name=init.name if init else "",
            pid=os.getpid(),
            streams=tuple(sorted(handler.streams)) if handler else (),
            connected=bool(self.conn and self.conn.connected),
            malformed_frames=handler.malformed if handler else 0,
            resyncs=handler.resyncs if handler else 0,
            frames=self.frames,
            drains=self.drains,
        )

    def _close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.rest is not None:
            self.rest.close()


def _json_list(items: list[str]) -> str:
    return "[" + ",".join(f'"{s}"' for s in items) + "]"
