"""Binance USD-M bbo on the routed /public URL, aggtrades and mark on /market, through the
actors against BinanceUsdmSim."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from decimal import Decimal

import pytest

import exconn
from exconn.sim import BinanceUsdmSim
from tests.integration.conftest import wait_for
from tests.integration.topic_subscribers import EventRecorder, Events, GetEvents

pytestmark = pytest.mark.integration
BTC = "BTC/USDT:USDT"
TOPICS = (f"bbo.binance.linear.{BTC}", f"aggtrades.binance.linear.{BTC}")
MARK = f"mark.binance.linear.{BTC}"


@pytest.fixture
def usdm() -> Iterator[BinanceUsdmSim]:
    s = BinanceUsdmSim(seed=3, depth_interval_ms=50).start()
    try:
        yield s
    finally:
        s.stop()


def events(ex: exconn.Exconn, actor) -> Events:
    reply = ex.system.ask(actor, GetEvents(), 10)
    assert isinstance(reply, Events), f"subscriber did not answer: {reply!r}"
    return reply


def sim_mark(usdm: BinanceUsdmSim) -> Decimal:
    url = f"{usdm.rest_url}/fapi/v1/premiumIndex?symbol=BTCUSDT"
    with urllib.request.urlopen(url, timeout=10) as resp:
        return Decimal(json.load(resp)["markPrice"])


def test_usdm_bbo_aggtrades_and_mark_on_their_routes(usdm: BinanceUsdmSim) -> None:
    ex = exconn.start(exconn.Config.for_sim(None, None, linear=(usdm.rest_url, usdm.ws_url)))
    try:
        sub = ex.create_actor(EventRecorder)
        ex.subscribe(sub, *TOPICS, MARK)
        wait_for(
            lambda: (e := events(ex, sub)).bbos and e.aggs and e.marks,
            "bbo, aggTrades and mark price live",
        )
        names = sorted(c.name for c in ex.status().connections)
        assert names == ["linear-market-md-0", "linear-public-md-0"]
        assert {"btcusdt@bookTicker", "btcusdt@aggTrade", "btcusdt@markPrice@1s"} <= set(
            usdm.subscriptions()
        )
        usdm.pause()
        time.sleep(0.3)  # let what was sent before the pause arrive
        before = len(events(ex, sub).marks)
        # markPrice@1s is sent every 20 intervals of 50 ms: 20 single steps send exactly one.
        mids = set()
        for _ in range(20):
            usdm.step(1)
            mids.add(sim_mark(usdm))
        got = wait_for(lambda: len((e := events(ex, sub)).marks) > before and e, "a new mark")
        time.sleep(0.3)
        got = events(ex, sub)
        assert len(got.marks) == before + 1
        mark = got.marks[-1]
        assert mark.symbol == BTC and mark.market == "linear"
        assert mark.mark_price in mids and mark.index_price == mark.mark_price
        assert mark.next_funding_time > mark.ts
        # The quote ends at the top of the paused book.
        _, bids, asks = usdm.book("BTCUSDT")
        top = (*bids[0], *asks[0])

        def last_bbo() -> tuple[Decimal, ...]:
            b = events(ex, sub).bbos[-1]
            return (b.bid_price, b.bid_qty, b.ask_price, b.ask_qty)

        wait_for(lambda: last_bbo() == top, "bbo at the top of the paused book")
        ids = [int(a.agg_id) for a in got.aggs]
        assert ids == sorted(set(ids))  # in order, none twice
        assert got.errors == [] and got.others == []
        # Closing the topics closes their streams, on both routes.
        ex.unsubscribe(sub, *TOPICS, MARK)
        wait_for(
            lambda: (
                not {"btcusdt@bookTicker", "btcusdt@aggTrade", "btcusdt@markPrice@1s"}
                & set(usdm.subscriptions())
            ),
            "streams unsubscribed",
        )
    finally:
        ex.shutdown()
