"""Binance market-data stream handling: which stream carries which topic, and what each frame
means for the books and subscribers (pure: the connection actor does the I/O around it).

Channel table: ``urls.CHANNELS`` names each topic kind's stream, USD-M route and push cadence
(binance.md §6, §8.1); this module decodes and delivers them:

- ``book`` -> ``<s>@depth@100ms``: diffs kept in sync with REST snapshots under ``book_sync``
  rules -> ``BookSnapshot`` / ``BookDelta`` / ``BookReset`` / ``BookStale``.
- ``trades`` -> ``<s>@trade`` -> ``Trade``; ``aggtrades`` -> ``<s>@aggTrade`` -> ``AggTrade``.
  Both are histories: lossless through a ``TradeTape`` each (below).
- States, delivered as they come: ``bbo`` -> ``<s>@bookTicker`` -> ``Bbo``; ``mark`` ->
  ``<s>@markPrice@1s`` -> ``MarkPrice`` (USD-M only); ``ticker`` -> ``<s>@ticker`` ->
  ``Ticker24h``; ``kline_<i>`` -> ``<s>@kline_<i>`` -> ``Kline`` (``1s`` spot only);
  ``depth5`` / ``depth10`` / ``depth20`` -> ``<s>@depth<N>@100ms`` -> ``BookTop``.

Partial depth is a ``BookTop``, not a ``BookSnapshot``: a subscriber keeping a ``LocalBook`` of
the ``book`` topic replaces its whole book on a snapshot, so a top-N view sent as one would
cut that book to N levels and break the chain of ``BookDelta`` ids that follows. ``BookTop``
carries exchange, market, symbol, depth, update id, both sides and time, and never touches
the ``book`` topic's state.

Decoding: depth, trade, aggTrade, markPrice, kline and 24hrTicker frames carry an ``e`` tag and
take one typed decode. Spot bookTicker and spot partial depth carry none, and USD-M partial
depth carries the diff's tag: while such a stream is open, every frame is classified by its
stream name first (``wire.frame_kind``); with none open, the hot path is the tagged decode
alone. Once a USD-M handler has opened a partial-depth stream, a diff is also checked to come
from the book's own stream, since a top-N frame still in flight after its stream was closed
decodes exactly like a diff.

What both venues share (the handler's state and counters, the held and candidate book and its
events, reference-counted streams, malformed-frame counting) is in ``venues.stream_handler``,
``venues.book_feed``, ``venues.subscriptions`` and ``venues.malformed``.

Socket changes never show to subscribers as a gap or a duplicate:
- A replacement socket (rotation before the 24 h cap, ``serverShutdown``, a silent stream)
  runs as a *candidate* next to the live one: its diffs, trades and aggTrades are buffered per
  symbol (``next_sync`` / ``next_trades`` / ``next_aggs``) until ``ready_to_promote()``, i.e.
  every live book can be continued from the candidate's buffer. ``promote()`` then moves the
  candidate's buffers in.
- The book a subscriber holds is kept as ``held`` when its socket goes away; the next socket's
  diffs continue it (``BookSync.adopt``) when they reach back to it, otherwise a REST snapshot
  rebuilds the book and the subscriber gets one catch-up ``BookDelta`` from the held book to
  the new one instead of a ``BookReset``. Held books that stay unresolved too long are reset
  by the actor (``expire_held``): a stale book is never kept silently.
- Trades and aggTrades pass a per-symbol ``TradeTape``: ids at or below the last delivered one
  are dropped (the overlap of two sockets), a jump in ids (a socket change, or an event the
  server never sent) holds that stream until the missed ones are fetched over REST
  (``backfills`` / ``on_backfill``: ``GET /api/v3/trades`` for trades, the latest 1000;
  ``GET /api/v3/aggTrades?fromId=`` for aggTrades, paged, so every aggregate id is
  recovered while the venue keeps it).
- States are not histories: a candidate socket's are ignored and the new socket's are
  delivered from promotion on (no de-duplication).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

import msgspec

from exconn.book.sync import SyncResult
from exconn.model.enums import Market
from exconn.model.instruments import Instrument
from exconn.outbox import Outbox, Route, routes_of
from exconn.topics import KLINE_PREFIX
from exconn.venues.backfill import Backfill
from exconn.venues.binance import endpoints, urls
from exconn.venues.binance.book_sync import SPOT_RULES, USDM_RULES
from exconn.venues.binance.parse import (
    EXCHANGE,
    encode_trade,
    parse_agg_trade,
    parse_book_ticker,
    parse_kline,
    parse_mark_price,
    parse_partial_depth,
    parse_partial_depth_update,
    parse_rest_trade,
    parse_ticker_24hr,
)
from exconn.venues.binance.wire import (
    BOOK_TICKER,
    PARTIAL_DEPTH,
    TAGGED,
    AggTradeEvent,
    BookTicker,
    Combined,
    DepthSnapshot,
    DepthUpdate,
    KlineEvent,
    MarkPriceUpdate,
    PartialDepth,
    PartialDepthUpdate,
    ServerShutdown,
    Ticker24hrEvent,
    TradeEvent,
    combined_book_ticker_decoder,
    combined_partial_depth_decoder,
    combined_partial_depth_update_decoder,
    control_decoder,
    frame_kind,
    rest_agg_trades_decoder,
    rest_trades_decoder,
    stream_kind,
)
from exconn.venues.book_feed import BookFeed
from exconn.venues.stream_handler import BaseStreamHandler
from exconn.venues.subscriptions import RouteChange, resolve_topic

WIRE_DECIMALS = 8  # Binance sends every price and quantity with at most 8 decimals

# Every tagged event a routed topic kind produces, in one decoder (a tagged union is one dict
# lookup per frame, so the depth/trade hot path costs what it did with two members).
_tagged_decoder = msgspec.json.Decoder(
    Combined[
        DepthUpdate
        | TradeEvent
        | AggTradeEvent
        | MarkPriceUpdate
        | KlineEvent
        | Ticker24hrEvent
        | ServerShutdown
    ]
)

# States (the latest value is what counts), delivered as they come: wire type -> (the topic
# kind of an event, its parser).
_STATES: dict[type, tuple[Callable[[Any], str], Callable[[Any, str, str], Any]]] = {
    BookTicker: (lambda _: "bbo", parse_book_ticker),
    MarkPriceUpdate: (lambda _: "mark", parse_mark_price),
    Ticker24hrEvent: (lambda _: "ticker", parse_ticker_24hr),
    KlineEvent: (lambda e: KLINE_PREFIX + e.k.i, parse_kline),
}
# Partial depth names its symbol (spot) and depth only in the stream name.
_TOPS: dict[type, Callable[[Any, str, str, int], Any]] = {
    PartialDepth: parse_partial_depth,
    PartialDepthUpdate: parse_partial_depth_update,
}


class TradeTape:
    """De-duplicates and gap-checks one symbol's stream of consecutively numbered prints:
    trades by trade id, aggregate trades by aggregate id (Binance numbers both consecutively
    per symbol, so a jump means prints were missed). The caller passes the id beside the
    event, so the hot path reads it once."""

    __slots__ = ("hold", "last", "lost")

    def __init__(self) -> None:
        self.last: int | None = None  # id of the last print delivered
        # (id, live event) waiting behind a backfill, ascending ids
        self.hold: list[tuple[int, Any]] | None = None
        self.lost = 0  # prints that could not be recovered

    def offer(self, seq: int, event: Any) -> bool:
        """True: deliver ``event`` now. False: a duplicate (dropped) or held for a backfill."""
        hold = self.hold
        if hold is not None:
            if not hold or seq > hold[-1][0]:
                hold.append((seq, event))
            return False
        last = self.last
        if last is not None:
            if seq <= last:
                return False
            if seq > last + 1:
                self.hold = [(seq, event)]
                return False
        self.last = seq
        return True

    def backfill(
        self, rows: Sequence[tuple[int, Any]], complete: bool = True
    ) -> tuple[list[Any], list[Any]]:
        """Resolve a hold with REST rows ``(id, row)`` in ascending ids: (rows, held live
        events) to deliver now, in that order. ``complete=False``: the rows are one page of a
        longer answer; they are delivered and the hold stays until a later page reaches it.
        A gap found among the held events themselves holds again from there."""
        held = self.hold or []
        last = self.last if self.last is not None else -1
        upto = held[0][0] if held else None
        fill = [(i, r) for i, r in rows if i > last and (upto is None or i < upto)]
        if not complete and fill and upto is not None and fill[-1][0] < upto - 1:
            self.lost += fill[-1][0] - last - len(fill)  # ids the page itself skipped
            self.last = fill[-1][0]
            return [r for _, r in fill], []
        self.hold = None
        expected = (upto - last - 1) if upto is not None and last >= 0 else len(fill)
        self.lost += max(0, expected - len(fill))
        if fill:
            self.last = fill[-1][0]
        live: list[Any] = []
        for n, (seq, event) in enumerate(held):
            if self.last is not None and seq <= self.last:
                continue
            if live and self.last is not None and seq > self.last + 1:
                self.hold = held[n:]  # the next REST read starts after what was delivered
                break
            # The first held print is taken whatever the REST read found: the gap before it
            # is resolved (filled or counted lost), so a backfill always makes progress.
            live.append(event)
            self.last = seq
        return [r for _, r in fill], live

    def reset(self) -> None:
        self.last = None
        self.hold = None


@dataclass(frozen=True, slots=True)
class _PrintKind:
    """How a tape's missed prints are read back over REST."""

    endpoint: str  # key in endpoints.SPOT / endpoints.LINEAR
    decoder: msgspec.json.Decoder[Any]
    row_id: Callable[[Any], int]
    parse_row: Callable[[Any, str, str], Any]
    parse_live: Callable[[Any, str, str], Any]
    # True: the endpoint reads forward from an id (``fromId``), page by page; False: it only
    # serves the latest rows, and older missed prints are lost.
    from_id: bool


