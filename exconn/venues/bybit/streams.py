"""Bybit V5 public stream handling: which topic carries which exconn topic, and what each frame
means for the books and subscribers (pure: the connection actor does the I/O around it).

Channel table (bybit.md §6.1, ``urls.stream_for``): ``book`` -> ``orderbook.<depth>.<s>``
(default depth per category, ``urls.BOOK_DEPTH``), ``trades`` -> ``publicTrade.<s>``, ``bbo`` ->
``orderbook.1.<s>`` (``Bbo``), ``ticker`` -> ``tickers.<s>`` (``Ticker24h``), ``mark`` ->
``tickers.<s>`` on linear (``MarkPrice``: the linear ticker carries mark, index and funding),
``kline_<interval>`` -> ``kline.<bybit interval>.<s>`` (``Kline``). ``ticker`` and ``mark``
share one topic: it stays subscribed while either has a subscriber.

What every venue shares lives beside the venue folders and is not repeated here: the handler's
state and counters (``venues.stream_handler``), the book topic across socket changes and its
events (``venues.book_feed``), reference-counted streams (``venues.subscriptions``),
malformed-frame counting (``venues.malformed``) and the REST read of a backfill
(``venues.backfill``).

What differs from Binance (``exconn.venues.binance.streams``, same public surface):
- Topics are subscribed after connecting: ``control_frames("subscribe", streams, first_id)``
  builds ``{"op":"subscribe","args":[...],"req_id":".."}`` frames, at most
  ``urls.max_args_per_request`` args each (10 on spot). The heartbeat is client-driven:
  send ``ping_frame()`` every ``urls.PING_INTERVAL_S``; pongs and other op replies are
  recognised here (``pongs``, ``last_pong``, ``failed_requests``), never counted malformed.
- Snapshots come in-stream (the first message of a book topic), so ``symbols_needing_snapshot``
  is always empty. A gap, a delta with no snapshot, or a level that does not parse puts the
  topic in ``streams_to_resubscribe()``: the actor unsubscribes and subscribes it again (Bybit
  refuses to subscribe a topic it already holds), and the fresh snapshot rebuilds the book.
  While the snapshot is awaited a topic is not requested again, unless
  ``RESUBSCRIBE_AFTER_DELTAS`` deltas still arrive without one (the request was lost).
- Linear tickers are a snapshot then deltas of changed fields: they are merged into the full
  state before ``Ticker24h``/``MarkPrice`` are emitted (each only when one of its own fields
  changed). Spot tickers are snapshots.
- ``orderbook.1`` is snapshot-only and re-pushes an unchanged snapshot (same ``u``) every 3 s:
  a ``Bbo`` is delivered when ``u`` moves, the repeat only feeds the liveness watchdog.

Socket changes never show to subscribers as a gap or a duplicate:
- A replacement socket runs as a *candidate* next to the live one (make-before-break). It
  subscribes everything and receives its own snapshots; its books are kept apart
  (``next_sync``) until ``ready_to_promote()``: every live book has a candidate book at the same
  update id or later (ids count messages of a depth topic, so both sockets see the same ones).
  ``promote()`` makes the candidate live; subscribers get one catch-up ``BookDelta`` from the
  book they hold to the candidate's (empty when they are equal), never a reset. A candidate
  still behind (promotion forced by the actor's deadline) continues the held book as soon as
  it catches up.
- On a lost socket the book subscribers hold is kept (``held``, ``BookStale`` announced); the
  next socket's snapshot continues it with one catch-up ``BookDelta`` when its id is at or past
  the held one, else (``u`` restarted) replaces it with a ``BookSnapshot``. ``expire_held``
  resets books no socket took over in time.
- Trades: publicTrade ids are strings (UUIDs on linear), with no order to check continuity by,
  so de-duplication uses time and id (``TradeTape``): a trade is new unless its id was
  delivered within the last ``TRADE_WINDOW_MS`` of trade time, or it is older than that window
  behind the newest trade delivered. Memory is the ids of one second of trades, not a history;
  it relies on Bybit pushing a symbol's trades in execution order on each socket (the window
  absorbs ties and small reorderings). The overlap of a candidate socket is removed this way.
  After a lost socket, or a promoted candidate that carried no trade the old socket
  delivered (no overlap is proven: the old one may have stalled), trades the gap may have
  swallowed are fetched from REST
  (``symbols_needing_trades`` / ``on_rest_trades``, matched the same way) before the new
  socket's trades, held meanwhile, are delivered.
- bbo, ticker, mark and kline are states, not histories: a candidate's are not delivered; its
  ticker state (linear deltas relate to *its* snapshot) and level-1 book are taken over at
  promotion.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec

from exconn.book.sync import BookSync, SyncResult, SyncRules
from exconn.messages import Bbo
from exconn.model.enums import Market
from exconn.model.instruments import Instrument
from exconn.outbox import Outbox, Route, routes_of
from exconn.venues.backfill import Backfill
from exconn.venues.book_feed import BookFeed
from exconn.venues.bybit import urls
from exconn.venues.bybit.book_sync import RESTART_ID, RULES, replaces_book
from exconn.venues.bybit.parse import (
    EXCHANGE,
    MARK_FIELDS,
    TICKER_FIELDS,
    book_ts_ms,
    encode_trade,
    merge_ticker,
    ms_to_utc,
    parse_kline,
    parse_mark_price,
    parse_rest_trade,
    parse_ticker,
)
from exconn.venues.bybit.wire import (
    CONTROL,
    KLINE,
    ORDERBOOK,
    OTHER,
    TICKER,
    TRADE,
    CommandData,
    Envelope,
    KlineMessage,
    OpReply,
    OrderbookMessage,
    PublicTrade,
    PublicTradeMessage,
    RecentTradesResult,
    RestTrade,
    TickerData,
    TickerMessage,
    frame_class,
    kline_decoder,
    op_reply_decoder,
    orderbook_decoder,
    public_trade_decoder,
    recent_trades_decoder,
    ticker_decoder,
)
from exconn.venues.stream_handler import BaseStreamHandler
from exconn.venues.subscriptions import RouteChange, resolve_topic

RESUBSCRIBE_AFTER_DELTAS = 200  # deltas seen with no snapshot after asking: ask again
TRADE_WINDOW_MS = 1000
MAX_PENDING_ACKS = 1000
SNAPSHOT = "snapshot"
PONG = "pong"
_DECODERS: dict[int, msgspec.json.Decoder[Any]] = {
    ORDERBOOK: orderbook_decoder,
    TRADE: public_trade_decoder,
    TICKER: ticker_decoder,
    KLINE: kline_decoder,
}


def reply_kind(reply: OpReply) -> str:
    """``"pong"``, ``"subscribe"``, ``"unsubscribe"``, ``"auth"`` (or another op) for a control
    reply. Spot and linear answer a ping with ``op == "ping"`` and ``ret_msg == "pong"``;
    private and option channels with ``op == "pong"`` (bybit.md §6); option/spread subscribe
    acks carry ``type == "COMMAND_RESP"`` and no op."""
    if reply.op == PONG or reply.ret_msg == PONG or reply.op == "ping":
        return PONG
    if reply.op is None and reply.type == "COMMAND_RESP":
        return "subscribe"
    return reply.op or "unknown"


def _starts_with_snapshot(stream: str) -> bool:
    # Book and ticker topics open with a snapshot that later messages build on.
    return stream.startswith(("orderbook.", "tickers."))


def _scale(step: Decimal) -> int:
    """Decimals of a tick or step as the instrument lists it ("0.10" -> 2): Bybit prints prices
    and sizes with that many, which keeps ``OrderBook``'s fast parse path."""
    exponent = step.as_tuple().exponent
    if not step or not isinstance(exponent, int):
        return 8
    return max(0, -exponent)


