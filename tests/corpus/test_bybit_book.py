"""The recorded Bybit V5 order-book sequence rebuilds through exconn's book sync with continuity
checked, matches an independent Decimal book, and every removed delta is detected
(../shared/corpus/MANIFEST.md section A #8; rules in bybit.md §7 and ``book_sync``).

``bybit/ws/nautilus__2024-12-01_XRPUSDT_ob500.data``: line 1 a snapshot (u 20254869, 500 levels
a side), then 49 deltas with ``u`` one above the last each time.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from exconn.book import BookSync, LocalBook, OrderBook, SyncResult
from exconn.messages import BookDelta, BookReset, BookSnapshot
from exconn.model.enums import Exchange, Market
from exconn.outbox import Outbox
from exconn.venues.bybit.book_sync import RULES, replaces_book
from exconn.venues.bybit.streams import StreamHandler
from exconn.venues.bybit.wire import orderbook_decoder
from tests.unit.stream_support import instrument

FILE = "bybit/ws/nautilus__2024-12-01_XRPUSDT_ob500.data"
FIRST_U, LAST_U = 20254869, 20254918
XRP = instrument(Exchange.BYBIT, Market.LINEAR, "XRP", "USDT", tick="0.0001", step="1")
SUB = "subscriber"


class ReferenceBook:
    """The test's own book: Decimal dicts and bybit.md §7 written out longhand (a snapshot or
    ``u == 1`` replaces; a delta with ``u`` at or below the book's is dropped; any other must
    be the book's ``u + 1``). ``gaps`` counts broken chains; after one the book is void until
    the next snapshot."""

    def __init__(self) -> None:
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}
        self.u: int | None = None
        self.gaps = 0

    def apply(self, msg: dict[str, Any]) -> None:
        d = msg["data"]
        if msg["type"] == "snapshot" or d["u"] == 1:
            self.bids, self.asks, self.u = {}, {}, d["u"]
        elif self.u is None or d["u"] <= self.u:
            return
        elif d["u"] != self.u + 1:
            self.gaps += 1
            self.bids, self.asks, self.u = {}, {}, None
            return
        for side, key in ((self.bids, "b"), (self.asks, "a")):
            for p, q in d[key]:
                if Decimal(q) == 0:
                    side.pop(Decimal(p), None)
                else:
                    side[Decimal(p)] = Decimal(q)
        self.u = d["u"]

    def levels(self) -> tuple[list, list]:
        return sorted(self.bids.items(), reverse=True), sorted(self.asks.items())


@pytest.fixture(scope="module")
def lines() -> list[bytes]:
    from tests.conftest import CORPUS, require_shared

    path = require_shared(CORPUS / FILE)
    return [line for line in path.read_bytes().splitlines() if line.strip()]


def replay(lines: list[bytes]) -> tuple[BookSync, list[SyncResult]]:
    """Feed the messages as the handler does: a snapshot (or u == 1) loads, a delta steps."""
    sync = BookSync(RULES, OrderBook(4, 0))
    results: list[SyncResult] = []
    for raw in lines:
        msg = orderbook_decoder.decode(raw)
        if replaces_book(msg):
            results.append(sync.on_snapshot(msg.data.u, msg.data.b, msg.data.a))
        else:
            results.append(sync.on_diff(msg))
    return sync, results


def reference_of(lines: list[bytes]) -> ReferenceBook:
    ref = ReferenceBook()
    for raw in lines:
        ref.apply(json.loads(raw))
    return ref


def test_recorded_sequence_is_what_the_manifest_says(lines: list[bytes]) -> None:
    msgs = [orderbook_decoder.decode(raw) for raw in lines]
    assert [m.type for m in msgs] == ["snapshot"] + ["delta"] * 49
    assert [m.data.u for m in msgs] == list(range(FIRST_U, LAST_U + 1))
    seqs = [m.data.seq or 0 for m in msgs]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert len(msgs[0].data.b) == len(msgs[0].data.a) == 500


def test_rebuilds_gap_free_and_matches_an_independent_book(lines: list[bytes]) -> None:
    sync, results = replay(lines)
    assert results == [SyncResult.SYNCED] + [SyncResult.APPLIED] * 49
    ref = reference_of(lines)
    assert ref.gaps == 0 and ref.u == LAST_U
    assert sync.live and sync.book.update_id == LAST_U and not sync.book.is_crossed()
    # Every level, not just the top: Bybit deletes levels that leave the 500 it keeps.
    assert (sync.book.bids(), sync.book.asks()) == ref.levels()
    assert len(sync.book.bids()) == len(sync.book.asks()) == 500


@pytest.mark.parametrize("victim", range(1, 49), ids=lambda i: f"delta{i}")
def test_removing_any_delta_is_a_gap(lines: list[bytes], victim: int) -> None:
    """Each of deltas 1..48 removed is noticed by the next one (the last delta has no
    successor in the recording to reveal it)."""
    cut = lines[:victim] + lines[victim + 1 :]
    sync, results = replay(cut)
    assert results.count(SyncResult.GAP) == 1, f"removing line {victim + 1} went unnoticed"
    assert results.index(SyncResult.GAP) == victim  # detected by the very next delta
    assert not sync.live and len(sync.book) == 0
    assert reference_of(cut).gaps == 1  # the longhand rules agree


def _restart_message(ref: ReferenceBook, topic: str) -> bytes:
    """The reference book as one message: what a restarted book service sends (``u == 1``,
    the full book, typed delta)."""
    bids, asks = ref.levels()
    body = {
        "topic": topic,
        "type": "delta",
        "ts": 1733011203000,
        "data": {
            "s": "XRPUSDT",
            "b": [[str(p), str(q)] for p, q in bids],
            "a": [[str(p), str(q)] for p, q in asks],
            "u": 1,
            "seq": 130020245000,
        },
        "cts": 1733011202999,
    }
    return json.dumps(body).encode()


def _renumbered(raw: bytes, u: int) -> bytes:
    msg = json.loads(raw)
    msg["data"]["u"] = u
    return json.dumps(msg).encode()


def test_u_equal_1_mid_stream_resets_the_book(lines: list[bytes]) -> None:
    """After a service restart ids count from 1 again: the ``u == 1`` message replaces the
    book, and deltas 2, 3, ... continue it. Built from the recording: the book at delta 20,
    re-sent as u == 1, then deltas 21.. renumbered from 2."""
    at = 21
    ref = reference_of(lines[:at])
    restart = _restart_message(ref, json.loads(lines[0])["topic"])
    # Change the book so a merge with the old one would show: drop the best bid level.
    msg = json.loads(restart)
    msg["data"]["b"] = msg["data"]["b"][1:]
    restart = json.dumps(msg).encode()
    after = [_renumbered(raw, 2 + i) for i, raw in enumerate(lines[at:])]
    sequence = [*lines[:at], restart, *after]

    sync, results = replay(sequence)
    assert SyncResult.GAP not in results
    assert results[at] is SyncResult.SYNCED  # u == 1 loaded as a snapshot
    expected = reference_of(sequence)
    assert expected.gaps == 0 and expected.u == len(after) + 1
    assert sync.book.update_id == expected.u
    assert (sync.book.bids(), sync.book.asks()) == expected.levels()

    # Typed "delta", yet it replaces the book: without the u == 1 rule it would be a stale
    # delta and 2, 3, ... a broken chain.
    assert replaces_book(orderbook_decoder.decode(restart))


def _as_depth_200(raw: bytes) -> bytes:
    # orderbook.500 was retired on linear (2025-09-11); the handler subscribes current depths,
    # so the replay names the topic it would have subscribed. The payload is untouched.
    return raw.replace(b'"orderbook.500.', b'"orderbook.200.', 1)


def test_stream_handler_delivers_a_book_subscribers_can_rebuild(lines: list[bytes]) -> None:
    handler = StreamHandler(Market.LINEAR, [XRP], book_depth=200)
    out = Outbox()
    change = handler.set_route("book.bybit.linear.XRP/USDT:USDT", [SUB], out)
    assert change.subscribe == ["orderbook.200.XRPUSDT"]
    handler.on_frames([_as_depth_200(raw) for raw in lines], out, now=1.0)
    events = [e for _, batch in out.drain() for e in batch.events]
    assert [type(e) for e in events] == [BookSnapshot] + [BookDelta] * 49
    local = LocalBook()
    assert all(local.on_event(e) for e in events)
    ref = reference_of(lines)
    assert local.update_id == ref.u
    assert local.top(500) == ref.levels()
    assert handler.malformed == 0 and handler.resyncs == 0
    assert handler.streams_to_resubscribe() == []


def test_stream_handler_resets_and_resubscribes_on_a_removed_delta(lines: list[bytes]) -> None:
    handler = StreamHandler(Market.LINEAR, [XRP], book_depth=200)
    out = Outbox()
    handler.set_route("book.bybit.linear.XRP/USDT:USDT", [SUB], out)
    cut = lines[:30] + lines[31:]
    handler.on_frames([_as_depth_200(raw) for raw in cut], out)
    events = [e for _, batch in out.drain() for e in batch.events]
    assert [type(e) for e in events] == [BookSnapshot] + [BookDelta] * 29 + [BookReset]
    assert handler.resyncs == 1
    assert handler.streams_to_resubscribe() == ["orderbook.200.XRPUSDT"]
    assert handler.streams_to_resubscribe() == []  # asked once per gap
    # The resubscription's fresh snapshot (the recorded book as it stood at the end) brings
    # the book back.
    ref = reference_of(lines)
    fresh = json.loads(_restart_message(ref, "orderbook.200.XRPUSDT"))
    fresh["type"], fresh["data"]["u"] = "snapshot", LAST_U
    out = Outbox()
    handler.on_frames([json.dumps(fresh).encode()], out)
    (event,) = [e for _, batch in out.drain() for e in batch.events]
    assert isinstance(event, BookSnapshot) and event.update_id == LAST_U
    assert (list(event.bids), list(event.asks)) == ref.levels()
    assert handler.streams_to_resubscribe() == []
