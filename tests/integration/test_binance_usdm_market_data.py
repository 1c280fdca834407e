"""Binance USD-M order books on the routed /public URL with the pu continuity rules, through
the actors against BinanceUsdmSim (topics ``book.binance.linear.BTC/USDT:USDT``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import exconn
from exconn.sim import BinanceUsdmSim
from tests.integration.conftest import view, wait_for
from tests.integration.subscribers import RecordingSubscriber

pytestmark = pytest.mark.integration
BTC = "BTC/USDT:USDT"


@pytest.fixture
def usdm() -> Iterator[BinanceUsdmSim]:
    s = BinanceUsdmSim(seed=3, depth_interval_ms=50).start()
    try:
        yield s
    finally:
        s.stop()


def test_usdm_book_on_the_public_route_equals_the_simulator(usdm: BinanceUsdmSim) -> None:
    ex = exconn.start(exconn.Config.for_sim(None, None, linear=(usdm.rest_url, usdm.ws_url)))
    try:
        sub = ex.create_actor(RecordingSubscriber)
        ex.subscribe(sub, f"book.binance.linear.{BTC}")
        wait_for(lambda: view(ex, sub, BTC).deltas > 5, "live USD-M book")
        assert [c.name for c in ex.status().connections] == ["linear-public-md-0"]
        # A dropped socket is replaced and the book continues without a reset.
        before = view(ex, sub, BTC).deltas
        usdm.drop_connections()
        wait_for(lambda: view(ex, sub, BTC).deltas > before + 10, "book moving after a drop")
        usdm.pause()
        v = wait_for(
            lambda: (x := view(ex, sub, BTC)).update_id == usdm.last_update_id("BTCUSDT") and x,
            "book at the simulator's update id",
        )
        _, bids, asks = usdm.book("BTCUSDT")
        assert [tuple(x) for x in v.bids] == [tuple(x) for x in bids]
        assert [tuple(x) for x in v.asks] == [tuple(x) for x in asks]
        assert v.rejected_deltas == 0 and v.resets == 0 and v.errors == []
    finally:
        ex.shutdown()
