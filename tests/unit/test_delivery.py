"""Flow control with conflation for slow subscribers: the pure core (exconn.delivery) and its
Thespian adapter (exconn.actors.tracked_send) against fakes of the internals it uses."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from thespian.actors import Actor, ActorSystem
from thespian.system.transport import SendStatus, TransmitOnly

from exconn.actors import tracked_send
from exconn.actors.tracked_send import TrackedSender
from exconn.book.local import LocalBook
from exconn.config import WsSettings
from exconn.delivery import DEFAULT_MAX_IN_FLIGHT, Delivery
from exconn.errors import ConfigError
from exconn.messages import (
    AggTrade,
    Bbo,
    BookDelta,
    BookDeltaText,
    BookReset,
    BookSnapshot,
    BookStale,
    BookTop,
    Encodable,
    EventBatch,
    Kline,
    MarketEvent,
    MarkPrice,
    TradeText,
)
from exconn.model.enums import OrderSide
from exconn.outbox import Outbox

BTC, ETH = "BTC/USDT", "ETH/USDT"
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def delta(
    prev: int,
    uid: int,
    bids: list[tuple[str, str]] = (),  # type: ignore[assignment]
    asks: list[tuple[str, str]] = (),  # type: ignore[assignment]
    symbol: str = BTC,
) -> BookDeltaText:
    return BookDeltaText(
        exchange="binance",
        market="spot",
        symbol=symbol,
        prev_update_id=prev,
        update_id=uid,
        bids=list(bids),
        asks=list(asks),
        ts=float(uid),
    )


def trade(tid: int, symbol: str = BTC) -> TradeText:
    return TradeText(
        exchange="binance",
        market="spot",
        symbol=symbol,
        trade_id=str(tid),
        price="100.0",
        qty="1",
        side=OrderSide.BUY,
        ts=float(tid),
    )


def snapshot(uid: int, symbol: str = BTC) -> BookSnapshot:
    return BookSnapshot(
        exchange="binance",
        market="spot",
        symbol=symbol,
        update_id=uid,
        bids=((Decimal("99"), Decimal("1")),),
        asks=((Decimal("101"), Decimal("1")),),
    )


def bbo(bid: str, symbol: str = BTC) -> Bbo:
    one = Decimal("1")
    return Bbo("binance", "spot", symbol, Decimal(bid), one, Decimal("101"), one)


def kline(minute: int, close: str) -> Kline:
    one = Decimal("1")
    return Kline(
        exchange="binance",
        market="spot",
        symbol=BTC,
        interval="1m",
        open_time=T0 + timedelta(minutes=minute),
        close_time=T0 + timedelta(minutes=minute + 1),
        open=one,
        high=one,
        low=one,
        close=Decimal(close),
        volume=one,
        quote_volume=one,
        trades=1,
        closed=False,
    )


def held_back(delivery: Delivery, key: str, *drains: list[Encodable]) -> list[Encodable]:
    """Fill ``key``'s slots, hold ``drains`` behind them, free one slot: what goes out."""
    while delivery.offer(key, [trade(0)]):
        pass
    delivery.completed(key)  # the trade(0) batch held just now goes out first
    for events in drains:
        assert not delivery.offer(key, events)
    released = delivery.completed(key)
    assert released is not None
    return released[0]


# -- core: fast path and in-flight accounting -----------------------------------------------
def test_below_the_limit_batches_go_out_as_they_are() -> None:
    d = Delivery(max_in_flight=2)
    first, second = [trade(1)], [trade(2)]
    assert d.offer("a", first) and d.offer("a", second)
    assert d.in_flight("a") == 2
    assert d.offer("b", [trade(3)])  # every subscriber has its own slots
    assert not d.offer("a", [trade(4)])
    assert d.at_limit("a") and not d.at_limit("b") and d.waiting("a") == 1


