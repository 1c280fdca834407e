"""One symbol's ``book`` topic across socket changes, the same on every venue (pure).

A venue's stream handler keeps, per symbol, the book its live socket syncs, the book a
replacement socket builds apart from it (make-before-break), and the book subscribers hold
while no socket has continued it yet (``held``: after a lost socket or a promotion). The
events subscribers see for those moves are the same everywhere: a ``BookSnapshot`` for a new
subscriber or a rebuilt book, one catch-up ``BookDeltaText`` from the held book to the live
one instead of a reset, ``BookStale`` when the socket goes, ``BookReset`` when a held book
expires. This module owns that state and those events.

What stays with each venue (``venues/<venue>/streams.py``) is *when* a socket's data
continues a held book: Binance replays a diff chain that reaches back to it, or rebuilds from a
REST snapshot; Bybit waits for an in-stream snapshot at or past it. A venue's ``SymbolFeed``
extends ``BookFeed`` with its other topic kinds, so the hot path reads ``feed.sync`` and
``feed.book_routes`` as plain attributes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from exconn.book.orderbook import OrderBook
from exconn.book.sync import BookSync, SyncRules
from exconn.messages import BookDeltaText, BookReset, BookSnapshot, BookStale
from exconn.model.instruments import Instrument
from exconn.outbox import Outbox, Route


@dataclass(slots=True, kw_only=True, eq=False)
class BookFeed:
    """The ``book`` topic of one venue symbol: its syncs, subscribers and held book."""

    instrument: Instrument
    exchange: str  # as events name it ("binance"), from the handler, not the instrument
    market: str
    rules: SyncRules
    price_scale: int  # decimals the venue prints prices with (OrderBook's fast parse path)
    qty_scale: int
    max_buffer: int = 50_000  # diffs a sync keeps while it waits for a snapshot
    symbol: str = field(init=False)  # exconn's name, read on every event
    sync: BookSync = field(init=False)  # the live socket's book
    book_routes: tuple[Route, ...] = ()
    # The book subscribers hold while the current socket has not continued it yet.
    held: OrderBook | None = None
    held_fresh: bool = False  # ``held`` came from a snapshot no diff has continued yet
    next_sync: BookSync | None = None  # the candidate socket's book (make-before-break)

    def __post_init__(self) -> None:
        self.symbol = self.instrument.symbol
        self.sync = self.new_sync()

    def new_sync(self) -> BookSync:
        return BookSync(self.rules, OrderBook(self.price_scale, self.qty_scale), self.max_buffer)

    # -- subscribers ----------------------------------------------------------------------------
    def route(self, routes: tuple[Route, ...], out: Outbox) -> None:
        """Set the book's subscribers: new ones of a live book get its snapshot (the others
        hold it already); with none left the book and its socket states are forgotten."""
        old = {key for key, _ in self.book_routes}
        self.book_routes = routes
        if self.sync.live:
            fresh = tuple(r for r in routes if r[0] not in old)
            if fresh:
                out.add(fresh, self.snapshot_event())
        if not routes:
            self.sync.reset()
            self.held = None
            self.next_sync = None

    # -- socket changes -------------------------------------------------------------------------
    def lose_socket(self, reason: str, out: Outbox, *, announce: bool) -> None:
        """The live socket is gone. A live book is held (subscribers keep it, unchanged) and
        ``announce`` tells them it is stale: a book that silently stops updating looks like a
        quiet market. A book still syncing was never delivered, so it just starts over."""
        if self.book_routes and self.sync.live:
            self._hold()
            self.sync = self.new_sync()
            if announce:
                out.add(self.book_routes, self.stale_event(reason))
        else:
            self.sync.reset()

    def begin_candidate(self) -> None:
        """A replacement socket opens: its book is built apart until promotion."""
        self.next_sync = self.new_sync() if self.book_routes else None

    def take_candidate(self) -> None:
        """The candidate's book becomes the live one; a live book it replaces is held until
        the venue's rules say the new one continues it."""
        if self.book_routes:
            if self.sync.live:
                self._hold()
            self.sync = self.next_sync or self.new_sync()
        self.next_sync = None

    def _hold(self) -> None:
        # Subscribers may still hold an older book (a candidate promoted while behind): that
        # one is what the next catch-up delta must start from.
        if self.held is None:
            self.held, self.held_fresh = self.sync.book, self.sync.fresh

    def catch_up(self, out: Outbox) -> None:
        """Subscribers hold ``held``: one delta to the live book (it may be empty) instead of
        a reset. The caller has checked the live book is at or past the held one."""
        held, book = self.held, self.sync.book
        if held is None:
            return  # nothing held: subscribers already follow the live book
        self.held = None
        bids, asks = held.diff_to(book)
        out.add(
            self.book_routes,
            BookDeltaText(
                exchange=self.exchange,
                market=self.market,
                symbol=self.symbol,
                prev_update_id=held.update_id,
                update_id=book.update_id,
                bids=bids,
                asks=asks,
            ),
        )

    def expire_held(self, reason: str, out: Outbox) -> bool:
        """Drop a held book no socket continued in time; True when subscribers had one (they
        get a ``BookReset``; a snapshot follows on resync)."""
        if self.held is None:
            return False
        self.held = None
        out.add(self.book_routes, self.reset_event(reason))
        return True

    # -- events ---------------------------------------------------------------------------------
    def delta_event(
        self,
        bids: list[tuple[str, str]],
        asks: list[tuple[str, str]],
        prev_update_id: int,
        update_id: int,
        event_ms: int,
    ) -> BookDeltaText:
        """A diff already applied to the book (the hot path): levels stay the venue's strings
        until the subscriber decodes them as Decimal."""
        return BookDeltaText(
            exchange=self.exchange,
            market=self.market,
            symbol=self.symbol,
            prev_update_id=prev_update_id,
            update_id=update_id,
            bids=bids,
            asks=asks,
            ts=event_ms / 1000,
        )

    def snapshot_event(self, ts: datetime | None = None) -> BookSnapshot:
        book = self.sync.book
        return BookSnapshot(
            exchange=self.exchange,
            market=self.market,
            symbol=self.symbol,
            update_id=book.update_id,
            bids=tuple(book.bids()),
            asks=tuple(book.asks()),
            ts=ts,
        )

    def stale_event(self, reason: str) -> BookStale:
        return BookStale(
            exchange=self.exchange, market=self.market, symbol=self.symbol, reason=reason
        )

    def reset_event(self, reason: str) -> BookReset:
        return BookReset(
            exchange=self.exchange, market=self.market, symbol=self.symbol, reason=reason
        )
