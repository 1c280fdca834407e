"""Streams beyond the per-connection cap go to another connection actor (sharding), and a
subscription keeps working when its shard's actor is killed and restarted."""

from __future__ import annotations

import os
import signal

import pytest

import exconn
from exconn.config import WsSettings
from exconn.sim import BinanceSpotSim
from tests.integration.conftest import book_matches_sim, view, wait_for
from tests.integration.subscribers import RecordingSubscriber

pytestmark = pytest.mark.integration


def test_streams_are_sharded_across_connection_actors(sim: BinanceSpotSim) -> None:
    ex = exconn.start(
        exconn.Config.for_sim(sim.rest_url, sim.ws_url, ws=WsSettings(max_streams_per_connection=2))
    )
    try:
        sub = ex.create_actor(RecordingSubscriber)
        ex.subscribe(
            sub,
            "book.binance.spot.BTC/USDT",
            "book.binance.spot.ETH/USDT",
            "book.binance.spot.SOL/USDT",
        )
        wait_for(
            lambda: all(view(ex, sub, s).deltas > 0 for s in ("BTC/USDT", "ETH/USDT", "SOL/USDT")),
            "three live books",
        )
        conns = ex.status().connections
        assert sorted(len(c.streams) for c in conns) == [1, 2]
        assert len({c.pid for c in conns}) == 2
        # Kill the shard holding one stream: only its book resets, and it comes back.
        lone = next(c for c in conns if len(c.streams) == 1)
        os.kill(lone.pid, signal.SIGKILL)
        wait_for(
            lambda: len({c.pid for c in ex.status().connections} - {lone.pid}) == 2,
            "the shard restarted",
        )
        wait_for(lambda: view(ex, sub, "SOL/USDT").snapshots >= 2, "SOL resynced after restart")
        sim.pause()
        for symbol, venue in (
            ("BTC/USDT", "BTCUSDT"),
            ("ETH/USDT", "ETHUSDT"),
            ("SOL/USDT", "SOLUSDT"),
        ):
            wait_for(lambda s=symbol, v=venue: book_matches_sim(ex, sub, sim, s, v), symbol)
    finally:
        ex.shutdown()
