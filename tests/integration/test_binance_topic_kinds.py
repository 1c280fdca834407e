"""Binance spot topics beyond the book end to end: bbo (bookTicker), aggtrades (aggTrade),
depth5/10/20 (partial depth), kline_<interval> and ticker; simulator on 127.0.0.1 -> connection
actor -> subscriber actor in another process."""

from __future__ import annotations

import json
import urllib.request
from decimal import Decimal
from typing import Any

import pytest

import exconn
from exconn.messages import Kline, Ticker24h
from exconn.model.enums import OrderSide
from exconn.sim import BinanceSpotSim
from tests.integration.conftest import wait_for
from tests.integration.topic_subscribers import EventRecorder, Events, GetEvents

pytestmark = pytest.mark.integration

BTC = "BTC/USDT"
BBO = f"bbo.binance.spot.{BTC}"
AGG = f"aggtrades.binance.spot.{BTC}"


def events(ex: exconn.Exconn, actor) -> Events:
    reply = ex.system.ask(actor, GetEvents(), 10)
    assert isinstance(reply, Events), f"subscriber did not answer: {reply!r}"
    return reply


def top_of(sim: BinanceSpotSim, venue: str) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    _, bids, asks = sim.book(venue)
    return (bids[0][0], bids[0][1], asks[0][0], asks[0][1])


def last_bbo_is_top(ex: exconn.Exconn, actor, sim: BinanceSpotSim) -> bool:
    bbos = events(ex, actor).bbos
    if not bbos:
        return False
    b = bbos[-1]
    return (b.bid_price, b.bid_qty, b.ask_price, b.ask_qty) == top_of(sim, "BTCUSDT")


def test_bbo_equals_the_top_of_the_simulator_book(sim: BinanceSpotSim, ex: exconn.Exconn) -> None:
    sub = ex.create_actor(EventRecorder)
    ex.subscribe(sub, BBO)
    wait_for(lambda: len(events(ex, sub).bbos) >= 3, "live bbo quotes")
    assert "btcusdt@bookTicker" in sim.subscriptions()
    sim.pause()
    wait_for(lambda: last_bbo_is_top(ex, sub, sim), "bbo at the top of the paused book")
    for _ in range(3):
        sim.step(10)
        wait_for(lambda: last_bbo_is_top(ex, sub, sim), "bbo at the top after stepping")
    got = events(ex, sub)
    assert got.errors == [] and got.others == []
    assert all(b.symbol == BTC and b.market == "spot" and b.ts is None for b in got.bbos)
    ids = [b.update_id for b in got.bbos]
    assert ids == sorted(ids)
    assert all(b.bid_price < b.ask_price for b in got.bbos)
    assert ex.status().connections[0].malformed_frames == 0


def test_aggtrades_agree_with_the_simulator(sim: BinanceSpotSim, ex: exconn.Exconn) -> None:
    sub = ex.create_actor(EventRecorder)
    ex.subscribe(sub, AGG)
    wait_for(lambda: len(events(ex, sub).aggs) >= 5, "live aggTrades")
    sim.pause()
    got = events(ex, sub).aggs
    first = int(got[0].agg_id)
    url = f"{sim.rest_url}/api/v3/aggTrades?symbol=BTCUSDT&fromId={first}&limit=1000"
    with urllib.request.urlopen(url, timeout=10) as resp:
        rows = {r["a"]: r for r in json.load(resp)}
    # Everything the simulator printed reaches the subscriber (the market is paused).
    wait_for(lambda: len(events(ex, sub).aggs) >= len(rows), "every printed aggTrade")
    got = events(ex, sub).aggs
    ids = [int(a.agg_id) for a in got]
    assert ids == list(range(first, first + len(ids)))  # in order, no duplicate, no gap
    assert set(ids) == set(rows)
    for a in got:
        row = rows[int(a.agg_id)]
        assert a.price == Decimal(row["p"]) and a.qty == Decimal(row["q"])
        assert (a.first_trade_id, a.last_trade_id) == (row["f"], row["l"])
        assert a.side is (OrderSide.SELL if row["m"] else OrderSide.BUY)
        assert int(a.ts.timestamp() * 1000) == row["T"]
    assert events(ex, sub).others == []


