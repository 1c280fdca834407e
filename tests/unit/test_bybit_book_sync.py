"""Bybit's book-sync rules in ``exconn.book.sync.BookSync`` (bybit.md §7), without the corpus."""

from __future__ import annotations

from decimal import Decimal

from exconn.book import BookSync, OrderBook, SyncResult
from exconn.venues.bybit.book_sync import LENIENT_RULES, RULES, replaces_book
from exconn.venues.bybit.wire import OrderbookData, OrderbookMessage


def msg(kind: str, u: int, bids: list | None = None, asks: list | None = None) -> OrderbookMessage:
    data = OrderbookData(s="BTCUSDT", b=bids or [], a=asks or [], u=u)
    return OrderbookMessage(topic="orderbook.50.BTCUSDT", type=kind, ts=1, data=data)


def load(sync: BookSync, m: OrderbookMessage) -> SyncResult:
    return sync.on_snapshot(m.data.u, m.data.b, m.data.a)


def test_snapshot_then_consecutive_deltas() -> None:
    sync = BookSync(RULES, OrderBook(2, 3))
    snap = msg("snapshot", 100, [("10.00", "1.000")], [("11.00", "1.000")])
    assert load(sync, snap) is SyncResult.SYNCED
    assert sync.on_diff(msg("delta", 101, [("10.00", "0")], [("10.50", "2.000")])) is (
        SyncResult.APPLIED
    )
    assert sync.on_diff(msg("delta", 101)) is SyncResult.DROPPED  # u <= book: stale
    assert sync.on_diff(msg("delta", 90)) is SyncResult.DROPPED
    assert sync.book.best_bid() is None
    assert sync.book.best_ask() == (Decimal("10.50"), Decimal("2.000"))
    assert sync.on_diff(msg("delta", 103)) is SyncResult.GAP  # 102 is missing
    assert not sync.live and len(sync.book) == 0 and sync.gaps == 1


def test_what_replaces_the_book() -> None:
    assert replaces_book(msg("snapshot", 5))
    assert replaces_book(msg("delta", 1))  # service restart: ids count from 1 again
    assert not replaces_book(msg("delta", 2))


def test_level_1_repeats_its_snapshot_with_the_same_id() -> None:
    sync = BookSync(RULES, OrderBook(2, 3))
    for _ in range(3):  # re-pushed every 3 s while unchanged: never a gap
        snap = msg("snapshot", 7, [("10.00", "1.000")], [("11.00", "1.000")])
        assert load(sync, snap) is SyncResult.SYNCED
    assert sync.live and sync.gaps == 0 and sync.book.update_id == 7


def test_lenient_rules_accept_any_increase() -> None:
    sync = BookSync(LENIENT_RULES, OrderBook(2, 3))
    load(sync, msg("snapshot", 100))
    assert sync.on_diff(msg("delta", 105)) is SyncResult.APPLIED
    assert sync.on_diff(msg("delta", 104)) is SyncResult.DROPPED
    assert sync.gaps == 0
