"""Binance market-data stream handling: which stream carries which topic, and what each frame
means for the books and subscribers (pure: the connection actor does the I/O around it).

Channel table (binance.md §6): topic kind ``book`` -> ``<s>@depth@100ms`` (diff depth, synced
with REST snapshots under ``book_sync`` rules); ``trades`` -> ``<s>@trade``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from loguru import logger

from exconn.book.orderbook import OrderBook
from exconn.book.sync import BookSync, SyncResult
from exconn.messages import BookReset, BookSnapshot
from exconn.model.enums import Market
from exconn.model.instruments import Instrument
from exconn.model.symbols import SymbolMap
from exconn.outbox import Outbox, Route, routes_of
from exconn.topics import make_topic, parse_topic
from exconn.venues.binance import urls
from exconn.venues.binance.book_sync import SPOT_RULES, USDM_RULES
from exconn.venues.binance.parse import EXCHANGE, encode_trade, parse_book_delta
from exconn.venues.binance.wire import (
    DepthSnapshot,
    DepthUpdate,
    ServerShutdown,
    TradeEvent,
    combined_decoder,
    control_decoder,
)

WIRE_DECIMALS = 8
MALFORMED_LOG_EVERY = 1000  # log the first malformed frame, then one in this many


@dataclass
class SymbolFeed:
    """Everything the handler keeps for one venue symbol."""

    instrument: Instrument
    book_topic: str
    trade_topic: str
    sync: BookSync
    book_routes: tuple[Route, ...] = ()
    trade_routes: tuple[Route, ...] = ()


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
        stream = urls.stream_for(t.kind, venue_symbol)
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
        else:
            feed.trade_routes = routes
        if routes and stream not in self.streams:
            self.streams.add(stream)
            change.subscribe.append(stream)
        elif not routes and stream in self.streams:
            self.streams.discard(stream)
            change.unsubscribe.append(stream)
        return change

    def _feed(self, venue_symbol: str) -> SymbolFeed:
        feed = self.feeds.get(venue_symbol)
        if feed is None:
            inst = self._instruments[venue_symbol]
            # Binance sends every price and quantity with at most 8 decimals.
            book = OrderBook(WIRE_DECIMALS, WIRE_DECIMALS)
            feed = SymbolFeed(
                instrument=inst,
                book_topic=make_topic("book", EXCHANGE, self.market_name, inst.symbol),
                trade_topic=make_topic("trades", EXCHANGE, self.market_name, inst.symbol),
                sync=BookSync(self._rules, book),
            )
            self.feeds[venue_symbol] = feed
        return feed

    # -- frames ---------------------------------------------------------------------------------
    def on_frames(self, frames: Iterable[bytes], out: Outbox) -> None:
        decode = combined_decoder.decode
        feeds = self.feeds
        market = self.market_name
        for raw in frames:
            try:
                data = decode(raw).data
            except msgspec.DecodeError:
                self._not_an_event(raw)
                continue
            if type(data) is DepthUpdate:
                feed = feeds.get(data.s)
                if feed is None or not feed.book_routes:
                    continue
                sync = feed.sync
                if not sync.live:
                    sync.on_diff(data)
                    continue
                prev = sync.book.update_id
                try:
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
                elif result is SyncResult.GAP:
                    self.resyncs += 1
                    self._log.bind(symbol=feed.instrument.symbol).warning(
                        "depth gap: book at {}, next diff starts at {}; resyncing", prev, data.U
                    )
                    out.add(feed.book_routes, self._reset_event(feed, f"gap after {prev}"))
            elif type(data) is TradeEvent:
                feed = feeds.get(data.s)
                if feed is not None and feed.trade_routes:
                    out.add(feed.trade_routes, encode_trade(data, market, feed.instrument.symbol))
            elif type(data) is ServerShutdown:
                self.shutdown_notices += 1

    def _not_an_event(self, raw: bytes) -> None:
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
            out.add(feed.book_routes, self._snapshot_event(feed))
        elif result is SyncResult.GAP:
            self.resyncs += 1
        return result

    def on_disconnect(self, reason: str, out: Outbox) -> None:
        """The socket is gone: every live or syncing book is void until resynced."""
        for feed in self.feeds.values():
            if feed.book_routes and (feed.sync.live or feed.sync.needs_snapshot()):
                out.add(feed.book_routes, self._reset_event(feed, reason))
            feed.sync.reset()

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

    def _reset_event(self, feed: SymbolFeed, reason: str) -> BookReset:
        return BookReset(
            exchange=EXCHANGE, market=self.market_name, symbol=feed.instrument.symbol, reason=reason
        )
