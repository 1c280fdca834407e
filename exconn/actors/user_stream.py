"""UserStreamConnection: one private (user data) stream of an exchange's account.

Thin, like ``MarketDataConnection``: the venue's pure ``UserStreamHandler``
(``exconn.venues.<venue>.user_stream``) builds the frames and turns frames into events, the
driver (``exconn.venues.driver``) says where to connect and whether a listenKey is needed, and
``Handshake`` (below, pure) decides what the handler's state means for the socket. This actor
wires the socket (watched by Thespian, ``ThespianWatch`` on every exit path), the timers
(``exconn.actors.timers``) and the delivery.

Lifecycle: (USD-M: create a listenKey over REST, keep it alive every 30 min) -> connect ->
send the handler's open frames (Bybit auth + subscribe, Binance spot
``userDataStream.subscribe.signature``; USD-M none) -> the venue must acknowledge within
``WsSettings.auth_timeout_s``, else the socket is closed and opened again with backoff. The
signed open frames carry the venue's time, not the local clock: the venue's time endpoint is
sampled over REST before connecting (``RestClient.sync_clock``, the same ``ClockOffset`` as
signed REST requests), and a refusal for clock skew resyncs it. A heartbeat the venue must
answer goes out every ``WsSettings.private_heartbeat_s`` (``exconn.transport.heartbeat``): a
socket that answers nothing for ``private_silence_s`` is stalled, closed and reopened. A lost
socket is reopened with backoff, forever; ``listenKeyExpired`` (or a keepalive answered
-1125) gets a new key and a new socket; spot's ``eventStreamTerminated`` subscribes again.
A refused key (``AuthError``) goes to every subscriber of the exchange's account topics as an
``AccountStreamError`` and this actor exits: the supervisor starts a new one with backoff.

Events go out in ``EventBatch``es through ``TrackedSender``/``Delivery``, which never merge or
drop order, fill, balance or position events.

Under a supervisor the stream is fed to the exchange's ``OrderQuery`` instead (``SetQueryActor``):
its events go there as ``UserEvents``, the query's de-duplicated output is what account
subscribers get, and every time the subscription goes live (first connect included: the query's
start-up reconcile does not cover the time until the stream is live) the stream asks the query
to ``Reconcile``, so events the venue sent while no socket was open reach subscribers once
after recovery. ``AccountStreamError`` still goes straight to the account subscribers.
"""

from __future__ import annotations

import contextlib
import os
import time
from enum import Enum
from typing import Any

from loguru import logger
from thespian.actors import Actor, ActorExitRequest, ThespianWatch, WakeupMessage, WatchMessage

from exconn import errors
from exconn.actors.lifeline import tie_to_parent
from exconn.actors.order_messages import Reconcile, SetQueryActor, UserEvents
from exconn.actors.timers import Timers
from exconn.actors.tracked_send import TrackedSender
from exconn.delivery import Delivery
from exconn.logs import configure
from exconn.messages import (
    AccountRoute,
    AccountStreamError,
    BalanceUpdate,
    ConnectionStarted,
    Fill,
    GetStatus,
    OrderUpdate,
    PositionUpdate,
    UserStreamInit,
)
from exconn.model.enums import Market
from exconn.outbox import Outbox, Route, routes_of
from exconn.transport.backoff import Backoff
from exconn.transport.heartbeat import Beat, Heartbeat
from exconn.transport.rest import RestClient
from exconn.transport.ws import WsClosed, WsConnection
from exconn.venues.driver import ListenKeySteps, VenueDriver, driver_for, venue_rest_client

# A socket that lived this long was healthy: its loss starts the reconnect backoff anew.
HEALTHY_AFTER_SECONDS = 30.0
FRAMES_PER_DRAIN = 1024
LISTEN_KEY_UNKNOWN = -1125  # Binance: keepalive of a key the server no longer knows
# Which account topic kind each event goes to.
KIND_OF: dict[type, str] = {
    OrderUpdate: "orders",
    Fill: "fills",
    BalanceUpdate: "balances",
    PositionUpdate: "positions",
}


class Step(Enum):
    WAIT = "wait"  # handshake under way
    LIVE = "live"  # subscribed: events flow
    RESUBSCRIBE = "resubscribe"  # the venue ended the subscription (spot): send open_frames
    NEW_KEY = "new_key"  # the listenKey is gone (USD-M): new key, new socket
    RECONNECT = "reconnect"  # refused for a reason a new socket may cure (clock skew, ...)
    AUTH_FAILED = "auth_failed"  # the key was refused: report, exit, supervised restart


