"""MarketDataConnection: owns one market-data WebSocket and delivers its events.

The socket is watched by Thespian (``ThespianWatch``), never by a thread: ``receiveMessage``
returns the watch on every path, or the feed would silently stall. Each readable event drains
everything available, runs it through the venue's ``StreamHandler`` and sends one ``EventBatch``
per subscriber.

Lifecycle (decisions in ``StreamHandler`` and ``exconn.transport.lifecycle``; this actor only
wires sockets and timers): a replacement socket (*candidate*) is opened before the 24 h cap,
on ``serverShutdown`` and when the liveness watchdog gives up on a silent stream; both sockets
are watched until the candidate has caught up, then the old one is closed. A lost socket is
reopened with backoff (1 s doubling to 60 s, jittered, forever) while subscribers keep their
books; SUBSCRIBE/UNSUBSCRIBE are paced per socket in a rolling window that counts pongs.
"""

from __future__ import annotations

import contextlib
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
from exconn.actors.fresh_stack import FreshStack
from exconn.actors.lifeline import tie_to_parent
from exconn.actors.md_messages import ConnectionSetup
from exconn.actors.timers import Timers
from exconn.actors.tracked_send import TrackedSender
from exconn.book.sync import SyncResult
from exconn.config import WsSettings
from exconn.delivery import Delivery
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
from exconn.transport.lifecycle import ControlPacer, Liveness
from exconn.transport.rest import RestClient
from exconn.transport.ws import WsClosed, WsConnection
from exconn.venues.driver import SUBSCRIBE, UNSUBSCRIBE, VenueDriver, driver_for, venue_rest_client

# A socket that lived this long was healthy: its loss starts the reconnect backoff anew.
HEALTHY_AFTER_SECONDS = 30.0
SNAPSHOT_ATTEMPTS_PER_DRAIN = 3
# REST backfill reads per call before the mailbox gets a look (a long gap is read page by page).
BACKFILL_ROUNDS_PER_CALL = 5
# Frames handled per drain: bounds the batch size and the time between two looks at the
# mailbox (route changes, status requests) when a flood keeps the socket readable.
FRAMES_PER_DRAIN = 2048


class Session:
    """One socket of this connection actor and what is paced or watched per socket."""

    def __init__(
        self, conn: WsConnection, settings: WsSettings, driver: VenueDriver, now: float
    ) -> None:
        self.conn = conn
        self.opened_at = now
        self.pacer = ControlPacer(settings.control_messages_per_s)
        self.pending: list[tuple[str, list[str]]] = []  # (subscribe/unsubscribe, streams)
        self.frames: list[str] = []  # the venue's control frames for them, waiting for the pacer
        self.liveness = Liveness(settings.stream_silence_s, now, driver.expected_cadence)
        self.pongs = 0  # pongs already recorded in the pacer


