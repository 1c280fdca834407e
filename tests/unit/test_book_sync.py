"""The generic sync state machine under Binance's spot and USD-M rules (binance.md §7)."""

from __future__ import annotations

from exconn.book import BookSync, OrderBook, SyncResult
from exconn.venues.binance.book_sync import SPOT_RULES, USDM_RULES
from exconn.venues.binance.wire import DepthUpdate


def diff(first: int, last: int, bids=(), asks=(), pu: int | None = None) -> DepthUpdate:
    return DepthUpdate(E=0, s="X", U=first, u=last, b=list(bids), a=list(asks), pu=pu)


SNAP_BIDS = [("10", "1")]
SNAP_ASKS = [("11", "1")]


def test_spot_buffers_until_snapshot_then_drops_and_applies() -> None:
    sync = BookSync(SPOT_RULES, OrderBook())
    assert sync.on_diff(diff(95, 100, bids=[("9", "1")])) is SyncResult.BUFFERED
    assert sync.on_diff(diff(101, 103, bids=[("10", "2")])) is SyncResult.BUFFERED
    assert sync.needs_snapshot()
    assert sync.on_snapshot(101, SNAP_BIDS, SNAP_ASKS) is SyncResult.SYNCED
    # 95-100 dropped (u <= 101); 101-103 bridges (U <= 102) and is applied.
    assert sync.book.update_id == 103
    assert sync.book.bids() == [(10, 2)]
    assert sync.on_diff(diff(104, 104, asks=[("11", "0")])) is SyncResult.APPLIED
    assert sync.book.asks() == []
    assert sync.on_diff(diff(100, 104)) is SyncResult.DROPPED


def test_spot_event_ending_at_last_update_id_is_dropped() -> None:
    sync = BookSync(SPOT_RULES, OrderBook())
    sync.on_diff(diff(98, 100, bids=[("1", "1")]))
    assert sync.on_snapshot(100, SNAP_BIDS, SNAP_ASKS) is SyncResult.SYNCED
    assert sync.book.bids() == [(10, 1)] and sync.book.update_id == 100


def test_spot_snapshot_too_old_is_refused_and_book_stays_empty() -> None:
    sync = BookSync(SPOT_RULES, OrderBook())
    sync.on_diff(diff(200, 210))
    assert sync.on_snapshot(150, SNAP_BIDS, SNAP_ASKS) is SyncResult.SNAPSHOT_TOO_OLD
    assert not sync.live and len(sync.book) == 0
    # lastUpdateId == U - 1 is a valid bridge, not "too old".
    assert sync.on_snapshot(199, SNAP_BIDS, SNAP_ASKS) is SyncResult.SYNCED
    assert sync.book.update_id == 210


def test_spot_gap_clears_book_and_keeps_the_breaking_diff() -> None:
    sync = BookSync(SPOT_RULES, OrderBook())
    sync.on_snapshot(100, SNAP_BIDS, SNAP_ASKS)
    assert sync.on_diff(diff(101, 102)) is SyncResult.APPLIED
    assert sync.on_diff(diff(104, 105)) is SyncResult.GAP
    assert not sync.live and len(sync.book) == 0 and sync.needs_snapshot() and sync.gaps == 1
    assert sync.on_diff(diff(106, 107, bids=[("12", "1")])) is SyncResult.BUFFERED
    assert sync.on_snapshot(103, SNAP_BIDS, SNAP_ASKS) is SyncResult.SYNCED
    assert sync.book.update_id == 107 and sync.book.best_bid() == (12, 1)


def test_gap_inside_buffer_replay_is_reported() -> None:
    sync = BookSync(SPOT_RULES, OrderBook())
    for d in (diff(101, 102), diff(105, 106), diff(107, 108)):
        sync.on_diff(d)
    assert sync.on_snapshot(100, SNAP_BIDS, SNAP_ASKS) is SyncResult.GAP
    assert not sync.live and len(sync.book) == 0
    assert sync.on_snapshot(104, SNAP_BIDS, SNAP_ASKS) is SyncResult.SYNCED
    assert sync.book.update_id == 108


def test_usdm_uses_pu_chain() -> None:
    sync = BookSync(USDM_RULES, OrderBook())
    sync.on_diff(diff(90, 99, pu=89))
    sync.on_diff(diff(100, 110, pu=99))  # U <= lid <= u bridges
    sync.on_diff(diff(111, 115, pu=110))
    assert sync.on_snapshot(105, SNAP_BIDS, SNAP_ASKS) is SyncResult.SYNCED
    assert sync.book.update_id == 115
    assert sync.on_diff(diff(117, 120, pu=116)) is SyncResult.GAP


def test_usdm_event_with_u_equal_last_update_id_is_kept() -> None:
    # USD-M drops u < lastUpdateId (strict): u == lastUpdateId bridges.
    sync = BookSync(USDM_RULES, OrderBook())
    sync.on_diff(diff(95, 105, bids=[("9", "1")], pu=94))
    assert sync.on_snapshot(105, SNAP_BIDS, SNAP_ASKS) is SyncResult.SYNCED
    assert sync.book.best_bid() == (10, 1) and len(sync.book.bids()) == 2
