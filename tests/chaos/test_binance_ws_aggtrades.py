"""aggTrades stay lossless when the server never sends some of them: the simulator skips
aggregate ids on the stream (fault ``skip_agg_trade``; its REST tape keeps them), a raw socket
beside exconn shows the ids jump, and exconn's subscriber still gets every aggregate id
exactly once and in order (Binance spot and USD-M, multiprocTCPBase end to end)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import websocket

import exconn
from exconn.sim import BinanceSpotSim, BinanceUsdmSim
from tests.integration.conftest import wait_for
from tests.integration.topic_subscribers import EventRecorder, Events, GetEvents

pytestmark = pytest.mark.integration

MAX_STEPS = 3000  # market intervals a test may step through waiting for prints (bounded)


@pytest.fixture
def spot() -> Iterator[BinanceSpotSim]:
    s = BinanceSpotSim(seed=7, depth_interval_ms=50).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def usdm() -> Iterator[BinanceUsdmSim]:
    s = BinanceUsdmSim(seed=7, depth_interval_ms=50).start()
    try:
        yield s
    finally:
        s.stop()


def events(ex: exconn.Exconn, actor: Any) -> Events:
    reply = ex.system.ask(actor, GetEvents(), 10)
    assert isinstance(reply, Events), f"subscriber did not answer: {reply!r}"
    return reply


def rest_ids(url: str) -> list[int]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return [row["a"] for row in json.load(resp)]


class RawTape:
    """A plain websocket on the aggTrade stream: what the server actually sent."""

    def __init__(self, url: str) -> None:
        self.ws = websocket.create_connection(url, timeout=10, skip_utf8_validation=True)
        self.ids: list[int] = []

    def read_until(self, last_id: int) -> list[int]:
        for _ in range(100_000):  # bounded; each recv waits at most the socket timeout
            if self.ids and self.ids[-1] >= last_id:
                return self.ids
            message = json.loads(self.ws.recv())
            if "data" in message:
                self.ids.append(message["data"]["a"])
        raise AssertionError("the raw socket never reached the last aggregate id")

    def close(self) -> None:
        self.ws.close()


def skip_and_recover(
    sim: BinanceSpotSim | BinanceUsdmSim,
    ex: exconn.Exconn,
    topic: str,
    raw_url: str,
    tape_url: Callable[[int], str],
) -> None:
    sub = ex.create_actor(EventRecorder)
    ex.subscribe(sub, topic)
    wait_for(lambda: len(events(ex, sub).aggs) >= 3, "live aggTrades")
    raw = RawTape(raw_url)
    try:
        raw.read_until(0)  # its first aggTrade: the raw socket is subscribed
        sim.pause()
        first = int(events(ex, sub).aggs[0].agg_id)
        before = rest_ids(tape_url(first))[-1]  # printed before any fault

        def step_until(done: Callable[[], bool], what: str) -> None:
            for _ in range(MAX_STEPS):
                if done():
                    return
                sim.step(1)
            pytest.fail(f"no {what} after {MAX_STEPS} market intervals")

        def printed_after(agg_id: int) -> Callable[[], bool]:
            return lambda: rest_ids(tape_url(agg_id + 1)) != []

        # Two gaps: two aggregates in a row, then (after one that is sent) one more.
        for count in (2, 1):
            sim.add_fault("skip_agg_trade", symbol="BTCUSDT", count=count)
            step_until(lambda: sim.faults() == [], "skipped aggTrade")
            last = rest_ids(tape_url(first))[-1]
            step_until(printed_after(last), "aggTrade after the skipped ones")
        assert sim.stats()["agg_trades_skipped"] == 3
        tape = rest_ids(tape_url(first))
        assert len(tape) < 1000, "one REST read must hold the whole test"
        assert tape == list(range(first, first + len(tape)))
        sent = set(raw.read_until(tape[-1]))
        missing = [i for i in tape if i > before and i not in sent]
        assert len(missing) == 3, f"the server should have left out 3 ids, not {missing}"
        assert missing[1] == missing[0] + 1 and missing[2] > missing[1] + 1  # two gaps

        def delivered() -> list[int] | None:
            ids = [int(a.agg_id) for a in events(ex, sub).aggs]
            return ids if ids and ids[-1] == tape[-1] else None

        got = wait_for(delivered, "the subscriber at the venue's last aggregate id")
        assert got == tape, "an aggregate id was lost, reordered or delivered twice"
        assert events(ex, sub).errors == []
    finally:
        raw.close()


def test_spot_skipped_aggtrades_are_fetched_over_rest(spot: BinanceSpotSim) -> None:
    ex = exconn.start(exconn.Config.for_sim(spot.rest_url, spot.ws_url))
    try:
        skip_and_recover(
            spot,
            ex,
            "aggtrades.binance.spot.BTC/USDT",
            f"{spot.ws_url}/stream?streams=btcusdt@aggTrade",
            lambda i: f"{spot.rest_url}/api/v3/aggTrades?symbol=BTCUSDT&fromId={i}&limit=1000",
        )
    finally:
        ex.shutdown()


def test_usdm_skipped_aggtrades_are_fetched_over_rest(usdm: BinanceUsdmSim) -> None:
    ex = exconn.start(exconn.Config.for_sim(None, None, linear=(usdm.rest_url, usdm.ws_url)))
    try:
        skip_and_recover(
            usdm,
            ex,
            "aggtrades.binance.linear.BTC/USDT:USDT",
            f"{usdm.ws_url}/market/stream?streams=btcusdt@aggTrade",
            lambda i: f"{usdm.rest_url}/fapi/v1/aggTrades?symbol=BTCUSDT&fromId={i}&limit=1000",
        )
    finally:
        ex.shutdown()
