"""Bybit's book-sync rules (../shared/reference/bybit.md §7), plugged into
``exconn.book.sync.BookSync``.

Bybit sends the snapshot in the stream itself: the first message after subscribing is a
``snapshot`` and every later one a ``delta``. So there is no REST snapshot to fetch and nothing
to bridge: the snapshot's ``u`` is the book's id and each delta must follow it.

- A ``snapshot`` replaces the book, whenever it comes (Bybit re-sends one after internal
  problems); so does any message with ``u == 1`` (the service restarted and counts again).
  ``replaces_book`` says which messages those are; the caller loads them with
  ``BookSync.on_snapshot``.
- A delta with ``u`` at or below the book's is stale and dropped.
- Continuity: the docs state no rule (UNCONFIRMED in bybit.md). exconn enforces
  ``u == previous u + 1`` (``RULES``), because that is what the one recorded V5 sequence shows
  (corpus ``nautilus__2024-12-01_XRPUSDT_ob500.data``: 49 deltas, each ``u`` one above the
  last) and what the simulator sends, and because the two mistakes cost very differently: a
  false gap costs one resubscription (the fresh snapshot comes in-stream within
  milliseconds), a missed gap leaves a wrong book. ``LENIENT_RULES`` (any increase continues)
  is there for a venue that turns out to skip ids; ``BookSync.gaps`` would show it.
- Level 1 (``orderbook.1``) is snapshot-only and re-pushes an unchanged snapshot with the same
  ``u`` every 3 s: a snapshot never fails continuity, so the repeat is harmless.

A gap means resubscribe (unsubscribe, subscribe) for a fresh snapshot: ``BookSync`` clears the
book and waits for ``on_snapshot`` as it does for a REST snapshot on Binance.
"""

from __future__ import annotations

from exconn.venues.bybit.wire import OrderbookMessage, PriceLevel

SNAPSHOT = "snapshot"
RESTART_ID = 1  # u == 1: the book service restarted; the message is a snapshot


def replaces_book(msg: OrderbookMessage) -> bool:
    """True for a message that must replace the book (a snapshot, or ``u == 1``)."""
    return msg.type == SNAPSHOT or msg.data.u == RESTART_ID


class BybitSyncRules:
    """The ``SyncRules`` of a Bybit depth topic, over ``OrderbookMessage``."""

    def first_id(self, diff: OrderbookMessage) -> int:
        return diff.data.u

    def last_id(self, diff: OrderbookMessage) -> int:
        return diff.data.u

    def bids(self, diff: OrderbookMessage) -> list[PriceLevel]:
        return diff.data.b

    def asks(self, diff: OrderbookMessage) -> list[PriceLevel]:
        return diff.data.a

    def snapshot_too_old(self, snapshot_id: int, first_buffered: OrderbookMessage) -> bool:
        # Deltas buffered before an in-stream snapshot arrived before it, so they are older
        # (dropped as stale on replay), never newer: the snapshot is never too old.
        return False

    def is_stale(self, diff: OrderbookMessage, book_id: int, first: bool) -> bool:
        return diff.data.u <= book_id

    def continues(self, diff: OrderbookMessage, book_id: int, first: bool) -> bool:
        return diff.data.u == book_id + 1


class LenientSyncRules(BybitSyncRules):
    """Any increase of ``u`` continues the book (what pybit and nautilus assume)."""

    def continues(self, diff: OrderbookMessage, book_id: int, first: bool) -> bool:
        return diff.data.u > book_id


RULES = BybitSyncRules()
LENIENT_RULES = LenientSyncRules()
