"""Bybit V5 public WebSocket faults injected through the simulator, end to end on
multiprocTCPBase, spot and linear at once (one connection actor each): every fault must
recover with books equal to the simulator's at the same ``u`` and every trade delivered
exactly once (compared with the trades the simulator published, ``public_trade_ids``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

import exconn
from exconn.config import WsSettings
from exconn.sim import BybitSim
from tests.integration.conftest import view, wait_for
from tests.integration.subscribers import RecordingSubscriber, View

pytestmark = pytest.mark.integration

DEPTH = 200  # the book topic's Bybit depth (exconn.venues.bybit.urls.BOOK_DEPTH)
BTC, ETH, LBTC = "BTC/USDT", "ETH/USDT", "BTC/USDT:USDT"
# (market, exconn symbol, venue symbol)
BOOKS = (("spot", BTC, "BTCUSDT"), ("spot", ETH, "ETHUSDT"), ("linear", LBTC, "BTCUSDT"))
TRADES = (("spot", BTC, "BTCUSDT"), ("linear", LBTC, "BTCUSDT"))
CHANNELS = ("spot", "linear")
# Compressed lifecycle so each fault resolves in about a second (the defaults are minutes).
FAST = WsSettings(
    stream_silence_s=0.6,
    rotation_timeout_s=1.0,
    held_book_s=15.0,
    backoff_initial_s=0.2,
    backoff_max_s=1.0,
)


@pytest.fixture
def sim() -> Iterator[BybitSim]:
    s = BybitSim(seed=5, depth_interval_ms=50).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def ex(sim: BybitSim) -> Iterator[exconn.Exconn]:
    handle = exconn.start(
        exconn.Config.for_sim(None, None, bybit=(sim.rest_url, sim.ws_url), ws=FAST)
    )
    try:
        yield handle
    finally:
        handle.shutdown()


def subscribe_all(ex: exconn.Exconn) -> Any:
    sub = ex.create_actor(RecordingSubscriber)
    topics = [f"book.bybit.{m}.{s}" for m, s, _ in BOOKS]
    topics += [f"trades.bybit.{m}.{s}" for m, s, _ in TRADES]
    ex.subscribe(sub, *topics)
    wait_for(
        lambda: (
            all(view(ex, sub, s).deltas > 5 for _, s, _ in BOOKS)
            and all(view(ex, sub, s).trades > 0 for _, s, _ in TRADES)
        ),
        "live books and trades on spot and linear",
    )
    return sub


def keeps_flowing(ex: exconn.Exconn, sub: Any, what: str) -> None:
    """Wait until every book moved on by a margin after the fault (events, not time)."""
    before = {s: view(ex, sub, s).deltas for _, s, _ in BOOKS}
    wait_for(
        lambda: all(view(ex, sub, s).deltas > before[s] + 10 for _, s, _ in BOOKS),
        f"books moving again after {what}",
    )


def levels(rows: list[tuple[Any, Any]]) -> list[tuple[Decimal, Decimal]]:
    # Decimal equality is by value: the venue's "0.10" tick and the simulator's 0.1 agree.
    return [(Decimal(p), Decimal(q)) for p, q in rows]


def assert_exact(
    ex: exconn.Exconn, sub: Any, sim: BybitSim, *, resets: dict[str, int] | None = None
) -> dict[str, View]:
    """Pause the simulator; every book equals its view at the same ``u`` and every trade it
    published since the subscriber's first arrived exactly once, in order."""
    sim.pause()
    views: dict[str, View] = {}
    for market, symbol, venue in BOOKS:
        target = sim.last_update_id(market, venue, DEPTH)
        v = wait_for(
            lambda s=symbol, t=target: (x := view(ex, sub, s)).valid and x.update_id == t and x,
            f"{market} {symbol} at the simulator's u={target}",
        )
        u, bids, asks = sim.book(market, venue, DEPTH)
        assert v.update_id == u
        assert levels(v.bids) == list(bids), f"{market} {symbol}: bids differ"
        assert levels(v.asks) == list(asks), f"{market} {symbol}: asks differ"
        assert v.rejected_deltas == 0, "a delta did not continue the subscriber's book"
        expected = (resets or {}).get(symbol, 0)
        assert v.resets == expected, f"{symbol}: {v.resets} BookResets, expected {expected}"
        assert not v.errors, v.errors
        views[symbol] = v
    for market, symbol, venue in TRADES:
        reference = sim.public_trade_ids(market, venue)

        def caught_up(s: str = symbol, ref: list[str] = reference) -> list[str] | None:
            ids = view(ex, sub, s).trade_ids
            return ids if ids and ids[-1] == ref[-1] else None

        got = wait_for(caught_up, f"{market} {symbol}: the subscriber's last trade = the sim's")
        assert len(got) == len(set(got)), f"{market} {symbol}: a trade was delivered twice"
        assert got[0] in reference, "the simulator's tape is too short for this test"
        start = reference.index(got[0])
        assert got == reference[start:], f"{market} {symbol}: a trade was lost or reordered"
    return views