class Handshake:
    """What the handler's state means for the socket (pure). ``opened`` when open frames are
    sent; ``step`` after every batch of frames; ``timed_out`` when the ack timer fires."""

    def __init__(self, ack_timeout_s: float) -> None:
        self.ack_timeout_s = ack_timeout_s
        self.deadline: float | None = None
        self.live = False

    def opened(self, now: float) -> float:
        """Open frames went out at ``now``: the seconds the venue has to acknowledge them."""
        self.live = False
        self.deadline = now + self.ack_timeout_s
        return self.ack_timeout_s

    def closed(self) -> None:
        self.live = False
        self.deadline = None

    def step(self, handler: Any) -> Step:
        if handler.auth_error is not None:
            return Step.AUTH_FAILED
        if getattr(handler, "needs_listen_key", False):
            return Step.NEW_KEY
        if handler.subscribed:
            self.live = True
            self.deadline = None
            return Step.LIVE
        if handler.error is not None:
            return Step.RECONNECT
        if self.live:  # was subscribed, no longer is: the venue ended the subscription
            self.live = False
            return Step.RESUBSCRIBE
        return Step.WAIT

    def timed_out(self, now: float) -> bool:
        return self.deadline is not None and now >= self.deadline


def route_events(events: list[Any], routes: dict[str, tuple[Route, ...]], out: Outbox) -> None:
    """Each event to the subscribers of its account kind, in order (pure)."""
    for event in events:
        kind = KIND_OF.get(type(event))
        if kind is not None:
            subs = routes.get(kind)
            if subs:
                out.add(subs, event)