def test_a_completion_releases_what_waits_as_one_batch() -> None:
    d = Delivery(max_in_flight=1)
    assert d.offer("a", [trade(1)], received_ns=10)
    held = [trade(2)]
    assert not d.offer("a", held, received_ns=20)
    events, stamp = d.completed("a") or ([], 0)
    assert events is held and stamp == 20  # one drain waiting: sent unchanged
    assert d.in_flight("a") == 1
    assert d.completed("a") is None and d.in_flight("a") == 0
    assert d.completed("a") is None and d.in_flight("a") == 0  # never negative
    assert d.completed("unknown") is None


def test_released_batch_carries_the_oldest_drain_stamp() -> None:
    d = Delivery(max_in_flight=1)
    d.offer("a", [trade(1)], received_ns=1)
    d.offer("a", [trade(2)], received_ns=5)
    d.offer("a", [trade(3)], received_ns=9)
    assert d.completed("a") == ([trade(2), trade(3)], 5)


def test_the_first_drains_wait_unmerged_then_everything_waiting_is_conflated() -> None:
    d = Delivery(max_in_flight=1, unmerged_drains=2)
    assert d.offer("a", [trade(0)])
    first, second = [delta(1, 2), trade(1)], [delta(2, 3)]
    assert not d.offer("a", first) and not d.offer("a", second)
    assert d.completed("a") == ([delta(1, 2), trade(1), delta(2, 3)], 0)  # one batch, as is
    assert d.conflated == 0
    for events in ([delta(3, 4)], [delta(4, 5), trade(2)], [delta(5, 6)]):
        assert not d.offer("a", events)  # the third drain starts the conflation
    (merged, t2), _ = d.completed("a") or ([], 0)
    assert isinstance(merged, BookDeltaText)
    assert (merged.prev_update_id, merged.update_id) == (3, 6)
    assert t2 == trade(2) and d.conflated == 2
    assert d.offer("a", [delta(6, 7)]) is False  # still one in flight
    assert d.completed("a") == ([delta(6, 7)], 0)  # and unmerged again afterwards


def test_max_in_flight_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Delivery(max_in_flight=0)
    with pytest.raises(ConfigError):
        WsSettings(subscriber_max_in_flight=0)
    assert WsSettings().subscriber_max_in_flight == DEFAULT_MAX_IN_FLIGHT >= 2


# -- core: conflation -----------------------------------------------------------------------
def test_consecutive_deltas_merge_exactly() -> None:
    d = Delivery(max_in_flight=1, unmerged_drains=0)
    out = held_back(
        d,
        "a",
        [delta(10, 11, bids=[("100.10", "1.0")], asks=[("101.0", "3")])],
        [
            delta(11, 12, bids=[("100.1", "2.5"), ("99.5", "1")]),
            delta(12, 14, bids=[("99.50000000", "0.00000000")], asks=[("101", "0")]),
        ],
    )
    (merged,) = out
    assert isinstance(merged, BookDeltaText)
    assert (merged.prev_update_id, merged.update_id, merged.ts) == (10, 14, 14.0)
    # Equal prices in other spellings are one level; the last quantity wins, a zero stays.
    assert merged.bids == [("100.1", "2.5"), ("99.50000000", "0.00000000")]
    assert merged.asks == [("101", "0")]
    assert d.conflated == 2 and d.conflated_by_subscriber() == (("a", 2),)


def test_model_deltas_merge_too() -> None:
    d = Delivery(max_in_flight=1, unmerged_drains=0)
    one, two = Decimal("1"), Decimal("2")
    a = BookDelta("binance", "spot", BTC, 1, 2, ((Decimal("5.0"), one),), ())
    b = BookDelta("binance", "spot", BTC, 2, 3, ((Decimal("5"), two),), ((Decimal("6"), one),))
    (merged,) = held_back(d, "a", [a], [b])
    assert isinstance(merged, BookDelta)
    assert merged.bids == ((Decimal("5"), two),) and merged.asks == ((Decimal("6"), one),)
    assert (merged.prev_update_id, merged.update_id) == (1, 3)


