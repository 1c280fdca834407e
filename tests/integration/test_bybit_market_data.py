"""Bybit V5 market data end to end through the same actors, messages and topics as Binance:
BybitSim on 127.0.0.1 -> connection actor (in-stream snapshots, u continuity) -> subscriber
actor in another process, on multiprocTCPBase."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from thespian.actors import Actor

import exconn
from exconn.book.local import LocalBook
from exconn.messages import BookDelta, BookReset, BookSnapshot, EventBatch, Trade
from exconn.sim import BinanceSpotSim, BybitSim
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration

DEPTH = 200  # the book topic's Bybit depth (exconn.venues.bybit.urls.BOOK_DEPTH)


class GetBook(msgspec.Struct, frozen=True):
    exchange: str
    market: str
    symbol: str


class BookState(msgspec.Struct, frozen=True):
    valid: bool
    update_id: int | None
    bids: list[tuple[Any, Any]]
    asks: list[tuple[Any, Any]]
    snapshots: int
    deltas: int
    resets: int
    rejected: int
    trade_ids: list[str]


class VenueBooks(Actor):
    """An engine actor keeping one LocalBook per (exchange, market, symbol)."""

    def __init__(self) -> None:
        super().__init__()
        self.books: dict[tuple[str, str, str], LocalBook] = {}
        self.counts: dict[tuple[str, str, str], dict[str, int]] = {}
        self.trades: dict[tuple[str, str, str], list[str]] = {}

    def receiveMessage(self, message: Any, sender: Any) -> None:
        if isinstance(message, EventBatch):
            for event in message.events:
                key = (event.exchange, event.market, event.symbol)
                c = self.counts.setdefault(key, dict.fromkeys(("s", "d", "r", "x"), 0))
                if isinstance(event, Trade):
                    self.trades.setdefault(key, []).append(event.trade_id)
                    continue
                ok = self.books.setdefault(key, LocalBook()).on_event(event)
                if isinstance(event, BookSnapshot):
                    c["s"] += 1
                elif isinstance(event, BookDelta):
                    c["d"] += 1
                    c["x"] += 0 if ok else 1
                elif isinstance(event, BookReset):
                    c["r"] += 1
        elif isinstance(message, GetBook):
            key = (message.exchange, message.market, message.symbol)
            book = self.books.get(key, LocalBook())
            c = self.counts.get(key, dict.fromkeys(("s", "d", "r", "x"), 0))
            bids, asks = book.top(10_000)
            self.send(
                sender,
                BookState(
                    book.valid,
                    book.update_id,
                    bids,
                    asks,
                    c["s"],
                    c["d"],
                    c["r"],
                    c["x"],
                    list(self.trades.get(key, [])),
                ),
            )


@pytest.fixture
def bybit() -> Iterator[BybitSim]:
    s = BybitSim(seed=5, depth_interval_ms=50).start()
    try:
        yield s
    finally:
        s.stop()


def state(ex: exconn.Exconn, actor: Any, exchange: str, market: str, symbol: str) -> BookState:
    reply = ex.system.ask(actor, GetBook(exchange, market, symbol), 10)
    assert isinstance(reply, BookState), f"subscriber did not answer: {reply!r}"
    return reply


def levels(rows: list[tuple[Any, Any]]) -> list[tuple[Decimal, Decimal]]:
    return [(Decimal(p), Decimal(q)) for p, q in rows]


def assert_bybit_book(
    ex: exconn.Exconn, sub: Any, sim: BybitSim, market: str, symbol: str, venue: str
) -> BookState:
    """The subscriber's book equals the simulator's at the same ``u`` (market paused)."""
    target = sim.last_update_id(market, venue, DEPTH)
    st = wait_for(
        lambda: (s := state(ex, sub, "bybit", market, symbol)).update_id == target and s,
        f"bybit {market} {symbol} book at u={target}",
    )
    u, bids, asks = sim.book(market, venue, DEPTH)
    assert st.valid and st.update_id == u
    # Decimal equality is by value: the venue's 0.10 tick and the simulator's 0.1 agree.
    assert levels(st.bids) == list(bids)
    assert levels(st.asks) == list(asks)
    assert st.rejected == 0
    return st


def test_spot_and_linear_books_equal_the_simulator(bybit: BybitSim) -> None:
    ex = exconn.start(exconn.Config.for_sim(None, None, bybit=(bybit.rest_url, bybit.ws_url)))
    try:
        sub = ex.create_actor(VenueBooks)
        ex.subscribe(
            sub,
            "book.bybit.spot.BTC/USDT",
            "trades.bybit.spot.BTC/USDT",
            "book.bybit.linear.BTC/USDT:USDT",
        )
        wait_for(
            lambda: (
                state(ex, sub, "bybit", "spot", "BTC/USDT").deltas >= 3
                and state(ex, sub, "bybit", "linear", "BTC/USDT:USDT").deltas >= 3
            ),
            "live Bybit books",
        )
        bybit.pause()
        spot = assert_bybit_book(ex, sub, bybit, "spot", "BTC/USDT", "BTCUSDT")
        assert_bybit_book(ex, sub, bybit, "linear", "BTC/USDT:USDT", "BTCUSDT")
        bybit.step(20)
        spot = assert_bybit_book(ex, sub, bybit, "spot", "BTC/USDT", "BTCUSDT")
        assert spot.snapshots == 1 and spot.resets == 0
        assert len(spot.trade_ids) == len(set(spot.trade_ids))
    finally:
        ex.shutdown()


def test_skipped_sequence_resubscribes_and_the_book_recovers(bybit: BybitSim) -> None:
    ex = exconn.start(
        exconn.Config.for_sim(
            None, None, bybit=(bybit.rest_url, bybit.ws_url), bybit_markets=("spot",)
        )
    )
    try:
        sub = ex.create_actor(VenueBooks)
        ex.subscribe(sub, "book.bybit.spot.BTC/USDT")
        wait_for(lambda: state(ex, sub, "bybit", "spot", "BTC/USDT").deltas >= 3, "live book")
        bybit.skip_sequence("BTCUSDT")
        wait_for(
            lambda: state(ex, sub, "bybit", "spot", "BTC/USDT").resets >= 1,
            "BookReset after the skipped u",
        )
        wait_for(
            lambda: state(ex, sub, "bybit", "spot", "BTC/USDT").snapshots >= 2,
            "a fresh snapshot from the new subscription",
        )
        bybit.pause()
        assert_bybit_book(ex, sub, bybit, "spot", "BTC/USDT", "BTCUSDT")
    finally:
        ex.shutdown()


def test_one_pattern_receives_both_venues_books_through_the_same_messages(
    bybit: BybitSim,
) -> None:
    binance = BinanceSpotSim(seed=11, depth_interval_ms=50).start()
    try:
        config = exconn.Config.for_sim(
            binance.rest_url,
            binance.ws_url,
            bybit=(bybit.rest_url, bybit.ws_url),
            bybit_markets=("spot",),
        )
        ex = exconn.start(config)
        try:
            sub = ex.create_actor(VenueBooks)
            ex.subscribe(sub, "book.*.*.BTC/USDT")
            wait_for(
                lambda: (
                    state(ex, sub, "bybit", "spot", "BTC/USDT").deltas >= 3
                    and state(ex, sub, "binance", "spot", "BTC/USDT").deltas >= 3
                ),
                "both venues' BTC/USDT books",
            )
            bybit.pause()
            binance.pause()
            assert_bybit_book(ex, sub, bybit, "spot", "BTC/USDT", "BTCUSDT")
            target = binance.last_update_id("BTCUSDT")
            st = wait_for(
                lambda: (
                    (s := state(ex, sub, "binance", "spot", "BTC/USDT")).update_id == target and s
                ),
                "binance book at the simulator's id",
            )
            _, bids, asks = binance.book("BTCUSDT")
            assert levels(st.bids) == [tuple(x) for x in bids]
            assert levels(st.asks) == [tuple(x) for x in asks]
        finally:
            ex.shutdown()
    finally:
        binance.stop()