def test_unsubscribe_closes_the_streams(sim: BinanceSpotSim, ex: exconn.Exconn) -> None:
    one = ex.create_actor(EventRecorder)
    two = ex.create_actor(EventRecorder)
    ex.subscribe(one, BBO, AGG)
    ex.subscribe(two, BBO)
    wait_for(
        lambda: len(events(ex, one).aggs) > 0 and len(events(ex, two).bbos) > 0,
        "bbo and aggTrades live",
    )
    streams = sim.subscriptions()
    assert "btcusdt@bookTicker" in streams and "btcusdt@aggTrade" in streams
    ex.unsubscribe(one, BBO, AGG)
    wait_for(lambda: "btcusdt@aggTrade" not in sim.subscriptions(), "aggTrade unsubscribed")
    # `two` still holds the bbo topic: reference counting keeps the stream open.
    assert "btcusdt@bookTicker" in sim.subscriptions()
    before = len(events(ex, two).bbos)
    wait_for(lambda: len(events(ex, two).bbos) > before, "bbo still delivered to the other")
    ex.unsubscribe(two, BBO)
    wait_for(lambda: "btcusdt@bookTicker" not in sim.subscriptions(), "bookTicker unsubscribed")
    (conn,) = ex.status().connections
    assert conn.malformed_frames == 0


def test_wildcard_rides_on_an_open_bbo_topic(sim: BinanceSpotSim, ex: exconn.Exconn) -> None:
    owner = ex.create_actor(EventRecorder)
    watcher = ex.create_actor(EventRecorder)
    ex.subscribe(watcher, "bbo.binance.spot.*")
    ex.subscribe(owner, BBO)
    wait_for(lambda: len(events(ex, watcher).bbos) >= 2, "wildcard subscriber gets bbo")
    assert {b.symbol for b in events(ex, watcher).bbos} == {BTC}


def test_mark_on_spot_is_refused(ex: exconn.Exconn) -> None:
    sub = ex.create_actor(EventRecorder)
    ex.subscribe(sub, f"mark.binance.spot.{BTC}", f"bogus.binance.spot.{BTC}")
    got = wait_for(lambda: len((e := events(ex, sub)).errors) >= 2 and e, "two errors")
    assert any("mark price" in e for e in got.errors)
    assert any("unknown" in e and "bogus" in e for e in got.errors)


# -- depth5/10/20, kline_<interval>, ticker ---------------------------------------------------

BOOK = f"book.binance.spot.{BTC}"
NEW_KINDS = tuple(
    f"{kind}.binance.spot.{BTC}" for kind in ("depth5", "depth20", "kline_1s", "kline_1m", "ticker")
)
NEW_STREAMS = {
    "btcusdt@depth5@100ms",
    "btcusdt@depth20@100ms",
    "btcusdt@kline_1s",
    "btcusdt@kline_1m",
    "btcusdt@ticker",
}
INTERVAL_MS = {"1s": 1000, "1m": 60_000}


def rest_trades(url: str) -> list[dict[str, Any]]:
    """The venue's trade tape (the simulator keeps every print; a test makes far fewer)."""
    with urllib.request.urlopen(url, timeout=10) as resp:
        rows = json.load(resp)
    assert len(rows) < 1000, "the tape is longer than one read: the checks below need it all"
    return sorted(rows, key=lambda r: r["id"])


def assert_kline_is_the_trades_of_its_bar(k: Kline, tape: list[dict[str, Any]]) -> None:
    """A kline is what the prints of its bar said when it was sent: its ``trades`` count
    says how many of them (ascending ids) it had seen."""
    width = INTERVAL_MS[k.interval]
    open_ms = int(k.open_time.timestamp() * 1000)
    assert open_ms % width == 0
    assert int(k.close_time.timestamp() * 1000) == open_ms + width - 1
    inside = [r for r in tape if open_ms <= r["time"] <= open_ms + width - 1][: k.trades]
    assert len(inside) == k.trades
    prices = [Decimal(r["price"]) for r in inside]
    assert (k.open, k.close) == (prices[0], prices[-1])
    assert (k.high, k.low) == (max(prices), min(prices))
    assert k.volume == sum(Decimal(r["qty"]) for r in inside)
    assert not k.closed  # a bar still forming when it was sent