def test_book_events_end_the_merge_window_and_are_kept() -> None:
    d = Delivery(max_in_flight=1, unmerged_drains=0)
    stale = BookStale("binance", "spot", BTC, "socket lost")
    reset = BookReset("binance", "spot", BTC, "gap")
    out = held_back(
        d,
        "a",
        [delta(1, 2), delta(2, 3), stale],
        [delta(3, 4), delta(4, 5), reset, snapshot(9), delta(9, 10), delta(10, 11)],
    )
    assert [type(e).__name__ for e in out] == [
        "BookDeltaText",
        "BookStale",
        "BookDeltaText",
        "BookReset",
        "BookSnapshot",
        "BookDeltaText",
    ]
    spans = [(e.prev_update_id, e.update_id) for e in out if isinstance(e, BookDeltaText)]
    assert spans == [(1, 3), (3, 5), (9, 11)]


def test_a_delta_that_breaks_the_chain_is_not_merged() -> None:
    d = Delivery(max_in_flight=1, unmerged_drains=0)
    out = held_back(d, "a", [delta(1, 2)], [delta(2, 3), delta(7, 8), delta(8, 9)])
    spans = [(e.prev_update_id, e.update_id) for e in out if isinstance(e, BookDeltaText)]
    assert spans == [(1, 3), (7, 9)]  # the subscriber's book still sees the gap


def test_symbols_merge_apart_and_trades_keep_their_place() -> None:
    d = Delivery(max_in_flight=1, unmerged_drains=0)
    agg = AggTrade(
        "binance", "spot", BTC, "7", Decimal("1"), Decimal("1"), OrderSide.SELL, 1, 2, T0
    )
    out = held_back(
        d,
        "a",
        [delta(1, 2), trade(1), delta(50, 51, symbol=ETH), agg],
        [delta(2, 3), trade(2), delta(51, 52, symbol=ETH), trade(3)],
    )
    names = [
        (type(e).__name__, getattr(e, "symbol", None), getattr(e, "trade_id", None)) for e in out
    ]
    assert names == [
        ("BookDeltaText", BTC, None),
        ("TradeText", BTC, "1"),
        ("BookDeltaText", ETH, None),
        ("AggTrade", BTC, None),
        ("TradeText", BTC, "2"),
        ("TradeText", BTC, "3"),
    ]


def test_states_are_replaced_by_the_latest_per_topic() -> None:
    d = Delivery(max_in_flight=1, unmerged_drains=0)
    top = [
        BookTop("binance", "spot", BTC, depth, uid, (), ())
        for depth, uid in ((5, 1), (10, 1), (5, 2))
    ]
    mark = [
        MarkPrice("binance", "linear", BTC, Decimal(p), Decimal(p), Decimal("0"), T0)
        for p in ("1", "2")
    ]
    out = held_back(
        d,
        "a",
        [bbo("99"), bbo("50", symbol=ETH), kline(0, "1"), top[0], top[1], mark[0]],
        [bbo("98"), kline(0, "2"), kline(1, "3"), top[2], bbo("97"), mark[1]],
    )
    latest = [bbo("97"), bbo("50", symbol=ETH), kline(0, "2"), top[2], top[1], mark[1]]
    assert out == [*latest, kline(1, "3")]  # a new bar is a new topic state
    assert d.conflated == 5


# -- core: property -------------------------------------------------------------------------
PRICES = ["99", "99.5", "100", "100.5", "101"]


@st.composite
def spellings(draw: Any, value: str) -> str:
    """The same decimal written with 0-3 extra trailing zeros."""
    extra = draw(st.integers(0, 3))
    if not extra:
        return value
    return value + ("0" * extra if "." in value else "." + "0" * extra)


