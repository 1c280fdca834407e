"""Binance spot WebSocket faults injected through the simulator, end to end on
multiprocTCPBase: every one must recover with books equal to the simulator's and every trade
delivered exactly once (compared with the simulator's own trade tape, ``GET /api/v3/trades``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

import exconn
from exconn.config import WsSettings
from exconn.sim import BinanceSpotSim
from tests.integration.conftest import book_matches_sim, view, wait_for
from tests.integration.subscribers import RecordingSubscriber

pytestmark = pytest.mark.integration

BTC, ETH = "BTC/USDT", "ETH/USDT"
# Compressed lifecycle so each fault resolves in about a second (the defaults are minutes).
FAST = WsSettings(
    stream_silence_s=0.6,
    rotation_timeout_s=1.0,
    held_book_s=15.0,
    backoff_initial_s=0.2,
    backoff_max_s=1.0,
)


def start(sim: BinanceSpotSim, settings: WsSettings = FAST) -> exconn.Exconn:
    return exconn.start(exconn.Config.for_sim(sim.rest_url, sim.ws_url, ws=settings))


@pytest.fixture
def sim() -> Iterator[BinanceSpotSim]:
    s = BinanceSpotSim(seed=5, depth_interval_ms=50).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def ex(sim: BinanceSpotSim) -> Iterator[exconn.Exconn]:
    handle = start(sim)
    try:
        yield handle
    finally:
        handle.shutdown()


def tape(sim: BinanceSpotSim, venue: str) -> list[int]:
    """The simulator's trade ids (its tape holds far more than a test produces)."""
    r = httpx.get(f"{sim.rest_url}/api/v3/trades", params={"symbol": venue, "limit": "1000"})
    r.raise_for_status()
    return [row["id"] for row in r.json()]


def subscribe_all(ex: exconn.Exconn) -> Any:
    sub = ex.create_actor(RecordingSubscriber)
    ex.subscribe(
        sub, f"book.binance.spot.{BTC}", f"book.binance.spot.{ETH}", f"trades.binance.spot.{BTC}"
    )
    wait_for(
        lambda: (
            view(ex, sub, BTC).deltas > 5
            and view(ex, sub, ETH).deltas > 5
            and view(ex, sub, BTC).trades > 0
        ),
        "live books and trades",
    )
    return sub


def keeps_flowing(ex: exconn.Exconn, sub: Any, what: str) -> None:
    """Wait until both books moved on by a margin after the fault (events, not time)."""
    b0, e0 = view(ex, sub, BTC).deltas, view(ex, sub, ETH).deltas
    wait_for(
        lambda: view(ex, sub, BTC).deltas > b0 + 10 and view(ex, sub, ETH).deltas > e0 + 10,
        f"books moving again after {what}",
    )


def assert_exact(ex: exconn.Exconn, sub: Any, sim: BinanceSpotSim, *, resets: int = 0) -> None:
    sim.pause()
    for symbol, venue in ((BTC, "BTCUSDT"), (ETH, "ETHUSDT")):
        v = wait_for(
            lambda s=symbol, vs=venue: book_matches_sim(ex, sub, sim, s, vs),
            f"{symbol} at the simulator's update id",
        )
        update_id, bids, asks = sim.book(venue)
        assert v.update_id == update_id
        assert [tuple(x) for x in v.bids] == [tuple(x) for x in bids]
        assert [tuple(x) for x in v.asks] == [tuple(x) for x in asks]
        assert v.rejected_deltas == 0, "a delta did not continue the subscriber's book"
        if symbol == ETH or resets == 0:
            assert v.resets == 0, f"{symbol}: a BookReset reached the subscriber"
    reference = tape(sim, "BTCUSDT")

    def caught_up() -> list[str] | None:
        ids = view(ex, sub, BTC).trade_ids
        return ids if ids and int(ids[-1]) == reference[-1] else None

    got = [int(t) for t in wait_for(caught_up, "the subscriber's last trade = the sim's last")]
    assert len(got) == len(set(got)), "a trade was delivered twice"
    assert got == sorted(got), "trades out of order"
    assert reference[0] <= got[0], "the simulator's tape window is too short for this test"
    assert got == [t for t in reference if t >= got[0]], "a trade was lost"


def only_connection(sim: BinanceSpotSim) -> int:
    conns = [c for c in sim.connections() if not c["ws_api"]]
    assert len(conns) == 1, conns
    return int(conns[0]["id"])


def opened(sim: BinanceSpotSim) -> int:
    return sim.stats()["connections_opened"]


def fault_then_recover(
    sim: BinanceSpotSim, ex: exconn.Exconn, inject: Callable[[int], None], what: str
) -> Any:
    sub = subscribe_all(ex)
    before = opened(sim)
    inject(only_connection(sim))
    wait_for(lambda: opened(sim) > before, f"a new socket after {what}")
    keeps_flowing(ex, sub, what)
    return sub


def test_drop_recovers_exactly(sim: BinanceSpotSim, ex: exconn.Exconn) -> None:
    sub = fault_then_recover(
        sim, ex, lambda cid: sim.add_fault("drop", connection=cid), "a dropped socket"
    )
    assert_exact(ex, sub, sim)


def test_close_1008_recovers_exactly(sim: BinanceSpotSim, ex: exconn.Exconn) -> None:
    sub = fault_then_recover(
        sim, ex, lambda cid: sim.add_fault("close_1008", connection=cid), "close 1008"
    )
    assert_exact(ex, sub, sim)


def test_server_shutdown_recovers_exactly(sim: BinanceSpotSim, ex: exconn.Exconn) -> None:
    sub = fault_then_recover(
        sim, ex, lambda cid: sim.add_fault("server_shutdown", connection=cid), "serverShutdown"
    )
    assert_exact(ex, sub, sim)


def test_stall_is_detected_and_the_socket_replaced(sim: BinanceSpotSim, ex: exconn.Exconn) -> None:
    # The stall outlasts the watchdog (resubscribe, then replace), not the test.
    sub = fault_then_recover(
        sim,
        ex,
        lambda cid: sim.add_fault("stall", connection=cid, count=None, duration_ms=20_000),
        "a stalled socket",
    )
    sim.clear_faults()
    assert_exact(ex, sub, sim)


def test_skipped_sequence_resyncs_that_book_only(sim: BinanceSpotSim, ex: exconn.Exconn) -> None:
    sub = subscribe_all(ex)
    sim.skip_sequence("BTCUSDT")
    wait_for(lambda: view(ex, sub, BTC).snapshots >= 2, "BTC resynced after the gap")
    keeps_flowing(ex, sub, "a skipped sequence")
    assert_exact(ex, sub, sim, resets=1)
    assert view(ex, sub, BTC).resets == 1


def test_connection_age_cap_rotates_make_before_break() -> None:
    # The simulator closes every socket after 3 s; exconn replaces each one 1.5 s before.
    sim = BinanceSpotSim(seed=6, depth_interval_ms=50, max_connection_age_s=3.0).start()
    try:
        ex = start(sim, WsSettings(max_connection_age_s=3.0, rotate_before_s=1.5))
        try:
            sub = subscribe_all(ex)
            first = opened(sim)
            wait_for(lambda: opened(sim) >= first + 2, "two rotations")
            keeps_flowing(ex, sub, "rotations")
            assert sim.stats().get("connections_expired", 0) == 0, "the cap closed a socket"
            assert_exact(ex, sub, sim)
            v = view(ex, sub, BTC)
            assert v.snapshots == 1, "a rotation rebuilt the book instead of continuing it"
        finally:
            ex.shutdown()
    finally:
        sim.stop()
