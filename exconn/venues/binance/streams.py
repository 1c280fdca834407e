"""Binance market-data stream handling: which stream carries which topic, and what each frame
means for the books and subscribers (pure: the connection actor does the I/O around it).

Channel table (binance.md §6): topic kind ``book`` -> ``<s>@depth@100ms`` (diff depth, synced
with REST snapshots under ``book_sync`` rules); ``trades`` -> ``<s>@trade``; ``bbo`` ->
``<s>@bookTicker`` (``Bbo``); ``aggtrades`` -> ``<s>@aggTrade`` (``AggTrade``); ``mark`` ->
``<s>@markPrice@1s`` (``MarkPrice``, USD-M only). USD-M serves ``book``/``bbo`` on ``/public``
and the rest on ``/market`` (``urls.route_for``).

Decoding: depth, trade, aggTrade and markPrice frames carry an ``e`` tag and take one typed
decode. Spot bookTicker carries none, so while a bookTicker stream is open a frame whose stream
name says ``@bookTicker`` is decoded as a ``BookTicker`` (USD-M's tagged one too); with none
open, the hot path is the tagged decode alone.

Socket changes never show to subscribers as a gap or a duplicate:
- A replacement socket (rotation before the 24 h cap, ``serverShutdown``, a silent stream)
  runs as a *candidate* next to the live one: its diffs and trades are buffered per symbol
  (``next_sync`` / ``next_trades``) until ``ready_to_promote()``, i.e. every live book can be
  continued from the candidate's buffer. ``promote()`` then moves the candidate's buffers in.
- The book a subscriber holds is kept as ``held`` when its socket goes away; the next socket's
  diffs continue it (``BookSync.adopt``) when they reach back to it, otherwise a REST snapshot
  rebuilds the book and the subscriber gets one catch-up ``BookDelta`` from the held book to
  the new one instead of a ``BookReset``. Held books that stay unresolved too long are reset
  by the actor (``expire_held``): a stale book is never kept silently.
- Trades pass a per-symbol ``TradeTape``: ids at or below the last delivered one are dropped
  (the overlap of two sockets), a jump in ids holds the stream until the missed trades are
  fetched over REST (``symbols_needing_trades`` / ``on_rest_trades``).
- bbo and mark are states, not histories: a candidate socket's quotes are ignored and the new
  socket's are delivered from promotion on (no de-duplication). aggTrades are buffered like
  trades and de-duplicated by aggregate id (ids at or below the last delivered one are
  dropped); a jump in aggregate ids is *not* backfilled (counted in ``agg_gaps``; a consumer
  can check ``first_trade_id`` continuity itself).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from loguru import logger

from exconn.book.orderbook import OrderBook
from exconn.book.sync import BookSync, SyncResult
from exconn.messages import BookDeltaText, BookReset, BookSnapshot, BookStale
from exconn.model.enums import Market
from exconn.model.instruments import Instrument
from exconn.model.symbols import SymbolMap
from exconn.outbox import Outbox, Route, routes_of
from exconn.topics import make_topic, parse_topic
from exconn.venues.binance import urls
from exconn.venues.binance.book_sync import SPOT_RULES, USDM_RULES
from exconn.venues.binance.parse import (
    EXCHANGE,
    encode_trade,
    parse_agg_trade,
    parse_book_delta,
    parse_book_ticker,
    parse_mark_price,
    parse_rest_trade,
)
from exconn.venues.binance.wire import (
    AggTradeEvent,
    BookTicker,
    Combined,
    DepthSnapshot,
    DepthUpdate,
    MarkPriceUpdate,
    RestTrade,
    ServerShutdown,
    TradeEvent,
    combined_book_ticker_decoder,
    control_decoder,
)

WIRE_DECIMALS = 8

# Every tagged event a routed topic kind produces, in one decoder (a tagged union is one dict
# lookup per frame, so the depth/trade hot path costs what it did with two members).
_tagged_decoder = msgspec.json.Decoder(
    Combined[DepthUpdate | TradeEvent | AggTradeEvent | MarkPriceUpdate | ServerShutdown]
)
_BOOK_TICKER = b"@bookTicker"
_NAME_WINDOW = 64  # '{"stream":"' + the longest symbol + '@bookTicker' fits well within
MALFORMED_LOG_EVERY = 1000  # log the first malformed frame, then one in this many


class TradeTape:
    """De-duplicates and gap-checks one symbol's trades by id (Binance trade ids are
    consecutive per symbol, so a jump means trades were missed)."""

    __slots__ = ("hold", "last", "lost")

    def __init__(self) -> None:
        self.last: int | None = None  # id of the last trade delivered
        self.hold: list[TradeEvent] | None = None  # live trades waiting behind a backfill
        self.lost = 0  # trades that could not be recovered

    def offer(self, trade: TradeEvent) -> bool:
        """True: deliver ``trade`` now. False: a duplicate (dropped) or held for a backfill."""
        tid = trade.t
        if self.hold is not None:
            if not self.hold or tid > self.hold[-1].t:
                self.hold.append(trade)
            return False
        last = self.last
        if last is not None:
            if tid <= last:
                return False
            if tid > last + 1:
                self.hold = [trade]
                return False
        self.last = tid
        return True

    def backfill(self, rows: Sequence[RestTrade]) -> tuple[list[RestTrade], list[TradeEvent]]:
        """Resolve a hold with REST trades (ascending ids): what to deliver, in order."""
        held = self.hold or []
        self.hold = None
        last = self.last if self.last is not None else -1
        upto = held[0].t if held else None
        rest = [r for r in rows if r.id > last and (upto is None or r.id < upto)]
        expected = (upto - last - 1) if upto is not None and last >= 0 else len(rest)
        self.lost += max(0, expected - len(rest))
        if rest:
            self.last = rest[-1].id
        live: list[TradeEvent] = []
        for t in held:
            if self.last is None or t.t > self.last:
                live.append(t)
                self.last = t.t
        return rest, live

    def reset(self) -> None:
        self.last = None
        self.hold = None


@dataclass
class SymbolFeed:
    """Everything the handler keeps for one venue symbol."""

    instrument: Instrument
    book_topic: str
    trade_topic: str
    sync: BookSync
    book_routes: tuple[Route, ...] = ()
    trade_routes: tuple[Route, ...] = ()
    # The book subscribers hold while the current socket has not continued it yet.
    held: OrderBook | None = None
    held_fresh: bool = False
    next_sync: BookSync | None = None  # the candidate socket's diffs (make-before-break)
    next_trades: list[TradeEvent] = field(default_factory=list)
    tape: TradeTape = field(default_factory=TradeTape)
    bbo_routes: tuple[Route, ...] = ()
    agg_routes: tuple[Route, ...] = ()
    mark_routes: tuple[Route, ...] = ()
    last_agg: int | None = None  # aggregate id of the last aggTrade delivered
    next_aggs: list[AggTradeEvent] = field(default_factory=list)  # the candidate's aggTrades


@dataclass
class RouteChange:
    """What the connection must do after a route update."""

    subscribe: list[str] = field(default_factory=list)
    unsubscribe: list[str] = field(default_factory=list)


class StreamHandler:
    """Decodes combined-stream frames, keeps the books in sync, emits model events."""

    def __init__(self, market: Market, instruments: Iterable[Instrument]) -> None:
        self.market = market
        self.market_name = market.value
        instruments = list(instruments)
        self.symbols = SymbolMap.from_instruments(instruments) if instruments else None
        self._instruments = {i.venue_symbol: i for i in instruments}
        self._rules = SPOT_RULES if market is Market.SPOT else USDM_RULES
        self.feeds: dict[str, SymbolFeed] = {}  # venue symbol -> feed
        self.streams: set[str] = set()
        self.malformed = 0
        self.resyncs = 0
        self.shutdown_notices = 0
        self.agg_gaps = 0  # jumps in aggregate ids (not backfilled)
        self._bbo_open = 0  # bookTicker streams open: frames are then classified by name
        self._log = logger.bind(exchange=EXCHANGE, market=self.market_name)

    # -- routes ---------------------------------------------------------------------------------
    def set_route(self, topic: str, subscribers: Sequence[Any], out: Outbox) -> RouteChange:
        """Route a concrete topic to ``subscribers`` (empty closes it). Raises ValueError or
        exconn.errors.UnknownSymbol for a topic this connection cannot serve."""
        t = parse_topic(topic)
        if t.exchange != EXCHANGE or t.market != self.market_name:
            raise ValueError(f"{topic}: not a binance {self.market_name} topic")
        if self.symbols is None:
            raise ValueError(f"{topic}: no instruments loaded")
        venue_symbol = self.symbols.to_venue(t.symbol)
        stream = urls.stream_for(t.kind, venue_symbol, self.market)
        feed = self._feed(venue_symbol)
        routes = routes_of(subscribers)
        change = RouteChange()
        if t.kind == "book":
            old = {k for k, _ in feed.book_routes}
            feed.book_routes = routes
            if feed.sync.live:
                fresh = tuple(r for r in routes if r[0] not in old)
                if fresh:
                    out.add(fresh, self._snapshot_event(feed))
            if not routes:
                feed.sync.reset()
                feed.held = None
                feed.next_sync = None
        elif t.kind == "trades":
            feed.trade_routes = routes
            if not routes:
                feed.tape.reset()
                feed.next_trades = []
        elif t.kind == "bbo":
            feed.bbo_routes = routes
        elif t.kind == "aggtrades":
            feed.agg_routes = routes
            if not routes:
                feed.last_agg = None
                feed.next_aggs = []
        else:  # "mark" (stream_for refused every other kind)
            feed.mark_routes = routes
        if routes and stream not in self.streams:
            self.streams.add(stream)
            change.subscribe.append(stream)
        elif not routes and stream in self.streams:
            self.streams.discard(stream)
            change.unsubscribe.append(stream)
        self._bbo_open = sum(1 for s in self.streams if s.endswith("@bookTicker"))
        return change

    def _feed(self, venue_symbol: str) -> SymbolFeed:
        feed = self.feeds.get(venue_symbol)
        if feed is None:
            inst = self._instruments[venue_symbol]
            # Binance sends every price and quantity with at most 8 decimals.
            book = self._new_book()
            feed = SymbolFeed(
                instrument=inst,
                book_topic=make_topic("book", EXCHANGE, self.market_name, inst.symbol),
                trade_topic=make_topic("trades", EXCHANGE, self.market_name, inst.symbol),
                sync=BookSync(self._rules, book),
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
        for raw, data in self._decoded(frames, seen, now):
            if type(data) is DepthUpdate:
                feed = feeds.get(data.s)
                if feed is None or not feed.book_routes:
                    continue
                sync = feed.sync
                prev = sync.book.update_id
                try:
                    # BUFFERED (book not live yet) never raises: only applying parses levels.
                    result = sync.on_diff(data)
                except ValueError:
                    # A level that does not parse: the book may be half-updated, so void it.
                    self._count_malformed(raw)
                    sync.reset()
                    self.resyncs += 1
                    out.add(feed.book_routes, self._reset_event(feed, "malformed depth update"))
                    continue
                if result is SyncResult.APPLIED:
                    out.add(
                        feed.book_routes,
                        parse_book_delta(
                            data.b, data.a, market, feed.instrument.symbol, prev, data.u, data.E
                        ),
                    )
                elif result is SyncResult.BUFFERED:
                    if feed.held is not None:
                        self._bridge(feed, out)
                elif result is SyncResult.GAP:
                    self.resyncs += 1
                    self._log.bind(symbol=feed.instrument.symbol).warning(
                        "depth gap: book at {}, next diff starts at {}; resyncing", prev, data.U
                    )
                    out.add(feed.book_routes, self._reset_event(feed, f"gap after {prev}"))
            elif type(data) is TradeEvent:
                feed = feeds.get(data.s)
                if feed is not None and feed.trade_routes and feed.tape.offer(data):
                    out.add(feed.trade_routes, encode_trade(data, market, feed.instrument.symbol))
            elif type(data) is BookTicker:
                feed = feeds.get(data.s)
                if feed is not None and feed.bbo_routes:
                    self._emit(feed, feed.bbo_routes, parse_book_ticker, data, raw, out)
            elif type(data) is AggTradeEvent:
                feed = feeds.get(data.s)
                if feed is not None and feed.agg_routes and self._offer_agg(feed, data):
                    self._emit(feed, feed.agg_routes, parse_agg_trade, data, raw, out)
            elif type(data) is MarkPriceUpdate:
                feed = feeds.get(data.s)
                if feed is not None and feed.mark_routes:
                    self._emit(feed, feed.mark_routes, parse_mark_price, data, raw, out)
            elif type(data) is ServerShutdown:
                self.shutdown_notices += 1

    def _emit(
        self,
        feed: SymbolFeed,
        routes: tuple[Route, ...],
        parser: Any,
        data: Any,
        raw: bytes,
        out: Outbox,
    ) -> None:
        """Parse a bbo / aggTrade / markPrice event for its subscribers; a value that is not a
        number counts the frame malformed instead of failing the drain."""
        try:
            event = parser(data, self.market_name, feed.instrument.symbol)
        except (ArithmeticError, ValueError):  # decimal.InvalidOperation is an ArithmeticError
            self._count_malformed(raw)
            return
        out.add(routes, event)

    def _offer_agg(self, feed: SymbolFeed, agg: AggTradeEvent) -> bool:
        """True: deliver ``agg``. False: its aggregate id was delivered already (the overlap of
        two sockets). A jump in ids is delivered and counted, not backfilled."""
        last = feed.last_agg
        if last is not None:
            if agg.a <= last:
                return False
            if agg.a > last + 1:
                self.agg_gaps += 1
        feed.last_agg = agg.a
        return True

    def _decoded(
        self, frames: Iterable[bytes], seen: dict[str, float] | None, now: float
    ) -> Iterator[tuple[bytes, Any]]:
        """(frame, event) for every frame that decodes; the rest are counted as malformed.
        Records in ``seen`` which streams spoke, for the liveness watchdog."""
        decode = _tagged_decoder.decode
        bbo_open = self._bbo_open
        for raw in frames:
            try:
                # Spot bookTicker has no "e" tag: picked by stream name, only while one is open.
                if bbo_open and raw.find(_BOOK_TICKER, 0, _NAME_WINDOW) > 0:
                    msg = combined_book_ticker_decoder.decode(raw)
                else:
                    msg = decode(raw)
            except msgspec.DecodeError:
                self._not_an_event(raw)
                continue
            if seen is not None:
                seen[msg.stream] = now
            yield raw, msg.data

    def _on_candidate_frames(
        self, frames: Iterable[bytes], seen: dict[str, float] | None, now: float
    ) -> None:
        for _raw, data in self._decoded(frames, seen, now):
            if type(data) is DepthUpdate:
                feed = self.feeds.get(data.s)
                if feed is not None and feed.book_routes:
                    if feed.next_sync is None:
                        feed.next_sync = BookSync(self._rules, self._new_book())
                    feed.next_sync.on_diff(data)
            elif type(data) is TradeEvent:
                feed = self.feeds.get(data.s)
                if feed is not None and feed.trade_routes:
                    feed.next_trades.append(data)
            elif type(data) is AggTradeEvent:
                feed = self.feeds.get(data.s)
                if feed is not None and feed.agg_routes:
                    feed.next_aggs.append(data)
            # bbo and mark quotes of the candidate are dropped: the live socket keeps
            # delivering them until promotion, the candidate's own from then on.
            # A serverShutdown on the candidate shows as its close; nothing to do here.

    # -- socket changes -------------------------------------------------------------------------
    def begin_candidate(self) -> None:
        """A replacement socket opens: buffer its data apart from the live socket's."""
        for feed in self.feeds.values():
            feed.next_sync = BookSync(self._rules, self._new_book()) if feed.book_routes else None
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
            if feed.book_routes:
                if feed.sync.live:
                    feed.held, feed.held_fresh = feed.sync.book, feed.sync.fresh
                feed.sync = feed.next_sync or BookSync(self._rules, self._new_book())
                if feed.held is not None:
                    self._bridge(feed, out)
            feed.next_sync = None
            trades, feed.next_trades = feed.next_trades, []
            for t in trades:
                if feed.trade_routes and feed.tape.offer(t):
                    out.add(feed.trade_routes, encode_trade(t, market, feed.instrument.symbol))
            aggs, feed.next_aggs = feed.next_aggs, []
            for agg in aggs:
                if feed.agg_routes and self._offer_agg(feed, agg):
                    self._emit(feed, feed.agg_routes, parse_agg_trade, agg, b"", out)

    def on_disconnect(self, reason: str, out: Outbox, *, announce: bool = True) -> None:
        """The live socket is gone. Live books are held (subscribers keep them, unchanged)
        until the next socket continues them or ``expire_held`` gives up; books still syncing
        were never delivered, so they just start over. Unless a replacement socket takes
        over at once (``announce=False``), subscribers are told their book is stale: a book
        that silently stops updating looks like a quiet market."""
        for feed in self.feeds.values():
            if feed.book_routes and feed.sync.live:
                feed.held, feed.held_fresh = feed.sync.book, feed.sync.fresh
                feed.sync = BookSync(self._rules, self._new_book())
                if announce:
                    out.add(feed.book_routes, self._stale_event(feed, reason))
            else:
                feed.sync.reset()

    def held_symbols(self) -> list[str]:
        return [s for s, f in self.feeds.items() if f.held is not None]

    def expire_held(self, reason: str, out: Outbox) -> None:
        """Books held too long: subscribers must drop them (a snapshot follows on resync)."""
        for feed in self.feeds.values():
            if feed.held is not None:
                feed.held = None
                self.resyncs += 1
                out.add(feed.book_routes, self._reset_event(feed, reason))

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
        symbol = feed.instrument.symbol
        for prev, diff in applied:
            out.add(
                feed.book_routes,
                parse_book_delta(diff.b, diff.a, self.market_name, symbol, prev, diff.u, diff.E),
            )
        if result is SyncResult.GAP:
            self.resyncs += 1
            out.add(feed.book_routes, self._reset_event(feed, "gap after socket change"))

    def _new_book(self) -> OrderBook:
        return OrderBook(WIRE_DECIMALS, WIRE_DECIMALS)

    # -- trade backfill -------------------------------------------------------------------------
    def symbols_needing_trades(self) -> list[str]:
        return [s for s, f in self.feeds.items() if f.trade_routes and f.tape.hold is not None]

    def on_rest_trades(self, venue_symbol: str, rows: Sequence[RestTrade], out: Outbox) -> int:
        """Deliver the trades a socket change missed, then the live ones held behind them.
        Returns how many could not be recovered (older than the REST window)."""
        feed = self.feeds[venue_symbol]
        before = feed.tape.lost
        rest, live = feed.tape.backfill(sorted(rows, key=lambda r: r.id))
        symbol = feed.instrument.symbol
        for row in rest:
            out.add(feed.trade_routes, parse_rest_trade(row, self.market_name, symbol))
        for t in live:
            out.add(feed.trade_routes, encode_trade(t, self.market_name, symbol))
        return feed.tape.lost - before

    def _not_an_event(self, raw: bytes) -> None:
        if raw.find(_BOOK_TICKER, 0, _NAME_WINDOW) > 0:
            try:
                combined_book_ticker_decoder.decode(raw)
                return  # a quote of a stream closed moments ago (still in flight): not malformed
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
        self._count_malformed(raw)

    def _count_malformed(self, raw: bytes) -> None:
        self.malformed += 1
        if self.malformed % MALFORMED_LOG_EVERY == 1:
            self._log.warning(
                "skipped malformed frame #{} ({} bytes): {!r}", self.malformed, len(raw), raw[:120]
            )

    # -- snapshots ------------------------------------------------------------------------------
    def symbols_needing_snapshot(self) -> list[str]:
        return [s for s, f in self.feeds.items() if f.book_routes and f.sync.needs_snapshot()]

    def on_snapshot(self, venue_symbol: str, snapshot: DepthSnapshot, out: Outbox) -> SyncResult:
        feed = self.feeds[venue_symbol]
        result = feed.sync.on_snapshot(snapshot.lastUpdateId, snapshot.bids, snapshot.asks)
        if result is SyncResult.SYNCED:
            held, feed.held = feed.held, None
            book = feed.sync.book
            if held is not None and book.update_id > held.update_id:
                # Subscribers hold `held`: one delta to the rebuilt book instead of a reset.
                bids, asks = held.diff_to(book)
                out.add(
                    feed.book_routes,
                    BookDeltaText(
                        exchange=EXCHANGE,
                        market=self.market_name,
                        symbol=feed.instrument.symbol,
                        prev_update_id=held.update_id,
                        update_id=book.update_id,
                        bids=bids,
                        asks=asks,
                    ),
                )
            else:
                out.add(feed.book_routes, self._snapshot_event(feed))
        elif result is SyncResult.GAP:
            self.resyncs += 1
        return result

    def _snapshot_event(self, feed: SymbolFeed) -> BookSnapshot:
        book = feed.sync.book
        return BookSnapshot(
            exchange=EXCHANGE,
            market=self.market_name,
            symbol=feed.instrument.symbol,
            update_id=book.update_id,
            bids=tuple(book.bids()),
            asks=tuple(book.asks()),
        )

    def _stale_event(self, feed: SymbolFeed, reason: str) -> BookStale:
        return BookStale(
            exchange=EXCHANGE, market=self.market_name, symbol=feed.instrument.symbol, reason=reason
        )

    def _reset_event(self, feed: SymbolFeed, reason: str) -> BookReset:
        return BookReset(
            exchange=EXCHANGE, market=self.market_name, symbol=feed.instrument.symbol, reason=reason
        )