@st.composite
def feeds(draw: Any) -> tuple[list[list[MarketEvent | Encodable]], list[int]]:
    """Drains of events as a connection produces them, and after each drain the subscribers
    whose oldest outstanding transmit completes (as indexes, possibly repeated)."""
    uid = {BTC: 100, ETH: 500}
    trade_id = 0
    drains: list[list[MarketEvent | Encodable]] = []
    for _ in range(draw(st.integers(1, 25))):
        events: list[MarketEvent | Encodable] = []
        for _ in range(draw(st.integers(1, 8))):
            kind = draw(st.sampled_from(["delta"] * 6 + ["trade"] * 3 + ["book", "bbo"]))
            symbol = draw(st.sampled_from([BTC, ETH]))
            if kind == "delta":
                levels = draw(
                    st.lists(
                        st.tuples(st.sampled_from(PRICES), st.sampled_from(["0", "1", "2.5"])),
                        max_size=4,
                    )
                )
                sided = [(draw(spellings(p)), draw(spellings(q))) for p, q in levels]
                cut = draw(st.integers(0, len(sided)))
                prev = uid[symbol]
                if draw(st.integers(0, 30)) == 0:
                    prev += 1  # a gap: subscribers must notice it, conflated or not
                uid[symbol] = prev + draw(st.integers(1, 3))
                events.append(delta(prev, uid[symbol], sided[:cut], sided[cut:], symbol))
            elif kind == "trade":
                trade_id += 1
                events.append(trade(trade_id, symbol))
            elif kind == "bbo":
                events.append(bbo(draw(st.sampled_from(PRICES)), symbol))
            else:
                event = draw(st.sampled_from(["snapshot", "reset", "stale"]))
                if event == "snapshot":
                    uid[symbol] += 10
                    events.append(snapshot(uid[symbol], symbol))
                elif event == "reset":
                    events.append(BookReset("binance", "spot", symbol, "gap"))
                else:
                    events.append(BookStale("binance", "spot", symbol, "lost"))
        drains.append(events)
    completions = [
        draw(st.lists(st.integers(0, 2), max_size=3)) for _ in drains
    ]  # three subscribers
    return drains, [c for cs in completions for c in [*cs, -1]]


def apply_all(events: list[MarketEvent]) -> dict[str, Any]:
    books: dict[str, LocalBook] = {}
    trades: list[str] = []
    last_bbo: dict[str, Any] = {}
    for e in events:
        if isinstance(e, BookDelta | BookSnapshot | BookReset | BookStale):
            books.setdefault(e.symbol, LocalBook()).on_event(e)
        elif isinstance(e, Bbo):
            last_bbo[e.symbol] = e
        else:
            trades.append(e.trade_id)  # type: ignore[union-attr]
    views = {
        s: (b.update_id, b.stale, dict(b.bids), dict(b.asks)) for s, b in sorted(books.items())
    }
    return {"books": views, "trades": trades, "bbo": last_bbo}


@settings(max_examples=300, deadline=None)
@given(feeds(), st.integers(1, 3), st.integers(0, 2))
def test_delivered_stream_builds_the_same_books_and_every_trade_once(
    feed: tuple[list[list[Encodable]], list[int]], max_in_flight: int, unmerged_drains: int
) -> None:
    drains, completions = feed
    d = Delivery(max_in_flight, unmerged_drains)
    keys = ["a", "b", "c"]
    outstanding: dict[str, int] = dict.fromkeys(keys, 0)
    delivered: dict[str, list[MarketEvent]] = {k: [] for k in keys}

    def transmit(key: str, events: list[Encodable]) -> None:
        # Through the wire form, as a subscriber decodes it.
        delivered[key].extend(EventBatch.of(events).events)
        outstanding[key] += 1

    def complete(key: str) -> None:
        if outstanding[key]:
            outstanding[key] -= 1
            released = d.completed(key)
            if released is not None:
                transmit(key, released[0])

    step = iter(completions)
    for events in drains:
        for key in keys:
            if d.offer(key, events):
                transmit(key, events)
        for index in step:
            if index < 0:
                break
            complete(keys[index])
    for _ in range(4 * len(drains) + 4):  # bounded: each round completes one per subscriber
        if not any(outstanding.values()):
            break
        for key in keys:
            complete(key)
    assert not any(outstanding.values()) and all(d.waiting(k) == 0 for k in keys)

    expected = apply_all(EventBatch.of([e for ev in drains for e in ev]).events)
    for key in keys:
        assert apply_all(delivered[key]) == expected


