"""A subscriber slower than the feed gets its book updates conflated and every trade, while a
fast one on the same topics gets every delta as it was (multiprocTCPBase, simulator flood)."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import msgspec
import pytest
from thespian.actors import Actor, ActorExitRequest, DeadEnvelope

import exconn
from exconn.actors.tracked_send import TrackedSender
from exconn.book.local import LocalBook
from exconn.delivery import Delivery
from exconn.messages import (
    BookDelta,
    BookReset,
    BookSnapshot,
    BookStale,
    EventBatch,
    Trade,
    TradeText,
)
from exconn.model.enums import OrderSide
from exconn.outbox import Outbox
from exconn.sim import BinanceSpotSim
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration

BTC, VENUE_BTC = "BTC/USDT", "BTCUSDT"
FLOOD_UPDATES = 40_000
STEP_BURSTS = 4  # market steps after the flood: trades and deltas while the slow one lags
STEPS_PER_BURST = 150
# The slow subscriber's handler takes this long per batch (the behaviour under test: the
# flood produces a batch every few milliseconds).
SLOW_SECONDS_PER_BATCH = 0.3


class Pace(msgspec.Struct, frozen=True):
    seconds_per_batch: float


class Report(msgspec.Struct, frozen=True):
    valid: bool
    update_id: int | None
    bids: list[tuple[Any, Any]]
    asks: list[tuple[Any, Any]]
    snapshot_ids: list[int]
    spans: list[tuple[int, int]]  # (prev_update_id, update_id) of every delta received
    rejected: int
    resets: int
    trade_ids: list[int]
    batches: int


class FlowSubscriber(Actor):
    """Keeps every batch of BTC/USDT book and trade events and, when asked, reports what they
    build: a LocalBook, each delta's span, every trade id.

    The handler only keeps the batch (decoding comes at report time), so the fast subscriber
    stays far faster than the feed even on a loaded machine; the slow one sleeps per batch.
    """

    def __init__(self) -> None:
        super().__init__()
        self.pace = 0.0
        self.payloads: list[bytes] = []

    def receiveMessage(self, message: Any, sender: Any) -> None:
        if isinstance(message, EventBatch):
            self.payloads.append(message.payload)
            if self.pace:
                time.sleep(self.pace)  # a slow engine: the behaviour under test
        elif isinstance(message, Pace):
            self.pace = message.seconds_per_batch
            self.send(sender, message)
        elif message == "report":
            self.send(sender, self._report())

    def _report(self) -> Report:
        book = LocalBook()
        snapshot_ids: list[int] = []
        spans: list[tuple[int, int]] = []
        trade_ids: list[int] = []
        rejected = resets = 0
        for payload in self.payloads:
            for event in EventBatch(payload).events:
                if isinstance(event, Trade):
                    trade_ids.append(int(event.trade_id))
                elif isinstance(event, BookDelta | BookSnapshot | BookReset | BookStale):
                    ok = book.on_event(event)
                    if isinstance(event, BookDelta):
                        spans.append((event.prev_update_id, event.update_id))
                        rejected += not ok
                    elif isinstance(event, BookSnapshot):
                        snapshot_ids.append(event.update_id)
                    elif isinstance(event, BookReset):
                        resets += 1
        bids, asks = book.top(10_000)
        return Report(
            valid=book.valid,
            update_id=book.update_id,
            bids=bids,
            asks=asks,
            snapshot_ids=snapshot_ids,
            spans=spans,
            rejected=rejected,
            resets=resets,
            trade_ids=trade_ids,
            batches=len(self.payloads),
        )


def report(ex: exconn.Exconn, actor: Any) -> Report:
    reply = ex.system.ask(actor, "report", 10)
    assert isinstance(reply, Report), f"subscriber did not answer: {reply!r}"
    return reply


def last_trade_id(sim: BinanceSpotSim) -> int:
    rows = httpx.get(
        f"{sim.rest_url}/api/v3/trades", params={"symbol": VENUE_BTC, "limit": 1}, timeout=10
    ).json()
    return int(rows[-1]["id"])


def at_sim_book(ex: exconn.Exconn, actor: Any, sim: BinanceSpotSim) -> Report | None:
    r = report(ex, actor)
    return r if r.valid and r.update_id == sim.last_update_id(VENUE_BTC) else None


def test_slow_subscriber_is_conflated_and_the_fast_one_is_not(
    sim: BinanceSpotSim, ex: exconn.Exconn
) -> None:
    sim.pause()
    sim.prepare_flood(VENUE_BTC, FLOOD_UPDATES, levels_per_update=3)
    sim.flood_final_book(VENUE_BTC)  # the flood is prepared before anyone subscribes
    fast = ex.create_actor(FlowSubscriber)
    slow = ex.create_actor(FlowSubscriber)
    assert ex.system.ask(slow, Pace(SLOW_SECONDS_PER_BATCH), 10) == Pace(SLOW_SECONDS_PER_BATCH)
    topics = (f"book.binance.spot.{BTC}", f"trades.binance.spot.{BTC}")
    # The first depth subscription starts the flood and both subscribers must see it whole:
    # the slow one's pattern opens nothing, so the fast one's subscription routes the book
    # to both at once.
    ex.subscribe(slow, "book.binance.spot.*", topics[1])
    ex.subscribe(fast, *topics)
    wait_for(lambda: sim.stats().get("floods_completed") == 1, "the flood written")
    for _ in range(STEP_BURSTS):
        sim.step(STEPS_PER_BURST)  # trades and deltas while the slow subscriber lags

    views = {
        name: wait_for(lambda a=actor: at_sim_book(ex, a, sim), f"{name} book at the sim's id")
        for name, actor in (("fast", fast), ("slow", slow))
    }
    _, bids, asks = sim.book(VENUE_BTC)
    last_trade = last_trade_id(sim)
    for name, v in views.items():
        assert [tuple(x) for x in v.bids] == [tuple(x) for x in bids], name
        assert [tuple(x) for x in v.asks] == [tuple(x) for x in asks], name
        assert v.rejected == 0 and v.resets == 0, name
        # Every trade exactly once, in order, from the first one routed to this subscriber
        # (when that is depends on when its subscription reached the connection) up to the
        # simulator's last one.
        if v.trade_ids:
            assert v.trade_ids == list(range(v.trade_ids[0], last_trade + 1)), name
    fast_v, slow_v = views["fast"], views["slow"]
    assert slow_v.trade_ids  # subscribed to trades before any was made

    # How much of the feed the second subscriber takes unmerged depends on the machine's load
    # (CI shares two cores between the simulator, the connection and both subscribers), so
    # only what holds under any load is asserted: the slow one got its book updates merged
    # and far fewer messages, and it did not hold the other one back (same final book, every
    # trade, more messages).
    assert slow_v.batches < fast_v.batches
    assert any(b - a > 1 for a, b in slow_v.spans)
    (conn,) = ex.status().connections
    conflated = dict(conn.conflated_by_subscriber)
    assert conn.flow_control
    assert conflated.get(str(slow), 0) > conflated.get(str(fast), 0)
    assert conn.conflated_events == sum(conflated.values())


# -- the adapter on a real actor system -------------------------------------------------------
class Publish(msgspec.Struct, frozen=True):
    target: Any
    first_id: int
    count: int


class Forward(msgspec.Struct, frozen=True):
    """Ask the publisher to send ``message`` to ``target`` with plain ``send``."""

    target: Any
    message: str


class Probe(msgspec.Struct, frozen=True):
    completions: int
    foreign_callbacks: int
    flow_control: bool
    handler_thread: int
    callback_threads: list[int]


class PublishingActor(Actor):
    """Publishes trades through a TrackedSender, one batch per message, and reports on which
    thread the completion callbacks ran."""

    def __init__(self) -> None:
        super().__init__()
        self.sender = TrackedSender(self, Delivery(max_in_flight=1))
        self.handler_thread = 0
        self.callback_threads: list[int] = []
        completed = self.sender._completed

        def spy(*args: Any) -> None:
            self.callback_threads.append(threading.get_ident())
            completed(*args)

        self.sender._completed = spy  # type: ignore[method-assign]

    def receiveMessage(self, message: Any, sender: Any) -> None:
        self.handler_thread = threading.get_ident()
        if isinstance(message, Publish):
            for tid in range(message.first_id, message.first_id + message.count):
                out = Outbox()
                out.add(((str(message.target), message.target),), _trade(tid))
                self.sender.publish(out)
        elif isinstance(message, Forward):
            self.send(message.target, message.message)
        elif message == "probe":
            self.send(
                sender,
                Probe(
                    completions=self.sender.completions,
                    foreign_callbacks=self.sender.foreign_callbacks,
                    flow_control=self.sender.flow_control,
                    handler_thread=self.handler_thread,
                    callback_threads=sorted(set(self.callback_threads)),
                ),
            )


class TradeSink(Actor):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[int] = []

    def receiveMessage(self, message: Any, sender: Any) -> None:
        if isinstance(message, EventBatch):
            self.ids.extend(int(e.trade_id) for e in message.events)  # type: ignore[union-attr]
        elif message == "ids":
            self.send(sender, list(self.ids))


class DeadLetters(Actor):
    """Thespian's dead-letter handler: records what reached actors that were gone."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[int] = []
        self.other: list[Any] = []

    def receiveMessage(self, message: Any, sender: Any) -> None:
        if message == "start":
            self.handleDeadLetters(startHandling=True)
            self.send(sender, "started")
        elif isinstance(message, DeadEnvelope):
            dead = message.deadMessage
            if isinstance(dead, EventBatch):
                self.ids.extend(int(e.trade_id) for e in dead.events)  # type: ignore[union-attr]
            else:
                self.other.append(dead)
        elif message == "report":
            self.send(sender, (list(self.ids), list(self.other)))


