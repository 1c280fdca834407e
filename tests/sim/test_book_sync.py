"""A client following Binance's spot book-sync procedure ends with exactly the sim's book."""

from __future__ import annotations

import httpx

from exconn.sim import BinanceSpotSim
from tests.sim.conftest import SimFactory
from tests.sim.helpers import LocalBook, WsClient, event_of


def snapshot(sim: BinanceSpotSim, symbol: str) -> dict[str, object]:
    url = f"{sim.rest_url}/api/v3/depth"
    return httpx.get(url, params={"symbol": symbol, "limit": 1000}, timeout=10).json()


def sync_until_current(client: WsClient, book: LocalBook, sim: BinanceSpotSim, symbol: str) -> None:
    target = sim.last_update_id(symbol)
    for _ in range(10_000):  # bounded: each event advances the book
        if book.update_id is not None and book.update_id >= target:
            return
        book.on_event(event_of(client.recv_json()))
    raise AssertionError("book never reached the simulator's update id")


def test_buffer_snapshot_apply_equals_sim_book(sim: BinanceSpotSim) -> None:
    client = WsClient(f"{sim.ws_url}/ws/btcusdt@depth@100ms")
    try:
        assert sim.wait_for_connections(1, timeout=10)
        book = LocalBook()
        sim.step(3)
        for _ in range(3):
            book.on_event(event_of(client.recv_json()))
        book.load_snapshot(snapshot(sim, "BTCUSDT"))  # drops all three buffered events
        assert book.update_id == sim.last_update_id("BTCUSDT")
        sim.step(25)
        sync_until_current(client, book, sim, "BTCUSDT")
        assert book.view() == sim.book("BTCUSDT")
    finally:
        client.close()


def test_sync_while_the_market_moves(make_sim: SimFactory) -> None:
    sim = make_sim(seed=3, depth_interval_ms=5)
    client = WsClient(f"{sim.ws_url}/stream?streams=ethusdt@depth@100ms")
    try:
        book = LocalBook()
        # Buffer a few live events, then snapshot while events keep arriving.
        for _ in range(3):
            book.on_event(event_of(client.recv_json()))
        book.load_snapshot(snapshot(sim, "ETHUSDT"))
        for _ in range(20):
            book.on_event(event_of(client.recv_json()))
        sim.pause()
        sync_until_current(client, book, sim, "ETHUSDT")
        assert book.view() == sim.book("ETHUSDT")
    finally:
        client.close()