# -- adapter: against fakes of Thespian's internals ------------------------------------------
class FakeTransport:
    def __init__(self) -> None:
        self.run_time: Any = "outer timer"
        self._watches: list[int] = [7]
        self.passes: list[tuple[Any, Any, list[int]]] = []
        self.on_pass: Any = None
        self.result: Any = None  # what a pass returns (0: no transmit left)

    def _runWithExpiry(self, handler: Any) -> Any:
        self.passes.append((handler, self.run_time, list(self._watches)))
        assert not self.run_time.view().expired()  # a fresh one-pass timer every pass
        assert self.run_time.view().remaining() == timedelta(microseconds=1)
        assert self.run_time.view().expired()
        if self.on_pass is not None:
            self.on_pass()
        return self.result


class FakeRef:
    def __init__(self) -> None:
        self.intents: list[Any] = []
        self.failures: list[tuple[Any, Any]] = []
        self.transport = FakeTransport()
        self.in_pass = False

    def _send_intent(self, intent: Any) -> None:
        assert not self.in_pass, "sent from inside a transport pass"
        self.intents.append(intent)

    def actor_send_fail(self, result: Any, intent: Any) -> None:
        self.failures.append((result, intent))


class FakeActor:
    def __init__(self, ref: FakeRef | None) -> None:
        if ref is not None:
            self._myRef = ref
        self.sent: list[tuple[Any, Any]] = []

    def send(self, address: Any, message: Any) -> None:
        self.sent.append((address, message))


def outbox(*routes: tuple[str, list[Encodable]]) -> Outbox:
    out = Outbox()
    for address, events in routes:
        for e in events:
            out.add(((address, address),), e)
    return out


def trade_ids(batch: EventBatch) -> list[str]:
    return [e.trade_id for e in batch.events]  # type: ignore[union-attr]


def test_sender_tracks_completions_and_sends_what_waited() -> None:
    ref = FakeRef()
    sender = TrackedSender(FakeActor(ref), Delivery(max_in_flight=1))
    sender.publish(outbox(("A", [trade(1)]), ("B", [trade(2)])))
    first_a, first_b = ref.intents
    assert (first_a.targetAddr, trade_ids(first_a.message)) == ("A", ["1"])
    assert (first_b.targetAddr, trade_ids(first_b.message)) == ("B", ["2"])
    sender.publish(outbox(("A", [trade(3)])))  # A is at its limit: held
    assert len(ref.intents) == 2 and sender.delivery.waiting("A") == 1
    assert len(ref.transport.passes) == tracked_send.POLL_PASSES
    first_a.tx_done(SendStatus.Sent)
    (held,) = ref.intents[2:]
    assert (held.targetAddr, trade_ids(held.message)) == ("A", ["3"])
    assert sender.completions == 1 and sender.foreign_callbacks == 0
    assert sender.flow_control and sender.actor.sent == []


def test_a_failed_transmit_is_a_dead_letter_and_frees_its_slot() -> None:
    ref = FakeRef()
    sender = TrackedSender(FakeActor(ref), Delivery(max_in_flight=1))
    sender.publish(outbox(("A", [trade(1)])))
    sender.publish(outbox(("A", [trade(2)])))
    (intent,) = ref.intents
    intent.tx_done(SendStatus.DeadTarget)
    assert ref.failures == [(SendStatus.DeadTarget, intent)]
    assert trade_ids(ref.intents[1].message) == ["2"]


def test_poll_swaps_the_timer_and_watches_and_sends_after_it() -> None:
    ref = FakeRef()
    transport = ref.transport
    sender = TrackedSender(FakeActor(ref), Delivery(max_in_flight=1))
    sender.publish(outbox(("A", [trade(1)])))
    sender.publish(outbox(("A", [trade(2)])))  # held; that poll found nothing
    (intent,) = ref.intents

    def ack() -> None:  # the next poll's first pass reads the acknowledgement
        transport.on_pass = None
        ref.in_pass = True
        intent.tx_done(SendStatus.Sent)
        ref.in_pass = False

    transport.on_pass = ack
    sender.publish(outbox(("A", [trade(3)])))
    assert [p[0] for p in transport.passes] == [TransmitOnly] * 2 * tracked_send.POLL_PASSES
    assert all(p[2] == [] for p in transport.passes)
    assert transport.run_time == "outer timer" and transport._watches == [7]
    # The completion released the held drain, sent after the poll and before the new one.
    assert [trade_ids(i.message) for i in ref.intents] == [["1"], ["2"]]
    assert sender.delivery.waiting("A") == 1