def _trade(tid: int) -> TradeText:
    return TradeText("binance", "spot", BTC, str(tid), "1", "1", OrderSide.BUY, 0.0)


def probe(ex: exconn.Exconn, actor: Any) -> Probe:
    reply = ex.system.ask(actor, "probe", 10)
    assert isinstance(reply, Probe), f"no probe reply: {reply!r}"
    return reply


def test_completions_run_on_the_actor_thread_and_dead_letters_survive(
    ex: exconn.Exconn,
) -> None:
    publisher = ex.create_actor(PublishingActor)
    sink = ex.create_actor(TradeSink)
    ex.system.tell(publisher, Publish(sink, 1, 50))
    ids = wait_for(lambda: (x := ex.system.ask(sink, "ids", 10)) and len(x) == 50 and x, "50")
    assert ids == list(range(1, 51))  # in order, none lost (conflation never touches trades)
    p = wait_for(lambda: (x := probe(ex, publisher)).completions >= 1 and x, "completions")
    assert p.flow_control and p.foreign_callbacks == 0
    assert p.callback_threads == [p.handler_thread]

    # A subscriber that is gone: its batches become dead letters, as with Actor.send.
    letters = ex.create_actor(DeadLetters)
    assert ex.system.ask(letters, "start", 10) == "started"
    ex.system.tell(sink, ActorExitRequest())

    def sink_gone() -> bool:
        # The exit request and the publisher's sends race: send a marker until one is a
        # dead letter; from then on everything sent to the sink is one.
        ex.system.tell(publisher, Forward(sink, "gone?"))
        return "gone?" in ex.system.ask(letters, "report", 10)[1]

    wait_for(sink_gone, "the sink gone")
    ex.system.tell(publisher, Publish(sink, 100, 3))
    dead = wait_for(
        lambda: (x := ex.system.ask(letters, "report", 10)[0]) and len(x) == 3 and x,
        "three trades dead-lettered",
    )
    assert dead == [100, 101, 102]
    assert probe(ex, publisher).foreign_callbacks == 0