class TradeTape:
    """De-duplicates one symbol's trades across sockets by time and id (module docstring).

    ``offer`` answers for a live trade; after a lost socket (``gap_since`` set) the next live
    trade starts a hold that ``backfill`` resolves with REST trades."""

    __slots__ = (
        "_ids",
        "_recent",
        "gap_since",
        "hold",
        "last",
        "last_id",
        "possibly_lost",
        "window_ms",
    )

    def __init__(self, window_ms: int = TRADE_WINDOW_MS) -> None:
        self.window_ms = window_ms
        self.last: int | None = None  # newest trade time delivered (ms)
        self.last_id: str | None = None  # the last trade delivered at that time
        self._ids: set[str] = set()  # ids delivered within the window
        self._recent: deque[tuple[int, str]] = deque()  # (time, id) of those, oldest first
        self.gap_since: int | None = None  # trades after this time may have been missed
        self.hold: list[PublicTrade] | None = None  # live trades waiting behind a backfill
        self.possibly_lost = 0  # backfills whose REST window did not reach back far enough

    def offer(self, trade: PublicTrade) -> bool:
        """True: deliver ``trade`` now. False: a duplicate (dropped) or held for a backfill."""
        if self.hold is not None:
            self.hold.append(trade)
            return False
        if self.gap_since is not None:
            self.hold = [trade]
            return False
        return self.accept(trade.i, trade.T)

    def delivered(self, trade_id: str) -> bool:
        """True if ``trade_id`` was delivered within the window of the newest trade."""
        return trade_id in self._ids

    def accept(self, trade_id: str, ts: int) -> bool:
        """Record a trade about to be delivered; False if it was delivered already."""
        last = self.last
        if last is not None and (ts < last - self.window_ms or trade_id in self._ids):
            return False
        self._ids.add(trade_id)
        recent = self._recent
        recent.append((ts, trade_id))
        if last is None or ts >= last:
            self.last_id = trade_id
        if last is None or ts > last:
            self.last = ts
            floor = ts - self.window_ms
            while recent[0][0] < floor:
                self._ids.discard(recent.popleft()[1])
        return True

    def backfill(self, rows: Sequence[RestTrade]) -> tuple[list[RestTrade], list[PublicTrade]]:
        """Resolve a hold with REST trades (any order): what to deliver, oldest first."""
        held = self.hold or []
        since = self.gap_since
        self.hold = None
        self.gap_since = None
        # Stable sort: REST lists newest first, so reversing keeps same-millisecond order.
        ordered = sorted(reversed(rows), key=lambda r: int(r.time))
        # Rows up to the last trade delivered are older in the venue's own order, even those
        # within the window that were never delivered (before the subscription started).
        ids = [r.execId for r in ordered]
        newer = ordered[ids.index(self.last_id) + 1 :] if self.last_id in ids else ordered
        rest = [r for r in newer if self.accept(r.execId, int(r.time))]
        live = [t for t in held if self.accept(t.i, t.T)]
        if since is not None and ordered and int(ordered[0].time) > since:
            # The REST window starts after the last trade delivered: trades in between, if
            # there were any, are lost (their count is unknowable from string ids).
            self.possibly_lost += 1
        return rest, live

    def reset(self) -> None:
        self.last = None
        self.last_id = None
        self._ids.clear()
        self._recent.clear()
        self.gap_since = None
        self.hold = None


