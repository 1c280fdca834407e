"""WebSocket lifecycle logic driven directly: pacing, liveness, sharding, rotation."""

from __future__ import annotations

from decimal import Decimal

from exconn.book.local import LocalBook
from exconn.messages import BookDelta, BookReset, BookSnapshot, BookStale, EventBatch, Trade
from exconn.model.enums import Market
from exconn.outbox import Outbox
from exconn.transport.lifecycle import ControlPacer, Liveness, ShardPlanner
from exconn.venues.binance import urls
from exconn.venues.binance.streams import StreamHandler
from exconn.venues.binance.wire import DepthSnapshot, RestTrade
from tests.unit.test_binance_streams import BTC, SUB, depth, trade


def test_pacer_never_exceeds_the_limit_in_any_rolling_second() -> None:
    pacer = ControlPacer(4)
    now, sent = 0.0, []
    for i in range(200):  # bounded
        if i % 37 == 0:
            pacer.record(now)  # a pong: never delayed, but counted
            sent.append(now)
        wait = pacer.delay(now)
        if wait > 0:
            now += wait
            continue
        pacer.record(now)
        sent.append(now)
        now += 0.015625  # exact in binary: the window check below is exact too
    for i, t in enumerate(sent):
        in_window = [x for x in sent[i:] if x - t < 1.0]
        assert len(in_window) <= 5  # the venue's limit, pongs included
    controls_only = ControlPacer(4)
    assert [controls_only.delay(0.0) for _ in range(1)] == [0.0]
    for _ in range(4):
        controls_only.record(0.0)
    assert controls_only.delay(0.5) == 0.5  # a rolling window, not a refilled bucket


def test_liveness_resubscribes_then_replaces() -> None:
    live = Liveness(2.0, 0.0, urls.expected_cadence)
    live.watch(["btcusdt@depth@100ms", "btcusdt@trade"], 0.0)
    live.last_seen["btcusdt@depth@100ms"] = 1.0
    assert live.check(2.5).resubscribe == []
    v = live.check(3.5)
    assert v.resubscribe == ["btcusdt@depth@100ms"] and not v.replace
    assert live.check(4.5).resubscribe == []  # once per silence
    assert live.check(6.0).replace
    # A stream that speaks after its resubscription is healthy again.
    live2 = Liveness(2.0, 0.0, urls.expected_cadence)
    live2.watch(["ethusdt@depth@100ms"], 0.0)
    assert live2.check(2.5).resubscribe == ["ethusdt@depth@100ms"]
    live2.last_seen["ethusdt@depth@100ms"] = 3.0
    v = live2.check(4.9)
    assert v.resubscribe == [] and not v.replace


def test_trades_are_not_watched_for_silence() -> None:
    live = Liveness(1.0, 0.0, urls.expected_cadence)
    live.watch(["btcusdt@trade"], 0.0)
    assert live.check(100.0).resubscribe == [] and not live.check(200.0).replace


def test_sharding_splits_beyond_capacity_and_is_sticky() -> None:
    plan = ShardPlanner(1024)
    shards = [plan.assign(f"t{i}") for i in range(2500)]
    assert shards.count(0) == 1024 and shards.count(1) == 1024 and shards.count(2) == 452
    assert plan.assign("t5") == 0  # sticky
    plan.release("t5")
    assert plan.assign("new") == 0  # the freed slot is reused before any later shard
    assert max(plan.load.values()) <= 1024
    assert len(plan.keys_of(2)) == 452


def _handler() -> StreamHandler:
    h = StreamHandler(Market.SPOT, [BTC])
    out = Outbox()
    h.set_route("book.binance.spot.BTC/USDT", [SUB], out)
    h.set_route("trades.binance.spot.BTC/USDT", [SUB], out)
    return h


def _deliver(out: Outbox, book: LocalBook, trades: list[int], resets: list[str]) -> None:
    for address, batch in out.drain():
        assert address == SUB
        for e in EventBatch.of(batch.events).events:
            if isinstance(e, Trade):
                trades.append(int(e.trade_id))
            elif isinstance(e, BookReset):
                resets.append(e.reason)
                book.on_event(e)
            elif isinstance(e, BookStale):
                book.on_event(e)
            else:
                assert isinstance(e, BookSnapshot | BookDelta)
                assert book.on_event(e), f"{e} does not continue the book"


