"""Binance spot market data end to end: simulator on 127.0.0.1 -> connection actor (book sync)
-> subscriber actor in another process, on multiprocTCPBase."""

from __future__ import annotations

import os
import signal

import pytest

import exconn
from exconn.sim import BinanceSpotSim
from tests.integration.conftest import book_matches_sim, view, wait_for
from tests.integration.subscribers import Attach, RecordingSubscriber

pytestmark = pytest.mark.integration

BTC = "BTC/USDT"
ETH = "ETH/USDT"


def assert_same_book(
    ex: exconn.Exconn, actor, sim: BinanceSpotSim, symbol: str, venue: str
) -> None:
    v = wait_for(
        lambda: book_matches_sim(ex, actor, sim, symbol, venue),
        f"{symbol} subscriber book at the simulator's update id",
    )
    update_id, bids, asks = sim.book(venue)
    assert v.update_id == update_id
    assert [tuple(x) for x in v.bids] == [tuple(x) for x in bids]
    assert [tuple(x) for x in v.asks] == [tuple(x) for x in asks]
    assert v.rejected_deltas == 0


def test_subscriber_book_equals_simulator_book(sim: BinanceSpotSim, ex: exconn.Exconn) -> None:
    sub = ex.create_actor(RecordingSubscriber)
    ex.subscribe(sub, f"book.binance.spot.{BTC}", f"trades.binance.spot.{BTC}")
    wait_for(lambda: view(ex, sub, BTC).deltas >= 5, "live book deltas")
    sim.pause()
    assert_same_book(ex, sub, sim, BTC, "BTCUSDT")
    sim.step(20)
    assert_same_book(ex, sub, sim, BTC, "BTCUSDT")
    v = view(ex, sub, BTC)
    assert v.snapshots == 1 and v.resets == 0 and v.errors == []
    assert len(v.trade_ids) == len(set(v.trade_ids))  # no trade delivered twice


def test_unsubscribe_stops_delivery(sim: BinanceSpotSim, ex: exconn.Exconn) -> None:
    leaving = ex.create_actor(RecordingSubscriber)
    staying = ex.create_actor(RecordingSubscriber)
    ex.subscribe(leaving, f"book.binance.spot.{BTC}")
    ex.subscribe(staying, f"book.binance.spot.{ETH}")
    wait_for(
        lambda: view(ex, leaving, BTC).deltas > 0 and view(ex, staying, ETH).deltas > 0,
        "both books live",
    )
    ex.unsubscribe(leaving, f"book.binance.spot.{BTC}")
    # The last subscriber left, so the stream itself is closed at the venue.
    wait_for(lambda: "btcusdt@depth@100ms" not in sim.subscriptions(), "BTC depth unsubscribed")
    sim.pause()
    before = view(ex, leaving, BTC).deltas
    sim.step(10)
    # The connection processed frames after the unsubscribe: ETH reached the simulator's id.
    assert_same_book(ex, staying, sim, ETH, "ETHUSDT")
    assert view(ex, leaving, BTC).deltas == before


def test_killed_connection_restarts_and_books_recover(
    sim: BinanceSpotSim, ex: exconn.Exconn
) -> None:
    sub = ex.create_actor(RecordingSubscriber)
    ex.subscribe(sub, f"book.binance.spot.{BTC}")
    wait_for(lambda: view(ex, sub, BTC).deltas > 0, "live book")
    (conn,) = ex.status().connections
    os.kill(conn.pid, signal.SIGKILL)
    wait_for(lambda: view(ex, sub, BTC).resets >= 1, "BookReset after the connection died")
    status = wait_for(
        lambda: (s := ex.status()).connections and s.connections[0].pid != conn.pid and s,
        "a restarted connection actor",
    )
    assert status.restarts == 1
    wait_for(lambda: view(ex, sub, BTC).snapshots >= 2, "a fresh snapshot after restart")
    sim.pause()
    assert_same_book(ex, sub, sim, BTC, "BTCUSDT")


def test_gap_resyncs_only_that_symbol(sim: BinanceSpotSim, ex: exconn.Exconn) -> None:
    sub = ex.create_actor(RecordingSubscriber)
    ex.subscribe(sub, f"book.binance.spot.{BTC}", f"book.binance.spot.{ETH}")
    wait_for(lambda: view(ex, sub, BTC).deltas > 0 and view(ex, sub, ETH).deltas > 0, "books live")
    sim.skip_sequence("BTCUSDT")
    wait_for(lambda: view(ex, sub, BTC).snapshots >= 2, "BTC resynced after the gap")
    sim.pause()
    assert_same_book(ex, sub, sim, BTC, "BTCUSDT")
    assert_same_book(ex, sub, sim, ETH, "ETHUSDT")
    assert view(ex, sub, BTC).resets == 1
    assert view(ex, sub, ETH).resets == 0 and view(ex, sub, ETH).snapshots == 1
    assert ex.status().connections[0].resyncs == 1


