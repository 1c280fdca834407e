"""Binance USD-M bbo and depth10 on the routed /public URL, aggtrades, mark, kline_<interval>
and ticker on /market, through the actors against BinanceUsdmSim."""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.request
from collections.abc import Iterator
from decimal import Decimal

import pytest

import exconn
from exconn.sim import BinanceUsdmSim
from tests.integration.conftest import wait_for
from tests.integration.test_binance_topic_kinds import (
    assert_kline_is_the_trades_of_its_bar,
    assert_ticker_is_the_tape,
    rest_trades,
)
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


NEW_KINDS = tuple(
    f"{kind}.binance.linear.{BTC}"
    for kind in ("depth10", "kline_1m", "kline_1w", "kline_1M", "ticker")
)
NEW_STREAMS = {
    "btcusdt@depth10@100ms",
    "btcusdt@kline_1m",
    "btcusdt@kline_1w",
    "btcusdt@kline_1M",
    "btcusdt@ticker",
}


def test_usdm_tops_klines_and_ticker_on_their_routes(usdm: BinanceUsdmSim) -> None:
    ex = exconn.start(exconn.Config.for_sim(None, None, linear=(usdm.rest_url, usdm.ws_url)))
    try:
        sub = ex.create_actor(EventRecorder)
        ex.subscribe(
            sub, f"book.binance.linear.{BTC}", *NEW_KINDS, f"kline_1s.binance.linear.{BTC}"
        )

        def all_live() -> Events | None:
            e = events(ex, sub)
            live = (
                e.tops
                and any(k.trades for k in e.klines)
                and any(t.trades for t in e.tickers)
                and e.book_update_id is not None
                and e.errors
            )
            return e if live else None

        got = wait_for(all_live, "top, kline, ticker, book and the kline_1s refusal")
        (error,) = got.errors
        assert "kline_1s" in error and "spot only" in error
        names = sorted(c.name for c in ex.status().connections)
        assert names == ["linear-market-md-0", "linear-public-md-0"]
        assert NEW_STREAMS <= set(usdm.subscriptions())
        usdm.pause()
        usdm.step(1)  # partial depth goes out on every interval
        update_id, bids, asks = usdm.book("BTCUSDT")

        def top_at_pause() -> Events | None:
            e = events(ex, sub)
            at = any(t.update_id == update_id for t in e.tops)
            return e if at and e.book_update_id == update_id else None

        got = wait_for(top_at_pause, "the top and the book at the paused update id")
        top = got.tops[-1]
        assert top.update_id == update_id and top.depth == 10
        assert [tuple(x) for x in top.bids] == [tuple(x) for x in bids[:10]]
        assert [tuple(x) for x in top.asks] == [tuple(x) for x in asks[:10]]
        assert top.ts is not None  # USD-M sends the engine time
        # The LocalBook of the book topic, in the same subscriber, holds every level.
        assert len(bids) > 10 and got.book_rejected == 0
        assert [tuple(x) for x in got.book_bids] == [tuple(x) for x in bids]
        tape = rest_trades(f"{usdm.rest_url}/fapi/v1/trades?symbol=BTCUSDT&limit=1000")
        kline = next(k for k in reversed(got.klines) if k.trades and k.interval == "1m")
        assert_kline_is_the_trades_of_its_bar(kline, tape)
        # Calendar bars: weeks open on Monday 00:00 UTC, months on the 1st.
        week = next(k for k in reversed(got.klines) if k.interval == "1w")
        assert week.open_time.weekday() == 0 and week.open_time.time() == dt.time(0)
        assert week.close_time - week.open_time == dt.timedelta(days=7, milliseconds=-1)
        month = next(k for k in reversed(got.klines) if k.interval == "1M")
        assert month.open_time.day == 1 and month.open_time.time() == dt.time(0)
        assert (month.close_time + dt.timedelta(milliseconds=1)).day == 1
        assert month.open_time <= kline.open_time <= month.close_time
        ticker = next(t for t in reversed(got.tickers) if t.trades)
        assert_ticker_is_the_tape(ticker, tape)
        assert ticker.bid_price is None  # USD-M's ticker has no best bid/ask
        for event in (*got.tops, *got.klines, *got.tickers):
            assert (event.exchange, event.market, event.symbol) == ("binance", "linear", BTC)
        assert got.others == []
        ex.unsubscribe(sub, *NEW_KINDS)
        wait_for(lambda: not NEW_STREAMS & set(usdm.subscriptions()), "streams unsubscribed")
        assert "btcusdt@depth@100ms" in usdm.subscriptions()
        assert all(c.malformed_frames == 0 for c in ex.status().connections)
    finally:
        ex.shutdown()