BACKFILL_LIMIT = 1000  # rows per REST read: the maximum both endpoints allow
_PRINTS: dict[str, _PrintKind] = {
    "trades": _PrintKind(
        "trades", rest_trades_decoder, attrgetter("id"), parse_rest_trade, encode_trade, False
    ),
    "aggtrades": _PrintKind(
        "agg_trades",
        rest_agg_trades_decoder,
        attrgetter("a"),
        parse_agg_trade,
        parse_agg_trade,
        True,
    ),
}


@dataclass(slots=True, kw_only=True, eq=False)
class SymbolFeed(BookFeed):
    """Everything the handler keeps for one venue symbol: the book topic (``BookFeed``;
    a candidate's ``next_sync`` only buffers diffs here) and the other kinds."""

    depth_stream: str  # the book's diff stream, to tell it from partial depth on USD-M
    trade_routes: tuple[Route, ...] = ()
    next_trades: list[TradeEvent] = field(default_factory=list)
    tape: TradeTape = field(default_factory=TradeTape)
    agg_routes: tuple[Route, ...] = ()
    agg_tape: TradeTape = field(default_factory=TradeTape)
    next_aggs: list[AggTradeEvent] = field(default_factory=list)  # the candidate's aggTrades
    # Subscribers of the state kinds (bbo, mark, ticker, depthN, kline_<i>), open ones only.
    states: dict[str, tuple[Route, ...]] = field(default_factory=dict)

    def prints(self, kind: str) -> tuple[TradeTape, tuple[Route, ...]]:
        """The tape and subscribers of ``trades`` or ``aggtrades``."""
        if kind == "trades":
            return self.tape, self.trade_routes
        return self.agg_tape, self.agg_routes