def public_connections(sim: BybitSim) -> dict[str, int]:
    """The one socket exconn holds per category."""
    conns = sim.connections()
    out = {}
    for channel in CHANNELS:
        ids = [c["id"] for c in conns if c["channel"] == channel]
        assert len(ids) == 1, conns
        out[channel] = int(ids[0])
    return out


def opened(sim: BybitSim) -> int:
    return sim.stats()["connections_opened"]


def fault_then_recover(
    sim: BybitSim, ex: exconn.Exconn, inject: Callable[[int], object], what: str
) -> Any:
    """Inject the fault on both categories' sockets; wait for both to be replaced and for
    every book to move on."""
    sub = subscribe_all(ex)
    before = opened(sim)
    for cid in public_connections(sim).values():
        inject(cid)
    wait_for(lambda: opened(sim) >= before + len(CHANNELS), f"new sockets after {what}")
    keeps_flowing(ex, sub, what)
    return sub


def test_drop_recovers_exactly(sim: BybitSim, ex: exconn.Exconn) -> None:
    sub = fault_then_recover(sim, ex, lambda cid: sim.drop_connection(cid), "a dropped socket")
    views = assert_exact(ex, sub, sim)
    # The held book was continued by the new socket's snapshot, not replaced.
    assert all(views[s].snapshots == 1 for _, s, _ in BOOKS)


def test_session_expiry_recovers_exactly(sim: BybitSim, ex: exconn.Exconn) -> None:
    # The server ends the socket with a close frame (1000), as Bybit's session cut does.
    sub = fault_then_recover(sim, ex, lambda cid: sim.expire_session(cid), "an expired session")
    assert sim.stats()["sessions_expired"] == len(CHANNELS)
    views = assert_exact(ex, sub, sim)
    assert all(views[s].snapshots == 1 for _, s, _ in BOOKS)


def test_stall_is_detected_and_the_socket_replaced(sim: BybitSim, ex: exconn.Exconn) -> None:
    # The stall outlasts the watchdog (resubscribe, then replace), not the test.
    sub = fault_then_recover(
        sim, ex, lambda cid: sim.stall(cid, duration_ms=20_000), "a stalled socket"
    )
    sim.clear_faults()
    assert_exact(ex, sub, sim)


def test_skipped_sequence_resyncs_that_book_only(sim: BybitSim, ex: exconn.Exconn) -> None:
    sub = subscribe_all(ex)
    conns = public_connections(sim)
    before = {s: view(ex, sub, s).snapshots for _, s, _ in BOOKS}
    for cid in conns.values():
        sim.skip_sequence("BTCUSDT", connection=cid)
    wait_for(
        lambda: (
            view(ex, sub, BTC).snapshots > before[BTC]
            and view(ex, sub, LBTC).snapshots > before[LBTC]
        ),
        "both BTC books resubscribed after the gap",
    )
    keeps_flowing(ex, sub, "a skipped sequence")
    assert sim.stats()["depth_events_skipped"] == len(CHANNELS)
    views = assert_exact(ex, sub, sim, resets={BTC: 1, LBTC: 1})
    assert views[ETH].snapshots == 1, "the ETH book was resynced too"
    assert public_connections(sim) == conns, "a gap is repaired on the same socket"


def test_malformed_frames_are_skipped(sim: BybitSim, ex: exconn.Exconn) -> None:
    sub = subscribe_all(ex)
    conns = public_connections(sim)
    for cid in conns.values():
        sim.inject_malformed(connection=cid, count=3)

    def malformed() -> dict[str, int]:
        return {c.market: c.malformed_frames for c in ex.status().connections}

    wait_for(
        lambda: all(malformed().get(ch, 0) >= 3 for ch in CHANNELS),
        "three malformed frames counted per connection",
    )
    keeps_flowing(ex, sub, "malformed frames")
    views = assert_exact(ex, sub, sim)
    assert all(views[s].snapshots == 1 for _, s, _ in BOOKS), "a malformed frame forced a resync"
    assert public_connections(sim) == conns, "a malformed frame cost the socket"
    assert sim.stats()["malformed_sent"] == 3 * len(CHANNELS)
