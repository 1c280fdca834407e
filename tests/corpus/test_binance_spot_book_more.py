"""More recorded Binance spot depth sequences: ETHUSDT (MANIFEST section A #2, the happy path
where the first diff after the snapshot has ``U == lastUpdateId + 1``) and the four Binance.US
symbols (#7, same wire format). Each rebuilds gap-free under SPOT_RULES, matches an independent
Decimal book, and a removed diff is detected."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from exconn.book import BookSync, OrderBook, SyncResult
from exconn.venues.binance.book_sync import SPOT_RULES
from exconn.venues.binance.wire import combined_decoder
from tests.corpus.recordings import (
    cryptofeed_rest_bodies,
    cryptofeed_ws_payloads,
    hftbacktest_lines,
)
from tests.corpus.test_binance_spot_book import ReferenceBook, replay_hftbacktest

ETH_FILE = "binance/spot/ws/hftbacktest__ethusdt_20240808.gz"
US_WS = "binance/spot/ws/cryptofeed__BINANCE_US.ws.1.0"
US_REST = "binance/spot/rest/cryptofeed__BINANCE_US.http.0.0"
# MANIFEST A #7: depth events per symbol.
US_COUNTS = {"COMPUSDT": 107, "OMGBUSD": 159, "CRVUSDT": 29, "ZRXUSDT": 41}


@pytest.fixture(scope="module")
def eth_lines() -> list[bytes]:
    from tests.conftest import CORPUS, require_shared

    return hftbacktest_lines(require_shared(CORPUS / ETH_FILE))


def test_ethusdt_rebuilds_gap_free(eth_lines: list[bytes]) -> None:
    snapshot = next(json.loads(p) for p in eth_lines if p.startswith(b'{"lastUpdateId"'))
    lid = snapshot["lastUpdateId"]
    diffs = [json.loads(p)["data"] for p in eth_lines if b"@depth" in p[:40]]
    # The happy path: some diff starts exactly after the snapshot.
    assert any(d["U"] == lid + 1 for d in diffs)
    sync, results, _ = replay_hftbacktest(eth_lines)
    assert SyncResult.GAP not in results and SyncResult.SNAPSHOT_TOO_OLD not in results
    assert results.count(SyncResult.SYNCED) == 1
    ref = ReferenceBook(snapshot)
    for d in diffs:
        ref.apply(d)
    applied = sum(1 for d in diffs if d["u"] > lid)
    assert applied >= 3430  # MANIFEST: 3432
    assert sync.live and not sync.book.is_crossed()
    assert (sync.book.bids(20), sync.book.asks(20)) == ref.top(20)
    assert sync.book.update_id == ref.last == diffs[-1]["u"]


def test_ethusdt_removed_diff_is_a_gap(eth_lines: list[bytes]) -> None:
    at = next(i for i, p in enumerate(eth_lines) if p.startswith(b'{"lastUpdateId"'))
    depth_idx = [i for i, p in enumerate(eth_lines) if b"@depth" in p[:40] and i > at]
    for victim in (depth_idx[3], depth_idx[len(depth_idx) // 2], depth_idx[-2]):
        sync, results, _ = replay_hftbacktest(eth_lines[:victim] + eth_lines[victim + 1 :])
        assert results.count(SyncResult.GAP) == 1, f"removing line {victim} went unnoticed"
        assert not sync.live and len(sync.book) == 0


def _us_sequence(corpus: Path, symbol: str) -> tuple[dict, list[bytes]]:
    snapshot = next(
        body for url, body in cryptofeed_rest_bodies(corpus / US_REST) if f"symbol={symbol}&" in url
    )
    prefix = f'{{"stream":"{symbol.lower()}@depth'.encode()
    diffs = [p for p in cryptofeed_ws_payloads(corpus / US_WS) if p.startswith(prefix)]
    return snapshot, diffs


def _buffer_then_snapshot(snapshot: dict, diffs: list[bytes]) -> tuple[BookSync, SyncResult]:
    """cryptofeed opened the stream before fetching the snapshot: buffer, then replay."""
    sync = BookSync(SPOT_RULES, OrderBook())
    for p in diffs:
        assert sync.on_diff(combined_decoder.decode(p).data) is SyncResult.BUFFERED
    bids = [tuple(x) for x in snapshot["bids"]]
    asks = [tuple(x) for x in snapshot["asks"]]
    return sync, sync.on_snapshot(snapshot["lastUpdateId"], bids, asks)


@pytest.mark.parametrize("symbol", sorted(US_COUNTS))
def test_binance_us_rebuilds_gap_free(corpus: Path, symbol: str) -> None:
    snapshot, diffs = _us_sequence(corpus, symbol)
    sync, result = _buffer_then_snapshot(snapshot, diffs)
    assert result is SyncResult.SYNCED
    decoded = [json.loads(p)["data"] for p in diffs]
    lid = snapshot["lastUpdateId"]
    live = [d for d in decoded if d["u"] > lid]
    assert live[0]["U"] <= lid + 1  # the bridge
    assert all(b["U"] == a["u"] + 1 for a, b in itertools.pairwise(live))
    # MANIFEST's count includes the first recorded event, which ends exactly at lastUpdateId:
    # the spot rule drops it (u <= lastUpdateId), so one fewer is applied.
    assert len(decoded) == US_COUNTS[symbol]
    assert decoded[0]["u"] == lid
    assert len(live) == US_COUNTS[symbol] - 1
    ref = ReferenceBook(snapshot)
    for d in decoded:
        ref.apply(d)
    assert (sync.book.bids(20), sync.book.asks(20)) == ref.top(20)
    assert sync.book.update_id == ref.last == decoded[-1]["u"]


@pytest.mark.parametrize("symbol", sorted(US_COUNTS))
def test_binance_us_removed_diff_is_a_gap(corpus: Path, symbol: str) -> None:
    snapshot, diffs = _us_sequence(corpus, symbol)
    lid = snapshot["lastUpdateId"]
    live_idx = [i for i, p in enumerate(diffs) if json.loads(p)["data"]["u"] > lid]
    del diffs[live_idx[len(live_idx) // 2]]
    sync, result = _buffer_then_snapshot(snapshot, diffs)
    assert result is SyncResult.GAP
    assert not sync.live and sync.needs_snapshot() and len(sync.book) == 0
