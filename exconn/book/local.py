"""A subscriber-side book rebuilt from exconn's book events.

Engines that want a full book keep one ``LocalBook`` per symbol and feed it every
``BookSnapshot``, ``BookDelta`` and ``BookReset`` they receive. It refuses a delta that does not
follow the update id it holds, so a subscriber can never silently hold a wrong book.
"""

from __future__ import annotations

from decimal import Decimal

from exconn.messages import BookDelta, BookReset, BookSnapshot, BookStale


class LocalBook:
    def __init__(self) -> None:
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}
        self.update_id: int | None = None  # None: no valid book (never synced, or reset)
        self.stale = False  # kept but not updating (socket lost); the next delta clears it

    @property
    def valid(self) -> bool:
        return self.update_id is not None

    @property
    def current(self) -> bool:
        """A book to act on: synced and updating."""
        return self.update_id is not None and not self.stale

    def on_event(self, event: BookSnapshot | BookDelta | BookReset | BookStale) -> bool:
        """Apply an event; returns False (and invalidates the book) if a delta does not fit."""
        if isinstance(event, BookStale):
            self.stale = True
            return True
        self.stale = False
        if isinstance(event, BookSnapshot):
            self.bids = dict(event.bids)
            self.asks = dict(event.asks)
            self.update_id = event.update_id
            return True
        if isinstance(event, BookReset):
            self.invalidate()
            return True
        if self.update_id is None:
            return False
        if event.prev_update_id != self.update_id:
            # A delta that does not start where this book ends means an event was lost.
            self.invalidate()
            return False
        for side, levels in ((self.bids, event.bids), (self.asks, event.asks)):
            for price, qty in levels:
                if qty:
                    side[price] = qty
                else:
                    side.pop(price, None)
        self.update_id = event.update_id
        return True

    def invalidate(self) -> None:
        self.bids.clear()
        self.asks.clear()
        self.update_id = None

    def top(
        self, depth: int
    ) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        bids = sorted(self.bids.items(), reverse=True)[:depth]
        asks = sorted(self.asks.items())[:depth]
        return bids, asks

    def best(self) -> tuple[tuple[Decimal, Decimal] | None, tuple[Decimal, Decimal] | None]:
        bid = max(self.bids.items()) if self.bids else None
        ask = min(self.asks.items()) if self.asks else None
        return bid, ask