class StreamHandler(BaseStreamHandler[SymbolFeed]):
    """Decodes combined-stream frames, keeps the books in sync, emits model events."""

    exchange = EXCHANGE

    def __init__(self, market: Market, instruments: Iterable[Instrument]) -> None:
        super().__init__(market, instruments)
        self._rules = SPOT_RULES if self.market is Market.SPOT else USDM_RULES
        # Streams whose frames are told apart by name (bookTicker, partial depth) open now:
        # while there are none, every frame takes the tagged decode alone.
        self._by_name = 0
        # Open partial-depth streams: stream -> (feed, topic kind, depth); their frames name
        # no depth, and spot's no symbol.
        self._tops: dict[str, tuple[SymbolFeed, str, int]] = {}
        self._partial_decoder = (
            combined_partial_depth_decoder
            if self.market is Market.SPOT
            else combined_partial_depth_update_decoder
        )
        # Set once a USD-M partial-depth stream was opened: from then on a diff must come from
        # its book's stream (a top-N frame in flight after its stream closed looks the same).
        self._check_diff_stream = False

    # -- routes ---------------------------------------------------------------------------------
    def set_route(self, topic: str, subscribers: Sequence[Any], out: Outbox) -> RouteChange:
        """Route a concrete topic to ``subscribers`` (empty closes it). Raises ValueError or
        exconn.errors.UnknownSymbol for a topic this connection cannot serve."""
        t, venue_symbol = resolve_topic(topic, EXCHANGE, self.market_name, self.symbols)
        stream = urls.stream_for(t.kind, venue_symbol, self.market)
        feed = self._feed(venue_symbol)
        routes = routes_of(subscribers)
        change = RouteChange()
        if t.kind == "book":
            feed.route(routes, out)
        elif t.kind == "trades":
            feed.trade_routes = routes
            if not routes:
                feed.tape.reset()
                feed.next_trades = []
        elif t.kind == "aggtrades":
            feed.agg_routes = routes
            if not routes:
                feed.agg_tape.reset()
                feed.next_aggs = []
        elif routes:
            feed.states[t.kind] = routes
        else:
            feed.states.pop(t.kind, None)
        if routes:
            if self._refs.add(stream, topic):
                change.subscribe.append(stream)
                if stream_kind(stream) == PARTIAL_DEPTH:
                    self._tops[stream] = (feed, t.kind, int(t.kind[len("depth") :]))
                    if self.market is not Market.SPOT:
                        self._check_diff_stream = True  # for good: frames may be in flight
        elif self._refs.remove(stream, topic):
            change.unsubscribe.append(stream)
            self._tops.pop(stream, None)
        self._by_name = sum(1 for s in self.streams if stream_kind(s) != TAGGED)
        return change

    def _feed(self, venue_symbol: str) -> SymbolFeed:
        feed = self.feeds.get(venue_symbol)
        if feed is None:
            feed = SymbolFeed(
                instrument=self._instruments[venue_symbol],
                exchange=EXCHANGE,
                market=self.market_name,
                rules=self._rules,
                price_scale=WIRE_DECIMALS,
                qty_scale=WIRE_DECIMALS,
                depth_stream=urls.stream_for("book", venue_symbol),
            )
            self.feeds[venue_symbol] = feed
        return feed

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
        """Handle frames of the live socket, or buffer those of a ``candidate`` replacement.
        ``seen`` (stream -> ``now``) records which streams spoke, for the liveness watchdog."""
        if candidate:
            self._on_candidate_frames(frames, seen, now)
            return
        feeds = self.feeds
        market = self.market_name
        check_stream = self._check_diff_stream
        for raw, stream, data in self._decoded(frames, seen, now):
            kind = type(data)
            if kind is DepthUpdate:
                feed = feeds.get(data.s)
                if feed is None or not feed.book_routes:
                    continue
                if check_stream and stream != feed.depth_stream:
                    continue  # a top-N frame of a partial-depth stream closed moments ago
                sync = feed.sync
                prev = sync.book.update_id
                try:
                    # BUFFERED (book not live yet) never raises: only applying parses levels.
                    result = sync.on_diff(data)
                except ValueError:
                    # A level that does not parse: the book may be half-updated, so void it.
                    self._malformed.add(raw)
                    sync.reset()
                    self.resyncs += 1
                    out.add(feed.book_routes, feed.reset_event("malformed depth update"))
                    continue
                if result is SyncResult.APPLIED:
                    out.add(
                        feed.book_routes, feed.delta_event(data.b, data.a, prev, data.u, data.E)
                    )
                elif result is SyncResult.BUFFERED:
                    if feed.held is not None:
                        self._bridge(feed, out)
                elif result is SyncResult.GAP:
                    self.resyncs += 1
                    self._log.bind(symbol=feed.symbol).warning(
                        "depth gap: book at {}, next diff starts at {}; resyncing", prev, data.U
                    )
                    out.add(feed.book_routes, feed.reset_event(f"gap after {prev}"))
            elif kind is TradeEvent:
                feed = feeds.get(data.s)
                if feed is not None and feed.trade_routes and feed.tape.offer(data.t, data):
                    out.add(feed.trade_routes, encode_trade(data, market, feed.symbol))
            elif kind is AggTradeEvent:
                feed = feeds.get(data.s)
                if feed is not None and feed.agg_routes and feed.agg_tape.offer(data.a, data):
                    self._emit(feed, feed.agg_routes, parse_agg_trade, data, raw, out)
            elif kind is ServerShutdown:
                self.shutdown_notices += 1
            elif kind in _TOPS:
                top = self._tops.get(stream)
                if top is not None:
                    feed, topic_kind, depth = top
                    routes = feed.states.get(topic_kind)
                    if routes:
                        self._emit(feed, routes, _TOPS[kind], data, raw, out, depth)
            else:
                kind_of, parser = _STATES[kind]
                feed = feeds.get(data.s)
                if feed is not None:
                    routes = feed.states.get(kind_of(data))
                    if routes:
                        self._emit(feed, routes, parser, data, raw, out)

    def _emit(
        self,
        feed: SymbolFeed,
        routes: tuple[Route, ...],
        parser: Any,
        data: Any,
        raw: bytes,
        out: Outbox,
        *args: Any,
    ) -> None:
        """Parse an event beyond the book/trade hot path for its subscribers; a value that is
        not a number counts the frame malformed instead of failing the drain."""
        try:
            event = parser(data, self.market_name, feed.symbol, *args)
        except (ArithmeticError, ValueError):  # decimal.InvalidOperation is an ArithmeticError
            self._malformed.add(raw)
            return
        out.add(routes, event)

    def _decoded(
        self, frames: Iterable[bytes], seen: dict[str, float] | None, now: float
    ) -> Iterator[tuple[bytes, str, Any]]:
        """(frame, stream, event) for every frame that decodes; the rest are counted as
        malformed. Records in ``seen`` which streams spoke, for the liveness watchdog."""
        decode = _tagged_decoder.decode
        by_name = self._by_name
        for raw in frames:
            try:
                if by_name:
                    # Spot bookTicker and partial depth have no "e" tag, USD-M partial depth
                    # the diff's: picked by stream name, only while such a stream is open.
                    name_kind = frame_kind(raw)
                    if name_kind == TAGGED:
                        msg = decode(raw)
                    elif name_kind == BOOK_TICKER:
                        msg = combined_book_ticker_decoder.decode(raw)
                    else:
                        msg = self._partial_decoder.decode(raw)
                else:
                    msg = decode(raw)
            except msgspec.DecodeError:
                self._not_an_event(raw)
                continue
            if seen is not None:
                seen[msg.stream] = now
            yield raw, msg.stream, msg.data

    def _on_candidate_frames(
        self, frames: Iterable[bytes], seen: dict[str, float] | None, now: float
    ) -> None:
        check_stream = self._check_diff_stream
        for _raw, stream, data in self._decoded(frames, seen, now):
            if type(data) is DepthUpdate:
                feed = self.feeds.get(data.s)
                if feed is not None and feed.book_routes:
                    if check_stream and stream != feed.depth_stream:
                        continue
                    if feed.next_sync is None:
                        feed.next_sync = feed.new_sync()
                    feed.next_sync.on_diff(data)
            elif type(data) is TradeEvent:
                feed = self.feeds.get(data.s)
                if feed is not None and feed.trade_routes:
                    feed.next_trades.append(data)
            elif type(data) is AggTradeEvent:
                feed = self.feeds.get(data.s)
                if feed is not None and feed.agg_routes:
                    feed.next_aggs.append(data)
            # States of the candidate are dropped: the live socket keeps delivering them until
            # promotion, the candidate's own from then on.
            # A serverShutdown on the candidate shows as its close; nothing to do here.

    # -- socket changes -------------------------------------------------------------------------
    def begin_candidate(self) -> None:
        """A replacement socket opens: buffer its data apart from the live socket's."""
        for feed in self.feeds.values():
            feed.begin_candidate()
            feed.next_trades = []
            feed.next_aggs = []

    def drop_candidate(self) -> None:
        for feed in self.feeds.values():
            feed.next_sync = None
            feed.next_trades = []
            feed.next_aggs = []

    def ready_to_promote(self) -> bool:
        """True when the candidate can take over every live book without a gap: each one's
        buffered diffs reach back to the book subscribers hold."""
        for feed in self.feeds.values():
            if not feed.book_routes or not feed.sync.live:
                continue
            nxt = feed.next_sync
            first = nxt.first_buffered() if nxt is not None else None
            if first is None or not self._reaches(feed.sync.book.update_id, first):
                return False
        return True

    def promote(self, out: Outbox) -> None:
        """The candidate becomes the live socket (the old one is closed by the caller)."""
        market = self.market_name
        for feed in self.feeds.values():
            feed.take_candidate()
            if feed.held is not None:
                self._bridge(feed, out)
            trades, feed.next_trades = feed.next_trades, []
            for t in trades:
                if feed.trade_routes and feed.tape.offer(t.t, t):
                    out.add(feed.trade_routes, encode_trade(t, market, feed.symbol))
            aggs, feed.next_aggs = feed.next_aggs, []
            for agg in aggs:
                if feed.agg_routes and feed.agg_tape.offer(agg.a, agg):
                    self._emit(feed, feed.agg_routes, parse_agg_trade, agg, b"", out)

    def on_disconnect(self, reason: str, out: Outbox, *, announce: bool = True) -> None:
        """The live socket is gone. Live books are held (subscribers keep them, unchanged)
        until the next socket continues them or ``expire_held`` gives up; books still syncing
        were never delivered, so they just start over. Unless a replacement socket takes
        over at once (``announce=False``), subscribers are told their book is stale: a book
        that silently stops updating looks like a quiet market."""
        for feed in self.feeds.values():
            feed.lose_socket(reason, out, announce=announce)

    def _reaches(self, book_id: int, first: DepthUpdate) -> bool:
        """Does a diff chain starting at ``first`` continue a book at ``book_id``?"""
        if self.market is Market.SPOT:
            return not self._rules.snapshot_too_old(book_id, first)
        # USD-M: consecutive events chain through pu, so the chain covers the event after
        # book_id exactly when it starts at or before it.
        if first.pu is not None:
            return first.pu <= book_id
        return first.U <= book_id + 1

    def _bridge(self, feed: SymbolFeed, out: Outbox) -> None:
        """Continue the held book with the current socket's buffered diffs, if they reach it."""
        held = feed.held
        first = feed.sync.first_buffered()
        if held is None or first is None or not self._reaches(held.update_id, first):
            return  # not yet, or events were missed: a REST snapshot decides (on_snapshot)
        feed.held = None
        result, applied = feed.sync.adopt(held, feed.held_fresh)
        for prev, diff in applied:
            out.add(feed.book_routes, feed.delta_event(diff.b, diff.a, prev, diff.u, diff.E))
        if result is SyncResult.GAP:
            self.resyncs += 1
            out.add(feed.book_routes, feed.reset_event("gap after socket change"))

    # -- trade and aggTrade backfill -------------------------------------------------------------
    def backfills(self) -> list[Backfill]:
        """The REST reads that would resolve every held tape, one per symbol and kind."""
        found = []
        for venue_symbol, feed in self.feeds.items():
            for kind, spec in _PRINTS.items():
                tape, routes = feed.prints(kind)
                if routes and tape.hold is not None and tape.last is not None:
                    from_id = tape.last + 1 if spec.from_id else None
                    found.append(
                        Backfill(
                            kind=kind,
                            venue_symbol=venue_symbol,
                            path=endpoints.endpoints(self.market)[spec.endpoint].path,
                            params=endpoints.prints_params(venue_symbol, BACKFILL_LIMIT, from_id),
                            decoder=spec.decoder,
                        )
                    )
        return found

    def on_backfill(self, kind: str, venue_symbol: str, rows: Sequence[Any], out: Outbox) -> int:
        """Deliver the prints a ``Backfill`` read found, then the live ones held behind them
        (or, for a full page that does not reach them yet, hold on for the next page).
        Returns how many could not be recovered (older than the venue's REST window)."""
        spec = _PRINTS[kind]
        feed = self.feeds.get(venue_symbol)
        if feed is None:
            return 0
        tape, routes = feed.prints(kind)
        if tape.hold is None or not routes:
            return 0  # resolved or closed while the read was under way
        ordered = sorted(((spec.row_id(r), r) for r in rows), key=lambda p: p[0])
        complete = not spec.from_id or len(ordered) < BACKFILL_LIMIT
        before = tape.lost
        fill, live = tape.backfill(ordered, complete)
        for row in fill:
            self._emit(feed, routes, spec.parse_row, row, b"", out)
        for event in live:
            self._emit(feed, routes, spec.parse_live, event, b"", out)
        return tape.lost - before

    def symbols_needing_trades(self) -> list[str]:
        """The trades case of ``backfills``: symbols whose trade stream waits for REST."""
        return [b.venue_symbol for b in self.backfills() if b.kind == "trades"]

    def on_rest_trades(self, venue_symbol: str, rows: Sequence[Any], out: Outbox) -> int:
        """The trades case of ``on_backfill``."""
        return self.on_backfill("trades", venue_symbol, rows, out)

    # -- control frames -------------------------------------------------------------------------
    def control_frames(self, action: str, streams: Sequence[str], first_id: int) -> list[str]:
        """The text frames asking the server to ``SUBSCRIBE`` / ``UNSUBSCRIBE`` ``streams``,
        split as the venue wants them, with request ids ``first_id``, ``first_id + 1``, ...
        (the caller owns the id counter: one id per frame)."""
        return urls.control_frames(action, streams, first_id)

    def _not_an_event(self, raw: bytes) -> None:
        try:
            name_kind = frame_kind(raw)
        except msgspec.DecodeError:
            name_kind = None
        if name_kind in (BOOK_TICKER, PARTIAL_DEPTH):
            decoder = (
                combined_book_ticker_decoder if name_kind == BOOK_TICKER else self._partial_decoder
            )
            try:
                decoder.decode(raw)
                return  # an event of a stream closed moments ago (still in flight): not malformed
            except msgspec.DecodeError:
                pass
        try:
            reply = control_decoder.decode(raw)
        except msgspec.DecodeError:
            reply = None
        if reply is not None and (reply.id is not None or reply.code is not None):
            if reply.code is not None:
                self._log.warning(
                    "control request {} failed: {} {}", reply.id, reply.code, reply.msg
                )
            return
        self._malformed.add(raw)

    # -- snapshots ------------------------------------------------------------------------------
    def symbols_needing_snapshot(self) -> list[str]:
        return [s for s, f in self.feeds.items() if f.book_routes and f.sync.needs_snapshot()]

    def on_snapshot(self, venue_symbol: str, snapshot: DepthSnapshot, out: Outbox) -> SyncResult:
        feed = self.feeds[venue_symbol]
        result = feed.sync.on_snapshot(snapshot.lastUpdateId, snapshot.bids, snapshot.asks)
        if result is SyncResult.SYNCED:
            held = feed.held
            if held is not None and feed.sync.book.update_id > held.update_id:
                # Subscribers hold `held`: one delta to the rebuilt book instead of a reset.
                feed.catch_up(out)
            else:
                feed.held = None
                out.add(feed.book_routes, feed.snapshot_event())
        elif result is SyncResult.GAP:
            self.resyncs += 1
        return result