class MarketDataConnection(Actor):
    def __init__(self) -> None:
        super().__init__()
        # At once, not on ConnectionInit: a parent dying between creating this actor and
        # sending its init would otherwise leave it orphaned.
        tie_to_parent()
        self.hot_path = FreshStack()
        self.init: ConnectionInit | None = None
        self.settings = WsSettings()
        self.driver: VenueDriver = driver_for("binance")  # replaced by ConnectionInit's
        self.handler: Any = None  # the venue's StreamHandler
        self.active: Session | None = None
        self.candidate: Session | None = None  # replacement socket catching up (rotation)
        self.rotation_reason = ""
        self.rest: RestClient | None = None
        self.timers: Any = None
        self.backoff = Backoff()
        self.snapshot_backoff = Backoff(initial=0.5, maximum=30.0)
        self.request_id = 0
        self.frames = 0
        self.drains = 0
        self.rotations = 0
        self.log = logger
        self.delivery = Delivery(self.settings.subscriber_max_in_flight)
        self.sender = TrackedSender(self, self.delivery)

    # Every exit path returns the watch: a bare return or an exception would clear it.
    def receiveMessage(self, message: Any, sender: Any) -> Any:
        try:
            self._dispatch(message, sender)
        except Exception:
            self.log.exception("connection actor: unexpected error handling {}", type(message))
        return self._watch()

    def _watch(self) -> ThespianWatch | None:
        fds = []
        for sess in (self.active, self.candidate):  # both sockets while rotating
            if sess is not None and sess.conn.connected:
                with contextlib.suppress(WsClosed):
                    fds.append(sess.conn.fileno())
        return ThespianWatch(fds) if fds else None

    def _dispatch(self, message: Any, sender: Any) -> None:
        if isinstance(message, WatchMessage):
            self._on_readable()
        elif isinstance(message, SetRoute):
            self._on_route(message, sender)
        elif isinstance(message, WakeupMessage):
            self._on_wakeup(message.payload)
        elif isinstance(message, ConnectionSetup):
            self.settings = message.settings
            self._on_init(message.init, sender)
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
        self.delivery.max_in_flight = self.settings.subscriber_max_in_flight
        self.sender.log = self.log
        self.timers = Timers(self)
        self.backoff = Backoff(
            initial=self.settings.backoff_initial_s, maximum=self.settings.backoff_max_s
        )
        self.driver = driver_for(msg.exchange)
        self.handler = self.driver.stream_handler(Market(msg.market), msg.instruments)
        self.rest = venue_rest_client(
            msg.exchange,
            msg.market,
            msg.rest_url,
            # One budget per host for all of the system's processes: shards fetching
            # snapshots at once cannot overflow the IP's limit together.
            budget_dir=msg.rest_budget_dir,
        )
        if msg.rate_limits:
            self.rest.seed_limits(msg.rate_limits)
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
        sessions = [s for s in (self.active, self.candidate) if s is not None]
        if not sessions:
            if self.handler.streams and self.timers is not None:
                self.timers.ensure("reconnect", 0)
            return
        now = time.monotonic()
        for sess in sessions:
            if change.subscribe:
                sess.pending.append((SUBSCRIBE, change.subscribe))
            if change.unsubscribe:
                sess.pending.append((UNSUBSCRIBE, change.unsubscribe))
            sess.liveness.watch(self.handler.streams, now)
            self._flush_control(sess)

    # -- sockets --------------------------------------------------------------------------------
    def _open_session(self) -> Session | None:
        """Open a socket carrying every current stream (blocking, bounded by the connect
        timeout); None if it failed (the caller retries with backoff)."""
        assert self.init is not None and self.handler is not None
        streams = sorted(self.handler.streams)
        if not streams:
            return None
        conn = WsConnection(self.driver.connect_url(self.init.ws_url, streams))
        try:
            conn.connect()
        except WsClosed as exc:
            self.log.warning("connect failed: {}", exc)
            return None
        now = time.monotonic()
        sess = Session(conn, self.settings, self.driver, now)
        sess.liveness.watch(streams, now)
        if not self.driver.streams_in_url:
            sess.pending.append((SUBSCRIBE, streams))  # sent once the session is in place
        return sess

    def _connect(self) -> None:
        """Open the live socket after a loss (or the first time)."""
        sess = self._open_session()
        if sess is None:
            if self.handler is not None and self.handler.streams:
                delay = self.backoff.next_delay()
                self.log.warning("reconnecting in {:.1f} s", delay)
                self.timers.start("reconnect", delay)
            return
        self.active = sess
        self._arm_session_timers()
        self._flush_control(sess)
        self.log.info(
            "connected with {} streams", len(self.handler.streams if self.handler else ())
        )

    def _arm_session_timers(self) -> None:
        s = self.settings
        self.timers.start("age", max(0.0, s.max_connection_age_s - s.rotate_before_s))
        self.timers.ensure("liveness", s.stream_silence_s / 2)
        if self.driver.ping_interval_s is not None:
            self.timers.ensure("ping", self.driver.ping_interval_s)

    def _ping(self) -> None:
        """The venue's application-level keep-alive on every socket (Bybit: the server
        closes a socket that sent nothing for about 10 minutes)."""
        frame = self.driver.ping_frame()
        interval = self.driver.ping_interval_s
        if frame is None or interval is None:
            return
        out = Outbox()
        for sess in (self.active, self.candidate):
            if sess is not None and sess.conn.connected:
                try:
                    sess.conn.send_text(frame)
                except WsClosed as exc:
                    self._session_lost(sess, str(exc), out)
        self._publish(out)
        if self.active is not None or self.candidate is not None:
            self.timers.ensure("ping", interval)

    def _start_rotation(self, reason: str) -> None:
        """Make-before-break: open a replacement socket; the live one keeps delivering until
        the replacement has caught up (``_maybe_promote``)."""
        if self.candidate is not None or self.active is None or self.handler is None:
            return
        self.rotation_reason = reason
        sess = self._open_session()
        if sess is None:
            self.timers.start("rotate", self.backoff.next_delay())
            return
        self.log.info("rotating socket ({})", reason)
        self.candidate = sess
        self.handler.begin_candidate()
        self._flush_control(sess)
        self.timers.start("rotation_deadline", self.settings.rotation_timeout_s)

    def _maybe_promote(self, out: Outbox) -> None:
        if self.candidate is None or self.handler is None:
            return
        if self.active is None or self.handler.ready_to_promote():
            self._promote(out)

    def _promote(self, out: Outbox) -> None:
        assert self.handler is not None and self.candidate is not None
        old, self.active, self.candidate = self.active, self.candidate, None
        if old is not None:
            old.conn.close()
        self.handler.promote(out)
        self.timers.cancel("rotation_deadline")
        self.rotations += 1
        self._arm_session_timers()
        self._after_socket_change()

    def _after_socket_change(self) -> None:
        if self.handler is not None and self.handler.held_symbols():
            self.timers.ensure("held", self.settings.held_book_s)

    def _on_readable(self) -> None:
        handler = self.handler
        if handler is None:
            return
        out = Outbox()
        now = time.monotonic()
        more_any = False
        for sess in (self.active, self.candidate):
            if sess is None or (sess is not self.active and sess is not self.candidate):
                continue  # replaced earlier in this pass
            try:
                frames, more = sess.conn.read_available(FRAMES_PER_DRAIN)
            except WsClosed as exc:
                self._session_lost(sess, str(exc), out)
                continue
            self._count_pongs(sess, now)
            if frames:
                self.frames += len(frames)
                self.drains += 1
                self.hot_path.call(
                    handler.on_frames,
                    frames,
                    out,
                    candidate=sess is self.candidate,
                    seen=sess.liveness.last_seen,
                    now=now,
                )
            more_any = more_any or more
        self._resubscribe_broken(handler)
        if handler.shutdown_notices:
            handler.shutdown_notices = 0
            self._start_rotation("serverShutdown")
        self._maybe_promote(out)
        self._sync_books(out)
        self._backfill_trades(out)
        self._publish(out)
        if more_any and (self.active is not None or self.candidate is not None):
            # A timer, not a message to itself: Thespian hands a self-addressed message straight
            # back without reading its sockets, so during a flood no transmit acknowledgement,
            # route change or status request would get in between two drains.
            self.timers.ensure("drain", 0)

    def _resubscribe_broken(self, handler: Any) -> None:
        """Streams the venue repairs by subscribing again (a Bybit book gap: the new
        subscription starts with a snapshot)."""
        streams = self.driver.streams_to_resubscribe(handler)
        sess = self.active
        if streams and sess is not None:
            sess.pending.extend(self.driver.resubscribe_actions(streams))
            self._flush_control(sess)

    def _count_pongs(self, sess: Session, now: float) -> None:
        sent = sess.conn.pongs_sent - sess.pongs
        if sent:
            sess.pacer.record(now, sent)
            sess.pongs += sent

    def _session_lost(self, sess: Session, reason: str, out: Outbox) -> None:
        assert self.handler is not None
        sess.conn.close()
        if time.monotonic() - sess.opened_at > HEALTHY_AFTER_SECONDS:
            self.backoff.reset()
        if sess is self.candidate:
            self.log.warning("replacement socket lost: {}", reason)
            self.candidate = None
            self.handler.drop_candidate()
            self.timers.cancel("rotation_deadline")
            self.timers.start("rotate", self.backoff.next_delay())
            return
        self.log.warning("market-data socket lost: {}", reason)
        self.active = None
        self.handler.on_disconnect(f"disconnected: {reason}", out, announce=self.candidate is None)
        if self.candidate is not None:
            self._promote(out)  # the replacement is already streaming: no reconnect needed
            return
        self.timers.start("reconnect", self.backoff.next_delay())
        self._after_socket_change()

    def _sync_books(self, out: Outbox) -> None:
        """Fetch snapshots for books that are buffering. Blocking but bounded: frames that
        arrive meanwhile wait in the socket, which is exactly the buffering the rules ask for."""
        handler, rest, init = self.handler, self.rest, self.init
        assert handler is not None and rest is not None and init is not None
        market = Market(init.market)
        for venue_symbol in handler.symbols_needing_snapshot():
            req = self.driver.snapshot_request(market, venue_symbol, init.depth_limit)
            if req is None:
                continue  # the venue sends its snapshots in the stream
            for _ in range(SNAPSHOT_ATTEMPTS_PER_DRAIN):
                try:
                    snapshot = rest.get(req.path, req.params, req.decoder)
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

    def _backfill_trades(self, out: Outbox) -> None:
        """Trades and aggTrades a socket change (or the server) missed come from REST, before
        the live ones held behind them. The handler says what to read; a read may be one page
        of several, so this goes round until nothing is held, a bounded number of times per
        call (then a timer continues, after a look at the mailbox)."""
        handler, rest = self.handler, self.rest
        assert handler is not None and rest is not None
        for _ in range(BACKFILL_ROUNDS_PER_CALL):
            requests = handler.backfills()
            if not requests:
                return
            for req in requests:
                try:
                    rows = rest.get(req.path, req.params, req.decoder)
                except (errors.ExconnError, ValueError) as exc:
                    delay = self.snapshot_backoff.next_delay()
                    self.log.bind(symbol=req.venue_symbol).warning(
                        "{} backfill failed ({}); retrying in {:.1f} s", req.kind, exc, delay
                    )
                    self.timers.ensure("trades", delay)
                    return
                lost = handler.on_backfill(req.kind, req.venue_symbol, rows, out)
                if lost:
                    self.log.bind(symbol=req.venue_symbol).error(
                        "{} {} missed are older than the REST window", lost, req.kind
                    )
        self.timers.ensure("trades", 0.0)

    # -- control messages -----------------------------------------------------------------------
    def _flush_control(self, sess: Session) -> None:
        conn = sess.conn
        if not conn.connected:
            return
        assert self.handler is not None
        # The venue writes the frames (JSON shape, streams per frame); the ids are this actor's.
        for action, streams in sess.pending:
            frames = self.driver.control_frames(self.handler, action, streams, self.request_id + 1)
            self.request_id += len(frames)
            sess.frames.extend(frames)
        sess.pending.clear()
        while sess.frames:  # bounded: each pass sends one frame or returns
            now = time.monotonic()
            wait = sess.pacer.delay(now)
            if wait > 0:
                self.timers.ensure("pace", wait)
                return
            body = sess.frames.pop(0)
            try:
                conn.send_text(body)
            except WsClosed as exc:
                out = Outbox()
                self._session_lost(sess, str(exc), out)
                self._publish(out)
                return
            sess.pacer.record(now)

    def _on_wakeup(self, payload: Any) -> None:
        if self.timers is None:
            return
        purpose = self.timers.fire(payload)
        out = Outbox()
        if purpose == "drain":
            self._on_readable()
        elif purpose == "reconnect":
            if self.active is None and self.candidate is None:
                self._connect()
        elif purpose == "pace":
            for sess in (self.active, self.candidate):
                if sess is not None:
                    self._flush_control(sess)
        elif purpose == "snapshot":
            self._sync_books(out)
        elif purpose == "trades":
            self._backfill_trades(out)
        elif purpose == "age":
            self._start_rotation("connection age")
        elif purpose == "rotate":
            self._start_rotation(self.rotation_reason or "retry")
        elif purpose == "rotation_deadline":
            if self.candidate is not None:
                self.log.warning("replacement socket did not catch up in time; switching")
                self._promote(out)
                self._sync_books(out)
                self._backfill_trades(out)
        elif purpose == "liveness":
            self._check_liveness()
        elif purpose == "ping":
            self._ping()
        elif purpose == "held" and self.handler is not None:
            self.handler.expire_held("no data after a socket change", out)
        self._publish(out)

    def _check_liveness(self) -> None:
        sess = self.active
        if sess is not None:
            verdict = sess.liveness.check(time.monotonic())
            if verdict.resubscribe:
                self.log.warning("silent streams, subscribing again: {}", verdict.resubscribe)
                sess.pending.extend(self.driver.resubscribe_actions(verdict.resubscribe))
                self._flush_control(sess)
            if verdict.replace:
                self._start_rotation("silent stream")
        if self.active is not None:
            self.timers.ensure("liveness", self.settings.stream_silence_s / 2)

    # -- output ---------------------------------------------------------------------------------
    def _publish(self, out: Outbox) -> None:
        if out:
            # Flow-controlled per subscriber: a slow one gets its book updates conflated
            # instead of blocking everyone behind Thespian's transmit queue.
            self.sender.publish(out)

    def _info(self) -> ConnectionInfo:
        init, handler = self.init, self.handler
        return ConnectionInfo(
            exchange=init.exchange if init else "",
            market=init.market if init else "",
            name=init.name if init else "",
            pid=os.getpid(),
            streams=tuple(sorted(handler.streams)) if handler else (),
            connected=bool(self.active and self.active.conn.connected),
            malformed_frames=handler.malformed if handler else 0,
            resyncs=handler.resyncs if handler else 0,
            frames=self.frames,
            drains=self.drains,
            conflated_events=self.delivery.conflated,
            conflated_by_subscriber=self.delivery.conflated_by_subscriber(),
            flow_control=self.sender.flow_control,
        )

    def _close(self) -> None:
        for sess in (self.active, self.candidate):
            if sess is not None:
                sess.conn.close()
        self.active = self.candidate = None
        if self.rest is not None:
            self.rest.close()
        self.hot_path.close()
