"""Binance bbo (bookTicker) and aggtrades (aggTrade) topics end to end: simulator on 127.0.0.1
-> connection actor -> subscriber actor in another process."""

from __future__ import annotations

import json
import urllib.request
from decimal import Decimal

import pytest

import exconn
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