def _live(h: StreamHandler, book: LocalBook, trades: list[int], resets: list[str]) -> None:
    out = Outbox()
    h.on_frames([depth(101, 102, '[["10.00","1"]]', '[["11.00","1"]]')], out)
    for s in h.symbols_needing_snapshot():
        h.on_snapshot(s, DepthSnapshot(lastUpdateId=100, bids=[], asks=[]), out)
    h.on_frames([depth(103, 103, '[["10.00","2"]]'), trade(1, True), trade(2, False)], out)
    _deliver(out, book, trades, resets)
    assert book.update_id == 103


def test_rotation_waits_for_the_candidate_then_switches_without_gap_or_duplicate() -> None:
    h, book, trades, resets = _handler(), LocalBook(), [], []
    _live(h, book, trades, resets)
    h.begin_candidate()
    out = Outbox()
    # The candidate starts later in the stream than the live socket: not ready yet.
    h.on_frames([depth(105, 106, '[["9.00","1"]]'), trade(3, True)], out, candidate=True)
    assert not h.ready_to_promote()
    h.on_frames([depth(104, 104, '[["10.00","3"]]'), trade(3, True)], out)  # old socket
    assert h.ready_to_promote()
    h.promote(out)
    h.on_frames([depth(107, 107, asks='[["11.00","0"]]'), trade(4, True)], out)
    _deliver(out, book, trades, resets)
    assert book.update_id == 107 and resets == []
    assert book.bids == {Decimal("10.00"): Decimal("3"), Decimal("9.00"): Decimal("1")}
    assert book.asks == {}
    assert trades == [1, 2, 3, 4]


def test_lost_socket_keeps_the_book_and_catches_up_by_snapshot_and_rest_trades() -> None:
    h, book, trades, resets = _handler(), LocalBook(), [], []
    _live(h, book, trades, resets)
    out = Outbox()
    h.on_disconnect("dropped", out)
    assert h.held_symbols() == ["BTCUSDT"]
    # Subscribers keep the book but learn at once that it stopped updating.
    stale = Outbox()
    h.on_disconnect("dropped again", stale)  # nothing live any more: nothing to announce
    assert stale.events_for(SUB) == []
    (event,) = out.events_for(SUB)
    assert isinstance(event, BookStale) and event.reason == "dropped"
    book.on_event(event)
    assert book.stale and book.valid and not book.current
    # The new socket missed 104..109 and trades 3..4.
    h.on_frames([depth(110, 110, '[["8.00","1"]]'), trade(5, True)], out)
    assert h.symbols_needing_snapshot() == ["BTCUSDT"]
    assert h.symbols_needing_trades() == ["BTCUSDT"]
    snap = DepthSnapshot(lastUpdateId=109, bids=[["10.00", "5"]], asks=[["12.00", "1"]])
    h.on_snapshot("BTCUSDT", snap, out)
    rows = [RestTrade(id=i, price="10", qty="1", time=1, isBuyerMaker=True) for i in (2, 3, 4)]
    assert h.on_rest_trades("BTCUSDT", rows, out) == 0
    _deliver(out, book, trades, resets)
    assert resets == [] and book.update_id == 110 and book.current
    assert book.bids == {Decimal("10.00"): Decimal("5"), Decimal("8.00"): Decimal("1")}
    assert book.asks == {Decimal("12.00"): Decimal("1")}
    assert trades == [1, 2, 3, 4, 5]


def test_held_books_are_reset_when_no_socket_takes_over() -> None:
    h, book, trades, resets = _handler(), LocalBook(), [], []
    _live(h, book, trades, resets)
    out = Outbox()
    h.on_disconnect("dropped", out)
    h.expire_held("no data", out)
    _deliver(out, book, trades, resets)
    assert resets == ["no data"] and not book.valid and h.held_symbols() == []


def test_a_rotation_that_takes_over_at_once_announces_nothing() -> None:
    h, book, trades, resets = _handler(), LocalBook(), [], []
    _live(h, book, trades, resets)
    out = Outbox()
    h.on_disconnect("replaced", out, announce=False)
    assert out.events_for(SUB) == [] and h.held_symbols() == ["BTCUSDT"]
