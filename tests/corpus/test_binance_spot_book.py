"""Recorded Binance spot depth sequences rebuild through exconn's book sync with no gap, and a
removed diff is detected (../shared/corpus/MANIFEST.md section A, #1 and #5)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from exconn.book import BookSync, OrderBook, SyncResult
from exconn.venues.binance.book_sync import SPOT_RULES
from exconn.venues.binance.wire import DepthSnapshot, combined_decoder, depth_snapshot_decoder
from tests.corpus.recordings import (
    cryptofeed_rest_bodies,
    cryptofeed_ws_payloads,
    hftbacktest_lines,
)

BTC_FILE = "binance/spot/ws/hftbacktest__btcusdt_20240808.gz"
NKN_WS = "binance/spot/ws/cryptofeed__BINANCE.ws.1.0"
NKN_REST = "binance/spot/rest/cryptofeed__BINANCE.http.0.0"


class ReferenceBook:
    """The test's own book: Decimal dicts and the documented rules written out longhand."""

    def __init__(self, snapshot: dict) -> None:
        self.bids = {Decimal(p): Decimal(q) for p, q in snapshot["bids"]}
        self.asks = {Decimal(p): Decimal(q) for p, q in snapshot["asks"]}
        self.last = snapshot["lastUpdateId"]

    def apply(self, diff: dict) -> None:
        if diff["u"] <= self.last:
            return
        for side, key in ((self.bids, "b"), (self.asks, "a")):
            for p, q in diff[key]:
                if Decimal(q) == 0:
                    side.pop(Decimal(p), None)
                else:
                    side[Decimal(p)] = Decimal(q)
        self.last = diff["u"]

    def top(self, n: int) -> tuple[list, list]:
        return sorted(self.bids.items(), reverse=True)[:n], sorted(self.asks.items())[:n]


def replay_hftbacktest(lines: list[bytes]) -> tuple[BookSync, list[SyncResult], list]:
    """Feed the file in arrival order, as the connection actor would see it."""
    sync = BookSync(SPOT_RULES, OrderBook())
    results: list[SyncResult] = []
    tops: list = []  # (update_id, best bid, best ask) after each applied diff
    for payload in lines:
        if payload.startswith(b'{"lastUpdateId"'):
            snap = depth_snapshot_decoder.decode(payload)
            results.append(sync.on_snapshot(snap.lastUpdateId, snap.bids, snap.asks))
            continue
        if b"@depth" not in payload[:40]:
            continue
        diff = combined_decoder.decode(payload).data
        r = sync.on_diff(diff)
        results.append(r)
        if r is SyncResult.APPLIED:
            tops.append((sync.book.update_id, sync.book.best_bid(), sync.book.best_ask()))
    return sync, results, tops


@pytest.fixture(scope="module")
def btc_lines() -> list[bytes]:
    from tests.conftest import CORPUS, require_shared

    return hftbacktest_lines(require_shared(CORPUS / BTC_FILE))


def test_btcusdt_snapshot_after_bridging_diff_rebuilds_gap_free(btc_lines: list[bytes]) -> None:
    sync, results, tops = replay_hftbacktest(btc_lines)
    assert SyncResult.GAP not in results
    assert results.count(SyncResult.SYNCED) == 1
    # MANIFEST: 3449 diffs applied gap-free after the snapshot (the buffered bridge included).
    applied_live = results.count(SyncResult.APPLIED)
    assert applied_live >= 3440
    assert sync.live and not sync.book.is_crossed()

    # Independent check 1: the same file replayed through a Decimal-dict book.
    snapshot_json = next(json.loads(p) for p in btc_lines if p.startswith(b'{"lastUpdateId"'))
    ref = ReferenceBook(snapshot_json)
    for payload in btc_lines:
        if b"@depth" in payload[:40]:
            ref.apply(json.loads(payload)["data"])
    ref_bids, ref_asks = ref.top(20)
    assert sync.book.bids(20) == ref_bids
    assert sync.book.asks(20) == ref_asks
    assert sync.book.update_id == ref.last

    # Independent check 2: the exchange's own bookTicker stream. The best bid/ask after a diff
    # ending at u must equal the last bookTicker with an update id <= u.
    tickers = sorted(
        (d["u"], (Decimal(d["b"]), Decimal(d["B"])), (Decimal(d["a"]), Decimal(d["A"])))
        for d in (json.loads(p)["data"] for p in btc_lines if b"@bookTicker" in p[:40])
    )
    ids = [t[0] for t in tickers]
    from bisect import bisect_right

    compared = 0
    for update_id, best_bid, best_ask in tops:
        i = bisect_right(ids, update_id) - 1
        if i < 0 or ids[0] > update_id:
            continue
        _, bid, ask = tickers[i]
        assert (best_bid, best_ask) == (bid, ask), f"top differs from bookTicker at {update_id}"
        compared += 1
    assert compared > 3000


