"""Recorded Binance USD-M depth sequences rebuild through exconn's book sync under the ``pu``
rules with no gap, match an independent Decimal book, and a removed diff is detected
(../shared/corpus/MANIFEST.md section A, #3, #4 and #6; rules in binance.md §7.2)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from exconn.book import BookSync, OrderBook, SyncResult
from exconn.venues.binance.book_sync import USDM_RULES
from exconn.venues.binance.wire import combined_decoder, depth_snapshot_decoder
from tests.corpus.recordings import (
    cryptofeed_rest_bodies,
    cryptofeed_ws_payloads,
    hftbacktest_lines,
)

BTC_FILE = "binance/usdm/ws/hftbacktest__btcusdt_20240808__first6392lines.txt"
ETH_FILE = "binance/usdm/ws/hftbacktest__ethusdt_20240808__first6161lines.txt"
CF_WS = "binance/usdm/ws/cryptofeed__BINANCE_FUTURES.ws.1.0"
CF_REST = "binance/usdm/rest/cryptofeed__BINANCE_FUTURES.http.0.0"
CF_SYMBOLS = ("SUSHIUSDT", "AKROUSDT", "KEEPUSDT", "CTKUSDT")


class UsdmReferenceBook:
    """The test's own book: Decimal dicts and the documented USD-M rules written out longhand
    (drop ``u < lastUpdateId``; the first applied event has ``U <= lastUpdateId <= u``; every
    later one has ``pu`` == the previous ``u``). ``gaps`` counts broken chains."""

    def __init__(self, snapshot: dict) -> None:
        self.bids = {Decimal(p): Decimal(q) for p, q in snapshot["bids"]}
        self.asks = {Decimal(p): Decimal(q) for p, q in snapshot["asks"]}
        self.last = snapshot["lastUpdateId"]
        self.first = True
        self.gaps = 0
        self.first_applied: dict | None = None

    def apply(self, diff: dict) -> None:
        if self.first:
            if diff["u"] < self.last:
                return
            if not diff["U"] <= self.last <= diff["u"]:
                self.gaps += 1
                return
            self.first_applied = diff
        elif diff["u"] <= self.last:
            return
        elif diff["pu"] != self.last:
            self.gaps += 1
            return
        for side, key in ((self.bids, "b"), (self.asks, "a")):
            for p, q in diff[key]:
                if Decimal(q) == 0:
                    side.pop(Decimal(p), None)
                else:
                    side[Decimal(p)] = Decimal(q)
        self.last = diff["u"]
        self.first = False

    def top(self, n: int) -> tuple[list, list]:
        return sorted(self.bids.items(), reverse=True)[:n], sorted(self.asks.items())[:n]


def replay(lines: list[bytes]) -> tuple[BookSync, list[SyncResult]]:
    """Feed an hftbacktest file in arrival order, as the connection would see it."""
    sync = BookSync(USDM_RULES, OrderBook())
    results: list[SyncResult] = []
    for payload in lines:
        if payload.startswith(b'{"lastUpdateId"'):
            snap = depth_snapshot_decoder.decode(payload)
            results.append(sync.on_snapshot(snap.lastUpdateId, snap.bids, snap.asks))
        elif b"@depth" in payload[:40]:
            results.append(sync.on_diff(combined_decoder.decode(payload).data))
    return sync, results


def reference_of(lines: list[bytes]) -> UsdmReferenceBook:
    snapshot = next(json.loads(p) for p in lines if p.startswith(b'{"lastUpdateId"'))
    ref = UsdmReferenceBook(snapshot)
    for p in lines:
        if b"@depth" in p[:40]:
            ref.apply(json.loads(p)["data"])
    return ref


def _lines(name: str) -> list[bytes]:
    from tests.conftest import CORPUS, require_shared

    return hftbacktest_lines(require_shared(CORPUS / name))


@pytest.mark.parametrize(
    ("name", "min_applied"),
    [(BTC_FILE, 515), (ETH_FILE, 519)],
    ids=["btcusdt-bridge-before-snapshot", "ethusdt-u-equals-lastUpdateId"],
)
def test_hftbacktest_usdm_rebuilds_gap_free(name: str, min_applied: int) -> None:
    lines = _lines(name)
    sync, results = replay(lines)
    assert SyncResult.GAP not in results
    assert SyncResult.SNAPSHOT_TOO_OLD not in results
    assert results.count(SyncResult.SYNCED) == 1
    # MANIFEST counts every diff applied after the snapshot, the buffered bridge included;
    # replayed buffered diffs are not in `results`, so count them from the reference book.
    ref = reference_of(lines)
    assert ref.gaps == 0
    live = results.count(SyncResult.APPLIED)
    assert live > min_applied - 20
    assert sync.live and not sync.book.is_crossed()
    assert (sync.book.bids(20), sync.book.asks(20)) == ref.top(20)
    assert sync.book.update_id == ref.last


def test_ethusdt_event_ending_at_last_update_id_is_the_bridge() -> None:
    """MANIFEST A #4: line 39 has ``u == lastUpdateId``. USD-M drops only ``u < lastUpdateId``,
    so that event is the first one applied (a spot-style ``<=`` drop would lose it)."""
    lines = _lines(ETH_FILE)
    snapshot = next(json.loads(p) for p in lines if p.startswith(b'{"lastUpdateId"'))
    lid = snapshot["lastUpdateId"]
    diffs = [json.loads(p)["data"] for p in lines if b"@depth" in p[:40]]
    edge = next(d for d in diffs if d["u"] == lid)
    assert edge["U"] <= lid
    ref = reference_of(lines)
    assert ref.first_applied == edge
    assert USDM_RULES.is_stale(combined_decoder.decode(_wrap(edge)).data, lid, True) is False
    nxt = diffs[diffs.index(edge) + 1]
    assert nxt["pu"] == lid  # the chain continues from the edge event

    # exconn's sync applies it too: after SYNCED the book's id has moved past lid through it.
    _sync, results = replay(lines)
    assert results.count(SyncResult.SYNCED) == 1 and SyncResult.GAP not in results
    probe = BookSync(USDM_RULES, OrderBook())
    probe.on_snapshot(
        lid, [tuple(x) for x in snapshot["bids"]], [tuple(x) for x in snapshot["asks"]]
    )
    assert probe.on_diff(combined_decoder.decode(_wrap(edge)).data) is SyncResult.APPLIED
    assert probe.book.update_id == lid  # u == lid: applied, the id stays where it was


def _wrap(diff: dict) -> bytes:
    return json.dumps({"stream": f"{diff['s'].lower()}@depth", "data": diff}).encode()


@pytest.mark.parametrize("name", [BTC_FILE, ETH_FILE], ids=["btcusdt", "ethusdt"])
def test_hftbacktest_usdm_removed_diff_is_a_gap(name: str) -> None:
    lines = _lines(name)
    snapshot_at = next(i for i, p in enumerate(lines) if p.startswith(b'{"lastUpdateId"'))
    depth_idx = [i for i, p in enumerate(lines) if b"@depth" in p[:40] and i > snapshot_at]
    for victim in (depth_idx[5], depth_idx[len(depth_idx) // 2], depth_idx[-2]):
        cut = lines[:victim] + lines[victim + 1 :]
        sync, results = replay(cut)
        assert results.count(SyncResult.GAP) == 1, f"removing line {victim} went unnoticed"
        assert not sync.live and len(sync.book) == 0
        assert reference_of(cut).gaps >= 1  # the longhand rules agree


def _cryptofeed_sequences(corpus: Path) -> dict[str, tuple[dict, list[bytes]]]:
    snapshots = {
        url.split("symbol=")[1].split("&")[0]: body
        for url, body in cryptofeed_rest_bodies(corpus / CF_REST)
    }
    diffs: dict[str, list[bytes]] = {s: [] for s in CF_SYMBOLS}
    for p in cryptofeed_ws_payloads(corpus / CF_WS):
        if b"@depth" in p[:40]:
            diffs[p[11 : p.index(b"@")].decode().upper()].append(p)
    return {s: (snapshots[s], diffs[s]) for s in CF_SYMBOLS}


def _buffer_then_snapshot(snapshot: dict, diffs: list[bytes]) -> tuple[BookSync, SyncResult]:
    """The stream opened before the snapshot was fetched (cryptofeed's order): every diff is
    buffered, then the snapshot replays them."""
    sync = BookSync(USDM_RULES, OrderBook())
    for p in diffs:
        assert sync.on_diff(combined_decoder.decode(p).data) is SyncResult.BUFFERED
    bids = [tuple(x) for x in snapshot["bids"]]
    asks = [tuple(x) for x in snapshot["asks"]]
    return sync, sync.on_snapshot(snapshot["lastUpdateId"], bids, asks)


@pytest.mark.parametrize("symbol", CF_SYMBOLS)
def test_cryptofeed_usdm_rebuilds_gap_free(corpus: Path, symbol: str) -> None:
    snapshot, diffs = _cryptofeed_sequences(corpus)[symbol]
    lid = snapshot["lastUpdateId"]
    decoded = [json.loads(p)["data"] for p in diffs]
    # MANIFEST A #6 says the snapshot's id is some event's u; in the recording it is the u of
    # one event for three symbols and the U of the bridging event for SUSHIUSDT. Either way
    # exactly one event straddles it, and the pu chain runs unbroken from there.
    at = next(i for i, d in enumerate(decoded) if d["U"] <= lid <= d["u"])
    assert all(b["pu"] == a["u"] for a, b in zip(decoded[at:], decoded[at + 1 :], strict=False))
    sync, result = _buffer_then_snapshot(snapshot, diffs)
    assert result is SyncResult.SYNCED
    ref = UsdmReferenceBook(snapshot)
    for d in decoded:
        ref.apply(d)
    assert ref.gaps == 0
    # MANIFEST says ~185-255 diffs each; KEEPUSDT has 135 depth events in all (132 applied).
    assert len(decoded) - at >= 130
    assert (sync.book.bids(20), sync.book.asks(20)) == ref.top(20)
    assert sync.book.update_id == ref.last == decoded[-1]["u"]


@pytest.mark.parametrize("symbol", CF_SYMBOLS)
def test_cryptofeed_usdm_removed_diff_is_a_gap(corpus: Path, symbol: str) -> None:
    snapshot, diffs = _cryptofeed_sequences(corpus)[symbol]
    lid = snapshot["lastUpdateId"]
    decoded = [json.loads(p)["data"] for p in diffs]
    at = next(i for i, d in enumerate(decoded) if d["U"] <= lid <= d["u"])
    del diffs[at + 40]
    sync, result = _buffer_then_snapshot(snapshot, diffs)
    assert result is SyncResult.GAP
    assert not sync.live and sync.needs_snapshot() and len(sync.book) == 0