@dataclass(slots=True, kw_only=True, eq=False)
class SymbolFeed(BookFeed):
    """Everything the handler keeps for one venue symbol: the book topic (``BookFeed``;
    a candidate's ``next_sync`` loads its own snapshots here) and the other kinds."""

    book_stream: str
    bbo_stream: str
    ticker_stream: str
    trade_routes: tuple[Route, ...] = ()
    bbo_routes: tuple[Route, ...] = ()
    ticker_routes: tuple[Route, ...] = ()
    mark_routes: tuple[Route, ...] = ()
    kline_routes: dict[str, tuple[Route, ...]] = field(default_factory=dict)  # by stream
    next_gap: bool = False  # the candidate's book broke: resubscribe after promotion
    tape: TradeTape = field(default_factory=TradeTape)
    next_trades: list[PublicTrade] = field(default_factory=list)
    bbo: BookSync | None = None  # level-1 book of the live socket
    next_bbo: BookSync | None = None
    bbo_u: int | None = None  # update id of the last Bbo delivered
    ticker: TickerData | None = None  # merged ticker of the live socket
    next_ticker: TickerData | None = None


class StreamHandler(BaseStreamHandler[SymbolFeed]):
    """Decodes public V5 frames, keeps the books in sync, emits model events."""

    exchange = EXCHANGE

    def __init__(
        self,
        market: Market,
        instruments: Iterable[Instrument],
        *,
        book_depth: int | None = None,
        rules: SyncRules = RULES,
    ) -> None:
        super().__init__(market, instruments)
        depth = urls.book_depth(self.market) if book_depth is None else book_depth
        if urls.check_depth(self.market, depth) == urls.BBO_DEPTH:
            raise ValueError("bybit: book depth 1 is the bbo topic; pick 50, 200 or 1000")
        self.book_depth = depth
        self._rules = rules
        self._by_stream: dict[str, SymbolFeed] = {}
        self._awaiting: set[str] = set()  # snapshot streams whose snapshot is still to come
        self._waiting: dict[str, int] = {}  # deltas seen on an awaiting stream
        self._resubscribe: dict[str, None] = {}  # ordered set of streams to resubscribe
        self._sent: dict[str, tuple[str, ...]] = {}  # subscribe req_id -> its streams
        self._confirmed: set[str] = set()  # streams the candidate socket proved it carries
        # Bybit sends no shutdown notice: ``shutdown_notices`` stays 0.
        self.pongs = 0
        self.last_pong: float | None = None
        self.failed_requests = 0

    # -- routes ---------------------------------------------------------------------------------
    def set_route(self, topic: str, subscribers: Sequence[Any], out: Outbox) -> RouteChange:
        """Route a concrete topic to ``subscribers`` (empty closes it). Raises ValueError or
        exconn.errors.UnknownSymbol for a topic this connection cannot serve."""
        t, venue_symbol = resolve_topic(topic, EXCHANGE, self.market_name, self.symbols)
        stream = urls.stream_for(t.kind, venue_symbol, self.market, self.book_depth)
        feed = self._feed(venue_symbol)
        routes = routes_of(subscribers)
        change = RouteChange()
        opening = bool(routes) and stream not in self.streams
        if t.kind == "book":
            feed.route(routes, out)
        elif t.kind == "trades":
            feed.trade_routes = routes
            if not routes:
                feed.tape.reset()
                feed.next_trades = []
        elif t.kind == "bbo":
            feed.bbo_routes = routes
            if opening or not routes:
                feed.bbo = feed.new_sync() if routes else None
                feed.next_bbo = None
                feed.bbo_u = None
        elif t.kind == "ticker":
            feed.ticker_routes = routes
        elif t.kind == "mark":
            feed.mark_routes = routes
        else:  # kline_<interval> (stream_for refused every other kind)
            if routes:
                feed.kline_routes[stream] = routes
            else:
                feed.kline_routes.pop(stream, None)
        if routes:
            if self._refs.add(stream, topic):
                self._by_stream[stream] = feed
                if _starts_with_snapshot(stream):
                    self._awaiting.add(stream)
                if stream == feed.ticker_stream:
                    feed.ticker = feed.next_ticker = None
                change.subscribe.append(stream)
        elif self._refs.remove(stream, topic):
            self._by_stream.pop(stream, None)
            self._forget(stream)
            if stream == feed.ticker_stream:
                feed.ticker = feed.next_ticker = None
            change.unsubscribe.append(stream)
        return change

    def _forget(self, stream: str) -> None:
        self._awaiting.discard(stream)
        self._waiting.pop(stream, None)
        self._resubscribe.pop(stream, None)

    def _feed(self, venue_symbol: str) -> SymbolFeed:
        feed = self.feeds.get(venue_symbol)
        if feed is None:
            inst = self._instruments[venue_symbol]
            feed = SymbolFeed(
                instrument=inst,
                exchange=EXCHANGE,
                market=self.market_name,
                rules=self._rules,
                price_scale=_scale(inst.tick_size),
                qty_scale=_scale(inst.step_size),
                # Deltas before an in-stream snapshot are never replayed: keep only a few.
                max_buffer=RESUBSCRIBE_AFTER_DELTAS,
                book_stream=urls.orderbook_stream(venue_symbol, self.book_depth),
                bbo_stream=urls.orderbook_stream(venue_symbol, urls.BBO_DEPTH),
                ticker_stream=urls.ticker_stream(venue_symbol),
            )
            self.feeds[venue_symbol] = feed
        return feed

    # -- control frames -------------------------------------------------------------------------
    def control_frames(self, action: str, streams: Sequence[str], first_id: int) -> list[str]:
        """``{"op":action,"args":[...],"req_id":"<n>"}`` text frames for ``streams``, at most
        ``urls.max_args_per_request`` args each, ids counting up from ``first_id``."""
        frames = urls.control_frames(action, streams, first_id, self.market)
        if action == "subscribe":
            # Remembered so each ack tells which streams a (candidate) socket now carries.
            size = urls.max_args_per_request(self.market)
            for n in range(len(frames)):
                self._sent[str(first_id + n)] = tuple(streams[n * size : (n + 1) * size])
            while len(self._sent) > MAX_PENDING_ACKS:  # acks that never came
                del self._sent[next(iter(self._sent))]
        return frames

    @staticmethod
    def ping_frame(req_id: int | str | None = None) -> str:
        """The application heartbeat, due every ``urls.PING_INTERVAL_S``."""
        return urls.ping_frame(req_id)

    def streams_to_resubscribe(self) -> list[str]:
        """Streams whose book (or ticker state) broke and needs a fresh snapshot: unsubscribe
        and subscribe each again. Each is returned once per request (the list empties)."""
        out = [s for s in self._resubscribe if s in self.streams]
        self._resubscribe.clear()
        return out

    def _request_resubscribe(self, stream: str) -> None:
        self._resubscribe[stream] = None
        self._awaiting.add(stream)
        self._waiting.pop(stream, None)

    def _snapshot_missing(self, stream: str) -> None:
        """A delta arrived for a stream with no snapshot to apply it to."""
        if stream not in self._awaiting:
            self._request_resubscribe(stream)
            return
        seen = self._waiting.get(stream, 0) + 1
        if seen >= RESUBSCRIBE_AFTER_DELTAS:
            self._log.bind(stream=stream).warning(
                "{} deltas and still no snapshot; resubscribing", seen
            )
            self._request_resubscribe(stream)
        else:
            self._waiting[stream] = seen

    def _snapshot_arrived(self, stream: str) -> None:
        self._awaiting.discard(stream)
        self._waiting.pop(stream, None)
        self._resubscribe.pop(stream, None)

    # -- frames ---------------------------------------------------------------------------------
    def on_frames(
        self,
        frames: Iterable[bytes],
        out: Outbox,
        *,
        candidate: bool = False,
        seen: dict[str, float] | None = None,
        now: float = 0.0,
    ) -> None:
        """Handle frames of the live socket, or keep those of a ``candidate`` replacement apart.
        ``seen`` (stream -> ``now``) records which streams spoke, for the liveness watchdog."""
        by_stream = self._by_stream
        for raw in frames:
            try:
                cls = frame_class(raw)
                if cls == CONTROL:
                    self._on_control(op_reply_decoder.decode(raw), now, candidate)
                    continue
                if cls == OTHER:
                    continue  # a topic exconn never subscribes (or a stray reply shape)
                msg = _DECODERS[cls].decode(raw)
            except msgspec.DecodeError:  # ValidationError (fields missing) included
                self._malformed.add(raw)
                continue
            topic = msg.topic
            if seen is not None:
                seen[topic] = now
            feed = by_stream.get(topic)
            if feed is None:
                continue  # closed moments ago; still in flight
            if candidate:
                self._confirmed.add(topic)
                self._candidate_message(feed, cls, msg)
            elif cls == ORDERBOOK:
                if topic == feed.book_stream:
                    self._on_book(feed, msg, raw, out)
                else:
                    self._on_bbo(feed, msg, raw, out)
            elif cls == TRADE:
                self._on_trades(feed, msg, raw, out)
            elif cls == TICKER:
                self._on_ticker(feed, msg, raw, out)
            else:
                self._on_kline(feed, msg, raw, out)

    def _on_book(self, feed: SymbolFeed, msg: OrderbookMessage, raw: bytes, out: Outbox) -> None:
        if not feed.book_routes:
            return
        if replaces_book(msg):
            self._load_snapshot(feed, msg, raw, out)
            return
        sync = feed.sync
        if not sync.live:
            # Deltas before the snapshot are never needed (the snapshot comes in-stream and is
            # newer than anything before it), so nothing is buffered.
            self._snapshot_missing(feed.book_stream)
            return
        prev = sync.book.update_id
        try:
            result = sync.on_diff(msg)
        except ValueError:
            self._malformed.add(raw)
            self._void(feed, out, "malformed orderbook delta")
            return
        if result is SyncResult.APPLIED:
            if feed.held is not None:
                self._bridge(feed, out)  # subscribers hold another book: catch it up first
                return
            d = msg.data
            out.add(feed.book_routes, feed.delta_event(d.b, d.a, prev, d.u, book_ts_ms(msg)))
        elif result is SyncResult.GAP:
            self.resyncs += 1
            self._log.bind(symbol=feed.symbol).warning(
                "orderbook gap: book at {}, next delta is {}; resubscribing", prev, msg.data.u
            )
            self._request_resubscribe(feed.book_stream)
            if feed.held is None:  # a held book is still valid: the next snapshot continues it
                out.add(feed.book_routes, feed.reset_event(f"gap after {prev}"))

    def _load_snapshot(
        self, feed: SymbolFeed, msg: OrderbookMessage, raw: bytes, out: Outbox
    ) -> SyncResult:
        d = msg.data
        sync = feed.sync
        try:
            # Whatever the sync kept (the delta that broke the chain) predates this snapshot.
            sync.reset()
            result = sync.on_snapshot(d.u, d.b, d.a)
        except ValueError:
            self._malformed.add(raw)
            self._void(feed, out, "malformed orderbook snapshot")
            return SyncResult.GAP
        self._snapshot_arrived(feed.book_stream)
        held = feed.held
        if held is not None and d.u != RESTART_ID and self._bridge(feed, out):
            return result
        # No held book, or ids restarted below it: the snapshot replaces what subscribers hold.
        feed.held = None
        out.add(feed.book_routes, feed.snapshot_event(ms_to_utc(book_ts_ms(msg))))
        return result

    def _void(self, feed: SymbolFeed, out: Outbox, reason: str) -> None:
        """A message that does not parse may have half-updated the book: drop it, resubscribe."""
        feed.sync.reset()
        self.resyncs += 1
        self._request_resubscribe(feed.book_stream)
        if feed.held is None:
            out.add(feed.book_routes, feed.reset_event(reason))

    @staticmethod
    def _bridge(feed: SymbolFeed, out: Outbox) -> bool:
        """Move subscribers from the held book to the live one with one delta, once the live
        book is at or past it; False while it is still behind."""
        held, sync = feed.held, feed.sync
        if held is None or not sync.live or sync.book.update_id < held.update_id:
            return False
        feed.catch_up(out)
        return True

    def _on_bbo(self, feed: SymbolFeed, msg: OrderbookMessage, raw: bytes, out: Outbox) -> None:
        sync = feed.bbo
        if not feed.bbo_routes or sync is None:
            return
        try:
            if replaces_book(msg):
                sync.reset()
                sync.on_snapshot(msg.data.u, msg.data.b, msg.data.a)
                self._snapshot_arrived(feed.bbo_stream)
            elif not sync.live:
                self._snapshot_missing(feed.bbo_stream)
                return
            else:
                result = sync.on_diff(msg)  # level-1 deltas: before 2025-03-20
                if result is SyncResult.GAP:
                    self._request_resubscribe(feed.bbo_stream)
                    return
                if result is not SyncResult.APPLIED:
                    return
        except ValueError:
            self._malformed.add(raw)
            sync.reset()
            self._request_resubscribe(feed.bbo_stream)
            return
        u = sync.book.update_id
        if u == feed.bbo_u:
            return  # the 3 s re-push of an unchanged level-1 snapshot
        bid, ask = sync.book.best_bid(), sync.book.best_ask()
        if bid is None or ask is None:
            return  # a one-sided book has no bbo to give
        feed.bbo_u = u
        out.add(feed.bbo_routes, _bbo(self.market_name, feed, bid, ask, u, book_ts_ms(msg)))

    def _on_trades(
        self, feed: SymbolFeed, msg: PublicTradeMessage, raw: bytes, out: Outbox
    ) -> None:
        routes = feed.trade_routes
        if not routes:
            return
        tape, market, symbol = feed.tape, self.market_name, feed.symbol
        for t in msg.data:
            if tape.offer(t):
                try:
                    out.add(routes, encode_trade(t, market, symbol))
                except ValueError:  # a side that is neither Buy nor Sell
                    self._malformed.add(raw)

    def _on_ticker(self, feed: SymbolFeed, msg: TickerMessage, raw: bytes, out: Outbox) -> None:
        if msg.type == SNAPSHOT:
            feed.ticker = msg.data
            changed = None
            self._snapshot_arrived(feed.ticker_stream)
        elif feed.ticker is None:
            self._snapshot_missing(feed.ticker_stream)
            return
        else:
            feed.ticker, changed = merge_ticker(feed.ticker, msg.data)
        self._emit_ticker(feed, feed.ticker, changed, msg.ts, raw, out)

    def _emit_ticker(
        self,
        feed: SymbolFeed,
        state: TickerData,
        changed: frozenset[str] | None,
        ts_ms: int,
        raw: bytes,
        out: Outbox,
    ) -> None:
        market, symbol = self.market_name, feed.symbol
        try:
            if feed.ticker_routes and (changed is None or changed & TICKER_FIELDS):
                out.add(feed.ticker_routes, parse_ticker(state, market, symbol, ts_ms))
            if feed.mark_routes and (changed is None or changed & MARK_FIELDS):
                out.add(feed.mark_routes, parse_mark_price(state, market, symbol, ts_ms))
        except (ArithmeticError, ValueError):  # decimal.InvalidOperation is an ArithmeticError
            self._malformed.add(raw)

    def _on_kline(self, feed: SymbolFeed, msg: KlineMessage, raw: bytes, out: Outbox) -> None:
        routes = feed.kline_routes.get(msg.topic)
        if not routes:
            return
        for bar in msg.data:
            try:
                out.add(routes, parse_kline(bar, self.market_name, feed.symbol))
            except (ArithmeticError, ValueError):
                self._malformed.add(raw)

    def _candidate_message(self, feed: SymbolFeed, cls: int, msg: Any) -> None:
        """Keep a replacement socket's data apart until promotion. Its parse errors and gaps
        only mark its book broken: the live socket is still the one subscribers depend on."""
        if cls == ORDERBOOK:
            is_book = msg.topic == feed.book_stream
            if not (feed.book_routes if is_book else feed.bbo_routes):
                return
            nxt = feed.next_sync if is_book else feed.next_bbo
            if nxt is None:
                nxt = feed.new_sync()
                if is_book:
                    feed.next_sync = nxt
                else:
                    feed.next_bbo = nxt
            try:
                if replaces_book(msg):
                    nxt.reset()
                    result = nxt.on_snapshot(msg.data.u, msg.data.b, msg.data.a)
                elif nxt.live:
                    result = nxt.on_diff(msg)
                else:
                    return  # no snapshot yet on the candidate: it is on its way
            except ValueError:
                nxt.reset()
                result = SyncResult.GAP
            if result is SyncResult.GAP and is_book:
                feed.next_gap = True
        elif cls == TRADE:
            if feed.trade_routes:
                feed.next_trades.extend(msg.data)
        elif cls == TICKER:
            if msg.type == SNAPSHOT:
                feed.next_ticker = msg.data
            elif feed.next_ticker is not None:
                feed.next_ticker = merge_ticker(feed.next_ticker, msg.data)[0]
        # klines are complete in every message: the live socket keeps delivering them

    def _on_control(self, reply: OpReply, now: float, candidate: bool) -> None:
        kind = reply_kind(reply)
        if kind == PONG:
            self.pongs += 1
            self.last_pong = now
            return
        if kind == "subscribe":
            streams = self._sent.pop(reply.req_id or "", ())
            if candidate and reply.ok:
                self._confirmed.update(streams)
                if isinstance(reply.data, CommandData):
                    self._confirmed.update(reply.data.successTopics)
            elif reply.ok:
                self._start_backfills(streams)
        if reply.ok:
            return
        text = reply.message
        if "already subscribed" in text:
            # A resubscription raced its unsubscribe: the topic is live, nothing is lost.
            self._log.debug("{} {}: {}", kind, reply.req_id, text)
            return
        self.failed_requests += 1
        self._log.warning("{} request {} refused: {}", kind, reply.req_id, text)

    def _start_backfills(self, streams: Iterable[str]) -> None:
        """Trade streams the live socket now carries: what a gap before them swallowed is read
        from REST at once, not when their next trade comes (a quiet market may take long)."""
        for stream in streams:
            feed = self._by_stream.get(stream)
            if feed is None or not feed.trade_routes or not stream.startswith("publicTrade."):
                continue
            tape = feed.tape
            if tape.gap_since is not None and tape.hold is None:
                tape.hold = []

    # -- socket changes -------------------------------------------------------------------------
    def begin_candidate(self) -> None:
        """A replacement socket opens: keep its data apart from the live socket's. Subscribe
        its streams with ``control_frames`` (their acks tell when it carries them)."""
        self._confirmed = set()
        for feed in self.feeds.values():
            feed.begin_candidate()
            feed.next_gap = False
            feed.next_bbo = feed.new_sync() if feed.bbo_routes else None
            feed.next_ticker = None
            feed.next_trades = []

    def drop_candidate(self) -> None:
        self._confirmed = set()
        for feed in self.feeds.values():
            feed.next_sync = None
            feed.next_gap = False
            feed.next_bbo = None
            feed.next_ticker = None
            feed.next_trades = []

    def ready_to_promote(self) -> bool:
        """True when the candidate carries every stream (a subscribe ack or data proves it:
        closing the old socket earlier would lose trades) and can take over every live book
        without going back: each has its own snapshot at, or past, the id subscribers hold."""
        if not self.streams <= self._confirmed:
            return False
        for feed in self.feeds.values():
            if not feed.book_routes or not feed.sync.live:
                continue
            nxt = feed.next_sync
            if nxt is None or not nxt.live or nxt.book.update_id < feed.sync.book.update_id:
                return False
        return True

    def promote(self, out: Outbox) -> None:
        """The candidate becomes the live socket (the old one is closed by the caller)."""
        market = self.market_name
        streams = self.streams
        confirmed, self._confirmed = self._confirmed, set()
        for feed in self.feeds.values():
            feed.take_candidate()
            if feed.book_routes:
                self._after_promotion(feed.book_stream, feed.sync, feed.next_gap)
                self._bridge(feed, out)
            feed.next_gap = False
            if feed.bbo_routes:
                feed.bbo = feed.next_bbo or feed.new_sync()
                self._after_promotion(feed.bbo_stream, feed.bbo, False)
            feed.next_bbo = None
            if feed.ticker_stream in streams:
                feed.ticker = feed.next_ticker
                if feed.ticker is None:
                    self._awaiting.add(feed.ticker_stream)
                else:
                    self._snapshot_arrived(feed.ticker_stream)
            feed.next_ticker = None
            trades, feed.next_trades = feed.next_trades, []
            tape = feed.tape
            if tape.hold is None:
                # Only a trade both sockets carried proves they overlapped. Without one (the
                # old socket stalled before the candidate subscribed, or no trade since),
                # trades in between may be missing: REST is read before the candidate's go.
                if tape.last is None or any(tape.delivered(t.i) for t in trades):
                    tape.gap_since = None
                elif feed.trade_routes:
                    tape.gap_since = tape.last
                    if urls.trade_stream(feed.instrument.venue_symbol) in confirmed:
                        tape.hold = []  # the candidate carries trades: read REST now
            symbol = feed.symbol
            for t in trades:
                if feed.trade_routes and tape.offer(t):
                    try:
                        out.add(feed.trade_routes, encode_trade(t, market, symbol))
                    except ValueError:
                        self._malformed.add(b"")

    def _after_promotion(self, stream: str, sync: BookSync, broken: bool) -> None:
        if sync.live:
            self._snapshot_arrived(stream)
        elif broken:
            self._request_resubscribe(stream)
        else:
            self._awaiting.add(stream)  # its snapshot may still be on the way

    def on_disconnect(self, reason: str, out: Outbox, *, announce: bool = True) -> None:
        """The live socket is gone. Live books are held (subscribers keep them, unchanged)
        until the next socket's snapshot continues them or ``expire_held`` gives up; books
        still awaiting a snapshot were never delivered, so they just start over. Unless a
        replacement socket takes over at once (``announce=False``), subscribers are told their
        book is stale. The next socket subscribes every stream afresh."""
        for feed in self.feeds.values():
            feed.lose_socket(reason, out, announce=announce)
            if feed.bbo is not None:
                feed.bbo = feed.new_sync()
            feed.ticker = None
            tape = feed.tape
            if feed.trade_routes and tape.last is not None and tape.hold is None:
                tape.gap_since = tape.last
        self._resubscribe.clear()
        self._waiting.clear()
        self._awaiting = {s for s in self.streams if _starts_with_snapshot(s)}

    # -- snapshots ------------------------------------------------------------------------------
    def symbols_needing_snapshot(self) -> list[str]:
        """Always empty: Bybit sends snapshots in-stream (see ``streams_to_resubscribe``)."""
        return []

    def on_snapshot(self, venue_symbol: str, snapshot: OrderbookMessage, out: Outbox) -> SyncResult:
        """Load an in-stream snapshot message of the book topic (what ``on_frames`` does with
        one). REST ``/v5/market/orderbook`` is no substitute: its ``u`` counts the 1000-level
        stream's updates, not this topic's."""
        return self._load_snapshot(self.feeds[venue_symbol], snapshot, b"", out)

    # -- trade backfill -------------------------------------------------------------------------
    def backfills(self) -> list[Backfill]:
        """The REST reads that would resolve every held trade tape, one per symbol."""
        category = self.market_name
        limit = str(urls.recent_trades_limit(self.market))
        return [
            Backfill(
                kind="trades",
                venue_symbol=s,
                path=urls.recent_trades_path(self.market),
                params={"category": category, "symbol": s, "limit": limit},
                decoder=recent_trades_decoder,
            )
            for s in self.symbols_needing_trades()
        ]

    def on_backfill(
        self,
        kind: str,
        venue_symbol: str,
        rows: Sequence[RestTrade] | Envelope[RecentTradesResult],
        out: Outbox,
    ) -> int:
        """``on_rest_trades`` for a ``Backfill`` (``kind`` is ``trades``, the only one Bybit
        backfills); ``rows`` may be the decoded envelope."""
        if kind != "trades":
            raise ValueError(f"bybit: nothing to backfill for {kind!r}")
        if isinstance(rows, Envelope):
            rows = rows.result.list
        return self.on_rest_trades(venue_symbol, rows, out)

    def symbols_needing_trades(self) -> list[str]:
        return [s for s, f in self.feeds.items() if f.trade_routes and f.tape.hold is not None]

    def on_rest_trades(self, venue_symbol: str, rows: Sequence[RestTrade], out: Outbox) -> int:
        """Deliver the trades a lost socket may have missed (``/v5/market/recent-trade`` rows,
        any order), then the live ones held behind them. Returns 1 when the REST window did not
        reach back to the last trade delivered, so some may be lost (string ids tell no count),
        else 0."""
        feed = self.feeds.get(venue_symbol)
        if feed is None or feed.tape.hold is None or not feed.trade_routes:
            return 0  # resolved or closed while the read was under way
        before = feed.tape.possibly_lost
        rest, live = feed.tape.backfill(rows)
        symbol, market = feed.symbol, self.market_name
        for row in rest:
            try:
                out.add(feed.trade_routes, parse_rest_trade(row, market, symbol))
            except (ArithmeticError, ValueError):
                self._malformed.add(b"")
        for t in live:
            try:
                out.add(feed.trade_routes, encode_trade(t, market, symbol))
            except ValueError:
                self._malformed.add(b"")
        return feed.tape.possibly_lost - before


def _bbo(
    market: str,
    feed: SymbolFeed,
    bid: tuple[Decimal, Decimal],
    ask: tuple[Decimal, Decimal],
    update_id: int,
    ts_ms: int,
) -> Bbo:
    return Bbo(
        exchange=EXCHANGE,
        market=market,
        symbol=feed.symbol,
        bid_price=bid[0],
        bid_qty=bid[1],
        ask_price=ask[0],
        ask_qty=ask[1],
        update_id=update_id,
        ts=ms_to_utc(ts_ms),
    )