class UserStreamConnection(Actor):
    def __init__(self) -> None:
        super().__init__()
        tie_to_parent()  # at once: see MarketDataConnection
        self.init: UserStreamInit | None = None
        self.driver: VenueDriver = driver_for("binance")  # replaced by UserStreamInit's
        self.handler: Any = None
        self.credentials: Any = None  # exconn.venues.keys.Credentials, opened here only
        self.steps: ListenKeySteps | None = None
        self.rest: RestClient | None = None
        self.conn: WsConnection | None = None
        self.opened_at = 0.0
        self.handshake = Handshake(10.0)
        self.heartbeat: Heartbeat | None = None  # the open socket's liveness
        self.control_seen = 0  # the socket's ping/pong frames already counted as heard
        self.stalls = 0  # sockets closed because nothing was heard
        self.routes: dict[str, tuple[Route, ...]] = {}
        self.query: Any = None  # the exchange's OrderQuery (None: publish to routes directly)
        self.route: AccountRoute | None = None  # the last table, forwarded to the query
        self.route_told = False
        self.reconcile_requests = 0
        self.timers: Timers | None = None
        self.backoff = Backoff()
        self.frames = 0
        self.reconnects = 0
        self.key_renewals = 0  # listenKeys created after the first (USD-M)
        self.failed = False
        self.log = logger
        self.delivery = Delivery()
        self.sender = TrackedSender(self, self.delivery)

    # Every exit path returns the watch: a bare return or an exception would clear it.
    def receiveMessage(self, message: Any, sender: Any) -> Any:
        try:
            self._dispatch(message, sender)
        except Exception:
            self.log.exception("user stream actor: unexpected error handling {}", type(message))
        return self._watch()

    def _watch(self) -> ThespianWatch | None:
        conn = self.conn
        if conn is not None and conn.connected:
            with contextlib.suppress(WsClosed):
                return ThespianWatch([conn.fileno()])
        return None

    def _dispatch(self, message: Any, sender: Any) -> None:
        if isinstance(message, WatchMessage):
            self._on_readable()
        elif isinstance(message, WakeupMessage):
            self._on_wakeup(message.payload)
        elif isinstance(message, AccountRoute):
            self.routes = {k: routes_of(v) for k, v in message.routes.items()}
            self.route, self.route_told = message, False
            self._to_query(None)
        elif isinstance(message, SetQueryActor):
            self.query, self.route_told = message.query, False
            self._to_query(None)
        elif isinstance(message, UserStreamInit):
            self._on_init(message, sender)
        elif isinstance(message, GetStatus):
            self.send(sender, self._status())
        elif isinstance(message, ActorExitRequest):
            self._close()

    # -- set-up ---------------------------------------------------------------------------------
    def _on_init(self, msg: UserStreamInit, sender: Any) -> None:
        configure(msg.log_level)
        self.init = msg
        self.log = logger.bind(exchange=msg.exchange, market=",".join(msg.markets), stream="user")
        self.sender.log = self.log
        self.timers = Timers(self)
        self.backoff = Backoff(initial=msg.backoff_initial_s, maximum=msg.backoff_max_s)
        self.handshake = Handshake(msg.ack_timeout_s)
        self.driver = driver_for(msg.exchange)
        self.send(sender, ConnectionStarted(name=msg.name, pid=os.getpid()))
        try:
            self.credentials = msg.credentials.open()
        except errors.ConfigError as exc:
            self._auth_failed(exc)
            return
        self.handler = self.driver.user_stream_handler(msg.markets, msg.instruments)
        if len(msg.markets) == 1:
            self.steps = self.driver.listen_key_steps(Market(msg.markets[0]))
        # listenKey requests (USD-M), or the venue's time for the signed open frames: the
        # same clock-offset estimate as the REST client's signed requests.
        self.rest = venue_rest_client(
            msg.exchange, msg.markets[0], msg.rest_url, budget_dir=msg.rest_budget_dir
        )
        self._connect()

    # -- socket ---------------------------------------------------------------------------------
    def _connect(self) -> None:
        init, handler, timers = self.init, self.handler, self.timers
        if init is None or handler is None or timers is None or self.conn is not None:
            return
        if self.steps is not None and handler.needs_listen_key and not self._new_listen_key():
            return
        self._sync_clock()
        url = self.driver.user_connect_url(handler, init.private_url)
        conn = WsConnection(url, connect_timeout=init.ack_timeout_s)
        try:
            conn.connect()
        except WsClosed as exc:
            reason = self._safe(exc)
            if self.steps is not None:
                # The venue refuses a socket for a key it no longer knows (USD-M: HTTP 400
                # -1125): ask for a key again (the venue returns the live one if it still is).
                handler.listen_key_lost()
            self._retry(f"connect failed: {reason}")
            return
        self.conn = conn
        self.opened_at = time.monotonic()
        self.log.info("private stream connected")
        interval = init.heartbeat_s
        if self.driver.user_ping_interval_s is not None:  # never less often than the venue asks
            interval = min(interval, self.driver.user_ping_interval_s)
        self.heartbeat = Heartbeat(interval, init.silence_s, self.opened_at)
        self.control_seen = 0
        timers.start("heartbeat", self.heartbeat.next_check(self.opened_at))
        self._open_frames()

    def _sync_clock(self) -> None:
        """Estimate the venue's clock before signing open frames (Bybit's auth ``expires``,
        Binance's subscribe ``timestamp``): a local clock off by more than the venue's slack
        would have every auth refused. USD-M's listenKey socket signs nothing."""
        rest = self.rest
        if rest is None or self.steps is not None:
            return
        if not rest.clock.needs_sync(time.time() * 1000, rest.resync_interval * 1000):
            return
        try:
            offset = rest.sync_clock()
        except errors.ExconnError as exc:
            self.log.warning("venue time unavailable, signing with the last estimate: {}", exc)
            return
        self.log.debug("venue clock offset {:.1f} ms", offset)

    def _server_now_ms(self) -> int:
        now_ms = time.time_ns() / 1_000_000
        return int(now_ms) if self.rest is None else self.rest.clock.timestamp_ms(now_ms)

    def _open_frames(self) -> None:
        assert self.handler is not None and self.timers is not None
        frames = self.handler.open_frames(self.credentials, self._server_now_ms())
        for frame in frames:
            if not self._send_frame(frame):
                return
        self.timers.start("ack", self.handshake.opened(time.monotonic()))
        self._after_frames(Outbox())  # USD-M: subscribed by the URL already

    def _send_frame(self, frame: bytes) -> bool:
        conn = self.conn
        if conn is None:
            return False
        try:
            conn.send_text(frame.decode())
        except WsClosed as exc:
            self._lost(self._safe(exc))
            return False
        return True

    def _new_listen_key(self) -> bool:
        """Create a listenKey over REST; False when it failed (retried, or reported)."""
        assert self.steps is not None and self.rest is not None and self.handler is not None
        req = self.steps.create(self.credentials)
        try:
            body = self.rest.request(
                req.method, req.path, req.params, self.steps.decoder, api_key_headers=req.headers
            )
            first = self.handler.listen_key is None
            self.handler.on_listen_key(bytes(body))
            self.key_renewals += 0 if first else 1
        except errors.AuthError as exc:
            self._auth_failed(exc)
            return False
        except errors.ExconnError as exc:
            self._retry(f"listenKey request failed: {exc}")
            return False
        assert self.timers is not None
        self.timers.start("keepalive", self.steps.keepalive_interval_s)
        return True

    def _keepalive(self) -> None:
        if self.steps is None or self.rest is None or self.handler is None:
            return
        assert self.timers is not None
        req = self.steps.keepalive(self.credentials)
        try:
            self.rest.request(
                req.method, req.path, req.params, self.steps.decoder, api_key_headers=req.headers
            )
        except errors.AuthError as exc:
            self._auth_failed(exc)
            return
        except errors.ExchangeError as exc:
            if exc.code == LISTEN_KEY_UNKNOWN:
                self.log.warning("listenKey unknown to the venue: a new key and a new socket")
                self.handler.listen_key_lost()
                self._drop_socket()
                self.timers.start("reconnect", 0)
                return
            self.log.warning("listenKey keepalive failed: {}", exc)
        except errors.ExconnError as exc:
            self.log.warning("listenKey keepalive failed: {}", exc)
        self.timers.start("keepalive", self.steps.keepalive_interval_s)

    def _on_readable(self) -> None:
        conn, handler = self.conn, self.handler
        if conn is None or handler is None:
            return
        out = Outbox()
        try:
            frames, more = conn.read_available(FRAMES_PER_DRAIN)
        except WsClosed as exc:
            self._lost(self._safe(exc))
            return
        if self.heartbeat is not None and (
            frames or conn.control_frames_received != self.control_seen
        ):
            self.control_seen = conn.control_frames_received
            self.heartbeat.heard(time.monotonic())
        events: list[Any] = []
        for raw in frames:
            self.frames += 1
            events += handler.on_frame(raw)
        if self.query is not None:
            if events:
                self._to_query(UserEvents(tuple(events)))
        else:
            route_events(events, self.routes, out)
        self._after_frames(out)
        if more and self.conn is not None and self.timers is not None:
            self.timers.ensure("drain", 0)

    def _after_frames(self, out: Outbox) -> None:
        if out:
            self.sender.publish(out)
        if self.handler is None or self.conn is None:
            return
        was_live = self.handshake.live
        step = self.handshake.step(self.handler)
        if step is Step.LIVE and self.timers is not None:
            self.timers.cancel("ack")
            if not was_live and self.query is not None:
                # (Re)subscribed: what the venue sent meanwhile comes back by REST. Sent after
                # this socket's earlier events, so the query sees them first (one sender).
                self.reconcile_requests += 1
                self._to_query(Reconcile())
        elif step is Step.AUTH_FAILED:
            self._auth_failed(self.handler.auth_error)
        elif step is Step.NEW_KEY:
            self.log.warning("listenKey expired: a new key and a new socket")
            self._drop_socket()
            assert self.timers is not None
            self.timers.start("reconnect", 0)
        elif step is Step.RECONNECT:
            if isinstance(self.handler.error, errors.ClockSkew) and self.rest is not None:
                self.rest.clock.invalidate()  # the next socket signs with a fresh estimate
            self._lost(f"handshake refused: {self.handler.error}")
        elif step is Step.RESUBSCRIBE:
            self.log.warning("the venue ended the subscription: subscribing again")
            self._open_frames()

    def _to_query(self, message: Any) -> None:
        """To the OrderQuery, the newest routing table first (one sender: in order), so the
        query publishes these events to whoever had subscribed when they were read."""
        if self.query is None:
            return
        if not self.route_told and self.route is not None:
            self.send(self.query, self.route)
            self.route_told = True
        if message is not None:
            self.send(self.query, message)

    def _drop_socket(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()
        if self.handler is not None:
            self.handler.on_disconnect()
        self.handshake.closed()
        self.heartbeat = None
        if self.timers is not None:
            self.timers.cancel("ack")
            self.timers.cancel("heartbeat")

    def _lost(self, reason: str) -> None:
        if self.conn is not None and time.monotonic() - self.opened_at > HEALTHY_AFTER_SECONDS:
            self.backoff.reset()
        self._drop_socket()
        self._retry(f"private stream lost: {reason}")

    def _retry(self, reason: str) -> None:
        if self.failed or self.timers is None:
            return
        delay = self.backoff.next_delay()
        self.reconnects += 1
        self.log.warning("{}; reconnecting in {:.1f} s", reason, delay)
        self.timers.start("reconnect", delay)

    def _auth_failed(self, error: Any) -> None:
        """The key was refused: every account subscriber learns it, then this actor exits and
        its supervisor restarts it with backoff."""
        if self.failed:
            return
        self.failed = True
        init = self.init
        exchange = init.exchange if init else ""
        market = ",".join(init.markets) if init else ""
        self.log.error("private stream: credentials refused: {}", error)
        notice = AccountStreamError(exchange=exchange, market=market, error=error)
        seen: set[str] = set()
        for routes in self.routes.values():
            for key, address in routes:
                if key not in seen:
                    seen.add(key)
                    self.send(address, notice)
        self._drop_socket()
        self.send(self.myAddress, ActorExitRequest())

    def _on_wakeup(self, payload: Any) -> None:
        if self.timers is None:
            return
        purpose = self.timers.fire(payload)
        if purpose == "drain":
            self._on_readable()
        elif purpose == "reconnect":
            self._connect()
        elif purpose == "ack":
            if self.conn is not None and self.handshake.timed_out(time.monotonic()):
                self._lost(f"no acknowledgement within {self.handshake.ack_timeout_s} s")
        elif purpose == "keepalive":
            self._keepalive()
        elif purpose == "heartbeat":
            self._heartbeat()

    def _heartbeat(self) -> None:
        """Ping the venue, or give up on a socket that has answered nothing for too long."""
        self._on_readable()  # frames already waiting count as heard, however busy the mailbox
        hb, timers = self.heartbeat, self.timers
        if hb is None or self.conn is None or timers is None:
            return
        now = time.monotonic()
        beat = hb.check(now)
        if beat is Beat.DEAD:
            self.stalls += 1
            self._lost(f"nothing heard for {hb.silent_for(now):.1f} s: the socket is stalled")
            return
        if beat is Beat.PING and not self._send_ping():
            return
        timers.start("heartbeat", hb.next_check(time.monotonic()))

    def _send_ping(self) -> bool:
        """The venue's own heartbeat (Bybit ``{"op":"ping"}``) or a WebSocket ping frame."""
        assert self.handler is not None
        frame = self.handler.ping_frame()
        if frame is not None:
            return self._send_frame(frame)
        conn = self.conn
        if conn is None:
            return False
        try:
            conn.send_ping()
        except WsClosed as exc:
            self._lost(self._safe(exc))
            return False
        return True

    def _safe(self, exc: Exception) -> str:
        """An error's text without the listenKey (the USD-M URL carries it)."""
        text = str(exc)
        key = getattr(self.handler, "listen_key", None)
        return text.replace(key, "<listenKey>") if key else text

    # -- status and shutdown ----------------------------------------------------------------------
    def _status(self) -> UserStreamStatus:
        h = self.handler
        return UserStreamStatus(
            name=self.init.name if self.init else "",
            pid=os.getpid(),
            connected=bool(self.conn and self.conn.connected),
            subscribed=bool(h and h.subscribed),
            frames=self.frames,
            reconnects=self.reconnects,
            malformed=h.malformed if h else 0,
            key_renewals=self.key_renewals,
            stalls=self.stalls,
        )

    def _close(self) -> None:
        self.failed = True  # no more reconnects
        conn = self.conn
        if conn is not None and self.handler is not None and conn.connected:
            for frame in self.handler.close_frames():
                with contextlib.suppress(WsClosed):
                    conn.send_text(frame.decode())
        self._drop_socket()
        self._close_listen_key()
        if self.rest is not None:
            self.rest.close()

    def _close_listen_key(self) -> None:
        """USD-M: end the key at the venue rather than leave it live for its last hour (the
        venue keeps pushing to it). Best effort: shutdown must not wait on a failing venue."""
        handler, steps, rest = self.handler, self.steps, self.rest
        if handler is None or steps is None or rest is None:
            return
        if getattr(handler, "listen_key", None) is None:
            return
        req = steps.close(self.credentials)
        try:
            rest.request(
                req.method, req.path, req.params, steps.decoder, api_key_headers=req.headers
            )
        except errors.ExconnError as exc:
            self.log.info("listenKey not closed at shutdown: {}", self._safe(exc))
        else:
            self.log.info("listenKey closed")


class UserStreamStatus:
    """Reply to GetStatus (plain class)."""

    def __init__(
        self,
        name: str,
        pid: int,
        connected: bool,
        subscribed: bool,
        frames: int,
        reconnects: int,
        malformed: int,
        key_renewals: int = 0,
        stalls: int = 0,
    ) -> None:
        self.name = name
        self.pid = pid
        self.connected = connected
        self.subscribed = subscribed
        self.frames = frames
        self.reconnects = reconnects
        self.malformed = malformed
        self.key_renewals = key_renewals
        self.stalls = stalls  # sockets given up because nothing at all was heard