def test_btcusdt_missing_diff_is_a_gap_and_resync_recovers(btc_lines: list[bytes]) -> None:
    depth_idx = [i for i, p in enumerate(btc_lines) if b"@depth" in p[:40]]
    snapshot_at = next(i for i, p in enumerate(btc_lines) if p.startswith(b'{"lastUpdateId"'))
    victim = next(i for i in depth_idx if i > snapshot_at + 200)
    lines = btc_lines[:victim] + btc_lines[victim + 1 :]
    sync, results, _ = replay_hftbacktest(lines)
    assert results.count(SyncResult.GAP) == 1
    assert not sync.live and sync.needs_snapshot() and len(sync.book) == 0
    # A new snapshot from the reference book at the diff just before the gap's successor
    # brings the symbol back: build it independently and hand it over.
    snapshot_json = json.loads(btc_lines[snapshot_at])
    ref = ReferenceBook(snapshot_json)
    after = next(i for i in depth_idx if i > victim)
    first_buffered = combined_decoder.decode(btc_lines[after]).data
    for i in depth_idx:
        d = json.loads(btc_lines[i])["data"]
        if d["u"] < first_buffered.U:
            ref.apply(d)
    assert ref.last == first_buffered.U - 1
    snap = DepthSnapshot(
        lastUpdateId=ref.last,
        bids=[(str(p), str(q)) for p, q in ref.bids.items()],
        asks=[(str(p), str(q)) for p, q in ref.asks.items()],
    )
    assert sync.on_snapshot(snap.lastUpdateId, snap.bids, snap.asks) is SyncResult.SYNCED
    # ... and the resynced book ends exactly where the unbroken recording ends.
    for i in depth_idx:
        ref.apply(json.loads(btc_lines[i])["data"])
    assert (sync.book.bids(20), sync.book.asks(20)) == ref.top(20)
    assert sync.book.update_id == ref.last


def _nkn_sequence(corpus: Path) -> tuple[dict, list[bytes]]:
    snapshot = next(
        body for url, body in cryptofeed_rest_bodies(corpus / NKN_REST) if "NKNUSDT" in url
    )
    diffs = [
        p
        for p in cryptofeed_ws_payloads(corpus / NKN_WS)
        if p.startswith(b'{"stream":"nknusdt@depth')
    ]
    return snapshot, diffs


def test_nknusdt_drops_the_event_ending_at_last_update_id(corpus: Path) -> None:
    snapshot, diffs = _nkn_sequence(corpus)
    first = json.loads(diffs[0])["data"]
    assert first["u"] == snapshot["lastUpdateId"]  # the edge case MANIFEST.md describes
    sync = BookSync(SPOT_RULES, OrderBook())
    sync.on_diff(combined_decoder.decode(diffs[0]).data)
    assert (
        sync.on_snapshot(
            snapshot["lastUpdateId"],
            [tuple(x) for x in snapshot["bids"]],
            [tuple(x) for x in snapshot["asks"]],
        )
        is SyncResult.SYNCED
    )
    assert sync.book.update_id == snapshot["lastUpdateId"]  # the u == lastUpdateId event dropped
    results = [sync.on_diff(combined_decoder.decode(p).data) for p in diffs[1:]]
    assert SyncResult.GAP not in results
    assert results.count(SyncResult.APPLIED) >= 140

    ref = ReferenceBook(snapshot)
    for p in diffs:
        ref.apply(json.loads(p)["data"])
    assert (sync.book.bids(10), sync.book.asks(10)) == ref.top(10)


def test_nknusdt_missing_diff_is_detected(corpus: Path) -> None:
    snapshot, diffs = _nkn_sequence(corpus)
    sync = BookSync(SPOT_RULES, OrderBook())
    sync.on_snapshot(
        snapshot["lastUpdateId"],
        [tuple(x) for x in snapshot["bids"]],
        [tuple(x) for x in snapshot["asks"]],
    )
    del diffs[50]
    results = [sync.on_diff(combined_decoder.decode(p).data) for p in diffs]
    assert results.count(SyncResult.GAP) == 1
    assert not sync.live