def assert_ticker_is_the_tape(t: Ticker24h, tape: list[dict[str, Any]]) -> None:
    """The 24 h window covers the whole tape: its first ``trades`` prints are what it saw."""
    seen = tape[: t.trades]
    assert len(seen) == t.trades > 0
    prices = [Decimal(r["price"]) for r in seen]
    assert t.last_price == prices[-1] and t.open == prices[0]
    assert (t.high, t.low) == (max(prices), min(prices))
    assert t.volume == sum(Decimal(r["qty"]) for r in seen)
    assert t.last_qty == Decimal(seen[-1]["qty"])


def test_depth_tops_beside_the_book_klines_and_ticker(
    sim: BinanceSpotSim, ex: exconn.Exconn
) -> None:
    sub = ex.create_actor(EventRecorder)
    ex.subscribe(sub, BOOK, *NEW_KINDS)

    def all_live() -> Events | None:
        e = events(ex, sub)
        live = (
            {t.depth for t in e.tops} == {5, 20}
            and {k.interval for k in e.klines if k.trades} == {"1s", "1m"}
            and any(t.trades for t in e.tickers)
            and e.book_update_id is not None
        )
        return e if live else None

    wait_for(all_live, "tops, klines with trades, a ticker and the book")
    assert NEW_STREAMS <= set(sim.subscriptions())
    sim.pause()
    sim.step(1)  # partial depth goes out on every step: the last tops are the paused book
    update_id, bids, asks = sim.book("BTCUSDT")

    def tops_at_pause() -> Events | None:
        e = events(ex, sub)
        depths = {t.depth for t in e.tops if t.update_id == update_id}
        return e if depths == {5, 20} and e.book_update_id == update_id else None

    got = wait_for(tops_at_pause, "both tops and the book at the paused update id")
    for n in (5, 20):
        top = next(t for t in reversed(got.tops) if t.depth == n)
        assert [tuple(x) for x in top.bids] == [tuple(x) for x in bids[:n]]
        assert [tuple(x) for x in top.asks] == [tuple(x) for x in asks[:n]]
    # The same subscriber's LocalBook holds the whole book: the tops never reached it.
    assert len(bids) > 20 and got.book_rejected == 0
    assert [tuple(x) for x in got.book_bids] == [tuple(x) for x in bids]
    assert [tuple(x) for x in got.book_asks] == [tuple(x) for x in asks]
    tape = rest_trades(f"{sim.rest_url}/api/v3/trades?symbol=BTCUSDT&limit=1000")
    for interval in ("1s", "1m"):
        last = next(k for k in reversed(got.klines) if k.interval == interval and k.trades)
        assert_kline_is_the_trades_of_its_bar(last, tape)
    ticker = next(t for t in reversed(got.tickers) if t.trades)
    assert_ticker_is_the_tape(ticker, tape)
    assert ticker.bid_price is not None and ticker.ask_price is not None  # spot has them
    for event in (*got.tops, *got.klines, *got.tickers):
        assert (event.exchange, event.market, event.symbol) == ("binance", "spot", BTC)
    assert got.errors == [] and got.others == []
    ex.unsubscribe(sub, *NEW_KINDS)
    wait_for(lambda: not NEW_STREAMS & set(sim.subscriptions()), "streams unsubscribed")
    assert "btcusdt@depth@100ms" in sim.subscriptions()  # the book stays open
    assert ex.status().connections[0].malformed_frames == 0


def test_unknown_kline_intervals_are_refused(ex: exconn.Exconn) -> None:
    sub = ex.create_actor(EventRecorder)
    ex.subscribe(sub, f"kline_2m.binance.spot.{BTC}", f"kline_1H.binance.spot.{BTC}")
    got = wait_for(lambda: len((e := events(ex, sub)).errors) >= 2 and e, "two errors")
    assert all("unknown kline interval" in e for e in got.errors)