def test_poll_stops_when_no_transmit_is_left() -> None:
    ref = FakeRef()
    sender = TrackedSender(FakeActor(ref), Delivery(max_in_flight=1))
    ref.transport.result = 0
    sender.publish(outbox(("A", [trade(1)])))
    sender.publish(outbox(("A", [trade(2)])))
    assert len(ref.transport.passes) == 1


def test_no_poll_while_the_actor_exits_or_after_a_poll_failed() -> None:
    ref = FakeRef()
    sender = TrackedSender(FakeActor(ref), Delivery(max_in_flight=1))
    ref.transport._aborting_run = True  # type: ignore[attr-defined]
    sender.publish(outbox(("A", [trade(1)])))
    sender.publish(outbox(("A", [trade(2)])))
    assert ref.transport.passes == []
    del ref.transport._aborting_run  # type: ignore[attr-defined]

    def broken() -> None:
        raise RuntimeError("internals changed")

    ref.transport.on_pass = broken
    sender.publish(outbox(("A", [trade(3)])))
    assert len(ref.transport.passes) == 1
    assert ref.transport.run_time == "outer timer" and ref.transport._watches == [7]
    sender.publish(outbox(("A", [trade(4)])))
    assert len(ref.transport.passes) == 1  # switched off; completions still arrive
    ref.intents[0].tx_done(SendStatus.Sent)
    assert [trade_ids(i.message) for i in ref.intents] == [["1"], ["2", "3", "4"]]


def test_completion_on_another_thread_is_reported() -> None:
    ref = FakeRef()
    sender = TrackedSender(FakeActor(ref), Delivery(max_in_flight=1))
    sender.publish(outbox(("A", [trade(1)])))
    worker = threading.Thread(target=ref.intents[0].tx_done, args=(SendStatus.Sent,))
    worker.start()
    worker.join()
    assert sender.foreign_callbacks == 1


def test_without_the_internals_batches_go_out_with_plain_send() -> None:
    actor = FakeActor(None)
    sender = TrackedSender(actor, Delivery(max_in_flight=1))
    for tid in (1, 2, 3):
        sender.publish(outbox(("A", [trade(tid)])))
    assert not sender.flow_control
    assert [trade_ids(m) for _, m in actor.sent] == [["1"], ["2"], ["3"]]


class Relay(Actor):
    """Publishes through a TrackedSender in simpleSystemBase (which lacks the internals)."""

    def __init__(self) -> None:
        super().__init__()
        self.sender = TrackedSender(self, Delivery(max_in_flight=1))

    def receiveMessage(self, message: Any, sender: Any) -> None:
        if isinstance(message, tuple):
            target, tid = message
            out = Outbox()
            out.add(((str(target), target),), trade(tid))
            self.sender.publish(out)
            self.send(sender, self.sender.flow_control)


class Sink(Actor):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []

    def receiveMessage(self, message: Any, sender: Any) -> None:
        if isinstance(message, EventBatch):
            self.ids.extend(trade_ids(message))
        elif message == "ids":
            self.send(sender, list(self.ids))


def test_simple_system_base_falls_back_to_plain_send() -> None:
    system = ActorSystem("simpleSystemBase", transientUnique=True)
    try:
        relay, sink = system.createActor(Relay), system.createActor(Sink)
        answers = [system.ask(relay, (sink, tid), 5) for tid in (1, 2, 3)]
        assert answers == [False, False, False]
        assert system.ask(sink, "ids", 5) == ["1", "2", "3"]
    finally:
        system.shutdown()