def test_malformed_frames_are_counted_and_skipped(sim: BinanceSpotSim, ex: exconn.Exconn) -> None:
    sub = ex.create_actor(RecordingSubscriber)
    ex.subscribe(sub, f"book.binance.spot.{BTC}")
    wait_for(lambda: view(ex, sub, BTC).deltas > 0, "live book")
    pid = ex.status().connections[0].pid
    sim.inject_malformed(3)
    wait_for(lambda: ex.status().connections[0].malformed_frames >= 3, "malformed frames counted")
    (conn,) = ex.status().connections
    assert conn.pid == pid and conn.connected  # the same actor survived
    sim.pause()
    assert_same_book(ex, sub, sim, BTC, "BTCUSDT")


def test_unknown_symbol_is_reported_to_the_subscriber(ex: exconn.Exconn) -> None:
    sub = ex.create_actor(RecordingSubscriber)
    ex.subscribe(sub, "book.binance.spot.NOPE/USDT", "book.kraken.spot.BTC/USDT")
    v = wait_for(
        lambda: len((x := view(ex, sub, "NOPE/USDT")).errors) >= 2 and x, "two subscription errors"
    )
    assert any("NOPE/USDT" in e for e in v.errors)
    assert any("kraken" in e for e in v.errors)


def test_engine_actor_subscribes_by_message(sim: BinanceSpotSim, ex: exconn.Exconn) -> None:
    engine = ex.create_actor(RecordingSubscriber)
    ex.system.tell(engine, Attach(root=ex.root, topics=(f"trades.binance.spot.{ETH}",)))
    v = wait_for(lambda: (x := view(ex, engine, ETH)).trades >= 3 and x, "trades by message")
    assert len(v.trade_ids) == len(set(v.trade_ids))
    assert [int(t) for t in v.trade_ids] == sorted(int(t) for t in v.trade_ids)


def test_killed_router_restarts_with_every_subscription(
    sim: BinanceSpotSim, ex: exconn.Exconn
) -> None:
    from exconn.messages import GetStatus

    sub = ex.create_actor(RecordingSubscriber)
    ex.subscribe(sub, f"book.binance.spot.{BTC}")
    wait_for(lambda: view(ex, sub, BTC).deltas > 0, "live book")
    tree = ex.ask(GetStatus())
    router = ex.system.ask(tree.router, GetStatus(), 10)
    assert router.open_topics == [f"book.binance.spot.{BTC}"]
    os.kill(router.pid, signal.SIGKILL)

    def restarted():
        t = ex.ask(GetStatus())
        if t.restarts != 1 or t.router is None:
            return None
        r = ex.system.ask(t.router, GetStatus(), 10)
        return r if r is not None and r.open_topics else None

    renewed = wait_for(restarted, "a router restarted with the subscription replayed")
    assert renewed.pid != router.pid
    assert renewed.open_topics == [f"book.binance.spot.{BTC}"]
    # The registry works again: the last subscriber leaving still closes the stream.
    ex.unsubscribe(sub, f"book.binance.spot.{BTC}")
    wait_for(lambda: "btcusdt@depth@100ms" not in sim.subscriptions(), "stream closed")


def test_killed_supervisor_takes_its_connection_with_it_and_comes_back(
    sim: BinanceSpotSim, ex: exconn.Exconn
) -> None:
    from exconn.messages import GetStatus

    sub = ex.create_actor(RecordingSubscriber)
    ex.subscribe(sub, f"book.binance.spot.{BTC}")
    wait_for(lambda: view(ex, sub, BTC).deltas > 0, "live book")
    (old_conn,) = ex.status().connections
    tree = ex.ask(GetStatus())
    supervisor = ex.system.ask(tree.supervisors["binance"], GetStatus(), 10)
    os.kill(supervisor.pid, signal.SIGKILL)
    # The orphaned connection actor must not live on next to its replacement.
    wait_for(lambda: not _alive(old_conn.pid), "the old connection actor to exit")
    status = wait_for(
        lambda: (s := ex.status()).connections and s.connections[0].pid != old_conn.pid and s,
        "a new supervisor and connection",
    )
    assert len(status.connections) == 1
    wait_for(lambda: view(ex, sub, BTC).snapshots >= 2, "a fresh snapshot")
    sim.pause()
    assert_same_book(ex, sub, sim, BTC, "BTCUSDT")
    assert sim.connection_count() == 1


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
